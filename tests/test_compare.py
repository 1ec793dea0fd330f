"""The comparison of two to four cities: its figures, the page, and every bad request."""

import pytest

from cities.models import AlternateName, Theme
from partnerships.comparison import ComparisonError, compare, parse_cities
from partnerships.models import Membership, StatedFigure, StatedFigureCitation
from tests.conftest import make_city, make_organization, make_source, make_tie

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair():
    """Yokohama and Taipei, each with ties, one shared partner and one shared network."""
    source = make_source()
    yokohama = make_city(name="Yokohama", slug="yokohama", country="JP")
    taipei = make_city(name="Taipei", slug="taipei", country="TW")
    odesa = make_city(name="Odesa", slug="odesa", country="UA")
    AlternateName.objects.create(city=odesa, name="Odessa", language="ru-Latn")
    shared = make_city(name="Houston", slug="houston", country="US")
    make_tie(yokohama, odesa, source=source, kind="mou", start="2023")
    make_tie(yokohama, shared, source=source, kind="sister", start="1965")
    make_tie(taipei, shared, source=source, kind="sister", start="1961")
    make_tie(taipei, make_city(name="Paris", country="FR"), source=source, kind="friendship")
    network = make_organization(name="UCLG-ASPAC", slug="uclg-aspac")
    Membership.objects.create(organization=network, city=yokohama, since="2004")
    Membership.objects.create(organization=network, city=taipei, role="founding_member")
    Membership.objects.create(organization=make_organization(name="C40"), city=yokohama)
    figure = StatedFigure.objects.create(city=taipei, measure="sister_cities", value=53)
    StatedFigureCitation.objects.create(figure=figure, source=source, locator="paragraph 8")
    theme = Theme.objects.create(name="Smart city", slug="smart-city")
    yokohama.themes.add(theme)
    taipei.themes.add(theme)
    return yokohama, taipei


def row(rows, key, field="key"):
    return next(r for r in rows if r[field] == key)


def test_compare_sets_stated_beside_recorded(pair):
    result = compare(pair)
    sisters = row(result["figures"], "sister_cities")
    assert sisters["recorded"] == [1, 1]
    assert sisters["stated"][0] is None
    assert sisters["stated"][1]["value"] == 53
    assert sisters["stated"][1]["sources"][0]["locator"] == "paragraph 8"
    assert row(result["figures"], "ties")["recorded"] == [2, 2]


def test_compare_counts_kinds_regions_and_decades(pair):
    result = compare(pair)
    assert row(result["ties_by_kind"], "mou", "kind")["counts"] == [1, 0]
    assert row(result["partners_by_region"], "EU", "region")["counts"] == [1, 1]
    assert row(result["partners_by_region"], "NA", "region")["shares"] == [0.5, 0.5]
    decades = {r["label"]: r["counts"] for r in result["ties_by_decade"]}
    assert decades["1960s"] == [1, 1]
    assert decades["2020s"] == [1, 0]
    # The friendship tie with Paris has no date: counted apart, never guessed.
    assert decades["date unknown"] == [0, 1]


def test_compare_finds_shared_partners_networks_and_themes(pair):
    result = compare(pair)
    assert [p["name"] for p in result["shared_partners"]] == ["Houston"]
    assert result["shared_partners"][0]["kinds"] == [["sister"], ["sister"]]
    shared = [o for o in result["organizations"] if o["shared"]]
    assert [o["name"] for o in shared] == ["UCLG-ASPAC"]
    assert shared[0]["roles"][1]["label"] == "Founding member"
    assert result["themes"] == [
        {"slug": "smart-city", "name": "Smart city", "cities": [True, True]}
    ]


def test_compare_result_is_plain_json(pair):
    import json

    assert json.loads(json.dumps(compare(pair)))["cities"][0]["slug"] == "yokohama"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Choose two to four cities"),
        ("yokohama", "Add at least one more city"),
        ("yokohama,taipei,odesa,houston,paris", "Compare at most 4 cities at a time"),
        ("yokohama,yokohama", "Yokohama is listed twice"),
        ("yokohama,Odessa,odesa", "Odesa is listed twice (as “Odessa” and “odesa”)"),
        ("yokohama,atlantis", "No city in the atlas is called “atlantis”"),
    ],
)
def test_parse_cities_says_what_to_fix(pair, value, message):
    with pytest.raises(ComparisonError) as error:
        parse_cities(value)
    assert any(message in m for m in error.value.messages), error.value.messages


def test_parse_cities_accepts_any_name_and_several_fields(pair):
    cities = parse_cities(["Yokohama", "ODESSA", " ", "taipei"])
    assert [c.slug for c in cities] == ["yokohama", "odesa", "taipei"]


def test_parse_cities_suggests_near_names(pair):
    with pytest.raises(ComparisonError) as error:
        parse_cities("yokohama,taipe")
    assert [s["slug"] for s in error.value.suggestions["taipe"]] == ["taipei"]


def test_page_shows_cities_side_by_side_with_shared_organizations(client, pair):
    response = client.get("/compare/", {"cities": "yokohama,taipei"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Yokohama and Taipei" in html
    assert "UCLG-ASPAC" in html and "shared</span>" in html
    assert "Houston" in html
    assert "stated <strong>53</strong>" in html


def test_picker_without_javascript_redirects_to_the_shareable_address(client, pair):
    response = client.get("/compare/", {"cities": ["Yokohama", "Odessa", "", ""]})
    assert response.status_code == 302
    assert response["Location"] == "/compare/?cities=yokohama,odesa"


@pytest.mark.parametrize(
    "query",
    ["yokohama", "yokohama,taipei,odesa,houston,paris", "yokohama,yokohama", "yokohama,zzz"],
)
def test_bad_comparisons_are_a_400_page_that_explains(client, pair, query):
    response = client.get("/compare/", {"cities": query})
    assert response.status_code == 400
    html = response.content.decode()
    assert "This comparison cannot be made yet" in html
    assert 'name="cities"' in html  # the picker is there to fix it


def test_picker_suggestions_are_json(client, pair):
    data = client.get("/compare/cities.json", {"q": "odessa"}).json()
    assert data["results"] == [{"slug": "odesa", "name": "Odesa", "country": "UA"}]


def test_four_city_comparison_query_count_does_not_grow(client, django_assert_num_queries):
    def build(n):
        source = make_source()
        cities = [make_city(name=f"C{n}-{i}", slug=f"c{n}-{i}") for i in range(4)]
        network = make_organization()
        for city in cities:
            Membership.objects.create(organization=network, city=city)
            figure = StatedFigure.objects.create(city=city, measure="sister_cities", value=9)
            StatedFigureCitation.objects.create(figure=figure, source=source)
            for j in range(n):
                make_tie(city, make_city(), source=source, start=str(1950 + j))
        return ",".join(c.slug for c in cities)

    for n, slugs in ((2, build(2)), (40, build(40))):
        # 1 the four cities by slug, 2 their ties with both ends, 3 stated figures,
        # 4 the figures' citations with sources, 5 memberships with organizations, 6 themes,
        # 7 the newest change to their ties, the date "cite this page" gives.
        with django_assert_num_queries(7):
            response = client.get("/compare/", {"cities": slugs})
        assert response.status_code == 200, n
