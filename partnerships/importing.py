"""Bulk import of ties from CSV or TSV files: reading, column mapping, reconciliation, apply.

The work is split so that a dry run and a real run share every decision:

    table = read_table(path_or_bytes)                      # header and row count; rows on demand
    columns = resolve_mapping(table.header, mapping)       # file columns for each field
    plan = build_import_plan(table, columns, source=...)   # reads the database, writes nothing
    result = apply_import(plan, user=...)                  # writes exactly what the plan says

A plan walks the file twice, never holding all of its rows:

1. **Cities.** Every row is reconciled against the cities already in the atlas and the ones
   planned from earlier rows: same folded name (case, accents, ş/ș, scripts) and country,
   through alternate names, with coordinates telling apart places of the same name. What it
   keeps per row is the ids of the places at its ends; the city index (the atlas's cities
   and the new ones) is the one structure that grows with the file.
2. **Claims.** The rows are read again, a batch of BATCH_ROWS at a time, and a book
   (_TieBook here, importing_members._MemberBook) decides what each adds: a tie, a citation
   of a tie already recorded or listed earlier, dates it lacked. The book keeps the ties it
   has seen as values only; model instances live for one batch.

`plan.summary()` gives the figures a researcher sees before confirming. `apply_import` writes
the cities first, then walks the rows again and writes each batch of claims in a transaction
of its own, recording each insert and update in the edit history in bulk. Other writers get
the database between batches; a batch is all or nothing. An import that stops half-way leaves
whole batches behind, and running the same file again completes it: what a row would add is
found in the atlas, so it adds nothing twice. Bad rows are known after the first walk, so an
all-or-nothing import with a bad row writes nothing at all.
"""

import codecs
import csv
import difflib
import hashlib
import io
import json
import math
import re
import time
from array import array
from collections import Counter, defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import connection, transaction
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
# Records per INSERT statement.
BATCH_SIZE = 1000
# Rows of the file (or cities) written per transaction: short enough that other writers wait
# about a second at most, long enough that the commits cost little.
BATCH_ROWS = 1000
# SQLite's busy handler looks for the write lock every 100 ms: as long a pause between two
# batches lets a writer that waits for it (a curator saving a form) in before the next one.
WRITERS_GAP_SECONDS = 0.1
# What a report lists of a kind of row (rejected rows excepted: they are all kept, for the
# report file) and of the claims a plan creates; the rest are counted.
SAMPLE_KEPT = 100
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


class Table:
    """A CSV or TSV file, read again each time its rows are walked: its name, header and
    number of rows are known once it is opened, and no walk holds more than one row.

    `rows` gives (row number as a spreadsheet shows it, list of cells) for each row that is
    not empty; row numbers count the header as row 1."""

    def __init__(self, name, header, delimiter, opener, count):
        self.name = name
        self.header = header
        self.delimiter = delimiter
        self._open = opener  # a new binary file object each call
        self.count = count

    @property
    def rows(self):
        return _Rows(self)

    def records(self):
        """Every record after the header, empty ones included: (number, cells)."""
        with io.TextIOWrapper(self._open(), encoding="utf-8-sig", newline="") as text:
            reader = csv.reader(text, delimiter=self.delimiter)
            next(reader, None)
            yield from enumerate(reader, start=2)


class _Rows:
    def __init__(self, table):
        self.table = table

    def __len__(self):
        return self.table.count

    def __iter__(self):
        return ((n, cells) for n, cells in self.table.records() if any(cells))


