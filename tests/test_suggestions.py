"""Partner suggestions: the cities a profile and the API suggest, with their reasons, never a
city already tied, in a fixed number of queries; and the offline evaluation ranks them as
the page does."""

import random

import pytest
from django.template.loader import render_to_string

from cities.models import City, Theme
from cities.text import fold
from partnerships import suggestions
from partnerships.models import Membership, Tie
from partnerships.suggestions import Atlas, CityRow, signals_in_memory, suggestions_for
from tests.conftest import make_city, make_organization, make_tie

pytestmark = pytest.mark.django_db


def names(items):
    return [item.city["name"] for item in items]


def tie_all(city, partners, **kw):
    for partner in partners:
        make_tie(city, partner, **kw)


def join(organization, *cities):
    for city in cities:
        Membership.objects.create(organization=organization, city=city)


@pytest.fixture
def yokohama_and_kobe():
    """Yokohama and Kobe share four partners and two networks; Busan shares one partner."""
    yokohama = make_city(name="Yokohama", slug="yokohama", population=3_700_000)
    kobe = make_city(name="Kobe", slug="kobe", population=300_000)  # 12 times smaller
    busan = make_city(name="Busan", slug="busan", country="KR", population=3_400_000)
    partners = [
        make_city(name=name, country=country)
        for name, country in [("Odesa", "UA"), ("Lyon", "FR"), ("Manila", "PH"), ("Mumbai", "IN")]
    ]
    tie_all(yokohama, partners)
    tie_all(kobe, partners)
    make_tie(busan, partners[0])
    for organization in (make_organization(name="C40"), make_organization(name="UCLG")):
        join(organization, yokohama, kobe)
    return yokohama, kobe, busan, partners


def test_a_city_sharing_partners_and_networks_comes_first_with_its_reason(yokohama_and_kobe):
    yokohama, kobe, busan, _partners = yokohama_and_kobe

    like = suggestions_for(yokohama)["like_this"]

    assert names(like) == ["Kobe", "Busan"]
    assert like[0].reason == "shares 4 partners and 2 networks with Yokohama; also in Asia"
    assert (like[0].shared_partners, like[0].shared_networks) == (4, 2)
    assert like[0].city["url"] == "/cities/kobe/"
    # Busan: a similar population (3.4 against 3.7 million) is said, and counted.
    assert like[1].reason == "shares 1 partner with Yokohama; also in Asia; similar population"


def test_existing_partners_and_the_city_itself_are_never_suggested(yokohama_and_kobe):
    yokohama, kobe, busan, partners = yokohama_and_kobe
    # Partners of partners that are partners already, by a tie of any kind or status, and a
    # partner in the same networks and with the same themes.
    make_tie(partners[0], partners[1])
    make_tie(partners[2], busan, kind="friendship")
    make_tie(yokohama, busan, kind="partner", status="ended")
    theme = Theme.objects.create(name="Ports", slug="ports")
    yokohama.themes.add(theme)
    partners[3].themes.add(theme)
    join(make_organization(name="Eurocities"), yokohama, partners[3])

    found = suggestions_for(yokohama)

    suggested = names(found["like_this"]) + names(found["partners_of_partners"])
    assert "Yokohama" not in suggested and "Busan" not in suggested
    assert not {p.name for p in partners} & set(suggested)
    assert names(found["like_this"]) == ["Kobe"]


def test_partners_of_partners_name_the_shared_partners_most_populous_first():
    kyiv = make_city(name="Kyiv", slug="kyiv", country="UA")
    partners = {
        name: make_city(name=name, country=country, population=population)
        for name, country, population in [
            ("Taipei", "TW", 2_600_000),
            ("Odesa", "UA", 1_000_000),
            ("Kraków", "PL", 800_000),
            ("Vilnius", "LT", 580_000),
        ]
    }
    tie_all(kyiv, partners.values())
    tbilisi = make_city(name="Tbilisi", country="GE")
    tie_all(tbilisi, partners.values())
    riga = make_city(name="Riga", country="LV")
    tie_all(riga, [partners["Vilnius"], partners["Kraków"]])

    found = suggestions_for(kyiv)["partners_of_partners"]

    assert [(item.city["name"], item.reason) for item in found] == [
        ("Tbilisi", "partner of Taipei, Odesa and 2 more"),
        ("Riga", "partner of Kraków and Vilnius"),
    ]
    assert [p["name"] for p in found[1].via] == ["Kraków", "Vilnius"]


