"""City profiles and organization pages stay the same size however many ties or members
there are: each group shows its count and its first rows, with a link to the full list, and
the map and the timeline show aggregates."""

import datetime
import html
import re

import pytest

from cities.models import City
from cities.text import fold
from partnerships.models import (
    Event,
    EventCitation,
    Initiative,
    InitiativeCitation,
    Membership,
    MembershipCitation,
    StatedFigure,
    StatedFigureCitation,
    Tie,
    TieCitation,
)
from partnerships.profiles import FIRST_ROWS, MAP_PLACES
from tests.conftest import make_city, make_organization, make_source, make_tie

pytestmark = pytest.mark.django_db


def make_partners(n, prefix="Partner", **kw):
    """`n` cities named "Partner 0000" …, spread over the map, in one insert."""
    cities = [
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
    ]
    City.objects.bulk_create(cities)
    return list(City.objects.filter(slug__startswith=cities[0].slug[:-4]).order_by("slug"))


def year(value, field="start"):
    """An EDTF year with the bounds save() would derive: bulk inserts skip save(), and
    parsing thousands of dates would cost seconds."""
    return {
        field: str(value),
        f"{field}_lower": datetime.date(value, 1, 1),
        f"{field}_upper": datetime.date(value, 12, 31),
    }


def tie_many(city, partners, kind="sister", source=None, first_year=1950):
    """A tie of `city` to each partner, starting a year apart (the first undated), each
    citing its own row of `source` when given: as bulk inserts."""
    Tie.objects.bulk_create(
        Tie(city_a=city, city_b=partner, kind=kind, **(year(first_year + i) if i else {}))
        for i, partner in enumerate(partners)
    )
    if source is not None:
        TieCitation.objects.bulk_create(
            TieCitation(tie=tie, source=source, locator=f"row {tie.pk}")
            for tie in Tie.objects.filter(city_a=city, kind=kind)
        )


def enrol_many(organization, cities, source=None):
    Membership.objects.bulk_create(
        Membership(organization=organization, city=city, **year(1982 + i % 40, "since"))
        for i, city in enumerate(cities)
    )
    if source is not None:
        MembershipCitation.objects.bulk_create(
            MembershipCitation(membership=m, source=source, locator=f"row {m.pk}")
            for m in Membership.objects.filter(organization=organization)
        )


def text_of(response):
    assert response.status_code == 200
    return response.content.decode()


def group(page, kind):
    """The HTML of one group of ties on a profile."""
    match = re.search(
        rf'<details class="tie-group" id="ties-{kind}"[^>]*>.*?</details>', page, re.S
    )
    assert match, f"no group {kind}"
    return match.group(0)


def test_a_long_group_shows_its_count_its_first_ties_and_a_link_to_all_of_them(client):
    lyon = make_city(name="Lyon", slug="lyon", country="FR")
    partners = make_partners(60)
    tie_many(lyon, partners, kind="sister", source=make_source())
    tie_many(lyon, [make_city(name="Turin", country="IT")], kind="partner")

    page = text_of(client.get("/cities/lyon/"))
    sisters = group(page, "sister")

    assert sisters.startswith('<details class="tie-group" id="ties-sister" open>')
    assert '<span class="count">60</span>' in sisters
    # Oldest first, undated last, as the tie list orders them: Partner 0000 has no date.
    shown = re.findall(r">(Partner \d{4})</a>", sisters)
    assert shown == [f"Partner {i:04}" for i in range(1, FIRST_ROWS + 1)]
    assert "Partner 0000" not in sisters and "Partner 0059" not in sisters
    link = re.search(r'<a href="([^"]+)">All 60 ties of this kind', sisters)
    assert link, "no link to all 60"
    # Turin's group is short: whole, with no link to a list.
    assert "Turin" in group(page, "partner") and "All 1 " not in page

    listed = text_of(client.get(html.unescape(link.group(1))))
    assert "<strong>60</strong> ties" in listed
    assert (
        'Only ties of <a href="/cities/lyon/">Lyon</a> <span class="muted">France</span>' in listed
    )
    for name in shown:
        assert name in listed
    assert "Turin" not in listed


