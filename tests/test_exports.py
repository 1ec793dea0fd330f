"""Research exports: each format reads back in the tools partners use, with the same ties,
cities and dates, honours the tie filters, and is streamed chunk by chunk."""

import csv
import io
import json
import re
from xml.etree import ElementTree

import geojson
import networkx as nx
import pytest
from django.core.management import call_command
from django.db.models import F, QuerySet

from cities.models import City, Source, Theme
from partnerships import exports
from partnerships.models import Tie, TieCitation, TieKind
from tests.conftest import make_city, make_source, make_tie

pytestmark = pytest.mark.usefixtures("fresh_throttle_counts")


def download(api, path, **params):
    response = api.get(path, params)
    assert response.status_code == 200, response.content
    assert response.streaming
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def atlas(db):
    """Ties with every kind of date the atlas holds, across the antimeridian, with and
    without coordinates and Wikidata ids, and a pair tied twice (two kinds)."""
    source = make_source(slug="city-report")
    yokohama = make_city(
        name="Yokohama", country="JP", latitude=35.4437, longitude=139.638, wikidata_id="Q38283"
    )
    vancouver = make_city(
        name="Vancouver", country="CA", latitude=49.2827, longitude=-123.1207, wikidata_id="Q24639"
    )
    odesa = make_city(name="Odesa", country="UA", latitude=46.4825, longitude=30.7233)
    taipei = make_city(name="Taipei", country="TW")
    lyon = make_city(name="Lyon", country="FR", latitude=45.764, longitude=4.8357)
    return [
        make_tie(yokohama, vancouver, kind="sister", start="1965", source=source),
        make_tie(yokohama, odesa, kind="mou", start="2023-05", status="active"),
        make_tie(yokohama, odesa, kind="friendship", start="1957~", end="196X", status="ended"),
        make_tie(taipei, yokohama, kind="partner", start="", source=source),
        make_tie(lyon, yokohama, kind="sister", start="1959/1960", end="2001-03-04"),
    ]


@pytest.mark.django_db
def test_gexf_reads_back_in_networkx_with_every_tie_and_its_dates(api, atlas):
    graph = nx.read_gexf(io.BytesIO(download(api, "/api/v1/exports/ties.gexf").encode()))

    assert graph.graph["mode"] == "dynamic"
    assert graph.number_of_nodes() == 5
    assert graph.number_of_edges() == len(atlas)
    edges = {int(data["id"]): data for _a, _b, data in graph.edges(data=True)}
    for tie in atlas:
        edge = edges[tie.pk]
        assert edge["kind"] == tie.kind
        assert edge.get("start_edtf", "") == tie.start
        assert edge.get("end_edtf", "") == tie.end
        # The timeline's spell: earliest possible start to latest possible end, open if unknown.
        assert edge.get("start") == (tie.start_lower.isoformat() if tie.start_lower else None)
        assert edge.get("end") == (tie.end_upper.isoformat() if tie.end_upper else None)
    assert edges[atlas[2].pk]["start"] == "1957-01-01"
    assert edges[atlas[2].pk]["end"] == "1969-12-31"
    assert graph.nodes["yokohama"]["label"] == "Yokohama"
    assert graph.nodes["yokohama"]["wikidata_id"] == "Q38283"


@pytest.mark.django_db
def test_graphml_reads_back_in_networkx_with_every_tie_and_its_dates(api, atlas):
    graph = nx.read_graphml(io.BytesIO(download(api, "/api/v1/exports/ties.graphml").encode()))

    assert graph.number_of_nodes() == 5
    assert graph.number_of_edges() == len(atlas)
    assert isinstance(graph, nx.MultiGraph) and not graph.is_directed()
    edges = {int(key): data for _a, _b, key, data in graph.edges(keys=True, data=True)}
    for tie in atlas:
        assert edges[tie.pk].get("start_edtf", "") == tie.start
        assert edges[tie.pk].get("end_edtf", "") == tie.end
    assert edges[atlas[0].pk]["sources"] == "city-report"
    assert edges[atlas[4].pk]["end_latest"] == "2001-03-04"
    assert graph.nodes["odesa"]["latitude"] == pytest.approx(46.4825)


