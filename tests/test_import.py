"""Bulk import of ties: layouts, reconciliation, bad rows, dry run, repeat runs, real data,
and the batches it writes in: bounded memory, other writers between them, resuming."""

import csv
import gc
import io
import json
import threading
import tracemalloc
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connections, transaction

from cities.models import AlternateName, City, CityCitation, Source
from partnerships import importing
from partnerships.importing import (
    ImportRejected,
    Progress,
    apply_import,
    build_import_plan,
    dataset_source,
    read_table,
    resolve_mapping,
    run_import,
)
from partnerships.models import ImportJob, Tie, TieCitation
from tests.conftest import make_city, make_source, make_tie, make_user

pytestmark = pytest.mark.django_db

HEADER = "city1,country1,lat1,lng1,city2,country2,lat2,lng2"
# The shared data lives beside the project, never inside it.
SHARED_FILE = Path(__file__).resolve().parents[1] / "data" / "twin-cities-wikipedia.csv"


def write(tmp_path, lines, name="ties.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def run(path, *args):
    out = io.StringIO()
    call_command("import_ties", str(path), *args, stdout=out)
    return out.getvalue()


def partners(city):
    return sorted(t.partner_of(city).name for t in Tie.objects.for_city(city))


def counts():
    """What an import can write, including the edit history of each table."""
    models = (City, AlternateName, CityCitation, Tie, TieCitation, Source)
    return {m.__name__: (m.objects.count(), m.history.count()) for m in models}


def test_default_layout_creates_cities_and_unspecified_ties_citing_each_row(tmp_path):
    path = write(
        tmp_path,
        [HEADER, "Yokohama,Japan,35.44,139.64,Lyon,France,45.77,4.84"],
    )
    output = run(path)
    yokohama, lyon = City.objects.get(name="Yokohama"), City.objects.get(name="Lyon")
    assert (yokohama.country, yokohama.latitude, lyon.country) == ("JP", 35.44, "FR")
    tie = Tie.objects.get()
    assert tie.kind == "unspecified"  # the list does not say sister or partner
    citation = tie.citations.get()
    assert citation.locator == "row 2"
    assert citation.source.slug == "wikipedia-twin-towns"
    assert "Wikipedia contributors" in citation.source.authors
    assert yokohama.citations.get().locator == "row 2"
    assert "2 were created" in output and "1 were created" in output


def test_tab_separated_file_with_byte_order_mark(tmp_path):
    lines = [
        HEADER.replace(",", "\t"),
        "Taipei\tTaiwan\t25.03\t121.56\tKyiv\tUkraine\t50.45\t30.52",
    ]
    path = write(tmp_path, lines, name="ties.tsv", encoding="utf-8-sig")
    run(path)
    assert partners(City.objects.get(name="Taipei")) == ["Kyiv"]
    assert City.objects.get(name="Taipei").country == "TW"


def test_kind_option_is_used_when_the_file_states_none(tmp_path):
    path = write(tmp_path, [HEADER, "Yokohama,Japan,35.44,139.64,Lyon,France,45.77,4.84"])
    run(path, "--kind", "sister")
    assert Tie.objects.get().kind == "sister"


def test_mapping_reads_a_wikidata_layout_with_optional_columns(tmp_path):
    path = tmp_path / "wikidata.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["item", "itemLabel", "countryLabel", "coord", "twin", "twinLabel", "twinCountryLabel",
             "twinCoord", "kindLabel", "since", "ref"]
        )  # fmt: skip
        writer.writerow(
            ["http://www.wikidata.org/entity/Q38283", "Yokohama", "Japan",
             "Point(139.638 35.444)", "http://www.wikidata.org/entity/Q1874", "Odesa", "Ukraine",
             "Point(30.732 46.484)", "sister city", "1965", "https://example.org/yokohama"]
        )  # fmt: skip
    mapping = (
        "city1=itemLabel,country1=countryLabel,coord1=coord,wikidata1=item,city2=twinLabel,"
        "country2=twinCountryLabel,coord2=twinCoord,wikidata2=twin,kind=kindLabel,start=since,"
        "source_url=ref"
    )
    run(path, "--map", mapping, "--source-slug", "wikidata-p190", "--source-title", "Wikidata P190")
    yokohama = City.objects.get(wikidata_id="Q38283")
    assert (yokohama.name, yokohama.latitude, yokohama.longitude) == ("Yokohama", 35.444, 139.638)
    tie = Tie.objects.get()
    assert (tie.kind, tie.start, tie.start_lower.year) == ("sister", "1965", 1965)
    cited = {(c.source.slug, c.locator) for c in tie.citations.all()}
    page = Source.objects.get(url="https://example.org/yokohama")
    assert cited == {("wikidata-p190", "row 2"), (page.slug, "")}


