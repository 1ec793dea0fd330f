"""What a city profile and an organization page show, assembled as plain data.

Like `comparison.py`, these functions return dictionaries that a template renders (and that the
API can serialize later); the views only find the record and hand the result to a template.
Each function runs a fixed number of queries, however many ties, members or claims there are.
"""

from dataclasses import dataclass

from django.db.models import CharField, F, Value

from cities.models import CityCitation, Source, SourceKind
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


def _year_known(tie):
    """The start of a tie when its year is known; "197X" or "1950/1960" stays off a chart
    by year rather than being drawn at its earliest possible year."""
    lower, upper = tie.start_lower, tie.start_upper
    return lower if lower and upper and lower.year == upper.year else None


def city_profile(city):
    """Everything a city's profile shows: figures stated and recorded, ties by kind with their
    sources numbered [1], [2] … in order of first citation, memberships, programmes, events,
    the partners for the map and the lanes of the timeline."""
    ties = list(Tie.objects.for_city(city).for_profile())
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

    by_kind = {}
    for tie in ties:
        by_kind.setdefault(tie.kind, []).append(tie)
    latest = {measure: f for (*_subject, measure), f in latest_per_measure(figures).items()}
    key_figures = [
        {
            "label": Measure(measure).label,
            "figure": latest.get(measure),
            "recorded": len(by_kind.get(kind, [])),
            # Twinnings of unstated kind may be of this kind too: shown beside the count.
            "unknown_kind": len(by_kind.get(TieKind.UNSPECIFIED, [])),
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
    partners = [tie.partner_of(city) for tie in ties]
    unique_partners = list({p.pk: p for p in partners}.values())
    changed = [city.updated_at] + [
        o.updated_at for o in (*ties, *memberships, *figures, *initiatives, *events)
    ]
    return {
        "city": city,
        "region": region_name(region_of(city.country)),
        "city_cited": city_cited,
        "place_cited": place_cited,
        "key_figures": key_figures,
        "other_figures": other_figures,
        "tie_count": len(ties),
        "partner_countries": len({p.country for p in unique_partners if p.country}),
        "groups": _tie_groups(city, by_kind, numbers),
        "memberships": [
            {"membership": m, "cited": numbers.cite(m.citations.all())} for m in memberships
        ],
        "initiatives": [{"initiative": i, "cited": cited("initiative", i)} for i in initiatives],
        "events": [{"event": e, "cited": cited("event", e)} for e in events],
        "partners": unique_partners,
        "timeline_items": _timeline(ties, partners, memberships, initiatives, events),
        "sources": numbers.sources,
        "notes": numbers.notes,
        "last_changed": max(changed),
    }


def _tie_groups(city, by_kind, numbers):
    """[{kind, label, rows}] in the order of TieKind, each row a partner with its sources."""
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
    return groups


def _timeline(ties, partners, memberships, initiatives, events):
    """The lanes of a profile's timeline: ties, memberships, programmes and events."""
    return (
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


def organization_profile(organization):
    """An organization's page: its members (cities and organizations) with their sources,
    programmes, stated figures and events. `organization` comes from `for_profile()`."""
    memberships = list(
        Membership.objects.filter(organization=organization)
        .for_profile()
        .order_by("city__name", "member_organization__name", "since_lower", "pk")
    )
    initiatives = list(Initiative.objects.involving(organization=organization).for_profile())
    figures = list(StatedFigure.objects.filter(organization=organization).with_citations())
    events = list(Event.objects.filter(organization=organization).select_related("city"))
    numbers = SourceNumbers()
    cited = numbers.cite(organization.citations.all())
    member_rows = [{"membership": m, "cited": numbers.cite(m.citations.all())} for m in memberships]
    figure_rows = [{"figure": f, "cited": numbers.cite(f.citations.all())} for f in figures]
    cities = [m.city for m in memberships if m.city_id]
    changed = [organization.updated_at] + [o.updated_at for o in (*memberships, *figures)]
    return {
        "organization": organization,
        "cited": cited,
        "members": member_rows,
        "member_cities": list({c.pk: c for c in cities}.values()),
        "initiatives": initiatives,
        "figures": figure_rows,
        "events": events,
        "sources": numbers.sources,
        "notes": numbers.notes,
        "last_changed": max(changed),
    }
