"""Citable releases: a Frictionless Data Package that validates, loads back into an empty
atlas as the same atlas, says what changed since the last one, and is served whole."""

import json
import zipfile

import pytest
from django.core.management import call_command
from frictionless import validate

from cities.models import AlternateName, City, CityCitation, SearchName, SlugRedirect, Theme
from partnerships import releases
from partnerships.models import (
    Correction,
    Event,
    Initiative,
    Membership,
    MembershipCitation,
    Organization,
    StatedFigure,
    Tie,
    TieCitation,
)
from tests.conftest import make_city, make_organization, make_source, make_tie

pytestmark = pytest.mark.django_db


@pytest.fixture
def atlas():
    """A little of every kind of record, with the awkward values a release must carry."""
    wikipedia = make_source(
        slug="wikipedia", licence="CC BY-SA 4.0", url="https://en.wikipedia.org/"
    )
    geonames = make_source(slug="geonames", licence="CC BY 4.0")
    peace = Theme.objects.create(name="Peace", slug="peace")
    yokohama = make_city(
        name="Yokohama",
        slug="yokohama",
        latitude=35.4442,
        longitude=139.6381,
        population=3777491,
        wikidata_id="Q38283",
        geonames_id=1848354,
    )
    yokohama.themes.add(peace)
    odesa = make_city(name="Odesa", slug="odesa", country="UA", summary='=HYPERLINK("x"), "quoted"')
    AlternateName.objects.create(city=odesa, name="Одеса", language="uk", kind="native")
    SlugRedirect.objects.create(slug="odessa", city=odesa)
    CityCitation.objects.create(city=yokohama, source=geonames, locator="1848354")
    tie = make_tie(yokohama, odesa, kind="mou", start="2023-05", source=wikipedia)
    tie.topics.add(peace)
    make_tie(odesa, make_city(name="Taipei", country="TW"), start="196X", end="1990~")
    uclg = make_organization(name="UCLG", slug="uclg")
    aspac = make_organization(
        name="UCLG ASPAC",
        slug="uclg-aspac",
        kind="regional_branch",
        parent=uclg,
        headquarters=yokohama,
    )
    member = Membership.objects.create(organization=aspac, city=yokohama, since="2014")
    MembershipCitation.objects.create(membership=member, source=wikipedia)
    port = Initiative.objects.create(
        name="Y-Port", slug="y-port", kind="programme", lead_city=yokohama
    )
    port.partner_cities.add(odesa)
    Event.objects.create(
        title="Visit", slug="visit", kind="visit", city=yokohama, tie=tie, date="2022"
    )
    StatedFigure.objects.create(city=yokohama, measure="sister_cities", value=8, slug="y-sister")
    return {"wikipedia": wikipedia, "yokohama": yokohama, "odesa": odesa, "tie": tie}


def empty_the_atlas():
    Organization.objects.filter(parent__isnull=False).delete()  # branches before networks
    for model in (
        Correction,
        SearchName,
        Event,
        StatedFigure,
        Initiative,
        Membership,
        Tie,
        Organization,
        City,
        Theme,
    ):
        model.objects.all().delete()
    from cities.models import Source

    Source.objects.all().delete()