def test_mapping_from_a_json_file(tmp_path):
    path = write(tmp_path, ["a,ca,b,cb", "Yokohama,Japan,Manila,Philippines"])
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"city1": "a", "country1": "ca", "city2": "b", "country2": "cb"}))
    run(path, "--map", str(mapping), "--source-slug", "city-list", "--source-title", "City list")
    assert partners(City.objects.get(name="Yokohama")) == ["Manila"]
    assert City.objects.get(name="Manila").latitude is None  # unknown stays unknown


def test_mapping_naming_a_missing_column_is_refused_with_the_columns_found(tmp_path):
    path = write(tmp_path, ["a,ca,b,cb", "Yokohama,Japan,Manila,Philippines"])
    with pytest.raises(CommandError, match="no such column. Its columns are: a, ca, b, cb"):
        run(path, "--map", "city1=name,country1=ca,city2=b,country2=cb")
    with pytest.raises(CommandError, match="No column for name of the first city"):
        run(path)


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{HEADER}\nSão Paulo,Brazil,1,1,Lyon,France,2,2\n".encode("latin-1"))
    with pytest.raises(CommandError, match="is not UTF-8"):
        run(path)
    assert City.objects.count() == 0


BAD_ROWS = {
    "empty name": (",Japan,35.44,139.64,Lyon,France,45.77,4.84", "first city's name"),
    "not a number": ("Yokohama,Japan,north,139.64,Lyon,France,45.77,4.84", "is not a number"),
    "out of range": ("Yokohama,Japan,135.44,139.64,Lyon,France,45.77,4.84", "outside -90…90"),
    "unknown country": ("Yokohama,Narnia,35.44,139.64,Lyon,France,45.77,4.84", "“Narnia”"),
    "self-tie": ("Lyon,France,45.77,4.84,Lyon,France,45.76,4.83", "tied to itself"),
}


@pytest.mark.parametrize("case", BAD_ROWS)
def test_a_bad_row_is_reported_with_its_number_and_nothing_is_written(tmp_path, case):
    line, reason = BAD_ROWS[case]
    path = write(tmp_path, [HEADER, "Taipei,Taiwan,25.03,121.56,Kyiv,Ukraine,50.45,30.52", line])
    out = io.StringIO()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("import_ties", str(path), stdout=out)
    assert "row 3: " in out.getvalue() and reason in out.getvalue()
    assert counts() == dict.fromkeys(counts(), (0, 0))


def test_dry_run_with_a_bad_row_says_the_real_run_would_write_nothing(tmp_path):
    path = write(tmp_path, [HEADER, BAD_ROWS["self-tie"][0]])
    with pytest.raises(CommandError, match="a real run would write nothing"):
        run(path, "--dry-run")


