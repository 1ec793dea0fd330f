"""The needs-attention page: what curators should look at next, counted and linked."""

import html

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from cities.models import City
from partnerships.models import Membership, Tie
from tests.conftest import make_city, make_organization, make_source, make_tie, make_user

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:needs_attention")


def rows(response):
    every = [*response.context["rows"], *response.context["unverified"]]
    return {row["key"]: row for row in every}


def queue(n):
    """n of each thing that needs attention, beside records that need none."""
    for _ in range(n):
        hub = make_city(country="UA", latitude=46.5, longitude=30.7, verification="verified")
        make_tie(hub, make_city(), start="1965", source=make_source(), verification="verified")
        make_tie(hub, make_city(latitude=None, longitude=None))  # undated, unsourced
        make_city(name="Somewhere", country="")
        Membership.objects.create(organization=make_organization(), city=hub)


def test_counts_and_their_links_to_the_filtered_lists(editor_client):
    queue(2)
    make_city(name="Constanța", country="RO")
    make_city(name="Constanţa", country="RO")
    make_city(
        name="Rome", country="US", latitude=41.89, longitude=12.48, location_flag="outside_country"
    )

    response = editor_client.get(PAGE)

    found = rows(response)
    assert {key: row["count"] for key, row in found.items()} == {
        "ties_undated": 2,
        "ties_unsourced": 2,
        "membership_unsourced": 2,
        "initiative_unsourced": 0,
        "event_unsourced": 0,
        "statedfigure_unsourced": 0,
        "ties_unverified": 2,
        "cities_without_coordinates": 2 * 3 + 2,
        "cities_without_country": 2,
        "cities_location_check": 1,
        "possible_duplicates": 1,
        "corrections_new": 0,
        "city_unverified": 2 * 3 + 3,
        "event_unverified": 0,
        "initiative_unverified": 0,
        "membership_unverified": 2,
        "organization_unverified": 2,
        "statedfigure_unverified": 0,
    }
    # Each link opens the list it counts: the same number of rows, and those rows.
    for key, row in found.items():
        listed = editor_client.get(row["url"])
        assert listed.status_code == 200, key
        if key == "possible_duplicates":
            assert listed.context["total"] == row["count"]
        else:
            assert listed.context["cl"].result_count == row["count"], key
    assert found["ties_undated"]["url"].endswith("/admin/partnerships/tie/?start_known=no")
    assert found["ties_unsourced"]["url"].endswith("?sourced=no")
    assert found["cities_without_country"]["url"].endswith("/admin/cities/city/?missing=country")
    undated = editor_client.get(found["ties_undated"]["url"]).context["cl"].result_list
    assert {t.start for t in undated} == {""}
    page = response.content.decode()
    assert f'<a href="{html.escape(found["ties_unsourced"]["url"])}">Ties without a source</a>' in (
        page
    )


def test_the_city_list_filters_cities_missing_coordinates_or_a_country(editor_client):
    located = make_city(latitude=1.0, longitude=2.0)
    nowhere = make_city()
    stateless = make_city(country="", latitude=1.0, longitude=2.0)
    changelist = reverse("admin:cities_city_changelist")
    missing = editor_client.get(changelist, {"missing": "coordinates"}).context["cl"]
    assert set(missing.result_list) == {nowhere}
    missing = editor_client.get(changelist, {"missing": "country"}).context["cl"]
    assert set(missing.result_list) == {stateless}
    every = editor_client.get(changelist).context["cl"].result_list
    assert set(every) == {located, nowhere, stateless}


def test_the_admin_index_links_to_the_queue(editor_client):
    page = editor_client.get(reverse("admin:index")).content.decode()
    assert PAGE in page
    assert reverse("admin:cities_city_duplicates") in page
    assert "/admin/partnerships/tie/?sourced=no" in page
    assert "/admin/cities/city/?missing=coordinates" in page


def test_anyone_who_may_view_the_records_sees_it_and_nobody_else(client, researcher):
    make_tie()
    client.force_login(researcher)
    assert client.get(PAGE).status_code == 200

    viewer = make_user()
    viewer.user_permissions.add(Permission.objects.get(codename="view_city"))
    client.force_login(viewer)
    response = client.get(PAGE)
    assert response.status_code == 200
    assert set(rows(response)) == {
        "cities_without_coordinates",
        "cities_without_country",
        "cities_location_check",
        "possible_duplicates",
        "city_unverified",
    }

    client.force_login(make_user())
    assert client.get(PAGE).status_code == 403
    assert PAGE not in client.get(reverse("admin:index")).content.decode()


def test_the_page_queries_do_not_grow_with_rows(editor_client, django_assert_num_queries):
    queue(1)
    editor_client.get(PAGE)
    # 1 session, 2 user, 3-4 the user's and groups' permissions; counts of 5 undated,
    # 6 unsourced ties, 7-10 unsourced memberships, initiatives, events and stated figures,
    # 11 unverified ties, 12 cities without coordinates, 13 without a country, 14 whose place
    # the gazetteer questions; 15 every city and 16 their alternate names for the duplicate
    # pairs (compared in memory); 17 corrections from readers to review; 18-23 unverified
    # cities, events, initiatives, memberships, organizations and stated figures.
    with django_assert_num_queries(23):
        few = editor_client.get(PAGE)
    queue(30)
    with django_assert_num_queries(23):
        many = editor_client.get(PAGE)
    assert rows(few)["ties_undated"]["count"] == 1
    assert rows(many)["ties_undated"]["count"] == 31
    assert City.objects.count() > 100 and Tie.objects.count() == 62
