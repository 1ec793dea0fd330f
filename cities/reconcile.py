"""One city per place, found by any name: the pure building blocks of reconciliation.

The importer, the duplicates finder and search all ask the same two questions: "may these
two names be the same place?" and "which GeoNames place is this?". This module answers them
without touching the database.

Names and keys
    `clean_name` gives the spelling to store. `name_keys` gives the keys under which a name
    is matched, each with a strength, strongest first:

    - exact: the folded clean name ("Kraków" → "krakow").
    - core: the name without administrative wording ("Gmina Sobótka", "Yokohama-shi",
      "Municipality of X", "City of X", "Comune di X" → the place's own name), and each half
      of a bilingual name ("Biel/Bienne", "Donostia - San Sebastián").
    - skeleton: a transliteration-insensitive form of the exact and core keys ("Mogilyov",
      "Mogiljov" and "Mogilev" agree; "Odessa" and "Odesa" agree).
    - weak: what is left when a qualifier is dropped ("Rome, Georgia", "Frankfurt (Oder)",
      "Tokyo – Setagaya" → "Rome", "Frankfurt", "Setagaya") or when a trailing "City" or a
      leading "Ciudad de" is ("Mexico City" → "Mexico": Mexico City and Quebec City are
      real names, so this can only be a hint).

    Two names match when they share a key, at the weaker of the two keys' strengths
    ("Gmina Sobótka" and "Sobótka" match at core). What a match may decide:

    - exact and core: the same place on name and country alone, when only one place of that
      country has the name; with coordinates, the nearest within SAME_PLACE_KM (50 km).
    - skeleton and weak: never on the name alone; the coordinates must also agree, within
      CLOSE_KM (25 km).

    "X County" is never reduced to X: a county is not the town it is named after. Nor is a
    qualifier naming a kind of body ("Göttingen (district)") dropped, even for a weak key.

GeoNames as the authority
    `resolve` finds the GeoNames place (from the offline tables of cities.gazetteer) that a
    name, a country and perhaps coordinates stand for, using every name GeoNames lists. It
    never guesses: several same-named places of one country are told apart by coordinates,
    or by one being at least DOMINANCE (10) times as populous as the next; otherwise the
    answer is "ambiguous". Places GeoNames keeps apart are never merged. Two cases are
    flagged for a curator rather than silently decided:

    - country_differs: the place is filed under another country in GeoNames, but the
      coordinates agree within FEW_KM (Pointe-à-Pitre given as FR is GP in GeoNames). It is
      matched; the caller decides whether to recode, nothing here does.
    - coordinates_disagree: the name is known in the country, but the coordinates are more
      than 50 km from every place of that name there, or sit on a same-named place in
      another country (Rome, US drawn on Rome, Italy). Nothing is matched then.

    The table of places over 15,000 inhabitants is read first; the 5,000 and 1,000 tables
    only when it cannot decide. Names are indexed country by country as they are asked
    for: with every country indexed, the index holds about 30 MB for the 15,000 table and
    90 MB through the 1,000 table, on top of the tables cities.gazetteer keeps.
"""

import math
import re
import threading
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, lru_cache

from cities.gazetteer import SAME_PLACE_KM, Entry, distance_km, entries
from cities.text import fold, name_parts

__all__ = [
    "CLOSE_KM",
    "DOMINANCE",
    "FEW_KM",
    "SAME_PLACE_KM",
    "TABLES",
    "NameKey",
    "Resolution",
    "Strength",
    "clean_name",
    "name_keys",
    "names_match",
    "resolve",
    "search_names",
    "skeleton",
]

# Skeleton and weak keys only say "perhaps": the places must lie this close.
CLOSE_KM = 25.0
# Coordinates this close to a place are that place, whatever country the row gives.
FEW_KM = 10.0
# Without coordinates, a place wins over same-named places of its country only when it is
# this many times as populous as the next: Vienna (AT) over nothing, but never one of two
# US towns called Rome (36,000 and 33,000).
DOMINANCE = 10
# GeoNames tables consulted, smallest first; the larger ones only when the smaller cannot
# decide. The 500 table is left out: 235,000 places for villages the atlas rarely has.
TABLES = (15000, 5000, 1000)


# Names ------------------------------------------------------------------------------------


