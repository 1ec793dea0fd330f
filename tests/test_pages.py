"""The public pages: what a visitor reads on each, helpful errors, and query counts that do
not grow with the number of rows."""

import re

import pytest
from django.urls import reverse

from cities.models import AlternateName, CityCitation, Source, Theme
from partnerships.models import (
    Event,
    EventCitation,
    Initiative,
    InitiativeCitation,
    Membership,
    MembershipCitation,
    StatedFigure,
    StatedFigureCitation,
    TieCitation,
)
from tests.conftest import make_city, make_organization, make_source, make_tie

pytestmark = pytest.mark.django_db

KINDS = ["sister", "partner", "friendship", "unspecified"]


def build_profile(n_ties):
    """Yokohama with `n_ties` sourced ties and one of every other kind of claim."""
    source = make_source(title="City diplomacy article", slug="article")
    city = make_city(
        name="Yokohama", slug="yokohama", latitude=35.44, longitude=139.64, summary="A port."
    )
    CityCitation.objects.create(city=city, source=source, locator="paragraph 1")
    city.themes.add(Theme.objects.create(name="Peace", slug="peace"))
    AlternateName.objects.create(city=city, name="横浜", language="ja", kind="native")
    for i in range(n_ties):
        partner = make_city(name=f"Partner {i:03}", latitude=10 + i % 50, longitude=i % 170)
        start = "" if i % 10 == 0 else str(1950 + i % 70)
        make_tie(city, partner, source=source, kind=KINDS[i % 4], start=start)
    organization = make_organization(name="C40 Cities", acronym="C40", slug="c40")
    membership = Membership.objects.create(organization=organization, city=city, since="2008")
    MembershipCitation.objects.create(membership=membership, source=source, locator="p. 2")
    figure = StatedFigure.objects.create(city=city, measure="sister_cities", value=53)
    StatedFigureCitation.objects.create(figure=figure, source=source, locator="p. 3")
    initiative = Initiative.objects.create(
        name="Y-Port", kind="programme", lead_city=city, start="2011"
    )
    InitiativeCitation.objects.create(initiative=initiative, source=source)
    event = Event.objects.create(kind="visit", title="Mayor of Odesa visits", city=city)
    EventCitation.objects.create(event=event, source=source, locator="p. 4")
    return city


def test_profile_shows_ties_by_kind_with_partner_date_status_and_numbered_source(client):
    city = build_profile(5)
    html = client.get(city.get_absolute_url()).content.decode()
    assert "Sister city" in html and "Partner city" in html
    assert "Partner 001" in html
    assert "1951" in html
    assert "date unknown" in html  # Partner 000 has no start date, and it shows so
    assert 'href="#source-1"' in html and 'id="source-1"' in html
    assert "City diplomacy article" in html


def test_profile_shows_stated_beside_recorded(client):
    city = build_profile(5)
    html = client.get(city.get_absolute_url()).content.decode()
    # 53 sister cities stated by the source; ties 0 and 4 are the sister ties recorded.
    assert '<span class="figure__value">53</span> <span class="figure__kind">stated</span>' in html
    assert '<span class="figure__value">2</span> <span class="figure__kind">recorded</span>' in html


def test_profile_shows_memberships_timeline_map_and_citation_formats(client):
    city = build_profile(5)
    html = client.get(city.get_absolute_url()).content.decode()
    assert "C40 Cities" in html and "2008" in html
    assert 'class="timeline__svg"' in html and "Y-Port" in html
    assert 'class="map__origin"' in html and html.count('class="map__line"') == 5
    assert "@misc{citydiplomacy-cities-yokohama" in html
    assert "&quot;type&quot;: &quot;webpage&quot;" in html
    assert "横浜" in html


def test_profile_of_a_city_with_300_ties_opens_each_group_at_its_first_ties(client):
    city = build_profile(300)
    html = client.get(city.get_absolute_url()).content.decode()
    # 75 ties of each kind: each group opens on its first ties, with its count in the
    # summary and a link to all of them in the tie list.
    assert html.count('<details class="tie-group"') == 4
    assert '<details class="tie-group" id="ties-sister" open>' in html
    assert '<span class="count">75</span>' in html
    assert f'href="/ties/?city={city.slug}&amp;kind=sister">All 75 ties of this kind' in html


