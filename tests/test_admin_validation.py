"""Bad input through the admin's add forms is refused in the researcher's words, and
nothing of it is saved."""

import html

import pytest

from cities.models import City, CityCitation
from partnerships.models import DUPLICATE_TIE, END_BEFORE_START, Tie, TieCitation
from tests.conftest import (
    add_inline_row,
    admin_url,
    form_data,
    make_city,
    make_source,
    make_tie,
    shows,
)

pytestmark = pytest.mark.django_db


def post_tie(client, **fields):
    """The tie form posted with its fields and, as every new tie needs, a cited source."""
    data = form_data(client.get(admin_url(Tie, "add")))
    data.update({"kind": "sister", **fields})
    add_inline_row(data, "citations", source=make_source().pk, locator="p. 1")
    return client.post(admin_url(Tie, "add"), data)


def post_city(client, **fields):
    data = form_data(client.get(admin_url(City, "add")))
    data.update({"name": "Odesa", **fields})
    return client.post(admin_url(City, "add"), data)


def refused(response, message):
    """The form came back (no redirect) and shows `message`, once, beside the fields."""
    page = response.content.decode()
    return response.status_code == 200 and page.count(html.escape(message)) == 1


def test_a_city_tied_to_itself_is_refused(editor_client):
    odesa = make_city(name="Odesa", country="UA")
    response = post_tie(editor_client, city_a=odesa.pk, city_b=odesa.pk)
    assert refused(response, "A city cannot be tied to itself.")
    assert not Tie.objects.exists()


def test_a_duplicate_tie_entered_the_other_way_round_is_refused(editor_client):
    odesa, yokohama = make_city(name="Odesa"), make_city(name="Yokohama")
    make_tie(odesa, yokohama, kind="sister")
    response = post_tie(editor_client, city_a=yokohama.pk, city_b=odesa.pk, kind="sister")
    assert refused(response, DUPLICATE_TIE)
    assert Tie.objects.count() == 1


def test_the_same_pair_with_another_kind_of_tie_is_accepted(editor_client):
    odesa, yokohama = make_city(name="Odesa"), make_city(name="Yokohama")
    make_tie(odesa, yokohama, kind="sister")
    response = post_tie(editor_client, city_a=yokohama.pk, city_b=odesa.pk, kind="mou")
    assert response.status_code == 302
    assert Tie.objects.count() == 2


def test_an_end_before_the_start_is_refused(editor_client):
    a, b = make_city(), make_city()
    response = post_tie(editor_client, city_a=a.pk, city_b=b.pk, start="1990", end="1985")
    assert refused(response, END_BEFORE_START)
    assert not Tie.objects.exists()


def test_a_date_that_is_not_edtf_is_refused_with_examples(editor_client):
    a, b = make_city(), make_city()
    response = post_tie(editor_client, city_a=a.pk, city_b=b.pk, start="spring of '65")
    assert refused(response, "is not a date this atlas understands")
    assert shows(response, "for example 1965, 2023-05, 2023-05-12, 1957~ (about 1957)")
    assert not Tie.objects.exists()


def test_an_unknown_country_code_is_refused(editor_client):
    response = post_city(editor_client, country="ZZ")
    assert refused(response, "“ZZ” is not a known country code")
    assert shows(response, "two-letter ISO 3166-1 code, for example JP for Japan")
    assert not City.objects.exists()


@pytest.mark.parametrize("wikidata_id", ["38283", "q38283", "Q038283", "Q 38283"])
def test_a_malformed_wikidata_id_is_refused(editor_client, wikidata_id):
    response = post_city(editor_client, country="UA", wikidata_id=wikidata_id)
    assert refused(response, "A Wikidata id is the letter Q followed by digits")
    assert not City.objects.exists()


def test_a_citation_row_without_a_source_is_refused_and_the_tie_not_saved(editor_client):
    a, b = make_city(), make_city()
    data = form_data(editor_client.get(admin_url(Tie, "add")))
    data.update(city_a=a.pk, city_b=b.pk, kind="sister", start="1965")
    add_inline_row(data, "citations", source="", locator="paragraph 3")
    response = editor_client.post(admin_url(Tie, "add"), data)
    assert refused(response, "Choose the source this claim cites.")
    assert not Tie.objects.exists()
    assert not TieCitation.objects.exists()


def test_a_citation_row_without_a_source_is_refused_on_an_existing_city(editor_client):
    odesa = make_city(name="Odesa", country="UA")
    page = admin_url(City, "change", odesa.pk)
    data = form_data(editor_client.get(page))
    data["summary"] = "Port city on the Black Sea."
    add_inline_row(data, "citations", locator="paragraph 3")
    response = editor_client.post(page, data)
    assert refused(response, "Choose the source this claim cites.")
    odesa.refresh_from_db()
    assert odesa.summary == ""
    assert not CityCitation.objects.exists()


def test_a_tie_with_its_source_is_saved_with_the_citation(editor_client):
    a, b = make_city(), make_city()
    source = make_source()
    data = form_data(editor_client.get(admin_url(Tie, "add")))
    data.update(city_a=a.pk, city_b=b.pk, kind="sister", start="1957~")
    add_inline_row(data, "citations", source=source.pk, locator="paragraph 3")
    assert editor_client.post(admin_url(Tie, "add"), data).status_code == 302
    tie = Tie.objects.get()
    assert tie.start_lower.year == 1957
    assert [(c.source, c.locator) for c in tie.citations.all()] == [(source, "paragraph 3")]


def test_a_new_tie_opens_with_a_citation_row_and_is_refused_without_a_source(editor_client):
    a, b = make_city(), make_city()
    page = editor_client.get(admin_url(Tie, "add"))
    assert page.context["inline_admin_formsets"][0].formset.total_form_count() == 1
    # A new source is made from the row itself, in a popup, without leaving the form.
    assert 'id="add_id_citations-0-source"' in page.content.decode()
    data = form_data(page)
    data.update(city_a=a.pk, city_b=b.pk, kind="sister")
    response = editor_client.post(admin_url(Tie, "add"), data)
    assert response.status_code == 200
    assert shows(response, "Cite at least one source: the atlas shows no claim without one.")
    assert not Tie.objects.exists()


def test_a_source_made_from_the_tie_form_gets_its_key_from_its_title(editor_client):
    from cities.models import Source

    data = form_data(editor_client.get(admin_url(Source, "add") + "?_popup=1"))
    data.update(kind="article", title="Yokohama City: International Strategy", _popup="1")
    response = editor_client.post(admin_url(Source, "add") + "?_popup=1", data)
    assert response.status_code == 200  # the popup closes, handing the new source to the form
    assert Source.objects.get().slug == "yokohama-city-international-strategy"


def test_after_saving_the_admin_shows_the_tie_just_saved(editor_client):
    a, b = make_city(), make_city()
    response = post_tie(editor_client, city_a=a.pk, city_b=b.pk)
    assert response["Location"] == admin_url(Tie, "change", Tie.objects.get().pk)
