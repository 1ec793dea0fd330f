"""The seed data set: every fact of the city diplomacy article, each citing its paragraph."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import models

from cities import dates
from cities.models import AlternateName, CitationBase, City, Source
from cities.text import fold
from partnerships.models import (
    Event,
    Initiative,
    Membership,
    Organization,
    StatedFigure,
    Tie,
)

FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "seed.json"
# The article lives beside the repository, not in it; the quote check needs it.
ARTICLE = Path(settings.BASE_DIR).parent / "shared" / "seed" / "city-diplomacy-article.txt"
SOURCE = "city-diplomacy-article"
SEED_APPS = ("cities", "partnerships")

pytestmark = pytest.mark.django_db


@pytest.fixture
def seed():
    call_command("loaddata", "seed", verbosity=0)


@pytest.fixture(scope="module")
def fixture_objects():
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def assert_cites(claim, paragraph):
    """The claim cites the article at "paragraph N"."""
    locators = {(c.source.slug, c.locator) for c in claim.citations.select_related("source")}
    assert (SOURCE, f"paragraph {paragraph}") in locators, f"{claim}: {sorted(locators)}"


def seed_models():
    return [m for app in SEED_APPS for m in apps.get_app_config(app).get_models()]


def citation_models():
    return [m for m in seed_models() if issubclass(m, CitationBase)]


# --- facts of the article -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "measure", "value", "qualifier", "paragraph", "shown"),
    [
        ("taipei-sister-cities", "sister_cities", 53, "exact", 8, "53 sister cities"),
        ("taipei-partner-cities", "partner_cities", 3, "exact", 8, "3 partner cities"),
        ("taipei-friendship-cities", "friendship_cities", 5, "exact", 8, "5 friendship cities"),
        ("yokohama-sister-cities", "sister_cities", 8, "exact", 5, "8 sister cities"),
        ("yokohama-partner-cities", "partner_cities", 7, "exact", 5, "7 partner cities"),
        (
            "yokohama-population", "population", 3_500_000, "more_than", 3,
            "more than 3,500,000 population",
        ),
        (
            "go-smart-members", "members", 2_000, "more_than", 7,
            "more than 2,000 members worldwide",
        ),
        (
            "yokohama-smart-city-project-companies", "partner_companies", 34, "exact", 4,
            "34 Japanese companies",
        ),
    ],
)  # fmt: skip
def test_stated_figures_keep_the_articles_numbers_and_qualifiers(
    seed, slug, measure, value, qualifier, paragraph, shown
):
    figure = StatedFigure.objects.get(slug=slug)
    assert (figure.measure, figure.value, figure.qualifier) == (measure, value, qualifier)
    assert figure.display == shown
    assert figure.as_of == ""
    assert_cites(figure, paragraph)


def test_stated_figures_belong_to_the_city_network_or_project_they_describe(seed):
    subjects = {f.slug: f.subject.natural_key() for f in StatedFigure.objects.all()}
    assert subjects["taipei-sister-cities"] == ("taipei",)
    assert subjects["yokohama-population"] == ("yokohama",)
    assert subjects["go-smart-members"] == ("go-smart",)
    assert subjects["yokohama-smart-city-project-companies"] == ("yokohama-smart-city-project",)


def test_yokohama_population_over_35_million_is_not_recorded_as_an_exact_population(seed):
    yokohama = City.objects.get(slug="yokohama")
    assert yokohama.population is None
    assert yokohama.population_year is None
    figure = yokohama.stated_figures.get(measure="population")
    assert figure.qualifier == "more_than"
    assert figure.citations.get().quote == "a population of over 3.5 million"


@pytest.mark.parametrize(
    ("slug", "country", "paragraph"),
    [
        ("yokohama", "JP", 1),
        ("yokohama", "JP", 3),
        ("taipei", "TW", 1),
        ("taipei", "TW", 6),
        ("odesa", "UA", 5),
        ("new-york-city", "US", 10),
        ("tokyo", "JP", 3),
    ],
)
def test_cities_named_by_the_article_have_their_country_and_no_invented_data(
    seed, slug, country, paragraph
):
    city = City.objects.get(slug=slug)
    assert city.country == country
    assert not city.has_coordinates
    assert (city.population, city.wikidata_id, city.geonames_id, city.website) == (
        None,
        "",
        None,
        "",
    )
    assert_cites(city, paragraph)


def test_the_article_names_no_city_beyond_the_five(seed):
    assert set(City.objects.values_list("slug", flat=True)) == {
        "yokohama", "taipei", "odesa", "new-york-city", "tokyo",
    }  # fmt: skip


def test_taipei_is_described_as_the_capital_of_taiwan(seed):
    taipei = City.objects.get(slug="taipei")
    assert taipei.summary == "The capital of Taiwan."
    assert "political isolation" in taipei.approach
    assert_cites(taipei, 6)


def test_approaches_paraphrase_paragraph_9_contrast(seed):
    yokohama, taipei = City.objects.get(slug="yokohama"), City.objects.get(slug="taipei")
    assert "technical cooperation and expertise-driven solutions" in yokohama.approach
    assert "political visibility and cultural exchange" in taipei.approach
    assert_cites(yokohama, 9)
    assert_cites(taipei, 9)


def test_city_themes_follow_the_article(seed):
    def theme_slugs(slug):
        return set(City.objects.get(slug=slug).themes.values_list("slug", flat=True))

    assert {"peace", "energy-efficiency", "climate", "humanitarian-aid"} <= theme_slugs("yokohama")
    assert {"culture", "education", "business-investment", "smart-city"} <= theme_slugs("taipei")
    assert theme_slugs("new-york-city") == {"public-health"}


@pytest.mark.parametrize(
    ("slug", "parent", "kind", "paragraph"),
    [
        ("uclg-aspac", "uclg", "regional_branch", 7),
        ("c40-knowledge-hub", "c40", "research_centre", 10),
        ("goarn", "who", "other", 10),
    ],
)
def test_organizations_belong_to_their_parent(seed, slug, parent, kind, paragraph):
    organization = Organization.objects.select_related("parent").get(slug=slug)
    assert organization.parent.slug == parent
    assert organization.kind == kind
    assert_cites(organization, paragraph)


@pytest.mark.parametrize(
    "slug", ["c40-knowledge-hub", "city-diplomacy-lab", "melbourne-centre-for-cities"]
)
def test_resource_centres_of_the_closing_paragraph_are_research_centres(seed, slug):
    centre = Organization.objects.get(slug=slug)
    assert centre.kind == "research_centre"
    assert "best practices" in centre.summary
    assert_cites(centre, 10)


def test_organizations_have_no_invented_founding_date_or_address(seed):
    assert set(Organization.objects.values_list("founded", "website", "headquarters")) == {
        ("", "", None)
    }


@pytest.mark.parametrize(
    ("organization", "city", "role", "paragraph"),
    [
        ("c40", "yokohama", "member", 4),
        ("mayors-for-peace", "yokohama", "member", 4),
        ("uclg-aspac", "taipei", "member", 7),
        ("go-smart", "taipei", "founding_member", 7),
        ("goarn", "new-york-city", "member", 10),
    ],
)
def test_memberships_named_by_the_article(seed, organization, city, role, paragraph):
    membership = Membership.objects.get(organization__slug=organization, city__slug=city, role=role)
    assert membership.since == ""
    assert_cites(membership, paragraph)


def test_founding_member_role_of_taipei_in_go_smart_is_justified(seed):
    membership = Membership.objects.get(organization__slug="go-smart", city__slug="taipei")
    assert "established" in membership.curator_notes


def test_odesa_mou_is_one_undirected_tie_showing_on_both_cities(seed):
    yokohama, odesa = City.objects.get(slug="yokohama"), City.objects.get(slug="odesa")
    tie = Tie.objects.get()
    assert list(Tie.objects.for_city(yokohama)) == [tie]
    assert list(Tie.objects.for_city(odesa)) == [tie]
    assert tie.partner_of(yokohama) == odesa
    assert tie.partner_of(odesa) == yokohama
    assert (tie.kind, tie.status, tie.date_basis) == ("mou", "unknown", "unknown")
    assert dates.humanize(tie.start) == "date unknown"
    assert list(tie.topics.values_list("slug", flat=True)) == ["sustainable-urban-development"]
    assert_cites(tie, 5)


def test_international_strategy_pamphlet_lists_its_three_objectives(seed):
    strategy = Initiative.objects.get(slug="international-strategy")
    assert strategy.kind == "strategy"
    assert strategy.lead_city.slug == "yokohama"
    assert strategy.objective_list == [
        "Foster an inclusive society",
        "Grow the city’s economy",
        "Address global challenges",
    ]
    assert_cites(strategy, 3)


@pytest.mark.parametrize(
    ("slug", "kind", "lead", "paragraph"),
    [
        ("yokohama-smart-city-project", "project", "yokohama", 4),
        ("y-port-program", "programme", "yokohama", 4),
        ("songshan-cultural-and-creative-park", "platform", "taipei", 7),
    ],
)
def test_initiatives_with_their_lead_city_and_unknown_start(seed, slug, kind, lead, paragraph):
    initiative = Initiative.objects.get(slug=slug)
    assert (initiative.kind, initiative.lead_city.slug) == (kind, lead)
    assert dates.humanize(initiative.start) == "date unknown"
    assert_cites(initiative, paragraph)


def test_y_port_is_a_public_private_partnership_whose_launch_year_was_lost(seed):
    y_port = Initiative.objects.get(slug="y-port-program")
    assert "public-private partnership" in y_port.summary
    assert y_port.start == ""
    assert "across Asia" in y_port.citations.get().quote


@pytest.mark.parametrize(
    ("slug", "kind", "city", "other", "paragraph"),
    [
        ("odesa-mayor-visits-yokohama", "visit", "odesa", "yokohama", 5),
        ("yokohama-odesa-mou", "agreement", "yokohama", "odesa", 5),
        ("yokohama-aid-to-odesa", "aid", "yokohama", "odesa", 5),
        ("yokohama-c40-award-smart-city-project", "award", "yokohama", "c40", 4),
        ("yokohama-un-peace-messenger-city", "designation", "yokohama", "united-nations", 4),
        ("new-york-city-joins-goarn", "joined", "new-york-city", "goarn", 10),
        ("taipei-smart-city-summit-expo", "summit", "taipei", None, 7),
        ("taipei-establishes-go-smart", "founded", "taipei", "go-smart", 7),
    ],
)
def test_events_of_the_article_with_their_date_unknown(seed, slug, kind, city, other, paragraph):
    event = Event.objects.select_related("city", "partner_city", "organization").get(slug=slug)
    assert (event.kind, event.city.slug) == (kind, city)
    counterpart = event.partner_city or event.organization
    assert (counterpart.slug if counterpart else None) == other
    assert dates.humanize(event.date) == "date unknown"
    assert_cites(event, paragraph)


def test_award_event_names_the_smart_city_project_and_mou_event_its_tie(seed):
    award = Event.objects.get(slug="yokohama-c40-award-smart-city-project")
    assert award.initiative.slug == "yokohama-smart-city-project"
    signed = Event.objects.get(slug="yokohama-odesa-mou")
    assert signed.tie == Tie.objects.get(kind="mou")
    aid = Event.objects.get(slug="yokohama-aid-to-odesa")
    assert set(aid.themes.values_list("slug", flat=True)) == {"humanitarian-aid", "reconstruction"}


def test_source_is_the_published_article_without_invented_details(seed):
    source = Source.objects.get()
    assert source.slug == SOURCE
    assert source.kind == "article"
    assert source.title.startswith("City Diplomacy: Yokohama & Taipei")
    assert source.url.startswith("https://www.newsdirectory3.com/city-diplomacy-yokohama-taipei")
    assert "fair use" in source.licence
    # No author, date of publication or access date is invented.
    assert (source.authors, source.issued, source.accessed) == ("", "", None)
    assert "written out from that address" in source.note
    assert "lost" in source.note


def test_the_article_gives_no_alternate_names(seed):
    assert not AlternateName.objects.exists()


# --- every claim sourced, no date invented ------------------------------------------------------


def test_every_claim_of_every_kind_cites_the_article_by_paragraph(seed):
    claim_models = set()
    for citation_model in citation_models():
        claim_model = citation_model._meta.get_field(citation_model.claim_field).related_model
        claim_models.add(claim_model.__name__)
        uncited = claim_model.objects.filter(citations__isnull=True)
        assert not uncited.exists(), f"uncited {claim_model.__name__}: {list(uncited)}"
        for citation in citation_model.objects.select_related("source"):
            assert citation.source.slug == SOURCE
            paragraph = re.fullmatch(r"paragraph (\d+)", citation.locator)
            assert paragraph and 1 <= int(paragraph[1]) <= 10, citation.locator
    assert claim_models >= {
        "City", "Organization", "Tie", "Membership", "Initiative", "Event", "StatedFigure",
    }  # fmt: skip
    assert Organization.objects.count() == 11
    assert Event.objects.count() == 8


def test_every_record_is_unverified_as_the_article_is_a_secondary_source(seed):
    for model in seed_models():
        if any(f.name == "verification" for f in model._meta.get_fields()):
            assert set(model.objects.values_list("verification", flat=True)) <= {"unverified"}


def test_quotations_are_the_articles_words_in_the_cited_paragraph(seed):
    if not ARTICLE.exists():
        pytest.skip(f"the article is not at {ARTICLE}")
    paragraphs = ARTICLE.read_text(encoding="utf-8").splitlines()
    checked = 0
    for citation_model in citation_models():
        for citation in citation_model.objects.exclude(quote=""):
            number = int(citation.locator.removeprefix("paragraph "))
            assert citation.quote in paragraphs[number - 1], (citation, citation.quote)
            checked += 1
    assert checked == sum(m.objects.count() for m in citation_models())


def edtf_fields(model):
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField) and dates.validate_edtf in f.validators
    ]


def test_no_date_anywhere_in_the_seed_as_the_article_lost_its_years(seed):
    checked = set()
    for model in seed_models():
        for field in edtf_fields(model):
            values = set(model.objects.values_list(field.name, flat=True))
            assert values <= {""}, f"{model.__name__}.{field.name}: {values}"
            checked.add(f"{model.__name__}.{field.name}")
        for field in model._meta.concrete_fields:
            # Derived bounds and plain dates; DateTimeField (record timestamps) is a subclass.
            if isinstance(field, models.DateField) and not isinstance(field, models.DateTimeField):
                assert not model.objects.filter(**{f"{field.name}__isnull": False}).exists()
    assert checked >= {
        "Source.issued", "Organization.founded", "Tie.start", "Tie.end", "Membership.since",
        "Membership.until", "Initiative.start", "Initiative.end", "Event.date",
        "StatedFigure.as_of",
    }  # fmt: skip


def test_no_year_written_in_any_text_of_the_fixture(fixture_objects):
    year = re.compile(r"\b1[0-9]{3}\b|\b20[0-9]{2}\b")
    for obj in fixture_objects:
        for name, value in obj["fields"].items():
            if name in ("created_at", "updated_at"):
                continue  # when the record was curated, not a fact of the article
            if isinstance(value, str):
                assert not year.search(value), (obj["model"], name, value)


# --- the fixture itself -------------------------------------------------------------------------


def test_fixture_uses_natural_keys_and_no_integer_ids(fixture_objects):
    for obj in fixture_objects:
        assert set(obj) == {"model", "fields"}, obj
        model = apps.get_model(obj["model"])
        assert "id" not in obj["fields"]
        for name, value in obj["fields"].items():
            field = model._meta.get_field(name)
            if field.many_to_many:
                assert all(isinstance(key, list) for key in value), (obj["model"], name)
            elif field.is_relation and value is not None:
                assert isinstance(value, list), (obj["model"], name, value)
                assert all(isinstance(part, str) for part in value), (obj["model"], name)


def test_folded_names_in_the_fixture_equal_fold_of_the_name(fixture_objects):
    cities = [o["fields"] for o in fixture_objects if o["model"] == "cities.city"]
    names = [o["fields"] for o in fixture_objects if o["model"] == "cities.alternatename"]
    assert len(cities) == 5
    for city in cities:
        assert city["folded_name"] == fold(city["name"])
    for name in names:
        assert name["folded"] == fold(name["name"])


def test_search_finds_seed_cities_after_loaddata(seed):
    # loaddata skips save(), so only the fixture's own folded names make these match.
    assert list(City.objects.search("YOKOHAMA").values_list("slug", flat=True)) == ["yokohama"]
    assert list(City.objects.search("new york").values_list("slug", flat=True)) == ["new-york-city"]


def row_counts():
    counts = {m._meta.label_lower: m.objects.count() for m in seed_models()}
    for model in seed_models():
        for field in model._meta.local_many_to_many:
            counts[f"{model._meta.label_lower}.{field.name}"] = (
                field.remote_field.through.objects.count()
            )
    return counts


def test_loading_twice_updates_in_place_without_duplicates(fixture_objects):
    call_command("loaddata", "seed", verbosity=0)
    first = row_counts()
    call_command("loaddata", "seed", verbosity=0)
    assert row_counts() == first
    per_model = Counter(o["model"] for o in fixture_objects)
    assert {label: first[label] for label in per_model} == dict(per_model)
    assert first["cities.city.themes"] > 0
