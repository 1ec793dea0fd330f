"""The statistics page, its CSV files and the country pages: the numbers a reader sees are the
atlas's own counts (a tie once for each country it touches, undated ties counted as such),
every chart has its table and its file, and each page runs the same few queries however many
ties there are."""

import csv
import datetime
import io
import re

import pytest

from cities.models import City
from cities.text import fold
from partnerships.models import Membership, Tie
from partnerships.statistics import shade_bounds, share_text
from tests.conftest import make_city, make_organization, make_tie

pytestmark = pytest.mark.django_db


def small_atlas():
    """Eight cities in four countries and eight ties, three of them without a known start:

    JP–US Yokohama–New York (sister, 1957), Kobe–New York (friendship, 1960),
          Osaka–Boston (partner, undated), Yokohama–Boston (friendship, 2001)
    JP–UA Yokohama–Odesa (memorandum, 1965)
    JP–JP Osaka–Kobe (sister, undated)
    UA–FR Kyiv–Paris (sister, 1997)
    US–FR Boston–Paris (partner, undated)

    C40 has Yokohama, New York and Osaka; UCLG-ASPAC, a branch of UCLG, has Kobe; UCLG
    itself has Paris."""
    c = {
        slug: make_city(name=name, slug=slug, country=country)
        for slug, name, country in [
            ("yokohama", "Yokohama", "JP"),
            ("osaka", "Osaka", "JP"),
            ("kobe", "Kobe", "JP"),
            ("new-york-city", "New York City", "US"),
            ("boston", "Boston", "US"),
            ("odesa", "Odesa", "UA"),
            ("kyiv", "Kyiv", "UA"),
            ("paris", "Paris", "FR"),
        ]
    }
    for a, b, kind, start in [
        ("yokohama", "new-york-city", "sister", "1957"),
        ("kobe", "new-york-city", "friendship", "1960"),
        ("osaka", "boston", "partner", ""),
        ("yokohama", "boston", "friendship", "2001"),
        ("yokohama", "odesa", "mou", "1965"),
        ("osaka", "kobe", "sister", ""),
        ("kyiv", "paris", "sister", "1997"),
        ("boston", "paris", "partner", ""),
    ]:
        make_tie(c[a], c[b], kind=kind, start=start)
    c40 = make_organization(name="C40 Cities", slug="c40", acronym="C40")
    uclg = make_organization(name="United Cities and Local Governments", slug="uclg")
    aspac = make_organization(
        name="UCLG Asia-Pacific", slug="uclg-aspac", kind="regional_branch", parent=uclg
    )
    for organization, slug in [
        (c40, "yokohama"),
        (c40, "new-york-city"),
        (c40, "osaka"),
        (aspac, "kobe"),
        (uclg, "paris"),
    ]:
        Membership.objects.create(organization=organization, city=c[slug])
    return c


def larger_atlas(n_ties=80):
    """Ten times the small atlas's ties, among 40 cities in eight countries (a quarter of
    them undated, some within one country), and memberships of three networks: built in
    bulk, as a benchmark would."""
    codes = ["JP", "US", "UA", "FR", "DE", "CN", "BR", "KR"]
    City.objects.bulk_create(
        City(
            name=f"Town {i:02}",
            slug=f"town-{i:02}",
            folded_name=fold(f"Town {i:02}"),
            country=codes[i % len(codes)],
        )
        for i in range(40)
    )
    towns = list(City.objects.filter(slug__startswith="town-").order_by("slug"))
    pairs = [(a, b) for a in range(40) for b in range(a + 1, 40)][:n_ties]
    ties = []
    for i, (a, b) in enumerate(pairs):
        dated = {}
        if i % 4:
            year = 1950 + i % 70
            dated = {
                "start": str(year),
                "start_lower": datetime.date(year, 1, 1),
                "start_upper": datetime.date(year, 12, 31),
            }
        ties.append(Tie(city_a=towns[a], city_b=towns[b], kind="sister", **dated))
    Tie.objects.bulk_create(ties)
    parent = make_organization(name="Parent network", slug="parent")
    for n, organization in enumerate(
        [parent, make_organization(name="Branch", slug="branch", parent=parent), None]
    ):
        organization = organization or make_organization(name=f"Network {n}")
        Membership.objects.bulk_create(
            Membership(organization=organization, city=town) for town in towns[n::3]
        )


