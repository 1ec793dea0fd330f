"""Bulk import of ties from CSV or TSV files: reading, column mapping, reconciliation, apply.

The work is split so that a dry run and a real run share every decision:

    table = read_table(path_or_bytes)                      # header + rows, UTF-8 (BOM or not)
    columns = resolve_mapping(table.header, mapping)       # file columns for each field
    plan = build_import_plan(table, columns, source=...)   # reads the database, writes nothing
    result = apply_import(plan, user=...)                  # writes exactly what the plan says

`build_import_plan` reconciles every row against the cities already in the atlas and the ones
planned from earlier rows: same folded name (case, accents, ş/ș, scripts) and country, through
alternate names, with coordinates telling apart places of the same name. `plan.summary()` gives
the figures a researcher sees before confirming; `apply_import` writes them in one transaction
with bulk inserts, recording each insert in the edit history as one attributable change.
"""

import csv
import difflib
import hashlib
import io
import json
import math
import re
from collections import Counter, defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from simple_history.utils import bulk_create_with_history, bulk_update_with_history
from tqdm import tqdm

from cities import dates, reconcile
from cities.countries import country_code, filed_together, split_qualified_name
from cities.gazetteer import SAME_PLACE_KM, distance_km
from cities.models import (
    AlternateName,
    City,
    CityCitation,
    LocationFlag,
    NameKind,
    SearchName,
    Source,
    SourceKind,
)
from cities.reconcile import Strength, clean_name
from cities.text import fold as fold_name
from cities.text import name_parts

from .models import TWINNING_KINDS, Tie, TieCitation, TieKind, TieStatus, kind_stated_reason

# A name that matches only once qualifiers are dropped ("Setagaya (Tokyo)" and "Setagaya")
# needs closer coordinates to count as the same place.
SAME_PLACE_QUALIFIED_KM = 25.0
BATCH_SIZE = 1000
NAME_MAX = City._meta.get_field("name").max_length
URL_MAX = Source._meta.get_field("url").max_length

FIELDS = {
    "city1": "name of the first city",
    "country1": "country of the first city",
    "lat1": "latitude of the first city",
    "lng1": "longitude of the first city",
    "coord1": "coordinates of the first city as Point(longitude latitude)",
    "wikidata1": "Wikidata id of the first city",
    "city2": "name of the second city",
    "country2": "country of the second city",
    "lat2": "latitude of the second city",
    "lng2": "longitude of the second city",
    "coord2": "coordinates of the second city as Point(longitude latitude)",
    "wikidata2": "Wikidata id of the second city",
    "kind": "kind of tie",
    "status": "status of the tie",
    "start": "start date (EDTF)",
    "end": "end date (EDTF)",
    "source_url": "web address of the row's own source",
}
REQUIRED = ("city1", "country1", "city2", "country2")

DEFAULT_SOURCE = {
    "slug": "wikipedia-twin-towns",
    "kind": SourceKind.DATASET,
    "title": "Lists of twin towns and sister cities (English Wikipedia), geocoded",
    "authors": "Wikipedia contributors",
    "container_title": "Hekman/twincities, app/public/twin_cities.csv (commit 84ebdec)",
    "issued": "2026-02",
    "url": "https://github.com/Hekman/twincities",
    "licence": "CC BY-SA 4.0",
    "locator_link": "https://github.com/Hekman/twincities/blob/84ebdec/app/public/twin_cities.csv#L{n}",
    "note": "Credit: Wikipedia contributors, via Hekman/twincities. The facts come from English "
    "Wikipedia (CC BY-SA 4.0); the repository's code is under the MIT licence. Scraped from "
    "the English Wikipedia pages 'List of twin towns and sister cities in <continent>' and "
    "their country sub-pages, geocoded with the Wikipedia API and Nominatim. The lists do not "
    "say whether a pair is a sister, partner or friendship tie, nor since when.",
}

KIND_WORDS = {
    "sister city": TieKind.SISTER,
    "sister cities": TieKind.SISTER,
    "partner city": TieKind.PARTNER,
    "partnership": TieKind.PARTNER,
    "friendship city": TieKind.FRIENDSHIP,
    "memorandum of understanding": TieKind.MOU,
    "cooperation agreement": TieKind.MOU,
    # A "twin town" is what the model calls a twinning whose kind the source does not state.
    "twin town": TieKind.UNSPECIFIED,
    "twin city": TieKind.UNSPECIFIED,
    "twinning": TieKind.UNSPECIFIED,
}
STATUS_WORDS = {"former": TieStatus.ENDED, "not stated": TieStatus.UNKNOWN}

# Most names recur across rows; folding each spelling once keeps reconciliation fast.
fold = lru_cache(maxsize=65536)(fold_name)

_POINT = re.compile(r"^\s*Point\(\s*(\S+)\s+(\S+)\s*\)\s*$", re.IGNORECASE)
_QID = re.compile(r"(?:^|/)(Q[1-9][0-9]*)$")


class ImportFileError(Exception):
    """The file as a whole cannot be imported: unreadable, or columns that do not fit."""


class ImportRejected(Exception):
    """Some rows are bad and the import was asked to be all-or-nothing."""

    def __init__(self, plan):
        self.plan = plan
        super().__init__(
            f"{len(plan.rejected)} of {plan.rows} rows cannot be imported, so nothing was "
            "written. Fix them, or import the good rows only and get the others in a report."
        )


# Reading ------------------------------------------------------------------------------------


@dataclass
class Table:
    name: str
    header: list
    rows: list  # (row number as a spreadsheet shows it, list of cells)