def test_skip_bad_rows_imports_the_good_ones_and_reports_the_others(tmp_path):
    lines = [HEADER, "Taipei,Taiwan,25.03,121.56,Kyiv,Ukraine,50.45,30.52"]
    lines += [line for line, _reason in BAD_ROWS.values()]
    path = write(tmp_path, lines)
    report = tmp_path / "rejected.csv"
    output = run(path, "--skip-bad-rows", "--report", str(report))
    assert partners(City.objects.get(name="Taipei")) == ["Kyiv"]
    assert Tie.objects.count() == 1 and "Rejected: 5 rows" in output
    with report.open(encoding="utf-8") as handle:
        rejected = list(csv.DictReader(handle))
    assert [r["row"] for r in rejected] == ["3", "4", "5", "6", "7"]
    assert [r["city1"] for r in rejected] == ["", "Yokohama", "Yokohama", "Yokohama", "Lyon"]
    assert all(r["reason"] for r in rejected)


def test_matches_an_existing_city_through_an_alternate_name(tmp_path):
    odesa = make_city(name="Odesa", country="UA", latitude=46.48, longitude=30.73)
    AlternateName.objects.create(city=odesa, name="Odessa", language="en")
    path = write(tmp_path, [HEADER, "Yokohama,Japan,35.44,139.64,Odessa,Ukraine,46.47,30.74"])
    run(path)
    assert City.objects.filter(country="UA").get() == odesa
    assert partners(odesa) == ["Yokohama"]


def test_matches_across_accents_and_fills_missing_coordinates_citing_the_row(tmp_path):
    sao_paulo = make_city(name="São Paulo", country="BR")
    path = write(tmp_path, [HEADER, "Sao Paulo,Brazil,-23.55,-46.63,Osaka,Japan,34.69,135.50"])
    output = run(path)
    sao_paulo.refresh_from_db()
    assert (sao_paulo.latitude, sao_paulo.longitude) == (-23.55, -46.63)
    assert sao_paulo.citations.get().locator == "row 2"
    # The spelling seen is kept, so that a search for it shows where it came from.
    assert list(sao_paulo.alternate_names.values_list("name", flat=True)) == ["Sao Paulo"]
    assert "1 matched in the atlas, 1 completed" in output


def test_cedilla_and_comma_below_spellings_become_one_city_with_both_names(tmp_path):
    path = write(
        tmp_path,
        [
            HEADER,
            "Yokohama,Japan,35.44,139.64,Constanţa,Romania,44.1767,28.6508",
            "Constanța,Romania,44.1667,28.6333,Yokohama,Japan,35.44,139.64",
            "Constanța,Romania,44.1667,28.6333,Brest,France,48.39,-4.49",
        ],
    )
    run(path)
    constanta = City.objects.get(country="RO")
    assert constanta.name == "Constanța"  # the spelling the file uses most
    assert list(constanta.alternate_names.values_list("name", flat=True)) == ["Constanţa"]
    assert partners(constanta) == ["Brest", "Yokohama"]


def test_same_name_far_apart_is_two_places_and_close_by_is_one(tmp_path):
    path = write(
        tmp_path,
        [
            HEADER,
            "Lagoa,Portugal,37.13,-8.45,Bérat,France,43.38,1.18",  # Algarve
            "Lagoa,Portugal,37.75,-25.54,Lyon,France,45.77,4.84",  # Azores, 1,500 km away
            "Lagoa,Portugal,37.14,-8.46,Brest,France,48.39,-4.49",  # Algarve again
        ],
    )
    run(path)
    lagoas = City.objects.filter(name="Lagoa").order_by("longitude")
    assert [partners(lagoa) for lagoa in lagoas] == [["Lyon"], ["Brest", "Bérat"]]
    assert sorted(lagoas.values_list("slug", flat=True)) == ["lagoa", "lagoa-2"]


def test_qualified_name_matches_the_bare_one_but_not_a_district_or_another_parent(tmp_path):
    path = write(
        tmp_path,
        [
            HEADER,
            "Setagaya (Tokyo),Japan,35.64,139.65,Winnipeg,Canada,49.9,-97.1",
            "Tokyo – Setagaya,Japan,35.65,139.65,Bendigo,Australia,-36.8,144.3",
            "Göttingen (district),Germany,51.53,9.93,Cheltenham,England,51.9,-2.08",
            "Göttingen,Germany,51.54,9.94,Pau,France,43.3,-0.37",
            "Mitte (Berlin),Germany,52.53,13.38,Tourcoing,France,50.72,3.16",
            "Mitte (Hamburg),Germany,52.52,13.37,Konak,Turkey,38.42,27.13",
        ],
    )
    run(path)
    assert City.objects.filter(country="JP").count() == 1
    assert City.objects.filter(folded_name__startswith="gottingen").count() == 2
    assert City.objects.filter(folded_name__startswith="mitte").count() == 2