def test_a_large_organization_shows_its_count_its_first_members_and_a_link_to_all(client):
    network = make_organization(name="Mayors for Peace", slug="mayors-for-peace")
    enrol_many(network, make_partners(60, prefix="Town"), source=make_source())
    branch = make_organization(name="Mayors for Peace, Asia", slug="m4p-asia", parent=network)
    Membership.objects.create(organization=network, member_organization=branch)

    page = text_of(client.get("/organizations/mayors-for-peace/"))

    assert '<h2 id="members-heading">Members <span class="count">61</span></h2>' in page
    shown = re.findall(r">(Town \d{4}|Mayors for Peace, Asia)</a></th>", page)
    # The member organization first, then the cities from A to Z.
    assert shown == ["Mayors for Peace, Asia"] + [f"Town {i:04}" for i in range(FIRST_ROWS - 1)]
    assert "Town 0059</a></th>" not in page
    assert "Member cities by country" in page and 'France</a> <span class="count">15</span>' in page
    link = re.search(r'<a href="([^"]+)">All 60 member cities</a>', page)
    assert link, "no link to all 60 member cities"

    listed = text_of(client.get(html.unescape(link.group(1))))
    assert "<strong>60</strong> cities" in listed
    assert "Town 0000" in listed


def test_the_most_connected_city_opens_with_its_partners_in_view(client):
    bethlehem = make_city(name="Bethlehem", slug="bethlehem", country="PS")
    partners = make_partners(72)
    tie_many(bethlehem, partners[:60], kind="unspecified")
    tie_many(bethlehem, partners[60:], kind="sister")

    page = text_of(client.get("/cities/bethlehem/"))

    groups = re.findall(r'<details class="tie-group"[^>]*>', page)
    assert len(groups) == 2 and all(tag.endswith(" open>") for tag in groups)
    assert "Partner 0001" in group(page, "unspecified")
    assert "Partner 0061" in group(page, "sister")
    assert "show all" not in page


def test_shown_ties_keep_their_numbered_notes_and_the_unknown_kind_is_stated(client):
    kyiv = make_city(name="Kyiv", slug="kyiv", country="UA")
    source = make_source(title="Lists of twin towns")
    tie_many(kyiv, make_partners(40), kind="unspecified", source=source)
    figure = StatedFigure.objects.create(city=kyiv, measure="sister_cities", value=53)
    StatedFigureCitation.objects.create(figure=figure, source=source, locator="para. 8")

    page = text_of(client.get("/cities/kyiv/"))
    refs = set(re.findall(r'href="#note-(\d+)"', group(page, "unspecified")))
    notes = set(re.findall(r'<li id="note-(\d+)"', page))

    # One note for the figure, one for each shown tie's row; none for the ties not shown.
    assert len(refs) == FIRST_ROWS and refs <= notes and len(notes) == FIRST_ROWS + 1
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", "", page)).split())
    assert "0 recorded and 40 of unknown kind" in words
    assert "with 40 cities in 4 countries" in words


def test_the_map_draws_one_dot_per_place_and_the_timeline_counts_per_year(client):
    odesa = make_city(name="Odesa", slug="odesa", country="UA", latitude=46.48, longitude=30.72)
    lyon = make_city(name="Lyon", country="FR", latitude=45.76, longitude=4.84)
    villeurbanne = make_city(name="Villeurbanne", country="FR", latitude=45.77, longitude=4.88)
    make_tie(odesa, lyon, start="1995")
    make_tie(odesa, villeurbanne, start="1995")
    make_tie(odesa, make_city(name="Atlantis", country="GR"), start="197X")
    tie_many(odesa, make_partners(5), kind="partner", first_year=1960)

    page = text_of(client.get("/cities/odesa/"))

    # A dot for each placed partner, Lyon and Villeurbanne apart (the map groups them at
    # a zoom where they would overlap); Atlantis has none.
    assert page.count('class="map__dot"') == 7 and page.count('class="map__line"') == 7
    assert "<title>Lyon (France)</title>" in page and "<title>Villeurbanne (France)</title>" in page
    assert "Not on the map: 1 partner without known coordinates." in page
    assert "<title>1995: 2 ties started</title>" in page
    # 197X and the undated partner tie have no year to be drawn at.
    assert "2 items whose year is not known not placed" in page


