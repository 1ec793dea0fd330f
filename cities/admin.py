"""Curation admin for the places and for the reference data every claim cites.

The building blocks every curated model shares (verification actions, the "source" and
"date" filters, citation inlines, count columns) live here as well: partnerships imports
cities, never the reverse. The city admin itself lives in partnerships/admin.py, because it
shows the city's ties.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.widgets import (
    AutocompleteSelect,
)
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q, Value
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django_countries import countries
from simple_history.admin import SimpleHistoryAdmin
from simple_history.utils import bulk_update_with_history

from . import dates, editlock
from .models import (
    AlternateName,
    City,
    CityCitation,
    SearchName,
    SlugRedirect,
    Source,
    Theme,
    Verification,
    count_of,
)
from .text import fold

SOURCE_REQUIRED = "Choose the source this claim cites."
CURATION_FIELDSET = (
    "Curation",
    {"fields": ["verification", "curator_notes", ("created_at", "updated_at")]},
)


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


class HasSourceFilter(admin.SimpleListFilter):
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
    """Cities lacking coordinates or a country, or whose place the gazetteer questions: the
    gaps the map and the filters feel first."""

    title = "missing or questioned"
    parameter_name = "missing"

    def lookups(self, request, model_admin):
        return [
            ("coordinates", "No coordinates"),
            ("country", "No country"),
            ("location_check", "Place to check against the gazetteer"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "coordinates":
            return queryset.filter(Q(latitude__isnull=True) | Q(longitude__isnull=True))
        if self.value() == "country":
            return queryset.filter(country="")
        if self.value() == "location_check":
            return queryset.exclude(location_flag="")
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


class CitationFormSet(BaseInlineFormSet):
    default_error_messages = {
        "too_few_forms": "Cite at least one source: the atlas shows no claim without one. "
        "Pick the source, or add it with the + beside the list.",
    }


class CitationInline(PreloadedInline):
    """The sources a claim cites, each with where in the source (the locator). A new claim
    the public pages show (`required`) cannot be saved without one; the form opens with a
    row to fill in."""

    formset = CitationFormSet
    fields = ("source", "locator", "quote")
    autocomplete_fields = ("source",)
    verbose_name = "citation"
    verbose_name_plural = "sources cited"
    required = False

    def get_extra(self, request, obj=None, **kwargs):
        return 0 if obj is not None or self.required else 1

    def get_min_num(self, request, obj=None, **kwargs):
        return 1 if obj is None and self.required else 0

    def get_formset(self, request, obj=None, **kwargs):
        kwargs.setdefault("validate_min", obj is None and self.required)
        return super().get_formset(request, obj, **kwargs)

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

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            # A stale form is refused with the other researcher's change shown (editlock).
            kwargs.setdefault("form", editlock.with_edit_version(self.form))
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or editlock.FIELD in flatten_fieldsets(fieldsets):
            return fieldsets
        (name, options), *rest = fieldsets
        return [(name, {**options, "fields": [*options["fields"], editlock.FIELD]}), *rest]

    @admin.display(description="sources", ordering="source_count")
    def sources(self, obj):
        return obj.source_count

    def response_post_save_add(self, request, obj):
        return self.show_saved(request, obj)

    def response_post_save_change(self, request, obj):
        return self.show_saved(request, obj)

    def show_saved(self, request, obj):
        """After "Save", the record just saved rather than the whole list, where a new tie
        would sit behind tens of thousands of undated ones."""
        opts = obj._meta
        return HttpResponseRedirect(
            reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change",
                args=[obj.pk],
                current_app=self.admin_site.name,
            )
        )

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


# Cities and reference data -----------------------------------------------------------------


class AlternateNameInline(PreloadedInline):
    model = AlternateName
    fields = ("name", "language", "kind")


class CityCitationInline(CitationInline):
    model = CityCitation


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the atlas derives (from the gazetteer, from merges and renames): looked at,
    never typed in."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SearchName)
class SearchNameAdmin(ReadOnlyAdmin):
    """Names a city is found by in search and matching, from the gazetteer; not shown as
    names the atlas asserts."""

    list_display = ("name", "city")
    list_select_related = ("city",)
    search_fields = ("folded", "city__name")


@admin.register(SlugRedirect)
class SlugRedirectAdmin(ReadOnlyAdmin):
    """Addresses that once named a city and now redirect to it (after a merge or a rename)."""

    list_display = ("slug", "city", "created_at")
    list_select_related = ("city",)
    search_fields = ("slug", "city__name")


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