def test_a_pair_listed_from_both_ends_is_one_tie_citing_both_rows(tmp_path):
    path = write(
        tmp_path,
        [
            HEADER,
            "Yokohama,Japan,35.44,139.64,Manila,Philippines,14.6,120.98",
            "Manila,Philippines,14.6,120.98,Yokohama,Japan,35.44,139.64",
        ],
    )
    output = run(path)
    tie = Tie.objects.get()
    assert sorted(tie.citations.values_list("locator", flat=True)) == ["row 2", "row 3"]
    assert "1 rows repeat a pair listed earlier" in output


def test_a_row_confirming_a_curated_tie_cites_it_instead_of_adding_another(tmp_path):
    yokohama = make_city(name="Yokohama", country="JP", latitude=35.44, longitude=139.64)
    odesa = make_city(name="Odesa", country="UA", latitude=46.48, longitude=30.73)
    tie = make_tie(yokohama, odesa, kind="sister", source=make_source())
    path = write(tmp_path, [HEADER, "Yokohama,Japan,35.44,139.64,Odesa,Ukraine,46.48,30.73"])
    run(path)
    assert Tie.objects.get() == tie
    assert tie.citations.count() == 2


def test_running_the_same_file_twice_changes_nothing(tmp_path):
    path = write(
        tmp_path,
        [
            HEADER,
            "Yokohama,Japan,35.44,139.64,Constanţa,Romania,44.1767,28.6508",
            "Constanța,Romania,44.1667,28.6333,Yokohama,Japan,35.44,139.64",
            "Lyon,France,45.77,4.84,Yokohama,Japan,35.44,139.64",
        ],
    )
    run(path)
    before = counts()
    output = run(path)
    assert counts() == before
    assert "0 were created" in output and "3 rows confirm a tie already in the atlas" in output


def test_dry_run_reports_the_real_run_figures_and_writes_nothing(tmp_path):
    make_city(name="Odesa", country="UA", latitude=46.48, longitude=30.73)
    lines = [
        HEADER,
        "Yokohama,Japan,35.44,139.64,Odesa,Ukraine,46.48,30.73",
        "Odesa,Ukraine,46.48,30.73,Yokohama,Japan,35.44,139.64",
        "Constanţa,Romania,44.1767,28.6508,Yokohama,Japan,35.44,139.64",
        "Lyon,France,45.77,4.84,Lyon,France,45.77,4.84",
    ]
    path = write(tmp_path, lines)
    before = counts()
    dry = run(path, "--dry-run", "--skip-bad-rows")
    assert counts() == before
    real = run(path, "--skip-bad-rows")
    figures = [line.replace("would be", "were") for line in dry.splitlines()[:5]]
    assert figures == real.splitlines()[:5]
    assert "Cities: 2 were created, 1 matched" in real
    assert City.objects.count() == 3 and Tie.objects.count() == 2


def test_the_import_is_one_attributable_change_in_the_edit_history(tmp_path):
    user = make_user(username="curator")
    path = write(tmp_path, [HEADER, "Yokohama,Japan,35.44,139.64,Lyon,France,45.77,4.84"])
    run(path, "--user", "curator")
    reasons = {
        (record.history_user, record.history_change_reason)
        for model in (City, Tie, TieCitation, CityCitation, Source)
        for record in model.history.all()
    }
    assert reasons == {(user, "import_ties: ties.csv (1 rows)")}