def read_table(data, name=None, delimiter=None):
    """Open a CSV or TSV table from a path, from bytes or text, or from an open file (an
    upload). UTF-8, with or without byte-order mark; the separator is guessed from the header.

    The file is checked whole here (UTF-8, readable as CSV), so that a later walk of its rows
    cannot fail half-way."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        name = name or path.name
        try:
            path.open("rb").close()
        except OSError as error:
            raise ImportFileError(f"Cannot read {path}: {error.strerror}.") from None
        opener = partial(path.open, "rb")
    else:
        if hasattr(data, "read"):
            name = name or Path(getattr(data, "name", "") or "upload").name
            data = data.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        opener = partial(io.BytesIO, data)
    label = name or "The file"
    _check_utf8(opener, label)
    with io.TextIOWrapper(opener(), encoding="utf-8-sig", newline="") as text:
        first_line = text.readline()
    if delimiter is None:
        if name and name.lower().endswith((".tsv", ".tab")):
            delimiter = "\t"
        else:
            delimiter = max(",\t;", key=first_line.count)
    with io.TextIOWrapper(opener(), encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader, None)
            if not header or not any(cell.strip() for cell in header):
                raise ImportFileError(f"{label} is empty: the first row must name columns.")
            count = sum(1 for cells in reader if any(cells))
        except csv.Error as error:
            raise ImportFileError(
                f"{label} cannot be read as CSV at line {reader.line_num}: {error}."
            ) from None
    header = [cell.strip() for cell in header]
    return Table(name or "upload", header, delimiter, opener, count)


def _check_utf8(opener, label):
    """Raise ImportFileError naming the first byte that is not UTF-8, reading by blocks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with opener() as binary:
        while True:
            block = binary.read(1 << 20)
            held = len(decoder.getstate()[0])  # bytes of a character cut by the last block
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                raise ImportFileError(
                    f"{label} is not UTF-8 text (byte {offset - held + error.start + 1} is "
                    "not valid UTF-8): save it as UTF-8 and try again."
                ) from None
            if not block:
                return
            offset += len(block)


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
    return as_written((cells[spot[0]] or "").strip())


def as_written(value):
    """A cell as it was before the export guarded it against spreadsheets: an apostrophe
    before a leading =, +, -, @ (exports.as_text_cell) is taken off again."""
    if value.startswith("'") and value.lstrip("'").startswith(("=", "+", "-", "@", "\t", "\r")):
        return value[1:]
    return value


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

    __slots__ = (
        "city",
        "uid",
        "is_new",
        "names",
        "spellings",
        "cite_row",
        "filled",
        "flagged",
        "extra",
        "cite",
    )

    def __init__(self, city, uid, is_new, names=()):
        self.city = city
        self.uid = uid
        self.is_new = is_new
        self.names = set(names)  # exact spellings the city has or will have
        self.spellings = Counter()  # spellings seen in the file, for new cities
        self.cite_row = None  # row to cite on the city (created, or coordinates filled)
        self.filled = set()  # fields of an existing city the plan fills in
        self.flagged = ""  # why a curator should check the match (a country that differs)
        self.extra = ()  # spellings the plan adds as alternate names
        self.cite = ""  # the locator the plan cites the city with, if it cites it

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
        self.by_uid = {}  # the places by uid: what a plan keeps of each row is its ends' uids
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
            self.by_uid[place.uid] = place
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
        self.by_uid[place.uid] = place
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


# Progress -----------------------------------------------------------------------------------


class Progress:
    """How far an import has got: its phase, and the rows (or cities) done of the phase's
    total.

    `bar` draws it on a terminal (tqdm). `report(phase, done, total, unit)`, when given, is
    told at each phase's start and end and at most every REPORT_SECONDS between: that is how
    a background job's row follows an import (partnerships.jobs). The import tells it only
    between its transactions, so a report may write to the database."""

    REPORT_SECONDS = 2.0

    def __init__(self, bar=False, report=None):
        self.bar = bar
        self.report = report
        self.phase, self.unit, self.done, self.total = "", "rows", 0, 0
        self._tqdm = None
        self._told = 0.0

    def start(self, phase, total, unit="rows"):
        self.end()
        self.phase, self.unit, self.done, self.total = phase, unit, 0, total
        if self.bar:
            self._tqdm = tqdm(total=total, desc=phase, unit=unit.removesuffix("s"))
        self._tell(force=True)

    def advance(self, n=1):
        self.done += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        if self.report is not None:
            self._tell()

    def end(self):
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        if self.phase:
            self._tell(force=True)

    def _tell(self, force=False):
        if self.report is None:
            return
        now = time.monotonic()
        if force or now - self._told >= self.REPORT_SECONDS:
            self._told = now
            self.report(self.phase, self.done, self.total, self.unit)


_current_progress = ContextVar("import_progress", default=None)


@contextmanager
def reporting(progress):
    """Hand `progress` to the import steps run inside that are given none of their own: the
    admin's steps (admin_views, admin_members) plan and apply without naming one."""
    token = _current_progress.set(progress)
    try:
        yield progress
    finally:
        _current_progress.reset(token)