def test_a_shared_partner_with_few_partners_counts_more_than_a_hub():
    city = make_city(name="Ashibetsu")
    hub, quiet = make_city(name="Hub"), make_city(name="Quiet")
    tie_all(city, [hub, quiet])
    tie_all(hub, [make_city(name=f"Spoke {i}") for i in range(8)])
    tied_to_quiet = make_city(name="Zao")
    make_tie(quiet, tied_to_quiet)

    found = suggestions_for(city)["partners_of_partners"]

    # Zao's one shared partner has two partners; each Spoke's has ten.
    assert found[0].city["name"] == "Zao"
    assert found[0].score > found[1].score


def test_a_regional_branch_counts_its_parent_and_unknown_data_does_not_count():
    parent = make_organization(name="UCLG")
    branch = make_organization(name="UCLG-ASPAC", parent=parent)
    other_branch = make_organization(name="UCLG Africa", parent=parent)
    city = make_city(name="Yokohama", population=3_700_000)
    in_branch = make_city(name="Seoul", country="KR")  # population unknown
    in_other = make_city(name="Dakar", country="SN", population=3_700_000)
    join(branch, city, in_branch)
    join(other_branch, in_other)

    like = {item.city["name"]: item for item in suggestions_for(city)["like_this"]}

    assert like["Seoul"].shared_networks == 2  # the branch and its parent
    assert like["Dakar"].shared_networks == 1  # the parent
    assert like["Seoul"].size_similarity is None
    assert like["Seoul"].reason == "shares 2 networks with Yokohama; also in Asia"
    assert like["Dakar"].size_similarity == 1.0
    assert like["Dakar"].same_region is False
    assert like["Dakar"].reason == "shares 1 network with Yokohama; similar population"


def test_shared_themes_are_counted_and_a_city_with_nothing_shared_gets_nothing():
    city = make_city(name="Kobe")
    peers = [make_city(name="Rotterdam", country="NL"), make_city(name="Seattle", country="US")]
    for slug in ("ports", "design"):
        theme = Theme.objects.create(name=slug.title(), slug=slug)
        theme.cities.add(city, *peers[: 1 if slug == "design" else 2])
    alone = make_city(name="Nowhere")

    like = suggestions_for(city)["like_this"]

    assert [(item.city["name"], item.shared_themes) for item in like] == [
        ("Rotterdam", 2),
        ("Seattle", 1),
    ]
    assert like[0].reason == "shares 2 themes with Kobe"
    assert suggestions_for(alone) == {"like_this": [], "partners_of_partners": []}


def test_the_block_links_each_city_and_says_these_are_suggestions(yokohama_and_kobe):
    yokohama = yokohama_and_kobe[0]

    html = render_to_string("includes/suggestions.html", {"suggestions": suggestions_for(yokohama)})

    assert "suggestions, not facts stated by a source" in html
    assert '<a href="/cities/kobe/">Kobe</a> <span class="muted">Japan</span>' in html
    assert "Shares 4 partners and 2 networks with Yokohama; also in Asia" in html
    assert "Partner of Odesa" in html  # Busan, in the second list
    assert "style=" not in html and "<script" not in html
    assert render_to_string("includes/suggestions.html", {"suggestions": {}}).strip() == ""


# API --------------------------------------------------------------------------------------


def test_the_api_lists_both_kinds_of_suggestion_with_their_signals(api, yokohama_and_kobe):
    response = api.get("/api/v1/cities/yokohama/similar/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"like_this", "partners_of_partners"}
    kobe = body["like_this"][0]
    assert kobe["city"] == {
        "url": "http://testserver/api/v1/cities/kobe/",
        "slug": "kobe",
        "name": "Kobe",
        "country": "JP",
        "page": "http://testserver/cities/kobe/",
    }
    assert kobe["reason"] == "shares 4 partners and 2 networks with Yokohama; also in Asia"
    assert kobe["shared_partners"] == 4 and kobe["shared_networks"] == 2
    assert kobe["shared_themes"] == 0 and kobe["same_region"] is True
    assert kobe["size_similarity"] == 0.0  # known, but more than 10 times apart
    assert isinstance(kobe["score"], float) and kobe["score"] > 0
    assert {p["name"] for p in kobe["via"]} == {"Odesa", "Lyon", "Manila", "Mumbai"}
    assert [s["city"]["slug"] for s in body["partners_of_partners"]] == ["kobe", "busan"]


def test_the_api_answers_404_in_its_error_shape_for_an_unknown_city(api):
    response = api.get("/api/v1/cities/atlantis/similar/")

    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "code": "not_found",
        "detail": "No city has the slug “atlantis”: find it in http://testserver/api/v1/cities/.",
    }


