"""The CSV export re-imports: every country code the atlas writes reads back (XK for Kosovo
included), and `import_ties` with the README's mapping gives back the same ties — pairs,
kinds, statuses and EDTF dates."""

import io
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django_countries import countries

from cities.countries import country_code
from cities.models import City, Source
from partnerships import exports
from partnerships.models import Tie
from tests.conftest import make_city, make_source, make_tie

pytestmark = pytest.mark.usefixtures("fresh_throttle_counts")

# The command README.md gives ("Re-importing an export"), less the file name and the source.
README_MAP = (
    "city1=city_a_name,country1=city_a_country,lat1=city_a_latitude,lng1=city_a_longitude,"
    "wikidata1=city_a_wikidata,city2=city_b_name,country2=city_b_country,lat2=city_b_latitude,"
    "lng2=city_b_longitude,wikidata2=city_b_wikidata,kind=kind,status=status,start=start,end=end"
)


@pytest.mark.parametrize(
    "written, code",
    [
        ("XK", "XK"),
        ("xk", "XK"),
        ("XKX", "XK"),
        ("Kosovo", "XK"),
        ("PS", "PS"),
        ("PSE", "PS"),
        ("Palestinian territories", "PS"),
        ("Palestinian National Authority", "PS"),
        ("State of Palestine", "PS"),
        ("Palestine", "PS"),
    ],
)
def test_country_codes_and_names_of_kosovo_and_palestine_are_known(written, code):
    assert country_code(written) == code


def test_every_country_code_the_atlas_exports_reads_back():
    assert [code for code, _name in countries if country_code(code) != code] == []


def test_the_readme_gives_the_mapping_the_exports_module_documents():
    readme = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    assert f"--map {README_MAP} " in readme
    assert README_MAP == exports.CSV_IMPORT_MAP


@pytest.fixture
def atlas(db):
    """Ties of every kind, with exact, approximate, uncertain and ranged dates, statuses, and
    cities in Kosovo and Palestine, each citing a source."""
    report, survey = make_source(slug="city-report"), make_source(slug="survey-2024")
    yokohama = make_city(
        name="Yokohama", country="JP", latitude=35.4437, longitude=139.638, wikidata_id="Q38283"
    )
    prishtina = make_city(name="Prishtina", country="XK", latitude=42.6629, longitude=21.1655)
    ramallah = make_city(name="Ramallah", country="PS", latitude=31.9038, longitude=35.2034)
    lyon = make_city(name="Lyon", country="FR", wikidata_id="Q456")
    odesa = make_city(name="Odesa", country="UA", latitude=46.4825, longitude=30.7233)
    bethlehem = make_city(name="Bethlehem", country="PS")
    return [
        make_tie(yokohama, lyon, kind="sister", start="1959", status="active", source=report),
        make_tie(yokohama, odesa, kind="partner", start="1965~", end="199X", status="ended",
                 source=survey),
        make_tie(prishtina, ramallah, kind="friendship", start="2011?", source=report),
        make_tie(prishtina, yokohama, kind="mou", start="2019-05", status="suspended",
                 source=survey),
        make_tie(lyon, bethlehem, kind="unspecified", source=report),
        make_tie(ramallah, lyon, kind="other", start="1990/1995", end="2001-03-04",
                 status="ended", source=survey),
        make_tie(yokohama, lyon, kind="mou", start="2020", source=survey),
    ]  # fmt: skip


def facts():
    """Each tie as a partner would compare two copies of the atlas: both cities (name,
    country, Wikidata id; either way round), kind, status and dates."""

    def end(city):
        return (city.name, city.country, city.wikidata_id)

    return Counter(
        (frozenset({end(t.city_a), end(t.city_b)}), t.kind, t.status, t.start, t.end)
        for t in Tie.objects.select_related("city_a", "city_b")
    )


@pytest.mark.django_db
def test_the_csv_export_reimports_into_an_empty_atlas_with_kinds_dates_and_statuses(
    api, atlas, tmp_path
):
    response = api.get("/api/v1/exports/ties.csv")
    assert response.status_code == 200
    path = tmp_path / "ties.csv"
    path.write_bytes(b"".join(response.streaming_content))
    before = facts()
    located = {c.name: (c.latitude, c.longitude) for c in City.objects.exclude(latitude=None)}
    assert {"XK", "PS"} <= set(City.objects.values_list("country", flat=True))
    Tie.objects.all().delete()
    City.objects.all().delete()
    Source.objects.all().delete()

    out = io.StringIO()
    call_command(
        "import_ties", str(path), "--map", README_MAP,
        "--source-slug", "atlas-export", "--source-title", "cityDiplomacy ties export",
        "--source-url", "http://127.0.0.1:8000/api/v1/exports/ties.csv",
        stdout=out,
    )  # fmt: skip

    assert "Imported." in out.getvalue()
    assert facts() == before
    # Coordinates read back as exported (the import may find the missing ones in GeoNames).
    assert {
        c.name: (c.latitude, c.longitude) for c in City.objects.filter(name__in=located)
    } == located
    # Each tie cites the export, at its row.
    export = Source.objects.get(slug="atlas-export")
    assert sorted(c.locator for t in Tie.objects.all() for c in t.citations.all()) == sorted(
        f"row {n}" for n in range(2, len(atlas) + 2)
    )
    assert {c.source for t in Tie.objects.all() for c in t.citations.all()} == {export}


@pytest.mark.parametrize(
    "text", ["=1+1", "+Town", "-0100", "@home", "'=quoted", "''+twice", "'plain", "plain", ""]
)
def test_a_cell_guarded_against_spreadsheets_reads_back_as_it_was(text):
    from partnerships.exports import as_text_cell
    from partnerships.importing import as_written

    assert as_written(as_text_cell(text)) == text
