"""The public pages: home, browse and search, city profiles, the comparison, networks, the
tie list, the bibliography and the method. Function views; QuerySets say what each page loads.

They live in partnerships because every page about a city shows what ties it to others;
cities itself knows nothing of ties.
"""

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import (
    CharField,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from cities.models import City, CityCitation, Source
from cities.regions import region_name, region_of
from cities.text import fold

from . import comparison
from .filters import CityFilter, TieFilter, tie_count
from .models import (
    MEASURE_TIE_KIND,
    Event,
    EventCitation,
    Initiative,
    InitiativeCitation,
    Measure,
    Membership,
    MembershipCitation,
    Organization,
    OrganizationCitation,
    OrganizationKind,
    StatedFigure,
    StatedFigureCitation,
    Tie,
    TieCitation,
    TieKind,
)

PAGE_SIZE = 50


def not_found(request, what, value, suggestions=(), hint=""):
    """A 404 that says what was looked for and offers the nearest matches."""
    return render(
        request,
        "404.html",
        {"what": what, "value": value, "suggestions": suggestions, "hint": hint},
        status=404,
    )


def suggest_cities(text, limit=8):
    """Cities a mistyped address may have meant: the whole text, else any of its words."""
    found = list(City.objects.search(text).order_by("name", "slug")[:limit])
    words = [word for word in fold(text).split() if len(word) >= 3]
    if found or not words:
        return found
    match = Q()
    for word in words:
        match |= Q(folded_name__contains=word) | Q(alternate_names__folded__contains=word)
    return list(City.objects.filter(match).distinct().order_by("name", "slug")[:limit])


def ignored_filters(filterset):
    """[(label, value)] of the filters whose values were not understood and so not applied."""
    form = filterset.form
    return [(form.fields[name].label or name, filterset.data.get(name, "")) for name in form.errors]


def home(request):
    counts = {
        "cities": City.objects.count(),
        "ties": Tie.objects.count(),
        "organizations": Organization.objects.count(),
        "sources": Source.objects.count(),
    }
    connected = (
        City.objects.annotate(tie_count=tie_count())
        .filter(tie_count__gt=0)
        .order_by("-tie_count", "name", "pk")[:12]
    )
    organizations = Organization.objects.filter(parent__isnull=True).order_by("name")[:12]
    return render(
        request,
        "home.html",
        {"counts": counts, "connected": connected, "organizations": organizations},
    )


def city_list(request):
    filterset = CityFilter(request.GET, queryset=City.objects.all())
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = filterset.form.cleaned_data.get("q") if filterset.is_valid() else ""
    if query:
        # Show which of its names matched, for "Odessa" finding Odesa.
        prefetch_related_objects(page.object_list, "alternate_names")
    return render(
        request,
        "cities/city_list.html",
        {
            "filter": filterset,
            "ignored": ignored_filters(filterset),
            "page": page,
            "query": query,
            "export_query": request.GET.urlencode(),
        },
    )


class SourceNumbers:
    """Numbers each source the first time a claim on the page cites it: [1], [2] …"""

    def __init__(self):
        self.numbers = {}
        self.sources = []

    def cite(self, citations):
        """[(number, locators, source)] for one claim: one entry per source, its locators
        ("p. 3; row 12") joined, so a claim citing a source twice shows [1] once."""
        cited = {}
        for citation in citations:
            source = citation.source
            if source.pk not in self.numbers:
                self.numbers[source.pk] = len(self.sources) + 1
                self.sources.append(source)
            number = self.numbers[source.pk]
            locators = cited.setdefault(number, (source, []))[1]
            if citation.locator and citation.locator not in locators:
                locators.append(citation.locator)
        return [
            (number, "; ".join(locators), source)
            for number, (source, locators) in sorted(cited.items())
        ]


SOURCE_FIELDS = ("slug", "title", "kind", "authors", "container_title", "issued", "url")


def _claim_citations(city, figures, initiatives, events):
    """The citations of the city and of its figures, initiatives and events in one query.

    Each claim kind has its own table; a UNION of the four keeps the profile's query count
    fixed however many claims there are. Returns {(kind, claim id): [citation]} where each
    citation carries an unsaved Source built from the joined columns.
    """

    def part(model, kind, claim_field, ids):
        columns = {f"source_{f}": F(f"source__{f}") for f in SOURCE_FIELDS}
        return (
            model.objects.filter(**{f"{claim_field}__in": ids})
            .order_by()
            .values(
                claim_kind=Value(kind, output_field=CharField()),
                claim_id=F(claim_field),
                cited_source_id=F("source_id"),
                cited_locator=F("locator"),
                **columns,
            )
        )

    parts = [part(CityCitation, "city", "city_id", [city.pk])]
    for model, kind, field, objects in (
        (StatedFigureCitation, "figure", "figure_id", figures),
        (InitiativeCitation, "initiative", "initiative_id", initiatives),
        (EventCitation, "event", "event_id", events),
    ):
        if objects:
            parts.append(part(model, kind, field, [o.pk for o in objects]))
    rows = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    found = {}
    for row in rows:
        source = Source(pk=row["cited_source_id"], **{f: row[f"source_{f}"] for f in SOURCE_FIELDS})
        citation = CityCitation(source=source, locator=row["cited_locator"])
        found.setdefault((row["claim_kind"], row["claim_id"]), []).append(citation)
    for citations in found.values():
        citations.sort(key=lambda c: (c.source.title, c.locator))
    return found


def _latest(figures):
    """The most recent figure per measure; an undated one only when none is dated."""
    latest = {}
    for figure in sorted(figures, key=lambda f: (f.as_of_lower is not None, f.as_of_lower)):
        latest[figure.measure] = figure
    return latest


def _year_known(tie):
    """The start of a tie when its year is known; "197X" or "1950/1960" stays off a chart
    by year rather than being drawn at its earliest possible year."""
    lower, upper = tie.start_lower, tie.start_upper
    return lower if lower and upper and lower.year == upper.year else None


def city_detail(request, slug):
    city = City.objects.prefetch_related("alternate_names", "themes").filter(slug=slug).first()
    if city is None:
        return not_found(request, "city", slug, suggest_cities(slug))

    ties = list(Tie.objects.for_city(city).for_profile())
    memberships = list(Membership.objects.filter(city=city).for_profile())
    figures = list(StatedFigure.objects.filter(city=city))
    initiatives = list(
        Initiative.objects.filter(Q(lead_city=city) | Q(partner_cities=city))
        .select_related("lead_city", "lead_organization")
        .distinct()
        .order_by("start_lower", "name", "pk")
    )
    events = list(
        Event.objects.filter(Q(city=city) | Q(partner_city=city)).select_related(
            "city", "partner_city", "organization"
        )
    )
    claim_citations = _claim_citations(city, figures, initiatives, events)

    numbers = SourceNumbers()
    city_cited = numbers.cite(claim_citations.get(("city", city.pk), []))

    by_kind = {}
    for tie in ties:
        by_kind.setdefault(tie.kind, []).append(tie)
    latest = _latest(figures)
    key_figures = []
    for measure, kind in MEASURE_TIE_KIND.items():
        figure = latest.get(measure)
        recorded = len(by_kind.get(kind, []))
        if figure or recorded:
            key_figures.append(
                {
                    "label": Measure(measure).label,
                    "figure": figure,
                    "recorded": recorded,
                    "cited": numbers.cite(claim_citations.get(("figure", figure.pk), []))
                    if figure
                    else [],
                }
            )
    other_figures = [
        {"figure": f, "cited": numbers.cite(claim_citations.get(("figure", f.pk), []))}
        for f in figures
        if f.measure not in MEASURE_TIE_KIND
    ]

    groups, country_names = [], {}
    for kind, label in TieKind.choices:
        rows = []
        for tie in by_kind.get(kind, []):
            partner = tie.partner_of(city)
            if partner.country not in country_names:  # a translated lookup; once per country
                country_names[partner.country] = partner.country_name
            rows.append(
                {
                    "tie": tie,
                    "partner": partner,
                    "country": country_names[partner.country],
                    "cited": numbers.cite(tie.citations.all()),
                }
            )
        if rows:
            rows.sort(key=lambda r: (r["partner"].name, r["partner"].pk))
            groups.append({"kind": kind, "label": label, "rows": rows})

    membership_rows = [
        {"membership": m, "cited": numbers.cite(m.citations.all())} for m in memberships
    ]
    initiative_rows = [
        {"initiative": i, "cited": numbers.cite(claim_citations.get(("initiative", i.pk), []))}
        for i in initiatives
    ]
    event_rows = [
        {"event": e, "cited": numbers.cite(claim_citations.get(("event", e.pk), []))}
        for e in events
    ]

    partners = [tie.partner_of(city) for tie in ties]
    unique_partners = list({p.pk: p for p in partners}.values())
    timeline_items = (
        [
            {"lane": "tie", "label": p.name, "start": _year_known(t), "end": None}
            for t, p in zip(ties, partners, strict=True)
        ]
        + [
            {
                "lane": "membership",
                "label": m.organization.acronym or m.organization.name,
                "title": f"{m.organization.name}: {m.get_role_display()}",
                "start": m.since_lower,
                "end": m.until_upper,
                "open": not m.until,
            }
            for m in memberships
        ]
        + [
            {
                "lane": "initiative",
                "label": i.name,
                "start": i.start_lower,
                "end": i.end_upper,
                "open": not i.end,
            }
            for i in initiatives
        ]
        + [{"lane": "event", "label": e.title, "start": e.date_lower, "end": None} for e in events]
    )
    changed = [city.updated_at] + [
        o.updated_at for o in (*ties, *memberships, *figures, *initiatives, *events)
    ]
    countries = {p.country for p in unique_partners if p.country}
    return render(
        request,
        "cities/city_detail.html",
        {
            "city": city,
            "region": region_name(region_of(city.country)),
            "city_cited": city_cited,
            "key_figures": key_figures,
            "other_figures": other_figures,
            "tie_count": len(ties),
            "partner_countries": len(countries),
            "groups": groups,
            "memberships": membership_rows,
            "initiatives": initiative_rows,
            "events": event_rows,
            "partners": unique_partners,
            "timeline_items": timeline_items,
            "sources": numbers.sources,
            "last_changed": max(changed),
        },
    )


def _count_of(model):
    """Claims of one kind citing each source (a claim cited at two places counts once), as a
    correlated count: joins to seven citation tables would multiply rows."""
    rows = model.objects.filter(source=OuterRef("pk")).order_by().values("source")
    claims = Count(model.claim_field, distinct=True)
    return Coalesce(
        Subquery(rows.annotate(n=claims).values("n"), output_field=IntegerField()),
        Value(0),
    )


SUPPORTS = [
    ("cities", "city profile", "city profiles", CityCitation),
    ("ties", "tie", "ties", TieCitation),
    ("memberships", "membership", "memberships", MembershipCitation),
    ("figures", "stated figure", "stated figures", StatedFigureCitation),
    ("initiatives", "initiative", "initiatives", InitiativeCitation),
    ("events", "event", "events", EventCitation),
    ("organizations", "organization", "organizations", OrganizationCitation),
]


def source_list(request):
    sources = Source.objects.annotate(
        **{f"n_{key}": _count_of(model) for key, _one, _many, model in SUPPORTS}
    ).order_by("title", "slug")
    page = Paginator(sources, PAGE_SIZE).get_page(request.GET.get("page"))
    for source in page.object_list:
        source.supports = [
            (getattr(source, f"n_{key}"), one if getattr(source, f"n_{key}") == 1 else many)
            for key, one, many, _model in SUPPORTS
            if getattr(source, f"n_{key}")
        ]
    return render(request, "cities/source_list.html", {"page": page})


CLAIMS_SHOWN = 100


def source_detail(request, slug):
    source = Source.objects.filter(slug=slug).first()
    if source is None:
        suggestions = Source.objects.filter(title__icontains=slug.replace("-", " "))[:8]
        return not_found(request, "source", slug, suggestions)
    # One query per kind of claim, each cut at CLAIMS_SHOWN with the total beside it.
    ties = Tie.objects.filter(citations__source=source).for_list().distinct()
    claims = {
        "cities": City.objects.filter(citations__source=source).distinct(),
        "ties": ties.order_by("city_a__name", "city_b__name", "pk"),
        "memberships": Membership.objects.filter(citations__source=source)
        .select_related("organization", "city", "member_organization")
        .distinct(),
        "figures": StatedFigure.objects.filter(citations__source=source)
        .select_related("city", "organization", "initiative")
        .distinct(),
        "initiatives": Initiative.objects.filter(citations__source=source).distinct(),
        "events": Event.objects.filter(citations__source=source).distinct(),
        "organizations": Organization.objects.filter(citations__source=source).distinct(),
    }
    shown = {key: list(qs[: CLAIMS_SHOWN + 1]) for key, qs in claims.items()}
    return render(
        request,
        "cities/source_detail.html",
        {"source": source, "claims": shown, "limit": CLAIMS_SHOWN},
    )


def about(request):
    return render(request, "about.html")


SUGGESTIONS = 10


def compare(request):
    values = [v for v in request.GET.getlist("cities") if v.strip()]
    context = {"picked": comparison.split_tokens(values), "max": comparison.MAX_CITIES}
    if not values:
        # "Compare with…" on a profile starts the picker with that city filled in.
        context["picked"] = comparison.split_tokens(request.GET.get("with", ""))[:1]
        return render(request, "partnerships/compare.html", context)
    try:
        cities = comparison.parse_cities(values)
    except comparison.ComparisonError as error:
        # Each suggestion links to this comparison with the name it replaces corrected.
        tokens = context["picked"]
        for token, options in error.suggestions.items():
            for option in options:
                fixed = [option["slug"] if t == token else t for t in tokens]
                option["fix_url"] = "?" + urlencode({"cities": ",".join(fixed)})
        context.update(errors=error.messages, suggestions=error.suggestions)
        return render(request, "partnerships/compare.html", context, status=400)
    canonical = ",".join(c.slug for c in cities)
    if request.GET.getlist("cities") != [canonical] or set(request.GET) != {"cities"}:
        # The picker sends one field per city and may use names: share the short form.
        query = urlencode({"cities": canonical}, safe=",")
        return redirect(f"{reverse('partnerships:compare')}?{query}")
    result = comparison.compare(cities)
    slugs = [c.slug for c in cities]
    for i, city in enumerate(result["cities"]):
        rest = slugs[:i] + slugs[i + 1 :]
        city["without"] = ",".join(rest) if len(rest) >= comparison.MIN_CITIES else ""
    context.update(result=result, cities=cities, picked=slugs, slugs=canonical)
    return render(request, "partnerships/compare.html", context)


def city_suggestions(request):
    """Names for the comparison picker's autocomplete: [{slug, name, country}]."""
    text = request.GET.get("q", "").strip()
    cities = City.objects.search(text).order_by("name", "slug")[:SUGGESTIONS] if text else []
    return JsonResponse(
        {"results": [{"slug": c.slug, "name": c.name, "country": c.country} for c in cities]}
    )


def organization_list(request):
    organizations = (
        Organization.objects.select_related("parent", "headquarters")
        .annotate(member_count=Count("memberships__city", distinct=True))
        .order_by("name", "slug")
    )
    kind = request.GET.get("kind", "")
    kinds = dict(OrganizationKind.choices)
    if kind in kinds:
        organizations = organizations.filter(kind=kind)
    page = Paginator(organizations, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "partnerships/organization_list.html",
        {
            "page": page,
            "kinds": OrganizationKind.choices,
            "kind": kind if kind in kinds else "",
            "bad_kind": kind if kind and kind not in kinds else "",
        },
    )


def organization_detail(request, slug):
    organization = (
        Organization.objects.select_related("parent", "headquarters")
        .prefetch_related("branches", "themes", "citations__source")
        .filter(slug=slug)
        .first()
    )
    if organization is None:
        suggestions = Organization.objects.filter(
            Q(name__icontains=slug.replace("-", " ")) | Q(acronym__iexact=slug)
        )[:8]
        return not_found(request, "organization", slug, suggestions)
    memberships = list(
        Membership.objects.filter(organization=organization)
        .for_profile()
        .order_by("city__name", "member_organization__name", "since_lower", "pk")
    )
    initiatives = list(
        Initiative.objects.filter(
            Q(lead_organization=organization) | Q(partner_organizations=organization)
        )
        .select_related("lead_city", "lead_organization")
        .distinct()
        .order_by("start_lower", "name", "pk")
    )
    figures = list(
        StatedFigure.objects.filter(organization=organization).prefetch_related("citations__source")
    )
    events = list(Event.objects.filter(organization=organization).select_related("city"))
    numbers = SourceNumbers()
    cited = numbers.cite(organization.citations.all())
    member_rows = [{"membership": m, "cited": numbers.cite(m.citations.all())} for m in memberships]
    figure_rows = [{"figure": f, "cited": numbers.cite(f.citations.all())} for f in figures]
    cities = [m.city for m in memberships if m.city_id]
    changed = [organization.updated_at] + [o.updated_at for o in (*memberships, *figures)]
    return render(
        request,
        "partnerships/organization_detail.html",
        {
            "organization": organization,
            "cited": cited,
            "members": member_rows,
            "member_cities": list({c.pk: c for c in cities}.values()),
            "initiatives": initiatives,
            "figures": figure_rows,
            "events": events,
            "sources": numbers.sources,
            "last_changed": max(changed),
        },
    )


def tie_list(request):
    filterset = TieFilter(request.GET, queryset=Tie.objects.for_list())
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "partnerships/tie_list.html",
        {
            "filter": filterset,
            "ignored": ignored_filters(filterset),
            "page": page,
            "export_query": request.GET.urlencode(),
        },
    )


def tie_detail(request, pk):
    tie = Tie.objects.for_profile().filter(pk=pk).first()
    if tie is None:
        return not_found(
            request,
            "tie",
            pk,
            hint="Ties are numbered in the order they were entered; find one from a city "
            "profile or the list of ties.",
        )
    others = Tie.objects.between(tie.city_a_id, tie.city_b_id).exclude(pk=tie.pk).order_by("kind")
    events = Event.objects.filter(tie=tie).select_related("city", "organization")
    numbers = SourceNumbers()
    cited = numbers.cite(tie.citations.all())
    return render(
        request,
        "partnerships/tie_detail.html",
        {
            "tie": tie,
            "cited": cited,
            "others": list(others),
            "events": list(events),
            "sources": numbers.sources,
        },
    )
