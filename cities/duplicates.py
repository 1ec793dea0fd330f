"""Cities that may be one place recorded twice, for a curator to judge.

`find_duplicate_cities()` lists candidate pairs with the reasons they look alike (same name
after folding, similar names, close coordinates). It needs nothing but cities and their
names; merging a pair (which moves ties and memberships) lives in partnerships.merging.
"""

import difflib
import math
import re
from collections import defaultdict
from dataclasses import dataclass

from cities.gazetteer import SAME_PLACE_KM, distance_km
from cities.models import AlternateName, City
from cities.text import fold, name_parts

NEAR_KM = 5.0
SIMILARITY = 0.88
# Tokens shared by more cities than this in one country ("san", "saint") say nothing about
# two names being the same; comparing every such pair would be quadratic.
BLOCK_LIMIT = 300
_GENERIC = {
    "saint", "sankt", "santa", "santo", "sur", "upon", "bad", "city", "town", "district",
    "county", "municipality", "rural", "gmina", "the", "les", "del", "de", "san", "new",
}  # fmt: skip
_DISTINGUISHING = re.compile(
    r"^(\d+[a-z]?|[ivxlc]+|north|south|east|west|upper|lower|old|new|great|little|nord|sud|"
    r"ost|donja|gornja|dolna|gorna|ober|unter|nieder|alt|neu|nizhny|verkhny|greater)$"
)


@dataclass
class DuplicateCandidate:
    """Two cities that may be one place, with the reasons, strongest first."""

    city: City
    other: City
    reasons: list
    distance_km: float | None = None
    similarity: float = 0.0

    @property
    def score(self):
        """Higher for likelier duplicates: same or similar names count most, then closeness."""
        near = 0.0 if self.distance_km is None else max(0.0, 1 - self.distance_km / SAME_PLACE_KM)
        return round(self.similarity * 2 + near, 3)


def _neighbours(a, b):
    """Do two folded names differ only in what tells neighbours apart: a number (Prague 1,
    Prague 7), a Roman numeral (Budapest XV, XVI) or a compass word (East/West Orange)?"""
    differing = set(a.split()) ^ set(b.split())
    return bool(differing) and all(_DISTINGUISHING.match(word) for word in differing)


def _similarity(a, b):
    """difflib's ratio of two folded names; 0 for names of neighbours."""
    if _neighbours(a, b):
        return 0.0
    matcher = difflib.SequenceMatcher(None, a, b)
    if matcher.real_quick_ratio() < SIMILARITY or matcher.quick_ratio() < SIMILARITY:
        return 0.0
    return matcher.ratio()


def find_duplicate_cities(cities=None, *, near_km=NEAR_KM, similarity=SIMILARITY):
    """Pairs of cities that may be the same place, best candidates first.

    A pair qualifies when both cities are in the same country and any of their names (name or
    alternate names, folded) are equal or similar, or when the two lie closer than `near_km`
    and share a country or a similar name. Runs in two queries and memory proportional to
    the number of cities; name comparison is blocked by shared words so it is not quadratic.
    """
    cities = list((cities if cities is not None else City.objects.all()).order_by("pk"))
    by_id = {city.pk: city for city in cities}
    names = defaultdict(set)  # folded names, for comparing spellings
    raw_names = defaultdict(list)  # names as written, whose qualifiers name_parts can see
    for city in cities:
        names[city.pk].add(city.folded_name or fold(city.name))
        raw_names[city.pk].append(city.name)
    alternates = AlternateName.objects.filter(city_id__in=by_id).values_list(
        "city_id", "name", "folded"
    )
    for city_id, name, folded in alternates:
        names[city_id].add(folded)
        raw_names[city_id].append(name)

    found = {}

    def consider(a, b, reason=None, similar=0.0):
        key = (min(a, b), max(a, b))
        candidate = found.get(key)
        if candidate is None:
            city, other = by_id[key[0]], by_id[key[1]]
            candidate = found[key] = DuplicateCandidate(city, other, [], _distance(city, other))
        if reason and reason not in candidate.reasons:
            candidate.reasons.append(reason)
        candidate.similarity = max(candidate.similarity, similar)
        return candidate

    # Same folded name within one country; similar names among cities sharing the start of
    # a word ("feodosia", "feodosiya"), so that the comparison is not quadratic.
    exact = defaultdict(set)
    blocks = defaultdict(set)
    for city_id, folded_names in names.items():
        country = by_id[city_id].country
        for folded in folded_names:
            exact[(country, folded)].add(city_id)
            for token in folded.split():
                if len(token) >= 3 and token not in _GENERIC:
                    blocks[(country, token[:4])].add(city_id)
    for (country, _folded), ids in exact.items():
        if country and len(ids) > 1:
            for a, b in _pairs(ids):
                consider(a, b, "same name", 1.0)
    compared = set()
    for (country, _prefix), ids in blocks.items():
        if not country or len(ids) < 2 or len(ids) > BLOCK_LIMIT:
            continue
        for a, b in _pairs(ids):
            if (a, b) in compared or (a, b) in found:  # found here: by the same name
                continue
            compared.add((a, b))
            best = max(
                (_similarity(x, y) for x in names[a] for y in names[b] if x != y),
                default=0.0,
            )
            if best < similarity:
                continue
            distance = _distance(by_id[a], by_id[b])
            # Far apart, similar names are usually different towns (Bad Urach, Bad Wurzach).
            if distance is None or distance <= SAME_PLACE_KM:
                consider(a, b, f"similar names ({best:.0%})", best)

    # Close coordinates and a word in common (districts of one city share only their
    # parent's name, which name_parts sets aside): a grid of cells about near_km high,
    # widened towards the poles where a degree of longitude shrinks.
    cell = near_km / 111.0
    grid = defaultdict(list)
    for city in cities:
        if city.has_coordinates:
            grid[(math.floor(city.latitude / cell), math.floor(city.longitude / cell))].append(city)
    for city in cities:
        if not city.has_coordinates:
            continue
        row, col = math.floor(city.latitude / cell), math.floor(city.longitude / cell)
        reach = math.ceil(1 / max(math.cos(math.radians(city.latitude)), 0.05))
        words = None
        for dr in (-1, 0, 1):
            for dc in range(-reach, reach + 1):
                for other in grid.get((row + dr, col + dc), ()):
                    if other.pk <= city.pk:
                        continue
                    d = _distance(city, other)
                    if d > near_km:
                        continue
                    key = (city.pk, other.pk)
                    if key not in found:
                        if city.country != other.country:
                            continue
                        words = words if words is not None else _words(raw_names[city.pk])
                        if not words & _words(raw_names[other.pk]) or _neighbours(
                            city.folded_name, other.folded_name
                        ):
                            continue
                    consider(city.pk, other.pk, f"{d:.1f} km apart")
    return sorted(found.values(), key=lambda c: (-c.score, c.city.pk, c.other.pk))


def _pairs(ids):
    ordered = sorted(ids)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            yield a, b


def _distance(city, other):
    if city.has_coordinates and other.has_coordinates:
        return distance_km(city.latitude, city.longitude, other.latitude, other.longitude)
    return None


def _words(raw_names):
    """Telling words of a city's names: those of the place itself, not of its qualifier."""
    words = set()
    for name in raw_names:
        head, _where = name_parts(name)
        words.update(w for w in fold(head).split() if len(w) >= 4 and w not in _GENERIC)
    return words