@pytest.mark.django_db
def test_geojson_is_valid_rfc_7946_with_longitude_first(api, atlas):
    text = download(api, "/api/v1/exports/ties.geojson")
    collection = geojson.loads(text)

    assert collection.is_valid, collection.errors()
    features = collection["features"]
    cities = {f["properties"]["slug"]: f for f in features if f["properties"]["feature"] == "city"}
    ties = {f["properties"]["tie_id"]: f for f in features if f["properties"]["feature"] == "tie"}
    assert len(cities) == 5 and len(ties) == len(atlas)
    assert cities["yokohama"]["geometry"] == {"type": "Point", "coordinates": [139.638, 35.4437]}
    assert cities["taipei"]["geometry"] is None  # no coordinates recorded: none invented
    assert ties[atlas[3].pk]["geometry"] is None
    assert ties[atlas[1].pk]["geometry"]["type"] == "LineString"
    # Yokohama–Vancouver crosses the antimeridian: cut in two, each part within ±180.
    across = ties[atlas[0].pk]["geometry"]
    assert across["type"] == "MultiLineString"
    assert across["coordinates"][0][0] == [139.638, 35.4437]
    assert across["coordinates"][0][1][0] == 180
    assert across["coordinates"][1][0][0] == -180
    assert across["coordinates"][1][1] == [-123.1207, 49.2827]
    for feature in features:
        for lon, lat in positions(feature["geometry"]):
            assert -180 <= lon <= 180 and -90 <= lat <= 90


def positions(geometry):
    if geometry is None:
        return []
    coordinates = geometry["coordinates"]
    if geometry["type"] == "Point":
        return [coordinates]
    if geometry["type"] == "LineString":
        return coordinates
    return [p for line in coordinates for p in line]


@pytest.mark.django_db
def test_csv_reimports_with_import_ties_into_an_empty_atlas(api, atlas, tmp_path):
    text = download(api, "/api/v1/exports/ties.csv")
    before = tie_facts()
    path = tmp_path / "ties.csv"
    path.write_text(text, encoding="utf-8")
    Tie.objects.all().delete()
    City.objects.all().delete()
    Source.objects.all().delete()

    call_command(
        "import_ties", str(path), "--map", exports.CSV_IMPORT_MAP, "--source-slug", "atlas-export",
        "--source-title", "cityDiplomacy ties export", stdout=io.StringIO(),
    )  # fmt: skip

    assert tie_facts() == before


def tie_facts():
    """Each tie as a partner would compare it: both cities (by name, country, Wikidata id and
    coordinates, either way round), kind, status and EDTF dates."""

    def end(city):
        return (city.name, city.country, city.wikidata_id, city.latitude, city.longitude)

    return {
        (frozenset({end(t.city_a), end(t.city_b)}), t.kind, t.status, t.start, t.end)
        for t in Tie.objects.select_related("city_a", "city_b")
    }


@pytest.mark.django_db
def test_csv_has_slugs_wikidata_ids_edtf_dates_kind_status_and_source_keys(api, atlas):
    rows = list(csv.DictReader(io.StringIO(download(api, "/api/v1/exports/ties.csv"))))

    first = next(r for r in rows if int(r["tie_id"]) == atlas[0].pk)
    assert (first["city_a"], first["city_b"]) == ("yokohama", "vancouver")
    assert (first["city_a_wikidata"], first["city_b_wikidata"]) == ("Q38283", "Q24639")
    assert (first["kind"], first["start"], first["sources"]) == ("sister", "1965", "city-report")
    friendship = next(r for r in rows if int(r["tie_id"]) == atlas[2].pk)
    assert (friendship["start"], friendship["end"], friendship["status"]) == (
        "1957~",
        "196X",
        "ended",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["csv", "geojson", "gexf", "graphml"])
def test_exports_honour_the_tie_filters(api, atlas, suffix):
    text = download(api, f"/api/v1/exports/ties.{suffix}", kind="sister", city="lyon")

    lyon_tie, other_sister = atlas[4], atlas[0]
    assert f"{lyon_tie.pk}" in text
    assert "vancouver" not in text and f'"{other_sister.pk}"' not in text


