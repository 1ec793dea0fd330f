"""Research exports of ties and sources, written as streams.

Each writer takes a (filtered) queryset and yields UTF-8 bytes in pieces of about BUFFER
characters. Rows come from `values_list(...).iterator(chunk_size=CHUNK)` in one query that
joins both cities and gathers each tie's topic and source keys in correlated subqueries, so a
whole-atlas export holds one chunk of rows and one piece of text at a time: a network export
first streams the cities the ties touch, then the ties. Formats:

- CSV: one tie per row with slugs, Wikidata ids, EDTF dates, kind, status and source keys;
  `manage.py import_ties` reads it back (see CSV_IMPORT_MAP).
- GeoJSON (RFC 7946): cities as Points, ties as LineStrings, `[longitude, latitude]`.
- GEXF 1.3 in dynamic mode: each tie has `start`/`end` so Gephi's timeline works.
- GraphML: the same graph for igraph, Cytoscape, yEd and networkx.
- CSL-JSON and BibTeX for sources (Zotero, pandoc, LaTeX).
"""

import csv
import json
import re
from json.encoder import encode_basestring

from django.db import connections
from django.db.models import Aggregate, CharField, OuterRef, Q, Subquery

from cities.models import City, CityCitation, Source, SourceKind

from .models import MembershipCitation, Tie, TieCitation, TieKind

CHUNK = 1000  # rows fetched from the database at a time
BUFFER = 64 * 1024  # characters of text gathered before a piece is encoded and sent
LIST_SEPARATOR = ";"

CSV_COLUMNS = [
    "tie_id",
    "city_a",
    "city_a_name",
    "city_a_country",
    "city_a_wikidata",
    "city_a_latitude",
    "city_a_longitude",
    "city_b",
    "city_b_name",
    "city_b_country",
    "city_b_wikidata",
    "city_b_latitude",
    "city_b_longitude",
    "kind",
    "status",
    "start",
    "end",
    "date_basis",
    "topics",
    "sources",
    "verification",
    "summary",
]

# How `manage.py import_ties FILE --map SPEC` reads the CSV export back: the command's fields
# on the left, this export's columns on the right (as field=column pairs or a JSON file).
CSV_IMPORT_MAPPING = {
    **{
        f"{field}{n}": f"{end}_{column}"
        for n, end in ((1, "city_a"), (2, "city_b"))
        for field, column in (
            ("city", "name"),
            ("country", "country"),
            ("lat", "latitude"),
            ("lng", "longitude"),
            ("wikidata", "wikidata"),
        )
    },
    "kind": "kind",
    "status": "status",
    "start": "start",
    "end": "end",
}
CSV_IMPORT_MAP = ",".join(f"{field}={column}" for field, column in CSV_IMPORT_MAPPING.items())

CITY_COLUMNS = ["slug", "name", "country", "wikidata_id", "latitude", "longitude"]


def _encoded(pieces):
    """Text pieces joined and encoded in pieces of about BUFFER characters: one encode and
    one write per piece rather than per row."""
    buffer, size = [], 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= BUFFER:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode()


# Rows ------------------------------------------------------------------------------------


class SlugList(Aggregate):
    """The slugs of a group joined by LIST_SEPARATOR.

    PostgreSQL gives each once, in the database's order. SQLite's GROUP_CONCAT takes no
    ORDER BY before 3.44 (nor a separator with DISTINCT), so there the list comes as stored
    and `_slug_lists()` sorts it, as SQLite's binary collation would.
    """

    output_field = CharField()
    template = f"GROUP_CONCAT(%(expressions)s, '{LIST_SEPARATOR}')"

    def as_postgresql(self, compiler, connection, **extra):
        template = (
            f"STRING_AGG(DISTINCT %(expressions)s, '{LIST_SEPARATOR}' ORDER BY %(expressions)s)"
        )
        return self.as_sql(compiler, connection, template=template, **extra)


# The lists of keys a tie's rows may hold besides its fields: the rows they come from, and
# the path from those rows to the slug.
SLUG_LISTS = {
    "topic_slugs": (Tie.topics.through, "theme__slug"),
    "source_slugs": (TieCitation, "source__slug"),
}


