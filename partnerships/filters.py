"""The FilterSets of every list, shared by the pages, the API and its exports.

Every parameter a visitor can type is validated by its form field: a value that is not one
of the choices (an unknown country, a made-up tie kind) is dropped from the query and reported
in `filterset.errors`, so the page can say what it ignored instead of failing.
"""

import datetime
import html

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, F, OuterRef, Q
from django.utils.choices import BaseChoiceIterator
from django.utils.safestring import mark_safe
from django_countries import countries
from drf_spectacular.utils import extend_schema_field

from cities.models import City, Source, SourceKind, Theme
from cities.regions import REGION_CHOICES, countries_in

from .models import (
    Event,
    EventKind,
    Initiative,
    InitiativeKind,
    Measure,
    Membership,
    MembershipCitation,
    MembershipRole,
    Organization,
    OrganizationKind,
    StatedFigure,
    Tie,
    TieCitation,
    TieKind,
    TieStatus,
    tie_count,
)


class JoinedSelect(forms.Select):
    """A <select> written as Django's widget templates write it, byte for byte, but by
    joining strings: rendering the option template once per option (the country filters have
    250) took half the time of a list page. Which option is selected is still Django's
    choice (`optgroups`)."""

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        parts = [f'<select name="{_escape(widget["name"])}"{_attributes(widget["attrs"])}>']
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                parts.append(f'\n  <optgroup label="{_escape(group_name)}">')
            # The option template ends with a newline, which Django's output keeps.
            parts.extend(
                f'\n  <option value="{_escape(str(option["value"]))}"'
                f"{_attributes(option['attrs']) if option['attrs'] else ''}>"
                f"{_escape(option['label'])}</option>\n"
                for option in options
            )
            if group_name:
                parts.append("\n  </optgroup>")
        parts.append("\n</select>")
        return mark_safe("".join(parts))


def _escape(text):
    """What `conditional_escape(text)` gives (safe HTML as it is, anything else escaped),
    without the check for lazy strings that costs Django's `escape()` more than escaping."""
    if hasattr(text, "__html__"):
        return text.__html__()
    return html.escape(str(text))


def _attributes(attrs):
    """HTML attributes as django/forms/widgets/attrs.html writes them: False leaves one out,
    True writes its bare name."""
    return "".join(
        f" {_escape(name)}" if value is True else f' {_escape(name)}="{_escape(str(value))}"'
        for name, value in attrs.items()
        if value is not False
    )


class KnownSlugField(forms.CharField):
    """A slug that must name an existing record of `model`."""

    def __init__(self, *args, model, **kwargs):
        self.model = model
        super().__init__(*args, **kwargs)

    def validate(self, value):
        super().validate(value)
        if value and not self.model._default_manager.filter(slug=value).exists():
            raise ValidationError(
                "No %(what)s has the slug “%(value)s”: check the spelling, or find the slug "
                "in the address of its page.",
                code="unknown_slug",
                params={"what": self.model._meta.verbose_name, "value": value},
            )


class KnownSlugFilter(django_filters.CharFilter):
    """Filter by slug; a typo is an error (400 in the API, explained on the pages) rather
    than an empty list that looks like "no data"."""

    field_class = KnownSlugField


UNDATED = "unknown"


def decade_choices():
    """Decades from 1900 to the present, plus ties whose start is not known."""
    this_year = datetime.date.today().year
    decades = [(str(y), f"{y}s") for y in range(this_year // 10 * 10, 1890, -10)]
    return [*decades, ("before-1900", "before 1900"), (UNDATED, "date unknown")]


class KnownSlugChoiceField(django_filters.fields.ModelChoiceField):
    """A choice of record by slug, whose unknown slug is said as KnownSlugField says it."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValidationError as error:
            if error.code != "invalid_choice":
                raise
            raise ValidationError(
                "No %(what)s has the slug “%(value)s”: check the spelling, or choose one from "
                "the list.",
                code="unknown_slug",
                params={"what": self.queryset.model._meta.verbose_name, "value": value},
            ) from None


class KnownSlugChoiceFilter(django_filters.ModelChoiceFilter):
    """A <select> of records by slug (`to_field_name="slug"`)."""

    field_class = KnownSlugChoiceField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("to_field_name", "slug")
        super().__init__(*args, **kwargs)


@extend_schema_field({"type": "string", "enum": [value for value, _label in decade_choices()]})
class DecadeFilter(django_filters.ChoiceFilter):
    """`decade`: 1900s to the present one, before 1900, or unknown. The schema's list is
    the one of the day the server started."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, choices=decade_choices, **kwargs)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": 2**63 - 1})
class IdFilter(django_filters.NumberFilter):
    """A record's id: a whole number a database column can hold, else a 400 that says so
    (a 20-digit number would overflow SQLite's integers into a server error)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class StrictNullBooleanField(forms.NullBooleanField):
    """Yes, no or any; anything else (`?has_ties=null`, `?has_ties=maybe`) is an error
    rather than silently read as "any", which Django's NullBooleanField does."""

    TRUE, FALSE = ("true", "True", "1"), ("false", "False", "0")

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value is True or value in self.TRUE:
            return True
        if value is False or value in self.FALSE:
            return False
        raise ValidationError(
            "Use true or false, or leave it out for either.", code="invalid_boolean"
        )


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictNullBooleanField


class StableOrderingFilter(django_filters.OrderingFilter):
    """Ordering chosen by the visitor, then the primary key, so pages of equal values
    (two cities with 12 ties) never swap rows between page 1 and page 2."""

    def filter(self, qs, value):
        qs = super().filter(qs, value)
        if value:
            qs = qs.order_by(*qs.query.order_by, "pk")
        return qs


class SharedChoices(BaseChoiceIterator):
    """Choices that every copy of a filter shares as they are: a FilterSet copies its filters
    and form fields for each request, and Django normalizes a list of choices at each use,
    which for the 250 countries cost as much as rendering them."""

    def __init__(self, choices):
        self.choices = [(value, label) for value, label in choices]

    def __iter__(self):
        return iter(self.choices)

    def __deepcopy__(self, memo):
        return self


COUNTRY_CHOICES = SharedChoices(countries)


class CityFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_search", label="Name")
    country = django_filters.ChoiceFilter(
        choices=COUNTRY_CHOICES, label="Country", empty_label="Any", widget=JoinedSelect
    )
    region = django_filters.ChoiceFilter(
        choices=REGION_CHOICES,
        method="filter_region",
        label="World region",
        empty_label="Any",
        widget=JoinedSelect,
    )
    kind = django_filters.ChoiceFilter(
        choices=TieKind.choices,
        method="filter_kind",
        label="Has a tie of kind",
        empty_label="Any",
        widget=JoinedSelect,
    )
    organization = KnownSlugChoiceFilter(
        queryset=Organization.objects.order_by("name"),
        method="filter_organization",
        label="Member of",
        empty_label="Any",
        widget=JoinedSelect,
    )
    theme = KnownSlugChoiceFilter(
        queryset=Theme.objects.all(),
        field_name="themes",
        label="Theme",
        empty_label="Any",
        widget=JoinedSelect,
    )
    has_ties = StrictBooleanFilter(
        method="filter_has_ties",
        label="Has ties",
        widget=JoinedSelect(choices=[("", "Any"), ("true", "Yes"), ("false", "No")]),
    )
    ordering = StableOrderingFilter(
        fields=(("name", "name"), ("country", "country"), ("tie_count", "ties")),
        field_labels={"name": "Name", "country": "Country", "tie_count": "Number of ties"},
        label="Order by",
        empty_label="Name (A–Z)",
        widget=JoinedSelect,
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
        # Ranked: an `ordering` the reader chose still wins, applied after.
        return queryset.ranked(value)

    def filter_region(self, queryset, name, value):
        return queryset.filter(country__in=countries_in(value))

    def filter_kind(self, queryset, name, value):
        return queryset.filter(Exists(Tie.objects.for_city(OuterRef("pk")).filter(kind=value)))

    def filter_organization(self, queryset, name, value: str):
        # Members of the organization itself or of one of its branches (UCLG-ASPAC counts
        # towards UCLG), each city once.
        members = Membership.objects.filter(
            Q(organization=value) | Q(organization__parent=value), city=OuterRef("pk")
        )
        return queryset.filter(Exists(members))

    def filter_has_ties(self, queryset, name, value):
        ties = Exists(Tie.objects.for_city(OuterRef("pk")))
        return queryset.filter(ties if value else ~ties)


class TieFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_search", label="City name")
    city = KnownSlugFilter(method="filter_city", label="City (slug)", model=City)
    kind = django_filters.ChoiceFilter(
        choices=TieKind.choices, label="Kind", empty_label="Any", widget=JoinedSelect
    )
    status = django_filters.ChoiceFilter(
        choices=TieStatus.choices, label="Status", empty_label="Any", widget=JoinedSelect
    )
    decade = DecadeFilter(
        method="filter_decade",
        label="Started in",
        empty_label="Any",
        widget=JoinedSelect,
    )
    country = django_filters.ChoiceFilter(
        choices=COUNTRY_CHOICES,
        method="filter_country",
        label="Country (either city)",
        empty_label="Any",
        widget=JoinedSelect,
    )
    partner_country = django_filters.ChoiceFilter(
        choices=COUNTRY_CHOICES,
        method="filter_partner_country",
        label="Partner country",
        empty_label="Any",
        widget=JoinedSelect,
    )
    theme = KnownSlugChoiceFilter(
        queryset=Theme.objects.all(),
        field_name="topics",
        label="Topic",
        empty_label="Any",
        widget=JoinedSelect,
    )
    source = KnownSlugFilter(
        field_name="citations__source__slug",
        distinct=True,
        label="Cites source (key)",
        model=Source,
    )
    ordering = StableOrderingFilter(
        fields=(("start_lower", "start"), ("city_a__name", "city"), ("kind", "kind")),
        field_labels={"start_lower": "Start date", "city_a__name": "City", "kind": "Kind"},
        label="Order by",
        empty_label="Start date, undated last",
        widget=JoinedSelect,
    )

    class Meta:
        model = Tie
        fields = [
            "q", "city", "kind", "status", "decade", "country", "partner_country", "theme",
            "source",
        ]  # fmt: skip

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
        return queryset.filter(Q(city_a__slug=value) | Q(city_b__slug=value))

    def filter_decade(self, queryset, name, value: str):
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
        """Ties with a city in `country`; with `partner_country` too, the ties between the
        two (JP and UA: Japanese–Ukrainian ties; JP and JP: ties within Japan)."""
        partner = self.form.cleaned_data.get("partner_country")
        if partner:
            return queryset.filter(
                Q(city_a__country=value, city_b__country=partner)
                | Q(city_a__country=partner, city_b__country=value)
            )
        return queryset.filter(Q(city_a__country=value) | Q(city_b__country=value))

    def filter_partner_country(self, queryset, name, value):
        if self.form.cleaned_data.get("country"):
            return queryset  # the pair is filtered by filter_country
        return queryset.filter(Q(city_a__country=value) | Q(city_b__country=value))


class OrganizationFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=OrganizationKind.choices)
    parent = KnownSlugFilter(
        field_name="parent__slug", label="Parent organization (slug)", model=Organization
    )
    theme = KnownSlugFilter(field_name="themes__slug", label="Theme (slug)", model=Theme)

    class Meta:
        model = Organization
        fields = ["kind", "parent", "theme"]


