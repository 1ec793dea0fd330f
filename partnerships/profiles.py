"""What a city profile and an organization page show, assembled as plain data.

Like `comparison.py`, these functions return dictionaries that a template renders (and that the
API can serialize later); the views only find the record and hand the result to a template.
Each function runs a fixed number of queries, however many ties, members or claims there are.
"""

import datetime
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    IntegerField,
    Max,
    Prefetch,
    Q,
    Value,
    When,
    Window,
)
from django.db.models.functions import ExtractYear, Floor, RowNumber
from django.db.models.lookups import Exact
from django.urls import reverse
from django_countries import countries

from cities.models import City, CityCitation, Source, SourceKind
from cities.regions import region_name, region_of

from .models import (
    MEASURE_TIE_KIND,
    Event,
    EventCitation,
    Initiative,
    InitiativeCitation,
    Measure,
    Membership,
    StatedFigure,
    StatedFigureCitation,
    Tie,
    TieCitation,
    TieKind,
    latest_per_measure,
)


@dataclass(frozen=True)
class Note:
    """One numbered note of a page: a source, where in it, and its words when stored."""

    number: int
    source: Source
    source_number: int  # the source's place in the page's list of sources
    locator: str
    quote: str

    @property
    def link(self):
        """The exact row or page when the source allows, else the source's address."""
        return self.source.link_to(self.locator)


class SourceNumbers:
    """Numbers the notes of a page in order of first citation, [1], [2] …: one note per
    source, locator and quotation, so that each [n] leads to the very place in the source
    that supports its claim. The sources themselves are listed once each, in `sources`."""

    def __init__(self):
        self.notes = []
        self.sources = []
        self._notes = {}
        self._sources = {}

    def cite(self, citations):
        """The notes of one claim, in order: [Note]."""
        found = []
        for citation in citations:
            source = citation.source
            if source.pk not in self._sources:
                self.sources.append(source)
                self._sources[source.pk] = len(self.sources)
            key = (source.pk, citation.locator, citation.quote)
            if key not in self._notes:
                note = Note(
                    len(self.notes) + 1,
                    source,
                    self._sources[source.pk],
                    citation.locator,
                    citation.quote,
                )
                self.notes.append(note)
                self._notes[key] = note
            if self._notes[key] not in found:
                found.append(self._notes[key])
        return sorted(found, key=lambda note: note.number)


SOURCE_FIELDS = (
    "slug", "title", "kind", "authors", "container_title", "issued", "url", "locator_link",
    "licence",
)  # fmt: skip


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
                cited_quote=F("quote"),
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
        citation = CityCitation(
            source=source, locator=row["cited_locator"], quote=row["cited_quote"]
        )
        found.setdefault((row["claim_kind"], row["claim_id"]), []).append(citation)
    for citations in found.values():
        citations.sort(key=lambda c: (c.source.title, c.locator))
    return found


# A group of ties, or an organization's members, shows this many rows; the rest are a click
# away in the paginated, filterable list. The page then costs the same at 50 or 5,000 ties.
FIRST_ROWS = 20
# The map draws one dot per partner (or member), at most this many; the page's script
# gathers dots that would overlap at the current zoom into one, and splits them as it zooms.
MAP_PLACES = 300
# The organization page names the countries with the most member cities, at most this many.
MEMBER_COUNTRIES = 24


def _address(name):
    """A function giving the address of the page `name` for one slug or id: one reverse()
    for all the rows of a page, which costs a fraction of a reverse() per row."""
    before, _, after = reverse(name, args=["0"]).rpartition("0")
    return lambda value: f"{before}{value}{after}"


@dataclass(frozen=True)
class Place:
    """One dot of a map: a partner (or member) city; `name` is what the dot says."""

    city: str
    country: str
    latitude: float
    longitude: float

    @property
    def name(self):
        return f"{self.city} ({self.country})" if self.country else self.city