def _slugs(through, path, owner="tie"):
    """A record's slugs reached through `through` rows (by `path`), as one SlugList value;
    `owner` names the rows' field that points to the record (a tie by default)."""
    rows = through.objects.filter(**{owner: OuterRef("pk")}).order_by().values(owner)
    return Subquery(rows.annotate(slugs=SlugList(path)).values("slugs"), output_field=CharField())


def _sorted_slugs(value):
    if not value:
        return ""
    if LIST_SEPARATOR not in value:
        return value
    return LIST_SEPARATOR.join(sorted(set(value.split(LIST_SEPARATOR))))


def _ordered_slugs(value):
    return value or ""


def _slug_lists(ties):
    """How a SlugList value of `ties`' database reads as the export writes it."""
    return _ordered_slugs if connections[ties.db].vendor == "postgresql" else _sorted_slugs


def tie_values(ties, *columns):
    """`ties` as values_list rows of `columns`, in their order: one query, which the
    writers read CHUNK rows at a time.

    Besides the fields of a tie and of its cities (`city_a__slug`), `topic_slugs` and
    `source_slugs` give the keys of its topics and cited sources as SlugList values: a
    correlated subquery each, which any filter or ordering of `ties` leaves alone.
    """
    annotations = {name: _slugs(*SLUG_LISTS[name]) for name in columns if name in SLUG_LISTS}
    return ties.annotate(**annotations).values_list(*columns)


def cities_of(ties):
    """The cities at either end of `ties`, each once, as CITY_COLUMNS rows in id order."""
    ends = ties.order_by()
    cities = City.objects.filter(
        Q(pk__in=ends.values("city_a_id")) | Q(pk__in=ends.values("city_b_id"))
    ).order_by("pk")
    return cities.values_list(*CITY_COLUMNS).iterator(chunk_size=CHUNK)


# CSV -------------------------------------------------------------------------------------


class _Line:
    """A file-like object whose write() returns the line, for csv.writer in a generator."""

    def write(self, value):
        return value


# What the CSV reads of each tie: CSV_COLUMNS' values, the subqueries' last (where the
# query selects them, so that rows need no reordering).
CSV_VALUES = [
    "id",
    *(f"city_a__{c}" for c in CITY_COLUMNS),
    *(f"city_b__{c}" for c in CITY_COLUMNS),
    *("kind", "status", "start", "end", "date_basis", "verification", "summary"),
    *("topic_slugs", "source_slugs"),
]
_CSV_SEPARATORS = len(CSV_COLUMNS) - 1


def csv_rows(ties):
    return _encoded(_csv_lines(ties))


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP's CSV
# injection rule): such text is written after an apostrophe, which spreadsheets show as
# text and `import_ties` takes off again. Numbers (coordinates, ids) are written as numbers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_text_cell(value):
    # Text that already starts with apostrophes before such a character gets one more, so
    # that taking one off on import always gives the text back.
    return "'" + value if value and value.lstrip("'").startswith(FORMULA_STARTS) else value


def _csv_lines(ties):
    # csv.writer (QUOTE_MINIMAL) writes a field as it is unless it holds a comma, a quote or
    # a line break; a row none of whose fields does is joined directly, and the few that
    # need quoting go through csv.writer.
    writerow = csv.writer(_Line()).writerow
    yield writerow(CSV_COLUMNS)
    slug_list = _slug_lists(ties)
    for row in tie_values(ties, *CSV_VALUES).iterator(chunk_size=CHUNK):
        (pk, a_slug, a_name, a_country, a_wikidata, a_lat, a_lng,
         b_slug, b_name, b_country, b_wikidata, b_lat, b_lng,
         kind, status, start, end, basis, verification, summary, topics, sources) = row  # fmt: skip
        # A city has both coordinates or neither (a constraint); six decimals is about 10 cm.
        if a_lat is None:
            a_lat = a_lng = ""
        else:
            a_lat, a_lng = f"{a_lat:.6f}", f"{a_lng:.6f}"
        if b_lat is None:
            b_lat = b_lng = ""
        else:
            b_lat, b_lng = f"{b_lat:.6f}", f"{b_lng:.6f}"
        fields = (
            str(pk), a_slug, as_text_cell(a_name), a_country, a_wikidata, a_lat, a_lng,
            b_slug, as_text_cell(b_name), b_country, b_wikidata, b_lat, b_lng,
            kind, status, as_text_cell(start), as_text_cell(end), basis,
            slug_list(topics), slug_list(sources), verification, as_text_cell(summary),
        )  # fmt: skip
        line = ",".join(fields)
        if (
            line.count(",") == _CSV_SEPARATORS
            and '"' not in line
            and "\n" not in line
            and "\r" not in line
        ):
            yield line + "\r\n"
        else:
            yield writerow(fields)


