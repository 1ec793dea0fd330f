"""Figures that set two to four cities side by side.

The one place that computes a comparison: the /compare/ page renders what `compare()` returns
and the API's comparison endpoint serializes the same dictionary, so both always agree.
`parse_cities()` turns the `cities=` parameter into cities, or raises a ComparisonError whose
messages say what to fix.
"""

import math
import re
from collections import Counter, defaultdict

from django.db.models import Case, Q, When
from django.db.models.functions import Length
from django.urls import reverse
from django_countries import countries

from cities.dates import humanize
from cities.models import City
from cities.regions import REGIONS, UNKNOWN, region_name, region_of
from cities.text import fold

from .models import (
    MEASURE_TIE_KIND,
    Measure,
    Membership,
    StatedFigure,
    Tie,
    TieKind,
    latest_per_measure,
    tie_count,
)
from .network import drawing

MIN_CITIES = 2
MAX_CITIES = 4
# Beyond this many names nothing is looked up: the message about the count is enough.
MAX_TOKENS = 12
EXAMPLE = "for example ?cities=yokohama,taipei"
# The drawing of shared partners shows at most this many, those shared by most cities first.
SHARED_DRAWN = 40
# "Compare with…" offers this many cities: the city's most tied partners, then the most tied
# cities of its country.
SUGGESTED = 4
# "Odesa (Ukraine)" or "Odesa (UA)": a name with its country, as the picker suggests them.
QUALIFIED = re.compile(r"^(?P<name>.*\S)\s*\((?P<country>[^()]+)\)$")


class ComparisonError(ValueError):
    """The `cities=` parameter cannot be compared. `messages` are sentences for the reader;
    `suggestions` maps a name that was not understood to cities it may have meant."""

    def __init__(self, messages, suggestions=None, *, unresolved=False):
        super().__init__(" ".join(messages))
        self.messages = list(messages)
        self.suggestions = suggestions or {}
        # Every problem is a name that matches no city, or several: the request was well
        # formed, the atlas just has no one city by that name.
        self.unresolved = unresolved


def split_tokens(values):
    """Names from `cities=a,b` or from several `cities=` fields (the picker sends four)."""
    if isinstance(values, str):
        values = [values]
    return [token.strip() for value in values for token in value.split(",") if token.strip()]


def _brief(city):
    return {
        "slug": city.slug,
        "name": city.name,
        "country": city.country,
        "country_name": city.country_name,
        "url": city.get_absolute_url(),
    }


def parse_cities(values):
    """The cities named by slug or by any of their names, in the order given.

    Raises ComparisonError listing every problem at once: too few or too many cities, a
    name that matches no city or several, a city named twice.
    """
    tokens = split_tokens(values)
    if not tokens:
        raise ComparisonError([f"Choose two to four cities to compare, {EXAMPLE}."])
    if len(tokens) > MAX_TOKENS:
        raise ComparisonError(
            [f"A comparison takes two to four cities; {len(tokens)} were given. {EXAMPLE}."]
        )
    messages, suggestions = [], {}
    # One query for everything given as a slug, the usual case of a shared URL.
    by_slug = {c.slug: c for c in City.objects.filter(slug__in=[t.lower() for t in tokens])}
    resolved = []
    for token in tokens:
        city = by_slug.get(token.lower())
        if city is None:
            city = _by_name(token, messages, suggestions)
        if city is not None:
            resolved.append((token, city))
    unresolved = len(messages)
    seen = {}
    for token, city in resolved:
        if city.pk in seen and seen[city.pk] != token:
            messages.append(
                f"{city.name} is listed twice (as “{seen[city.pk]}” and “{token}”): "
                "list each city once."
            )
        elif city.pk in seen:
            messages.append(f"{city.name} is listed twice: list each city once.")
        seen.setdefault(city.pk, token)
    if len(tokens) > MAX_CITIES:
        messages.insert(
            0,
            f"Compare at most {MAX_CITIES} cities at a time: {len(tokens)} were given, "
            f"remove {len(tokens) - MAX_CITIES}.",
        )
    elif len(tokens) < MIN_CITIES and not messages:
        messages.append("Add at least one more city: a comparison needs two to four.")
    if messages:
        raise ComparisonError(messages, suggestions, unresolved=unresolved == len(messages))
    return [city for _token, city in resolved]


def _country_of(text):
    """The country code `text` names ("Ukraine", "ukraine", "UA"), or ""."""
    text = text.strip()
    code = countries.by_name(text) or text.upper()
    return code if countries.name(code) else ""


