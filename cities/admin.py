"""Curation admin for the places and for the reference data every claim cites.

The building blocks every curated model shares (verification actions, the "source" and
"date" filters, citation inlines, count columns) live here as well: partnerships imports
cities, never the reverse. partnerships/admin.py extends CityAdmin with the city's ties.
"""

import copy

from django import forms, urls
from django.contrib import admin
from django.contrib.admin.widgets import (
    AutocompleteMixin,
    AutocompleteSelect,
    get_select2_language,
)
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django_countries import countries
from simple_history.admin import SimpleHistoryAdmin
from simple_history.utils import bulk_update_with_history

from . import dates, gazetteer
from .models import AlternateName, City, CityCitation, Source, Theme, Verification
from .text import fold

SOURCE_REQUIRED = "Choose the source this claim cites."
CURATION_FIELDSET = (
    "Curation",
    {"fields": ["verification", "curator_notes", ("created_at", "updated_at")]},
)


def count_of(model, field):
    """The number of `model` rows whose `field` points at the outer row.

    A subquery rather than Count(): it needs no GROUP BY, so several counts can sit beside
    list_select_related in a single changelist query.
    """
    rows = (
        model._default_manager.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


def citation_relation(model):
    """The citation table of a claim model and the name of its foreign key to the claim."""
    rel = model._meta.get_field("citations")
    return rel.related_model, rel.field.name


def folded_search(queryset, found, search_term, *paths):
    """Widen the admin's search to rows whose city at one of `paths` matches `search_term`
    once accents, case and script are folded (Одеса finds Odesa)."""
    if not fold(search_term):
        return found
    matching = City.objects.search(search_term).values("pk")
    by_city = Q()
    for path in paths:
        by_city |= Q(**{f"{path}__in": matching})
    return queryset.filter(Q(pk__in=found.values("pk")) | by_city)


# Filters -----------------------------------------------------------------------------------


class SourceFilter(admin.SimpleListFilter):
    """Claims citing at least one source, or none yet: the queue of claims to source."""

    title = "source"
    parameter_name = "sourced"

    def lookups(self, request, model_admin):
        return [("yes", "Has a source"), ("no", "No source yet")]

    def queryset(self, request, queryset):
        citation_model, claim = citation_relation(queryset.model)
        cited = Exists(citation_model.objects.filter(**{claim: OuterRef("pk")}))
        if self.value() == "yes":
            return queryset.filter(cited)
        if self.value() == "no":
            return queryset.filter(~cited)
        return queryset


class DateKnownFilter(admin.SimpleListFilter):
    """Whether an EDTF date field is known or left empty because no source gives it."""

    field = None

    @classmethod
    def on(cls, field, title="date"):
        return type(
            f"{field.title()}KnownFilter",
            (cls,),
            {"field": field, "title": title, "parameter_name": f"{field}_known"},
        )

    def lookups(self, request, model_admin):
        return [("yes", "Date known"), ("no", "Date unknown")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(**{self.field: ""})
        if self.value() == "no":
            return queryset.filter(**{self.field: ""})
        return queryset


class CountryFilter(admin.SimpleListFilter):
    """Countries that some city in the atlas lies in, rather than all 250 of ISO 3166."""

    title = "country"
    parameter_name = "country"
    paths = ("country",)

    @classmethod
    def on(cls, *paths, title="country"):
        return type("CountryFilter", (cls,), {"paths": paths, "title": title})

    def lookups(self, request, model_admin):
        codes = City.objects.exclude(country="").order_by().values_list("country", flat=True)
        choices = ((code, countries.name(code)) for code in codes.distinct())
        return sorted(choices, key=lambda choice: choice[1])

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        where = Q()
        for path in self.paths:
            where |= Q(**{path: self.value()})
        return queryset.filter(where)


class MissingFilter(admin.SimpleListFilter):
    """Cities lacking coordinates or a country: the gaps the map and the filters feel first."""

    title = "missing"
    parameter_name = "missing"

    def lookups(self, request, model_admin):
        return [("coordinates", "No coordinates"), ("country", "No country")]

    def queryset(self, request, queryset):
        if self.value() == "coordinates":
            return queryset.filter(Q(latitude__isnull=True) | Q(longitude__isnull=True))
        if self.value() == "country":
            return queryset.filter(country="")
        return queryset


# Inlines -----------------------------------------------------------------------------------


class PreloadedAutocompleteSelect(AutocompleteSelect):
    """An autocomplete that shows the related object its row already holds.

    The stock widget looks the selected value up again, one query per inline row; the
    inline's queryset loads these objects with select_related instead.
    """

    preloaded = None

    def optgroups(self, name, value, attr=None):
        obj = self.preloaded
        selected = {str(v) for v in value if str(v) not in self.choices.field.empty_values}
        if obj is None or selected != {str(obj.pk)}:
            return super().optgroups(name, value, attr)
        options = [] if self.is_required else [self.create_option(name, "", "", False, 0)]
        label = self.choices.field.label_from_instance(obj)
        options.append(self.create_option(name, obj.pk, label, selected, len(options)))
        return [(None, options, 0)]


class PreloadingForm(forms.ModelForm):
    """Hands the instance's loaded related objects to its autocomplete widgets."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            widget = getattr(field.widget, "widget", field.widget)
            if isinstance(widget, PreloadedAutocompleteSelect):
                model_field = self.instance._meta.get_field(name)
                if model_field.is_cached(self.instance):
                    widget.preloaded = getattr(self.instance, name)


class PreloadedInline(admin.TabularInline):
    """An inline whose autocompletes cost no query per row, whatever the number of rows."""

    extra = 0
    form = PreloadingForm
    # Related objects a row shows besides its autocompletes (in __str__, say).
    also_select_related = ()
    formfield_overrides = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 2})}}

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = PreloadedAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_queryset(self, request):
        fks = [
            name
            for name in self.get_autocomplete_fields(request)
            if self.model._meta.get_field(name).many_to_one
        ]
        return super().get_queryset(request).select_related(*fks, *self.also_select_related)


class CitationInline(PreloadedInline):
    """The sources a claim cites, each with where in the source (the locator)."""

    fields = ("source", "locator", "quote")
    autocomplete_fields = ("source",)
    verbose_name = "citation"
    verbose_name_plural = "sources cited"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "source":
            field.error_messages["required"] = SOURCE_REQUIRED
        return field


# Base admins -------------------------------------------------------------------------------


class CuratedAdmin(SimpleHistoryAdmin):
    """A curated record: verification state, bulk verification, edit history, source count."""

    actions = ["mark_verified", "mark_disputed"]
    readonly_fields = ("created_at", "updated_at")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_per_page = 50

    def get_queryset(self, request):
        citation_model, claim = citation_relation(self.model)
        return super().get_queryset(request).annotate(source_count=count_of(citation_model, claim))

    @admin.display(description="sources", ordering="source_count")
    def sources(self, obj):
        return obj.source_count

    @admin.action(description="Mark selected as verified", permissions=["change"])
    def mark_verified(self, request, queryset):
        self.set_verification(request, queryset, Verification.VERIFIED)

    @admin.action(description="Mark selected as disputed", permissions=["change"])
    def mark_disputed(self, request, queryset):
        self.set_verification(request, queryset, Verification.DISPUTED)

    def set_verification(self, request, queryset, state):
        """Set `verification` on every selected row, with one history record each."""
        manager = self.model._default_manager
        with transaction.atomic():
            # Re-read by primary key: the changelist queryset carries annotations and joins.
            rows = list(manager.filter(pk__in=queryset.values("pk")).exclude(verification=state))
            now = timezone.now()
            for row in rows:
                row.verification, row.updated_at = state, now
            bulk_update_with_history(
                rows,
                self.model,
                ["verification", "updated_at"],
                default_user=request.user,
                default_change_reason=f"Marked as {state.label.lower()} from the list",
            )
        opts = self.model._meta
        noun = opts.verbose_name if len(rows) == 1 else opts.verbose_name_plural
        self.message_user(request, f"{len(rows)} {noun} marked as {state.label.lower()}.")


class CitationAdmin(SimpleHistoryAdmin):
    """One table of citations, for finding every claim that cites a source at a place."""

    list_filter = ("source__kind",)
    readonly_fields = ("created_at",)

    def get_list_display(self, request):
        return (self.model.claim_field, "source", "locator", "created_at")

    def get_autocomplete_fields(self, request):
        return (self.model.claim_field, "source")

    def get_search_fields(self, request):
        return ("source__title", "source__slug", "locator", "quote", *self.claim_search_fields)

    claim_search_fields = ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "source":
            field.error_messages["required"] = SOURCE_REQUIRED
        return field


# The gazetteer pick ------------------------------------------------------------------------


class GazetteerSelect(forms.Select):
    """A search-as-you-type list of GeoNames places, with the admin's own select2.

    The admin's autocomplete script needs only the class and the data attributes; the
    results come from CityAdmin's gazetteer view rather than from a model's autocomplete.
    """

    media = AutocompleteMixin.media

    def __init__(self, url="", attrs=None):
        super().__init__(attrs)
        self.url = url
        self.i18n_name = get_select2_language()

    def build_attrs(self, base_attrs, extra_attrs=None):
        attrs = super().build_attrs(base_attrs, extra_attrs)
        attrs.update(
            {
                "class": "admin-autocomplete",
                "data-ajax--cache": "true",
                "data-ajax--delay": 250,
                "data-ajax--type": "GET",
                "data-ajax--url": self.url,
                "data-theme": "admin-autocomplete",
                "data-allow-clear": "true",
                "data-placeholder": "Type a name in any spelling or script",
                "lang": self.i18n_name,
                "style": "width: 32em",
            }
        )
        return attrs

    def optgroups(self, name, value, attr=None):
        # The only option is the place chosen, shown again when the form comes back.
        options = [self.create_option(name, "", "", False, 0)]
        entry = gazetteer_entry(value[0]) if value and value[0] else None
        if entry is not None:
            options.append(self.create_option(name, entry.geonames_id, label(entry), True, 1))
        return [(None, options, 0)]


def gazetteer_entry(geonames_id):
    """The GeoNames place with this id, or None. A scan of the table: it runs once per save
    or form error, not per keystroke."""
    try:
        geonames_id = int(geonames_id)
    except (TypeError, ValueError):
        return None
    return next((e for e in gazetteer.entries() if e.geonames_id == geonames_id), None)


def label(entry):
    """How a place reads in the pick-list: enough to tell apart two places of one name."""
    return (
        f"{entry.name}, {countries.name(entry.country) or entry.country} · "
        f"{entry.population:,} inhabitants · {entry.latitude:.3f}, {entry.longitude:.3f}"
    )


class CityForm(forms.ModelForm):
    """The city form, with a pick from the offline gazetteer that fills in the name, country,
    coordinates and GeoNames id, so that curators need not type coordinates."""

    gazetteer_place = forms.IntegerField(
        label="Pick from the gazetteer",
        required=False,
        help_text="GeoNames places of more than 15,000 inhabitants. Picking one sets the "
        "country, coordinates and GeoNames id (and the name when it is empty), and cites "
        "GeoNames for them.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "name" in self.fields and "gazetteer_place" in self.fields:
            # A pick fills in an empty name; clean() asks for one when there is neither.
            self.fields["name"].required = False

    def clean(self):
        data = super().clean()
        picked = data.get("gazetteer_place")
        if picked is None:
            if "name" in self.fields and not data.get("name") and "name" not in self.errors:
                self.add_error("name", "Give the city's name, or pick it from the gazetteer.")
            return data
        entry = gazetteer_entry(picked)
        if entry is None:
            self.add_error("gazetteer_place", "There is no such place in the gazetteer.")
            return data
        taken = City.objects.filter(geonames_id=entry.geonames_id).exclude(pk=self.instance.pk)
        if taken.exists():
            self.add_error(
                "gazetteer_place",
                f"{entry.name} is in the atlas already, as {taken.first()}: edit that city, "
                "or merge the two.",
            )
            return data
        data["name"] = data.get("name") or entry.name
        data.update(
            country=entry.country,
            latitude=entry.latitude,
            longitude=entry.longitude,
            geonames_id=entry.geonames_id,
        )
        self.gazetteer_entry = entry
        return data

    def _post_clean(self):
        # The values the pick set must reach the instance even where the fieldset left them
        # out; construct_instance copies only the form's own fields.
        super()._post_clean()
        entry = getattr(self, "gazetteer_entry", None)
        if entry is not None:
            for name in ("country", "latitude", "longitude", "geonames_id"):
                setattr(self.instance, name, self.cleaned_data[name])


def cite_gazetteer(city, entry, user):
    """Cite GeoNames for what a pick set, creating its Source the first time."""
    reason = f"Picked GeoNames {entry.geonames_id} from the gazetteer"
    source = Source.objects.filter(slug=gazetteer.SOURCE["slug"]).first()
    if source is None:
        source = Source(**gazetteer.SOURCE)
        source._history_user, source._change_reason = user, reason
        source.save()
    citation, created = CityCitation.objects.get_or_create(
        city=city, source=source, locator=f"geonames {entry.geonames_id}"
    )
    return citation if created else None


# Cities and reference data -----------------------------------------------------------------


class AlternateNameInline(PreloadedInline):
    model = AlternateName
    fields = ("name", "language", "kind")


class CityCitationInline(CitationInline):
    model = CityCitation


@admin.register(City)
class CityAdmin(CuratedAdmin):
    form = CityForm
    list_display = ("name", "country", "sources", "verification", "updated_at")
    list_select_related = ()
    list_filter = (CountryFilter, "verification", SourceFilter, MissingFilter)
    search_fields = ("name", "alternate_names__name", "slug", "wikidata_id")
    autocomplete_fields = ("themes",)
    prepopulated_fields = {"slug": ("name",)}
    inlines = [AlternateNameInline, CityCitationInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "country", "subdivision"]}),
        (
            "Facts",
            {
                "fields": [
                    ("latitude", "longitude"),
                    ("population", "population_year"),
                    ("wikidata_id", "geonames_id"),
                    "website",
                ]
            },
        ),
        ("Profile", {"fields": ["summary", "approach", "themes"]}),
        CURATION_FIELDSET,
    ]

    def get_search_results(self, request, queryset, search_term):
        found, _ = super().get_search_results(request, queryset, search_term)
        # The subquery form never repeats a city matched by several alternate names.
        return folded_search(queryset, found, search_term, "pk"), False

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not gazetteer.available():
            return fieldsets
        pick = (
            "Gazetteer",
            {
                "fields": ["gazetteer_place"],
                "description": "Pick the real place rather than typing its coordinates.",
            },
        )
        return [pick, *fieldsets]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if not gazetteer.available():
            del form.base_fields["gazetteer_place"]
            return form
        # A copy: the declared field is shared by every form class made from CityForm.
        field = copy.copy(form.base_fields["gazetteer_place"])
        field.widget = GazetteerSelect(reverse(f"{self.admin_site.name}:cities_city_gazetteer"))
        form.base_fields["gazetteer_place"] = field
        return form

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        entry = getattr(form, "gazetteer_entry", None)
        if entry is not None:
            cite_gazetteer(obj, entry, request.user)

    def get_urls(self):
        gazetteer_url = urls.path(
            "gazetteer/",
            self.admin_site.admin_view(self.gazetteer_view),
            name="cities_city_gazetteer",
        )
        return [gazetteer_url, *super().get_urls()]

    def gazetteer_view(self, request):
        """Places for the pick-list, in the JSON the admin's select2 reads."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        found = gazetteer.search(request.GET.get("term", ""), limit=20)
        in_atlas = dict(
            City.objects.filter(geonames_id__in=[e.geonames_id for e in found]).values_list(
                "geonames_id", "name"
            )
        )
        results = []
        for entry in found:
            text = label(entry)
            if entry.geonames_id in in_atlas:
                text += f" — in the atlas as {in_atlas[entry.geonames_id]}"
            results.append(
                {
                    "id": entry.geonames_id,
                    "text": text,
                    "name": entry.name,
                    "country": entry.country,
                    "latitude": entry.latitude,
                    "longitude": entry.longitude,
                }
            )
        return JsonResponse({"results": results, "pagination": {"more": False}})

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        field = super().formfield_for_choice_field(db_field, request, **kwargs)
        if db_field.name == "country":
            # The model's message names the expected form; the form's stock one does not.
            field.error_messages["invalid_choice"] = db_field.error_messages["invalid_choice"]
        return field


@admin.register(AlternateName)
class AlternateNameAdmin(SimpleHistoryAdmin):
    list_display = ("name", "city", "language", "kind")
    list_select_related = ("city",)
    list_filter = ("kind", CountryFilter.on("city__country"))
    search_fields = ("name", "city__name", "language")
    autocomplete_fields = ("city",)


@admin.register(CityCitation)
class CityCitationAdmin(CitationAdmin):
    list_select_related = ("city", "source")
    claim_search_fields = ("city__name",)


@admin.register(Source)
class SourceAdmin(SimpleHistoryAdmin):
    list_display = ("title", "kind", "published", "container_title", "citation_count")
    list_filter = ("kind", DateKnownFilter.on("issued", "date published"))
    search_fields = ("title", "slug", "authors", "container_title", "publisher", "url")
    readonly_fields = ("created_at", "updated_at")
    formfield_overrides = CuratedAdmin.formfield_overrides
    fieldsets = [
        (None, {"fields": ["slug", "kind", "title", "authors"]}),
        (
            "Publication",
            {"fields": ["container_title", "publisher", "issued", "url", "accessed", "licence"]},
        ),
        (None, {"fields": ["note", ("created_at", "updated_at")]}),
    ]

    def get_queryset(self, request):
        # Every claim kind has its own citation table; count across all of them.
        citations = [
            rel
            for rel in Source._meta.related_objects
            if rel.one_to_many and hasattr(rel.related_model, "claim_field")
        ]
        total = sum((count_of(rel.related_model, rel.field.name) for rel in citations), Value(0))
        return super().get_queryset(request).annotate(citation_count=total)

    @admin.display(description="published", ordering="issued_lower")
    def published(self, obj):
        return dates.humanize(obj.issued)

    @admin.display(description="cited by", ordering="citation_count")
    def citation_count(self, obj):
        return obj.citation_count


@admin.register(Theme)
class ThemeAdmin(SimpleHistoryAdmin):
    list_display = ("name", "slug", "description", "tagged")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        through = [rel.through for rel in Theme._meta.related_objects if rel.many_to_many]
        total = sum((count_of(model, "theme") for model in through), Value(0))
        return super().get_queryset(request).annotate(tag_count=total)

    @admin.display(description="tagged on", ordering="tag_count")
    def tagged(self, obj):
        return obj.tag_count
