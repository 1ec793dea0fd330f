"""The FilterSets the pages and the API share: each filter, and nonsense values."""

import pytest
from django import forms

from cities.models import AlternateName, Theme
from partnerships.filters import CityFilter, JoinedSelect, TieFilter
from partnerships.models import Membership
from tests.conftest import make_city, make_organization, make_source, make_tie

pytestmark = pytest.mark.django_db


@pytest.fixture
def atlas():
    odesa = make_city(name="Odesa", slug="odesa", country="UA")
    AlternateName.objects.create(city=odesa, name="Одеса", language="uk", kind="native")
    AlternateName.objects.create(city=odesa, name="Odessa", language="ru-Latn")
    yokohama = make_city(name="Yokohama", slug="yokohama", country="JP")
    taipei = make_city(name="Taipei", slug="taipei", country="TW")
    constanta = make_city(name="Constanța", slug="constanta", country="RO")
    make_city(name="Lonely", slug="lonely", country="FR")
    source = make_source(slug="article")
    make_tie(yokohama, odesa, kind="mou", status="active", start="2023-05", source=source)
    make_tie(yokohama, taipei, kind="sister", start="1965~")
    make_tie(taipei, constanta, kind="friendship", status="ended")
    uclg = make_organization(name="UCLG", slug="uclg")
    aspac = make_organization(name="UCLG-ASPAC", slug="uclg-aspac", parent=uclg)
    Membership.objects.create(organization=aspac, city=taipei)
    peace = Theme.objects.create(name="Peace", slug="peace")
    yokohama.themes.add(peace)
    return {"odesa": odesa, "yokohama": yokohama, "taipei": taipei}


def slugs(filterset):
    return sorted(c.slug for c in filterset.qs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Odessa", ["odesa"]),
        ("ОДЕСА", ["odesa"]),
        ("odesa", ["odesa"]),
        ("Constanta", ["constanta"]),
        ("constanţa", ["constanta"]),  # cedilla instead of comma below
        ("yoko", ["yokohama"]),
    ],
)
def test_search_matches_every_name_ignoring_case_and_accents(atlas, text, expected):
    assert slugs(CityFilter({"q": text})) == expected


def test_city_filters(atlas):
    assert slugs(CityFilter({"country": "JP"})) == ["yokohama"]
    assert slugs(CityFilter({"region": "EU"})) == ["constanta", "lonely", "odesa"]
    assert slugs(CityFilter({"kind": "sister"})) == ["taipei", "yokohama"]
    assert slugs(CityFilter({"theme": "peace"})) == ["yokohama"]
    assert slugs(CityFilter({"has_ties": "false"})) == ["lonely"]
    # Members of a branch count as members of the network it belongs to.
    assert slugs(CityFilter({"organization": "uclg"})) == ["taipei"]
    assert slugs(CityFilter({"organization": "uclg-aspac"})) == ["taipei"]


def test_city_ordering_by_number_of_ties(atlas):
    ordered = [c.slug for c in CityFilter({"ordering": "-ties"}).qs]
    assert ordered[:2] == ["yokohama", "taipei"]  # two ties each, then by primary key
    assert CityFilter({"ordering": "-ties"}).qs[0].tie_count == 2


def test_nonsense_city_filter_values_are_reported_and_ignored(atlas):
    filterset = CityFilter({"country": "ZZ", "kind": "cousin", "region": "Mars", "q": "yoko"})
    assert slugs(filterset) == ["yokohama"]
    assert set(filterset.errors) == {"country", "kind", "region"}


def test_tie_filters(atlas):
    def pairs(data):
        return sorted(f"{t.city_a.slug}-{t.city_b.slug}" for t in TieFilter(data).qs)

    assert pairs({"city": "odesa"}) == ["yokohama-odesa"]
    assert pairs({"q": "Одеса"}) == ["yokohama-odesa"]
    assert pairs({"kind": "sister"}) == ["yokohama-taipei"]
    assert pairs({"status": "ended"}) == ["taipei-constanta"]
    assert pairs({"decade": "1960"}) == ["yokohama-taipei"]
    assert pairs({"decade": "unknown"}) == ["taipei-constanta"]
    assert pairs({"country": "RO"}) == ["taipei-constanta"]
    assert pairs({"source": "article"}) == ["yokohama-odesa"]


def test_ties_without_a_date_come_last_on_every_database(atlas):
    starts = [t.start for t in TieFilter({}).qs]
    assert starts == ["1965~", "2023-05", ""]


def test_nonsense_tie_filter_values_are_reported_and_ignored(atlas):
    filterset = TieFilter({"decade": "1965", "status": "lost", "kind": "sister"})
    assert [t.kind for t in filterset.qs] == ["sister"]
    assert set(filterset.errors) == {"decade", "status"}


SELECTS = [
    (CityFilter, {}),
    (CityFilter, {"country": "JP", "region": "EU", "kind": "sister", "organization": "uclg"}),
    (CityFilter, {"theme": "peace", "has_ties": "true", "ordering": "-ties"}),
    (CityFilter, {"country": "XX", "ordering": "name,-ties"}),  # refused; two orderings
    (TieFilter, {"kind": "mou", "status": "ended", "decade": "1960", "country": "UA"}),
    (TieFilter, {"theme": "peace", "ordering": "city", "decade": "1066"}),
]


@pytest.mark.parametrize(("filterset_class", "data"), SELECTS)
def test_selects_write_the_html_djangos_templates_write(atlas, monkeypatch, filterset_class, data):
    Theme.objects.create(name="Ports & <harbours>", slug="ports")
    form = filterset_class(data).form
    names = [name for name, field in form.fields.items() if isinstance(field.widget, JoinedSelect)]
    joined = {name: str(form[name]) for name in names}
    monkeypatch.setattr(JoinedSelect, "render", forms.Select.render)
    assert joined == {name: str(form[name]) for name in names}
    assert len(names) == 7


def test_the_chosen_options_stay_selected_on_the_pages(atlas, client):
    Theme.objects.create(name="Ports & <harbours>", slug="ports")
    html = client.get("/cities/", {"country": "JP", "ordering": "-ties"}).content.decode()
    assert '<label for="id_country">Country</label><select name="country" id="id_country">' in html
    assert '<option value="JP" selected>Japan</option>' in html
    assert '<option value="-ties" selected>Number of ties (descending)</option>' in html
    assert '<option value="" selected>Any</option>' in html  # the region, not chosen
    assert '<option value="ports">Ports &amp; &lt;harbours&gt;</option>' in html
    html = client.get("/ties/", {"decade": "1960", "country": "UA"}).content.decode()
    assert '<option value="1960" selected>1960s</option>' in html
    assert '<option value="UA" selected>Ukraine</option>' in html
    assert html.count(" selected>") == 7  # one per list, the others on their first option