class MembershipFilter(django_filters.FilterSet):
    organization = KnownSlugFilter(
        method="filter_organization", label="Organization or its parent (slug)", model=Organization
    )
    city = KnownSlugFilter(field_name="city__slug", label="Member city (slug)", model=City)
    member_organization = KnownSlugFilter(
        field_name="member_organization__slug", label="Member organization (slug)",
        model=Organization,
    )  # fmt: skip
    role = django_filters.ChoiceFilter(choices=MembershipRole.choices)

    class Meta:
        model = Membership
        fields = ["organization", "city", "member_organization", "role"]

    def filter_organization(self, queryset, name, value):
        return queryset.filter(Q(organization__slug=value) | Q(organization__parent__slug=value))


class ActorFilter(django_filters.FilterSet):
    """Filters shared by initiatives and events: by city, organization and theme, through the
    model's own `involving()`, which knows every role a city or organization can play."""

    city = KnownSlugFilter(method="filter_city", label="City involved (slug)", model=City)
    organization = KnownSlugFilter(
        method="filter_organization", label="Organization (slug)", model=Organization
    )
    theme = KnownSlugFilter(field_name="themes__slug", label="Theme (slug)", model=Theme)

    def filter_city(self, queryset, name, value):
        return queryset.involving(city=City.objects.filter(slug=value))

    def filter_organization(self, queryset, name, value):
        return queryset.involving(organization=Organization.objects.filter(slug=value))


class InitiativeFilter(ActorFilter):
    kind = django_filters.ChoiceFilter(choices=InitiativeKind.choices)

    class Meta:
        model = Initiative
        fields = ["kind", "city", "organization", "theme"]


class EventFilter(ActorFilter):
    kind = django_filters.ChoiceFilter(choices=EventKind.choices)
    initiative = KnownSlugFilter(
        field_name="initiative__slug", label="Initiative (slug)", model=Initiative
    )
    tie = IdFilter(field_name="tie_id", label="Tie (id)")

    class Meta:
        model = Event
        fields = ["kind", "city", "organization", "initiative", "tie", "theme"]


class StatedFigureFilter(django_filters.FilterSet):
    city = KnownSlugFilter(field_name="city__slug", label="City (slug)", model=City)
    organization = KnownSlugFilter(
        field_name="organization__slug", label="Organization (slug)", model=Organization
    )
    initiative = KnownSlugFilter(
        field_name="initiative__slug", label="Initiative (slug)", model=Initiative
    )
    measure = django_filters.ChoiceFilter(choices=Measure.choices)

    class Meta:
        model = StatedFigure
        fields = ["city", "organization", "initiative", "measure"]


class SourceFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=SourceKind.choices)

    class Meta:
        model = Source
        fields = ["kind"]


class TieCitationFilter(django_filters.FilterSet):
    tie = IdFilter(field_name="tie_id", label="Tie (id)")
    source = KnownSlugFilter(field_name="source__slug", label="Source (slug)", model=Source)

    class Meta:
        model = TieCitation
        fields = ["tie", "source"]


class MembershipCitationFilter(django_filters.FilterSet):
    membership = IdFilter(field_name="membership_id", label="Membership (id)")
    source = KnownSlugFilter(field_name="source__slug", label="Source (slug)", model=Source)

    class Meta:
        model = MembershipCitation
        fields = ["membership", "source"]
