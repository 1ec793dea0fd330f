"""Research exports of ties and sources, written as streams.

Each writer takes a (filtered) queryset and yields text piece by piece, reading rows with
`iterator(chunk_size=...)`, so a whole-atlas export holds one chunk in memory at a time: a
network export first streams the cities the ties touch, then the ties. Formats:

- CSV: one tie per row with slugs, Wikidata ids, EDTF dates, kind, status and source keys;
  `manage.py import_ties` reads it back (see CSV_IMPORT_MAP).
- GeoJSON (RFC 7946): cities as Points, ties as LineStrings, `[longitude, latitude]`.
- GEXF 1.3 in dynamic mode: each tie has `start`/`end` so Gephi's timeline works.
- GraphML: the same graph for igraph, Cytoscape, yEd and networkx.
- CSL-JSON and BibTeX for sources (Zotero, pandoc, LaTeX).
"""

import csv
import datetime
import itertools
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field, fields
from xml.sax.saxutils import escape, quoteattr

from django.db.models import Q

from cities.models import City, Source, SourceKind

from .models import Tie, TieCitation, TieKind

CHUNK = 2000
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

# Characters XML 1.0 forbids even when escaped; a stray one would make the file unreadable.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(slots=True)
class CityRow:
    slug: str
    name: str
    country: str
    wikidata_id: str
    latitude: float | None
    longitude: float | None

    @property
    def has_coordinates(self):
        return self.latitude is not None and self.longitude is not None


@dataclass(slots=True)
class TieRow:
    pk: int
    kind: str
    status: str
    start: str
    end: str
    start_lower: datetime.date | None
    end_upper: datetime.date | None
    date_basis: str
    summary: str
    verification: str
    city_a: CityRow
    city_b: CityRow
    topics: list = field(default_factory=list)
    sources: list = field(default_factory=list)

    @property
    def kind_label(self):
        return TieKind(self.kind).label


# In the order of TieRow's and CityRow's fields.
TIE_COLUMNS = [
    "id", "kind", "status", "start", "end", "start_lower", "end_upper", "date_basis", "summary",
    "verification",
]  # fmt: skip
CITY_COLUMNS = [f.name for f in fields(CityRow)]


def _batches(rows, size):
    while batch := list(itertools.islice(rows, size)):
        yield batch


def tie_rows(ties):
    """Ties with both cities, topics and cited source keys, read CHUNK rows at a time.

    Plain tuples rather than model instances: an export touches every tie, and building
    three model objects per row (plus prefetch querysets) costs several times the query.
    Each chunk adds two queries, for its topics and its sources.
    """
    columns = [
        *TIE_COLUMNS,
        *(f"city_a__{c}" for c in CITY_COLUMNS),
        *(f"city_b__{c}" for c in CITY_COLUMNS),
    ]
    n, m = len(TIE_COLUMNS), len(CITY_COLUMNS)
    for batch in _batches(ties.values_list(*columns).iterator(chunk_size=CHUNK), CHUNK):
        ids = [row[0] for row in batch]
        topics, sources = defaultdict(list), defaultdict(list)
        links = Tie.topics.through.objects.filter(tie_id__in=ids).order_by("theme__slug")
        for tie_id, slug in links.values_list("tie_id", "theme__slug"):
            topics[tie_id].append(slug)
        cited = TieCitation.objects.filter(tie_id__in=ids).order_by("source__slug")
        for tie_id, slug in cited.values_list("tie_id", "source__slug").distinct():
            sources[tie_id].append(slug)
        for row in batch:
            yield TieRow(
                *row[:n],
                city_a=CityRow(*row[n : n + m]),
                city_b=CityRow(*row[n + m :]),
                topics=topics[row[0]],
                sources=sources[row[0]],
            )


def cities_of(ties):
    """The cities at either end of `ties`, each once, read chunk by chunk."""
    ends = ties.order_by()
    cities = City.objects.filter(
        Q(pk__in=ends.values("city_a_id")) | Q(pk__in=ends.values("city_b_id"))
    ).order_by("pk")
    for row in cities.values_list(*CITY_COLUMNS).iterator(chunk_size=CHUNK):
        yield CityRow(*row)


# CSV -------------------------------------------------------------------------------------


class _Line:
    """A file-like object whose write() returns the line, for csv.writer in a generator."""

    def write(self, value):
        return value


def _coordinate(value):
    return "" if value is None else f"{value:.6f}"


def csv_rows(ties):
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_COLUMNS)
    for tie in tie_rows(ties):
        row = [tie.pk]
        for city in (tie.city_a, tie.city_b):
            row += [
                city.slug,
                city.name,
                city.country,
                city.wikidata_id,
                _coordinate(city.latitude),
                _coordinate(city.longitude),
            ]
        row += [
            tie.kind,
            tie.status,
            tie.start,
            tie.end,
            tie.date_basis,
            LIST_SEPARATOR.join(tie.topics),
            LIST_SEPARATOR.join(tie.sources),
            tie.verification,
            tie.summary,
        ]
        yield writer.writerow(row)


# GeoJSON ---------------------------------------------------------------------------------


def _position(city):
    # RFC 7946 §3.1.1: longitude first; six decimals is about 10 cm, more is noise.
    return [round(city.longitude, 6), round(city.latitude, 6)]


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


def _city_properties(city):
    return {
        "feature": "city",
        "slug": city.slug,
        "name": city.name,
        "country": city.country,
        "wikidata_id": city.wikidata_id or None,
    }