def read_table(data, name=None, delimiter=None):
    """Read a CSV or TSV table from a path, from bytes, or from an open file (an upload).
    UTF-8, with or without byte-order mark; the separator is guessed from the header.

    Row numbers count the header as row 1, as a spreadsheet shows them.
    """
    if isinstance(data, (str, Path)):
        path = Path(data)
        name = name or path.name
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ImportFileError(f"Cannot read {path}: {error.strerror}.") from None
    elif hasattr(data, "read"):
        name = name or Path(getattr(data, "name", "") or "upload").name
        data = data.read()
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ImportFileError(
                f"{name or 'The file'} is not UTF-8 text (byte {error.start + 1} is not "
                "valid UTF-8): save it as UTF-8 and try again."
            ) from None
    else:
        text = data.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    if delimiter is None:
        if name and name.lower().endswith((".tsv", ".tab")):
            delimiter = "\t"
        else:
            delimiter = max(",\t;", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise ImportFileError(f"{name or 'The file'} is empty: the first row must name columns.")
    header = [cell.strip() for cell in header]
    rows = [(number, cells) for number, cells in enumerate(reader, start=2) if any(cells)]
    return Table(name=name or "upload", header=header, rows=rows)


def _is_file(spec):
    # A long inline mapping is not a path: the OS refuses names past 255 bytes.
    try:
        return Path(spec).is_file()
    except OSError:
        return False


def parse_mapping(spec):
    """A column mapping from `field=column,field=column` or a JSON file / JSON object text."""
    if not spec:
        return {}
    spec = spec.strip()
    if spec.endswith(".json") or _is_file(spec):
        try:
            spec = Path(spec).read_text(encoding="utf-8-sig")
        except OSError as error:
            raise ImportFileError(
                f"Cannot read the mapping file {spec}: {error.strerror}."
            ) from None
    if spec.startswith("{"):
        try:
            mapping = json.loads(spec)
        except json.JSONDecodeError as error:
            raise ImportFileError(f"The column mapping is not valid JSON: {error.msg}.") from None
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise ImportFileError('The JSON mapping must be an object: {"city1": "column", …}.')
        return {str(k).strip(): v.strip() for k, v in mapping.items()}
    mapping = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ImportFileError(
                f"“{part.strip()}” in the column mapping is not field=column, e.g. city1=itemLabel."
            )
        mapping[key.strip()] = value.strip()
    return mapping


def resolve_mapping(header, mapping=None, fields=FIELDS, required=REQUIRED):
    """Field → column index for this header: the shared file's layout by default, with
    `mapping` (field → column name) naming the columns of other layouts. `fields` and
    `required` are the ties' unless another import (importing_members) names its own."""
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ImportFileError(
            f"Unknown field(s) in the column mapping: {', '.join(unknown)}. "
            f"Fields are: {', '.join(fields)}."
        )
    positions = {column: i for i, column in reversed(list(enumerate(header)))}
    columns = {}
    for name in fields:
        column = mapping.get(name, name)
        if column in positions:
            columns[name] = (positions[column], column)
        elif name in mapping:
            raise ImportFileError(
                f"The mapping names column “{column}” for {fields[name]}, but the file has no "
                f"such column. Its columns are: {', '.join(header)}."
            )
    missing = [name for name in required if name not in columns]
    if missing:
        raise ImportFileError(
            f"No column for {', '.join(fields[m] for m in missing)}. The file's columns are: "
            f"{', '.join(header)}. Name them with a mapping, e.g. "
            f"--map {','.join(f'{m}=<column>' for m in missing)}."
        )
    return columns


# One row -------------------------------------------------------------------------------------


class BadRow(Exception):
    pass


@dataclass(slots=True)
class End:
    name: str
    country: str
    lat: float | None
    lng: float | None
    qid: str

    @property
    def has_coords(self):
        return self.lat is not None


@dataclass(slots=True)
class Row:
    number: int
    a: End
    b: End
    kind: str
    status: str
    start: str
    end: str
    source_url: str


def _cell(cells, columns, name):
    spot = columns.get(name)
    if spot is None or spot[0] >= len(cells):
        return ""
    return (cells[spot[0]] or "").strip()


def _number(text, column, low, high, label):
    try:
        value = float(text)
    except ValueError:
        raise BadRow(f"{label} “{text}” (column {column}) is not a number.") from None
    if not math.isfinite(value):
        raise BadRow(f"{label} “{text}” (column {column}) is not a number.")
    if not low <= value <= high:
        raise BadRow(f"{label} {text} (column {column}) lies outside {low}…{high}.")
    return value


def _end(cells, columns, n, which=None):
    which = which or ("first" if n == "1" else "second")
    name_col = columns[f"city{n}"][1]
    # Invisible marks (U+200E, U+200B, a BOM) and doubled spaces are no part of a name.
    name = clean_name(_cell(cells, columns, f"city{n}"))
    country_text = _cell(cells, columns, f"country{n}")
    if not name:
        raise BadRow(f"The {which} city's name (column {name_col}) is empty.")
    if len(name) > NAME_MAX:
        raise BadRow(f"The {which} city's name is longer than {NAME_MAX} characters.")
    country = country_code(country_text)
    if country is None and not country_text:
        # Rows whose country sits in the name ("Varna, Bulgaria") or whose "city" is a
        # territory (Falkland Islands): the file states the country, in another column.
        split = split_qualified_name(name)
        if split:
            name, country = split
        else:
            country = country_code(name)
    if country is None:
        country_col = columns[f"country{n}"][1]
        if not country_text:
            raise BadRow(f"The {which} city's country (column {country_col}) is empty.")
        raise BadRow(
            f"“{country_text}” (column {country_col}) is not a country this atlas knows: "
            "write its English name or ISO code, e.g. Japan or JP."
        )
    lat_text, lng_text = _cell(cells, columns, f"lat{n}"), _cell(cells, columns, f"lng{n}")
    point = _cell(cells, columns, f"coord{n}")
    if point and not (lat_text or lng_text):
        match = _POINT.match(point)
        if not match:
            raise BadRow(
                f"The {which} city's coordinates “{point}” are not Point(longitude latitude)."
            )
        lng_text, lat_text = match.groups()
    lat = lng = None
    if lat_text or lng_text:
        if not (lat_text and lng_text):
            raise BadRow(f"The {which} city has only one coordinate: give both or neither.")
        lat = _number(lat_text, columns.get(f"lat{n}", ("", "coord"))[1], -90, 90, "Latitude")
        lng = _number(lng_text, columns.get(f"lng{n}", ("", "coord"))[1], -180, 180, "Longitude")
    qid = _cell(cells, columns, f"wikidata{n}")
    if qid:
        match = _QID.search(qid)
        if not match:
            raise BadRow(f"“{qid}” is not a Wikidata id (Q followed by digits, e.g. Q38283).")
        qid = match[1]
    return End(name=name, country=country, lat=lat, lng=lng, qid=qid)


def _choice(text, choices, words, label):
    if not text:
        return ""
    key = fold(text)
    for value, display in choices.choices:
        if key in (fold(value), fold(display)):
            return value
    if key in words:
        return words[key]
    allowed = ", ".join(value for value, _ in choices.choices)
    raise BadRow(f"“{text}” is not a {label} this atlas knows; use one of: {allowed}.")


def parse_row(number, cells, columns):
    """A Row, or BadRow with the reason in the researcher's words."""
    a, b = _end(cells, columns, "1"), _end(cells, columns, "2")
    kind = _choice(_cell(cells, columns, "kind"), TieKind, KIND_WORDS, "kind of tie")
    status = _choice(_cell(cells, columns, "status"), TieStatus, STATUS_WORDS, "tie status")
    start, end = period(cells, columns, "start", "end")
    return Row(number, a, b, kind, status, start, end, source_url(cells, columns))


def column_name(columns, name):
    """The file's column for field `name`, as messages name it (the field when unmapped)."""
    return columns.get(name, (None, name))[1]


def period(cells, columns, first, last, *, max_length=None, name_column=False):
    """The row's two EDTF dates `first` and `last` as the file gives them, checked: each
    readable (and no longer than `max_length`), the last not ending before the first begins.
    `name_column` names the file's column in the message about an unreadable date."""
    values, bounds = {}, {}
    for name in (first, last):
        value = values[name] = _cell(cells, columns, name)
        if max_length is not None and len(value) > max_length:
            raise BadRow(f"The {name} date is longer than {max_length} characters.")
        try:
            bounds[name] = dates.bounds(value)
        except ValidationError as error:
            where = f" (column {column_name(columns, name)})" if name_column else ""
            raise BadRow(f"The {name} date{where}: {error.messages[0]}") from None
    if bounds[last][1] and bounds[first][0] and bounds[last][1] < bounds[first][0]:
        raise BadRow(f"The {last} date lies before the {first} date.")
    return values[first], values[last]


def source_url(cells, columns):
    """The row's own web address (source_url), checked; empty when it gives none."""
    url = _cell(cells, columns, "source_url")
    if url and not re.match(r"^https?://\S+$", url):
        raise BadRow(f"The source address “{url}” is not a web address (http:// or https://).")
    if len(url) > URL_MAX:
        raise BadRow(f"The source address is longer than {URL_MAX} characters.")
    return url


# Reconciliation -----------------------------------------------------------------------------


class Place:
    """A city the plan will tie: one already in the atlas, or one the plan will create."""

    __slots__ = ("city", "uid", "is_new", "names", "spellings", "cite_row", "filled", "flagged")

    def __init__(self, city, uid, is_new, names=()):
        self.city = city
        self.uid = uid
        self.is_new = is_new
        self.names = set(names)  # exact spellings the city has or will have
        self.spellings = Counter()  # spellings seen in the file, for new cities
        self.cite_row = None  # row to cite on the city (created, or coordinates filled)
        self.filled = set()  # fields of an existing city the plan fills in
        self.flagged = ""  # why a curator should check the match (a country that differs)

    @property
    def has_coords(self):
        return self.city.latitude is not None and self.city.longitude is not None

    def distance(self, end):
        return distance_km(self.city.latitude, self.city.longitude, end.lat, end.lng)


class CityIndex:
    """The cities known to the plan, indexed by folded name, by name without qualifier and by
    Wikidata id. Loads the atlas's cities and alternate names in two queries."""

    def __init__(self):
        self.by_key = defaultdict(list)
        self.by_head = defaultdict(list)
        self.by_qid = {}
        # Keys weaker than the exact name (reconcile.name_keys): (key, country) → [(place,
        # rank)], and exact and core keys in any country, for files that code a place's
        # country differently (an overseas department as FR).
        self.by_fuzzy = defaultdict(list)
        self.by_key_anywhere = defaultdict(list)
        self.places = []
        self.new_places = []
        self.gazetteer_ids = {}
        names = defaultdict(list)
        for city_id, name in AlternateName.objects.values_list("city_id", "name"):
            names[city_id].append(name)
        # The gazetteer's names of linked cities (Cracow, München, 横浜) match as well as
        # the cities' own; they are never added to a city as names it is known by.
        for city_id, name in SearchName.objects.values_list("city_id", "name"):
            names[city_id].append(name)
        for city in City.objects.order_by("pk"):
            place = Place(city, city.pk, False, [city.name, *names.get(city.pk, ())])
            self.places.append(place)
            self.register(place, place.names)
        self.slugs = {place.city.slug for place in self.places}

    def register(self, place, names):
        country = place.city.country
        if not country:
            return
        for name in names:
            bucket = self.by_key[(fold(name), country)]
            if place not in bucket:
                bucket.append(place)
            head, where = name_parts(name)
            bucket = self.by_head[(fold(head), country)]
            if (place, where) not in bucket:
                bucket.append((place, where))
            for key in reconcile.name_keys(name):
                rank = key.strength.rank
                if key.strength is not Strength.EXACT:
                    bucket = self.by_fuzzy[(key.key, country)]
                    if (place, rank) not in bucket:
                        bucket.append((place, rank))
                if rank <= Strength.CORE.rank and place.has_coords:
                    bucket = self.by_key_anywhere[key.key]
                    if place not in bucket:
                        bucket.append(place)
        if place.city.wikidata_id:
            self.by_qid.setdefault(place.city.wikidata_id, place)

    def lookup(self, end):
        """The place `end` names, or None when it is a place the atlas does not know yet.

        The exact name (or an alternate or gazetteer name) first; then the name without
        administrative wording or either half of a bilingual name, like an exact name; then
        a transliteration variant or a name without its qualifier, only as close as CLOSE_KM;
        last, an exact or core name in another country within FEW_KM, matched and flagged.
        """
        if end.qid and end.qid in self.by_qid:
            return self.by_qid[end.qid]
        found = self._pick(self.by_key.get((fold(end.name), end.country), ()), end)
        return found if found is not None else self._fuzzy(end)

    def _fuzzy(self, end):
        ranked = {}
        own = fold(end.name)
        for key in reconcile.name_keys(end.name):
            # A key of the end meets the places' own names (their exact keys) and their
            # weaker keys; a match is as strong as the weaker of the two.
            found = [(p, 0) for p in self.by_key.get((key.key, end.country), ())]
            found += self.by_fuzzy.get((key.key, end.country), ())
            for place, rank in found:
                rank = max(rank, key.strength.rank)
                if key.key != own or rank > 0:  # the exact name itself was tried already
                    ranked[place] = min(ranked.get(place, 9), rank)
        _head, where = name_parts(end.name)
        for rank in sorted(set(ranked.values())):
            candidates = [p for p, r in ranked.items() if r == rank]
            if where:
                # "Mitte (Berlin)" and "Mitte (Hamburg)" are never one place.
                candidates = [p for p in candidates if name_parts(p.city.name)[1] in ("", where)]
            if end.qid:
                candidates = [p for p in candidates if p.city.wikidata_id in ("", end.qid)]
            if end.has_coords:
                limit = SAME_PLACE_KM if rank <= Strength.CORE.rank else reconcile.CLOSE_KM
                near = [(p.distance(end), p.uid, p) for p in candidates if p.has_coords]
                near = [item for item in near if item[0] <= limit]
                if near:
                    return min(near)[2]
            elif rank <= Strength.CORE.rank and len(candidates) == 1:
                return candidates[0]
        return self._abroad(end)

    def _abroad(self, end):
        """A place of another country that the end names, within FEW_KM, when lists may file
        one place under either code: the same place, coded differently by another file (GP,
        MQ, RE for France's overseas departments; XK or RS for Kosovo)."""
        if not end.has_coords:
            return None
        near = []
        for key in reconcile.name_keys(end.name):
            if key.strength.rank > Strength.CORE.rank:
                break
            for place in self.by_key_anywhere.get(key.key, ()):
                # Only where lists file one place either way (FR or GP): elsewhere a namesake
                # was geocoded on the other (London, Ontario drawn on London, England).
                country = place.city.country
                if country != end.country and filed_together(country, end.country):
                    d = place.distance(end)
                    if d <= reconcile.FEW_KM:
                        near.append((d, place.uid, place))
        if not near:
            return None
        place = min(near)[2]
        place.flagged = LocationFlag.COUNTRY_DIFFERS
        return place

    def _pick(self, candidates, end, head_candidates=None):
        if end.qid:
            candidates = [p for p in candidates if p.city.wikidata_id in ("", end.qid)]
        if not end.has_coords:
            # Without coordinates nothing tells same-named places apart: take the oldest.
            return candidates[0] if candidates else None
        near = [(p.distance(end), p.uid, p) for p in candidates if p.has_coords]
        near = [item for item in near if item[0] <= SAME_PLACE_KM]
        if near:
            distance, _uid, place = min(near)
            if distance <= reconcile.FEW_KM or not self._two_places(place, end):
                return place
            return None
        for place in candidates:
            if not place.has_coords:
                return place
        if head_candidates is None:
            head_candidates = self.qualified_candidates(end)
        if end.qid:
            head_candidates = [p for p in head_candidates if p.city.wikidata_id in ("", end.qid)]
        near = [(p.distance(end), p.uid, p) for p in head_candidates if p.has_coords]
        near = [item for item in near if item[0] <= SAME_PLACE_QUALIFIED_KM]
        return min(near)[2] if near else None

    def _two_places(self, place, end):
        """Does the gazetteer know the place and the end, some km apart, as two places of
        one name (the two Malschs of Baden, 48 km apart)? Asked only past FEW_KM."""
        here = self._gazetteer_id(end.name, end.country, end.lat, end.lng)
        city = place.city
        there = city.geonames_id or self._gazetteer_id(
            city.name, city.country, city.latitude, city.longitude
        )
        return bool(here and there and here != there)

    def _gazetteer_id(self, name, country, lat, lng):
        key = (fold(name), country, round(lat, 2), round(lng, 2))
        if key not in self.gazetteer_ids:
            entry = reconcile.resolve(name, country, lat, lng).entry
            self.gazetteer_ids[key] = entry.geonames_id if entry else None
        return self.gazetteer_ids[key]

    def qualified_candidates(self, end):
        """Places whose name differs from the end's only by a qualifier saying where it is
        ("Setagaya" and "Setagaya (Tokyo)"); names placed in different parents ("Mitte
        (Berlin)", "Mitte (Hamburg)") never match."""
        head, where = name_parts(end.name)
        bucket = self.by_head.get((fold(head), end.country), ())
        return [p for p, other in bucket if not (where and other and where != other)]

    def same_new_place(self, a, b):
        """Would two ends that both name unknown places name the same one?"""
        if a.qid and a.qid == b.qid:
            return True
        if a.country != b.country or (a.qid and b.qid and a.qid != b.qid):
            return False
        probe = Place(
            City(
                name=a.name, country=a.country, latitude=a.lat, longitude=a.lng, wikidata_id=a.qid
            ),
            0,
            True,
        )
        (head_a, where_a), (head_b, where_b) = name_parts(a.name), name_parts(b.name)
        same_name = fold(a.name) == fold(b.name)
        same_head = fold(head_a) == fold(head_b) and not (
            where_a and where_b and where_a != where_b
        )
        return self._pick([probe] if same_name else [], b, [probe] if same_head else []) is probe

    def create(self, end, row_number):
        city = City(
            name=end.name,
            folded_name=fold(end.name),
            country=end.country,
            latitude=end.lat,
            longitude=end.lng,
            wikidata_id=end.qid,
        )
        place = Place(city, -(len(self.new_places) + 1), True)
        place.cite_row = row_number
        self.new_places.append(place)
        self.register(place, [end.name])
        return place

    def note(self, place, end, row_number):
        """Record what this row tells about a place it names: its spelling, and coordinates
        or a Wikidata id the place lacks."""
        if place.is_new:
            place.spellings[end.name] += 1
            self.register(place, [end.name])
            return
        if end.name not in place.names:
            place.names.add(end.name)
            place.spellings[end.name] += 1
            self.register(place, [end.name])
        city = place.city
        if end.has_coords and not place.has_coords:
            city.latitude, city.longitude = end.lat, end.lng
            place.filled.update(("latitude", "longitude"))
            place.cite_row = row_number
        if end.qid and not city.wikidata_id and end.qid not in self.by_qid:
            city.wikidata_id = end.qid
            place.filled.add("wikidata_id")
            self.by_qid[end.qid] = place

    def unique_slug(self, name):
        base = slugify(fold(name))[:80] or "city"
        slug, n = base, 1
        while slug in self.slugs:
            n += 1
            slug = f"{base[: 80 - len(str(n)) - 1]}-{n}"
        self.slugs.add(slug)
        return slug


# The plan -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """What the import does with one row: `action` is created, cited (the tie is already in
    the atlas), repeated (the pair was listed at an earlier row) or rejected."""

    row: int
    action: str
    detail: str = ""
    tie: object = None


@dataclass
class ImportPlan:
    """Everything an import will write, decided before anything is written: unsaved model
    instances in dependency order, per-row outcomes, and the rejected rows with reasons."""

    table_name: str
    rows: int
    source: Source
    source_is_new: bool
    skip_bad_rows: bool
    outcomes: list = field(default_factory=list)
    rejected: list = field(default_factory=list)  # (row number, reason, cells)
    header: list = field(default_factory=list)
    new_places: list = field(default_factory=list)
    updated_places: list = field(default_factory=list)
    alternate_names: list = field(default_factory=list)
    city_citations: list = field(default_factory=list)
    url_sources: list = field(default_factory=list)
    new_ties: list = field(default_factory=list)
    updated_ties: list = field(default_factory=list)
    tie_citations: list = field(default_factory=list)
    cities_matched: int = 0
    flagged_places: list = field(default_factory=list)  # matched across a country border
    near_similar: list = field(default_factory=list)  # (new city, existing city, km)
    applied: bool = False

    @classmethod
    def for_table(cls, table, source, *, source_is_new=False, skip_bad_rows=False):
        """An empty plan for importing `table`, citing `source`."""
        return cls(
            table_name=table.name,
            rows=len(table.rows),
            source=source,
            source_is_new=source_is_new,
            skip_bad_rows=skip_bad_rows,
            header=table.header,
        )

    @property
    def is_clean(self):
        return not self.rejected

    @property
    def can_apply(self):
        return self.is_clean or self.skip_bad_rows

    def summary(self):
        """The figures of the report: the same for a dry run and the real run."""
        actions = Counter(outcome.action for outcome in self.outcomes)
        return {
            "rows": self.rows,
            "rows_rejected": len(self.rejected),
            "cities_created": len(self.new_places),
            "cities_matched": self.cities_matched,
            "cities_updated": len(self.updated_places),
            "cities_flagged": len(self.flagged_places),
            "cities_created_near_similar": len(self.near_similar),
            "alternate_names_created": len(self.alternate_names),
            "ties_created": len(self.new_ties),
            "ties_already_in_atlas": actions["cited"],
            "rows_repeating_a_pair": actions["repeated"],
            "ties_updated": len(self.updated_ties),
            "ties_kind_stated": actions["upgraded"],
            "citations_created": len(self.tie_citations) + len(self.city_citations),
            "sources_created": int(self.source_is_new) + len(self.url_sources),
        }


def dataset_source(slug=None, title="", url="", kind=SourceKind.DATASET, **extra):
    """The Source the import cites: the existing one with `slug`, or an unsaved new one.

    Without a slug, the shared Wikipedia file's source is used. A new source needs a title.
    """
    if not slug:
        slug, values = DEFAULT_SOURCE["slug"], dict(DEFAULT_SOURCE)
        values.pop("slug")
    else:
        values = {"title": title, "url": url, "kind": kind, **extra}
    existing = Source.objects.filter(slug=slug).first()
    if existing:
        return existing, False
    if not values.get("title"):
        raise ImportFileError(
            f"There is no source “{slug}” yet: give its title (and web address) to create it."
        )
    if slug != slugify(slug):
        raise ImportFileError(f"“{slug}” is not a citation key: use letters, digits and hyphens.")
    source = Source(slug=slug, **{k: v for k, v in values.items() if v})
    try:
        source.full_clean(exclude=["slug"])
    except ValidationError as error:
        raise ImportFileError(
            f"The source cannot be created: {'; '.join(error.messages)}"
        ) from None
    return source, True


def build_import_plan(
    table,
    columns,
    source,
    *,
    source_is_new=False,
    default_kind=None,
    skip_bad_rows=False,
    progress=False,
):
    """Decide, without writing anything, what importing `table` does to the atlas."""
    plan = ImportPlan.for_table(
        table, source, source_is_new=source_is_new, skip_bad_rows=skip_bad_rows
    )

    def read_row(number, cells, places):
        row = parse_row(number, cells, columns)
        found_a, found_b = places.lookup(row.a), places.lookup(row.b)
        if (found_a is not None and found_a is found_b) or (
            found_a is None and found_b is None and places.same_new_place(row.a, row.b)
        ):
            raise BadRow(
                f"{row.a.name} and {row.b.name} ({row.a.country}) are the same city: "
                "a city cannot be tied to itself."
            )
        return row, ((row.a, found_a), (row.b, found_b))

    ties = _TieBook(source, plan, default_kind or TieKind.UNSPECIFIED)
    return plan_rows(plan, table, read_row, ties, progress=progress)


def plan_rows(plan, table, read_row, book, *, progress=False):
    """The reconciliation both imports share. `read_row(number, cells, places)` gives the
    row and its ends, each (End, the place `places` found for it or None), or raises BadRow:
    the row is rejected. Ends found nowhere become new cities; `book.add(row, *places)` gives
    the row's Outcome. Then `book.finish()`, and the new cities are named and cited."""
    places = CityIndex()
    matched = set()
    for number, cells in tqdm(table.rows, desc="Reconciling", unit="row", disable=not progress):
        try:
            row, ends = read_row(number, cells, places)
        except BadRow as error:
            plan.rejected.append((number, str(error), cells))
            plan.outcomes.append(Outcome(number, "rejected", str(error)))
            continue
        found = []
        for end, place in ends:
            place = place or places.create(end, number)
            places.note(place, end, number)
            if not place.is_new:
                matched.add(place.uid)
            found.append(place)
        plan.outcomes.append(book.add(row, *found))
    plan.cities_matched = len(matched)
    book.finish()
    _finish_places(plan, places, plan.source)
    return plan


