"""Two researchers editing the same record in the admin: the second save does not silently
erase the first's change; it is refused with that change shown, and goes through only when
made again knowingly."""

import pytest
from django.test import Client

from cities.models import City

from .conftest import admin_url, form_data, make_city, make_user, shows

pytestmark = pytest.mark.django_db


def signed_in(group="Editor"):
    client = Client()
    client.force_login(make_user(group))
    return client


@pytest.fixture
def city():
    return make_city(name="Yokohama", slug="yokohama", population=3_700_000)


def test_a_stale_form_is_refused_with_the_other_change_shown(city):
    url = admin_url(City, "change", city.pk)
    first, second = signed_in(), signed_in()
    theirs = form_data(first.get(url))
    mine = form_data(second.get(url))

    theirs["name"] = "Yokohama-shi"
    assert first.post(url, theirs).status_code == 302

    mine["population"] = "3800000"
    refused = second.post(url, mine)
    assert refused.status_code == 200
    assert shows(refused, "While you had this form open")
    assert shows(refused, "name: “Yokohama” → “Yokohama-shi”")
    city.refresh_from_db()
    assert (city.name, city.population) == ("Yokohama-shi", 3_700_000)

    # Saved again, having seen it: the form's values replace theirs.
    again = form_data(refused)
    assert again["population"] == "3800000"
    assert second.post(url, again).status_code == 302
    city.refresh_from_db()
    assert (city.name, city.population) == ("Yokohama", 3_800_000)


def test_the_refusal_names_who_saved_the_other_change(city):
    url = admin_url(City, "change", city.pk)
    first, second = signed_in(), signed_in()
    theirs, mine = form_data(first.get(url)), form_data(second.get(url))
    theirs["name"] = "Yokohama City"
    first.post(url, theirs)
    who = City.history.filter(id=city.pk).order_by("-history_date").first().history_user
    refused = second.post(url, mine)
    assert shows(refused, f"{who.username} saved this city")


def test_a_form_nobody_else_touched_saves_as_before(city):
    url = admin_url(City, "change", city.pk)
    editor = signed_in()
    data = form_data(editor.get(url))
    data["population"] = "3750000"
    assert editor.post(url, data).status_code == 302
    city.refresh_from_db()
    assert city.population == 3_750_000


def test_a_change_made_outside_the_admin_is_caught_too(city):
    url = admin_url(City, "change", city.pk)
    editor = signed_in()
    data = form_data(editor.get(url))
    City.objects.filter(pk=city.pk).update(name="Yokohama (import)")
    data["population"] = "1"
    refused = editor.post(url, data)
    assert refused.status_code == 200
    assert shows(refused, "“Yokohama” → “Yokohama (import)”")