# GeoJSON ---------------------------------------------------------------------------------


def line_between(a, b):
    """A LineString from a to b, or a MultiLineString cut at the antimeridian when the short
    way crosses it (RFC 7946 §3.1.9), so Yokohama–Vancouver does not span the globe."""
    (lon1, lat1), (lon2, lat2) = a, b
    if abs(lon2 - lon1) <= 180:
        return {"type": "LineString", "coordinates": [a, b]}
    # Unwrap the far end so that the line runs the short way, then cut where it meets ±180.
    lon2_unwrapped = lon2 + 360 if lon1 > lon2 else lon2 - 360
    edge = 180 if lon1 > 0 else -180
    share = (edge - lon1) / (lon2_unwrapped - lon1)
    lat_cut = round(lat1 + share * (lat2 - lat1), 6)
    return {
        "type": "MultiLineString",
        "coordinates": [[a, [edge, lat_cut]], [[-edge, lat_cut], b]],
    }


def _line_json(a, b):
    """line_between(a, b) as json.dumps writes it, the common case without the encoder."""
    if abs(b[0] - a[0]) <= 180:
        return (
            f'{{"type": "LineString", "coordinates": [[{a[0]!r}, {a[1]!r}], [{b[0]!r}, {b[1]!r}]]}}'
        )
    return json.dumps(line_between(a, b))


def _json_string(value):
    return "null" if not value else encode_basestring(value)


def geojson_chunks(ties):
    return _encoded(_geojson_text(ties))