def as_progress(progress):
    """A Progress from what a caller gives: one, True for bars on a terminal, or nothing
    (the one `reporting` hands down, else a silent one)."""
    if isinstance(progress, Progress):
        return progress
    if not progress and _current_progress.get() is not None:
        return _current_progress.get()
    return Progress(bar=bool(progress))


# The plan -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """What the import does with one row: `action` is created, cited (the tie is already in
    the atlas), upgraded (the atlas's tie gets the kind the row states), repeated (the pair
    was listed at an earlier row) or rejected."""

    row: int
    action: str
    detail: str = ""


class Sample:
    """How many items a run produced, keeping the first `limit` of them: what a report
    shows of a long file, with the count of all."""

    def __init__(self, limit=SAMPLE_KEPT):
        self.limit = limit
        self.count = 0
        self.items = []

    def append(self, item):
        self.count += 1
        if len(self.items) < self.limit:
            self.items.append(item)

    def __len__(self):
        return self.count

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, index):
        return self.items[index]


class ImportPlan:
    """Everything an import will write, decided before anything is written.

    After the first walk of the file (reconcile_rows): the rejected rows with reasons, the
    places at each row's ends, the cities to create or complete. After the second
    (count_claims, or the writing walk of apply_import): the figures of what the rows add,
    the first rows of each outcome and the first claims created. MembershipPlan
    (importing_members) is the same for a member list: it reads its rows and books their
    claims its own way."""

    claim = "tie"
    command = "import_ties"
    ends_per_row = 2

    def __init__(
        self,
        table,
        columns,
        source,
        *,
        source_is_new=False,
        skip_bad_rows=False,
        default_kind=None,
    ):
        self.table = table
        self.columns = columns
        self.source = source
        self.source_is_new = source_is_new
        self.skip_bad_rows = skip_bad_rows
        self.default_kind = default_kind or TieKind.UNSPECIFIED
        self.rejected = []  # (row number, reason, cells): all of them, for the report file
        self.places = None  # the CityIndex of the first walk
        self.ends = array("q")  # the uids of each row's places; 0 for a rejected row
        self.new_places = []
        self.updated_places = []
        self.flagged_places = []  # matched across a country border
        self.near_similar = []  # (new city, existing city, km)
        self.written_places = []  # the places the import writes anything for, new ones first
        self.alternate_names = 0
        self.city_citations = 0
        self.cities_matched = 0
        self.applied = False
        self.reset_claims()

    def reset_claims(self):
        """Forget the figures of the rows' claims, before a walk counts them again."""
        self.claims_counted = False
        self.actions = Counter()
        self._kept = defaultdict(list)  # action → its first outcomes
        self.new_claims = Sample()  # the claims created: the first ones as model instances
        self.updated_claims = set()  # ids of the atlas's claims the rows change
        self.claim_citations = 0
        self.url_sources = 0

    @property
    def table_name(self):
        return self.table.name

    @property
    def rows(self):
        return self.table.count

    @property
    def header(self):
        return self.table.header

    @property
    def new_ties(self):
        return self.new_claims

    @property
    def outcomes(self):
        """The first SAMPLE_KEPT rows of each outcome, in row order."""
        rejected = [Outcome(n, "rejected", reason) for n, reason, _ in self.rejected[:SAMPLE_KEPT]]
        kept = [outcome for outcomes in self._kept.values() for outcome in outcomes]
        return sorted([*rejected, *kept], key=lambda outcome: outcome.row)

    def record(self, outcome):
        self.actions[outcome.action] += 1
        kept = self._kept[outcome.action]
        if len(kept) < SAMPLE_KEPT:
            kept.append(outcome)

    def reject(self, number, reason, cells):
        self.rejected.append((number, reason, cells))

    @property
    def is_clean(self):
        return not self.rejected

    @property
    def can_apply(self):
        return self.is_clean or self.skip_bad_rows

    def summary(self):
        """The figures of the report: the same for a dry run and the real run."""
        return {
            "rows": self.rows,
            "rows_rejected": len(self.rejected),
            "cities_created": len(self.new_places),
            "cities_matched": self.cities_matched,
            "cities_updated": len(self.updated_places),
            "cities_flagged": len(self.flagged_places),
            "cities_created_near_similar": len(self.near_similar),
            "alternate_names_created": self.alternate_names,
            "ties_created": len(self.new_claims),
            "ties_already_in_atlas": self.actions["cited"],
            "rows_repeating_a_pair": self.actions["repeated"],
            "ties_updated": len(self.updated_claims),
            "ties_kind_stated": self.actions["upgraded"],
            "citations_created": self.claim_citations + self.city_citations,
            "sources_created": int(self.source_is_new) + self.url_sources,
        }

    def default_reason(self):
        """The edit history's reason for the import's writes, unless the caller gives one."""
        return f"{self.command}: {self.table_name} ({self.rows} rows)"

    # How this import reads a row, finds the places it names and books what it adds.

    def parse(self, number, cells):
        return parse_row(number, cells, self.columns)

    def find(self, row, places):
        found_a, found_b = places.lookup(row.a), places.lookup(row.b)
        if (found_a is not None and found_a is found_b) or (
            found_a is None and found_b is None and places.same_new_place(row.a, row.b)
        ):
            raise BadRow(
                f"{row.a.name} and {row.b.name} ({row.a.country}) are the same city: "
                "a city cannot be tied to itself."
            )
        return (row.a, found_a), (row.b, found_b)

    def new_book(self):
        return _TieBook(self)


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
    progress=None,
    count=True,
):
    """Decide, without writing anything, what importing `table` does to the atlas. Without
    `count` the rows' ties are left to apply_import, which counts them as it writes."""
    plan = ImportPlan(
        table,
        columns,
        source,
        source_is_new=source_is_new,
        skip_bad_rows=skip_bad_rows,
        default_kind=default_kind,
    )
    return plan_rows(plan, progress=progress, count=count)