def _by_name(token, messages, suggestions):
    """The one city with this exact name (any of its names, folded), or None after saying why.
    "Odesa (Ukraine)", the picker's way of naming a city, looks in that country only."""
    named = Q()
    qualified = QUALIFIED.match(token)
    folded = fold(token)
    if qualified and _country_of(qualified["country"]):
        folded = fold(qualified["name"])
        named = Q(country=_country_of(qualified["country"]))
    matches = list(
        City.objects.filter(Q(folded_name=folded) | Q(alternate_names__folded=folded), named)
        .distinct()
        .order_by("name", "slug")[:6]
    )
    if len(matches) == 1:
        return matches[0]
    if matches:
        messages.append(f"Several cities are called “{token}”: choose one of them.")
        suggestions[token] = [_brief(c) for c in matches]
        return None
    near = []
    if len(folded) >= 3:
        # Names that start with what was typed first, then the shortest: "taipe" → Taipei
        # before New Taipei.
        starts = Case(When(folded_name__startswith=folded, then=0), default=1)
        near = list(City.objects.search(token).order_by(starts, Length("name"), "name", "slug")[:5])
    messages.append(f"No city in the atlas is called “{token}” or has it as its slug.")
    if near:
        suggestions[token] = [_brief(c) for c in near]
    return None


def _stated(figure):
    return {
        "value": figure.value,
        "qualifier": figure.qualifier,
        "display": figure.display,
        "value_display": figure.value_display,
        "as_of": figure.as_of,
        "as_of_display": humanize(figure.as_of, unknown="date not stated"),
        "sources": [
            {
                "title": c.source.title,
                "url": c.source.get_absolute_url(),
                "locator": c.locator,
            }
            for c in figure.citations.all()
        ],
    }


def _latest_figures(cities):
    """{(city id, measure): the most recent stated figure}, with its citations."""
    figures = StatedFigure.objects.filter(city__in=cities).with_citations().order_by("slug")
    return {
        (city, measure): f for (city, _o, _i, measure), f in latest_per_measure(figures).items()
    }


def _decade(tie):
    return tie.start_lower.year // 10 * 10 if tie.start_lower else None


def compare(cities, *, drawing=False):
    """Side-by-side figures for `cities` (two to four City objects), as plain data; with
    `drawing`, also the network of their shared partners laid out for the page (the API
    answers with the data, not with a drawing).

    Five queries whatever the number of ties: the ties of all the cities with both ends,
    stated figures and their citations, memberships with organizations, themes.
    """
    cities = list(cities)
    ids = [c.pk for c in cities]
    index = {pk: i for i, pk in enumerate(ids)}
    n = len(cities)

    def per_city(default=0):
        return [default for _ in range(n)]

    ties = list(Tie.objects.for_list().filter(Q(city_a__in=ids) | Q(city_b__in=ids)))
    by_kind = defaultdict(per_city)
    by_decade = defaultdict(per_city)
    partners = [{} for _ in range(n)]  # partner pk -> (City, [kinds])
    direct = []
    for tie in ties:
        ends = [pk for pk in (tie.city_a_id, tie.city_b_id) if pk in index]
        if len(ends) == 2:
            direct.append(tie)
        for pk in ends:
            i = index[pk]
            by_kind[tie.kind][i] += 1
            by_decade[_decade(tie)][i] += 1
            partner = tie.city_b if tie.city_a_id == pk else tie.city_a
            partners[i].setdefault(partner.pk, (partner, []))[1].append(tie.kind)

    figures = _latest_figures(ids)
    memberships = list(
        Membership.objects.filter(city__in=ids)
        .select_related("organization")
        .order_by("organization__name", "since_lower", "id")
    )
    themes_through = City.themes.through.objects.filter(city_id__in=ids).select_related("theme")

    shared = _shared_partners(partners, set(ids))
    result = {
        "cities": [
            {
                **_brief(c),
                "country_name": c.country_name,
                "region": region_of(c.country),
                "region_name": region_name(region_of(c.country)),
                "latitude": c.latitude,
                "longitude": c.longitude,
            }
            for c in cities
        ],
        "figures": _figure_rows(cities, by_kind, partners, memberships, figures),
        "ties_by_kind": [
            {"kind": kind, "label": label, "counts": by_kind[kind]}
            for kind, label in TieKind.choices
            if kind in by_kind
        ],
        "partners_by_region": _regions(partners),
        "ties_by_decade": _decades(by_decade),
        "shared_partners": shared,
        "direct_ties": [
            {
                "cities": [tie.city_a.slug, tie.city_b.slug],
                "kind": tie.kind,
                "kind_label": tie.get_kind_display(),
                "start": tie.start,
                "start_display": humanize(tie.start),
                "url": tie.get_absolute_url(),
            }
            for tie in direct
        ],
        "organizations": _organizations(memberships, index, n),
        "themes": _themes(themes_through, index, n),
    }
    if drawing:
        result["shared_network"] = _shared_network(cities, shared, direct)
    return result