def test_planning_reads_the_database_in_a_fixed_number_of_queries(
    tmp_path, django_assert_num_queries
):
    make_city(name="Odesa", country="UA", latitude=46.48, longitude=30.73)
    source = make_source(url="https://example.org/list")

    def plan(n):
        lines = [HEADER] + [
            f"Town {i},Japan,35.{i},139.6,Odesa,Ukraine,46.48,30.73" for i in range(n)
        ]
        table = read_table(write(tmp_path, lines))
        return build_import_plan(table, resolve_mapping(table.header), source)

    for n in (2, 40):
        # alternate names; the gazetteer's search names; cities; the source's city
        # citations; ties; the source's tie citations; sources with an address.
        with django_assert_num_queries(7):
            assert plan(n).summary()["ties_created"] == n


def test_an_uploaded_file_is_planned_for_preview_then_applied_once():
    upload = io.BytesIO(
        f"{HEADER}\nYokohama,Japan,35.44,139.64,Lyon,France,45.77,4.84\n"
        f"Lyon,France,45.77,4.84,Lyon,France,45.77,4.84\n".encode()
    )
    table = read_table(upload, name="partners.csv")
    source, is_new = dataset_source()
    plan = build_import_plan(table, resolve_mapping(table.header), source, source_is_new=is_new)
    assert [(o.row, o.action) for o in plan.outcomes] == [(2, "created"), (3, "rejected")]
    assert plan.summary()["cities_created"] == 2 and City.objects.count() == 0
    with pytest.raises(ImportRejected):
        apply_import(plan)
    plan.skip_bad_rows = True
    result = apply_import(plan)
    assert result.written == plan.summary() and Tie.objects.count() == 1
    assert result.change_reason == "import_ties: partners.csv (2 rows)"
    with pytest.raises(ValueError, match="applied already"):
        apply_import(plan)


def test_a_new_source_needs_a_title(tmp_path):
    path = write(tmp_path, [HEADER, "Yokohama,Japan,35.44,139.64,Lyon,France,45.77,4.84"])
    with pytest.raises(CommandError, match="give its title"):
        run(path, "--source-slug", "city-register")
    assert dataset_source()[0].slug == "wikipedia-twin-towns"


@pytest.mark.skipif(not SHARED_FILE.exists(), reason="data/twin-cities-wikipedia.csv is missing")
def test_slice_of_the_wikipedia_file_gives_yokohama_its_partners(tmp_path):
    with SHARED_FILE.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    chosen = body[:2000] + [row for row in body[2000:] if "Yokohama" in (row[0], row[4])]
    path = tmp_path / "slice.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *chosen])
    run(path, "--skip-bad-rows")
    yokohama = City.objects.get(name="Yokohama", country="JP")
    expected = {"Odesa", "Manila", "San Diego", "Vancouver", "Lyon", "Mumbai", "Shanghai"}
    assert expected <= set(partners(yokohama))
    assert "Constanța" in partners(yokohama)
    assert City.objects.filter(folded_name="constanta").count() == 1
    before = counts()
    run(path, "--skip-bad-rows")
    assert counts() == before


# The gazetteer: imported cities linked to GeoNames --------------------------------------------


def test_gazetteer_links_a_city_fills_its_coordinates_and_cites_geonames():
    odesa = make_city(name="Odessa", country="UA")  # the English spelling GeoNames also lists
    odessa_texas = make_city(name="Odessa", country="US", latitude=31.85, longitude=-102.37)
    out = io.StringIO()
    call_command("link_gazetteer", stdout=out)
    odesa.refresh_from_db()
    odessa_texas.refresh_from_db()
    assert (odesa.geonames_id, round(odesa.latitude, 2)) == (698740, 46.49)
    assert odesa.citations.get().source.slug == "geonames-cities"
    assert odessa_texas.geonames_id == 5527554  # the namesake abroad is another place
    # It had coordinates; its population now comes from GeoNames, which it cites.
    assert odessa_texas.population > 90_000
    assert odessa_texas.citations.get().locator == "geonames 5527554"
    assert "2 cities linked" in out.getvalue()
    before = counts()
    call_command("link_gazetteer", stdout=io.StringIO())
    assert counts() == before