@pytest.mark.parametrize("n_ties", [5, 300])
def test_profile_query_count_does_not_grow_with_ties(client, django_assert_num_queries, n_ties):
    city = build_profile(n_ties)
    # 1 city, 2 its alternate names, 3 its themes, 4 ties counted per kind and year,
    # 5 partners, their countries and those without coordinates counted, 6 the partners'
    # places for the map, 7 the first ties of each kind with both cities, 8 their citations,
    # 9 memberships with organizations, 10 their citations, 11 stated figures,
    # 12 initiatives, 13 events, 14 the citations of the city, its figures, initiatives and
    # events (one UNION), 15-17 the suggested partners' shared partners, networks and
    # themes (an 18th names the partners in the reasons when something is suggested:
    # tests/test_suggestions.py).
    with django_assert_num_queries(17):
        response = client.get(city.get_absolute_url())
    assert response.status_code == 200


def test_unknown_city_is_a_helpful_404_with_suggestions(client):
    make_city(name="Odesa", slug="odesa")
    response = client.get("/cities/odesa-ukraine/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "No city “odesa-ukraine” in the atlas" in html
    assert 'href="/cities/odesa/"' in html


def test_unknown_addresses_give_404_not_500(client):
    for path in ["/ties/999999/", "/organizations/nothing/", "/sources/nothing/", "/nowhere/"]:
        assert client.get(path).status_code == 404, path


def build_cities(n):
    source = make_source()
    hub = make_city(name="Hub", slug="hub", country="UA")
    organization = make_organization(name="Mayors for Peace", slug="mayors-for-peace")
    for i in range(n):
        city = make_city(name=f"Town {i:03}", country=["JP", "FR", "BR"][i % 3])
        make_tie(hub, city, source=source, start=str(1960 + i % 50))
        Membership.objects.create(organization=organization, city=city)
    return hub


@pytest.mark.parametrize("n", [3, 60])
def test_city_list_query_count(client, django_assert_num_queries, n):
    build_cities(n)
    # 1 count, 2 the page of cities with their tie counts, 3 organizations and 4 themes for
    # the filter form.
    with django_assert_num_queries(4):
        response = client.get("/cities/", {"ordering": "-ties"})
    assert response.status_code == 200


@pytest.mark.parametrize("n", [3, 60])
def test_search_query_count(client, django_assert_num_queries, n):
    build_cities(n)
    # 1 the page of matches, each row carrying the number of matches (no count query that
    # would run the search again), 2 alternate names of the page's cities (to show which
    # matched), 3 organizations and 4 themes for the filter form.
    with django_assert_num_queries(4) as captured:
        response = client.get("/cities/", {"q": "town"})
    assert f"<strong>{n}</strong> cities" in response.content.decode()
    assert sum("town" in query["sql"] for query in captured) == 1


@pytest.mark.parametrize("n", [3, 60])
def test_tie_search_query_count(client, django_assert_num_queries, n):
    build_cities(n)
    # 1 the page of ties with both cities, each row carrying the number of matches, 2 themes
    # for the topic filter.
    with django_assert_num_queries(2):
        response = client.get("/ties/", {"q": "town"})
    assert f"<strong>{n}</strong> ties" in response.content.decode()


def test_search_counts_its_matches_on_every_page(client):
    build_cities(120)
    html = client.get("/cities/", {"q": "town"}).content.decode()
    assert "<strong>120</strong> cities · showing 1–50" in html
    assert 'href="?q=town&amp;page=2"' in html
    html = client.get("/cities/", {"q": "town", "page": "3"}).content.decode()
    assert "<strong>120</strong> cities · showing 101–120" in html
    # Past the last page, or not a number: the last page, the first page.
    assert "showing 101–120" in client.get("/cities/", {"q": "town", "page": "9"}).content.decode()
    assert "showing 1–50" in client.get("/cities/", {"q": "town", "page": "x"}).content.decode()
    html = client.get("/cities/", {"q": "nowhere"}).content.decode()
    assert "<strong>0</strong> cities" in html and "No city matches “nowhere”" in html
    html = client.get("/ties/", {"q": "town", "page": "2"}).content.decode()
    assert "<strong>120</strong> ties · showing 51–100" in html


def test_lists_link_each_city_and_tie_to_its_page(client):
    tie = make_tie(make_city(name="Odesa", slug="odesa"), make_city(name="Varna", slug="varna"))
    html = client.get("/ties/").content.decode()
    for record in (tie, tie.city_a, tie.city_b):
        assert f'href="{record.get_absolute_url()}"' in html
    html = client.get("/cities/", {"q": "odesa"}).content.decode()
    assert f'<a href="{tie.city_a.get_absolute_url()}">Odesa</a>' in html


def test_search_finds_a_city_by_another_spelling_and_shows_the_name_that_matched(client):
    odesa = make_city(name="Odesa", slug="odesa", country="UA")
    AlternateName.objects.create(city=odesa, name="Odessa", language="ru-Latn")
    make_city(name="Constanța", slug="constanta", country="RO")
    html = client.get("/cities/", {"q": "ODESSA"}).content.decode()
    assert 'href="/cities/odesa/"' in html and "Odessa" in html
    html = client.get("/cities/", {"q": "Constanta"}).content.decode()
    assert 'href="/cities/constanta/"' in html


def test_city_list_paginates_keeping_filters_and_counts_results(client):
    build_cities(120)
    html = client.get("/cities/", {"country": "JP"}).content.decode()
    assert "<strong>40</strong> cities" in html
    html = client.get("/cities/", {"has_ties": "true"}).content.decode()
    assert "<strong>121</strong> cities" in html
    assert 'href="?has_ties=true&amp;page=2"' in html


def test_city_list_explains_a_filter_value_it_ignored(client):
    build_cities(3)
    response = client.get("/cities/", {"country": "XX", "kind": "cousin", "page": "abc"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Some filters were ignored" in html
    assert "“XX”" in html and "“cousin”" in html
    assert "<strong>4</strong> cities" in html


@pytest.mark.parametrize("n", [3, 60])
def test_tie_list_query_count_and_filters(client, django_assert_num_queries, n):
    build_cities(n)
    # 1 count, 2 the page of ties with both cities, 3 themes for the topic filter.
    with django_assert_num_queries(3):
        response = client.get("/ties/", {"decade": "1960", "country": "JP"})
    assert response.status_code == 200
    assert "Town 000" in response.content.decode()


def test_tie_list_ignores_nonsense_values(client):
    build_cities(3)
    response = client.get("/ties/", {"decade": "1066x", "status": "<script>"})
    assert response.status_code == 200
    assert "Some filters were ignored" in response.content.decode()


@pytest.mark.parametrize("n", [3, 60])
def test_organization_pages_query_counts(client, django_assert_num_queries, n):
    build_cities(n)
    # 1 count, 2 the page of organizations with parent, headquarters and member count.
    with django_assert_num_queries(2):
        assert client.get("/organizations/").status_code == 200
    # 1 organization with parent and headquarters, 2 branches, 3 themes, 4 its citations,
    # 5 members counted per country of the member city (which gives the totals too), 6 the
    # member cities' places for the map, 7 the first members, 8 their citations,
    # 9 initiatives, 10 stated figures, 11 events (no figures here, so no figure citations).
    with django_assert_num_queries(11):
        response = client.get("/organizations/mayors-for-peace/")
    assert "Town 001" in response.content.decode()


@pytest.mark.parametrize("n", [3, 60])
def test_source_list_query_count(client, django_assert_num_queries, n):
    build_cities(n)
    # 1 count, 2 the page of sources with what each supports.
    with django_assert_num_queries(2):
        response = client.get("/sources/")
    assert f"{n} ties" in response.content.decode()


def test_source_page_lists_what_it_supports(client):
    build_cities(3)
    html = client.get(Source.objects.get().get_absolute_url()).content.decode()
    assert "Hub – Town 000" in html


def test_tie_page_shows_both_cities_kind_date_and_source(client):
    source = make_source(title="Council minutes")
    tie = make_tie(
        make_city(name="Odesa"), make_city(name="Yokohama"), source=source, start="1965~"
    )
    html = client.get(tie.get_absolute_url()).content.decode()
    assert "Odesa" in html and "Yokohama" in html and "c. 1965" in html
    assert "Council minutes" in html


def build_most_connected():
    """Hub tied to 15 towns; Alpha at the first end of 3 ties, Zeta at the second end of 3.
    The towns are made in reverse order of their names, so ids do not follow names."""
    hub, alpha, zeta = (make_city(name=n, country="UA") for n in ("Hub", "Alpha", "Zeta"))
    towns = {i: make_city(name=f"Town {i:02}") for i in range(14, -1, -1)}
    for town in towns.values():
        make_tie(hub, town)
    for i in range(3):
        make_tie(towns[i], zeta)
        make_tie(alpha, towns[i + 3])


RANKED = re.compile(r'">([^<]+)</a> <span class="muted">[^<]*</span> <span class="count">(\d+)<')


def most_connected(html):
    """[(name, number of ties)] of the home page's "Most connected cities"."""
    return RANKED.findall(html.split('<ol class="ranked">')[1].split("</ol>")[0])


def test_home_ranks_the_most_connected_cities_counting_both_ends_of_their_ties(client):
    build_most_connected()
    html = client.get("/").content.decode()
    # Most ties first; equal counts by name (Town 06 before Town 14, made first).
    assert most_connected(html) == [
        ("Hub", "15"), ("Alpha", "3"), ("Zeta", "3"),
        *((f"Town {i:02}", "2") for i in range(6)),
        ("Town 06", "1"), ("Town 07", "1"), ("Town 08", "1"),
    ]  # fmt: skip


@pytest.mark.parametrize("n", [3, 60])
def test_home_query_count_and_no_count_per_city(client, django_assert_num_queries, n):
    build_cities(n)
    # 1 cities, 2 ties, 3 organizations, 4 sources counted, 5 the most connected cities
    # (one GROUP BY over both ends of every tie), 6 the networks.
    with django_assert_num_queries(6) as captured:
        response = client.get("/")
    assert "Hub" in response.content.decode()
    # No subquery counting the ties of each city in turn.
    correlated = re.compile(r'"city_[ab]_id" = \("cities_city"\."id"\)')
    assert not any(correlated.search(query["sql"]) for query in captured)


def test_home_about_and_lists_render(client):
    build_cities(3)
    for path in ["/", "/about/", "/ties/", "/organizations/", "/sources/", "/compare/"]:
        assert client.get(path).status_code == 200, path
    assert "Extended Date/Time Format" in client.get("/about/").content.decode()


def test_staff_see_edit_in_admin_and_visitors_do_not(client, admin_client):
    city = make_city(name="Taipei", slug="taipei")
    assert "Edit in admin" not in client.get(city.get_absolute_url()).content.decode()
    html = admin_client.get(city.get_absolute_url()).content.decode()
    assert f'href="{reverse("admin:cities_city_change", args=[city.pk])}"' in html


def test_source_list_counts_a_claim_cited_at_two_places_once(client):
    source = make_source(title="Wikipedia lists")
    tie = make_tie(source=source)
    TieCitation.objects.create(tie=tie, source=source, locator="row 2")
    assert "supports 1 tie</span>" in client.get("/sources/").content.decode()


def test_a_period_that_ended_shows_start_and_end_and_one_still_running_only_its_start(client):
    odesa, yokohama = make_city(name="Odesa", slug="odesa"), make_city(name="Yokohama")
    make_tie(odesa, yokohama, start="1957", end="1990")
    make_tie(odesa, make_city(name="Varna"), start="1965")
    network = make_organization(name="Eurocities", slug="eurocities")
    Membership.objects.create(organization=network, city=odesa, since="1995", until="2010~")
    Initiative.objects.create(
        name="Black Sea ports", kind="programme", lead_city=odesa, start="2001"
    )

    ties = client.get(reverse("partnerships:tie_list")).content.decode()
    assert "1957 – 1990" in ties
    assert "1965 –" not in ties
    profile = client.get(odesa.get_absolute_url()).content.decode()
    assert "1995 – c. 2010" in profile
    assert "2001 –" not in profile
    assert "1995 – c. 2010" in client.get(network.get_absolute_url()).content.decode()