class Strength(StrEnum):
    """How much a key match says, strongest first."""

    EXACT = "exact"
    CORE = "core"
    SKELETON = "skeleton"
    WEAK = "weak"

    @property
    def rank(self):
        return _RANK[self]

    @property
    def needs_coordinates(self):
        """Whether a match this strong must also agree on coordinates (within CLOSE_KM)."""
        return self in (Strength.SKELETON, Strength.WEAK)


_RANK = {strength: n for n, strength in enumerate(Strength)}
_BY_RANK = tuple(Strength)


@dataclass(frozen=True, slots=True)
class NameKey:
    """A key a name is matched under, and how much a match on it says."""

    key: str
    strength: Strength


_WHITE = re.compile(r"\s+")


def clean_name(text):
    """The name as it should be stored: Unicode NFC, format characters removed (zero-width
    spaces and joiners, direction marks, word joiner, byte-order mark, soft hyphen: all of
    category Cf), any run of white space (no-break spaces too) made one space, stripped."""
    text = text or ""
    if text.isprintable() and "  " not in text and text.strip(" ") == text:
        return (
            text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)
        )
    if not text.isprintable():
        # Cf and control characters are exactly what isprintable() rejects, with the white
        # space that the next step folds anyway; most names skip this loop.
        text = "".join(
            " " if ch.isspace() else ch
            for ch in text
            if ch.isspace() or unicodedata.category(ch) not in ("Cf", "Cc")
        )
    text = _WHITE.sub(" ", text).strip()
    # After removal, so that a mark split from its letter by an invisible one recombines.
    return unicodedata.normalize("NFC", text)


# Administrative wording, on folded names (lower-case ASCII words). Longer forms first, so
# that "gmina miejska x" loses both words.
_ADMIN_PREFIXES = (
    "gmina miejska", "gmina miejsko wiejska", "gmina", "miasto", "municipality of",
    "london borough of", "royal borough of", "metropolitan borough of", "borough of",
    "city and county of", "city of", "town of", "landeshauptstadt", "hansestadt",
    "grosse kreisstadt", "kreisstadt", "stadtgemeinde", "marktgemeinde", "gemeinde", "stadt",
    "markt", "ville de", "ville d", "commune de", "commune d", "comune di", "citta di",
    "municipalite de", "municipio de", "municipio", "municipalidad de", "concello de",
    "ajuntament de", "ajuntament d", "ayuntamiento de", "camara municipal de",
    "prefeitura municipal de", "prefeitura de", "municipiul", "orasul", "comuna", "opstina",
    "opcina", "obcina", "obec", "mesto", "grad", "gorod", "misto", "horod",
)  # fmt: skip
# Japanese and Korean municipal suffixes count only as separate words ("Yokohama-shi",
# "Suwon si"): fused, as in "Yokohamashi", they cannot be told from the name's own letters.
_ADMIN_SUFFIXES = (
    "municipality", "municipal", "kommune", "kommun", "borough", "shi", "si", "gun", "ku",
    "gu", "machi", "mura",
)  # fmt: skip
_ADMIN = re.compile(
    rf"^(?:(?:{'|'.join(_ADMIN_PREFIXES)}) )?(?P<rest>.+?)(?: (?:{'|'.join(_ADMIN_SUFFIXES)}))?$"
)
_ADMIN_FIRST = frozenset(prefix.split()[0] for prefix in _ADMIN_PREFIXES)
# Hints only: the wording is part of real names (Mexico City, Ciudad de México).
_WEAK_AFFIXES = re.compile(r"^(?:ciudad de |cidade de )?(?P<rest>.+?)(?: city)?$")
# Municipal suffixes in CJK scripts: 横浜市 is 横浜, 수원시 is 수원. Two characters must
# remain: in 대구 (Daegu) the 구 is part of the name.
_CJK_SUFFIXES = "市시군구区區"
_CJK_SUFFIX = re.compile(rf"(?<=\w\w)[{_CJK_SUFFIXES}]$")


def _core(folded):
    """The folded name without administrative wording, or "" when there is none."""
    words = folded.split(" ")
    if words[0] not in _ADMIN_FIRST and words[-1] not in _ADMIN_SUFFIXES:
        return ""
    rest = _ADMIN.match(folded)["rest"]
    return rest if rest != folded else ""