def plan_rows(plan, *, progress=None, count=True):
    """Walk the plan's file for its cities, then (`count`) for what its rows add."""
    progress = as_progress(progress)
    reconcile_rows(plan, progress)
    if count:
        count_claims(plan, progress)
    return plan


def reconcile_rows(plan, progress):
    """The first walk, which both imports share: `plan.parse` reads a row and `plan.find`
    gives its ends, each (End, the place the index found for it or None), or raises BadRow:
    the row is rejected. Ends found nowhere become new cities. Then the new cities are named
    and cited."""
    places = plan.places = CityIndex()
    matched = set()
    rejected = array("q", [0] * plan.ends_per_row)
    progress.start("Matching the rows' cities", plan.rows)
    for number, cells in plan.table.rows:
        try:
            row = plan.parse(number, cells)
            ends = plan.find(row, places)
        except BadRow as error:
            plan.reject(number, str(error), cells)
            plan.ends.extend(rejected)
        else:
            for end, place in ends:
                place = place or places.create(end, number)
                places.note(place, end, number)
                if not place.is_new:
                    matched.add(place.uid)
                plan.ends.append(place.uid)
        progress.advance()
    plan.cities_matched = len(matched)
    _finish_places(plan, places, plan.source)


def count_claims(plan, progress=None):
    """The second walk, counting what the rows add without writing it."""
    walk_claims(plan, as_progress(progress), "Counting what the rows add")


def walk_claims(plan, progress, phase, write=None):
    """The second walk: each row that was not rejected goes, with the places of its ends,
    to the plan's book; every BATCH_ROWS rows the book's batch is written by `write` (in one
    transaction), or, without `write`, only counted."""
    plan.reset_claims()
    book = plan.new_book()
    places, ends, width = plan.places.by_uid, plan.ends, plan.ends_per_row
    at = waiting = 0
    progress.start(phase, plan.rows)
    for number, cells in plan.table.rows:
        uids = ends[at : at + width]
        at += width
        if len(uids) < width:
            raise ImportFileError(f"{plan.table_name} changed while it was being imported.")
        if uids[0]:
            row = plan.parse(number, cells)
            plan.record(book.add(row, *(places[uid] for uid in uids)))
        waiting += 1
        if waiting == BATCH_ROWS:
            book.close(write)
            progress.advance(waiting)
            waiting = 0
    book.close(write)
    progress.advance(waiting)
    book.finish()
    plan.claims_counted = True


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
        place.extra = tuple(spelling for spelling, _count in spellings[1:])
        place.cite = f"row {place.cite_row}"
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
    changed = []
    for place in places.places:
        city = place.city
        place.extra = tuple(place.spellings)
        if place.flagged and city.location_flag != place.flagged:
            # Matched across a country border: a curator decides which code is right.
            city.location_flag = place.flagged
            place.filled.add("location_flag")
            plan.flagged_places.append(place)
        if place.filled:
            plan.updated_places.append(place)
            locator = f"row {place.cite_row}"
            if place.cite_row and (city.pk, locator) not in cited:
                place.cite = locator
        if place.extra or place.filled:
            changed.append(place)
    plan.written_places = [*plan.new_places, *changed]
    plan.alternate_names = sum(len(place.extra) for place in plan.written_places)
    plan.city_citations = sum(1 for place in plan.written_places if place.cite)


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


