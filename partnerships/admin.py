"""Curation admin for what ties places and organizations: ties, memberships, programmes,
events and stated figures, each with the sources it cites."""

import copy
from functools import partial

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from cities import gazetteer
from cities.admin import (
    CURATION_FIELDSET,
    AlternateNameInline,
    CitationAdmin,
    CitationInline,
    CityCitationInline,
    CountryFilter,
    CuratedAdmin,
    DateKnownFilter,
    HasSourceFilter,
    MissingFilter,
    PreloadedInline,
    count_of,
    folded_search,
)
from cities.dates import humanize, span
from cities.forms import CityForm, GazetteerSelect, cite_gazetteer, label
from cities.models import City, NotDuplicate, SlugRedirect

# admin_keys and admin_corrections register their admins on import.
from . import admin_corrections, admin_keys, admin_members, admin_views  # noqa: F401
from .forms import TieForm
from .models import (
    Event,
    EventCitation,
    Initiative,
    InitiativeCitation,
    Membership,
    MembershipCitation,
    Organization,
    OrganizationCitation,
    OrganizationKind,
    StatedFigure,
    StatedFigureCitation,
    Tie,
    TieCitation,
    kind_stated_reason,
    record_tie,
    tie_count,
)


def admin_urls(model_admin, *routes):
    """URL patterns for extra views of `model_admin`: (route, view, name) each, the view
    called as view(request, model_admin) behind the admin's login check."""
    site = model_admin.admin_site
    return [
        path(route, site.admin_view(partial(view, model_admin=model_admin)), name=name)
        for route, view, name in routes
    ]


def period(start, end):
    """'1965', '1965–1990' or '?–1990': when a tie or membership held, in a narrow column."""
    return span(start, end, unknown="?" if end else "date unknown", dash="–")


# Citation inlines, one per kind of claim ---------------------------------------------------


class TieCitationInline(CitationInline):
    model = TieCitation
    required = True


class MembershipCitationInline(CitationInline):
    model = MembershipCitation
    required = True


class InitiativeCitationInline(CitationInline):
    model = InitiativeCitation
    required = True


class EventCitationInline(CitationInline):
    model = EventCitation
    required = True


class StatedFigureCitationInline(CitationInline):
    model = StatedFigureCitation
    required = True


class OrganizationCitationInline(CitationInline):
    model = OrganizationCitation


# Cities, seen from their ties and memberships ----------------------------------------------


class CityMembershipInline(PreloadedInline):
    model = Membership
    fk_name = "city"
    fields = ("organization", "role", "since", "until", "verification")
    autocomplete_fields = ("organization",)
    # The change link shows the membership's __str__, which names the member city.
    also_select_related = ("city",)
    show_change_link = True
    verbose_name_plural = "memberships in organizations"


