"""The filters of the city list, shared by the browse page and the API.

Every parameter a visitor can type is validated by its form field: a value that is not one
of the choices (an unknown country, a made-up tie kind) is dropped from the query and reported
in `filterset.errors`, so the page can say what it ignored instead of failing.
"""

import django_filters
from django import forms
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django_countries import countries

from partnerships.models import Membership, Organization, Tie, TieKind

from .models import City, Theme
from .regions import REGION_CHOICES, countries_in


def tie_count():
    """Ties at either end of each city, as two correlated counts on the indexed foreign keys
    (a join to both ends would multiply rows)."""

    def count(end):
        ties = Tie.objects.filter(**{end: OuterRef("pk")}).order_by()
        ties = ties.values(end).annotate(n=Count("pk")).values("n")
        return Coalesce(Subquery(ties, output_field=IntegerField()), Value(0))

    return count("city_a") + count("city_b")


class StableOrderingFilter(django_filters.OrderingFilter):
    """Ordering chosen by the visitor, then the primary key, so pages of equal values
    (two cities with 12 ties) never swap rows between page 1 and page 2."""

    def filter(self, qs, value):
        qs = super().filter(qs, value)
        if value:
            qs = qs.order_by(*qs.query.order_by, "pk")
        return qs


class CityFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_search", label="Name")
    country = django_filters.ChoiceFilter(
        choices=list(countries), label="Country", empty_label="Any"
    )
    region = django_filters.ChoiceFilter(
        choices=REGION_CHOICES, method="filter_region", label="World region", empty_label="Any"
    )
    kind = django_filters.ChoiceFilter(
        choices=TieKind.choices, method="filter_kind", label="Has a tie of kind", empty_label="Any"
    )
    organization = django_filters.ModelChoiceFilter(
        queryset=Organization.objects.order_by("name"),
        to_field_name="slug",
        method="filter_organization",
        label="Member of",
        empty_label="Any",
    )
    theme = django_filters.ModelChoiceFilter(
        queryset=Theme.objects.all(),
        to_field_name="slug",
        field_name="themes",
        label="Theme",
        empty_label="Any",
    )
    has_ties = django_filters.BooleanFilter(
        method="filter_has_ties",
        label="Has ties",
        widget=forms.Select(choices=[("", "Any"), ("true", "Yes"), ("false", "No")]),
    )
    ordering = StableOrderingFilter(
        fields=(("name", "name"), ("country", "country"), ("tie_count", "ties")),
        field_labels={"name": "Name", "country": "Country", "tie_count": "Number of ties"},
        label="Order by",
        empty_label="Name (A–Z)",
    )

    class Meta:
        model = City
        fields = ["q", "country", "region", "kind", "organization", "theme", "has_ties"]

    def __init__(self, data=None, queryset=None, **kwargs):
        if queryset is None:
            queryset = City.objects.all()
        # Ordering by ties and showing the count need the annotation, whoever built the queryset.
        if "tie_count" not in queryset.query.annotations:
            queryset = queryset.annotate(tie_count=tie_count())
        super().__init__(data, queryset, **kwargs)

    def filter_search(self, queryset, name, value):
        return queryset.search(value)

    def filter_region(self, queryset, name, value):
        return queryset.filter(country__in=countries_in(value))

    def filter_kind(self, queryset, name, value):
        return queryset.filter(Exists(Tie.objects.for_city(OuterRef("pk")).filter(kind=value)))

    def filter_organization(self, queryset, name, value):
        # Members of the organization itself or of one of its branches (UCLG-ASPAC counts
        # towards UCLG), each city once.
        members = Membership.objects.filter(
            Q(organization=value) | Q(organization__parent=value), city=OuterRef("pk")
        )
        return queryset.filter(Exists(members))

    def filter_has_ties(self, queryset, name, value):
        ties = Exists(Tie.objects.for_city(OuterRef("pk")))
        return queryset.filter(ties if value else ~ties)