def date_fields(*names):
    """The fields an EDTF date `name` is stored in: as written, and its lower and upper bounds."""
    return [f"{name}{bound}" for name in names for bound in ("", "_lower", "_upper")]


class WebSources:
    """The sources of rows' own web pages, by address: the atlas's (the first recorded where
    several share one), and a web-page source the import adds for each new address, once.

    A member list's own address (`own`) names the list itself, not a page to add."""

    def __init__(self, plan, own=None):
        self.plan = plan
        self.own = own
        query = Source.objects.exclude(url="").order_by("pk").values_list("url", "pk")
        if plan.source_is_new and plan.source.pk:
            # Saved by this import before its rows' walk: its dry run did not know it.
            query = query.exclude(pk=plan.source.pk)
        self.atlas = {}
        for url, pk in query:
            self.atlas.setdefault(url, pk)
        self.planned = {}  # address → the new Source, its id once written, or its key

    def find(self, url):
        """(key, source, is_new) for the page at `url`. The key tells sources apart in the
        books' sets (an id, or the address of a new one); the source is what a citation
        names (a Source or an id). (None, None, False) for the member list's own address."""
        pk = self.atlas.get(url)
        if pk is not None:
            return pk, pk, False
        if self.own is not None and url == self.own.url:
            return None, None, False
        planned = self.planned.get(url)
        if planned is not None:
            return url, planned, False
        digest = hashlib.sha1(url.encode()).hexdigest()[:12]
        source = Source(
            slug=f"web-{digest}",
            kind=SourceKind.WEB_PAGE,
            title=url[:500],
            url=url,
            note=f"Cited by rows of “{self.plan.source.title}”; title not yet checked.",
        )
        self.planned[url] = source
        return url, source, True

    def settle(self, sources, written):
        """After a batch: its new sources are known by id once written; a dry run keeps only
        their keys, as nothing will cite them in writing."""
        for source in sources:
            self.planned[source.url] = source.pk if written else source.slug


class Batch:
    """What one batch of rows adds, written in one transaction."""

    __slots__ = ("sources", "created", "touched", "citations")

    def __init__(self):
        self.sources = []  # new web-page Sources
        self.created = []  # claims (_Tie, _Membership) to create
        self.touched = {}  # id → claim already written that the batch's rows change
        self.citations = []  # (claim, Source or id, locator)


class _Book:
    """The claims a file's rows add (ties, memberships), followed as values only: a claim
    (_Tie, importing_members._Membership) for each one the rows name, with its id once the
    atlas has it. What the current batch adds waits in `batch` until close()."""

    model = citation_model = None
    fields = ()  # the claim's fields an import may change

    def __init__(self, plan, own_url=False):
        self.plan = plan
        self.source = plan.source
        self.batch = Batch()
        self.web = WebSources(plan, own=plan.source if own_url and plan.source.url else None)

    def _create(self, claim):
        self.batch.created.append(claim)
        self.plan.new_claims.append(claim)

    def _touch(self, claim):
        """A change to a claim: written with the batch once the claim has an id; counted as
        a claim updated when it is the atlas's, not one this import created."""
        if claim.pk is None:
            return
        self.batch.touched[claim.pk] = claim
        if claim.first is None:
            self.plan.updated_claims.add(claim.pk)

    def _cite(self, claim, source, locator):
        self.batch.citations.append((claim, source, locator))
        self.plan.claim_citations += 1

    def _web_source(self, url):
        """(key, source) of the row's own web page, planned with this batch when new."""
        key, source, is_new = self.web.find(url)
        if is_new:
            self.batch.sources.append(source)
            self.plan.url_sources += 1
        return key, source

    def close(self, write=None):
        """End the batch: written by `write(book, batch)` when given, else only counted."""
        batch, self.batch = self.batch, Batch()
        if write is not None and (batch.created or batch.touched or batch.citations):
            write(self, batch)
        self.web.settle(batch.sources, written=write is not None)

    def finish(self):
        """The first claims created, as model instances a preview shows."""
        self.plan.new_claims.items = [claim.instance() for claim in self.plan.new_claims.items]