def _weak(folded):
    if not (folded.endswith(" city") or folded.startswith(("ciudad de ", "cidade de "))):
        return ""
    rest = _WEAK_AFFIXES.match(folded)["rest"]
    return rest if rest != folded else ""


def _qualified_head(text):
    """The name without a qualifier saying where it is ("Rome, Georgia", "Frankfurt (Oder)",
    "Tokyo – Setagaya"), or "" when there is none or it names a kind of body."""
    head, where = name_parts(text.replace(" — ", " – "))
    return head if where else ""


def _bilingual_halves(text):
    """The two names of a bilingual name: "Biel/Bienne", "Donostia - San Sebastián"."""
    for mark in ("/", " - "):
        if mark in text:
            halves = [half.strip() for half in text.split(mark)]
            if len(halves) == 2 and all(halves):
                return halves
    return ()


_SAINTS = {"st": "st", "saint": "st", "sankt": "st", "sint": "st", "sainte": "ste", "ste": "ste"}
# Ordered: j becomes y before "yo" and "ye" lose their y, and those before y becomes i.
_LETTERS = str.maketrans({"j": "y", "w": "v", "x": "ks"})
# German umlauts written out (Kitzbuehel for Kitzbühel) fold like the umlaut itself.
_DIGRAPHS = (
    ("ae", "a"), ("oe", "o"), ("ue", "u"),
    ("kh", "h"), ("tz", "ts"), ("ph", "f"), ("yo", "e"), ("ye", "e"), ("iy", "i"),
)  # fmt: skip
_Y = str.maketrans({"y": "i"})
# Letters only: "Town 11" is not "Town 1".
_DOUBLE = re.compile(r"([a-z])\1+")


def skeleton(folded):
    """A transliteration-insensitive form of a folded name, for the Cyrillic-Latin spellings
    that differ only in convention: Mogilev, Mogilyov and Mogiljov; Feodosia and Feodosiya;
    Odessa and Odesa; Ust-Kamenogorsk and Ustkamenogorsk; St., Sankt and Saint; Kitzbuehel
    and Kitzbühel. Spellings
    that differ by a real sound (Kharkiv, Kharkov) stay apart."""
    words = folded.split(" ")
    text = "".join([_SAINTS.get(word, word) for word in words]).translate(_LETTERS)
    for old, new in _DIGRAPHS:
        if old in text:
            text = text.replace(old, new)
    return _DOUBLE.sub(r"\1", text.translate(_Y))


def _keys(text, exact, strong_only=False):
    """name_keys for a clean name and its fold, as {key: strength}, strongest first; only
    the exact and core keys with `strong_only`."""
    found = {exact: Strength.EXACT}
    cores = []
    core = _core(exact)
    if core:
        cores.append(core)
    if text[-1] in _CJK_SUFFIXES:
        bare = _CJK_SUFFIX.sub("", text)
        if bare != text:
            cores.append(fold(bare))
    if "/" in text or " - " in text:
        for half in _bilingual_halves(text):
            folded = fold(half)
            cores += [folded, _core(folded)]
    for key in cores:
        if key:
            found.setdefault(key, Strength.CORE)
    if strong_only:
        return found
    for key in (exact, *cores):
        if key:
            found.setdefault(skeleton(key), Strength.SKELETON)
    if text[-1] == ")" or "," in text or " – " in text or " — " in text:
        head = _qualified_head(text)
        if head:
            folded = fold(head)
            found.setdefault(folded, Strength.WEAK)
            core = _core(folded)
            if core:
                found.setdefault(core, Strength.WEAK)
    for key in (exact, *cores):
        weak = key and _weak(key)
        if weak:
            found.setdefault(weak, Strength.WEAK)
    found.pop("", None)
    return found


def name_keys(name):
    """The keys a name is matched under, strongest first, each key once at its strongest.

    Exact and core keys may decide on name and country alone when only one place has
    them; skeleton and weak keys need coordinates that agree within CLOSE_KM. Keys of every
    strength are compared with each other, and a match is as strong as the weaker key: a
    skeleton that happens to equal another name's exact key is still a skeleton match.
    """
    text = clean_name(name)
    exact = fold(text)
    if not exact:
        return ()
    return tuple(NameKey(key, strength) for key, strength in _keys(text, exact).items())


