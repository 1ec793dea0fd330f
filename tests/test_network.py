"""A city's network page, the comparison's drawing of shared partners, the picker's help
with a second city, and the map's one dot per partner."""

import html
import re

import pytest
from django.template.loader import render_to_string

from cities.models import City, SlugRedirect
from cities.text import fold
from partnerships import comparison
from partnerships.comparison import parse_cities
from partnerships.models import Tie
from partnerships.network import NETWORK_NODES, PARTNERS_DRAWN, layout, network_of
from partnerships.profiles import MAP_PLACES
from tests.conftest import make_city, make_tie

pytestmark = pytest.mark.django_db


def make_cities(n, prefix, **kw):
    """`n` cities "Prefix 0000" … spread over the map, in one insert."""
    City.objects.bulk_create(
        City(
            name=f"{prefix} {i:04}",
            slug=f"{fold(prefix)}-{i:04}",
            folded_name=fold(f"{prefix} {i:04}"),
            country=["FR", "DE", "JP", "BR"][i % 4],
            latitude=-50 + (i * 7) % 120,
            longitude=-170 + (i * 13) % 340,
            **kw,
        )
        for i in range(n)
    )
    return list(City.objects.filter(slug__startswith=f"{fold(prefix)}-").order_by("slug"))


def tie_all(city, others, kind="sister"):
    Tie.objects.bulk_create(Tie(city_a=city, city_b=other, kind=kind) for other in others)


def names_in(page, css_class):
    """The names of the drawing's nodes of one role, in document order."""
    nodes = re.findall(
        rf'<a class="net__node net__node--{css_class}[^"]*"[^>]*>.*?<text[^>]*>([^<]+)</text></a>',
        page,
    )
    return [html.unescape(name) for name in nodes]


@pytest.fixture
def small_world():
    """Yokohama tied to Lyon, Taipei and Odesa; Houston tied to Lyon and Taipei, Kyiv to
    Odesa; Austin tied to Houston only (two steps beyond Yokohama's partners)."""
    city = {
        name: make_city(name=name, slug=fold(name), country=country)
        for name, country in [
            ("Yokohama", "JP"),
            ("Lyon", "FR"),
            ("Taipei", "TW"),
            ("Odesa", "UA"),
            ("Houston", "US"),
            ("Kyiv", "UA"),
            ("Austin", "US"),
        ]
    }
    for a, b in [
        ("Yokohama", "Lyon"),
        ("Yokohama", "Taipei"),
        ("Taipei", "Yokohama"),  # a second tie of another kind: one partner all the same
        ("Yokohama", "Odesa"),
        ("Lyon", "Houston"),
        ("Houston", "Taipei"),
        ("Odesa", "Kyiv"),
        ("Houston", "Austin"),
        ("Lyon", "Taipei"),
    ]:
        kind = "partner" if (a, b) == ("Taipei", "Yokohama") else "sister"
        make_tie(city[a], city[b], kind=kind)
    return city


def test_the_network_page_draws_the_city_its_partners_and_theirs(client, small_world):
    response = client.get("/cities/yokohama/network/")

    assert response.status_code == 200
    page = response.content.decode()
    assert names_in(page, "city") == ["Yokohama"]
    assert sorted(names_in(page, "partner")) == ["Lyon", "Odesa", "Taipei"]
    # Houston is tied to two of the partners, Kyiv to one; Austin only to Houston.
    assert names_in(page, "other") == ["Houston", "Kyiv"]
    assert "Austin" not in page
    # Every node leads to the city's profile and says who it is to a screen reader.
    houston = 'href="/cities/houston/" data-node="n4" aria-label="Houston, United States of America'
    assert f'{houston}: tied to 2 of the partners"' in page
    # The tables say the same: Taipei has three ties in all and is tied to one other partner.
    taipei = re.search(r"<tr><th scope=\"row\"><a href=\"/cities/taipei/\">.*?</tr>", page)
    cells = re.findall(r'<td class="num"[^>]*>(\d+)</td>', taipei.group(0))
    assert cells == ["4", "1"]  # Yokohama twice, Lyon, Houston; tied to Lyon
    houston = re.search(r"<a href=\"/cities/houston/\">Houston</a></th>.*?</tr>", page).group(0)
    assert ">Lyon, Taipei</td>" in houston