def _places(cities):
    """The dots of a map, one per city with coordinates, at most MAP_PLACES, in one query.

    Beyond MAP_PLACES cities, the map still covers every part of the world where there are
    any: the first city of every square degree comes first (the most populous), the most
    crowded squares first, then the second city of each, and so on."""
    cell = [Floor("latitude"), Floor("longitude")]
    rows = (
        cities.order_by()
        .filter(latitude__isnull=False, longitude__isnull=False)
        .annotate(
            place_in_cell=Window(
                RowNumber(),
                partition_by=cell,
                order_by=[F("population").desc(nulls_last=True), F("name").asc(), F("pk").asc()],
            ),
            cell_size=Window(Count("pk"), partition_by=cell),
        )
        .order_by("place_in_cell", "-cell_size", "name", "pk")
        .values_list("name", "country", "latitude", "longitude")[:MAP_PLACES]
    )
    # A translated lookup; once per country.
    country_names = {}
    places = []
    for name, code, latitude, longitude in rows:
        if code not in country_names:
            country_names[code] = countries.name(code) if code else ""
        places.append(Place(name, country_names[code], latitude, longitude))
    return places


def _partners(city):
    """The cities tied to `city`, each once, whichever end of the tie each was entered at.

    Two indexed IN subqueries rather than a join to both ends of every tie: the totals and
    the map then read each partner's row once."""
    return City.objects.filter(
        Q(pk__in=Tie.objects.filter(city_a=city).values("city_b"))
        | Q(pk__in=Tie.objects.filter(city_b=city).values("city_a"))
    )


class Year(ExtractYear):
    """The year of a date. SQLite keeps dates as ISO text and Django's ExtractYear calls back
    into Python there for every row (0.1 s for 5,000 ties); its first four characters are
    the same year at no cost."""

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.lhs)
        return f"CAST(substr({sql}, 1, 4) AS INTEGER)", params


def _tie_counts(ties):
    """{(kind, year or None): (number of ties, last changed)} in one GROUP BY: the groups'
    counts and the timeline's ties per year. The year is the start's when it is known;
    "197X" or "1950/1960" stays off a chart by year rather than being drawn at its earliest
    year."""
    lower, upper = Year("start_lower"), Year("start_upper")
    year = Case(When(Exact(lower, upper), then=lower), default=None, output_field=IntegerField())
    rows = (
        ties.order_by()
        .annotate(year=year)
        .values("kind", "year")
        .annotate(n=Count("pk"), changed=Max("updated_at"))
    )
    return {(row["kind"], row["year"]): (row["n"], row["changed"]) for row in rows}


def _first_ties(ties, per_kind):
    """The first `per_kind` ties of each kind with both cities and their cited sources, in
    the tie list's own order (start date, undated last, then id), so that a group shows the
    first rows of the full list its "all" link leads to. The ties are ranked by their own
    columns alone, and only those shown are joined to their cities: one query, then one for
    the citations, however many ties there are."""
    order = [F("start_lower").asc(nulls_last=True), F("pk").asc()]
    ranked = (
        ties.order_by()
        .annotate(place_in_kind=Window(RowNumber(), partition_by=[F("kind")], order_by=order))
        .filter(place_in_kind__lte=per_kind)
        .values("pk")
    )
    return (
        Tie.objects.filter(pk__in=ranked)
        .for_list()
        .order_by(*order)
        .prefetch_related(
            Prefetch("citations", queryset=TieCitation.objects.select_related("source"))
        )
    )


