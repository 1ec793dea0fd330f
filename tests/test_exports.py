"""Research exports: each format reads back in the tools partners use, with the same ties,
cities and dates, honours the tie filters, and is streamed chunk by chunk."""

import csv
import io
import json

import geojson
import networkx as nx
import pytest
from django.core.management import call_command

from cities.models import City, Source
from partnerships import exports
from partnerships.models import Tie
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
        # ties with both cities; their topics; their citations with sources
        ("csv", 3),
        # the sources the ties cite, for the licence notice; cities at either end; ties
        # with both cities; topics; citations
        ("gexf", 5),
        ("graphml", 5),
        ("geojson", 5),
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
def test_exports_read_the_ties_chunk_by_chunk(api, monkeypatch, django_assert_num_queries):
    """Memory stays flat because rows arrive in chunks: with chunks of two, five ties take
    one streamed query plus topics and citations for each of three chunks."""
    monkeypatch.setattr(exports, "CHUNK", 2)
    for _ in range(5):
        make_tie(source=make_source())
    with django_assert_num_queries(1 + 3 * 2):
        text = download(api, "/api/v1/exports/ties.csv")
    assert len(text.strip().splitlines()) == 6


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