def names_match(a, b):
    """The strength at which two names may be one place (the weaker of the two keys, the
    strongest such pair), or None when no key agrees."""
    keys_b = {key.key: key.strength.rank for key in name_keys(b)}
    ranks = [max(key.strength.rank, keys_b[key.key]) for key in name_keys(a) if key.key in keys_b]
    return _BY_RANK[min(ranks)] if ranks else None


# Codes (IATA "ODS", "KRK", "NYC"; US state codes such as "NY"), anything with a digit
# (postal codes), web addresses.
_NOT_A_NAME = re.compile(r"^[A-Z]{2,4}$|\d|://|^www\.|\.(?:com|org|net|gov|edu)\b")


def search_names(entry):
    """The names of a GeoNames place worth indexing for matching and search: its name, then
    every alternate name, cleaned, one per folded spelling (the first GeoNames lists),
    without codes (all-capital ASCII of 2–4 letters such as the airport code "ODS"), names
    with digits (postal codes), web addresses, or names longer than 60 characters.

    For matching and search ONLY, never to show on a profile as "also known as": GeoNames
    lists noise among them ("Bienne" under Vienna, Banqiao's old names under Taipei).
    """
    return tuple(name for name, _folded in _search_names(entry))


def _search_names(entry):
    """(clean name, folded name) pairs of search_names."""
    names, seen = [], set()
    for n, raw in enumerate((entry.name, *entry.alternate_names)):
        name = clean_name(raw)
        if n and (len(name) > 60 or _NOT_A_NAME.search(name)):
            continue
        key = fold(name)
        if key and key not in seen:
            seen.add(key)
            names.append((name, key))
    return names


def _place_keys(entry, strong_only=False):
    """{key: strongest rank} over every name of a place."""
    ranks = {}
    for name, folded in _search_names(entry):
        for key, strength in _keys(name, folded, strong_only).items():
            rank = _RANK[strength]
            if ranks.get(key, 9) > rank:
                ranks[key] = rank
    return ranks


@lru_cache(maxsize=4096)
def _all_place_keys(entry):
    return _place_keys(entry)


# The GeoNames index -----------------------------------------------------------------------
#
# Only exact and core keys are indexed, country by country on first use: they are what may
# decide on a name alone, and resolving the names of one country then folds the names of
# that country's places only. Skeleton and weak keys count only near the given coordinates,
# and so does a place abroad: those are looked for on a grid of all places, among the few
# places around the point, whose keys are worked out then (and cached).

_CELL = 0.25  # degrees: about 28 km north to south