def test_a_tie_lights_up_both_its_ends_and_the_city_ties_are_told_apart(small_world):
    graph = network_of(small_world["Yokohama"])["graph"]
    by_name = {node["name"]: node["id"] for node in graph["nodes"]}
    kinds = {frozenset((edge["a"], edge["b"])): edge["kind"] for edge in graph["edges"]}
    assert kinds[frozenset((by_name["Yokohama"], by_name["Taipei"]))] == "city"
    assert kinds[frozenset((by_name["Lyon"], by_name["Taipei"]))] == "partners"
    assert kinds[frozenset((by_name["Houston"], by_name["Lyon"]))] == "other"
    # One line per pair of cities, however many ties join them.
    assert len(kinds) == len(graph["edges"]) == 7


def test_the_drawing_is_the_same_every_time_and_fits_its_box(small_world):
    first = network_of(small_world["Yokohama"])["graph"]
    again = network_of(small_world["Yokohama"])["graph"]
    assert first == again
    for node in first["nodes"]:
        assert 0 <= node["x"] <= first["width"] and 0 <= node["y"] <= first["height"]


def test_the_layout_pulls_tied_nodes_together_and_pushes_the_rest_apart():
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("x", "y")]
    at = layout(["a", "b", "c", "x", "y"], edges)

    def apart(one, two):
        return ((at[one][0] - at[two][0]) ** 2 + (at[one][1] - at[two][1]) ** 2) ** 0.5

    assert apart("a", "b") < apart("a", "x") and apart("x", "y") < apart("y", "c")
    assert layout(["a", "b", "c", "x", "y"], edges) == at


def test_a_city_with_many_partners_stays_within_the_bound(client):
    hub = make_city(name="Hub", slug="hub")
    partners = make_cities(PARTNERS_DRAWN + 20, "Partner")
    tie_all(hub, partners)
    # Each partner has two partners of its own; the first also shares one with the second.
    for i, partner in enumerate(partners):
        tie_all(partner, make_cities(2, f"Far {i}"))

    response = client.get("/cities/hub/network/")
    page = response.content.decode()

    data = network_of(hub)
    assert len(data["graph"]["nodes"]) == NETWORK_NODES
    assert len(data["partners"]) == PARTNERS_DRAWN and data["partner_total"] == 120
    # The partners of the partners drawn: two each, none shared.
    assert data["other_total"] == 2 * PARTNERS_DRAWN
    assert page.count('class="net__node ') == NETWORK_NODES
    assert f"The {PARTNERS_DRAWN} of 120 partners with the most ties" in page
    assert len(response.content) < 400_000


def test_a_city_without_partners_says_so(client):
    make_city(name="Lonely", slug="lonely")
    page = client.get("/cities/lonely/network/").content.decode()
    assert "no partners of Lonely yet" in page
    assert "<svg" not in page.split("<main", 1)[1].split("</main>", 1)[0]


def test_an_old_address_redirects_and_an_unknown_one_suggests(client, small_world):
    SlugRedirect.objects.create(slug="yokohama-shi", city=small_world["Yokohama"])
    moved = client.get("/cities/yokohama-shi/network/")
    assert moved.status_code == 301 and moved["Location"] == "/cities/yokohama/network/"
    missing = client.get("/cities/yokohamma/network/")
    assert missing.status_code == 404


def build_network(n, prefix):
    """A city with `n` partners, each with `n` partners of its own, a tie among partners."""
    city = make_city(name=f"{prefix} Centre", slug=f"{fold(prefix)}-centre")
    partners = make_cities(n, f"{prefix} Partner")
    tie_all(city, partners)
    tie_all(partners[0], partners[1:])
    for i, partner in enumerate(partners):
        tie_all(partner, make_cities(n, f"{prefix} Far {i}"))
    return city


@pytest.mark.parametrize("n", [3, 40])
def test_network_page_query_count_does_not_grow(client, django_assert_num_queries, n):
    city = build_network(n, f"N{n}")
    # 1 the city, 2 its partners with their number of ties and how many there are, 3 the
    # cities tied to them, ranked by how many of them each is tied to, 4 the ties among
    # every city drawn.
    with django_assert_num_queries(4):
        response = client.get(f"/cities/{city.slug}/network/")
    assert response.status_code == 200


# The comparison ----------------------------------------------------------------------------


