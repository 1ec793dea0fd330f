"""Duplicate cities: detection with reasons, the merge that loses nothing, the curation counts."""

import pytest

from cities.duplicates import find_duplicate_cities
from cities.models import AlternateName, City, CityCitation, Theme
from partnerships.curation import needs_attention_counts
from partnerships.merging import merge_cities
from partnerships.models import (
    Event,
    Initiative,
    Membership,
    MembershipCitation,
    Organization,
    StatedFigure,
    Tie,
    TieCitation,
)
from tests.conftest import make_city, make_organization, make_source, make_tie, make_user

pytestmark = pytest.mark.django_db


def pairs(candidates):
    """{{name, name}: reasons}."""
    return {frozenset((c.city.name, c.other.name)): c.reasons for c in candidates}


def test_duplicates_are_listed_with_their_reasons():
    make_city(name="Constanţa", country="RO", latitude=44.18, longitude=28.65)
    make_city(name="Constanța", country="RO", latitude=44.17, longitude=28.63)
    make_city(name="Feodosiya", country="UA", latitude=45.03, longitude=35.38)
    make_city(name="Feodosia", country="UA", latitude=45.03, longitude=35.38)
    make_city(name="Sankt Vith", country="BE", latitude=50.28, longitude=6.12)
    make_city(name="Vith", country="BE", latitude=50.29, longitude=6.13)
    found = pairs(find_duplicate_cities())
    assert found[frozenset(("Constanța", "Constanţa"))] == ["same name", "1.9 km apart"]
    assert found[frozenset(("Feodosia", "Feodosiya"))] == ["similar names (94%)", "0.0 km apart"]
    assert found[frozenset(("Sankt Vith", "Vith"))] == ["1.3 km apart"]
    assert len(found) == 3


def test_neighbours_and_namesakes_abroad_are_not_duplicates():
    make_city(name="Prague 1", country="CZ", latitude=50.09, longitude=14.42)
    make_city(name="Prague 7", country="CZ", latitude=50.10, longitude=14.43)
    make_city(name="Berat", country="AL", latitude=40.70, longitude=19.96)
    make_city(name="Bérat", country="FR", latitude=43.38, longitude=1.18)
    make_city(name="Bad Urach", country="DE", latitude=48.49, longitude=9.40)
    make_city(name="Bad Wurzach", country="DE", latitude=47.91, longitude=9.90)
    make_city(name="Frankfurt (Oder)", country="DE", latitude=52.34, longitude=14.55)
    make_city(name="Słubice", country="PL", latitude=52.35, longitude=14.56)
    assert find_duplicate_cities() == []


def test_an_alternate_name_counts_for_duplicates():
    odesa = make_city(name="Odesa", country="UA", latitude=46.48, longitude=30.73)
    AlternateName.objects.create(city=odesa, name="Odessa")
    make_city(name="Odessa", country="UA")
    assert [c.reasons for c in find_duplicate_cities()] == [["same name"]]


def test_finding_duplicates_takes_two_queries_whatever_the_number_of_cities(
    django_assert_num_queries,
):
    for n in (3, 30):
        for i in range(n):
            make_city(name=f"Town {i}", country="FR", latitude=40 + i, longitude=2)
        # cities; their alternate names.
        with django_assert_num_queries(2):
            find_duplicate_cities()


@pytest.fixture
def two_odesas():
    """A curated Odesa and a duplicate 'Odessa' carrying something of every kind."""
    user = make_user()
    keep = make_city(name="Odesa", country="UA")
    other = make_city(
        name="Odessa", country="UA", latitude=46.48, longitude=30.73, wikidata_id="Q1874"
    )
    AlternateName.objects.create(city=other, name="Одеса", language="uk")
    AlternateName.objects.create(city=other, name="Odesa", language="")
    article, dataset = make_source(), make_source()
    yokohama, lyon = make_city(name="Yokohama"), make_city(name="Lyon", country="FR")
    kept_tie = make_tie(keep, yokohama, kind="sister", source=article)
    twin_tie = make_tie(yokohama, other, kind="sister", start="1965")
    TieCitation.objects.create(tie=twin_tie, source=dataset, locator="row 7")
    TieCitation.objects.create(tie=twin_tie, source=article, locator="p. 1")  # same as kept
    moved_tie = make_tie(other, lyon, kind="partner", source=dataset)
    self_tie = make_tie(keep, other, kind="unspecified", source=dataset)
    event = Event.objects.create(kind="visit", title="Mayor visits", city=other, tie=twin_tie)
    c40, uclg = make_organization(name="C40"), make_organization(name="UCLG")
    Membership.objects.create(organization=c40, city=keep)
    duplicate_membership = Membership.objects.create(organization=c40, city=other, since="2019")
    MembershipCitation.objects.create(membership=duplicate_membership, source=dataset)
    Membership.objects.create(organization=uclg, city=other)
    CityCitation.objects.create(city=other, source=dataset, locator="row 7")
    CityCitation.objects.create(city=keep, source=article, locator="p. 2")
    CityCitation.objects.create(city=other, source=article, locator="p. 2")
    initiative = Initiative.objects.create(name="Port twinning", kind="project", lead_city=other)
    initiative.partner_cities.add(other)
    figure = StatedFigure.objects.create(city=other, measure="population", value=1_000_000)
    Organization.objects.filter(pk=uclg.pk).update(headquarters=other)
    other.themes.add(Theme.objects.create(name="Peace", slug="peace"))
    return {
        "user": user, "keep": keep, "other": other, "kept_tie": kept_tie, "twin_tie": twin_tie,
        "moved_tie": moved_tie, "self_tie": self_tie, "event": event, "initiative": initiative,
        "figure": figure, "uclg": uclg, "article": article, "dataset": dataset,
    }  # fmt: skip