def _geojson_text(ties):
    # Features are written from templates, each value as json.dumps(..., ensure_ascii=False)
    # writes it: strings through the same encoder, floats as repr(), missing values as null.
    # Foreign members of the collection (RFC 7946 §6.1): the licence and whom to credit.
    head = {"type": "FeatureCollection", "licence": ATLAS_LICENCE, "license_url": ATLAS_LICENCE_URL}
    head["attribution"] = licence_notice(sources_of(ties))
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [\n'
    separator = ""
    for slug, name, country, wikidata_id, lat, lng in cities_of(ties):
        # RFC 7946 §3.1.1: longitude first; six decimals is about 10 cm, more is noise.
        geometry = (
            "null"
            if lat is None
            else f'{{"type": "Point", "coordinates": [{round(lng, 6)!r}, {round(lat, 6)!r}]}}'
        )
        yield (
            f'{separator}{{"type": "Feature", "id": {encode_basestring("city:" + slug)}, '
            f'"geometry": {geometry}, "properties": {{"feature": "city", '
            f'"slug": {encode_basestring(slug)}, "name": {encode_basestring(name)}, '
            f'"country": {encode_basestring(country)}, '
            f'"wikidata_id": {_json_string(wikidata_id)}}}}}'
        )
        separator = ",\n"
    slug_list = _slug_lists(ties)
    columns = [
        *("id", "city_a__slug", "city_a__latitude", "city_a__longitude"),
        *("city_b__slug", "city_b__latitude", "city_b__longitude"),
        *("kind", "status", "start", "end", "source_slugs"),
    ]
    for row in tie_values(ties, *columns).iterator(chunk_size=CHUNK):
        pk, a_slug, a_lat, a_lng, b_slug, b_lat, b_lng, kind, status, start, end, sources = row
        geometry = "null"
        if a_lat is not None and b_lat is not None:
            a = [round(a_lng, 6), round(a_lat, 6)]
            geometry = _line_json(a, [round(b_lng, 6), round(b_lat, 6)])
        sources = slug_list(sources)
        sources = (
            ", ".join(map(encode_basestring, sources.split(LIST_SEPARATOR))) if sources else ""
        )
        yield (
            f'{separator}{{"type": "Feature", "id": "tie:{pk}", "geometry": {geometry}, '
            f'"properties": {{"feature": "tie", "tie_id": {pk}, '
            f'"city_a": {encode_basestring(a_slug)}, "city_b": {encode_basestring(b_slug)}, '
            f'"kind": {encode_basestring(kind)}, "status": {encode_basestring(status)}, '
            f'"start": {_json_string(start)}, "end": {_json_string(end)}, '
            f'"sources": [{sources}]}}}}'
        )
        separator = ",\n"
    yield "\n]}\n"


# Licences -----------------------------------------------------------------------------------

# The atlas as a whole is share-alike: most of its ties come from Wikipedia (CC BY-SA 4.0).
ATLAS_LICENCE = "CC BY-SA 4.0"
ATLAS_LICENCE_URL = "https://creativecommons.org/licenses/by-sa/4.0/"


def sources_of(ties):
    """The sources the exported ties cite, by title: what an export must credit."""
    return (
        Source.objects.filter(tie_citations__tie__in=ties.values("pk"))
        .distinct()
        .order_by("title", "slug")
    )


def licence_notice(sources):
    """One paragraph saying under which licence the export is published and whom it
    credits: each cited source with its authors and licence."""
    credits = []
    for source in sources:
        who = f" ({source.authors})" if source.authors else ""
        terms = source.licence or "licence not stated"
        credits.append(f"{source.title}{who}: {terms}")
    text = f"cityDiplomacy data, {ATLAS_LICENCE} ({ATLAS_LICENCE_URL})."
    return text + (" Sources: " + "; ".join(credits) + "." if credits else "")


# GEXF and GraphML -----------------------------------------------------------------------

# Characters XML 1.0 forbids even when escaped; a stray one would make the file unreadable.
_XML_INVALID = "".join(map(chr, [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)]))
_XML_INVALID += "\ufffe\uffff"
# One str.translate per value that needs it: the invalid characters dropped and the rest
# escaped as xml.sax.saxutils.escape (text) and quoteattr (attributes) escape them.
_TEXT_ESCAPES = str.maketrans(
    {**dict.fromkeys(_XML_INVALID), "&": "&amp;", "<": "&lt;", ">": "&gt;"}
)
_ATTR_ESCAPES = str.maketrans(
    {**dict.fromkeys(_XML_INVALID), "&": "&amp;", "<": "&lt;", ">": "&gt;", "\n": "&#10;",
     "\r": "&#13;", "\t": "&#9;"}
)  # fmt: skip
# Most values (slugs, names, dates) have nothing to escape: one search tells.
_TEXT_SPECIAL = re.compile(f"[{re.escape(_XML_INVALID)}&<>]")
_ATTR_SPECIAL = re.compile(f'[{re.escape(_XML_INVALID)}&<>\n\r\t"]')


def _xml_text(value):
    value = str(value)
    return value if _TEXT_SPECIAL.search(value) is None else value.translate(_TEXT_ESCAPES)


def _xml_attr(value):
    """quoteattr() of the value without the characters XML forbids: in double quotes, or in
    single quotes when it holds a double quote and no single one."""
    value = str(value)
    if _ATTR_SPECIAL.search(value) is None:
        return f'"{value}"'
    value = value.translate(_ATTR_ESCAPES)
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    return '"' + value.replace('"', "&quot;") + '"'


NODE_ATTRIBUTES = [
    ("country", "string"),
    ("wikidata_id", "string"),
    ("latitude", "double"),
    ("longitude", "double"),
]
EDGE_ATTRIBUTES = [
    ("kind", "string"),
    ("status", "string"),
    ("start_edtf", "string"),
    ("end_edtf", "string"),
    ("date_basis", "string"),
    ("sources", "string"),
]
# What a network export reads of each tie, in this order.
EDGE_COLUMNS = [
    *("id", "city_a__slug", "city_b__slug", "kind", "status", "start", "end"),
    *("start_lower", "end_upper", "date_basis", "source_slugs"),
]
# Kind labels as edge labels, escaped once.
_KIND_LABELS = {kind: _xml_attr(kind.label) for kind in TieKind}

# Nodes and edges are written from templates. One search over a row's free-text values tells
# whether any needs escaping (few do): if none does, they go in as they are; otherwise each
# is escaped on its own. Kind, status and date basis are choices the database constrains.