@pytest.mark.django_db
def test_export_with_a_bad_filter_answers_400_in_json(api, atlas):
    response = api.get("/api/v1/exports/ties.gexf", {"kind": "cousin"})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "kind" in response.json()["errors"]


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [3, 30])
@pytest.mark.parametrize(
    "suffix, queries",
    [
        # ties with both cities, their topic keys and their source keys (two subqueries)
        ("csv", 1),
        # the sources the ties cite, for the licence notice; the cities at either end; the
        # ties with both cities and their source keys (a subquery)
        ("gexf", 3),
        ("graphml", 3),
        ("geojson", 3),
    ],
)
def test_export_queries_do_not_grow_with_rows(
    api, django_assert_num_queries, rows, suffix, queries
):
    source = make_source()
    for _ in range(rows):
        make_tie(source=source, start="1990")
    with django_assert_num_queries(queries):
        download(api, f"/api/v1/exports/ties.{suffix}")


@pytest.mark.django_db
def test_exports_read_rows_chunk_by_chunk_and_send_them_in_pieces(
    api, monkeypatch, django_assert_num_queries
):
    """Memory stays flat: rows come CHUNK at a time from one query and go out in pieces of
    about BUFFER characters. With chunks of two rows and pieces of one character, five ties
    take one query and go out a piece per line."""
    monkeypatch.setattr(exports, "CHUNK", 2)
    monkeypatch.setattr(exports, "BUFFER", 1)
    chunk_sizes = []
    iterator = QuerySet.iterator

    def spy(queryset, chunk_size=None):
        chunk_sizes.append(chunk_size)
        return iterator(queryset, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    for _ in range(5):
        make_tie(source=make_source())
    with django_assert_num_queries(1):
        pieces = list(api.get("/api/v1/exports/ties.csv").streaming_content)

    assert chunk_sizes == [2]
    assert len(pieces) == 6 and all(piece.endswith(b"\r\n") for piece in pieces)


# The same atlas written by a plain reference: the models read tie by tie, the csv module,
# json and ElementTree. -------------------------------------------------------------------

NOTICE = (
    "cityDiplomacy data, CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/). "
    'Sources: Alpha "report", 2024: licence not stated; Beta & <survey> (Łukasz, Ewa): '
    "licence not stated; Gamma: CC0."
)
GEXF = {"g": "http://gexf.net/1.3"}
GRAPHML = {"g": "http://graphml.graphdrawing.org/xmlns"}


@pytest.fixture
def varied_atlas(db):
    """Ties with and without dates, citations (a source cited twice by one tie), topics,
    cities without coordinates or on the prime meridian, and names and summaries with commas,
    quotes, line breaks, XML's special characters, a character XML forbids and non-ASCII."""
    alpha = make_source(slug="alpha-report", title='Alpha "report", 2024')
    beta = make_source(slug="beta-survey", title="Beta & <survey>", authors="Łukasz, Ewa")
    gamma = make_source(slug="gamma", title="Gamma", licence="CC0")
    trade = Theme.objects.create(name="Trade", slug="trade")
    culture = Theme.objects.create(name="Culture", slug="culture")
    quoted = make_city(name='Saint-"Quoted" City', country="FR", latitude=45.7640123,
                       longitude=4.8357, wikidata_id="Q90")  # fmt: skip
    lodz = make_city(name="Łódź", country="PL", latitude=51.7592, longitude=19.456)
    yokohama = make_city(name="横浜", country="JP", latitude=35.4437, longitude=139.638,
                         wikidata_id="Q38283")  # fmt: skip
    unplaced = make_city(name="Line\nbreak & <tag> 'single'\tquote", country="US")
    vancouver = make_city(name="Vancouver, BC", country="CA", latitude=49.2827, longitude=-123.1207)
    greenwich = make_city(name="Green\x0bwich", country="GB", latitude=51.4779, longitude=0.0)
    ties = [
        make_tie(quoted, lodz, kind="sister", start="1965", end="2001-03-04", status="ended",
                 summary='Signed, "twice"\r\nin 1965 & 1970', source=alpha),
        make_tie(yokohama, vancouver, kind="partner"),
        make_tie(unplaced, lodz, kind="friendship", start="1957~", end="196X", source=gamma),
        make_tie(greenwich, yokohama, kind="mou", start="2023-05", status="active"),
        make_tie(quoted, unplaced, kind="unspecified", start="1959/1960", source=beta),
        make_tie(quoted, greenwich, kind="other", start="1990/1995", end="2010"),
    ]  # fmt: skip
    TieCitation.objects.create(tie=ties[0], source=beta, locator="p. 2")
    TieCitation.objects.create(tie=ties[0], source=beta, locator="p. 5")
    TieCitation.objects.create(tie=ties[0], source=alpha, locator="p. 9")
    TieCitation.objects.create(tie=ties[2], source=beta, locator="row 4")
    ties[0].topics.set([trade, culture])
    ties[3].topics.set([culture])
    return ties


def reference_ties(**filters):
    """The ties in the export's order (undated last), read through the models."""
    ties = Tie.objects.filter(**filters).distinct()
    ties = ties.select_related("city_a", "city_b").prefetch_related("topics", "citations__source")
    return list(ties.order_by(F("start_lower").asc(nulls_last=True), "id"))


def reference_cities(ties):
    return sorted(
        {c.pk: c for t in ties for c in (t.city_a, t.city_b)}.values(), key=lambda c: c.pk
    )


def reference_notice(ties):
    """The licence notice: the atlas's licence, then each cited source by title."""
    cited = {c.source for t in ties for c in t.citations.all()}
    credits = [
        f"{s.title}{f' ({s.authors})' if s.authors else ''}: {s.licence or 'licence not stated'}"
        for s in sorted(cited, key=lambda s: (s.title, s.slug))
    ]
    text = "cityDiplomacy data, CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/)."
    return text + (" Sources: " + "; ".join(credits) + "." if credits else "")


def source_keys(tie):
    return sorted({citation.source.slug for citation in tie.citations.all()})


def xml_clean(value):
    """A value as an XML reader gives it back: less the characters XML forbids."""
    return re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f]", "", str(value))


