"""Cities that may be one place recorded twice, for a curator to judge.

`find_duplicate_cities()` lists candidate pairs with the reasons they look alike:

- the same name (folded, through alternate names) in one country;
- similar names in one country (difflib), compared without administrative wording;
- one name by cities.reconcile's keys: without administrative wording or a second language
  (core), a transliteration (skeleton), without a qualifier (weak), or a gazetteer name of a
  city linked to GeoNames (its SearchName rows: "same GeoNames place 703448");
- the same name, by any key, across a border within a few kilometres: an overseas department
  coded FR in one list and GP in another, a disputed territory;
- close coordinates and a telling word in common.

Two cities linked to two different GeoNames places are two places: names that only look
alike (Bexley, Bromley) do not pair them. Pairs a curator judged to be two places
(NotDuplicate) never come back. Merging a pair lives in partnerships.merging.
"""

import difflib
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from django.db.models import Value

from cities.countries import filed_together
from cities.gazetteer import SAME_PLACE_KM, distance_km
from cities.models import AlternateName, City, NotDuplicate, SearchName
from cities.reconcile import CLOSE_KM, FEW_KM, Strength, name_keys
from cities.text import fold, name_parts

NEAR_KM = 5.0
SIMILARITY = 0.88
# Tokens shared by more cities than this in one country ("san", "saint") say nothing about
# two names being the same; comparing every such pair would be quadratic. Keys (whole
# names) shared by more cities than this are left to the same-name pass.
BLOCK_LIMIT = 300
_GENERIC = {
    "saint", "sankt", "santa", "santo", "sur", "upon", "bad", "city", "town", "district",
    "county", "municipality", "rural", "gmina", "the", "les", "del", "de", "san", "new",
}  # fmt: skip
_DISTINGUISHING = re.compile(
    r"^(\d+[a-z]?|[ivxlc]+|north|south|east|west|upper|lower|old|new|great|little|nord|sud|"
    r"ost|donja|gornja|dolna|gorna|ober|unter|nieder|alt|neu|nizhny|verkhny|greater)$"
)
_STRENGTHS = tuple(Strength)
_EXACT, _CORE, _SKELETON, _WEAK = (strength.rank for strength in _STRENGTHS)
# How alike a key match makes two names, for the ordering of the queue.
_KEY_SIMILARITY = {_EXACT: 1.0, _CORE: 1.0, _SKELETON: 0.95, _WEAK: 0.9}
_KEY_REASONS = {
    _EXACT: "same name",
    _CORE: "one name once administrative words or a second language are set aside (core)",
    _SKELETON: "spellings of one name (skeleton)",
    _WEAK: "one name with and without a qualifier (weak)",
}
# The columns the finder compares and the queue shows; the cities it returns have only these.
_FIELDS = (
    "id", "name", "slug", "folded_name", "country", "latitude", "longitude", "wikidata_id",
    "geonames_id",
)  # fmt: skip
_ALTERNATE, _GAZETTEER, _DISMISSED = "alternate", "gazetteer", "dismissed"

# The names of a city change rarely and the queue is asked for often (the admin index counts
# it): keys are worked out once per spelling and process.
_keys_of = lru_cache(maxsize=1 << 16)(name_keys)


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


class _Row(NamedTuple):
    """One city as the finder reads it (the columns of _FIELDS)."""

    pk: int
    name: str
    slug: str
    folded: str
    country: str
    latitude: float | None
    longitude: float | None
    wikidata_id: str
    geonames_id: int | None

    @property
    def has_coordinates(self):
        return self.latitude is not None and self.longitude is not None


@dataclass(slots=True)
class _Names:
    """Every name of one city, in the forms the passes compare."""

    written: list  # name and alternate names, as written
    folded: set = field(default_factory=set)
    keys: dict = field(default_factory=dict)  # reconcile key -> strongest rank
    forms: set = field(default_factory=set)  # what difflib compares: names without admin words
    gazetteer: dict = field(default_factory=dict)  # folded gazetteer name -> as written

    def add(self, name, folded):
        self.written.append(name)
        self.folded.add(folded)
        cores = []
        for key in _keys_of(name):
            rank = key.strength.rank
            if self.keys.get(key.key, 9) > rank:
                self.keys[key.key] = rank
            if rank == _CORE:
                cores.append(key.key)
        self.forms.update(cores or [folded])


