"""What a visitor tripped on in the public pages, each checked as the visitor would see it."""

import pytest
from django.urls import reverse

from cities.models import AlternateName, SlugRedirect
from partnerships.models import OrganizationKind
from tests.conftest import make_city, make_organization, make_tie

pytestmark = pytest.mark.django_db


def test_a_city_by_its_former_name_leads_to_its_ties(client):
    odesa = make_city(name="Odesa", slug="odesa", country="UA")
    AlternateName.objects.create(city=odesa, name="Odessa", language="en", kind="former")
    make_tie(odesa, make_city(name="Yokohama"))
    make_tie()

    response = client.get("/ties/", {"city": "odessa", "kind": "sister", "page": "3"})

    assert response.status_code == 302
    assert response["Location"] == "/ties/?city=odesa&kind=sister"
    page = client.get(response["Location"]).content.decode()
    assert "ignored" not in page
    assert 'Only ties of <a href="/cities/odesa/">Odesa</a>' in page
    assert "<strong>1</strong> tie" in page


def test_an_old_address_of_a_merged_city_leads_to_its_ties(client):
    kyiv = make_city(name="Kyiv", slug="kyiv", country="UA")
    SlugRedirect.objects.create(slug="kiev", city=kyiv)

    response = client.get("/ties/", {"city": "kiev"})

    assert response["Location"] == "/ties/?city=kyiv"


def test_an_unclear_city_is_reported_with_what_it_may_mean_never_as_applied(client):
    make_city(name="Springfield", slug="springfield-us", country="US")
    make_city(name="Springfield", slug="springfield-au", country="AU")
    make_tie()

    page = client.get("/ties/", {"city": "springfield"}).content.decode()

    assert "One filter was ignored" in page
    assert "Did you mean" in page and "?city=springfield-us" in page
    assert "?city=springfield-au" in page
    assert "Only ties of" not in page


def test_ties_between_two_countries_on_the_page_and_in_the_api(client):
    tokyo, osaka = make_city(name="Tokyo", country="JP"), make_city(name="Osaka", country="JP")
    kyiv, lyon = make_city(name="Kyiv", country="UA"), make_city(name="Lyon", country="FR")
    japan_ukraine = make_tie(kyiv, tokyo)  # entered with Ukraine first
    within_japan = make_tie(tokyo, osaka)
    make_tie(tokyo, lyon)
    make_tie(kyiv, lyon)

    api = client.get("/api/v1/ties/", {"country": "JP", "partner_country": "UA"}).json()
    domestic = client.get("/api/v1/ties/", {"country": "JP", "partner_country": "JP"}).json()
    either = client.get("/api/v1/ties/", {"partner_country": "UA"}).json()
    page = client.get("/ties/", {"country": "JP", "partner_country": "UA"}).content.decode()

    assert [t["id"] for t in api["results"]] == [japan_ukraine.pk]
    assert [t["id"] for t in domestic["results"]] == [within_japan.pk]
    assert len(either["results"]) == 2
    assert "<strong>1</strong> tie" in page
    assert '<option value="UA" selected>' in page


def test_the_home_page_lists_city_networks_only(client):
    make_organization(name="C40 Cities")
    make_organization(
        name="World Health Organization", kind=OrganizationKind.INTERNATIONAL_ORGANIZATION
    )

    page = client.get(reverse("partnerships:home")).content.decode()

    assert "C40 Cities" in page
    assert "World Health Organization" not in page


def test_a_network_counts_lists_and_maps_the_members_of_its_branches(client):
    from partnerships.models import Membership

    uclg = make_organization(name="United Cities and Local Governments", slug="uclg")
    aspac = make_organization(
        name="UCLG Asia-Pacific",
        slug="uclg-aspac",
        acronym="UCLG-ASPAC",
        kind=OrganizationKind.REGIONAL_BRANCH,
        parent=uclg,
    )
    taipei = make_city(name="Taipei", country="TW", latitude=25.05, longitude=121.53)
    Membership.objects.create(organization=aspac, city=taipei)

    page = client.get("/organizations/uclg/").content.decode()
    listed = client.get("/organizations/").content.decode()

    assert (
        '<span class="figure__value">1</span> <span class="muted small">all through its branches'
        in page
    )
    assert 'Members <span class="count">1</span>' in page
    assert (
        "Taipei</a>" in page
        and 'through <a href="/organizations/uclg-aspac/">UCLG-ASPAC</a>' in page
    )
    assert 'data-name="Taipei (Taiwan)"' in page
    row = listed[listed.index('href="/organizations/uclg/"') :]
    assert '<td class="num" data-label="member cities">1</td>' in row[: row.index("</tr>")]
