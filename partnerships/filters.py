"""The filters of the tie list, shared by /ties/, the API and its exports."""

import datetime

import django_filters
from django.db.models import F, Q
from django_countries import countries

from cities.filters import StableOrderingFilter
from cities.models import City, Theme

from .models import Tie, TieKind, TieStatus

UNDATED = "unknown"


def decade_choices():
    """Decades from 1900 to the present, plus ties whose start is not known."""
    this_year = datetime.date.today().year
    decades = [(str(y), f"{y}s") for y in range(this_year // 10 * 10, 1890, -10)]
    return [*decades, ("before-1900", "before 1900"), (UNDATED, "date unknown")]


class TieFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_search", label="City name")
    city = django_filters.CharFilter(method="filter_city", label="City (slug)")
    kind = django_filters.ChoiceFilter(choices=TieKind.choices, label="Kind", empty_label="Any")
    status = django_filters.ChoiceFilter(
        choices=TieStatus.choices, label="Status", empty_label="Any"
    )
    decade = django_filters.ChoiceFilter(
        choices=decade_choices, method="filter_decade", label="Started in", empty_label="Any"
    )
    country = django_filters.ChoiceFilter(
        choices=list(countries),
        method="filter_country",
        label="Country (either city)",
        empty_label="Any",
    )
    theme = django_filters.ModelChoiceFilter(
        queryset=Theme.objects.all(),
        to_field_name="slug",
        field_name="topics",
        label="Topic",
        empty_label="Any",
    )
    source = django_filters.CharFilter(
        field_name="citations__source__slug", distinct=True, label="Cites source (key)"
    )
    ordering = StableOrderingFilter(
        fields=(("start_lower", "start"), ("city_a__name", "city"), ("kind", "kind")),
        field_labels={"start_lower": "Start date", "city_a__name": "City", "kind": "Kind"},
        label="Order by",
        empty_label="Start date, undated last",
    )

    class Meta:
        model = Tie
        fields = ["q", "city", "kind", "status", "decade", "country", "theme", "source"]

    def __init__(self, data=None, queryset=None, **kwargs):
        if queryset is None:
            queryset = Tie.objects.for_list()
        # Same order on SQLite and PostgreSQL: undated ties last, unless the caller chose.
        if not queryset.query.order_by:
            queryset = queryset.order_by(F("start_lower").asc(nulls_last=True), "id")
        super().__init__(data, queryset, **kwargs)

    def filter_search(self, queryset, name, value):
        cities = City.objects.search(value).values("pk")
        return queryset.filter(Q(city_a__in=cities) | Q(city_b__in=cities))

    def filter_city(self, queryset, name, value):
        # An unknown slug matches nothing: the list says "no ties", which is the truth.
        return queryset.filter(Q(city_a__slug=value) | Q(city_b__slug=value))

    def filter_decade(self, queryset, name, value):
        if value == UNDATED:
            return queryset.filter(start_lower__isnull=True)
        if value == "before-1900":
            return queryset.filter(start_lower__lt=datetime.date(1900, 1, 1))
        year = int(value)
        return queryset.filter(
            start_lower__gte=datetime.date(year, 1, 1),
            start_lower__lt=datetime.date(year + 10, 1, 1),
        )

    def filter_country(self, queryset, name, value):
        return queryset.filter(Q(city_a__country=value) | Q(city_b__country=value))
