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
      "Mogiljov" and "Mogilev" agree; "Odessa" and "Odesa" agree). Skeleton keys are compared
      only with skeleton keys.
    - weak: what is left when a qualifier is dropped ("Rome, Georgia", "Frankfurt (Oder)",
      "Tokyo – Setagaya" → "Rome", "Frankfurt", "Setagaya") or when a trailing "City" or a
      leading "Ciudad de" is ("Mexico City" → "Mexico": Mexico City and Quebec City are
      real names, so this can only be a hint).

    Two names match at the weaker of the two keys' strengths ("Gmina Sobótka" and "Sobótka"
    match at core). What a match may decide:

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
    answer is "ambiguous". Places GeoNames keeps apart are never merged. Two things are
    matched but flagged for a curator rather than silently decided:

    - country_differs: the place is filed under another country in GeoNames, but the
      coordinates agree within FEW_KM (Pointe-à-Pitre given as FR is GP in GeoNames). The
      caller decides whether to recode; nothing here does.
    - coordinates_disagree: the name is known in the country, but the coordinates are more
      than 50 km from every place of that name there, or sit on a same-named place in
      another country (Rome, US drawn on Rome, Italy). No place is matched then.
"""

import re
import threading
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from cities.gazetteer import SAME_PLACE_KM, distance_km, entries
from cities.text import fold

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
        return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)
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
# Municipal suffixes in CJK scripts: 横浜市 is 横浜, 수원시 is 수원.
_CJK_SUFFIXES = "市시군구区區"
_CJK_SUFFIX = re.compile(rf"(?<=\w)[{_CJK_SUFFIXES}]$")
# "Frankfurt (Oder)", "Rome, Georgia": the qualifier says where, it is not the name.
_PAREN = re.compile(r"\s*\([^()]*\)\s*$")
# A qualifier made only of these words names a kind of body, not where the place is.
_BODY_WORDS = frozenset(
    "district county gmina communaute commune municipality municipal borough township region "
    "province prefecture department canton oblast raion rayon arrondissement agglomeration "
    "community metropolitan urban rural city town village parish ward council shire kreis "
    "landkreis local government area of the de".split()
)


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
    """The name without a qualifier saying where it is, or "" when there is none."""
    match = _PAREN.search(text)
    if match:
        head, where = text[: match.start()], match.group()
    elif " – " in text or " — " in text:
        # "Tokyo – Setagaya": the parent first, as in the Wikipedia lists.
        where, _, head = text.replace(" — ", " – ").partition(" – ")
    elif "," in text:
        head, _, where = text.partition(",")
    else:
        return ""
    where = fold(where)
    if not where or not head.strip() or set(where.split()) <= _BODY_WORDS:
        return ""
    return head.strip()


def _bilingual_halves(text):
    """"Biel/Bienne" and "Donostia - San Sebastián" are two names of one place."""
    for mark in ("/", " - "):
        if mark in text:
            halves = [half.strip() for half in text.split(mark)]
            if len(halves) == 2 and all(halves):
                return halves
    return ()


_SAINTS = {"st": "st", "saint": "st", "sankt": "st", "sint": "st", "sainte": "ste", "ste": "ste"}
# Ordered: j becomes y before "yo" and "ye" lose their y, and those before y becomes i.
_LETTERS = str.maketrans({"j": "y", "w": "v", "x": "ks"})
_DIGRAPHS = (("kh", "h"), ("tz", "ts"), ("ph", "f"), ("yo", "e"), ("ye", "e"), ("iy", "i"))
_Y = str.maketrans({"y": "i"})
_DOUBLE = re.compile(r"(.)\1+")


def skeleton(folded):
    """A transliteration-insensitive form of a folded name, for the Cyrillic-Latin spellings
    that differ only in convention: Mogilev, Mogilyov and Mogiljov; Feodosia and Feodosiya;
    Odessa and Odesa; Ust-Kamenogorsk and Ustkamenogorsk; St., Sankt and Saint. Spellings
    that differ by a real sound (Kharkiv, Kharkov) stay apart. A skeleton is itself a folded
    name that skeleton() leaves unchanged, so skeleton keys can share one space with the rest.
    """
    words = folded.split(" ")
    text = "".join([_SAINTS.get(word, word) for word in words]).translate(_LETTERS)
    for old, new in _DIGRAPHS:
        if old in text:
            text = text.replace(old, new)
    return _DOUBLE.sub(r"\1", text.translate(_Y))


def _keys(text, exact):
    """name_keys for a clean name and its fold, as {key: strength}, strongest first."""
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
    them; skeleton and weak keys need coordinates that agree within CLOSE_KM. All keys are
    folded names in one space: a key matches whichever strength it was made at on the
    other side, and the match is as strong as the weaker of the two.
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
    ranks = [
        max(key.strength.rank, keys_b[key.key]) for key in name_keys(a) if key.key in keys_b
    ]
    return _BY_RANK[min(ranks)] if ranks else None


_URL = re.compile(r"://|^www\.|\.(?:com|org|net|gov|edu)\b", re.IGNORECASE)
_CODE = re.compile(r"^[A-Z]{2,4}$")


def _worth_indexing(name):
    return not (
        len(name) > 60
        or _CODE.match(name)  # IATA and other codes: ODS, KRK, NYC; US state codes: NY
        or any(ch.isdigit() for ch in name)  # postal codes, "Budapest XI" is kept
        or _URL.search(name)
    )


def search_names(entry):
    """The names of a GeoNames place worth indexing for matching and search: its name, then
    every alternate name, cleaned, one per folded spelling, without codes (all-capital ASCII
    of 2–4 letters such as the airport code "ODS"), names with digits (postal codes), web
    addresses, or names longer than 60 characters.

    For matching and search ONLY, never to show on a profile as "also known as": GeoNames
    lists noise among them ("Bienne" under Vienna, Banqiao's old names under Taipei).
    """
    return tuple(name for name, _folded in _search_names(entry))


def _search_names(entry):
    """(clean name, folded name) pairs of search_names."""
    names, seen = [], set()
    for n, raw in enumerate((entry.name, *entry.alternate_names)):
        name = clean_name(raw)
        if n and not _worth_indexing(name):
            continue
        key = fold(name)
        if key and key not in seen:
            seen.add(key)
            names.append((name, key))
    return names


# The GeoNames index ----------------------------------------------------------------------

class _Index:
    """Every key of every name of the places of the loaded tables → packed (place, rank).

    One index grows table by table: the tables nest (every place over 15,000 is in the
    5,000 table), so a larger table only adds places, numbered after the smaller table's.
    Asking about table T is then looking only at places numbered below bounds[T].
    Values are `number * 4 + rank`, a bare int when one place has the key: a tuple per key
    would cost about half as much again.
    """

    def __init__(self):
        self.places = []
        self.bounds = {}
        self.keys = {}
        self._lock = threading.Lock()

    def add(self, table):
        with self._lock:
            if table in self.bounds:
                return
            known = {place.geonames_id for place in self.places}
            new = {}
            for place in entries(table):
                if place.geonames_id in known:
                    continue
                number = len(self.places)
                self.places.append(place)
                ranks = {}
                for name, folded in _search_names(place):
                    for key, strength in _keys(name, folded).items():
                        rank = _RANK[strength]
                        if ranks.get(key, 9) > rank:
                            ranks[key] = rank
                for key, rank in ranks.items():
                    new.setdefault(key, []).append(number * 4 + rank)
            for key, packed in new.items():
                old = self.keys.get(key)
                if old is None:
                    self.keys[key] = packed[0] if len(packed) == 1 else tuple(packed)
                else:
                    old = (old,) if isinstance(old, int) else old
                    self.keys[key] = (*old, *packed)
            self.bounds[table] = len(self.places)

    def matches(self, keys, table):
        """{place number: strongest rank} for places of `table` any key matches."""
        bound, found = self.bounds[table], {}
        for key in keys:
            value = self.keys.get(key.key, ())
            for packed in (value,) if isinstance(value, int) else value:
                number, rank = divmod(packed, 4)
                if number < bound:
                    rank = max(rank, key.strength.rank)
                    if found.get(number, 9) > rank:
                        found[number] = rank
        return found


@lru_cache(maxsize=len(TABLES))
def _index(table):
    """The index covering `table` and every smaller one, built on first use."""
    at = TABLES.index(table)
    index = _Index() if at == 0 else _index(TABLES[at - 1])
    index.add(table)
    return index


# Resolution -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolution:
    """What `resolve` found. `entry` is the place, or None when there is none, the name is
    ambiguous, or the coordinates disagree; the flags say which."""

    entry: object = None  # cities.gazetteer.Entry
    strength: Strength | None = None  # of the name match
    matched_name: str = ""  # the GeoNames spelling that matched
    name_kind: str = ""  # "name" (GeoNames's main name) or "alternate"
    distance_km: float | None = None  # from the given coordinates
    country_differs: bool = False
    coordinates_disagree: bool = False
    ambiguous: bool = False
    candidates: tuple = ()  # same-named places of the country, largest first
    elsewhere: object = None  # a same-named place at the coordinates, in another country
    table: int | None = None  # the GeoNames table that decided

    def __bool__(self):
        return self.entry is not None


def _nearest(found, index, latitude, longitude, limit, ranks):
    near = []
    for number, rank in found.items():
        if rank in ranks:
            place = index.places[number]
            d = distance_km(latitude, longitude, place.latitude, place.longitude)
            if d <= limit:
                near.append((d, rank, -place.population, place.geonames_id, place))
    return min(near) if near else None


def _matched(place, keys, rank, **kw):
    """A Resolution for `place`, naming the first of its names that matched at `rank`."""
    wanted = {key.key: key.strength.rank for key in keys}
    for n, name in enumerate(search_names(place)):
        for key in name_keys(name):
            if max(key.strength.rank, wanted.get(key.key, 9)) <= rank:
                return Resolution(
                    place,
                    _BY_RANK[rank],
                    name,
                    "name" if n == 0 else "alternate",
                    **kw,
                )
    return Resolution(place, _BY_RANK[rank], place.name, "name", **kw)


def _resolve_in(table, keys, country, latitude, longitude):
    """(resolution, final?) within one table; not final when a larger table may know a
    same-named place that changes the answer."""
    index = _index(table)
    last = table == TABLES[-1]
    found = index.matches(keys, table)
    here = {n: r for n, r in found.items() if index.places[n].country == country}
    strong = {n: r for n, r in here.items() if r <= _RANK[Strength.CORE]}
    candidates = tuple(
        sorted((index.places[n] for n in strong), key=lambda p: (-p.population, p.geonames_id))
    )
    if latitude is None or longitude is None:
        for rank in (_RANK[Strength.EXACT], _RANK[Strength.CORE]):
            tier = sorted(
                (index.places[n] for n, r in strong.items() if r == rank),
                key=lambda p: (-p.population, p.geonames_id),
            )
            if not tier:
                continue
            top = tier[0]
            if len(tier) > 1 and not (
                tier[1].population > 0 and top.population >= DOMINANCE * tier[1].population
            ):
                # More places only make it more ambiguous: final.
                return Resolution(ambiguous=True, candidates=tuple(tier), table=table), True
            # Places of the larger tables have fewer than `table` inhabitants.
            final = last or top.population >= DOMINANCE * table
            return _matched(top, keys, rank, candidates=candidates, table=table), final
        return Resolution(table=table), last

    point = (latitude, longitude)
    near = _nearest(here, index, *point, SAME_PLACE_KM, {0, 1}) or _nearest(
        here, index, *point, CLOSE_KM, {2, 3}
    )
    abroad = {
        n: r
        for n, r in found.items()
        if index.places[n].country != country and r <= _RANK[Strength.CORE]
    }
    foreign = _nearest(abroad, index, *point, FEW_KM, {0, 1})
    if near and not (foreign and foreign[0] < near[0]):
        d, rank, *_rest, place = near
        final = last or d <= CLOSE_KM
        resolution = _matched(
            place, keys, rank, distance_km=round(d, 1), candidates=candidates, table=table
        )
        return resolution, final
    if foreign and (candidates or near):
        # The coordinates sit on a namesake abroad: the country or the point is wrong.
        resolution = Resolution(
            coordinates_disagree=True, candidates=candidates, elsewhere=foreign[-1], table=table
        )
        return resolution, True
    if foreign:
        d, rank, *_rest, place = foreign
        resolution = _matched(
            place, keys, rank, distance_km=round(d, 1), country_differs=True, table=table
        )
        return resolution, True
    if candidates:
        return Resolution(coordinates_disagree=True, candidates=candidates, table=table), last
    return Resolution(table=table), last


def resolve(name, country, latitude=None, longitude=None):
    """The GeoNames place a city of this name and country (ISO alpha-2) is, as a Resolution.

    Every GeoNames name counts (main and alternate, any script, folded), within the country.
    Several places of the country with the name: the nearest within SAME_PLACE_KM when
    coordinates are given, else the one DOMINANCE times as populous as the next, else none
    (ambiguous). Skeleton and weak keys count only within CLOSE_KM of the coordinates.
    A place filed under another country matches only when coordinates put it within FEW_KM
    and the country has no place of that name (flagged country_differs). The 15,000 table
    is read first; the 5,000 and 1,000 tables only when it cannot decide: no place of that
    name near the coordinates, or a place too small to rule out same-named smaller ones.
    """
    keys = name_keys(name)
    country = (country or "").upper()
    if not keys or not country:
        return Resolution()
    resolution = Resolution()
    for table in TABLES:
        resolution, final = _resolve_in(table, keys, country, latitude, longitude)
        if final:
            break
    return resolution