def non_empty(values):
    return {key: xml_clean(value) for key, value in values.items() if value not in (None, "")}


def reference_csv(ties):
    def city(c):
        coordinates = (
            ["", ""] if c.latitude is None else [f"{c.latitude:.6f}", f"{c.longitude:.6f}"]
        )
        return [c.slug, c.name, c.country, c.wikidata_id, *coordinates]

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(exports.CSV_COLUMNS)
    for t in ties:
        topics = ";".join(sorted(theme.slug for theme in t.topics.all()))
        writer.writerow(
            [t.pk, *city(t.city_a), *city(t.city_b), t.kind, t.status, t.start, t.end,
             t.date_basis, topics, ";".join(source_keys(t)), t.verification, t.summary]
        )  # fmt: skip
    return out.getvalue()


def reference_geojson(ties):
    def position(c):
        return [round(c.longitude, 6), round(c.latitude, 6)]

    features = [
        {
            "type": "Feature",
            "id": f"city:{c.slug}",
            "geometry": None
            if c.latitude is None
            else {"type": "Point", "coordinates": position(c)},
            "properties": {
                "feature": "city",
                "slug": c.slug,
                "name": c.name,
                "country": c.country,
                "wikidata_id": c.wikidata_id or None,
            },
        }
        for c in reference_cities(ties)
    ]
    for t in ties:
        located = t.city_a.latitude is not None and t.city_b.latitude is not None
        features.append(
            {
                "type": "Feature",
                "id": f"tie:{t.pk}",
                "geometry": exports.line_between(position(t.city_a), position(t.city_b))
                if located
                else None,
                "properties": {
                    "feature": "tie",
                    "tie_id": t.pk,
                    "city_a": t.city_a.slug,
                    "city_b": t.city_b.slug,
                    "kind": t.kind,
                    "status": t.status,
                    "start": t.start or None,
                    "end": t.end or None,
                    "sources": source_keys(t),
                },
            }
        )
    return {"type": "FeatureCollection", "licence": "CC BY-SA 4.0",
            "license_url": "https://creativecommons.org/licenses/by-sa/4.0/",
            "attribution": reference_notice(ties), "features": features}  # fmt: skip


def node_values(c):
    return {"country": c.country, "wikidata_id": c.wikidata_id, "latitude": c.latitude,
            "longitude": c.longitude}  # fmt: skip


def edge_values(t):
    return {"kind": t.kind, "status": t.status, "start_edtf": t.start, "end_edtf": t.end,
            "date_basis": t.date_basis, "sources": ";".join(source_keys(t))}  # fmt: skip


def numbered(prefix, values):
    """GEXF's attvalues: each value under the number its attribute is declared with."""
    return non_empty({f"{prefix}{i}": value for i, value in enumerate(values.values())})