def _neighbours(a, b):
    """Do two folded names differ only in what tells neighbours apart: a number (Prague 1,
    Prague 7), a Roman numeral (Budapest XV, XVI) or a compass word (East/West Orange)?"""
    differing = set(a.split()) ^ set(b.split())
    return bool(differing) and all(_DISTINGUISHING.match(word) for word in differing)


def _similarity(a, b, least=SIMILARITY, matchers=None):
    """difflib's ratio of two folded names; 0 for names of neighbours and below `least`.
    Lengths alone rule out most pairs before any matcher is built; `matchers` (a dict) keeps
    one matcher per second name, whose index of letters difflib then builds once."""
    if 2 * min(len(a), len(b)) < least * (len(a) + len(b)):
        return 0.0
    matcher = None if matchers is None else matchers.get(b)
    if matcher is None:
        matcher = difflib.SequenceMatcher(None, "", b)
        if matchers is not None:
            matchers[b] = matcher
    matcher.set_seq1(a)
    if matcher.quick_ratio() < least:
        return 0.0
    ratio = matcher.ratio()
    return 0.0 if ratio < least or _neighbours(a, b) else ratio


def find_duplicate_cities(cities=None, *, near_km=NEAR_KM, similarity=SIMILARITY):
    """Pairs of cities that may be the same place, best candidates first.

    `cities` (a City QuerySet, default every city) limits the pairs to cities among them.
    Two queries whatever the number of cities: the cities (only the columns the queue shows:
    name, slug, country, coordinates, Wikidata and GeoNames ids), then in one round trip
    their alternate names, their gazetteer names and the pairs curators dismissed. Names are
    compared in blocks (shared keys, shared word starts, grid cells), never all pairs.
    """
    queryset = City.objects.all() if cities is None else cities
    rows = {values[0]: _Row(*values) for values in queryset.order_by("pk").values_list(*_FIELDS)}
    names = {pk: _Names([]) for pk in rows}
    for pk, row in rows.items():
        names[pk].add(row.name, row.folded)
    dismissed = set()
    for city_id, kind, name, folded, other_id in _names_and_decisions(
        None if cities is None else queryset
    ):
        if city_id not in names:
            continue  # a city added between the two queries
        if kind == _ALTERNATE:
            names[city_id].add(name, folded)
        elif kind == _GAZETTEER:
            names[city_id].gazetteer.setdefault(folded, name)
        else:
            dismissed.add((city_id, other_id))

    finder = _Finder(rows, names)
    finder.same_name()
    finder.similar_names(similarity)
    finder.shared_keys()
    finder.close_by(near_km)
    kept = [c for key, c in finder.found.items() if key not in dismissed]
    # City instances for the pairs only, from the rows already read.
    cities_by_id = {}
    for candidate in kept:
        for end in ("city", "other"):
            row = getattr(candidate, end)
            if row.pk not in cities_by_id:
                cities_by_id[row.pk] = City.from_db(queryset.db, _FIELDS, row)
            setattr(candidate, end, cities_by_id[row.pk])
    return sorted(kept, key=lambda c: (-c.score, c.city.pk, c.other.pk))


def _names_and_decisions(cities):
    """(city id, kind, name, folded, other id) rows: every alternate name and gazetteer name
    of `cities` (default: every city), and the pairs curators judged to be two places, in
    one query."""
    parts = [
        AlternateName.objects.values_list("city_id", Value(_ALTERNATE), "name", "folded", Value(0)),
        SearchName.objects.values_list("city_id", Value(_GAZETTEER), "name", "folded", Value(0)),
        NotDuplicate.objects.values_list(
            "city_id", Value(_DISMISSED), Value(""), Value(""), "other_id"
        ),
    ]
    if cities is not None:
        parts = [part.filter(city__in=cities.values("pk")) for part in parts]
    first, *rest = (part.order_by() for part in parts)
    return first.union(*rest, all=True)