def _comma_below(name):
    return sum(name.count(letter) for letter in "șțȘȚ")


def _finish_places(plan, places, source):
    """Name the new cities after their commonest spelling, keep the other spellings as
    alternate names, give them slugs, and cite the rows that describe them."""
    for place in places.new_places:
        city = place.city
        # Commonest first; among equals, Romanian's comma-below letters (ș ț) before the cedilla
        # look-alikes (ş ţ) of old encodings, then the first seen (sorted() is stable).
        spellings = sorted(
            place.spellings.items(), key=lambda item: (-item[1], -_comma_below(item[0]))
        )
        city.name = spellings[0][0]
        city.folded_name = fold(city.name)
        city.slug = places.unique_slug(city.name)
        for spelling, _count in spellings[1:]:
            plan.alternate_names.append(
                AlternateName(
                    city=city, name=spelling, folded=fold(spelling), kind=NameKind.VARIANT
                )
            )
        plan.city_citations.append(
            CityCitation(city=city, source=source, locator=f"row {place.cite_row}")
        )
        if place.flagged:
            city.location_flag = place.flagged
            plan.flagged_places.append(place)
        plan.new_places.append(place)
    plan.near_similar = _near_similar(places)
    cited = (
        set(CityCitation.objects.filter(source=source).values_list("city_id", "locator"))
        if source.pk
        else set()
    )
    for place in places.places:
        city = place.city
        for spelling in place.spellings:
            plan.alternate_names.append(
                AlternateName(
                    city=city, name=spelling, folded=fold(spelling), kind=NameKind.VARIANT
                )
            )
        if place.flagged and city.location_flag != place.flagged:
            # Matched across a country border: a curator decides which code is right.
            city.location_flag = place.flagged
            place.filled.add("location_flag")
            plan.flagged_places.append(place)
        if place.filled:
            plan.updated_places.append(place)
            locator = f"row {place.cite_row}"
            if place.cite_row and (city.pk, locator) not in cited:
                plan.city_citations.append(CityCitation(city=city, source=source, locator=locator))