class _Tie:
    """A tie as the book follows it: its values, its id (the atlas's, or once written), and
    the row that planned it (None for a tie the atlas had)."""

    __slots__ = ("pk", "first", "city_a", "city_b", "kind", "status", "start", "end", "stated")

    def __init__(self, pk, kind, status, start, end, first=None, city_a=None, city_b=None):
        self.pk, self.first, self.city_a, self.city_b = pk, first, city_a, city_b
        self.kind, self.status, self.start, self.end = kind, status, start, end
        self.stated = ""  # the kind the atlas's tie had when a row states its kind

    def instance(self):
        return Tie(
            pk=self.pk,
            city_a=self.city_a,
            city_b=self.city_b,
            kind=self.kind,
            status=self.status,
            start=self.start,
            end=self.end,
        )

    def copy_to(self, tie, reason):
        """Give the whole tie `tie` the values the rows decided."""
        tie.kind, tie.status, tie.start, tie.end = self.kind, self.status, self.start, self.end
        if self.stated:
            tie._change_reason = f"{kind_stated_reason(self.stated, self.kind)} ({reason})"
            self.stated = ""


class _TieBook(_Book):
    """The ties of the atlas and of the plan, by unordered pair, so that a pair listed from
    both ends, or already in the atlas, becomes one tie citing every row that lists it."""

    model, citation_model = Tie, TieCitation
    fields = ("kind", "status", *date_fields("start", "end"))

    def __init__(self, plan):
        super().__init__(plan)
        self.default_kind = plan.default_kind  # for rows that state none
        # Values only: a tie a row names is followed as a _Tie from then on.
        self.existing = defaultdict(dict)  # {a, b} → kind → (pk, status, start, end)
        rows = Tie.objects.values_list(
            "pk", "city_a_id", "city_b_id", "kind", "status", "start", "end"
        )
        for pk, a, b, kind, status, start, end in rows:
            self.existing[frozenset((a, b))][kind] = (pk, status, start, end)
        self.loaded = {}  # pk → _Tie of the atlas
        self.planned = {}  # ({a, b}, kind) → _Tie the import creates
        self.cited = set()
        if self.source.pk:
            self.cited = set(
                TieCitation.objects.filter(source=self.source).values_list("tie_id", "locator")
            )
        self.url_cited = set()  # (tie key, source key) pairs cited or planned
        self.url_loaded = set()

    def _load(self, values, kind):
        pk, status, start, end = values
        if pk not in self.loaded:
            self.loaded[pk] = _Tie(pk, kind, status, start, end)
        return self.loaded[pk]

    def _existing_tie(self, pair, kind):
        """(the atlas's tie a row of `kind` names, "cited"), or (None, None). A row that
        states the kind of the pair's twinning of unstated kind gives it that kind:
        (tie, "upgraded")."""
        kinds = self.existing.get(pair)
        if not kinds:
            return None, None
        if kind in kinds:
            found = kind
        elif kind == TieKind.UNSPECIFIED and kinds.keys() & TWINNING_KINDS:
            # A list of twin towns that does not say which kind confirms the twinning already
            # recorded (sister, partner, friendship), but not a memorandum or another tie:
            # citing it there would claim more than the list says.
            found = min(kinds.keys() & TWINNING_KINDS, key=kinds.get)
        elif kind in TWINNING_KINDS and TieKind.UNSPECIFIED in kinds:
            # A row saying sister, partner or friendship states the kind of the pair's
            # twinning of unstated kind, rather than adding a second tie beside it.
            kinds[kind] = kinds.pop(TieKind.UNSPECIFIED)
            tie = self._load(kinds[kind], TieKind.UNSPECIFIED)
            tie.kind, tie.stated = kind, TieKind.UNSPECIFIED
            self._touch(tie)
            return tie, "upgraded"
        else:
            return None, None
        return self._load(kinds[found], found), "cited"

    def _planned_tie(self, pair, kind):
        """The tie an earlier row plans for the pair: of the same kind, the twinning a row of
        unstated kind confirms, or the twinning of unstated kind that a row of stated kind
        gives its kind. None when there is none."""
        if (pair, kind) in self.planned:
            return self.planned[(pair, kind)]
        if kind == TieKind.UNSPECIFIED:
            found = [self.planned[(pair, k)] for k in TWINNING_KINDS if (pair, k) in self.planned]
            return min(found, key=lambda tie: tie.first) if found else None
        if kind in TWINNING_KINDS and (pair, TieKind.UNSPECIFIED) in self.planned:
            tie = self.planned.pop((pair, TieKind.UNSPECIFIED))
            tie.kind = kind
            self.planned[(pair, kind)] = tie
            self._touch(tie)  # written by an earlier batch: changed by this one
            return tie
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
                detail = f"states the kind of tie {tie.pk}: {tie.stated} → {tie.kind}"
            else:
                detail = f"already in the atlas as tie {tie.pk}"
            outcome = Outcome(row.number, action, detail)
            if (tie.pk, locator) not in self.cited:
                self.cited.add((tie.pk, locator))
                self._cite(tie, self.source, locator)
        elif (planned := self._planned_tie(pair, kind)) is not None:
            tie = planned
            outcome = Outcome(row.number, "repeated", f"same pair as row {tie.first}")
            self._cite(tie, self.source, locator)
        else:
            tie = _Tie(
                None, kind, TieStatus.UNKNOWN, "", "", row.number, place_a.city, place_b.city
            )
            self.planned[(pair, kind)] = tie
            self._create(tie)
            outcome = Outcome(row.number, "created")
            self._cite(tie, self.source, locator)
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
        if changed:
            self._touch(tie)
        return conflicts

    def _cite_url(self, tie, url):
        """Cite the row's own web page, as a Source of its own found or planned by address."""
        key, source = self._web_source(url)
        if isinstance(key, int) and key not in self.url_loaded:
            self.url_loaded.add(key)
            cited = TieCitation.objects.filter(source_id=key, locator="")
            self.url_cited.update((pk, key) for pk in cited.values_list("tie_id", flat=True))
        pair = (tie if tie.first is not None else tie.pk, key)
        if pair not in self.url_cited:
            self.url_cited.add(pair)
            self._cite(tie, source, "")