@admin.register(City)
class CityAdmin(CuratedAdmin):
    """Cities, with a pick from the offline gazetteer, their ties from both ends, their
    memberships, and the duplicates queue."""

    form = CityForm
    list_display = ("name", "country", "ties", "sources", "verification", "updated_at")
    readonly_fields = (*CuratedAdmin.readonly_fields, "ties_table")
    list_select_related = ()
    list_filter = (CountryFilter, "verification", HasSourceFilter, MissingFilter)
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
        if obj is not None:
            ties = (
                "Ties",
                {
                    "fields": ["ties_table"],
                    "description": "Every tie of this city, whichever end it was entered at.",
                },
            )
            fieldsets = [*fieldsets[:-1], ties, fieldsets[-1]]
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

    def get_inlines(self, request, obj):
        # A membership names its city, so it can be entered once the city exists.
        inlines = super().get_inlines(request, obj)
        return [*inlines, CityMembershipInline] if obj else inlines

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(tie_count=tie_count())

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
        if change and "slug" in form.changed_data:
            # The old address keeps leading here: people cite the atlas's URLs.
            SlugRedirect.objects.record([(obj, form.initial.get("slug"))])
        entry = getattr(form, "gazetteer_entry", None)
        if entry is not None:
            cite_gazetteer(obj, entry, request.user)

    def get_urls(self):
        extra = admin_urls(
            self,
            ("duplicates/", admin_views.duplicates_view, "cities_city_duplicates"),
            ("duplicates/merge/", admin_views.merge_view, "cities_city_merge"),
            (
                "duplicates/not-duplicates/",
                admin_views.not_duplicates_view,
                "cities_city_not_duplicates",
            ),
        )
        gazetteer_url = path(
            "gazetteer/",
            self.admin_site.admin_view(self.gazetteer_view),
            name="cities_city_gazetteer",
        )
        return [gazetteer_url, *extra, *super().get_urls()]

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

    @admin.display(description="ties", ordering="tie_count")
    def ties(self, obj):
        return obj.tie_count

    @admin.display(description="ties")
    def ties_table(self, obj):
        # An inline follows one foreign key only; a tie may name this city at either end.
        ties = (
            Tie.objects.for_city(obj)
            .for_list()
            .annotate(source_count=count_of(TieCitation, "tie"))
            .order_by("kind", "start_lower", "id")
        )
        add_url = reverse("admin:partnerships_tie_add") + f"?city_a={obj.pk}"
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
            '<td><a href="{}">edit tie</a></td></tr>',
            (
                (
                    reverse("admin:cities_city_change", args=[tie.partner_of(obj).pk]),
                    tie.partner_of(obj),
                    tie.get_kind_display(),
                    tie.get_status_display(),
                    period(tie.start, tie.end),
                    tie.source_count,
                    reverse("admin:partnerships_tie_change", args=[tie.pk]),
                )
                for tie in ties
            ),
        )
        if not rows:
            return format_html('No ties recorded yet. <a href="{}">Add a tie</a>', add_url)
        return format_html(
            '<table class="city-ties"><thead><tr><th>partner</th><th>kind</th><th>status</th>'
            "<th>date</th><th>sources</th><th></th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">Add a tie</a></p>',
            rows,
            add_url,
        )


@admin.register(NotDuplicate)
class NotDuplicateAdmin(admin.ModelAdmin):
    """Pairs of the duplicates queue that a curator judged to be two places: who, when and
    why. Recorded from the queue, never edited; deleting one (Editors) puts the pair back."""

    list_display = ("pair", "reason", "decided_by", "decided_at")
    list_select_related = ("city", "other", "decided_by")
    search_fields = ("city__name", "other__name", "reason")
    fields = readonly_fields = ("city", "other", "reason", "decided_by", "decided_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="pair", ordering="city__name")
    def pair(self, obj):
        return str(obj)


# Organizations and memberships -------------------------------------------------------------


class MembershipInline(PreloadedInline):
    model = Membership
    fk_name = "organization"
    fields = ("city", "member_organization", "role", "since", "until", "verification")
    autocomplete_fields = ("city", "member_organization")
    also_select_related = ("organization",)
    show_change_link = True


@admin.register(Organization)
class OrganizationAdmin(CuratedAdmin):
    list_display = ("name", "kind", "parent", "members", "sources", "verification")
    list_select_related = ("parent",)
    list_filter = (
        "kind",
        "verification",
        HasSourceFilter,
        DateKnownFilter.on("founded", "founding date"),
    )
    search_fields = ("name", "acronym", "slug")
    autocomplete_fields = ("parent", "headquarters", "themes")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline, OrganizationCitationInline]
    fieldsets = [
        (None, {"fields": ["name", "acronym", "slug", "kind", "parent"]}),
        ("Facts", {"fields": ["founded", "headquarters", "website"]}),
        ("Profile", {"fields": ["summary", "themes"]}),
        CURATION_FIELDSET,
    ]

    def get_queryset(self, request):
        members = count_of(Membership, "organization")
        return super().get_queryset(request).annotate(member_count=members)

    @admin.display(description="members", ordering="member_count")
    def members(self, obj):
        return obj.member_count


class OrganizationKindFilter(admin.SimpleListFilter):
    title = "organization kind"
    parameter_name = "organization_kind"

    def lookups(self, request, model_admin):
        return OrganizationKind.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(organization__kind=self.value())
        return queryset