@lru_cache(maxsize=len(TABLES))
def _table(table):
    """The places of a GeoNames table by country, and on a grid of _CELL degrees."""
    by_country, grid = {}, {}
    for place in entries(table):
        by_country.setdefault(place.country, []).append(place)
        cell = (int(place.latitude // _CELL), int(place.longitude // _CELL))
        grid.setdefault(cell, []).append(place)
    return by_country, grid


def _around(table, latitude, longitude, km):
    """[(distance, place)] for the places of a table within `km` of a point."""
    grid = _table(table)[1]
    rows = math.ceil(km / 111.0 / _CELL)
    # A degree of longitude shrinks towards the poles; near them, take whole rings.
    width = 111.32 * max(math.cos(math.radians(latitude)), 0.01)
    ring = int(360 / _CELL)
    cols = min(math.ceil(km / width / _CELL), ring // 2)
    row, col = int(latitude // _CELL), int(longitude // _CELL)
    found = []
    for r in range(row - rows, row + rows + 1):
        for c in range(col - cols, col + cols + 1):
            for place in grid.get((r, (c + ring // 2) % ring - ring // 2), ()):
                d = distance_km(latitude, longitude, place.latitude, place.longitude)
                if d <= km:
                    found.append((d, place))
    return found


def _near_matches(table, keys, latitude, longitude, km):
    """[(distance, rank, place)] for the places within `km` that any key matches."""
    wanted = {key.key: key.strength.rank for key in keys}
    found = []
    for d, place in _around(table, latitude, longitude, km):
        ranks = [
            max(rank, wanted[key]) for key, rank in _all_place_keys(place).items() if key in wanted
        ]
        if ranks:
            found.append((d, min(ranks), place))
    return found


class _Index:
    """The exact and core keys of every name of one country's places → packed (place
    number, rank).

    One index grows table by table: the tables nest (every place over 15,000 is in the
    5,000 table), so a larger table only adds places, numbered after the smaller table's,
    and asking about table T is looking only at places numbered below bounds[T]. Values
    are `number * 4 + rank`, a bare int when only one place has the key: most keys belong
    to one place, and a tuple each would cost about half as much memory again.
    """

    def __init__(self):
        self.places = []
        self.bounds = {}
        self.keys = {}
        self._lock = threading.Lock()

    def add(self, table, places):
        with self._lock:
            if table in self.bounds:
                return
            known = {place.geonames_id for place in self.places}
            new = {}
            for place in places:
                if place.geonames_id in known:
                    continue
                number = len(self.places)
                self.places.append(place)
                for key, rank in _place_keys(place, strong_only=True).items():
                    new.setdefault(key, []).append(number * 4 + rank)
            for key, packed in new.items():
                old = self.keys.get(key)
                if old is not None:
                    packed = [*((old,) if isinstance(old, int) else old), *packed]
                self.keys[key] = packed[0] if len(packed) == 1 else tuple(packed)
            self.bounds[table] = len(self.places)

    def matches(self, keys, table):
        """{place: strongest rank of a match} for the places of `table` the keys match."""
        bound, found = self.bounds[table], {}
        for key in keys:
            value = self.keys.get(key.key, ())
            for packed in (value,) if isinstance(value, int) else value:
                number, rank = divmod(packed, 4)
                if number < bound:
                    place, rank = self.places[number], max(rank, key.strength.rank)
                    if found.get(place, 9) > rank:
                        found[place] = rank
        return found


@cache
def _index(country, table):
    """The index of a country's places in `table` and every smaller table."""
    at = TABLES.index(table)
    index = _Index() if at == 0 else _index(country, TABLES[at - 1])
    index.add(table, _table(table)[0].get(country, ()))
    return index


# Resolution -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolution:
    """What `resolve` found. `entry` is the place, or None when there is none, the name is
    ambiguous, or the coordinates disagree; the flags say which."""

    entry: Entry | None = None
    strength: Strength | None = None  # of the name match
    matched_name: str = ""  # the GeoNames spelling that matched
    name_kind: str = ""  # "name" (GeoNames's main name) or "alternate"
    distance_km: float | None = None  # from the given coordinates
    country_differs: bool = False
    coordinates_disagree: bool = False
    ambiguous: bool = False
    candidates: tuple = ()  # places of the country with the name (exact or core), largest first
    elsewhere: Entry | None = None  # a same-named place at the coordinates, in another country
    table: int | None = None  # the GeoNames table that decided

    def __bool__(self):
        return self.entry is not None


def _by_size(places):
    return sorted(places, key=lambda p: (-p.population, p.geonames_id))


def _nearest(found, limit):
    """(distance, rank, place) of the nearest of [(distance, rank, place)] within `limit`:
    the stronger match, then the larger place, when two are as near. None if there is none."""
    near = [
        (d, rank, -place.population, place.geonames_id, place)
        for d, rank, place in found
        if d <= limit
    ]
    if not near:
        return None
    d, rank, *_order, place = min(near)
    return d, rank, place


def _matched(place, name, keys, rank, **kw):
    """A Resolution for `place`, naming the GeoNames spelling that matched at `rank`: the
    name as given if GeoNames lists it, else the first of its names that shares a key."""
    if clean_name(place.name) == name:
        return Resolution(place, _BY_RANK[rank], name, "name", **kw)
    if name in map(clean_name, place.alternate_names):
        return Resolution(place, _BY_RANK[rank], name, "alternate", **kw)
    wanted = {key.key: key.strength.rank for key in keys}
    for n, (spelling, folded) in enumerate(_search_names(place)):
        if any(
            max(_RANK[strength], wanted.get(key, 9)) <= rank
            for key, strength in _keys(spelling, folded).items()
        ):
            return Resolution(
                place, _BY_RANK[rank], spelling, "name" if n == 0 else "alternate", **kw
            )
    return Resolution(place, _BY_RANK[rank], place.name, "name", **kw)


def _resolve_in(table, name, keys, country, latitude, longitude, last):
    """(resolution, final?) within one table; not final when a larger table may hold a
    same-named place that changes the answer."""
    # Skeleton and weak keys of the query may meet indexed keys too; those count only near
    # the point, where they are looked for below.
    here = {
        place: rank
        for place, rank in _index(country, table).matches(keys, table).items()
        if rank <= _RANK[Strength.CORE]
    }
    candidates = tuple(_by_size(here))
    if latitude is None or longitude is None:
        for rank in (_RANK[Strength.EXACT], _RANK[Strength.CORE]):
            tier = _by_size(p for p, r in here.items() if r == rank)
            if not tier:
                continue
            top = tier[0]
            if len(tier) > 1 and not (
                tier[1].population > 0 and top.population >= DOMINANCE * tier[1].population
            ):
                # A larger table only adds places: it cannot settle this. Final.
                return Resolution(ambiguous=True, candidates=tuple(tier), table=table), True
            # The places a larger table adds are smaller than `table`: they cannot rival a
            # place DOMINANCE times as large. But one of them may have the very name where
            # this one only shares a core key ("City of London" is not London).
            final = last or (rank == _RANK[Strength.EXACT] and top.population >= DOMINANCE * table)
            return _matched(top, name, keys, rank, candidates=candidates, table=table), final
        return Resolution(table=table), last

    point = (latitude, longitude)
    near = None
    for tier in (_RANK[Strength.EXACT], _RANK[Strength.CORE]):
        near = _nearest(
            [
                (distance_km(*point, p.latitude, p.longitude), rank, p)
                for p, rank in here.items()
                if rank == tier
            ],
            SAME_PLACE_KM,
        )
        if near:
            break
    if near is None:
        # Only now is it worth working out every key of the places around the point.
        around = _near_matches(table, keys, *point, CLOSE_KM)
        near = _nearest([m for m in around if m[2].country == country], CLOSE_KM)
        abroad = [m for m in around if m[2].country != country]
    else:
        # A namesake abroad matters only if it is nearer than the place found.
        abroad = _near_matches(table, keys, *point, min(near[0], FEW_KM))
        abroad = [m for m in abroad if m[2].country != country]
    foreign = _nearest([m for m in abroad if m[1] <= _RANK[Strength.CORE]], FEW_KM)
    if near and not (foreign and foreign[0] < near[0]):
        d, rank, place = near
        resolution = _matched(
            place, name, keys, rank, distance_km=round(d, 1), candidates=candidates, table=table
        )
        # A larger table's smaller places may hold one nearer, or one with the very name.
        return resolution, last or (rank == _RANK[Strength.EXACT] and d <= CLOSE_KM)
    if foreign and (candidates or near):
        # The point sits on a same-named place abroad: the country or the point is wrong.
        resolution = Resolution(
            coordinates_disagree=True, candidates=candidates, elsewhere=foreign[2], table=table
        )
        return resolution, True
    if foreign:
        d, rank, place = foreign
        resolution = _matched(
            place, name, keys, rank, distance_km=round(d, 1), country_differs=True, table=table
        )
        return resolution, True
    if candidates:
        return Resolution(coordinates_disagree=True, candidates=candidates, table=table), last
    return Resolution(table=table), last


def resolve(name, country, latitude=None, longitude=None, tables=TABLES):
    """The GeoNames place a city of this name and country (ISO alpha-2) is, as a Resolution.

    Every GeoNames name counts (main and alternate, any script, folded), within the country.
    Several places of the country with the name: the nearest within SAME_PLACE_KM when
    coordinates are given (a place with the very name before one sharing a core key),
    else the one DOMINANCE times as populous as the next, else none (ambiguous). Skeleton
    and weak keys count only within CLOSE_KM of the coordinates.
    A place filed under another country matches only when the coordinates lie within
    FEW_KM of it and the country has no place of that name (flagged country_differs).
    The 15,000 table is read first; the 5,000 and 1,000 tables only when it cannot decide:
    no place of that name near the coordinates, a place too small to rule out same-named
    smaller ones, or a match on less than the exact name, which a smaller place may have
    ("City of London" shares a core key with London and is a place of 8,000 of its own).
    `tables` (some of TABLES, smallest first) narrows the search.
    """
    name = clean_name(name)
    keys = name_keys(name)
    country = (country or "").upper()
    if not keys or not country:
        return Resolution()
    resolution = Resolution()
    for table in tables:
        last = table == tables[-1]
        resolution, final = _resolve_in(table, name, keys, country, latitude, longitude, last)
        if final:
            break
    return resolution