# A new city this close to an existing one of a similar name is worth a curator's look before
# the import: perhaps a spelling the matcher did not know.
NEAR_SIMILAR_KM = 25.0
NEAR_SIMILAR_RATIO = 0.75


def _near_similar(places):
    """[(new city, existing city, km)] for the cities the plan creates close to an existing
    city of a similar name, on a grid of about 28 km cells (one pass over each)."""
    cell = 0.25
    grid = defaultdict(list)
    for place in places.places:
        if place.has_coords:
            grid[(int(place.city.latitude // cell), int(place.city.longitude // cell))].append(
                place
            )
    found = []
    for new in places.new_places:
        if not new.has_coords:
            continue
        row, col = int(new.city.latitude // cell), int(new.city.longitude // cell)
        name = fold(new.city.name)
        best = None
        for r in (row - 1, row, row + 1):
            for c in (col - 1, col, col + 1):
                for old in grid.get((r, c), ()):
                    d = distance_km(
                        new.city.latitude, new.city.longitude, old.city.latitude, old.city.longitude
                    )
                    other = old.city.folded_name or fold(old.city.name)
                    similar = (
                        name in other
                        or other in name
                        or difflib.SequenceMatcher(None, name, other).ratio() >= NEAR_SIMILAR_RATIO
                    )
                    if d <= NEAR_SIMILAR_KM and similar and (best is None or d < best[2]):
                        best = (new.city, old.city, d)
        if best:
            found.append(best)
    return found


# What both imports' books (_TieBook here, importing_members._MemberBook) do alike.


def sources_by_url():
    """The atlas's sources by web address, the newest where several share one."""
    return {s.url: s for s in Source.objects.exclude(url="").order_by("-pk")}


def web_source(url, url_sources, plan, dataset):
    """(the Source of a row's own web page, is_new): found by address in `url_sources`, or a
    new web-page source the plan creates (and `url_sources` then knows), noting that rows of
    the `dataset` source cite it."""
    source = url_sources.get(url)
    if source is not None:
        return source, False
    digest = hashlib.sha1(url.encode()).hexdigest()[:12]
    source = Source(
        slug=f"web-{digest}",
        kind=SourceKind.WEB_PAGE,
        title=url[:500],
        url=url,
        note=f"Cited by rows of “{dataset.title}”; title not yet checked.",
    )
    plan.url_sources.append(source)
    url_sources[url] = source
    return source, True


def fill_missing(record, values, noun):
    """Give `record` the row's values where it has none: `values` are (field, value, what
    counts as empty). A value differing from one the record has is kept out and reported.
    Returns (conflicts, whether anything was filled)."""
    conflicts, changed = [], False
    for name, value, empty in values:
        current = getattr(record, name) or empty
        if not value or value == current:
            continue
        if current == empty:
            setattr(record, name, value)
            changed = True
        else:
            conflicts.append(f"{name} {value} differs from the {noun}'s {current}, kept")
    return conflicts, changed


def load_full(model, updated, copy):
    """Swap the value-only instances in `updated` (a row fills them in) for full ones loaded
    in one query, `copy(light, full)` carrying over what the plan changed, so that the
    history is whole."""
    if not updated:
        return
    full = model.objects.in_bulk([light.pk for light in updated])
    for i, light in enumerate(updated):
        record = full[light.pk]
        copy(light, record)
        updated[i] = record


class _TieBook:
    """The ties of the atlas and of the plan, by unordered pair, so that a pair listed from
    both ends, or already in the atlas, becomes one tie citing every row that lists it."""

    def __init__(self, source, plan, default_kind=TieKind.UNSPECIFIED):
        self.plan = plan
        self.source = source
        self.default_kind = default_kind  # for rows that state none
        # Values only: a full instance is loaded for the few ties a row fills in.
        self.existing = defaultdict(dict)  # {a, b} → kind → (pk, status, start, end)
        rows = Tie.objects.values_list(
            "pk", "city_a_id", "city_b_id", "kind", "status", "start", "end"
        )
        for pk, a, b, kind, status, start, end in rows:
            self.existing[frozenset((a, b))][kind] = (pk, status, start, end)
        self.loaded = {}
        self.stated = set()  # ids of atlas ties whose kind the file states
        self.planned = {}  # ({a, b}, kind) → (tie, first row)
        self.cited = set()
        if source.pk:
            self.cited = set(
                TieCitation.objects.filter(source=source).values_list("tie_id", "locator")
            )
        self.url_sources = sources_by_url()
        self.url_cited = set()  # (tie key, source key) pairs cited or planned
        self.url_loaded = set()

    def _existing_tie(self, pair, kind):
        """(the atlas's tie a row of `kind` names, "cited"), or (None, None). A row that
        states the kind of the pair's twinning of unstated kind gives it that kind:
        (tie, "upgraded"), the tie marked `kind_stated_from`."""
        kinds = self.existing.get(pair)
        if not kinds:
            return None, None
        if kind in kinds:
            pk, status, start, end = kinds[kind]
        elif kind == TieKind.UNSPECIFIED and kinds.keys() & TWINNING_KINDS:
            # A list of twin towns that does not say which kind confirms the twinning already
            # recorded (sister, partner, friendship), but not a memorandum or another tie:
            # citing it there would claim more than the list says.
            pk, status, start, end = min(kinds[k] for k in kinds.keys() & TWINNING_KINDS)
        elif kind in TWINNING_KINDS and TieKind.UNSPECIFIED in kinds:
            # A row saying sister, partner or friendship states the kind of the pair's
            # twinning of unstated kind, rather than adding a second tie beside it.
            pk, status, start, end = kinds[kind] = kinds.pop(TieKind.UNSPECIFIED)
            tie = self.loaded.setdefault(pk, Tie(pk=pk, status=status, start=start, end=end))
            tie.kind, tie.kind_stated_from = kind, TieKind.UNSPECIFIED
            self.stated.add(pk)
            self.plan.updated_ties.append(tie)
            return tie, "upgraded"
        else:
            return None, None
        if pk not in self.loaded:
            self.loaded[pk] = Tie(pk=pk, kind=kind, status=status, start=start, end=end)
        return self.loaded[pk], "cited"

    def _planned_tie(self, pair, kind):
        """The tie an earlier row plans for the pair, and that row's number: of the same kind,
        the twinning a row of unstated kind confirms, or the twinning of unstated kind that
        a row of stated kind gives its kind. None when there is none."""
        if (pair, kind) in self.planned:
            return self.planned[(pair, kind)]
        if kind == TieKind.UNSPECIFIED:
            found = [self.planned[(pair, k)] for k in TWINNING_KINDS if (pair, k) in self.planned]
            return min(found, key=lambda planned: planned[1]) if found else None
        if kind in TWINNING_KINDS and (pair, TieKind.UNSPECIFIED) in self.planned:
            tie, first = self.planned.pop((pair, TieKind.UNSPECIFIED))
            tie.kind = kind
            self.planned[(pair, kind)] = (tie, first)
            return tie, first
        return None

    def add(self, row, place_a, place_b):
        kind = row.kind or self.default_kind
        pair = frozenset((place_a.uid, place_b.uid))
        locator = f"row {row.number}"
        tie = action = None
        if not (place_a.is_new or place_b.is_new):
            tie, action = self._existing_tie(pair, kind)
        if tie is not None:
            if action == "upgraded":
                detail = f"states the kind of tie {tie.pk}: {tie.kind_stated_from} → {tie.kind}"
            else:
                detail = f"already in the atlas as tie {tie.pk}"
            outcome = Outcome(row.number, action, detail, tie)
            if (tie.pk, locator) not in self.cited:
                self.cited.add((tie.pk, locator))
                self.plan.tie_citations.append(
                    TieCitation(tie_id=tie.pk, source=self.source, locator=locator)
                )
        elif (planned := self._planned_tie(pair, kind)) is not None:
            tie, first = planned
            outcome = Outcome(row.number, "repeated", f"same pair as row {first}", tie)
            self.plan.tie_citations.append(
                TieCitation(tie=tie, source=self.source, locator=locator)
            )
        else:
            tie = Tie(city_a=place_a.city, city_b=place_b.city, kind=kind)
            self.planned[(pair, kind)] = (tie, row.number)
            self.plan.new_ties.append(tie)
            outcome = Outcome(row.number, "created", "", tie)
            self.plan.tie_citations.append(
                TieCitation(tie=tie, source=self.source, locator=locator)
            )
        conflicts = self._fill(tie, row)
        if conflicts:
            outcome.detail = "; ".join(filter(None, [outcome.detail, *conflicts]))
        if row.source_url:
            self._cite_url(tie, row.source_url)
        return outcome

    def _fill(self, tie, row):
        """Take the row's status and dates where the tie has none; report disagreements."""
        values = (("status", row.status, TieStatus.UNKNOWN), ("start", row.start, ""))
        conflicts, changed = fill_missing(tie, (*values, ("end", row.end, "")), "tie")
        if changed and tie.pk and tie not in self.plan.updated_ties:
            self.plan.updated_ties.append(tie)
        return conflicts

    def _cite_url(self, tie, url):
        """Cite the row's own web page, as a Source of its own found or planned by address."""
        source, is_new = web_source(url, self.url_sources, self.plan, self.source)
        if not is_new and source.pk and source.pk not in self.url_loaded:
            self.url_loaded.add(source.pk)
            cited = TieCitation.objects.filter(source=source, locator="")
            self.url_cited.update((pk, source.pk) for pk in cited.values_list("tie_id", flat=True))
        key = (tie.pk or f"new-{id(tie)}", source.pk or f"new-{id(source)}")
        if key not in self.url_cited:
            self.url_cited.add(key)
            self.plan.tie_citations.append(TieCitation(tie=tie, source=source, locator=""))

    def finish(self):
        """Swap the value-only ties a row fills in for full ones, so the history is whole."""

        def copy(light, tie):
            tie.status, tie.start, tie.end = light.status, light.start, light.end
            if light.pk in self.stated:
                tie.kind, tie.kind_stated_from = light.kind, light.kind_stated_from

        load_full(Tie, self.plan.updated_ties, copy)


# Writing ------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    written: dict
    change_reason: str


def change_reason_for(plan):
    return f"import_ties: {plan.table_name} ({plan.rows} rows)"


def history_options(plan, user, reason):
    """The bulk writers' history options for applying `plan`, once it may be applied: never
    twice, and with rejected rows only when built to skip them."""
    if plan.applied:
        raise ValueError("This import plan was applied already.")
    if not plan.can_apply:
        raise ImportRejected(plan)
    return {"batch_size": BATCH_SIZE, "default_user": user, "default_change_reason": reason}


def date_fields(*names):
    """The fields an EDTF date `name` is stored in: as written, and its lower and upper bounds."""
    return [f"{name}{bound}" for name in names for bound in ("", "_lower", "_upper")]


def write_dated(model, new, updated, fields, history, now):
    """Create the `new` records and update the `updated` ones' `fields` (and updated_at) of a
    model with EDTF dates, their bounds derived, each write in the edit history."""
    for record in new:
        record.derive_dates()
    bulk_create_with_history(new, model, **history)
    for record in updated:
        record.derive_dates()
        record.updated_at = now
    if updated:
        bulk_update_with_history(updated, model, [*fields, "updated_at"], **history)


def apply_import(plan, user=None, change_reason=None, progress=False):
    """Write what `plan` says, in one transaction, with edit history attributed to `user`.

    Refuses a plan with rejected rows unless it was built to skip them, and a plan applied
    before. Returns the counts written, which equal `plan.summary()`. A plan shown for
    confirmation may have aged: build it again and apply it inside one transaction (as
    run_import does), else a tie or city added meanwhile fails a unique constraint and the
    whole import rolls back.
    """
    reason = change_reason or change_reason_for(plan)
    history = history_options(plan, user, reason)
    now = timezone.now()
    steps = tqdm(total=8, desc="Writing", unit="step", disable=not progress)
    with transaction.atomic():
        sources = [plan.source] if plan.source_is_new else []
        for source in [*sources, *plan.url_sources]:
            source._history_user, source._change_reason = user, reason
            source.save()
        steps.update()
        bulk_create_with_history([p.city for p in plan.new_places], City, **history)
        steps.update()
        for place in plan.updated_places:
            place.city.updated_at = now
        fields = sorted({name for place in plan.updated_places for name in place.filled})
        if plan.updated_places:
            bulk_update_with_history(
                [p.city for p in plan.updated_places], City, [*fields, "updated_at"], **history
            )
        steps.update()
        bulk_create_with_history(plan.alternate_names, AlternateName, **history)
        bulk_create_with_history(plan.city_citations, CityCitation, **history)
        steps.update()
        for tie in plan.updated_ties:
            if getattr(tie, "kind_stated_from", None):
                tie._change_reason = (
                    f"{kind_stated_reason(tie.kind_stated_from, tie.kind)} ({reason})"
                )
        fields = ["kind", "status", *date_fields("start", "end")]
        write_dated(Tie, plan.new_ties, plan.updated_ties, fields, history, now)
        steps.update(2)
        bulk_create_with_history(plan.tie_citations, TieCitation, **history)
        steps.update(2)
    steps.close()
    plan.applied = True
    return ImportResult(written=plan.summary(), change_reason=reason)


def write_report(plan, path_or_file):
    """Write the rejected rows, with row number and reason, as CSV a researcher can fix."""
    close = False
    if isinstance(path_or_file, (str, Path)):
        handle = open(path_or_file, "w", encoding="utf-8", newline="")  # noqa: SIM115
        close = True
    else:
        handle = path_or_file
    try:
        writer = csv.writer(handle)
        writer.writerow(["row", "reason", *plan.header])
        for number, reason, cells in plan.rejected:
            writer.writerow([number, reason, *cells])
    finally:
        if close:
            handle.close()


def run_import(
    data,
    *,
    name=None,
    mapping=None,
    delimiter=None,
    source=None,
    source_is_new=False,
    default_kind=None,
    skip_bad_rows=False,
    dry_run=False,
    user=None,
    progress=False,
):
    """Read, plan and (unless `dry_run`) apply in one transaction, so that nothing another
    writer does between planning and writing can slip in. Returns the plan.

    Raises ImportFileError for a file that cannot be read, ImportRejected when rows are bad
    and `skip_bad_rows` is off (nothing is written then)."""
    table = read_table(data, name=name, delimiter=delimiter)
    columns = resolve_mapping(table.header, mapping)
    if source is None:
        source, source_is_new = dataset_source()
    return run_plan(
        table,
        columns,
        source,
        build=build_import_plan,
        apply=apply_import,
        dry_run=dry_run,
        user=user,
        progress=progress,
        source_is_new=source_is_new,
        default_kind=default_kind,
        skip_bad_rows=skip_bad_rows,
    )


def run_plan(table, columns, source, *, build, apply, dry_run, user, progress, **options):
    """Plan with `build` and (unless `dry_run`) write with `apply`, in one transaction, so
    that nothing another writer does between planning and writing can slip in."""
    with nullcontext() if dry_run else transaction.atomic():
        plan = build(table, columns, source, progress=progress, **options)
        if not dry_run:
            apply(plan, user=user, progress=progress)
    return plan