def _quoted(value):
    return f'"{value}"'


def _as_is(value):
    return value


def gexf_chunks(ties):
    return _encoded(_gexf_text(ties))


def _gexf_text(ties):
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gexf xmlns="http://gexf.net/1.3" version="1.3">\n'
        "  <meta><creator>cityDiplomacy</creator>"
        "<description>Ties between cities; edge start/end span the tie's dates. "
        + _xml_text(licence_notice(sources_of(ties)))
        + "</description></meta>\n"
        '  <graph mode="dynamic" defaultedgetype="undirected" timeformat="date" '
        'timerepresentation="interval">\n'
        '    <attributes class="node">\n'
    )
    for i, (name, kind) in enumerate(NODE_ATTRIBUTES):
        yield f'      <attribute id="n{i}" title="{name}" type="{kind}"/>\n'
    yield '    </attributes>\n    <attributes class="edge">\n'
    for i, (name, kind) in enumerate(EDGE_ATTRIBUTES):
        yield f'      <attribute id="e{i}" title="{name}" type="{kind}"/>\n'
    yield "    </attributes>\n    <nodes>\n"
    # Attribute values are numbered as the <attributes> above declare them; empty ones are left out.
    for slug, name, country, wikidata_id, lat, lng in cities_of(ties):
        plain = _ATTR_SPECIAL.search(slug + name + country + wikidata_id) is None
        quote = _quoted if plain else _xml_attr
        values = f'<attvalue for="n0" value={quote(country)}/>' if country else ""
        if wikidata_id:
            values += f'<attvalue for="n1" value={quote(wikidata_id)}/>'
        if lat is not None:
            values += f'<attvalue for="n2" value="{lat!r}"/><attvalue for="n3" value="{lng!r}"/>'
        yield (
            f"      <node id={quote(slug)} label={quote(name)}>"
            f"<attvalues>{values}</attvalues></node>\n"
        )
    yield "    </nodes>\n    <edges>\n"
    slug_list = _slug_lists(ties)
    for row in tie_values(ties, *EDGE_COLUMNS).iterator(chunk_size=CHUNK):
        pk, a_slug, b_slug, kind, status, start, end, start_lower, end_upper, basis, sources = row
        sources = slug_list(sources)
        plain = _ATTR_SPECIAL.search(a_slug + b_slug + start + end + sources) is None
        quote = _quoted if plain else _xml_attr
        values = f'<attvalue for="e0" value="{kind}"/><attvalue for="e1" value="{status}"/>'
        if start:
            values += f'<attvalue for="e2" value={quote(start)}/>'
        if end:
            values += f'<attvalue for="e3" value={quote(end)}/>'
        values += f'<attvalue for="e4" value="{basis}"/>'
        if sources:
            values += f'<attvalue for="e5" value={quote(sources)}/>'
        # The widest span the EDTF dates allow: from the earliest start to the latest end. An
        # unknown start or end is left open, which Gephi reads as 'always' on that side.
        spell = f' start="{start_lower.isoformat()}"' if start_lower else ""
        if end_upper:
            spell += f' end="{end_upper.isoformat()}"'
        yield (
            f'      <edge id="{pk}" source={quote(a_slug)} target={quote(b_slug)} '
            f"label={_KIND_LABELS[kind]}{spell}><attvalues>{values}</attvalues></edge>\n"
        )
    yield "    </edges>\n  </graph>\n</gexf>\n"


GRAPHML_NODE_KEYS = [("name", "string"), *NODE_ATTRIBUTES]
GRAPHML_EDGE_KEYS = [
    *EDGE_ATTRIBUTES,
    ("start_earliest", "string"),
    ("end_latest", "string"),
]


def graphml_chunks(ties):
    return _encoded(_graphml_text(ties))