def _figure_rows(cities, by_kind, partners, memberships, figures):
    def stated(measure):
        return [
            _stated(figures[(c.pk, measure)]) if (c.pk, measure) in figures else None
            for c in cities
        ]

    rows = [
        {
            "key": "population",
            "label": "Population",
            "recorded": [c.population for c in cities],
            "recorded_note": [
                f"in {c.population_year}" if c.population and c.population_year else ""
                for c in cities
            ],
            "stated": stated(Measure.POPULATION),
        },
        {
            "key": "ties",
            "label": "Ties, all kinds",
            "recorded": [sum(counts[i] for counts in by_kind.values()) for i in range(len(cities))],
            "stated": [None for _ in cities],
        },
    ]
    unspecified = by_kind.get(TieKind.UNSPECIFIED) or [0 for _ in cities]
    for measure, kind in MEASURE_TIE_KIND.items():
        rows.append(
            {
                "key": str(measure),
                "label": Measure(measure).label,
                "recorded": by_kind[kind] if kind in by_kind else [0 for _ in cities],
                # Twinnings whose source does not say sister, partner or friendship may be
                # any of the three: "stated 53; recorded 0 sister and 52 of unknown kind".
                "recorded_note": [f"and {n:,} of unknown kind" if n else "" for n in unspecified],
                "stated": stated(measure),
            }
        )
    rows.append(
        {
            "key": "partner_countries",
            "label": "Partner countries",
            "recorded": [len({c.country for c, _k in p.values() if c.country}) for p in partners],
            "stated": [None for _ in cities],
        }
    )
    rows.append(
        {
            "key": "memberships",
            "label": "Network memberships",
            "recorded": [
                len({m.organization_id for m in memberships if m.city_id == c.pk}) for c in cities
            ],
            "stated": [None for _ in cities],
        }
    )
    return rows


def _regions(partners):
    counts = defaultdict(lambda: [0 for _ in partners])
    for i, found in enumerate(partners):
        for city, _kinds in found.values():
            counts[region_of(city.country)][i] += 1
    totals = [len(found) for found in partners]
    order = [*REGIONS, UNKNOWN]
    return [
        {
            "region": region,
            "label": region_name(region),
            "counts": counts[region],
            "shares": [
                round(c / t, 3) if t else 0 for c, t in zip(counts[region], totals, strict=True)
            ],
        }
        for region in order
        if region in counts
    ]


def _decades(by_decade):
    dated = sorted(d for d in by_decade if d is not None)
    rows = []
    if dated:
        n = len(next(iter(by_decade.values())))
        for decade in range(dated[0], dated[-1] + 10, 10):
            counts = by_decade.get(decade, [0] * n)
            rows.append({"decade": decade, "label": f"{decade}s", "counts": counts})
    if None in by_decade:
        rows.append({"decade": None, "label": "date unknown", "counts": by_decade[None]})
    return rows


def _shared_partners(partners, compared):
    """Cities tied to at least two of the compared cities, the most widely shared first."""
    seen = Counter(pk for found in partners for pk in found if pk not in compared)
    rows = []
    for pk, count in seen.items():
        if count < 2:
            continue
        city = next(found[pk][0] for found in partners if pk in found)
        rows.append(
            {
                **_brief(city),
                "shared_by": count,
                "kinds": [sorted(set(found[pk][1])) if pk in found else [] for found in partners],
            }
        )
    rows.sort(key=lambda row: (-row["shared_by"], row["name"], row["slug"]))
    return rows


