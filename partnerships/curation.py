"""The curation queue: what curators should look at next.

One definition, read by the admin's index (the links) and by its needs-attention page (the
links with their counts). Each check names the records it counts and the admin list, with
its filters, that shows exactly those records.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.db.models import Q
from django.urls import reverse

from cities.duplicates import find_duplicate_cities
from cities.models import City, Verification

from .models import (
    Correction,
    CorrectionStatus,
    Event,
    Initiative,
    Membership,
    StatedFigure,
    Tie,
)


@dataclass(frozen=True)
class Check:
    key: str
    label: str
    model: type
    count: Callable  # () -> how many records need this attention
    url_name: str = ""  # the admin list; its changelist by default
    query: str = ""  # the list's filters, as a query string

    def url(self):
        meta = self.model._meta
        name = self.url_name or f"admin:{meta.app_label}_{meta.model_name}_changelist"
        return reverse(name) + (f"?{self.query}" if self.query else "")

    def visible_to(self, user):
        meta = self.model._meta
        return user.has_perm(f"{meta.app_label}.view_{meta.model_name}")


def _unsourced(model):
    return model._default_manager.filter(citations__isnull=True).count()


QUEUE = [
    Check(
        "ties_undated",
        "Ties without a date",
        Tie,
        lambda: Tie.objects.undated().count(),
        query="start_known=no",
    ),
    Check(
        "ties_unsourced",
        "Ties without a source",
        Tie,
        lambda: Tie.objects.unsourced().count(),
        query="sourced=no",
    ),
    # Every claim the public pages show needs a source: records saved before that rule.
    *(
        Check(
            f"{model._meta.model_name}_unsourced",
            f"{str(model._meta.verbose_name_plural).capitalize()} without a source",
            model,
            partial(_unsourced, model),
            query="sourced=no",
        )
        for model in (Membership, Initiative, Event, StatedFigure)
    ),
    Check(
        "ties_unverified",
        "Unverified ties",
        Tie,
        lambda: Tie.objects.filter(verification=Verification.UNVERIFIED).count(),
        query="verification__exact=unverified",
    ),
    Check(
        "cities_without_coordinates",
        "Cities without coordinates",
        City,
        lambda: City.objects.filter(Q(latitude__isnull=True) | Q(longitude__isnull=True)).count(),
        query="missing=coordinates",
    ),
    Check(
        "cities_without_country",
        "Cities without a country",
        City,
        lambda: City.objects.filter(country="").count(),
        query="missing=country",
    ),
    Check(
        "cities_location_check",
        "Cities whose coordinates or country the gazetteer questions",
        City,
        lambda: City.objects.exclude(location_flag="").count(),
        query="missing=location_check",
    ),
    Check(
        "possible_duplicates",
        "Possible duplicate cities (pairs)",
        City,
        lambda: len(find_duplicate_cities()),
        url_name="admin:cities_city_duplicates",
    ),
    Check(
        "corrections_new",
        "Corrections from readers to review",
        Correction,
        lambda: Correction.objects.filter(status=CorrectionStatus.NEW).count(),
        query="status__exact=new",
    ),
]


def visible_queue(user):
    """The checks a curator may open: those of the records they can view."""
    return [check for check in QUEUE if check.visible_to(user)]


def needs_attention_counts(include_duplicates=True):
    """{key: count} for the curation queue, with `possible_duplicates` when asked: that one
    compares every city and takes a second or two on the full Wikipedia data."""
    return {
        check.key: check.count()
        for check in QUEUE
        if include_duplicates or check.key != "possible_duplicates"
    }