def test_a_profile_and_an_organization_page_stay_small_with_thousands_of_rows(client):
    hub = make_city(name="Hub", slug="hub", country="UA", latitude=46.5, longitude=30.7)
    partners = make_partners(3000)
    source = make_source()
    for n, kind in enumerate(["unspecified", "sister", "partner", "friendship", "mou", "other"]):
        tie_many(hub, partners[n * 500 : (n + 1) * 500], kind=kind, source=source)
    network = make_organization(name="Mayors for Peace", slug="mayors-for-peace")
    enrol_many(network, partners, source=source)

    profile = client.get("/cities/hub/")
    organization = client.get("/organizations/mayors-for-peace/")

    assert '<span class="count">3,000</span>' in text_of(profile)
    assert len(profile.content) < 300_000
    assert profile.content.count(b'class="map__dot"') <= MAP_PLACES
    assert profile.content.count(b"<tr>") <= 6 * FIRST_ROWS + 10
    assert "All 3,000 member cities" in text_of(organization)
    assert len(organization.content) < 300_000


def build_everything(n):
    """Yokohama with `n` sourced ties and one of every other claim, and a network of `n`
    members: every query the two pages can run, runs."""
    source = make_source()
    yokohama = make_city(name="Yokohama", slug="yokohama", latitude=35.4, longitude=139.6)
    partners = make_partners(n)
    tie_many(yokohama, partners[: n // 2 + 1], kind="sister", source=source)
    tie_many(yokohama, partners[n // 2 + 1 :], kind="unspecified", source=source)
    network = make_organization(name="Mayors for Peace", slug="mayors-for-peace")
    enrol_many(network, [yokohama, *partners], source=source)
    membership = Membership.objects.get(organization=network, city=yokohama)
    MembershipCitation.objects.get_or_create(membership=membership, source=source)
    figure = StatedFigure.objects.create(city=yokohama, measure="sister_cities", value=53)
    StatedFigureCitation.objects.create(figure=figure, source=source)
    StatedFigure.objects.create(organization=network, measure="members", value=8000)
    initiative = Initiative.objects.create(
        name="Y-Port", kind="programme", lead_city=yokohama, start="2011"
    )
    initiative.partner_organizations.add(network)
    InitiativeCitation.objects.create(initiative=initiative, source=source)
    event = Event.objects.create(
        kind="visit", title="Mayors meet", city=yokohama, organization=network
    )
    EventCitation.objects.create(event=event, source=source)


@pytest.mark.parametrize("n", [3, 60, 600])
def test_profile_and_organization_page_query_counts_do_not_grow(
    client, django_assert_num_queries, n
):
    build_everything(n)
    # 1 city, 2 its alternate names, 3 its themes, 4 ties counted per kind and year,
    # 5 partners, their countries and those without coordinates counted, 6 the partners'
    # places for the map, 7 the first ties of each kind with both cities, 8 their citations,
    # 9 memberships with organizations, 10 their citations, 11 stated figures,
    # 12 initiatives, 13 events, 14 the citations of the city, its figures, initiatives and
    # events (one UNION), 15-17 the suggested partners' shared partners, networks and
    # themes (an 18th names the partners in the reasons when something is suggested:
    # tests/test_suggestions.py).
    with django_assert_num_queries(17):
        assert client.get("/cities/yokohama/").status_code == 200
    # 1 organization with parent and headquarters, 2 branches, 3 themes, 4 its citations,
    # 5 members counted per country of the member city (which gives the totals too), 6 the
    # member cities' places for the map, 7 the first members, 8 their citations,
    # 9 initiatives, 10 stated figures, 11 their citations, 12 events.
    with django_assert_num_queries(12):
        assert client.get("/organizations/mayors-for-peace/").status_code == 200
