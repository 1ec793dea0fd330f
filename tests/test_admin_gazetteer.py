"""Curators pick real places from the offline gazetteer instead of typing coordinates."""

import html

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from cities import gazetteer
from cities.models import City
from tests.conftest import admin_url, form_data, make_city, make_user

pytestmark = pytest.mark.django_db

SEARCH = reverse("admin:cities_city_gazetteer")
ODESA = 698740  # GeoNames id of Odesa, Ukraine


def post_city(client, **fields):
    data = form_data(client.get(admin_url(City, "add")))
    data.update(fields)
    return client.post(admin_url(City, "add"), data)


def test_the_pick_list_finds_places_by_any_spelling_largest_first(editor_client):
    make_city(name="Odesa", country="UA", geonames_id=ODESA)
    results = editor_client.get(SEARCH, {"term": "Одеса"}).json()["results"]
    first = results[0]
    assert (first["id"], first["name"], first["country"]) == (ODESA, "Odesa", "UA")
    assert first["text"].startswith("Odesa, Ukraine · ")
    assert first["text"].endswith("46.486, 30.744 — in the atlas as Odesa")
    assert "Odessa, United States of America" in results[1]["text"]


def test_picking_a_place_fills_in_the_city_and_cites_geonames(editor_client, editor):
    response = post_city(editor_client, name="", gazetteer_place=str(ODESA))
    assert response.status_code == 302
    city = City.objects.get()
    assert (city.name, city.country, city.geonames_id) == ("Odesa", "UA", ODESA)
    assert (round(city.latitude, 3), round(city.longitude, 3)) == (46.486, 30.744)
    citation = city.citations.get()
    assert (citation.source.slug, citation.locator) == ("geonames-cities", f"geonames {ODESA}")
    assert city.history.get().history_user == editor


def test_a_typed_name_is_kept_and_the_coordinates_come_from_the_pick(editor_client):
    post_city(editor_client, name="Odessa", latitude="1", longitude="1", gazetteer_place=ODESA)
    city = City.objects.get()
    assert (city.name, city.country, round(city.latitude, 2)) == ("Odessa", "UA", 46.49)


def test_a_place_in_the_atlas_already_is_refused_in_words(editor_client):
    make_city(name="Odesa", country="UA", geonames_id=ODESA)
    response = post_city(editor_client, name="Odessa", gazetteer_place=ODESA)
    message = "Odesa is in the atlas already, as Odesa (UA): edit that city, or merge the two."
    assert html.escape(message) in response.content.decode()
    assert City.objects.count() == 1


def test_without_a_pick_the_name_is_still_needed(editor_client):
    response = post_city(editor_client, name="", country="UA")
    assert html.escape("Give the city's name, or pick it from the gazetteer.") in (
        response.content.decode()
    )
    assert not City.objects.exists()


def test_the_form_shows_the_pick_again_when_it_comes_back_with_an_error(editor_client):
    response = post_city(editor_client, name="Odesa", gazetteer_place=ODESA, wikidata_id="x")
    page = response.content.decode()
    assert f'<option value="{ODESA}" selected>Odesa, Ukraine' in page
    assert not City.objects.exists()


def test_only_curators_who_may_add_or_change_cities_search_it(client):
    viewer = make_user()
    viewer.user_permissions.add(Permission.objects.get(codename="view_city"))
    client.force_login(viewer)
    assert client.get(SEARCH, {"term": "odes"}).status_code == 403


def test_the_pick_is_left_out_when_the_package_is_missing(editor_client, monkeypatch):
    monkeypatch.setattr(gazetteer, "available", lambda: False)
    response = editor_client.get(admin_url(City, "add"))
    assert "gazetteer_place" not in response.context["adminform"].form.fields
    assert post_city(editor_client, name="Odesa").status_code == 302
