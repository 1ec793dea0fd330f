"""Search by any part of any name reads an index — a trigram table on SQLite, `pg_trgm`
indexes on PostgreSQL — and the index follows every write to a city's names."""

import pytest
from django.db import connection

from cities.models import NAME_INDEX, AlternateName, City, SearchName
from cities.text import fold
from tests.conftest import make_city

pytestmark = pytest.mark.django_db

SQLITE = connection.vendor == "sqlite"


def found(text):
    return sorted(City.objects.search(text).values_list("name", flat=True))


def plan(queryset):
    """The database's plan for `queryset`, as text."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if SQLITE:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        else:
            add_names(100, 100)
            # What autovacuum does on the atlas: new trigram entries leave the GIN indexes'
            # pending lists (which the planner would count as read in full), statistics.
            for index in ("cities_city_folded_name", "cities_searchname_folded"):
                cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [f"{index}_trgm"])
            cursor.execute("ANALYZE cities_city, cities_alternatename, cities_searchname")
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def add_names(n_cities, n_names):
    """Cities with many search names: among a handful of rows, PostgreSQL reads a whole
    index rather than the trigram index, as it would not on the atlas."""
    cities = City.objects.bulk_create(
        City(name=f"Place {i}", folded_name=f"place {i}", slug=f"place-{i}")
        for i in range(n_cities)
    )
    SearchName.objects.bulk_create(
        SearchName(city=city, name=f"Ort {i}", folded=f"ort {i} {city.pk}")
        for city in cities
        for i in range(n_names)
    )


def test_a_search_of_three_letters_or_more_reads_the_trigram_index():
    odesa = make_city(name="Odesa")
    AlternateName.objects.create(city=odesa, name="Odessa")
    SearchName.objects.create(city=odesa, name="Odeza", folded="odeza")
    text = plan(City.objects.search("odes"))
    if SQLITE:
        assert f"SCAN {NAME_INDEX} VIRTUAL TABLE" in text
        assert "SCAN cities_city" not in text  # each match is read by its id
    else:
        for index in ("cities_city_folded_name", "cities_alternatename_folded"):
            assert f"{index}_trgm" in text
        assert "cities_searchname_folded_trgm" in text
        assert "Seq Scan" not in text


def test_a_search_of_one_or_two_letters_reads_the_ordinary_indexes():
    make_city(name="Nyon")
    text = plan(City.objects.search("ny"))
    if SQLITE:
        assert "USING COVERING INDEX cities_city_folded_name" in text
        assert "(folded_name>? AND folded_name<?)" in text
        assert "(folded>? AND folded<?)" in text
    else:
        assert "Seq Scan" not in text


def test_one_or_two_letters_match_the_start_of_a_name():
    make_city(name="Nyon")
    make_city(name="Albany")
    odesa = make_city(name="Odesa")
    AlternateName.objects.create(city=odesa, name="Одеса")
    assert found("ny") == ["Nyon"]
    assert found("N") == ["Nyon"]
    assert found("Од") == ["Odesa"]
    assert found("an") == []


def test_the_index_follows_every_write_to_the_names():
    odesa, varna = make_city(name="Odesa"), make_city(name="Varna")
    assert found("odes") == ["Odesa"]

    odesa.name = "Odessa City"
    odesa.save()
    assert found("odesa") == []
    assert found("ssa ci") == ["Odessa City"]

    AlternateName.objects.create(city=odesa, name="Одеса")
    assert found("odesa") == ["Odessa City"]
    AlternateName.objects.filter(city=odesa).update(city=varna)  # a merge moves names
    assert found("odesa") == ["Varna"]
    AlternateName.objects.filter(city=varna).delete()
    assert found("odesa") == []

    SearchName.objects.bulk_create([SearchName(city=varna, name="Warna", folded="warna")])
    assert found("warn") == ["Varna"]
    SearchName.objects.filter(city=varna).update(folded="barna")
    assert found("warn") == []
    assert found("barn") == ["Varna"]

    City.objects.filter(pk=odesa.pk).update(folded_name="odesa")
    assert found("odesa") == ["Odessa City"]

    varna_id = varna.pk
    varna.delete()
    assert found("barn") == []
    if SQLITE:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {NAME_INDEX} WHERE city_id = %s", [varna_id])
            assert cursor.fetchone() == (0,)


def test_search_finds_what_reading_every_name_finds():
    names = {
        "San Francisco": ["SF"], "Busan": ["부산"], "São Paulo": ["Sampa"], "Hasselt": [],
        "New York City": ["Nueva York"], "Yokohama": ["横浜"], "Santiago": ["Santiago de Chile"],
    }  # fmt: skip
    for name, others in names.items():
        city = make_city(name=name)
        for other in others:
            AlternateName.objects.create(city=city, name=other)
    every_name = {name: [fold(name), *map(fold, others)] for name, others in names.items()}

    def matches(folded, name):
        # Trigrams need three letters; fewer match the start of a name.
        return folded in name if len(folded) >= 3 else name.startswith(folded)

    for text in ["san", "SAN", "sa", "s", "ao pa", "york", "ew yo", "hama", "busa", "q", "sf"]:
        folded = fold(text)
        expected = [
            n for n, all_names in every_name.items() if any(matches(folded, a) for a in all_names)
        ]
        assert found(text) == sorted(expected), text


@pytest.mark.skipif(not SQLITE, reason="PostgreSQL's indexes need no triggers")
@pytest.mark.parametrize("table", ["cities_city", "cities_alternatename", "cities_searchname"])
def test_every_table_of_names_keeps_its_triggers(table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table]
        )
        triggers = {name for (name,) in cursor.fetchall()}
    # A migration that rebuilds the table on SQLite (most AlterFields do) drops its triggers:
    # it must create them again, as cities/migrations/0007_name_search_index.py does.
    expected = {f"{table}_name_index_{event}" for event in ("insert", "update", "delete")}
    assert expected <= triggers