def test_gazetteer_search_finds_a_city_by_any_spelling_largest_first():
    from cities import gazetteer

    assert gazetteer.search("Одеса", country="UA")[0].name == "Odesa"
    assert [e.country for e in gazetteer.search("odessa")][:2] == ["UA", "US"]
    assert gazetteer.entry(698740).name == "Odesa" and gazetteer.entry(1) is None


def test_an_unstated_kind_confirms_a_twinning_but_not_a_memorandum(tmp_path):
    yokohama = make_city(name="Yokohama", country="JP", latitude=35.44, longitude=139.64)
    odesa = make_city(name="Odesa", country="UA", latitude=46.48, longitude=30.73)
    lyon = make_city(name="Lyon", country="FR", latitude=45.77, longitude=4.84)
    mou = make_tie(yokohama, odesa, kind="mou")
    sister = make_tie(yokohama, lyon, kind="sister")
    path = write(
        tmp_path,
        [
            HEADER,
            "Yokohama,Japan,35.44,139.64,Odesa,Ukraine,46.48,30.73",
            "Yokohama,Japan,35.44,139.64,Lyon,France,45.77,4.84",
        ],
    )
    run(path)
    # The list is evidence of a twinning: it adds to the sister tie, and beside the
    # memorandum it becomes a tie of its own rather than a citation the memorandum lacks.
    assert sister.citations.get().locator == "row 3"
    assert not mou.citations.exists()
    assert sorted(Tie.objects.between(yokohama, odesa).values_list("kind", flat=True)) == [
        "mou",
        "unspecified",
    ]


# Batches: bounded memory, other writers between batches, an import resumed ------------------