# Writing ------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    written: dict
    change_reason: str


def change_reason_for(plan):
    return plan.default_reason()


def history_options(plan, user, reason):
    """The bulk writers' history options for applying `plan`, once it may be applied: never
    twice, and with rejected rows only when built to skip them (the refusal's figures are
    whole: what the rows would add is counted first)."""
    if plan.applied:
        raise ValueError("This import plan was applied already.")
    if not plan.can_apply:
        if not plan.claims_counted:
            count_claims(plan)
        raise ImportRejected(plan)
    return {"batch_size": BATCH_SIZE, "default_user": user, "default_change_reason": reason}


class WriterTurns:
    """Turns at the write lock between an import's batches and other writers: on SQLite,
    whose writers take turns, WRITERS_GAP_SECONDS at least between a batch's commit and the
    next batch (reading the next rows usually takes that long already)."""

    def __init__(self):
        self.committed = None

    def wait(self):
        if self.committed is None or connection.vendor != "sqlite":
            return
        if connection.in_atomic_block:
            return  # the batches are savepoints of a caller's transaction: no turns to give
        remaining = WRITERS_GAP_SECONDS - (time.monotonic() - self.committed)
        if remaining > 0:
            time.sleep(remaining)

    def done(self):
        self.committed = time.monotonic()


def write_cities(plan, history, progress, turns):
    """Write the plan's source, then its cities — the new ones, those it completes, their new
    spellings and citations — a batch of BATCH_ROWS cities per transaction, each city with
    its names, so that a second run finds by any of them a city the first one wrote."""
    if plan.source_is_new:
        source = plan.source
        source._history_user = history["default_user"]
        source._change_reason = history["default_change_reason"]
        with transaction.atomic():
            source.save()
    places = plan.written_places
    progress.start("Writing cities", len(places), unit="cities")
    for at in range(0, len(places), BATCH_ROWS):
        batch = places[at : at + BATCH_ROWS]
        turns.wait()
        with transaction.atomic():
            _write_places(plan, batch, history)
        turns.done()
        progress.advance(len(batch))