def read_gexf(text):
    root = ElementTree.fromstring(text)
    description = root.find("g:meta/g:description", GEXF).text
    nodes = [
        (n.get("id"), n.get("label"),
         {a.get("for"): a.get("value") for a in n.iterfind("g:attvalues/g:attvalue", GEXF)})
        for n in root.iterfind("g:graph/g:nodes/g:node", GEXF)
    ]  # fmt: skip
    edges = [
        (e.get("id"), e.get("source"), e.get("target"), e.get("label"), e.get("start"),
         e.get("end"),
         {a.get("for"): a.get("value") for a in e.iterfind("g:attvalues/g:attvalue", GEXF)})
        for e in root.iterfind("g:graph/g:edges/g:edge", GEXF)
    ]  # fmt: skip
    return description, nodes, edges


def reference_gexf(ties):
    nodes = [
        (c.slug, xml_clean(c.name), numbered("n", node_values(c))) for c in reference_cities(ties)
    ]
    edges = [
        (str(t.pk), t.city_a.slug, t.city_b.slug, TieKind(t.kind).label,
         t.start_lower.isoformat() if t.start_lower else None,
         t.end_upper.isoformat() if t.end_upper else None, numbered("e", edge_values(t)))
        for t in ties
    ]  # fmt: skip
    description = "Ties between cities; edge start/end span the tie's dates. "
    return description + reference_notice(ties), nodes, edges


def read_graphml(text):
    root = ElementTree.fromstring(text)
    graph = root.find("g:graph", GRAPHML)

    def data(element):
        return {d.get("key"): d.text for d in element.iterfind("g:data", GRAPHML)}

    nodes = [(n.get("id"), data(n)) for n in graph.iterfind("g:node", GRAPHML)]
    edges = [
        (e.get("id"), e.get("source"), e.get("target"), data(e))
        for e in graph.iterfind("g:edge", GRAPHML)
    ]
    return graph.find("g:desc", GRAPHML).text, nodes, edges


def reference_graphml(ties):
    nodes = [
        (c.slug, non_empty({"name": c.name, **node_values(c)})) for c in reference_cities(ties)
    ]
    edges = [
        (str(t.pk), t.city_a.slug, t.city_b.slug,
         non_empty({**edge_values(t), "start_earliest": t.start_lower, "end_latest": t.end_upper}))
        for t in ties
    ]  # fmt: skip
    return reference_notice(ties), nodes, edges


@pytest.mark.django_db
@pytest.mark.parametrize("filters", [{}, {"source": "beta-survey"}, {"kind": "mou"}])
def test_every_export_says_what_a_plain_reference_writer_says(api, varied_atlas, filters):
    """Each format, parsed, holds the same cities, ties, values and escapes as the models
    read one by one give (the CSV byte for byte, as the csv module writes it); the filters
    select the same ties."""
    lookups = {"source": "citations__source__slug", "kind": "kind"}
    ties = reference_ties(**{lookups[name]: value for name, value in filters.items()})
    assert ties

    text = download(api, "/api/v1/exports/ties.csv", **filters)
    assert text == reference_csv(ties)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(row["tie_id"]) for row in rows] == [t.pk for t in ties]

    text = download(api, "/api/v1/exports/ties.geojson", **filters)
    assert json.loads(text) == reference_geojson(ties)

    text = download(api, "/api/v1/exports/ties.gexf", **filters)
    assert read_gexf(text) == reference_gexf(ties)
    graph = nx.read_gexf(io.BytesIO(text.encode()))
    assert {n: d["label"] for n, d in graph.nodes(data=True)} == {
        c.slug: xml_clean(c.name) for c in reference_cities(ties)
    }

    text = download(api, "/api/v1/exports/ties.graphml", **filters)
    assert read_graphml(text) == reference_graphml(ties)
    graph = nx.read_graphml(io.BytesIO(text.encode()))
    assert graph.number_of_edges() == len(ties)


@pytest.mark.django_db
def test_varied_atlas_reads_back_with_its_quotes_line_breaks_and_letters(api, varied_atlas):
    assert reference_notice(reference_ties()) == NOTICE
    rows = list(csv.DictReader(io.StringIO(download(api, "/api/v1/exports/ties.csv"))))

    first = next(r for r in rows if int(r["tie_id"]) == varied_atlas[0].pk)
    assert first["city_a_name"] == 'Saint-"Quoted" City'
    assert first["city_b_name"] == "Łódź"
    assert first["summary"] == 'Signed, "twice"\r\nin 1965 & 1970'
    # A source cited three times by the tie is listed once; topics and sources in key order.
    assert (first["sources"], first["topics"]) == ("alpha-report;beta-survey", "culture;trade")
    assert (first["city_a_latitude"], first["city_a_longitude"]) == ("45.764012", "4.835700")
    graph = nx.read_gexf(io.BytesIO(download(api, "/api/v1/exports/ties.gexf").encode()))
    assert graph.nodes[varied_atlas[3].city_a.slug]["longitude"] == 0.0