class _Finder:
    """The passes over the cities, collecting candidate pairs keyed by (lower id, higher id)."""

    def __init__(self, rows, names):
        self.rows = rows
        self.names = names
        self.found = {}

    def distance(self, a, b):
        if a.has_coordinates and b.has_coordinates:
            return distance_km(a.latitude, a.longitude, b.latitude, b.longitude)
        return None

    def consider(self, a, b, reason, similar=0.0):
        key = (a, b) if a < b else (b, a)
        candidate = self.found.get(key)
        if candidate is None:
            city, other = self.rows[key[0]], self.rows[key[1]]
            distance = self.distance(city, other)
            candidate = self.found[key] = DuplicateCandidate(city, other, [], distance)
        if reason and reason not in candidate.reasons:
            candidate.reasons.append(reason)
        candidate.similarity = max(candidate.similarity, similar)
        return candidate

    def two_places(self, a, b):
        """Linked to two different GeoNames places: the gazetteer keeps them apart."""
        return a.geonames_id is not None and b.geonames_id not in (None, a.geonames_id)

    def same_name(self):
        """The same folded name (or alternate name) within one country."""
        exact = defaultdict(set)
        for pk, names in self.names.items():
            country = self.rows[pk].country
            if country:
                for folded in names.folded:
                    exact[(country, folded)].add(pk)
        for ids in exact.values():
            for a, b in _pairs(ids):
                city, other = self.rows[a], self.rows[b]
                if self.two_places(city, other):
                    d = self.distance(city, other)
                    if d is None or d > FEW_KM:
                        continue
                self.consider(a, b, "same name", 1.0)

    def similar_names(self, least):
        """Similar names within one country ("feodosia", "feodosiya") among cities sharing
        the start of a word, so that the comparison is not quadratic. Names are compared
        without administrative wording: "London Borough of Bexley" is Bexley."""
        blocks = defaultdict(set)
        for pk, names in self.names.items():
            country = self.rows[pk].country
            for form in names.forms:
                for token in form.split():
                    if len(token) >= 3 and token not in _GENERIC:
                        blocks[(country, token[:4])].add(pk)
        compared, matchers = set(), {}
        for (country, _prefix), ids in blocks.items():
            if not country or len(ids) < 2 or len(ids) > BLOCK_LIMIT:
                continue
            for a, b in _pairs(ids):
                if (a, b) in compared or (a, b) in self.found:  # found: by the same name
                    continue
                compared.add((a, b))
                city, other = self.rows[a], self.rows[b]
                if self.two_places(city, other):
                    continue
                best = max(
                    (
                        _similarity(x, y, least, matchers)
                        for x in self.names[a].forms
                        for y in self.names[b].forms
                        if x != y
                    ),
                    default=0.0,
                )
                if best < least:
                    continue
                distance = self.distance(city, other)
                # Far apart, similar names are usually different towns (Bad Urach, Bad Wurzach).
                if distance is None or distance <= SAME_PLACE_KM:
                    self.consider(a, b, f"similar names ({best:.0%})", best)

    def shared_keys(self):
        """Names that reconcile's keys say are one (core, skeleton, weak; exact across a
        border), and a name of one city that is a gazetteer name of another."""
        index = defaultdict(list)
        for pk, names in self.names.items():
            for key, rank in names.keys.items():
                index[key].append((pk, rank))
        matches = {}  # pair -> (rank, None or the gazetteer name: (GeoNames id, as written))

        def match(a, b, rank, gazetteer=None):
            pair = (a, b) if a < b else (b, a)
            if pair not in self.found and matches.get(pair, (9,))[0] > rank:
                matches[pair] = (rank, gazetteer)

        for entries in index.values():
            if 1 < len(entries) <= BLOCK_LIMIT:
                for n, (a, rank_a) in enumerate(entries):
                    for b, rank_b in entries[n + 1 :]:
                        if a != b:
                            match(a, b, max(rank_a, rank_b))
        # Gazetteer names are looked up, never indexed: most of them name nothing else.
        for pk, names in self.names.items():
            place = self.rows[pk].geonames_id
            for folded, shown in names.gazetteer.items():
                entries = index.get(folded, ())
                if len(entries) <= BLOCK_LIMIT:
                    for other, rank in entries:
                        if other != pk:
                            match(pk, other, rank, (place, shown))
        for (a, b), (rank, gazetteer) in matches.items():
            self._judge(a, b, rank, gazetteer)

    def _judge(self, a, b, rank, gazetteer):
        """List a pair whose names share a key at `rank`, or a gazetteer name, when the
        countries and the coordinates allow it."""
        city, other = self.rows[a], self.rows[b]
        if self.two_places(city, other) or _neighbours(city.folded, other.folded):
            return  # Budapest XI and Budapest XII have one skeleton
        if rank == _WEAK and _qualified_apart(self.names[a].written, self.names[b].written):
            return  # Berlin – Mitte is not Mitte (Hamburg)
        d = self.distance(city, other)
        countries = [code for code in (city.country, other.country) if code]
        if len(countries) == 2 and countries[0] == countries[1]:
            # A name on its own decides within a country only when the wording, not the
            # spelling, differs (reconcile's rule); a spelling needs the coordinates to agree.
            limit = SAME_PLACE_KM if gazetteer and rank <= _CORE else CLOSE_KM
            if d is None and rank > _CORE or d is not None and d > limit:
                return
            where = None if d is None else f"{d:.1f} km apart"
        else:
            # Across a border only where one place may be filed under either country, and
            # where the coordinates say it is one place.
            if d is None or d > FEW_KM:
                return
            if len(countries) == 2:
                if not filed_together(*countries):
                    return
                where = f"in {countries[0]} and {countries[1]}, {d:.1f} km apart"
            else:
                without = "one of them without a country" if countries else "no country"
                where = f"{without}, {d:.1f} km apart"
        self.consider(a, b, _reason(rank, gazetteer), _KEY_SIMILARITY[rank])
        if where:
            self.consider(a, b, where)

    def close_by(self, near_km):
        """Close coordinates and a telling word in common (districts of one city share only
        their parent's name, which name_parts sets aside), within one country: a grid of
        cells about near_km high, each pair of cells visited once, from the lower one."""
        cell = near_km / 111.0
        grid = defaultdict(list)
        for city in self.rows.values():
            if city.has_coordinates:
                key = (math.floor(city.latitude / cell), math.floor(city.longitude / cell))
                grid[key].append(city)
        words = {}
        for (row, col), here in grid.items():
            # A degree of longitude shrinks towards the poles: the cells are as wide in
            # degrees, so more of them lie within near_km where the two rows are nearer one.
            poleward = min(max(abs(row), abs(row + 2)) * cell, 90.0)
            reach = math.ceil(1 / max(math.cos(math.radians(poleward)), 0.05))
            for n, city in enumerate(here):
                for other in here[n + 1 :]:
                    self._close(city, other, near_km, words)
            ahead = [(row, col + dc) for dc in range(1, reach + 1)]
            ahead += [(row + 1, col + dc) for dc in range(-reach, reach + 1)]
            for key in ahead:
                for other in grid.get(key, ()):
                    for city in here:
                        self._close(city, other, near_km, words)

    def _close(self, city, other, near_km, words):
        if other.country != city.country:
            return
        d = self.distance(city, other)
        if d > near_km:
            return
        pair = (city.pk, other.pk) if city.pk < other.pk else (other.pk, city.pk)
        if pair not in self.found:
            if self.two_places(city, other) or _neighbours(city.folded, other.folded):
                return
            for pk in pair:
                if pk not in words:
                    words[pk] = _words(self.names[pk].written)
            if not words[city.pk] & words[other.pk] or _qualified_apart(
                self.names[city.pk].written, self.names[other.pk].written
            ):
                return
        self.consider(city.pk, other.pk, f"{d:.1f} km apart")


