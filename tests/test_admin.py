"""The curation admin: every page answers, permissions hold, history and query counts."""

import html

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse
from simple_history.models import HistoricalChanges

from cities.models import AlternateName, City, CityCitation, Source, Theme
from partnerships.models import (
    ApiKey,
    Event,
    EventCitation,
    Initiative,
    InitiativeCitation,
    Membership,
    MembershipCitation,
    Organization,
    OrganizationCitation,
    StatedFigure,
    StatedFigureCitation,
    Tie,
    TieCitation,
)
from tests.conftest import make_city, make_organization, make_source, make_tie

pytestmark = pytest.mark.django_db

CURATED_APPS = ("cities", "partnerships")
# Partner API keys are access control, not research data: curators neither add nor change them.
NOT_CURATED = {ApiKey}
REGISTERED = sorted(
    (
        model
        for model in admin.site._registry
        if model._meta.app_label in CURATED_APPS and model not in NOT_CURATED
    ),
    key=lambda model: model._meta.label,
)


def url(model, view, *args):
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def form_data(response):
    """What a browser posts back from the admin form on `response`, left unchanged."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms:
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            if value is True:
                value = "on"
            elif isinstance(value, list | tuple):
                value = [str(v) for v in value]
            data[field.html_name] = value
    return data


def add_inline_row(data, prefix, **fields):
    """Fill one more row of the inline `prefix`, as "Add another" does in the browser."""
    n = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(n + 1)
    for name, value in fields.items():
        data[f"{prefix}-{n}-{name}"] = value
    return data


def shows(response, text):
    return html.escape(text) in response.content.decode()


# One object of every registered kind, with what it needs around it -------------------------


def make_theme():
    n = Theme.objects.count() + 1
    return Theme.objects.create(name=f"Theme {n}", slug=f"theme-{n}")


def make_membership():
    return Membership.objects.create(organization=make_organization(), city=make_city())


def make_initiative():
    return Initiative.objects.create(name="Y-Port", kind="programme", lead_city=make_city())


def make_event():
    return Event.objects.create(title="Mayor's visit", kind="visit", city=make_city())


def make_figure():
    return StatedFigure.objects.create(city=make_city(), measure="sister_cities", value=53)


def cite(claim):
    _citation_model, field = claim.citations.model, claim.citations.field.name
    return claim.citations.model.objects.create(**{field: claim}, source=make_source())


BUILDERS = {
    City: make_city,
    AlternateName: lambda: AlternateName.objects.create(city=make_city(), name="Одеса"),
    CityCitation: lambda: cite(make_city()),
    Source: make_source,
    Theme: make_theme,
    Organization: make_organization,
    OrganizationCitation: lambda: cite(make_organization()),
    Tie: make_tie,
    TieCitation: lambda: cite(make_tie()),
    Membership: make_membership,
    MembershipCitation: lambda: cite(make_membership()),
    Initiative: make_initiative,
    InitiativeCitation: lambda: cite(make_initiative()),
    Event: make_event,
    EventCitation: lambda: cite(make_event()),
    StatedFigure: make_figure,
    StatedFigureCitation: lambda: cite(make_figure()),
}


def test_every_model_of_the_curated_apps_is_in_the_admin():
    models = {
        model
        for label in CURATED_APPS
        for model in apps.get_app_config(label).get_models()
        if not issubclass(model, HistoricalChanges) and model not in NOT_CURATED
    }
    assert set(REGISTERED) == models == set(BUILDERS)


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_editor_opens_every_changelist_add_change_and_history_page(editor_client, model):
    obj = BUILDERS[model]()
    assert editor_client.get(url(model, "changelist")).status_code == 200
    assert editor_client.get(url(model, "add")).status_code == 200
    assert editor_client.get(url(model, "change", obj.pk)).status_code == 200
    assert editor_client.get(url(model, "history", obj.pk)).status_code == 200


# Rows with the related data each changelist shows ------------------------------------------


def hub_city():
    """One city every tie row shares, so that rows grow without a new partner each time."""
    return City.objects.filter(slug="yokohama").first() or make_city(
        name="Yokohama", slug="yokohama"
    )


def city_row():
    city = make_city()
    AlternateName.objects.create(city=city, name=f"{city.name} alt", language="ja")
    cite(city)
    make_tie(city, hub_city())
    return city


def tie_row():
    tie = make_tie(make_city(country="UA"), hub_city(), start="1957~", end="2020")
    cite(tie)
    tie.topics.add(make_theme())
    return tie


def membership_row():
    membership = make_membership()
    cite(membership)
    return membership


ROWS = {
    City: city_row,
    AlternateName: BUILDERS[AlternateName],
    CityCitation: BUILDERS[CityCitation],
    Source: lambda: cite(make_city()).source,
    Theme: lambda: tie_row().topics.get(),
    Organization: lambda: cite(
        Membership.objects.create(
            organization=make_organization(parent=make_organization()), city=make_city()
        ).organization
    ),
    OrganizationCitation: BUILDERS[OrganizationCitation],
    Tie: tie_row,
    TieCitation: lambda: cite(tie_row()),
    Membership: membership_row,
    MembershipCitation: lambda: cite(make_membership()),
    Initiative: lambda: cite(make_initiative()),
    InitiativeCitation: BUILDERS[InitiativeCitation],
    Event: lambda: cite(make_event()),
    EventCitation: BUILDERS[EventCitation],
    StatedFigure: lambda: cite(make_figure()),
    StatedFigureCitation: BUILDERS[StatedFigureCitation],
}


# Query counts ------------------------------------------------------------------------------

# Every admin request starts with the same four queries: 1 the session, 2 the user, 3 the
# user's own permissions, 4 the permissions of the user's groups. A changelist then runs
# 5 the count of matching rows (for the paginator) and 6 the count of all rows (the "of N"
# beside the filters), and 7 the page of rows: related objects joined by
# list_select_related, counts (sources, ties, members) as subqueries in the same SELECT.
# Changelists with a country filter run one more: the countries that cities lie in.
#
# Tie changelist: 1-4 above; 5 the countries of cities; 6-7 the two counts; 8 the ties
# with both cities joined and their number of sources.
# City changelist: 1-4; 5 the countries; 6-7 the counts; 8 the cities with their number of
# ties from both ends and of sources.
CHANGELIST_QUERIES = {
    City: 8,
    AlternateName: 8,
    CityCitation: 7,
    Source: 7,
    Theme: 7,
    Organization: 7,
    OrganizationCitation: 7,
    Tie: 8,
    TieCitation: 7,
    Membership: 8,
    MembershipCitation: 7,
    Initiative: 7,
    InitiativeCitation: 7,
    Event: 8,
    EventCitation: 7,
    StatedFigure: 7,
    StatedFigureCitation: 7,
}


def test_every_changelist_has_a_pinned_query_count():
    assert set(CHANGELIST_QUERIES) == set(REGISTERED)


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_changelist_queries_do_not_grow_with_rows(editor_client, django_assert_num_queries, model):
    changelist = url(model, "changelist")
    ROWS[model]()
    editor_client.get(changelist)  # fills per-process caches (content types)
    with django_assert_num_queries(CHANGELIST_QUERIES[model]):
        one = editor_client.get(changelist)
    for _ in range(29):
        ROWS[model]()
    with django_assert_num_queries(CHANGELIST_QUERIES[model]):
        many = editor_client.get(changelist)
    assert one.context["cl"].result_count < many.context["cl"].result_count
    assert many.context["cl"].result_count >= 30


def grow_city(city, n):
    """Give `city` n more ties (alternately as city_a and city_b), names, sources, networks."""
    for i in range(n):
        other = make_city()
        if i % 2:
            make_tie(city, other, start="1965")
        else:
            make_tie(other, city, start="196X")
        AlternateName.objects.create(city=city, name=f"{other.name} alias")
        cite(city)
        Membership.objects.create(organization=make_organization(), city=city)


def test_city_change_page_queries_do_not_grow_with_ties_from_both_ends(
    editor_client, django_assert_num_queries
):
    city = make_city(name="Odesa", country="UA")
    grow_city(city, 1)
    page = url(City, "change", city.pk)
    editor_client.get(page)
    # 1 session, 2 user, 3 the city with its counts, 4-5 the user's and groups' permissions,
    # 6 the city's themes (the autocomplete shows the chosen ones), 7 alternate names,
    # 8 citations with their sources, 9 memberships with their organizations, 10 the ties
    # from both ends with both cities and their number of sources.
    with django_assert_num_queries(10):
        one = editor_client.get(page)
    grow_city(city, 29)
    with django_assert_num_queries(10):
        many = editor_client.get(page)
    assert one.content.decode().count("edit tie") == 1
    assert many.content.decode().count("edit tie") == 30


# A claim's change page: 1 session, 2 user, 3 the claim with its source count, 4-5 the
# permissions, then one query per autocomplete holding a value (the chosen cities,
# organizations, themes...), one per inline (rows joined to what they show), nothing per row.
CHANGE_PAGE_QUERIES = {
    City: 10,  # + themes, alternate names, citations, memberships, ties from both ends
    Organization: 8,  # + themes, memberships with their cities, citations
    Tie: 9,  # + city, partner city, topics, citations
    Membership: 8,  # + organization, city, citations
    Initiative: 10,  # + lead city, partner cities, partner organizations, themes, citations
    Event: 8,  # + city, themes, citations
    StatedFigure: 7,  # + city, citations
}
CLAIMS = {
    City: make_city,
    Organization: make_organization,
    Tie: make_tie,
    Membership: make_membership,
    Initiative: make_initiative,
    Event: make_event,
    StatedFigure: make_figure,
}


def grow_claim(claim):
    cite(claim)
    if isinstance(claim, Organization):
        Membership.objects.create(organization=claim, city=make_city())


@pytest.mark.parametrize("model", CLAIMS, ids=lambda m: m._meta.label)
def test_change_page_queries_do_not_grow_with_inline_rows(
    editor_client, django_assert_num_queries, model
):
    claim = CLAIMS[model]()
    grow_claim(claim)
    page = url(model, "change", claim.pk)
    editor_client.get(page)
    with django_assert_num_queries(CHANGE_PAGE_QUERIES[model]):
        editor_client.get(page)
    for _ in range(29):
        grow_claim(claim)
    with django_assert_num_queries(CHANGE_PAGE_QUERIES[model]):
        response = editor_client.get(page)
    inlines = {
        inline.formset.prefix: inline.formset
        for inline in response.context["inline_admin_formsets"]
    }
    assert inlines["citations"].total_form_count() == 30