@pytest.mark.django_db
def test_sources_export_as_csl_json_for_zotero(api):
    make_source(
        slug="seed-article",
        kind="article",
        title="City diplomacy in Yokohama & Taipei",
        authors="Tanaka, Hiroshi; Melbourne Centre for Cities",
        container_title="Journal of Urban Affairs",
        issued="2021-03~",
        url="https://example.org/a",
    )
    make_source(slug="undated", kind="web_page", title="Sister cities list", issued="196X")

    items = {i["id"]: i for i in json.loads(download(api, "/api/v1/exports/sources.json"))}

    article = items["seed-article"]
    assert article["type"] == "article"
    assert article["author"] == [
        {"family": "Tanaka", "given": "Hiroshi"},
        {"literal": "Melbourne Centre for Cities"},
    ]
    assert article["issued"] == {"date-parts": [[2021, 3]], "circa": True}
    assert article["container-title"] == "Journal of Urban Affairs"
    assert items["undated"]["issued"] == {"raw": "196X"}
    assert items["undated"]["type"] == "webpage"


@pytest.mark.django_db
def test_sources_export_as_bibtex_with_special_characters_escaped(api):
    make_source(
        slug="seed-article",
        kind="article",
        title="Cities & networks: 100% local_ish",
        authors="Tanaka, Hiroshi; C40 Cities",
        container_title="Journal of Urban Affairs",
        issued="2021-03",
    )

    text = download(api, "/api/v1/exports/sources.bib")

    assert text.startswith("@article{seed-article,\n")
    assert r"title = {{Cities \& networks: 100\% local\_ish}}" in text
    assert "author = {Tanaka, Hiroshi and {C40 Cities}}" in text
    assert "journal = {Journal of Urban Affairs}" in text
    assert "year = {2021}" in text and "month = {3}" in text
    # Braces balance once the escaped ones are set aside, so BibTeX parses the entry.
    assert text.count("{") - text.count(r"\{") == text.count("}") - text.count(r"\}")


@pytest.mark.django_db
def test_sources_export_as_bibtex_that_a_parser_reads_back_to_the_same_text(api):
    import bibtexparser
    from pylatexenc.latex2text import LatexNodes2Text

    title = r"Back\slash {braces} ~tilde ^caret 100% & $5 #1 snake_case — Łódź, 横浜"
    make_source(slug="tricky", kind="web_page", title=title, url="https://x.org/a}b{c%20#d")

    library = bibtexparser.parse_string(download(api, "/api/v1/exports/sources.bib"))

    assert library.failed_blocks == []
    (entry,) = library.entries
    assert set(entry.fields_dict) == {"title", "url"}
    # pylatexenc writes \textasciicircum as the modifier letter ˆ rather than ^.
    decoded = LatexNodes2Text().latex_to_text(entry["title"]).replace("ˆ", "^")
    assert decoded == title
    assert entry["url"] == r"https://x.org/a\%7Db\%7Bc\%20\#d"


@pytest.mark.django_db
def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_written_as_text(api):
    source = make_source()
    evil = make_city(name='=HYPERLINK("http://evil.example","click")', slug="evil")
    plus = make_city(name="+Town", slug="plus-town", latitude=-33.86, longitude=-151.2)
    make_tie(evil, plus, source, summary="@SUM(1+1)", start="-0100")
    rows = list(csv.reader(io.StringIO(download(api, "/api/v1/exports/ties.csv"))))
    header, *data = [row for row in rows if row and not row[0].startswith("#")]
    (row,) = data
    cell = dict(zip(header, row, strict=True))
    names = {cell["city_a_name"], cell["city_b_name"]}
    assert names == {'\'=HYPERLINK("http://evil.example","click")', "'+Town"}
    assert cell["summary"] == "'@SUM(1+1)"
    assert cell["start"] == "'-0100"
    # Numbers stay numbers: a negative coordinate is not a formula.
    assert "-33.860000" in row and "-151.200000" in row