def _reason(rank, gazetteer):
    """Why two names are one, in words: the key they share, or the gazetteer name."""
    if gazetteer is None:
        return _KEY_REASONS[rank]
    place, shown = gazetteer
    reason = (
        f"same GeoNames place {place} ({shown} is one of its names"
        if place
        else f"a gazetteer name in common ({shown}"
    )
    return reason + (f"; {_STRENGTHS[rank]})" if rank > _CORE else ")")


def _pairs(ids):
    ordered = sorted(ids)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            yield a, b


def _qualified_apart(written, other_written):
    """Do both cities' names say where they are, and differently ("Berlin – Mitte",
    "Mitte (Hamburg)")? Then the same head is two places."""
    where = {name_parts(name)[1] for name in written} - {""}
    elsewhere = {name_parts(name)[1] for name in other_written} - {""}
    return bool(where and elsewhere) and not where & elsewhere


def _words(written):
    """Telling words of a city's names: those of the place itself, not of its qualifier or
    of administrative wording ("London Borough of Bexley" says Bexley)."""
    words = set()
    for name in written:
        head, _where = name_parts(name)
        cores = [key.key for key in _keys_of(head) if key.strength is Strength.CORE]
        for form in cores or [fold(head)]:
            words.update(w for w in form.split() if len(w) >= 4 and w not in _GENERIC)
    return words
