"""Partner suggestions for a city: computed from the atlas, never stated by a source.

Two lists, each item with its reason in words:

- **Cities like this one**: cities that share partners with the city (Adamic–Adar: a shared
  partner counts more the fewer ties it has), networks (a regional branch's members count as
  members of its parent too) and themes, lifted a little when they lie in the same region or
  are of similar size. A signal without data (a population not recorded, a country whose
  region is unknown) counts for nothing rather than being guessed.
- **Partners of your partners**: cities tied to the city's partners, ranked by shared partners
  alone (the same Adamic–Adar score), with the partners named.

The city itself and its partners (ties of any kind and status) are never suggested. Both lists
are ranked by `rank()` over `Signals`; `suggestions_for()` gathers the signals in four queries
whatever the number of ties, and `signals_in_memory()` gathers the very same signals from an
`Atlas` held in memory, for the offline evaluation (bench/bench_suggestions.py): both read at
most `POOL` candidates per source, chosen in the same order, so the two rankings agree.
"""

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace

from django.db import connection

from cities.models import City
from cities.regions import UNKNOWN, region_name, region_of

from .models import Membership, Organization, Tie

# Candidates read per source (shared partners, networks, themes): bounds what a city with
# very connected partners costs; the real atlas's largest pool is about 500 cities.
POOL = 500
SHOWN = 10
# A size similarity from here up reads as "similar population" (within about 3.2 times).
SIMILAR_SIZE = 0.5


@dataclass(frozen=True)
class Weights:
    """How much each signal adds to a candidate's score."""

    partners: float = 0.0  # per unit of Adamic–Adar over shared partners
    networks: float = 0.0  # per shared network
    themes: float = 0.0  # per shared theme
    region: float = 0.0  # when both lie in the same region
    size: float = 0.0  # times the size similarity (1 for equal populations, 0 from 10 times)


# Tuned on seed 0 of bench/bench_suggestions.py and checked on seeds 1 and 2 (see
# bench/README.md). Networks and themes are too sparse in the atlas to tune: their weights
# are set by hand so that one shared network weighs about as much as a shared partner.
LIKE_THIS = Weights(partners=1.0, networks=0.5, themes=0.25, region=0.2, size=0.2)
PARTNERS_ONLY = Weights(partners=1.0)


@dataclass
class Signals:
    """What a candidate has in common with the city; None where the data is missing."""

    shared_partners: int = 0
    partner_score: float = 0.0  # Adamic–Adar: sum over shared partners of 1 / ln(their ties)
    shared_networks: int = 0
    shared_themes: int = 0
    same_region: bool | None = None
    size_similarity: float | None = None


@dataclass(frozen=True)
class CityRow:
    """The columns of a city that ranking and reasons need."""

    pk: int
    name: str
    slug: str
    country: str
    population: int | None


@dataclass
class Suggestion:
    """One suggested city, as the profile and the API show it: the signals' values, flat."""

    city: dict  # slug, name, country, country_name, url (the profile page)
    score: float
    reason: str
    shared_partners: int
    partner_score: float
    shared_networks: int
    shared_themes: int
    same_region: bool | None
    size_similarity: float | None
    via: list  # the shared partners, the most populous first: [{slug, name, url}]


# Scoring, shared by the page, the API and the evaluation ------------------------------------


def partner_weight(ties):
    """Adamic–Adar weight of a shared partner with `ties` partners (at least 2: the city and
    the candidate)."""
    return 1.0 / math.log(ties)


def size_similarity(population, other):
    """1 for equal populations, falling to 0 at a ratio of 10; None when either is unknown."""
    if not population or not other:
        return None
    return max(0.0, 1.0 - abs(math.log10(population / other)))


def same_region(country, other):
    """Whether two countries lie in the same region; None when either region is unknown."""
    region, theirs = region_of(country), region_of(other)
    if UNKNOWN in (region, theirs):
        return None
    return region == theirs


def complete(signals, city, candidate):
    """`signals` with the region and size comparisons of `city` and `candidate` (CityRows)."""
    return replace(
        signals,
        same_region=same_region(city.country, candidate.country),
        size_similarity=size_similarity(city.population, candidate.population),
    )