@admin.register(Membership)
class MembershipAdmin(CuratedAdmin):
    list_display = ("member", "organization", "role", "held", "sources", "verification")
    list_select_related = ("organization", "city", "member_organization")
    list_filter = (
        "role",
        OrganizationKindFilter,
        CountryFilter.on("city__country"),
        "verification",
        HasSourceFilter,
        DateKnownFilter.on("since", "date joined"),
    )
    search_fields = (
        "organization__name",
        "organization__acronym",
        "city__name",
        "member_organization__name",
    )
    autocomplete_fields = ("organization", "city", "member_organization")
    inlines = [MembershipCitationInline]
    fieldsets = [
        (None, {"fields": ["organization", "city", "member_organization", "role"]}),
        ("Dates", {"fields": ["since", "until"]}),
        (None, {"fields": ["summary"]}),
        CURATION_FIELDSET,
    ]

    def get_queryset(self, request):
        # __str__ names the member and the organization; autocomplete lists call it too.
        return super().get_queryset(request).select_related(*self.list_select_related)

    def get_urls(self):
        extra = admin_urls(
            self,
            ("import/", admin_members.import_view, "partnerships_membership_import"),
            (
                "import/confirm/",
                admin_members.import_confirm_view,
                "partnerships_membership_import_confirm",
            ),
            (
                "import/cancel/",
                admin_members.import_cancel_view,
                "partnerships_membership_import_cancel",
            ),
            (
                "import/rejected.csv",
                admin_members.import_rejected_view,
                "partnerships_membership_import_rejected",
            ),
        )
        return [*extra, *super().get_urls()]

    @admin.display(description="member", ordering="city__name")
    def member(self, obj):
        return obj.member

    @admin.display(description="dates", ordering="since_lower")
    def held(self, obj):
        return period(obj.since, obj.until)


# Ties --------------------------------------------------------------------------------------