def _graphml_text(ties):
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
        'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n'
    )
    for name, kind in GRAPHML_NODE_KEYS:
        yield f'  <key id="{name}" for="node" attr.name="{name}" attr.type="{kind}"/>\n'
    for name, kind in GRAPHML_EDGE_KEYS:
        yield f'  <key id="{name}" for="edge" attr.name="{name}" attr.type="{kind}"/>\n'
    yield '  <graph id="ties" edgedefault="undirected">\n'
    yield f"    <desc>{_xml_text(licence_notice(sources_of(ties)))}</desc>\n"
    # One <data> per declared key that has a value.
    for slug, name, country, wikidata_id, lat, lng in cities_of(ties):
        plain = _ATTR_SPECIAL.search(slug + name + country + wikidata_id) is None
        quote, text = (_quoted, _as_is) if plain else (_xml_attr, _xml_text)
        data = f'<data key="name">{text(name)}</data>' if name else ""
        if country:
            data += f'<data key="country">{text(country)}</data>'
        if wikidata_id:
            data += f'<data key="wikidata_id">{text(wikidata_id)}</data>'
        if lat is not None:
            data += f'<data key="latitude">{lat!r}</data><data key="longitude">{lng!r}</data>'
        yield f"    <node id={quote(slug)}>{data}</node>\n"
    slug_list = _slug_lists(ties)
    for row in tie_values(ties, *EDGE_COLUMNS).iterator(chunk_size=CHUNK):
        pk, a_slug, b_slug, kind, status, start, end, start_lower, end_upper, basis, sources = row
        sources = slug_list(sources)
        plain = _ATTR_SPECIAL.search(a_slug + b_slug + start + end + sources) is None
        quote, text = (_quoted, _as_is) if plain else (_xml_attr, _xml_text)
        data = f'<data key="kind">{kind}</data><data key="status">{status}</data>'
        if start:
            data += f'<data key="start_edtf">{text(start)}</data>'
        if end:
            data += f'<data key="end_edtf">{text(end)}</data>'
        data += f'<data key="date_basis">{basis}</data>'
        if sources:
            data += f'<data key="sources">{text(sources)}</data>'
        if start_lower:
            data += f'<data key="start_earliest">{start_lower.isoformat()}</data>'
        if end_upper:
            data += f'<data key="end_latest">{end_upper.isoformat()}</data>'
        yield f'    <edge id="{pk}" source={quote(a_slug)} target={quote(b_slug)}>{data}</edge>\n'
    yield "  </graph>\n</graphml>\n"


# Sources: CSL-JSON and BibTeX -----------------------------------------------------------

CSL_TYPES = {
    SourceKind.ARTICLE: "article",
    SourceKind.CITY_DOCUMENT: "document",
    SourceKind.DATASET: "dataset",
    SourceKind.WEB_PAGE: "webpage",
    SourceKind.BOOK: "book",
    SourceKind.REPORT: "report",
    SourceKind.OTHER: "document",
}
BIBTEX_TYPES = {
    SourceKind.ARTICLE: "article",
    SourceKind.BOOK: "book",
    SourceKind.REPORT: "techreport",
}
_SIMPLE_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?(~)?$")


def authors(source):
    """'Family, Given; Other, Name' as CSL names; a name without a comma (an institution)
    stays literal rather than being split wrongly."""
    names = []
    for part in source.authors.split(";"):
        part = part.strip()
        if not part:
            continue
        if "," in part:
            family, given = (p.strip() for p in part.split(",", 1))
            names.append({"family": family, "given": given})
        else:
            names.append({"literal": part})
    return names


def csl_date(edtf):
    """CSL date-parts for a plain year, month or day (with `circa` for '~'); anything more
    uncertain goes through as `raw`, which citation processors show as written."""
    match = _SIMPLE_DATE.match(edtf or "")
    if not match:
        return {"raw": edtf} if edtf else None
    parts = [int(p) for p in match.groups()[:3] if p]
    date = {"date-parts": [parts]}
    if match.group(4):
        date["circa"] = True
    return date


def csl_item(source):
    item = {"id": source.slug, "type": CSL_TYPES.get(source.kind, "document")}
    item["title"] = source.title
    if source.authors:
        item["author"] = authors(source)
    if source.container_title:
        item["container-title"] = source.container_title
    if source.publisher:
        item["publisher"] = source.publisher
    issued = csl_date(source.issued)
    if issued:
        item["issued"] = issued
    if source.url:
        item["URL"] = source.url
    if source.accessed:
        a = source.accessed
        item["accessed"] = {"date-parts": [[a.year, a.month, a.day]]}
    if source.note:
        item["note"] = source.note
    if source.licence:
        item["license"] = source.licence
    return item