def text_of(html):
    """The words of an HTML fragment, as a reader sees them."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&nbsp;", " ").split())


def row_with(html, href):
    """The text of the first table row that links to `href`."""
    for row in re.findall(r"<tr[^>]*>.*?</tr>", html, flags=re.S):
        if f'href="{href}"' in row:
            return text_of(row)
    raise AssertionError(f"no row links to {href}")


def section(html, heading_id):
    """The HTML of the <section> whose heading has the id `heading_id`."""
    start = html.index(f'id="{heading_id}"')
    return html[start : html.index("</section>", start)]


def read_csv(response):
    return list(csv.reader(io.StringIO(response.content.decode())))


# The statistics page ---------------------------------------------------------------------------


def test_ties_by_country_count_each_tie_once_for_each_country_it_touches(client):
    small_atlas()
    html = client.get("/statistics/").content.decode()
    # Rank, country, ties, abroad, within, partner countries, cities with ties.
    assert row_with(html, "/countries/JP/") == "1 Japan 6 5 1 2 3"
    assert row_with(html, "/countries/US/") == "2 United States of America 5 5 0 2 2"
    # France and Ukraine have as many ties: they share the rank, in order of name.
    assert row_with(html, "/countries/FR/") == "3 France 2 2 0 2 1"
    assert row_with(html, "/countries/UA/") == "3 Ukraine 2 2 0 2 2"
    assert "Ties 8" in text_of(html)  # the atlas's ties, each once
    assert "Countries with ties 4" in text_of(html)


def test_the_map_shades_each_country_links_it_and_names_its_count(client):
    small_atlas()
    html = client.get("/statistics/").content.decode()
    shape = re.compile(
        r'<a href="/countries/(\w\w)/" tabindex="-1">'
        r'<title>([^<]*)</title><path class="([\w-]+)"'
    )
    shapes = {code: (title, shade) for code, title, shade in shape.findall(html)}
    assert len(shapes) > 150  # one path per country Natural Earth draws at 1:110m
    assert shapes["JP"] == ("Japan: 6 ties", "shade-5")
    assert shapes["FR"] == ("France: 2 ties", "shade-3")
    assert shapes["BR"] == ("Brazil: no ties recorded", "shade-0")
    legend = text_of(html.split('class="legend choropleth__legend"')[1].split("</ul>")[0])
    assert legend.endswith("no ties recorded 1 2–4 5 or more")
    # The Content-Security-Policy allows no style attribute: shades are classes.
    assert " style=" not in html


def test_country_pairs_list_the_most_tied_pairs_with_links_to_their_ties(client):
    small_atlas()
    html = client.get("/statistics/").content.decode()
    pairs = section(html, "pairs-heading")
    assert "4 pairs of countries have at least one" in text_of(pairs)
    assert row_with(pairs, "/ties/?country=JP&amp;partner_country=US") == (
        "1 Japan – United States of America 4"
    )
    assert row_with(pairs, "/ties/?country=JP&amp;partner_country=UA") == "2 Japan – Ukraine 1"
    assert 'aria-label="1 tie between Japan and Ukraine: list them"' in pairs
    # The matrix: Japan's row (columns JP, US, FR, UA), the ties within Japan on the diagonal.
    matrix = pairs.split('class="data stats-matrix"')[1]
    assert row_with(matrix, "/countries/JP/") == "Japan JP 1 4 0 1"


def test_ties_by_kind_show_every_kind_with_its_count(client):
    small_atlas()
    html = section(client.get("/statistics/").content.decode(), "kinds-heading")
    assert row_with(html, "/ties/?kind=sister") == "Sister city 3 38 %"
    assert row_with(html, "/ties/?kind=partner") == "Partner city 2 25 %"
    assert row_with(html, "/ties/?kind=friendship") == "Friendship city 2 25 %"
    assert "Other 0 0 %" in text_of(html)


def test_ties_by_decade_say_how_many_have_no_known_start(client):
    small_atlas()
    html = section(client.get("/statistics/").content.decode(), "decades-heading")
    assert "3 ties (38 %) have no known start" in text_of(html)
    assert "the 5 ties with a known start are counted below" in text_of(html)
    assert row_with(html, "/ties/?decade=1950") == "1950s 1 12 %"
    assert row_with(html, "/ties/?decade=1960") == "1960s 2 25 %"
    assert "1970s 0 0 %" in text_of(html)  # an empty decade stays on the time scale
    assert row_with(html, "/ties/?decade=unknown") == "No known start 3 38 % not on a time scale"


def test_the_most_connected_cities_and_networks_are_ranked(client):
    small_atlas()
    html = client.get("/statistics/").content.decode()
    cities = section(html, "cities-heading")
    assert row_with(cities, "/cities/boston/") == "1 Boston United States of America 3"
    assert row_with(cities, "/cities/yokohama/") == "1 Yokohama Japan 3"
    # Equal counts share a rank: Kobe, New York, Osaka and Paris are third.
    assert row_with(cities, "/cities/kobe/") == "3 Kobe Japan 2"
    assert row_with(cities, "/cities/odesa/") == "7 Odesa Ukraine 1"
    networks = section(html, "networks-heading")
    assert row_with(networks, "/organizations/c40/") == "1 C40 Cities C40 City network 3 2"


def test_an_empty_atlas_shows_its_statistics_as_nothing_recorded(client):
    html = client.get("/statistics/").content.decode()
    assert "0 ties (0 %) have no known start" in text_of(html)
    assert "No tie in the atlas has a known start yet" in html


def test_shares_never_round_to_none_or_all_when_they_are_not():
    assert share_text(1, 1000) == "< 1 %"
    assert share_text(999, 1000) == "> 99 %"
    assert share_text(1000, 1000) == "100 %"
    assert share_text(0, 1000) == "0 %"
    assert share_text(0, 0) == "0 %"


def test_shades_step_in_round_numbers_from_one_to_the_largest_count():
    assert shade_bounds([]) == [1]
    assert shade_bounds([1, 1]) == [1]
    assert shade_bounds([3, 1]) == [1, 2]
    assert shade_bounds([4196, 12, 1]) == [1, 5, 20, 200, 1000]


# CSV files ---------------------------------------------------------------------------------------


def test_every_table_of_the_page_links_to_its_csv_file(client):
    html = client.get("/statistics/").content.decode()
    for name in ["countries", "country-pairs", "kinds", "decades", "cities", "networks"]:
        assert f'href="/statistics/{name}.csv"' in html
        response = client.get(f"/statistics/{name}.csv")
        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"] == (
            f'attachment; filename="citydiplomacy-{name}.csv"'
        )


def test_countries_and_pairs_csv_hold_the_pages_numbers(client):
    small_atlas()
    rows = read_csv(client.get("/statistics/countries.csv"))
    assert rows[0] == [
        "country", "country_name", "ties", "ties_abroad", "ties_within", "partner_countries",
        "cities_with_ties",
    ]  # fmt: skip
    assert rows[1:] == [
        ["JP", "Japan", "6", "5", "1", "2", "3"],
        ["US", "United States of America", "5", "5", "0", "2", "2"],
        ["FR", "France", "2", "2", "0", "2", "1"],
        ["UA", "Ukraine", "2", "2", "0", "2", "2"],
    ]
    pairs = read_csv(client.get("/statistics/country-pairs.csv"))
    assert pairs[0] == ["country_a", "country_a_name", "country_b", "country_b_name", "ties"]
    assert pairs[1] == ["JP", "Japan", "US", "United States of America", "4"]
    # Every pair, the ties within one country too.
    assert ["JP", "Japan", "JP", "Japan", "1"] in pairs
    assert len(pairs) == 1 + 5


def test_kinds_and_decades_csv_count_the_undated_as_such(client):
    small_atlas()
    kinds = read_csv(client.get("/statistics/kinds.csv"))
    assert kinds[0] == ["kind", "label", "ties"]
    assert ["mou", "Memorandum of understanding / cooperation agreement", "1"] in kinds
    decades = read_csv(client.get("/statistics/decades.csv"))
    assert decades == [
        ["decade", "label", "ties"],
        ["1950", "1950s", "1"],
        ["1960", "1960s", "2"],
        ["1970", "1970s", "0"],
        ["1980", "1980s", "0"],
        ["1990", "1990s", "1"],
        ["2000", "2000s", "1"],
        ["unknown", "no known start", "3"],
    ]


def test_cities_and_networks_csv_rank_every_row(client):
    small_atlas()
    make_tie(make_city(name="=HYPERLINK(1)", slug="formula", country="FR"), kind="other")
    cities = read_csv(client.get("/statistics/cities.csv"))
    assert cities[0] == ["rank", "city", "name", "country", "ties"]
    assert cities[1] == ["1", "boston", "Boston", "US", "3"]
    assert cities[2:4] == [
        ["1", "yokohama", "Yokohama", "JP", "3"],
        ["3", "kobe", "Kobe", "JP", "2"],
    ]
    # A name a spreadsheet would run as a formula is written as text.
    assert any(row[1] == "formula" and row[2] == "'=HYPERLINK(1)" for row in cities)
    networks = read_csv(client.get("/statistics/networks.csv"))
    assert networks[0] == [
        "rank", "organization", "name", "acronym", "kind", "member_cities", "member_countries",
    ]  # fmt: skip
    assert networks[1] == ["1", "c40", "C40 Cities", "C40", "city_network", "3", "2"]


def test_an_unknown_csv_file_is_a_404_that_names_the_files(client):
    response = client.get("/statistics/everything.csv")
    assert response.status_code == 404
    assert "countries.csv, country-pairs.csv" in response.content.decode()


# Country pages -----------------------------------------------------------------------------------


def test_a_country_page_groups_its_ties_abroad_by_partner_country(client):
    small_atlas()
    html = client.get("/countries/JP/").content.decode()
    assert "<h1>Japan</h1>" in html
    figures = text_of(html.split('<dl class="figures">')[1].split("</dl>")[0])
    assert "Ties 6" in figures
    assert "With cities abroad 5 in 2 countries" in figures
    assert "Within Japan 1" in figures
    assert "Cities with ties 3 of 3 in the atlas" in figures
    assert "No known start 2 ties, 33 %" in figures
    partners = section(html, "partners-heading")
    assert row_with(partners, "/ties/?country=JP&amp;partner_country=US") == (
        "1 United States of America 4 80 %"
    )
    assert row_with(partners, "/ties/?country=JP&amp;partner_country=UA") == "2 Ukraine 1 20 %"
    # The map shades partners, marks the country itself, and counts in words.
    assert '"-1"><title>Ukraine: 1 tie</title><path class="shade-' in partners
    assert '"-1"><title>Japan: 1 tie within the country</title><path class="shade-home"' in partners


def test_a_country_page_lists_its_cities_ties_within_and_networks(client):
    small_atlas()
    html = client.get("/countries/JP/").content.decode()
    cities = section(html, "cities-heading")
    assert re.findall(r'<li value="(\d+)"><a href="/cities/([\w-]+)/">', cities) == [
        ("1", "yokohama"),
        ("2", "kobe"),
        ("2", "osaka"),
    ]
    assert 'href="/cities/?country=JP&amp;ordering=-ties"' in cities
    within = section(html, "within-heading")
    assert "Ties within Japan 1" in text_of(within)
    assert "Osaka – Kobe" in text_of(within) or "Kobe – Osaka" in text_of(within)
    networks = section(html, "networks-heading")
    assert row_with(networks, "/organizations/c40/") == "C40 Cities C40 City network 2"
    # UCLG counts Kobe through its branch, as the list of cities filtered by UCLG does.
    assert row_with(networks, "/organizations/uclg/") == (
        "United Cities and Local Governments City network 1 (0 direct)"
    )
    assert row_with(networks, "/organizations/uclg-aspac/") == (
        "UCLG Asia-Pacific Regional branch 1"
    )
    assert 'href="/cities/?country=JP&amp;organization=uclg"' in networks


def test_a_country_code_in_lower_case_or_alpha_3_redirects_to_the_page(client):
    for address in ["/countries/jp/", "/countries/Jp/", "/countries/JPN/", "/countries/392/"]:
        response = client.get(address)
        assert response.status_code == 301, address
        assert response["Location"] == "/countries/JP/"


def test_an_unknown_country_code_is_a_404_that_explains_the_codes(client):
    response = client.get("/countries/ZZ/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "No country “ZZ” in the atlas" in html
    assert "two-letter ISO 3166-1 code" in html
    # A name for a code: the page offers the country by that name.
    html = client.get("/countries/japan/").content.decode()
    assert '<a href="/countries/JP/">Japan (JP)</a>' in html
    html = client.get("/countries/uk/").content.decode()
    assert '<a href="/countries/GB/">United Kingdom (GB)</a>' in html


def test_a_country_without_ties_says_so(client):
    make_city(name="McMurdo", country="AQ")
    response = client.get("/countries/AQ/")
    assert response.status_code == 200
    assert "The atlas records no tie of a city in Antarctica yet" in response.content.decode()


# Query counts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [small_atlas, larger_atlas])
def test_statistics_query_count_does_not_grow_with_the_ties(
    client, django_assert_num_queries, build
):
    build()
    # 1 ties per pair of countries (which give the countries, pairs and matrix), 2 cities
    # with ties per country, 3 ties per kind and years of start, 4 the most connected cities,
    # 5 the networks with their member cities and countries.
    with django_assert_num_queries(5):
        assert client.get("/statistics/").status_code == 200


@pytest.mark.parametrize("build", [small_atlas, larger_atlas])
def test_country_page_query_count_does_not_grow_with_the_ties(
    client, django_assert_num_queries, build
):
    build()
    # 1 its ties per partner country and kind, 2 its cities counted, 3 its most connected
    # cities, 4 the first ties within it, 5 the networks with its member cities counted.
    with django_assert_num_queries(5):
        assert client.get("/countries/JP/").status_code == 200


@pytest.mark.parametrize("build", [small_atlas, larger_atlas])
def test_csv_query_counts_do_not_grow_with_the_ties(client, django_assert_num_queries, build):
    build()
    # countries.csv: 1 ties per pair of countries, 2 cities with ties per country; the
    # others one query each.
    for name, queries in [
        ("countries", 2),
        ("country-pairs", 1),
        ("kinds", 1),
        ("decades", 1),
        ("cities", 1),
        ("networks", 1),
    ]:
        with django_assert_num_queries(queries):
            assert client.get(f"/statistics/{name}.csv").status_code == 200


def test_the_statistics_are_served_from_the_read_cache_until_a_tie_is_added(
    client, read_cache, django_assert_num_queries
):
    c = small_atlas()
    assert client.get("/statistics/").headers["X-Read-Cache"] == "miss"
    with django_assert_num_queries(1):  # the atlas version
        cached = client.get("/statistics/")
    assert cached.headers["X-Read-Cache"] == "hit"
    make_tie(c["odesa"], c["paris"], kind="friendship")
    fresh = client.get("/statistics/")
    assert fresh.headers["X-Read-Cache"] == "miss"
    assert row_with(fresh.content.decode(), "/countries/FR/") == "3 France 3 3 0 2 1"