@admin.register(Tie)
class TieAdmin(CuratedAdmin):
    form = TieForm
    list_display = ("cities", "kind", "status", "dates", "sources", "verification")
    list_select_related = ("city_a", "city_b")
    list_filter = (
        "kind",
        "status",
        CountryFilter.on("city_a__country", "city_b__country"),
        "verification",
        HasSourceFilter,
        DateKnownFilter.on("start", "start date"),
        "date_basis",
        admin_views.ImportedFilter,
    )
    search_fields = ("city_a__name", "city_b__name", "city_a__slug", "city_b__slug")
    autocomplete_fields = ("city_a", "city_b", "topics")
    inlines = [TieCitationInline]
    fieldsets = [
        (None, {"fields": ["city_a", "city_b", "kind", "status"]}),
        ("Dates", {"fields": ["start", "end", "date_basis"]}),
        ("About", {"fields": ["topics", "summary"]}),
        CURATION_FIELDSET,
    ]

    def get_queryset(self, request):
        # __str__ names both cities; autocomplete lists call it too.
        return super().get_queryset(request).select_related(*self.list_select_related)

    def get_urls(self):
        extra = admin_urls(
            self,
            ("import/", admin_views.import_view, "partnerships_tie_import"),
            ("import/confirm/", admin_views.import_confirm_view, "partnerships_tie_import_confirm"),
            ("import/cancel/", admin_views.import_cancel_view, "partnerships_tie_import_cancel"),
            (
                "import/rejected.csv",
                admin_views.import_rejected_view,
                "partnerships_tie_import_rejected",
            ),
        )
        return [*extra, *super().get_urls()]

    def get_search_results(self, request, queryset, search_term):
        found, _ = super().get_search_results(request, queryset, search_term)
        return folded_search(queryset, found, search_term, "city_a", "city_b"), False

    @admin.display(description="tie", ordering="city_a__name")
    def cities(self, obj):
        return f"{obj.city_a} – {obj.city_b}"

    @admin.display(description="dates", ordering="start_lower")
    def dates(self, obj):
        return period(obj.start, obj.end)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        else:
            # A sister, partner or friendship tie may state the kind of the pair's twinning of
            # unstated kind instead of adding a tie: record_tie() decides, as for the API.
            obj.kind_stated = record_tie(obj, user=request.user)
        if not change or {"city_a", "city_b", "kind"} & set(form.changed_data):
            obj.other_kinds = list(obj.same_pair())

    def save_related(self, request, form, formsets, change):
        if not getattr(form.instance, "kind_stated", None):
            return super().save_related(request, form, formsets, change)
        # The tie has topics and citations of its own: add to them rather than replace them.
        citations = [c for formset in formsets for c in formset.save(commit=False)]
        form.instance.add_claims(form.cleaned_data.get("topics", ()), citations)

    def log_addition(self, request, obj, message):
        stated = getattr(obj, "kind_stated", None)
        if stated is None:
            return super().log_addition(request, obj, message)
        return self.log_change(request, obj, kind_stated_reason(stated.previous, obj.kind))

    def response_add(self, request, obj, post_url_continue=None):
        stated = getattr(obj, "kind_stated", None)
        if stated is None or IS_POPUP_VAR in request.POST:
            response = super().response_add(request, obj, post_url_continue)
        else:
            url = reverse("admin:partnerships_tie_change", args=[obj.pk])
            self.message_user(
                request,
                format_html(
                    '<a href="{}">{}</a> was already in the atlas as a twinning of unstated '
                    "kind: its kind is now stated as {}, and what you entered was added to it "
                    "(sources, topics, and fields it left empty) instead of a second tie.{}",
                    url,
                    f"{obj.city_a} – {obj.city_b}",
                    obj.get_kind_display().lower(),
                    self.kept_values(obj, stated.kept),
                ),
                messages.SUCCESS,
            )
            response = HttpResponseRedirect(url)
        self.warn_of_other_kinds(request, obj)
        return response

    def response_change(self, request, obj):
        response = super().response_change(request, obj)
        self.warn_of_other_kinds(request, obj)
        return response

    @staticmethod
    def kept_values(tie, kept):
        """' It kept its own start (1959; you entered 1960).' for the fields it had."""
        if not kept:
            return ""
        parts = []
        for name, entered in kept.items():
            field = tie._meta.get_field(name)
            shown = dict(field.flatchoices) if field.choices else {}
            current = getattr(tie, name)
            parts.append(
                f"{field.verbose_name} ({shown.get(current, current)}; you entered "
                f"{shown.get(entered, entered)})"
            )
        return " It kept its own " + ", ".join(parts) + "."

    def warn_of_other_kinds(self, request, obj):
        """A pair may hold ties of several kinds (a memorandum beside a sister tie), but a
        second kind is often the same tie named differently: say so, once, after saving."""
        others = getattr(obj, "other_kinds", None)
        if not others:
            return
        links = format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse("admin:partnerships_tie_change", args=[t.pk]), t) for t in others),
        )
        self.message_user(
            request,
            format_html(
                "These two cities also have {}. Check that this {} tie is a separate agreement, "
                "not the same one under another kind; if it is the same, keep one and delete "
                "the other.",
                links,
                obj.get_kind_display().lower(),
            ),
            messages.WARNING,
        )


# Initiatives, events and stated figures ----------------------------------------------------


@admin.register(Initiative)
class InitiativeAdmin(CuratedAdmin):
    list_display = ("name", "kind", "lead", "dates", "sources", "verification")
    list_select_related = ("lead_city", "lead_organization")
    list_filter = (
        "kind",
        "verification",
        HasSourceFilter,
        DateKnownFilter.on("start", "start date"),
    )
    search_fields = ("name", "slug", "summary")
    autocomplete_fields = (
        "lead_city", "lead_organization", "partner_cities", "partner_organizations", "themes",
    )  # fmt: skip
    prepopulated_fields = {"slug": ("name",)}
    inlines = [InitiativeCitationInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "kind", "lead_city", "lead_organization"]}),
        ("Partners", {"fields": ["partner_cities", "partner_organizations"]}),
        ("Dates", {"fields": ["start", "end"]}),
        ("About", {"fields": ["summary", "objectives", "website", "themes"]}),
        CURATION_FIELDSET,
    ]

    @admin.display(description="led by")
    def lead(self, obj):
        return obj.lead_city or obj.lead_organization

    @admin.display(description="dates", ordering="start_lower")
    def dates(self, obj):
        return period(obj.start, obj.end)