def csl_chunks(sources):
    return _encoded(_csl_text(sources))


def _csl_text(sources):
    yield "[\n"
    for i, source in enumerate(sources.iterator(chunk_size=CHUNK)):
        text = json.dumps(csl_item(source), ensure_ascii=False, indent=2)
        yield ("" if i == 0 else ",\n") + text
    yield "\n]\n"


_BIBTEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "%": r"\%",
    "&": r"\&",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
}
_BIBTEX_SPECIAL = re.compile("|".join(map(re.escape, _BIBTEX_ESCAPES)))


def bibtex_escape(text):
    """Text as a BibTeX field value: every character TeX treats specially written as a
    command, in one pass so that no escape is escaped again. Non-ASCII stays as it is
    (biber and BibTeX with UTF-8 read it)."""
    return _BIBTEX_SPECIAL.sub(lambda m: _BIBTEX_ESCAPES[m.group()], str(text))


def bibtex_url(url):
    """A URL as a BibTeX `url` field: braces and backslashes percent-encoded (they cannot
    close the field), % and # escaped as hyperref expects."""
    url = url.replace("\\", "%5C").replace("{", "%7B").replace("}", "%7D")
    return url.replace("%", r"\%").replace("#", r"\#")


def bibtex_entry(source):
    kind = BIBTEX_TYPES.get(source.kind, "misc")
    if kind == "article" and not source.container_title:
        kind = "misc"  # @article requires a journal
    fields = [("title", "{" + bibtex_escape(source.title) + "}")]
    names = authors(source)
    if names:
        written = [
            f"{bibtex_escape(n['family'])}, {bibtex_escape(n['given'])}"
            if "family" in n
            else "{" + bibtex_escape(n["literal"]) + "}"
            for n in names
        ]
        fields.append(("author", " and ".join(written)))
    if source.container_title:
        fields.append(("journal" if kind == "article" else "howpublished",
                       bibtex_escape(source.container_title)))  # fmt: skip
    if source.publisher:
        fields.append(("publisher" if kind != "techreport" else "institution",
                       bibtex_escape(source.publisher)))  # fmt: skip
    match = _SIMPLE_DATE.match(source.issued or "")
    if match:
        fields.append(("year", match.group(1)))
        if match.group(2):
            fields.append(("month", str(int(match.group(2)))))
    if source.issued:
        # biblatex reads EDTF in `date` directly, uncertainty included.
        fields.append(("date", bibtex_escape(source.issued)))
    if source.url:
        fields.append(("url", bibtex_url(source.url)))
    if source.accessed:
        fields.append(("urldate", source.accessed.isoformat()))
    if source.note:
        fields.append(("note", bibtex_escape(source.note)))
    if source.licence:
        fields.append(("license", bibtex_escape(source.licence)))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{source.slug},\n{body}\n}}\n"


def bibtex_chunks(sources):
    return _encoded(_bibtex_text(sources))


def _bibtex_text(sources):
    for source in sources.iterator(chunk_size=CHUNK):
        yield bibtex_entry(source) + "\n"
    # Text outside entries is a comment to BibTeX: the licence of the list itself.
    yield f"cityDiplomacy sources, {ATLAS_LICENCE} ({ATLAS_LICENCE_URL}).\n"


# Tables of records: cities and memberships (CSV and JSON Lines), ties as JSON Lines -------