def test_merge_moves_every_tie_citation_name_and_link_onto_the_kept_city(two_odesas):
    d = two_odesas
    keep, other = d["keep"], d["other"]
    report = merge_cities(keep, other, user=d["user"])
    keep.refresh_from_db()
    assert not City.objects.filter(pk=other.pk).exists()
    # Ties: the duplicate collapses into the kept tie with its citations, the other moves.
    partners = sorted((t.partner_of(keep).name, t.kind) for t in Tie.objects.for_city(keep))
    assert partners == [("Lyon", "partner"), ("Yokohama", "sister")]
    kept_tie = Tie.objects.get(pk=d["kept_tie"].pk)
    assert sorted(kept_tie.citations.values_list("locator", flat=True)) == ["p. 1", "row 7"]
    assert kept_tie.start == "1965"  # the date only the duplicate knew
    assert Event.objects.get(pk=d["event"].pk).tie == kept_tie
    assert report.collapsed_ties == [(d["twin_tie"].pk, kept_tie.pk)]
    # The tie between the two would tie the city to itself: removed, and said so.
    assert not Tie.objects.filter(pk=d["self_tie"].pk).exists()
    assert len(report.dropped_self_ties) == 1
    assert f"cited: {d['dataset'].slug} p. 1" in report.dropped_self_ties[0]
    # Memberships: the repeat collapses keeping its date and citation; the other moves.
    memberships = Membership.objects.filter(city=keep).order_by("organization__name")
    assert [(m.organization.name, m.since) for m in memberships] == [("C40", "2019"), ("UCLG", "")]
    assert memberships[0].citations.count() == 1
    # Citations and names.
    cited = sorted(keep.citations.values_list("locator", flat=True))
    assert cited == ["p. 2", "row 7"]
    names = sorted(keep.alternate_names.values_list("name", "language"))
    assert names == [("Odessa", ""), ("Одеса", "uk")]
    # Everything else that pointed at the duplicate.
    assert Event.objects.get(pk=d["event"].pk).city == keep
    initiative = Initiative.objects.get(pk=d["initiative"].pk)
    assert initiative.lead_city == keep and list(initiative.partner_cities.all()) == [keep]
    assert StatedFigure.objects.get(pk=d["figure"].pk).city == keep
    assert Organization.objects.get(pk=d["uclg"].pk).headquarters == keep
    assert list(keep.themes.values_list("slug", flat=True)) == ["peace"]
    # Fields the kept city lacked.
    assert (keep.latitude, keep.longitude, keep.wikidata_id) == (46.48, 30.73, "Q1874")
    assert "merged Odessa (odessa)" in keep.curator_notes


def test_merge_is_recorded_in_the_edit_history_as_one_reason(two_odesas):
    d = two_odesas
    merge_cities(d["keep"], d["other"], user=d["user"])
    reason = "merge: Odessa (odessa) into Odesa (odesa)"
    deleted = City.history.get(id=d["other"].pk, history_type="-")
    assert (deleted.history_user, deleted.history_change_reason) == (d["user"], reason)
    moved = Tie.history.filter(id=d["moved_tie"].pk).latest("history_date")
    assert (moved.history_type, moved.history_change_reason) == ("~", reason)
    assert moved.city_a_id == d["keep"].pk
    kept = City.history.filter(id=d["keep"].pk).latest("history_date")
    assert kept.history_change_reason == reason and kept.latitude == 46.48


def test_merge_that_fails_half_way_changes_nothing(two_odesas, monkeypatch):
    d = two_odesas
    before = (Tie.objects.count(), TieCitation.objects.count(), AlternateName.objects.count())

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("partnerships.merging._move_remaining", fail)
    with pytest.raises(RuntimeError):
        merge_cities(d["keep"], d["other"])
    assert (Tie.objects.count(), TieCitation.objects.count(), AlternateName.objects.count()) == (
        before
    )
    assert City.objects.filter(pk=d["other"].pk).exists()


def test_a_city_cannot_be_merged_into_itself():
    city = make_city()
    with pytest.raises(ValueError, match="into itself"):
        merge_cities(city, city)


def test_needs_attention_counts_what_curators_should_look_at():
    dated = make_tie(start="1965", source=make_source(), verification="verified")
    make_tie(dated.city_a)  # undated, unsourced, unverified
    make_city(name="Nowhere", country="")
    make_city(name="Odessa", country="UA")
    make_city(name="Odessa", country="UA")
    assert needs_attention_counts() == {
        "ties_undated": 1,
        "ties_unsourced": 1,
        "membership_unsourced": 0,
        "initiative_unsourced": 0,
        "event_unsourced": 0,
        "statedfigure_unsourced": 0,
        "ties_unverified": 1,
        "cities_without_coordinates": 6,
        "cities_without_country": 1,
        "cities_location_check": 0,
        "possible_duplicates": 1,
        "corrections_new": 0,
    }


def test_collapsing_ties_that_disagree_keeps_one_value_and_notes_the_other():
    keep, other, partner = make_city(name="Odesa"), make_city(name="Odessa"), make_city()
    kept_tie = make_tie(keep, partner, kind="sister", start="1957")
    make_tie(other, partner, kind="sister", start="1965")
    report = merge_cities(keep, other)
    kept_tie.refresh_from_db()
    assert kept_tie.start == "1957"
    assert report.conflicts == [f"tie {kept_tie.pk} start: kept '1957', dropped '1965'"]
    assert "dropped '1965'" in kept_tie.curator_notes
    assert "dropped '1965'" in City.objects.get(pk=keep.pk).curator_notes