# Cost -------------------------------------------------------------------------------------


def generated_atlas(scale, seed=1):
    """A city with 6 × `scale` partners, each tied to 30 × `scale` of 40 × `scale` other
    cities at random; networks (one a branch) and themes shared with some of them."""
    rng = random.Random(seed)

    def many(prefix, n):
        City.objects.bulk_create(
            City(
                name=f"{prefix} {i:04}",
                slug=f"{prefix.lower()}-{i:04}",
                folded_name=fold(f"{prefix} {i:04}"),
                country=rng.choice(["FR", "JP", "BR", "UA"]),
                population=rng.choice([None, rng.randrange(10_000, 5_000_000)]),
            )
            for i in range(n)
        )
        return list(City.objects.filter(slug__startswith=f"{prefix.lower()}-").order_by("pk"))

    city = make_city(name="Centre", slug="centre", population=600_000)
    partners, others = many("Partner", 6 * scale), many("Other", 40 * scale)
    Tie.objects.bulk_create(Tie(city_a=city, city_b=p, kind="sister") for p in partners)
    Tie.objects.bulk_create(
        Tie(city_a=other, city_b=partner, kind=rng.choice(["sister", "friendship"]))
        for partner in partners
        for other in rng.sample(others, 30 * scale)
    )
    parent = make_organization(name="UCLG")
    branch = make_organization(name="UCLG-ASPAC", parent=parent)
    c40 = make_organization(name="C40")
    Membership.objects.bulk_create(
        [Membership(organization=branch, city=city), Membership(organization=c40, city=city)]
        + [
            Membership(organization=rng.choice([parent, branch, c40]), city=other)
            for other in rng.sample(others, 10 * scale)
        ]
    )
    ports = Theme.objects.create(name="Ports", slug="ports")
    ports.cities.add(city, *rng.sample(others, 5 * scale))
    return city


@pytest.mark.parametrize("scale", [1, 10])
def test_suggestions_take_four_queries_however_many_ties(django_assert_num_queries, scale):
    city = generated_atlas(scale)
    # 1 cities sharing partners, with their Adamic–Adar scores (one GROUP BY), 2 cities
    # sharing networks, 3 cities sharing themes, 4 the shared partners named in reasons.
    with django_assert_num_queries(4):
        found = suggestions_for(city)
    assert len(found["like_this"]) == len(found["partners_of_partners"]) == 10


@pytest.mark.parametrize("scale", [1, 10])
def test_the_api_endpoint_takes_five_queries_however_many_ties(
    api, django_assert_num_queries, scale
):
    generated_atlas(scale)
    # 1 the city, then the four queries of the suggestions.
    with django_assert_num_queries(5):
        response = api.get("/api/v1/cities/centre/similar/")
    assert response.status_code == 200
    assert len(response.json()["like_this"]) == 10


def atlas_in_memory():
    rows = {
        pk: CityRow(pk, name, slug, country, population)
        for pk, name, slug, country, population in City.objects.values_list(
            "pk", "name", "slug", "country", "population"
        )
    }
    partners = {}
    for a, b in Tie.objects.values_list("city_a", "city_b"):
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    networks = {}
    for pk, organization, parent in Membership.objects.values_list(
        "city", "organization", "organization__parent"
    ):
        networks.setdefault(pk, set()).update({organization} - {None} | {parent} - {None})
    themes = {}
    for pk, theme in City.themes.through.objects.values_list("city_id", "theme_id"):
        themes.setdefault(pk, set()).add(theme)
    return Atlas(rows=rows, partners=partners, networks=networks, themes=themes)


@pytest.mark.parametrize("pool", [suggestions.POOL, 7])
def test_the_offline_evaluation_ranks_as_the_page_does(monkeypatch, pool):
    """bench/bench_suggestions.py measures the ranking users see: the signals it gathers in
    memory rank the same cities in the same order as the queries' (with the candidate pool
    cut short too)."""
    monkeypatch.setattr(suggestions, "POOL", pool)
    centre = generated_atlas(2)
    atlas = atlas_in_memory()
    checked = [centre, *City.objects.filter(slug__startswith="partner-")[:4]]
    checked += list(City.objects.filter(slug__startswith="other-")[:4])
    for city in checked:
        from_db, rows = suggestions.signals_from_database(city)
        in_memory = signals_in_memory(atlas, city.pk)
        for weights in (suggestions.LIKE_THIS, suggestions.PARTNERS_ONLY):
            expected = suggestions.rank(from_db, rows, weights)
            assert expected, city.name
            assert suggestions.rank(in_memory, atlas.rows, weights) == expected