def score(signals, weights):
    value = (
        weights.partners * signals.partner_score
        + weights.networks * signals.shared_networks
        + weights.themes * signals.shared_themes
        + (weights.region if signals.same_region else 0.0)
        + weights.size * (signals.size_similarity or 0.0)
    )
    # Rounded, so that sums taken in another order (SQL, Python) rank alike.
    return round(value, 9)


def rank(candidates, rows, weights, limit=None):
    """[(city id, score)] of the candidates ({id: Signals}) scoring above 0 under `weights`,
    best first; equal scores by name, then id (`rows`: {id: CityRow})."""
    scored = [(pk, score(s, weights)) for pk, s in candidates.items()]
    scored = [(pk, value) for pk, value in scored if value > 0]
    scored.sort(key=lambda item: (-item[1], rows[item[0]].name, item[0]))
    return scored[:limit] if limit is not None else scored


def _top(counts, key):
    """The POOL best of {id: value} by `key(value)` descending, then id: the order of the
    queries' ORDER BY … LIMIT."""
    return sorted(counts, key=lambda pk: (-key(counts[pk]), pk))[:POOL]


# The same signals from memory, for the offline evaluation -----------------------------------


@dataclass
class Atlas:
    """Ties, memberships and themes held in memory. `networks` maps a city to the
    organizations it belongs to, each regional branch's parent included."""

    rows: dict  # {id: CityRow}
    partners: dict  # {id: set of ids}
    networks: dict = field(default_factory=dict)  # {id: set of organization ids}
    themes: dict = field(default_factory=dict)  # {id: set of theme ids}

    def __post_init__(self):
        self.members = defaultdict(set)
        for pk, organizations in self.networks.items():
            for organization in organizations:
                self.members[organization].add(pk)
        self.tagged = defaultdict(set)
        for pk, themes in self.themes.items():
            for theme in themes:
                self.tagged[theme].add(pk)


def signals_in_memory(atlas, pk):
    """{candidate id: Signals} for city `pk`, as `suggestions_for()` reads them."""
    mine = atlas.partners.get(pk, set())
    excluded = mine | {pk}
    shared, weight = defaultdict(int), defaultdict(float)
    for partner in mine:
        ties = atlas.partners[partner]
        for other in ties:
            if other not in excluded:
                shared[other] += 1
                weight[other] += partner_weight(len(ties))
    networks = _shared(atlas.networks.get(pk, ()), atlas.members, excluded)
    themes = _shared(atlas.themes.get(pk, ()), atlas.tagged, excluded)

    candidates = defaultdict(Signals)
    for other in _top(weight, float):
        candidates[other].shared_partners = shared[other]
        candidates[other].partner_score = weight[other]
    for other in _top(networks, int):
        candidates[other].shared_networks = networks[other]
    for other in _top(themes, int):
        candidates[other].shared_themes = themes[other]
    city = atlas.rows[pk]
    return {other: complete(s, city, atlas.rows[other]) for other, s in candidates.items()}


def _shared(groups, members_of, excluded):
    counts = defaultdict(int)
    for group in groups:
        for other in members_of[group]:
            if other not in excluded:
                counts[other] += 1
    return counts


# The signals from the database --------------------------------------------------------------


def _names():
    quote = connection.ops.quote_name
    column = lambda model, name: quote(model._meta.get_field(name).column)  # noqa: E731
    return {
        "tie": quote(Tie._meta.db_table),
        "a": column(Tie, "city_a"),
        "b": column(Tie, "city_b"),
        "city": quote(City._meta.db_table),
        "membership": quote(Membership._meta.db_table),
        "m_city": column(Membership, "city"),
        "m_org": column(Membership, "organization"),
        "organization": quote(Organization._meta.db_table),
        "parent": column(Organization, "parent"),
        "tagging": quote(City.themes.through._meta.db_table),
        "t_city": quote(City.themes.through._meta.get_field("city").column),
        "t_theme": quote(City.themes.through._meta.get_field("theme").column),
    }