def _write_places(plan, places, history):
    now = timezone.now()
    new = [place.city for place in places if place.is_new]
    if new:
        bulk_create_with_history(new, City, **history)
    updated = [place for place in places if place.filled]
    if updated:
        fields = sorted({name for place in updated for name in place.filled})
        for place in updated:
            place.city.updated_at = now
        bulk_update_with_history(
            [place.city for place in updated], City, [*fields, "updated_at"], **history
        )
    names = [
        AlternateName(city=place.city, name=name, folded=fold(name), kind=NameKind.VARIANT)
        for place in places
        for name in place.extra
    ]
    if names:
        bulk_create_with_history(names, AlternateName, **history)
    citations = [
        CityCitation(city=place.city, source=plan.source, locator=place.cite)
        for place in places
        if place.cite
    ]
    if citations:
        bulk_create_with_history(citations, CityCitation, **history)


def write_batch(book, batch, *, history, reason, turns):
    """Write one batch of claims in one transaction: the web pages its rows cite, the claims
    created, the claims changed (loaded whole, so that their history is whole), and the
    citations."""
    model, citation_model = book.model, book.citation_model
    turns.wait()
    with transaction.atomic():
        if batch.sources:
            for source in batch.sources:
                source.derive_dates()
            bulk_create_with_history(batch.sources, Source, **history)
        if batch.created:
            records = [claim.instance() for claim in batch.created]
            for record in records:
                record.derive_dates()
            bulk_create_with_history(records, model, **history)
            for claim, record in zip(batch.created, records, strict=True):
                claim.pk = record.pk
        if batch.touched:
            now = timezone.now()
            records = model.objects.in_bulk(list(batch.touched))
            for pk, claim in batch.touched.items():
                claim.copy_to(records[pk], reason)
                records[pk].derive_dates()
                records[pk].updated_at = now
            fields = [*book.fields, "updated_at"]
            bulk_update_with_history(list(records.values()), model, fields, **history)
        if batch.citations:
            claim_id = f"{citation_model.claim_field}_id"
            citations = [
                citation_model(
                    **{claim_id: claim.pk}, source_id=getattr(source, "pk", source), locator=locator
                )
                for claim, source, locator in batch.citations
            ]
            bulk_create_with_history(citations, citation_model, **history)
    turns.done()


def apply_import(plan, user=None, change_reason=None, progress=None):
    """Write what `plan` says, with edit history attributed to `user`: its cities, then its
    rows' claims, walking the file again and writing each batch of BATCH_ROWS rows in a
    transaction of its own. Returns the figures written, counted as they are written: the
    dry run's, unless the atlas changed in between.

    Refuses a plan with rejected rows unless it was built to skip them, and a plan applied
    (or begun) before. A plan shown for confirmation may have aged: the admin plans again
    and compares the figures before applying. A city or tie another writer adds between two
    batches can still make a batch fail its unique constraint; the import stops there, its
    earlier batches written, and running the same file again completes it.
    """
    reason = change_reason or plan.default_reason()
    history = history_options(plan, user, reason)
    progress = as_progress(progress)
    plan.applied = True  # begun: a plan is never written twice, even after a failure
    turns = WriterTurns()
    write_cities(plan, history, progress, turns)
    write = partial(write_batch, history=history, reason=reason, turns=turns)
    walk_claims(plan, progress, f"Writing {plan.claim}s", write=write)
    progress.end()
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
    progress=None,
):
    """Read, plan and (unless `dry_run`) apply, a batch of rows at a time. Returns the plan.

    Raises ImportFileError for a file that cannot be read, ImportRejected when rows are bad
    and `skip_bad_rows` is off (nothing is written then)."""
    table = read_table(data, name=name, delimiter=delimiter)
    columns = resolve_mapping(table.header, mapping)
    if source is None:
        source, source_is_new = dataset_source()
    plan = ImportPlan(
        table,
        columns,
        source,
        source_is_new=source_is_new,
        skip_bad_rows=skip_bad_rows,
        default_kind=default_kind,
    )
    return run_plan(plan, dry_run=dry_run, user=user, progress=progress)


def run_plan(plan, *, dry_run=False, user=None, progress=None):
    """Plan `plan` and, unless `dry_run`, apply it: a dry run counts what the rows add, a
    real run counts it as it writes (apply_import). Returns the plan."""
    progress = as_progress(progress)
    plan_rows(plan, progress=progress, count=dry_run)
    if not dry_run:
        apply_import(plan, user=user, progress=progress)
    progress.end()
    return plan