def geojson_chunks(ties):
    # Foreign members of the collection (RFC 7946 §6.1): the licence and whom to credit.
    head = {"type": "FeatureCollection", "licence": ATLAS_LICENCE, "license_url": ATLAS_LICENCE_URL}
    head["attribution"] = licence_notice(sources_of(ties))
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [\n'
    first = True
    for city in cities_of(ties):
        feature = {
            "type": "Feature",
            "id": f"city:{city.slug}",
            "geometry": (
                {"type": "Point", "coordinates": _position(city)} if city.has_coordinates else None
            ),
            "properties": _city_properties(city),
        }
        yield ("" if first else ",\n") + json.dumps(feature, ensure_ascii=False)
        first = False
    for tie in tie_rows(ties):
        a, b = tie.city_a, tie.city_b
        geometry = None
        if a.has_coordinates and b.has_coordinates:
            geometry = line_between(_position(a), _position(b))
        feature = {
            "type": "Feature",
            "id": f"tie:{tie.pk}",
            "geometry": geometry,
            "properties": {
                "feature": "tie",
                "tie_id": tie.pk,
                "city_a": a.slug,
                "city_b": b.slug,
                "kind": tie.kind,
                "status": tie.status,
                "start": tie.start or None,
                "end": tie.end or None,
                "sources": tie.sources,
            },
        }
        yield ("" if first else ",\n") + json.dumps(feature, ensure_ascii=False)
        first = False
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


def _xml_text(value):
    return escape(_XML_INVALID.sub("", str(value)))


def _xml_attr(value):
    return quoteattr(_XML_INVALID.sub("", str(value)))


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


def _node_values(city):
    return {
        "country": city.country,
        "wikidata_id": city.wikidata_id,
        "latitude": city.latitude,
        "longitude": city.longitude,
    }


def _edge_values(tie):
    return {
        "kind": tie.kind,
        "status": tie.status,
        "start_edtf": tie.start,
        "end_edtf": tie.end,
        "date_basis": tie.date_basis,
        "sources": LIST_SEPARATOR.join(tie.sources),
    }


def _spell(tie):
    """The widest span the EDTF dates allow: from the earliest start to the latest end.
    An unknown start or end is left open, which Gephi reads as 'always' on that side."""
    spell = ""
    if tie.start_lower:
        spell += f" start={_xml_attr(tie.start_lower.isoformat())}"
    if tie.end_upper:
        spell += f" end={_xml_attr(tie.end_upper.isoformat())}"
    return spell


def _gexf_attvalues(prefix, attributes, values):
    """The non-empty values as <attvalue>s, numbered as the <attributes> header declares."""
    return "".join(
        f'<attvalue for="{prefix}{i}" value={_xml_attr(values[name])}/>'
        for i, (name, _kind) in enumerate(attributes)
        if values[name] not in (None, "")
    )


def gexf_chunks(ties):
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
    for city in cities_of(ties):
        values = _node_values(city)
        attvalues = _gexf_attvalues("n", NODE_ATTRIBUTES, values)
        yield (
            f"      <node id={_xml_attr(city.slug)} label={_xml_attr(city.name)}>"
            f"<attvalues>{attvalues}</attvalues></node>\n"
        )
    yield "    </nodes>\n    <edges>\n"
    for tie in tie_rows(ties):
        values = _edge_values(tie)
        attvalues = _gexf_attvalues("e", EDGE_ATTRIBUTES, values)
        yield (
            f'      <edge id="{tie.pk}" source={_xml_attr(tie.city_a.slug)} '
            f"target={_xml_attr(tie.city_b.slug)} label={_xml_attr(tie.kind_label)}"
            f"{_spell(tie)}><attvalues>{attvalues}</attvalues></edge>\n"
        )
    yield "    </edges>\n  </graph>\n</gexf>\n"


GRAPHML_NODE_KEYS = [("name", "string"), *NODE_ATTRIBUTES]
GRAPHML_EDGE_KEYS = [
    *EDGE_ATTRIBUTES,
    ("start_earliest", "string"),
    ("end_latest", "string"),
]


def _graphml_data(keys, values):
    """The non-empty values as <data> elements, one per declared key."""
    return "".join(
        f'<data key="{name}">{_xml_text(values[name])}</data>'
        for name, _kind in keys
        if values[name] not in (None, "")
    )


def graphml_chunks(ties):
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
    for city in cities_of(ties):
        values = {"name": city.name, **_node_values(city)}
        data = _graphml_data(GRAPHML_NODE_KEYS, values)
        yield f"    <node id={_xml_attr(city.slug)}>{data}</node>\n"
    for tie in tie_rows(ties):
        values = {
            **_edge_values(tie),
            "start_earliest": tie.start_lower.isoformat() if tie.start_lower else "",
            "end_latest": tie.end_upper.isoformat() if tie.end_upper else "",
        }
        data = _graphml_data(GRAPHML_EDGE_KEYS, values)
        yield (
            f'    <edge id="{tie.pk}" source={_xml_attr(tie.city_a.slug)} '
            f"target={_xml_attr(tie.city_b.slug)}>{data}</edge>\n"
        )
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
    for source in sources.iterator(chunk_size=CHUNK):
        yield bibtex_entry(source) + "\n"
    # Text outside entries is a comment to BibTeX: the licence of the list itself.
    yield f"cityDiplomacy sources, {ATLAS_LICENCE} ({ATLAS_LICENCE_URL}).\n"