class Table:
    """A flat export of records: `columns` are (column name, value path, kind), kind being
    "text", "number" or "list" (a SlugList of slugs: `lists` gives its rows and path)."""

    def __init__(self, columns, lists=None, owner=""):
        self.columns, self.lists, self.owner = columns, lists or {}, owner

    def rows(self, queryset):
        """Each record as a tuple of typed values, in `columns`' order, CHUNK at a time."""
        annotations = {
            path: _slugs(through, slug_path, self.owner)
            for path, (through, slug_path) in self.lists.items()
        }
        paths = [path for _name, path, _kind in self.columns]
        slug_list = _slug_lists(queryset)
        kinds = [kind for _name, _path, kind in self.columns]
        for values in (
            queryset.annotate(**annotations).values_list(*paths).iterator(chunk_size=CHUNK)
        ):
            yield tuple(
                [s for s in slug_list(v).split(LIST_SEPARATOR) if s] if kind == "list" else v
                for v, kind in zip(values, kinds, strict=True)
            )

    def csv(self, queryset):
        writerow = csv.writer(_Line()).writerow
        kinds = [kind for _name, _path, kind in self.columns]

        def cell(value, kind):
            if value is None:
                return ""
            if kind == "list":
                return LIST_SEPARATOR.join(value)
            if kind == "text":
                return as_text_cell(str(value))
            return str(value)

        def lines():
            yield writerow([name for name, _path, _kind in self.columns])
            for row in self.rows(queryset):
                yield writerow([cell(v, k) for v, k in zip(row, kinds, strict=True)])

        return _encoded(lines())

    def jsonl(self, queryset):
        names = [name for name, _path, _kind in self.columns]

        def lines():
            for row in self.rows(queryset):
                yield json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False) + "\n"

        return _encoded(lines())


CITY_TABLE = Table(
    [
        ("id", "id", "number"),
        ("slug", "slug", "text"),
        ("name", "name", "text"),
        ("country", "country", "text"),
        ("subdivision", "subdivision", "text"),
        ("latitude", "latitude", "number"),
        ("longitude", "longitude", "number"),
        ("population", "population", "number"),
        ("population_year", "population_year", "number"),
        ("wikidata_id", "wikidata_id", "text"),
        ("geonames_id", "geonames_id", "number"),
        ("website", "website", "text"),
        ("themes", "theme_slugs", "list"),
        ("sources", "source_slugs", "list"),
        ("verification", "verification", "text"),
        ("summary", "summary", "text"),
    ],
    lists={
        "theme_slugs": (City.themes.through, "theme__slug"),
        "source_slugs": (CityCitation, "source__slug"),
    },
    owner="city",
)

MEMBERSHIP_TABLE = Table(
    [
        ("id", "id", "number"),
        ("organization", "organization__slug", "text"),
        ("organization_name", "organization__name", "text"),
        ("city", "city__slug", "text"),
        ("city_name", "city__name", "text"),
        ("city_country", "city__country", "text"),
        ("member_organization", "member_organization__slug", "text"),
        ("role", "role", "text"),
        ("since", "since", "text"),
        ("until", "until", "text"),
        ("sources", "source_slugs", "list"),
        ("verification", "verification", "text"),
        ("summary", "summary", "text"),
    ],
    lists={"source_slugs": (MembershipCitation, "source__slug")},
    owner="membership",
)

TIE_TABLE = Table(
    [
        ("tie_id", "id", "number"),
        *(
            (f"{end}{suffix}", f"{end}__{column}", kind)
            for end in ("city_a", "city_b")
            for suffix, column, kind in (
                ("", "slug", "text"),
                ("_name", "name", "text"),
                ("_country", "country", "text"),
                ("_wikidata", "wikidata_id", "text"),
                ("_latitude", "latitude", "number"),
                ("_longitude", "longitude", "number"),
            )
        ),
        ("kind", "kind", "text"),
        ("status", "status", "text"),
        ("start", "start", "text"),
        ("end", "end", "text"),
        ("date_basis", "date_basis", "text"),
        ("topics", "topic_slugs", "list"),
        ("sources", "source_slugs", "list"),
        ("verification", "verification", "text"),
        ("summary", "summary", "text"),
    ],
    lists=SLUG_LISTS,
    owner="tie",
)


def _ordered(queryset):
    """In the order the filters chose (`ordering`, a search's ranking), else by id; the id
    last either way, so that equal rows come in a stable order."""
    order = list(queryset.query.order_by)
    return queryset.order_by(*order, "pk") if order else queryset.order_by("pk")


def city_csv(cities):
    return CITY_TABLE.csv(_ordered(cities))


def city_jsonl(cities):
    return CITY_TABLE.jsonl(_ordered(cities))


def membership_csv(memberships):
    return MEMBERSHIP_TABLE.csv(_ordered(memberships))


def membership_jsonl(memberships):
    return MEMBERSHIP_TABLE.jsonl(_ordered(memberships))


def tie_jsonl(ties):
    """Ties as JSON Lines, one object per tie with the CSV's columns, typed."""
    return TIE_TABLE.jsonl(ties)