# The city's partners, whichever end each tie was entered at (%s twice: the city).
MINE = """
    mine(city) AS (
        SELECT {b} FROM {tie} WHERE {a} = %s
        UNION
        SELECT {a} FROM {tie} WHERE {b} = %s
    )"""
CANDIDATE = "c.id, c.name, c.slug, c.country, c.population"

# Cities tied to a partner, with how many partners they share and their Adamic–Adar score:
# `ends` holds each (partner, city tied to it) once, whatever the number of ties between them.
SHARED_PARTNERS = (
    "WITH"
    + MINE
    + """,
    ends(partner, other) AS (
        SELECT {a}, {b} FROM {tie} WHERE {a} IN (SELECT city FROM mine)
        UNION
        SELECT {b}, {a} FROM {tie} WHERE {b} IN (SELECT city FROM mine)
    ),
    degree(partner, n) AS (SELECT partner, COUNT(*) FROM ends GROUP BY partner)
    SELECT {candidate}, COUNT(*) AS shared,
        SUM(1.0 / LN(CAST(degree.n AS DOUBLE PRECISION))) AS weight
    FROM ends
    JOIN degree ON degree.partner = ends.partner
    JOIN {city} AS c ON c.id = ends.other
    WHERE ends.other <> %s AND ends.other NOT IN (SELECT city FROM mine)
    GROUP BY {candidate}
    ORDER BY weight DESC, c.id
    LIMIT %s
"""
)

# Cities in the organizations the city belongs to; a branch's members belong to its parent.
SHARED_NETWORKS = (
    "WITH"
    + MINE
    + """,
    ours(organization) AS (
        SELECT {m_org} FROM {membership} WHERE {m_city} = %s
        UNION
        SELECT o.{parent} FROM {membership} AS m JOIN {organization} AS o ON o.id = m.{m_org}
        WHERE m.{m_city} = %s AND o.{parent} IS NOT NULL
    ),
    theirs(city, organization) AS (
        SELECT {m_city}, {m_org} FROM {membership}
        WHERE {m_org} IN (SELECT organization FROM ours) AND {m_city} IS NOT NULL
        UNION
        SELECT m.{m_city}, o.{parent} FROM {membership} AS m
        JOIN {organization} AS o ON o.id = m.{m_org}
        WHERE o.{parent} IN (SELECT organization FROM ours) AND m.{m_city} IS NOT NULL
    )
    SELECT {candidate}, COUNT(*) AS shared
    FROM theirs JOIN {city} AS c ON c.id = theirs.city
    WHERE theirs.city <> %s AND theirs.city NOT IN (SELECT city FROM mine)
    GROUP BY {candidate}
    ORDER BY shared DESC, c.id
    LIMIT %s
"""
)

SHARED_THEMES = (
    "WITH"
    + MINE
    + """
    SELECT {candidate}, COUNT(*) AS shared
    FROM {tagging} AS t JOIN {city} AS c ON c.id = t.{t_city}
    WHERE t.{t_theme} IN (SELECT {t_theme} FROM {tagging} WHERE {t_city} = %s)
        AND t.{t_city} <> %s AND t.{t_city} NOT IN (SELECT city FROM mine)
    GROUP BY {candidate}
    ORDER BY shared DESC, c.id
    LIMIT %s
"""
)

# The partners the city shares with each of a few candidates (`{shown}`: their ids).
VIA = (
    "WITH"
    + MINE
    + """
    SELECT pairs.other, c.id, c.name, c.slug, c.population
    FROM (
        SELECT {a} AS partner, {b} AS other FROM {tie}
        WHERE {b} IN ({shown}) AND {a} IN (SELECT city FROM mine)
        UNION
        SELECT {b}, {a} FROM {tie}
        WHERE {a} IN ({shown}) AND {b} IN (SELECT city FROM mine)
    ) AS pairs
    JOIN {city} AS c ON c.id = pairs.partner
"""
)


def _fetch(sql, params, **extra):
    with connection.cursor() as cursor:
        cursor.execute(sql.format(**_names(), candidate=CANDIDATE, **extra), params)
        return cursor.fetchall()