def test_a_release_validates_as_a_data_package_and_loads_back_as_the_same_atlas(atlas, tmp_path):
    before = releases.content_checksum()
    counts = {r.name: r.model._default_manager.count() for r in releases.resources()}

    manifest = releases.release(tmp_path)
    folder = tmp_path / manifest["version"]

    report = validate(str(folder / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    package = json.loads((folder / "datapackage.json").read_text())
    assert manifest["content_sha256"] == package["x_content_sha256"] == before
    assert package["x_counts"] == counts and counts["ties"] == 2
    ties = next(r for r in package["resources"] if r["name"] == "ties")
    assert ties["schema"]["primaryKey"] == ["id"]
    assert {"fields": ["city_a_id"], "reference": {"resource": "cities", "fields": ["id"]}} in (
        ties["schema"]["foreignKeys"]
    )
    assert {licence["name"] for licence in ties["licenses"]} == {"CC-BY-SA-4.0"}
    assert [s["title"] for s in ties["sources"]] == [
        "Source " + atlas["wikipedia"].title.split()[-1]
    ]
    cities = next(r for r in package["resources"] if r["name"] == "cities")
    assert {licence["name"] for licence in cities["licenses"]} == {"CC-BY-SA-4.0", "CC-BY-4.0"}
    # Nothing of the curators' own: notes, timestamps; nothing derived.
    assert "curator_notes" not in (folder / "ties.csv").read_text()
    assert "start_lower" not in (folder / "ties.csv").read_text()
    # The zip holds the package whole.
    with zipfile.ZipFile(folder / manifest["archive"]) as zipped:
        names = set(zipped.namelist())
    assert f"citydiplomacy-{manifest['version']}/datapackage.json" in names
    assert len(names) == len(package["resources"]) + 1

    empty_the_atlas()
    assert releases.content_checksum() != before
    call_command("load_release", str(folder / manifest["archive"]), verbosity=0)

    assert releases.content_checksum() == before
    assert {r.name: r.model._default_manager.count() for r in releases.resources()} == counts
    odesa = City.objects.get(slug="odesa")
    assert odesa.summary == '=HYPERLINK("x"), "quoted"'
    assert odesa.alternate_names.get().folded == "odesa"
    tie = Tie.objects.get(pk=atlas["tie"].pk)
    assert (tie.start_lower.isoformat(), tie.start_upper.isoformat()) == (
        "2023-05-01",
        "2023-05-31",
    )
    assert tie.history.latest().history_change_reason.startswith("Loaded from release")
    # New records take ids after the loaded ones.
    assert make_city().pk > max(
        City.objects.exclude(name__startswith="City ").values_list("pk", flat=True)
    )


def test_a_release_is_refused_into_an_atlas_that_is_not_empty(atlas, tmp_path):
    manifest = releases.release(tmp_path)

    with pytest.raises(releases.ReleaseError, match="not empty"):
        releases.load(tmp_path / manifest["version"])


def test_a_damaged_file_is_refused_and_nothing_is_loaded(atlas, tmp_path):
    manifest = releases.release(tmp_path)
    folder = tmp_path / manifest["version"]
    with (folder / "ties.csv").open("a") as f:
        f.write("99,1,2,sister,active,,,unknown,,unverified\n")
    empty_the_atlas()

    with pytest.raises(releases.ReleaseError, match="ties.csv does not match its SHA-256"):
        releases.load(folder)
    assert not City.objects.exists()


def test_the_changelog_counts_added_changed_and_removed_records_by_source(atlas, tmp_path):
    first = releases.release(tmp_path)
    Tie.objects.filter(pk=atlas["tie"].pk).update(status="ended")
    added = make_tie(
        atlas["yokohama"], make_city(name="Vancouver", country="CA"), source=atlas["wikipedia"]
    )
    TieCitation.objects.create(tie=added, source=atlas["wikipedia"], locator="p. 2")
    Tie.objects.filter(city_b__name="Taipei").delete()

    second = releases.release(tmp_path)

    assert second["previous"] == first["version"]
    assert second["version"] == f"{first['version']}.2"
    changes = json.loads((tmp_path / second["version"] / "changes.json").read_text())
    ties = changes["resources"]["ties"]
    assert (ties["added"], ties["changed"], ties["removed"]) == (1, 1, 1)
    assert ties["by_source"] == {
        "wikipedia": {"added": 1, "changed": 1, "removed": 0},
        "(no source)": {"added": 0, "changed": 0, "removed": 1},
    }
    cities = changes["resources"]["cities"]
    assert (cities["added"], cities["changed"], cities["removed"]) == (1, 0, 0)
    assert added.pk


def test_a_release_being_written_is_never_listed(atlas, tmp_path):
    (tmp_path / ".2026.12.06-x1").mkdir()
    (tmp_path / ".2026.12.06-x1" / "release.json").write_text("{}")

    assert releases.list_releases(tmp_path) == []
    releases.release(tmp_path)
    assert len(releases.list_releases(tmp_path)) == 1


# /data/ -----------------------------------------------------------------------------------


@pytest.fixture
def published(atlas, tmp_path, settings):
    settings.RELEASES_DIR = tmp_path
    return releases.release(tmp_path)


def test_the_data_page_lists_releases_with_what_a_citation_needs(client, published):
    page = client.get("/data/").content.decode()
    version = published["version"]

    assert f"Release {version}" in page
    assert published["files"][published["archive"]]["sha256"] in page
    assert "3 cities, 2 ties, 2 organizations, 1 membership" in page
    assert f"@dataset{{citydiplomacy-{version.replace('.', '-')}" in page
    assert "&quot;type&quot;: &quot;dataset&quot;" in page
    assert "Changes: the first release" in page
    assert client.get(f"/data/{version}/").status_code == 200


def test_release_files_stream_with_their_checksum_as_etag(client, published):
    version, archive = published["version"], published["archive"]
    sha256 = published["files"][archive]["sha256"]

    response = client.get(f"/data/{version}/{archive}")
    body = b"".join(response.streaming_content)

    assert response.status_code == 200 and response["ETag"] == f'"{sha256}"'
    assert response["Content-Type"] == "application/zip"
    assert "immutable" in response["Cache-Control"]
    assert zipfile.is_zipfile(__import__("io").BytesIO(body))
    assert (
        client.get(f"/data/{version}/{archive}", HTTP_IF_NONE_MATCH=f'"{sha256}"').status_code
        == 304
    )
    assert client.get(f"/data/{version}/ties.csv").status_code == 200
    for name in ("release.json", "../db.sqlite3", "changes.json", "missing.csv"):
        assert client.get(f"/data/{version}/{name}").status_code == 404
    assert client.get("/data/1999.01.01/").status_code == 404


# Full current downloads -------------------------------------------------------------------


def test_cities_download_whole_with_the_lists_filters_as_csv_and_json_lines(client, atlas):
    csv_text = b"".join(
        client.get("/api/v1/exports/cities.csv", {"country": "JP"}).streaming_content
    )
    lines = b"".join(client.get("/api/v1/exports/cities.jsonl").streaming_content).splitlines()

    rows = list(__import__("csv").DictReader(csv_text.decode().splitlines()))
    assert [r["slug"] for r in rows] == ["yokohama"]
    assert rows[0]["geonames_id"] == "1848354" and rows[0]["wikidata_id"] == "Q38283"
    assert rows[0]["themes"] == "peace" and rows[0]["sources"] == "geonames"
    records = [json.loads(line) for line in lines]
    assert [r["slug"] for r in records] == ["yokohama", "odesa", "taipei"]
    assert records[0]["latitude"] == 35.4442 and records[0]["themes"] == ["peace"]
    # A spreadsheet would run this summary as a formula: the CSV writes it as text.
    odesa_csv = b"".join(
        client.get("/api/v1/exports/cities.csv", {"country": "UA"}).streaming_content
    )
    assert "'=HYPERLINK" in odesa_csv.decode()
    assert records[1]["summary"].startswith("=HYPERLINK")


def test_memberships_and_ties_download_as_json_lines(client, atlas):
    memberships = b"".join(
        client.get("/api/v1/exports/memberships.jsonl", {"organization": "uclg"}).streaming_content
    ).splitlines()
    ties = b"".join(
        client.get("/api/v1/exports/ties.jsonl", {"city": "yokohama"}).streaming_content
    )
    none = client.get("/api/v1/exports/memberships.csv", {"city": "atlantis"})

    member = json.loads(memberships[0])
    assert (member["organization"], member["city"], member["since"]) == (
        "uclg-aspac",
        "yokohama",
        "2014",
    )
    assert member["sources"] == ["wikipedia"]
    tie = json.loads(ties)
    assert (tie["city_a"], tie["city_b"], tie["kind"], tie["topics"]) == (
        "yokohama",
        "odesa",
        "mou",
        ["peace"],
    )
    assert none.status_code == 400 and none.json()["code"] == "unknown_reference"


def test_release_files_hold_text_as_it_is_for_programs(atlas, tmp_path):
    manifest = releases.release(tmp_path)

    cities = (tmp_path / manifest["version"] / "cities.csv").read_text()

    # The spreadsheet guard of the API's CSV (an apostrophe) would alter what programs read.
    assert '"=HYPERLINK(""x""), ""quoted"""' in cities and "'=HYPERLINK" not in cities


def test_a_damaged_release_folder_is_passed_over_not_a_broken_page(client, published, tmp_path):
    (tmp_path / "2026.12.07").mkdir()
    (tmp_path / "2026.12.07" / "release.json").write_text('{"version": "2026.12.07"')
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "release.json").write_text("{}")

    assert [r["version"] for r in releases.list_releases(tmp_path)] == [published["version"]]
    assert client.get("/data/").status_code == 200
    assert releases.release(tmp_path)["previous"] == published["version"]


def test_loading_names_what_makes_the_atlas_not_empty(atlas, tmp_path):
    manifest = releases.release(tmp_path)
    empty_the_atlas()
    Theme.objects.create(name="Left over", slug="left-over")

    with pytest.raises(releases.ReleaseError, match=r"not empty \(it holds themes\)"):
        releases.load(tmp_path / manifest["version"])


def test_a_refused_zip_leaves_nothing_unpacked(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../outside.txt", "x")

    with pytest.raises(releases.ReleaseError, match="outside itself"):
        releases.load(archive)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_refused_precondition_is_not_kept_by_caches(client, published):
    version = published["version"]

    response = client.get(f"/data/{version}/ties.csv", HTTP_IF_MATCH='"wrong"')

    assert response.status_code == 412
    assert "immutable" not in response.get("Cache-Control", "")


def test_exports_of_cities_follow_the_ordering_asked_for(client, atlas):
    make_tie(atlas["odesa"], make_city(name="Lviv", country="UA"))

    def slugs(**params):
        body = b"".join(client.get("/api/v1/exports/cities.jsonl", params).streaming_content)
        return [json.loads(line)["slug"] for line in body.splitlines()]

    assert slugs(ordering="-ties")[0] == "odesa"
    assert slugs(ordering="name")[:2] == ["lviv", "odesa"]
    assert slugs()[:3] == ["yokohama", "odesa", "taipei"]
