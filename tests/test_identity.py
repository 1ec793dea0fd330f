"""One city per place, found by any name: ranked search, GeoNames links, plain slugs for the
most prominent place, and files that name places differently."""

import io

import pytest
from django.core.management import call_command

from cities.linking import link_cities, promote_plain_slugs
from cities.models import City, LocationFlag, SearchName, SlugRedirect
from partnerships.models import Tie
from tests.conftest import make_city

pytestmark = pytest.mark.django_db

HEADER = "city1,country1,lat1,lng1,city2,country2,lat2,lng2"


def names(queryset):
    return [(c.name, c.country) for c in queryset]


def import_lines(tmp_path, lines, *args):
    path = tmp_path / "ties.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    out = io.StringIO()
    call_command("import_ties", str(path), "--skip-bad-rows", *args, stdout=out)
    return out.getvalue()


def test_search_puts_an_exact_name_first_then_prefixes_then_the_most_populous():
    make_city(name="Boulouparis", country="NC", population=3000)
    make_city(name="Paris", country="US", population=25_000)
    make_city(name="Paris", country="FR", population=2_100_000)
    make_city(name="Parish Town", country="GB")

    assert names(City.objects.ranked("paris")) == [
        ("Paris", "FR"),
        ("Paris", "US"),
        ("Parish Town", "GB"),
        ("Boulouparis", "NC"),
    ]


def test_a_name_the_gazetteer_knows_finds_the_city_but_is_not_one_it_is_known_by(client):
    odesa = make_city(name="Odesa", country="UA", population=1_010_000)
    make_city(name="Odessa", country="US", population=100_000)
    SearchName.objects.create(city=odesa, name="Odessa", folded="odessa")
    SearchName.objects.create(city=odesa, name="Одеса", folded="odesa")

    assert names(City.objects.ranked("Odessa")) == [("Odesa", "UA"), ("Odessa", "US")]
    assert names(City.objects.ranked("Одеса")) == [("Odesa", "UA")]
    # The picker and the list page rank the same way.
    picked = client.get("/compare/cities.json", {"q": "Odessa"}).json()["results"]
    assert [c["country"] for c in picked] == ["UA", "US"]
    page = client.get("/cities/", {"q": "odessa"})
    assert [c.country for c in page.context["page"]] == ["UA", "US"]
    # Search names are not shown as "also known as" on the profile.
    assert "Одеса" not in client.get("/cities/odesa/").content.decode()


@pytest.mark.parametrize("n", [2, 40])
def test_the_picker_query_count_does_not_grow(client, django_assert_num_queries, n):
    for i in range(n):
        city = make_city(name=f"Taipei district {i}", country="TW")
        SearchName.objects.create(city=city, name=f"Taibei {i}", folded=f"taibei {i}")
    # 1 the ten best matches, ranked.
    with django_assert_num_queries(1):
        response = client.get("/compare/cities.json", {"q": "taip"})
    assert len(response.json()["results"]) == min(n, 10)


def test_linking_takes_the_gazetteers_id_population_and_names_and_cites_them():
    odesa = make_city(name="Odesa", country="UA", latitude=46.48, longitude=30.73)

    report = link_cities()

    odesa.refresh_from_db()
    assert odesa.geonames_id == 698740 and odesa.population > 900_000
    assert odesa.population_year is None  # GeoNames does not say of which year
    assert odesa.citations.get().locator == "geonames 698740"
    folded = set(odesa.search_names.values_list("folded", flat=True))
    assert {"odessa"} <= folded and odesa.alternate_names.count() == 0
    assert report.linked == 1
    # Linking again changes nothing.
    link_cities()
    assert odesa.citations.count() == 1


def test_coordinates_in_another_country_are_corrected_when_the_name_is_certain():
    # Liverpool, New South Wales drawn in England; Rome, Georgia drawn on Rome, Italy.
    liverpool = make_city(name="Liverpool", country="AU", latitude=53.41, longitude=-2.99)
    rome = make_city(name="Rome", country="US", latitude=41.89, longitude=12.48)

    report = link_cities()

    liverpool.refresh_from_db()
    rome.refresh_from_db()
    assert round(liverpool.latitude) == -34 and liverpool.location_flag == ""
    assert liverpool.citations.get().source.slug == "geonames-cities"
    # Two American Romes of similar size: nothing decides which, so a curator does.
    assert rome.location_flag == LocationFlag.OUTSIDE_COUNTRY
    assert (rome.latitude, rome.geonames_id) == (41.89, None)
    assert report.contradictions_found == 2 and len(report.corrected) == 1