def signals_from_database(city):
    """({candidate id: Signals}, {id: CityRow}) for `city`: three queries."""
    pk, rows, candidates = city.pk, {}, defaultdict(Signals)

    def read(sql, params):
        for row in _fetch(sql, [pk, pk, *params, POOL]):
            rows[row[0]] = CityRow(*row[:5])
            yield row[0], row[5:]

    for other, (shared, weight) in read(SHARED_PARTNERS, [pk]):
        candidates[other].shared_partners = shared
        candidates[other].partner_score = float(weight)
    for other, (shared,) in read(SHARED_NETWORKS, [pk, pk, pk]):
        candidates[other].shared_networks = shared
    for other, (shared,) in read(SHARED_THEMES, [pk, pk]):
        candidates[other].shared_themes = shared
    row = CityRow(pk, city.name, city.slug, city.country, city.population)
    return {other: complete(s, row, rows[other]) for other, s in candidates.items()}, rows


def _via(city, shown):
    """{candidate id: [CityRow of a shared partner]}, the most populous first: one query."""
    if not shown:
        return {}
    placeholders = ", ".join(["%s"] * len(shown))
    pairs = _fetch(VIA, [city.pk, city.pk, *shown, *shown], shown=placeholders)
    via = defaultdict(list)
    for other, *partner in pairs:
        via[other].append(CityRow(*partner[:3], "", partner[3]))
    for partners in via.values():
        partners.sort(key=lambda p: (-(p.population or 0), p.name, p.pk))
    return via


# Reasons ------------------------------------------------------------------------------------


def _count(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def _and(parts):
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def like_reason(signals, city, candidate_country):
    """Why a city is like `city`, for example "shares 4 partners and 2 networks with
    Yokohama; also in Asia; similar population"."""
    shared = [
        _count(n, word)
        for n, word in (
            (signals.shared_partners, "partner"),
            (signals.shared_networks, "network"),
            (signals.shared_themes, "theme"),
        )
        if n
    ]
    parts = [f"shares {_and(shared)} with {city.name}"] if shared else []
    if signals.same_region:
        parts.append(f"also in {region_name(region_of(candidate_country))}")
    if (signals.size_similarity or 0) >= SIMILAR_SIZE:
        parts.append("similar population")
    return "; ".join(parts)


def partners_reason(names, total):
    """Whose partner a city is, for example "partner of Taipei, Odesa and 2 more": up to
    three named, else two and a count."""
    if total <= 3 and len(names) == total:
        return f"partner of {_and(names)}"
    return f"partner of {', '.join(names[:2])} and {total - 2} more"


# What the profile and the API show ----------------------------------------------------------


def _brief(row):
    city = City(pk=row.pk, name=row.name, slug=row.slug, country=row.country)
    return {
        "slug": row.slug,
        "name": row.name,
        "country": row.country,
        "country_name": city.country_name,
        "url": city.get_absolute_url(),
    }


def suggestions_for(city, limit=SHOWN):
    """{"like_this": [Suggestion], "partners_of_partners": [Suggestion]} for `city`, each
    list at most `limit` long. Four queries, however many ties the city and its partners
    have: shared partners, shared networks, shared themes (each one GROUP BY), then the
    partners named in the reasons (left out when nothing is suggested)."""
    candidates, rows = signals_from_database(city)
    like = rank(candidates, rows, LIKE_THIS, limit)
    tied = {pk: s for pk, s in candidates.items() if s.shared_partners}
    partners = rank(tied, rows, PARTNERS_ONLY, limit)
    via = _via(city, sorted({pk for pk, _score in like + partners}))

    def suggestion(pk, value, reason):
        return Suggestion(
            city=_brief(rows[pk]),
            score=value,
            reason=reason,
            **asdict(candidates[pk]),
            via=[{"slug": p.slug, "name": p.name, "url": _brief(p)["url"]} for p in via[pk]],
        )

    def partners_of(pk):
        names = [p.name for p in via[pk]]
        return partners_reason(names[:3], candidates[pk].shared_partners)

    return {
        "like_this": [
            suggestion(pk, value, like_reason(candidates[pk], city, rows[pk].country))
            for pk, value in like
        ],
        "partners_of_partners": [suggestion(pk, value, partners_of(pk)) for pk, value in partners],
    }