def city_profile(city):
    """Everything a city's profile shows: figures stated and recorded, ties by kind (a count
    and the first rows of each) with their sources numbered [1], [2] … in order of first
    citation, memberships, programmes, events, the partners' places for the map and the lanes
    of the timeline. Counts come from aggregate queries and only the rows shown are fetched,
    so a city with 5,000 ties costs about what one with 300 does."""
    ties = Tie.objects.for_city(city)
    counts = _tie_counts(ties)
    partners = _partners(city)
    totals = partners.order_by().aggregate(
        partners=Count("pk"),
        countries=Count("country", distinct=True, filter=~Q(country="")),
        unplaced=Count("pk", filter=Q(latitude__isnull=True)),
    )
    places = _places(partners)
    first_ties = list(_first_ties(ties, FIRST_ROWS))
    memberships = list(Membership.objects.filter(city=city).for_profile())
    figures = list(StatedFigure.objects.filter(city=city))
    initiatives = list(Initiative.objects.involving(city=city).for_profile())
    events = list(Event.objects.involving(city=city).for_profile())
    claim_citations = _claim_citations(city, figures, initiatives, events)

    numbers = SourceNumbers()
    # A dataset (a twin-town list, the gazetteer) supports the place itself, its location and
    # population; the other sources, the profile's summary.
    city_citations = claim_citations.get(("city", city.pk), [])
    city_cited = numbers.cite([c for c in city_citations if c.source.kind != SourceKind.DATASET])
    place_cited = numbers.cite([c for c in city_citations if c.source.kind == SourceKind.DATASET])

    def cited(kind, claim):
        return numbers.cite(claim_citations.get((kind, claim.pk), []))

    by_kind, per_year, changed = {}, {}, [city.updated_at]
    for (kind, year), (n, last) in counts.items():
        by_kind[kind] = by_kind.get(kind, 0) + n
        per_year[year] = per_year.get(year, 0) + n
        changed.append(last)
    latest = {measure: f for (*_subject, measure), f in latest_per_measure(figures).items()}
    key_figures = [
        {
            "label": Measure(measure).label,
            "figure": latest.get(measure),
            "recorded": by_kind.get(kind, 0),
            # Twinnings of unstated kind may be of this kind too: shown beside the count.
            "unknown_kind": by_kind.get(TieKind.UNSPECIFIED, 0),
            "cited": cited("figure", latest[measure]) if measure in latest else [],
        }
        for measure, kind in MEASURE_TIE_KIND.items()
        if measure in latest or by_kind.get(kind)
    ]
    other_figures = [
        {"figure": f, "cited": cited("figure", f)}
        for f in figures
        if f.measure not in MEASURE_TIE_KIND
    ]
    placed = totals["partners"] - totals["unplaced"]
    changed += [o.updated_at for o in (*memberships, *figures, *initiatives, *events)]
    return {
        "city": city,
        "region": region_name(region_of(city.country)),
        "city_cited": city_cited,
        "place_cited": place_cited,
        "key_figures": key_figures,
        "other_figures": other_figures,
        "tie_count": sum(by_kind.values()),
        "partner_count": totals["partners"],
        "partner_countries": totals["countries"],
        "groups": _tie_groups(city, first_ties, by_kind, numbers),
        "memberships": [
            {"membership": m, "cited": numbers.cite(m.citations.all())} for m in memberships
        ],
        "initiatives": [{"initiative": i, "cited": cited("initiative", i)} for i in initiatives],
        "events": [{"event": e, "cited": cited("event", e)} for e in events],
        "places": places,
        "partners_unplaced": totals["unplaced"],
        "partners_not_drawn": placed - len(places),
        "timeline_items": _timeline(per_year, memberships, initiatives, events),
        "sources": numbers.sources,
        "notes": numbers.notes,
        "last_changed": max(changed),
    }


def _tie_groups(city, first_ties, by_kind, numbers):
    """[{kind, label, count, rows, more, all_url}] in the order of TieKind: each group's
    count, its first rows (a partner with its sources, numbered group after group), and the
    address of the tie list of that city and kind."""
    groups, country_names = [], {}
    city_url, tie_url = _address("partnerships:city_detail"), _address("partnerships:tie_detail")
    tie_list = reverse("partnerships:tie_list")
    ties_of = {}
    for tie in first_ties:
        ties_of.setdefault(tie.kind, []).append(tie)
    for kind, label in TieKind.choices:
        if not by_kind.get(kind):
            continue
        rows = []
        for tie in ties_of.get(kind, []):
            partner = tie.partner_of(city)
            if partner.country not in country_names:  # a translated lookup; once per country
                country_names[partner.country] = partner.country_name
            rows.append(
                {
                    "tie": tie,
                    "tie_url": tie_url(tie.pk),
                    "partner": partner,
                    "partner_url": city_url(partner.slug),
                    "country": country_names[partner.country],
                    "cited": numbers.cite(tie.citations.all()),
                }
            )
        groups.append(
            {
                "kind": kind,
                "label": label,
                "count": by_kind[kind],
                "rows": rows,
                "more": by_kind[kind] > len(rows),
                "all_url": f"{tie_list}?{urlencode({'city': city.slug, 'kind': kind})}",
            }
        )
    return groups