def generated_rows(n, pool=120):
    """A file of `n` rows tying `pool` cities far apart from one another, each row a pair of
    its own, except that a row in 25 lists from the other end the pair of the row 10 above,
    and a row in 40 (from the 80th on) says sister for the pair of the row 45 above."""
    places = [(f"Town {i}", -60 + (i // 12) * 10, -170 + (i % 12) * 25) for i in range(pool)]
    pairs = [(a, b) for a in range(pool) for b in range(a + 1, pool)]
    chosen, lines = [], [f"{HEADER},kind"]
    for i in range(n):
        kind = ""
        if i % 25 == 24:
            b, a = chosen[i - 10]
        elif i % 40 == 39 and i >= 45:
            (a, b), kind = chosen[i - 45], "sister"
        else:
            a, b = pairs[i]
        chosen.append((a, b))
        (name_a, lat_a, lng_a), (name_b, lat_b, lng_b) = places[a], places[b]
        lines.append(f"{name_a},Japan,{lat_a},{lng_a},{name_b},Japan,{lat_b},{lng_b},{kind}")
    return lines


def elsewhere(work):
    """What `work()` gives on another database connection: a thread has its own."""
    found = {}

    def target():
        try:
            found["value"] = work()
        except Exception as error:  # noqa: BLE001 - handed back to the test
            found["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    if "error" in found:
        raise found["error"]
    return found["value"]


@pytest.mark.django_db(transaction=True)
def test_each_batch_is_committed_on_its_own_so_other_writers_get_through(tmp_path, monkeypatch):
    monkeypatch.setattr(importing, "BATCH_ROWS", 40)
    monkeypatch.setattr(Progress, "REPORT_SECONDS", 0)
    path = write(tmp_path, generated_rows(150))
    between = []

    def report(phase, done, total, unit):
        # Told after each batch is written: another connection sees it, and may write.
        if phase == "Writing ties" and 0 < done < total:
            between.append(elsewhere(lambda: (Tie.objects.count(), make_source().history.count())))

    run_import(path, progress=Progress(report=report))

    # Batches of 40 rows: 3 written before the last, each seen at once from elsewhere (rows
    # listing a pair again add no tie), and a write from elsewhere went through after each.
    assert between == [(39, 1), (76, 1), (114, 1)]
    assert Tie.objects.count() == 142


def test_an_import_stopped_half_way_is_completed_by_running_the_file_again(tmp_path, monkeypatch):
    monkeypatch.setattr(importing, "BATCH_ROWS", 40)
    path = write(tmp_path, generated_rows(150))
    planned = run_import(path, dry_run=True).summary()
    write_batch = importing.write_batch
    written = []

    def fail_third(book, batch, **options):
        written.append(batch)
        if len(written) == 3:
            raise RuntimeError("the server went away")
        write_batch(book, batch, **options)

    monkeypatch.setattr(importing, "write_batch", fail_third)
    with pytest.raises(RuntimeError, match="went away"):
        run(path)

    # The cities and the first two batches of ties are written, whole; the third is not.
    assert City.objects.count() == planned["cities_created"]
    assert Tie.objects.count() == 76
    job = ImportJob.objects.get()
    assert (job.status, job.is_active) == ("failed", False)  # the lock is free again

    monkeypatch.setattr(importing, "write_batch", write_batch)
    output = run(path)

    assert "0 were created" in output.splitlines()[1]  # the cities: all there already
    tie_citations = planned["citations_created"] - planned["cities_created"]
    assert {
        "cities": City.objects.count(),
        "ties": Tie.objects.count(),
        "tie citations": TieCitation.objects.count(),
        "alternate names": AlternateName.objects.count(),
        "sister ties": Tie.objects.filter(kind="sister").count(),
    } == {
        "cities": planned["cities_created"],
        "ties": planned["ties_created"],
        "tie citations": tie_citations,
        "alternate names": planned["alternate_names_created"],
        "sister ties": 2,  # one stated in the batch after its tie's, one in the failed one
    }
    # Every record created has its creation in the edit history.
    for model in (City, Tie, TieCitation, CityCitation, Source):
        assert model.history.filter(history_type="+").count() == model.objects.count()
    before = counts()
    assert "0 were created" in run(path)
    assert counts() == before


def test_a_kind_stated_in_a_later_batch_is_written_as_a_change_of_the_tie(tmp_path, monkeypatch):
    monkeypatch.setattr(importing, "BATCH_ROWS", 2)
    lines = [
        f"{HEADER},kind",
        "Yokohama,Japan,35.44,139.64,Lyon,France,45.77,4.84,",
        "Yokohama,Japan,35.44,139.64,Odesa,Ukraine,46.48,30.73,",
        "Lyon,France,45.77,4.84,Yokohama,Japan,35.44,139.64,sister",
    ]
    plan = run_import(write(tmp_path, lines))

    tie = Tie.objects.get(kind="sister")
    assert [o.action for o in plan.outcomes] == ["created", "created", "repeated"]
    assert [r.history_type for r in tie.history.order_by("history_id")] == ["+", "~"]
    assert plan.summary()["ties_updated"] == 0  # a tie of this import, not of the atlas


def test_memory_grows_far_less_than_the_file(tmp_path):
    """Peak Python allocations of importing N and 4N rows: the rows, their ties, citations
    and history are held a batch at a time, so the larger file costs little more."""

    def peak(n):
        path = write(tmp_path, generated_rows(n), name=f"rows-{n}.csv")
        gc.collect()
        tracemalloc.start()
        try:
            with transaction.atomic():
                run_import(path)
                created = Tie.history.filter(history_type="+").count()
                assert created == Tie.objects.count() > n * 0.9
                transaction.set_rollback(True)  # the next import starts from the same atlas
        finally:
            _current, top = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return top

    peak(100)  # what the first import of a process allocates once (caches, lazy imports)
    small, large = peak(1000), peak(4000)
    # Were the rows' records held for the whole file, four times the rows would take about
    # four times the memory; a batch at a time, what grows is the index of the pairs seen
    # (a few hundred bytes a row).
    assert large / small < 2, (small, large)
