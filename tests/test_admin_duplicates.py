"""Possible duplicate cities in the admin, and merging one into the other."""

import html

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from cities.models import AlternateName, City, CityCitation
from partnerships.models import Membership, Tie, TieCitation
from tests.conftest import make_city, make_organization, make_source, make_tie

pytestmark = pytest.mark.django_db

DUPLICATES = reverse("admin:cities_city_duplicates")
MERGE = reverse("admin:cities_city_merge")


def shows(response, text):
    return html.escape(text) in response.content.decode()


@pytest.fixture
def constanta():
    """Constanța (comma below, curated) and Constanţa (cedilla, from an old list), each with
    ties, citations and names of their own, and one tie that both have with Yokohama."""
    keep = make_city(name="Constanța", country="RO", latitude=44.17, longitude=28.63)
    other = make_city(name="Constanţa", country="RO", latitude=44.18, longitude=28.65)
    yokohama = make_city(name="Yokohama", country="JP")
    source = make_source()
    make_tie(keep, yokohama, kind="sister", source=source)
    make_tie(yokohama, other, kind="sister", source=make_source())  # collapses into keep's
    for _ in range(3):
        make_tie(other, make_city(country="FR"), source=source)
    make_tie(keep, other, kind="partner")  # would tie the city to itself
    CityCitation.objects.create(city=other, source=source, locator="p. 4")
    AlternateName.objects.create(city=other, name="Constantza", language="en")
    AlternateName.objects.create(city=other, name="Кюстенджа", language="bg")
    Membership.objects.create(organization=make_organization(), city=other)
    return keep, other


def test_the_list_shows_each_pair_with_reasons_names_countries_coordinates_and_ties(
    editor_client, constanta
):
    keep, other = constanta
    make_city(name="Feodosiya", country="UA", latitude=45.03, longitude=35.38)
    make_city(name="Feodosia", country="UA", latitude=45.03, longitude=35.38)
    response = editor_client.get(DUPLICATES)

    assert response.status_code == 200
    assert shows(response, "2 possible duplicate pairs.")
    pairs = list(response.context["page"])
    first = pairs[0]
    assert {first.city, first.other} == {keep, other}
    assert (first.city.tie_count, first.other.tie_count) == (2, 5)
    for text in ("same name; 1.9 km apart", "Constanța", "Constanţa", "44.170, 28.630"):
        assert shows(response, text)
    assert shows(response, "5 ties")
    assert shows(response, "similar names (94%)")
    assert shows(response, "Merge B into A") and shows(response, "Merge A into B")


def test_the_list_narrows_to_one_country(editor_client, constanta):
    make_city(name="Feodosiya", country="UA")
    make_city(name="Feodosia", country="UA")
    response = editor_client.get(DUPLICATES, {"country": "UA"})
    assert [c.city.name for c in response.context["page"]] == ["Feodosiya"]
    assert shows(response, "1 possible duplicate pair.")


def test_a_researcher_sees_the_list_but_cannot_merge(client, researcher, constanta):
    keep, other = constanta
    client.force_login(researcher)
    response = client.get(DUPLICATES)
    assert response.status_code == 200
    assert not shows(response, "Merge B into A")
    assert shows(response, "Merging needs the right to change and delete cities (Editors).")

    for data in ({"keep": keep.pk, "other": other.pk}, {**_confirm(keep, other)}):
        assert client.post(MERGE, data).status_code == 403
    assert City.objects.filter(pk=other.pk).exists()
    assert Tie.objects.for_city(other).count() == 5


def _confirm(keep, other):
    return {"keep": keep.pk, "other": other.pk, "confirm": "yes"}


def test_an_editor_is_shown_what_will_move_before_anything_does(editor_client, constanta):
    keep, other = constanta
    ties_before = Tie.objects.count()
    history_before = Tie.history.count()

    response = editor_client.post(MERGE, {"keep": keep.pk, "other": other.pk})

    assert response.status_code == 200
    assert response.context["report"].moved == {
        "ties": 3,
        "tie citations": 1,
        "memberships": 1,
        "city citations": 1,
        "alternate names": 3,
    }
    for text in (
        "3 ties",
        "1 memberships",
        "3 alternate names",
        "1 tie of Constanţa duplicates one Constanța has already",
        "These ties join the two cities",
        "Yes, merge Constanţa into Constanța",
    ):
        assert shows(response, text)
    # Nothing has moved yet: the preview was rolled back, history included.
    assert City.objects.filter(pk=other.pk).exists()
    assert Tie.objects.count() == ties_before
    assert Tie.history.count() == history_before
    assert Tie.objects.for_city(other).count() == 5


def test_an_editor_merges_and_every_tie_citation_and_name_moves(editor_client, editor, constanta):
    keep, other = constanta
    names = {*other.alternate_names.values_list("name", flat=True), other.name}
    citations = TieCitation.objects.count()
    partners = {t.partner_of(other).pk for t in Tie.objects.for_city(other)} - {keep.pk}

    response = editor_client.post(MERGE, _confirm(keep, other), follow=True)

    assert response.redirect_chain[-1][0] == DUPLICATES
    assert shows(response, "Merged Constanţa into")
    assert shows(
        response,
        "Moved: tie citations 1, ties 3, memberships 1, city citations 1, alternate names 3; "
        "1 tie collapsed into the kept city's own; 1 tie between the two removed; "
        "2 differing values noted in the curator notes.",
    )
    assert not City.objects.filter(pk=other.pk).exists()
    ties = Tie.objects.for_city(keep)
    assert {t.partner_of(keep).pk for t in ties} == partners
    assert ties.count() == 4  # Yokohama (collapsed) and the three French towns
    # Only the tie between the two cities went, with its citations (it had none).
    assert TieCitation.objects.count() == citations
    assert set(keep.alternate_names.values_list("name", flat=True)) == names
    assert keep.citations.count() == 1
    assert Membership.objects.get().city == keep
    assert keep.history.first().history_user == editor
    assert LogEntry.objects.get().object_id == str(keep.pk)
    assert shows(response, "0 possible duplicate pairs.")


def test_a_pair_merged_meanwhile_gives_a_message_not_an_error(editor_client, constanta):
    keep, other = constanta
    editor_client.post(MERGE, _confirm(keep, other))
    response = editor_client.post(MERGE, _confirm(keep, other), follow=True)
    assert shows(response, "These two cities cannot be merged")
    assert City.objects.filter(pk=keep.pk).exists()


def make_pair(n):
    a = make_city(name=f"Twinsville {n}", country="FR", latitude=-60 + 4 * n, longitude=2)
    b = make_city(name=f"Twinsville {n}", country="FR", latitude=-60 + 4 * n, longitude=2.01)
    make_tie(a, make_city(country="JP"))
    AlternateName.objects.create(city=b, name=f"Twinsvile {n}")
    return a, b


def test_the_list_queries_do_not_grow_with_pairs(editor_client, django_assert_num_queries):
    make_pair(0)
    editor_client.get(DUPLICATES)
    # 1 session, 2 user, 3-4 the user's and groups' permissions, 5 every city and
    # 6 their alternate names (duplicate detection compares them all in memory), 7 the tie
    # counts of the cities on the page, 8 the countries for the filter.
    with django_assert_num_queries(8):
        few = editor_client.get(DUPLICATES)
    for n in range(1, 30):
        make_pair(n)
    with django_assert_num_queries(8):
        many = editor_client.get(DUPLICATES)
    assert len(few.context["page"]) == 1
    assert len(many.context["page"]) == 30