def _timeline(ties_per_year, memberships, initiatives, events):
    """The lanes of a profile's timeline: ties, memberships, programmes and events.

    The timeline draws ties as a count per year; each year's ties are one shared item
    repeated, so that the counts come from the database and no row is built per tie."""
    ties = []
    for year, n in sorted(ties_per_year.items(), key=lambda item: item[0] or 0):
        start = datetime.date(year, 1, 1) if year else None
        ties += [{"lane": "tie", "label": "", "start": start, "end": None}] * n
    return (
        ties
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


def organization_profile(organization):
    """An organization's page: its members (cities and organizations) counted, the first
    rows listed with their sources, the member cities' places and countries, programmes,
    stated figures and events. `organization` comes from `for_profile()`. Counts come from
    aggregate queries and only the rows shown are fetched, so Mayors for Peace with its
    8,000 members costs about what a network of 300 does."""
    # Its members are those of its branches too, as the list of cities filtered by the
    # organization counts them: its "all" link says the number that list shows. The
    # branches are prefetched.
    branches = [b.pk for b in organization.branches.all()]
    listed = Membership.objects.filter(organization__in=[organization.pk, *branches])
    direct = Q(organization=organization)
    # Counted per country of the member city, which gives the totals too: each city lies in
    # one country. Count("city") leaves out member organizations (no city, no country).
    counted = list(
        listed.order_by()
        .values("city__country")
        .annotate(
            members=Count("pk", filter=direct),
            cities=Count("city", distinct=True, filter=direct),
            unplaced=Count("city", distinct=True, filter=Q(city__latitude__isnull=True)),
            listed=Count("city", distinct=True),
            all_members=Count("pk"),
            changed=Max("updated_at", filter=direct),
        )
        .order_by("-listed", "city__country")
    )
    totals = {
        key: sum(row[key] for row in counted)
        for key in ("members", "cities", "unplaced", "listed", "all_members")
    }
    by_country = [row for row in counted if row["listed"]]
    # The members of its branches are its members too (a city in UCLG-ASPAC is in UCLG):
    # drawn and listed with the branch named.
    places = _places(City.objects.filter(pk__in=listed.values("city")))
    # Member organizations (no city) first, then cities as the list of cities orders them,
    # so the rows shown are the first of the list the "all" link leads to. Ranked on the
    # sort keys alone; only the rows shown are read whole.
    order = [
        F("city__name").asc(nulls_first=True),
        "city__slug",
        "member_organization__name",
        "since_lower",
        "pk",
    ]
    shown = listed.order_by(*order).values("pk")[:FIRST_ROWS]
    first = list(Membership.objects.filter(pk__in=shown).for_profile().order_by(*order))
    initiatives = list(Initiative.objects.involving(organization=organization).for_profile())
    figures = list(StatedFigure.objects.filter(organization=organization).with_citations())
    events = list(Event.objects.filter(organization=organization).select_related("city"))
    numbers = SourceNumbers()
    cited = numbers.cite(organization.citations.all())
    city_url = _address("partnerships:city_detail")
    organization_url = _address("partnerships:organization_detail")
    member_rows = [
        {
            "membership": m,
            "url": city_url(m.city.slug) if m.city_id else organization_url(m.member.slug),
            "cited": numbers.cite(m.citations.all()),
            "branch": m.organization if m.organization_id != organization.pk else None,
        }
        for m in first
    ]
    figure_rows = [{"figure": f, "cited": numbers.cite(f.citations.all())} for f in figures]
    city_list = reverse("partnerships:city_list")

    def listed_url(**filters):
        return f"{city_list}?{urlencode({'organization': organization.slug, **filters})}"

    changed = [organization.updated_at, *(row["changed"] for row in counted)]
    changed += [f.updated_at for f in figures]
    return {
        "organization": organization,
        "cited": cited,
        "member_count": totals["all_members"],
        "direct_member_count": totals["members"],
        "members": member_rows,
        "more_members": totals["all_members"] > len(member_rows),
        "member_city_count": totals["cities"],
        "listed_city_count": totals["listed"],
        "all_members_url": listed_url(),
        "member_countries": [
            {
                "name": countries.name(row["city__country"]) if row["city__country"] else "",
                "count": row["listed"],
                "url": listed_url(country=row["city__country"]) if row["city__country"] else "",
            }
            for row in by_country[:MEMBER_COUNTRIES]
        ],
        "more_countries": len(by_country[MEMBER_COUNTRIES:]),
        "places": places,
        "members_unplaced": totals["unplaced"],
        "members_not_drawn": totals["listed"] - totals["unplaced"] - len(places),
        "initiatives": initiatives,
        "figures": figure_rows,
        "events": events,
        "sources": numbers.sources,
        "notes": numbers.notes,
        "last_changed": max(d for d in changed if d is not None),
    }