def test_the_plain_slug_of_a_shared_name_goes_to_the_most_populous_place(client):
    ontario = make_city(name="London", country="CA", population=420_000)
    england = make_city(name="London", country="GB", population=8_900_000)
    assert (ontario.slug, england.slug) == ("london", "london-2")

    promote_plain_slugs()

    ontario.refresh_from_db()
    england.refresh_from_db()
    assert (england.slug, ontario.slug) == ("london", "london-ca")
    assert SlugRedirect.objects.get(slug="london-2").city == england
    assert client.get("/cities/london/").context["city"] == england


def test_an_import_matches_names_written_differently(tmp_path):
    sobotka = make_city(name="Sobótka", country="PL", latitude=50.899, longitude=16.744)
    krakow = make_city(name="Kraków", country="PL", latitude=50.06, longitude=19.94)
    SearchName.objects.create(city=krakow, name="Cracow", folded="cracow")
    mogilev = make_city(name="Mogilev", country="BY", latitude=53.91, longitude=30.34)
    lyon = make_city(name="Lyon", country="FR", latitude=45.76, longitude=4.84)
    before = City.objects.count()

    out = import_lines(
        tmp_path,
        [
            "Gmina Sobótka,Poland,50.90,16.75,Lyon,France,45.76,4.84",
            "Cracow,Poland,50.06,19.94,Lyon,France,45.76,4.84",
            "Mogilyov,Belarus,53.90,30.33,\u200eLyon  ,France,45.76,4.84",
        ],
    )

    assert City.objects.count() == before, out
    for city in (sobotka, krakow, mogilev):
        assert Tie.objects.for_city(city).get().partner_of(city) == lyon
    # Invisible marks and doubled spaces never reach a name.
    assert not lyon.alternate_names.exists()


def test_a_country_coded_differently_is_matched_and_flagged_never_recoded(tmp_path):
    pointe = make_city(name="Pointe-à-Pitre", country="GP", latitude=16.241, longitude=-61.533)
    make_city(name="Lyon", country="FR", latitude=45.76, longitude=4.84)

    out = import_lines(tmp_path, ["Pointe-à-Pitre,France,16.24,-61.53,Lyon,France,45.76,4.84"])

    pointe.refresh_from_db()
    assert City.objects.count() == 2
    assert (pointe.country, pointe.location_flag) == ("GP", LocationFlag.COUNTRY_DIFFERS)
    assert "1 cities matched across a country border" in out.replace(",", "")


def test_same_named_towns_the_gazetteer_keeps_apart_stay_two_cities(tmp_path):
    # Malsch near Karlsruhe and Malsch near Heidelberg, 48 km apart.
    import_lines(
        tmp_path,
        [
            "Malsch,Germany,48.884,8.334,Lyon,France,45.76,4.84",
            "Malsch,Germany,49.247,8.683,Lyon,France,45.76,4.84",
        ],
    )

    assert City.objects.filter(name="Malsch").count() == 2


def test_the_dry_run_says_which_new_cities_lie_close_to_a_similar_name(tmp_path):
    make_city(name="Veria", country="GR", latitude=40.52, longitude=22.20)

    out = import_lines(tmp_path, ["Veroia,Greece,40.53,22.21,Lyon,France,45.76,4.84"], "--dry-run")

    assert "1 of the new cities lie close to an existing city of a similar name" in out
    assert "Veroia (GR) — Veria (GR)" in out


def test_a_namesake_drawn_on_a_city_abroad_stays_its_own_city(tmp_path):
    # The Wikipedia list draws London, Ontario on London, England: two places, not one.
    import_lines(
        tmp_path,
        [
            "London,Canada,51.5072,-0.1275,Nanjing,China,32.06,118.78",
            "London,England,51.5072,-0.1275,Beijing,China,39.91,116.40",
        ],
    )

    assert sorted(City.objects.filter(name="London").values_list("country", flat=True)) == [
        "CA",
        "GB",
    ]