@admin.register(Event)
class EventAdmin(CuratedAdmin):
    list_display = ("title", "kind", "when", "city", "sources", "verification")
    list_select_related = ("city",)
    list_filter = (
        "kind",
        CountryFilter.on("city__country"),
        "verification",
        HasSourceFilter,
        DateKnownFilter.on("date"),
    )
    search_fields = ("title", "slug", "summary", "city__name")
    autocomplete_fields = ("city", "partner_city", "organization", "initiative", "tie", "themes")
    prepopulated_fields = {"slug": ("title",)}
    inlines = [EventCitationInline]
    fieldsets = [
        (None, {"fields": ["title", "slug", "kind", "date"]}),
        ("Who", {"fields": ["city", "partner_city", "organization", "initiative", "tie"]}),
        ("About", {"fields": ["summary", "themes"]}),
        CURATION_FIELDSET,
    ]

    @admin.display(description="date", ordering="date_lower")
    def when(self, obj):
        return humanize(obj.date)


@admin.register(StatedFigure)
class StatedFigureAdmin(CuratedAdmin):
    list_display = ("subject", "figure", "as_of_display", "sources", "verification")
    list_select_related = ("city", "organization", "initiative")
    list_filter = (
        "measure",
        "qualifier",
        "verification",
        HasSourceFilter,
        DateKnownFilter.on("as_of", "as of"),
    )
    search_fields = ("slug", "label", "city__name", "organization__name", "initiative__name")
    autocomplete_fields = ("city", "organization", "initiative")
    inlines = [StatedFigureCitationInline]
    fieldsets = [
        (None, {"fields": ["city", "organization", "initiative"]}),
        ("Figure", {"fields": ["measure", "label", "qualifier", "value", "as_of", "slug"]}),
        CURATION_FIELDSET,
    ]

    def get_queryset(self, request):
        # __str__ names the subject; autocomplete lists call it too.
        return super().get_queryset(request).select_related(*self.list_select_related)

    @admin.display(description="about")
    def subject(self, obj):
        return obj.subject

    @admin.display(description="figure", ordering="value")
    def figure(self, obj):
        return obj.display

    @admin.display(description="as of", ordering="as_of_lower")
    def as_of_display(self, obj):
        return humanize(obj.as_of)


# Citation tables ---------------------------------------------------------------------------


@admin.register(TieCitation)
class TieCitationAdmin(CitationAdmin):
    list_select_related = ("tie__city_a", "tie__city_b", "source")
    claim_search_fields = ("tie__city_a__name", "tie__city_b__name")


@admin.register(MembershipCitation)
class MembershipCitationAdmin(CitationAdmin):
    list_select_related = (
        "membership__organization", "membership__city", "membership__member_organization",
        "source",
    )  # fmt: skip
    claim_search_fields = ("membership__organization__name", "membership__city__name")


@admin.register(InitiativeCitation)
class InitiativeCitationAdmin(CitationAdmin):
    list_select_related = ("initiative", "source")
    claim_search_fields = ("initiative__name",)


@admin.register(EventCitation)
class EventCitationAdmin(CitationAdmin):
    list_select_related = ("event", "source")
    claim_search_fields = ("event__title",)


@admin.register(StatedFigureCitation)
class StatedFigureCitationAdmin(CitationAdmin):
    list_select_related = (
        "figure__city", "figure__organization", "figure__initiative", "source",
    )  # fmt: skip
    claim_search_fields = ("figure__label", "figure__city__name", "figure__organization__name")


@admin.register(OrganizationCitation)
class OrganizationCitationAdmin(CitationAdmin):
    list_select_related = ("organization", "source")
    claim_search_fields = ("organization__name",)
