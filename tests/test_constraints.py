"""Invariants hold in the database itself (no clean()) and are explained by full_clean()."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from cities.models import City, CityCitation
from partnerships.models import Membership, Organization, StatedFigure, Tie
from tests.conftest import make_city, make_organization, make_source, make_tie

pytestmark = pytest.mark.django_db


def refused_by_database(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def messages(obj):
    with pytest.raises(ValidationError) as error:
        obj.full_clean()
    return error.value.message_dict


def test_database_refuses_a_city_tied_to_itself():
    city = make_city()
    refused_by_database(lambda: Tie.objects.create(city_a=city, city_b=city, kind="sister"))
    assert messages(Tie(city_a=city, city_b=city, kind="sister"))["city_b"] == [
        "A city cannot be tied to itself."
    ]


def test_a_tie_entered_the_other_way_round_is_the_same_tie():
    yokohama, odesa = make_city(name="Yokohama"), make_city(name="Odesa", country="UA")
    make_tie(yokohama, odesa, kind="mou")
    refused_by_database(lambda: Tie.objects.create(city_a=odesa, city_b=yokohama, kind="mou"))
    errors = messages(Tie(city_a=odesa, city_b=yokohama, kind="mou"))
    assert errors["__all__"] == [
        "These two cities already have a tie of this kind (entered the other way round "
        "counts too): edit that tie instead."
    ]


def test_the_same_pair_may_have_ties_of_different_kinds_and_shows_on_both_cities():
    a, b = make_city(), make_city()
    make_tie(a, b, kind="sister")
    make_tie(b, a, kind="mou")
    assert Tie.objects.for_city(a).count() == 2
    assert Tie.objects.for_city(b).count() == 2
    assert Tie.objects.between(b, a).count() == 2


def test_an_end_before_the_start_is_refused():
    a, b = make_city(), make_city()
    refused_by_database(
        lambda: Tie.objects.create(city_a=a, city_b=b, kind="sister", start="2001", end="1999")
    )
    errors = messages(Tie(city_a=a, city_b=b, kind="sister", start="2001", end="1999"))
    assert errors["end"] == ["The end date lies before the start date."]
    # Overlapping uncertain dates are not "before": 196X may end in 1965.
    Tie(city_a=a, city_b=b, kind="sister", start="196X", end="1965").full_clean()


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "twinned"), ("status", "dormant"), ("date_basis", "rumour")],
)
def test_choices_hold_even_for_update_and_imports(field, value):
    tie = make_tie()
    refused_by_database(lambda: Tie.objects.filter(pk=tie.pk).update(**{field: value}))


def test_verification_is_limited_to_its_states():
    city = make_city()
    refused_by_database(lambda: City.objects.filter(pk=city.pk).update(verification="maybe"))


def test_unknown_country_codes_are_refused():
    refused_by_database(lambda: City.objects.create(name="Atlantis", country="ZZ"))
    errors = messages(City(name="Atlantis", country="ZZ"))
    assert "not a known country code" in errors["country"][0]
    assert City.objects.create(name="Prishtina", country="XK").country_name == "Kosovo"


@pytest.mark.parametrize("bad", ["12345", "q42", "Q", "Q0123", "P31"])
def test_wikidata_ids_have_the_form_q_and_digits(bad):
    refused_by_database(lambda: City.objects.create(name="X", wikidata_id=bad))
    assert (
        "letter Q followed by digits" in messages(City(name="X", wikidata_id=bad))["wikidata_id"][0]
    )
    City(name="Yokohama", country="JP", wikidata_id="Q38283").full_clean()


def test_coordinates_in_range_and_in_pairs():
    refused_by_database(lambda: City.objects.create(name="X", latitude=91, longitude=0))
    refused_by_database(lambda: City.objects.create(name="X", latitude=10, longitude=181))
    refused_by_database(lambda: City.objects.create(name="X", latitude=10))


def test_a_membership_has_exactly_one_member():
    org = make_organization()
    refused_by_database(lambda: Membership.objects.create(organization=org))
    errors = messages(Membership(organization=org))
    assert errors["__all__"] == ["Choose either a member city or a member organization."]


def test_an_organization_is_not_its_own_parent():
    org = make_organization()
    refused_by_database(lambda: Organization.objects.filter(pk=org.pk).update(parent=org))
    org.parent = org
    assert messages(org)["parent"] == ["An organization cannot be its own parent."]


def test_a_stated_figure_is_about_exactly_one_subject():
    refused_by_database(lambda: StatedFigure.objects.create(slug="f", measure="members", value=1))
    both = StatedFigure(
        slug="g", measure="members", value=1, city=make_city(), organization=make_organization()
    )
    assert "exactly one city, organization or initiative" in messages(both)["__all__"][0]


def test_a_citation_needs_a_source():
    city = make_city()
    refused_by_database(lambda: CityCitation.objects.create(city=city, source=None))
    assert "source" in messages(CityCitation(city=city))


def test_a_claim_cites_a_source_at_a_place_once():
    city, source = make_city(), make_source()
    CityCitation.objects.create(city=city, source=source, locator="paragraph 3")
    refused_by_database(
        lambda: CityCitation.objects.create(city=city, source=source, locator="paragraph 3")
    )