def _organizations(memberships, index, n):
    """Every organization any compared city belongs to, those shared by most cities first."""
    rows = {}
    for m in memberships:
        org = m.organization
        row = rows.setdefault(
            org.pk,
            {
                "slug": org.slug,
                "name": org.name,
                "acronym": org.acronym,
                "url": org.get_absolute_url(),
                "roles": [None for _ in range(n)],
            },
        )
        i = index[m.city_id]
        if row["roles"][i] is None:  # first (earliest) role per city
            row["roles"][i] = {
                "role": m.role,
                "label": m.get_role_display(),
                "since": m.since,
                "since_display": humanize(m.since, unknown="since: date unknown"),
            }
    result = list(rows.values())
    for row in result:
        row["shared_by"] = sum(1 for r in row["roles"] if r is not None)
        row["shared"] = row["shared_by"] >= 2
    result.sort(key=lambda row: (-row["shared_by"], row["name"]))
    return result


def _themes(through, index, n):
    rows = {}
    for link in through:
        theme = link.theme
        row = rows.setdefault(
            theme.pk, {"slug": theme.slug, "name": theme.name, "cities": [False] * n}
        )
        row["cities"][index[link.city_id]] = True
    return sorted(rows.values(), key=lambda row: (-sum(row["cities"]), row["name"]))


def _and(names):
    """Names as a sentence lists them: "A", "A and B", "A, B and C"."""
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def _shared_network(cities, shared, direct):
    """The compared cities and the partners they share, drawn as a network (see network.py):
    each compared city in its colour, fixed on a circle, each shared partner among the
    cities it is tied to, larger when shared by more. None when they share no partner."""
    if not shared:
        return None
    drawn = shared[:SHARED_DRAWN]
    n = len(cities)
    names = [c.name for c in cities]
    nodes, edges, start = [], [], {}
    for i, city in enumerate(cities):
        # Two cities face each other left and right; three or four stand around a circle.
        angle = math.pi + 2 * math.pi * i / n if n > 2 else math.pi * (1 - i)
        start[city.slug] = (3 * math.cos(angle), 2 * math.sin(angle))
        nodes.append(
            {
                "key": city.slug,
                "name": city.name,
                "url": city.get_absolute_url(),
                "role": "compared",
                "colour": f"c{i % 4}",
                "weight": 1,
                "description": f"{city.name}, compared",
            }
        )
    for row in drawn:
        tied = [i for i, kinds in enumerate(row["kinds"]) if kinds]
        x = sum(start[cities[i].slug][0] for i in tied) / len(tied)
        y = sum(start[cities[i].slug][1] for i in tied) / len(tied)
        start[row["slug"]] = (x, y)
        nodes.append(
            {
                "key": row["slug"],
                "name": row["name"],
                "url": row["url"],
                "role": "shared",
                "colour": "",
                "weight": row["shared_by"],
                "description": f"{row['name']}"
                + (f", {row['country_name']}" if row["country_name"] else "")
                + f": partner of {_and([names[i] for i in tied])}",
            }
        )
        edges += [(cities[i].slug, row["slug"], "shared") for i in tied]
    for pair in sorted({tuple(sorted((t.city_a.slug, t.city_b.slug))) for t in direct}):
        edges.append((*pair, "city"))
    graph = drawing(
        nodes,
        edges,
        label=f"Partners shared by {_and(names)}",
        labelled={"compared", "shared"},
        start=start,
        fixed={c.slug for c in cities},
        width=640,
        height=max(240, min(440, 160 + 10 * len(drawn))),
    )
    graph["more"] = len(shared) - len(drawn)
    return graph


def suggestions(token):
    """Cities to compare with the one `token` names (a slug): its partners with the most
    ties, then the cities of its country with the most, SUGGESTED in all, each with the
    address of the comparison; [] when `token` names no city. Three queries."""
    city = City.objects.filter(slug=str(token).lower()).first()
    if city is None:
        return []
    partners = list(
        City.objects.filter(
            Q(pk__in=Tie.objects.filter(city_a=city).values("city_b"))
            | Q(pk__in=Tie.objects.filter(city_b=city).values("city_a"))
        )
        .annotate(ties=tie_count())
        .order_by("-ties", "name", "pk")[: SUGGESTED // 2]
    )
    peers = []
    if city.country:
        peers = list(
            City.objects.filter(country=city.country)
            .exclude(pk__in=[city.pk, *(p.pk for p in partners)])
            .annotate(ties=tie_count())
            .filter(ties__gt=0)
            .order_by("-ties", "name", "pk")[: SUGGESTED - len(partners)]
        )
    page = reverse("partnerships:compare")
    return [
        {
            **_brief(other),
            "compare_url": f"{page}?cities={city.slug},{other.slug}",
            "why": "partner" if other in partners else "same country",
        }
        for other in [*partners, *peers]
    ]