def test_the_comparison_draws_the_shared_partners_between_the_cities(client, small_world):
    response = client.get("/compare/", {"cities": "lyon,taipei,odesa"})
    page = response.content.decode()

    assert response.status_code == 200
    assert names_in(page, "compared") == ["Lyon", "Taipei", "Odesa"]
    # Yokohama is tied to all three, Houston to Lyon and Taipei; Kyiv to Odesa alone.
    assert sorted(names_in(page, "shared")) == ["Houston", "Yokohama"]
    assert 'aria-label="Houston, United States of America: partner of Lyon and Taipei"' in page
    assert "Partners shared by Lyon, Taipei and Odesa" in page
    # The drawing is plain data, the same in the API's answer.
    network = comparison.compare(parse_cities("lyon,taipei,odesa"), drawing=True)["shared_network"]
    assert {n["name"] for n in network["nodes"] if n["role"] == "shared"} == {"Houston", "Yokohama"}


def test_cities_that_share_no_partner_have_no_drawing(client, small_world):
    page = client.get("/compare/", {"cities": "odesa,houston"}).content.decode()
    assert "No city is tied to more than one of these." in page
    assert "net__svg" not in page


def test_the_picker_reads_a_name_with_its_country(small_world):
    make_city(name="Odesa", slug="odesa-texas", country="US")
    cities = parse_cities(["Odesa (Ukraine)", "Odesa (US)", "Taipei (Taiwan)"])
    assert [c.slug for c in cities] == ["odesa", "odesa-texas", "taipei"]


def test_compare_with_offers_the_most_tied_partners_then_cities_of_the_country(small_world):
    osaka = make_city(name="Osaka", slug="osaka", country="JP")
    make_tie(osaka, small_world["Kyiv"])
    make_city(name="Nara", slug="nara", country="JP")  # no ties: nothing to compare

    offered = comparison.suggestions("yokohama")

    # Taipei (4 ties) and Lyon (3) are its most tied partners; Osaka its country's next.
    assert [(s["name"], s["why"]) for s in offered] == [
        ("Taipei", "partner"),
        ("Lyon", "partner"),
        ("Osaka", "same country"),
    ]
    assert offered[0]["compare_url"] == "/compare/?cities=yokohama,taipei"
    assert comparison.suggestions("atlantis") == []


def test_compare_with_focuses_the_second_box_and_links_each_offer(rf, small_world):
    """What the page shows once the view passes `suggested` (see views.compare)."""
    page = render_to_string(
        "partnerships/compare.html",
        {"picked": ["yokohama"], "max": 4, "suggested": comparison.suggestions("yokohama")},
        request=rf.get("/compare/", {"with": "yokohama"}),
    )
    second = re.search(r'<input id="pick-2"[^>]*>', page).group(0)
    assert second.endswith(" autofocus>")
    assert page.count(" autofocus") == 1
    assert '<a href="/compare/?cities=yokohama,taipei">Compare with Taipei</a>' in page


# The map --------------------------------------------------------------------------------


def test_the_map_names_each_partner_with_its_country(client, small_world):
    for name, lat, lng in [
        ("Yokohama", 35.4, 139.6),
        ("Lyon", 45.76, 4.84),
        ("Taipei", 25.0, 121.5),
    ]:
        City.objects.filter(name=name).update(latitude=lat, longitude=lng)
    page = client.get("/cities/yokohama/").content.decode()
    dots = re.findall(r'<circle class="map__dot"[^>]* data-name="([^"]+)"', page)
    assert sorted(dots) == ["Lyon (France)", "Taipei (Taiwan)"]
    assert '<script src="/static/js/map.js" defer></script>' in page


def test_a_crowded_map_still_covers_every_part_of_the_world(client):
    hub = make_city(name="Hub", slug="hub", latitude=0.5, longitude=0.5)
    crowd = make_cities(MAP_PLACES + 50, "Crowd")
    City.objects.filter(pk__in=[c.pk for c in crowd]).update(latitude=48.5, longitude=2.5)
    spread = make_cities(30, "Spread")
    tie_all(hub, crowd + spread)

    page = client.get("/cities/hub/").content.decode()

    names = re.findall(r'<circle class="map__dot"[^>]* data-name="([^"]+)"', page)
    assert len(names) == MAP_PLACES
    # One dot per square degree first: every spread partner is drawn, the crowd fills up.
    assert all(f"Spread {i:04}" in " ".join(names) for i in range(30))
