"""The curation admin: every page answers, permissions hold, history and query counts."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from simple_history.models import HistoricalChanges

from cities.models import (
    AlternateName,
    City,
    CityCitation,
    NotDuplicate,
    SearchName,
    SlugRedirect,
    Source,
    Theme,
)
from partnerships.models import (
    ApiKey,
    AtlasVersion,
    Correction,
    Event,
    EventCitation,
    ImportJob,
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
from tests.conftest import (
    admin_url,
    form_data,
    make_city,
    make_organization,
    make_source,
    make_tie,
    shows,
)

pytestmark = pytest.mark.django_db

CURATED_APPS = ("cities", "partnerships")
# Partner API keys are access control, not research data: curators neither add nor change them.
# Gazetteer search names, slug redirects and "not duplicates" decisions are derived by the atlas
# (linking, merges and renames, the duplicates queue), and readers send corrections from the
# public pages (tests/test_corrections.py): listed in the admin, never typed in.
DERIVED = {SearchName, SlugRedirect, NotDuplicate, Correction}
# The atlas version only moves with writes (partnerships/readcache.py); nobody edits it.
# Import jobs are the machinery of background imports, shown on the import's own page.
NOT_CURATED = {ApiKey, AtlasVersion, ImportJob, *DERIVED}
REGISTERED = sorted(
    (
        model
        for model in admin.site._registry
        if model._meta.app_label in CURATED_APPS and model not in NOT_CURATED
    ),
    key=lambda model: model._meta.label,
)


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


@pytest.mark.parametrize("model", sorted(DERIVED, key=lambda m: m._meta.label))
def test_derived_records_are_listed_in_the_admin_but_not_typed_in(editor_client, model):
    assert model in admin.site._registry
    assert editor_client.get(admin_url(model, "changelist")).status_code == 200
    assert editor_client.get(admin_url(model, "add")).status_code == 403


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
    assert editor_client.get(admin_url(model, "changelist")).status_code == 200
    assert editor_client.get(admin_url(model, "add")).status_code == 200
    assert editor_client.get(admin_url(model, "change", obj.pk)).status_code == 200
    assert editor_client.get(admin_url(model, "history", obj.pk)).status_code == 200


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
    changelist = admin_url(model, "changelist")
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
    page = admin_url(City, "change", city.pk)
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
    page = admin_url(model, "change", claim.pk)
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


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_add_page_queries_do_not_grow_with_rows(editor_client, model):
    # Four queries whatever the rows: session, user, the user's own and group permissions;
    # related records are picked by autocomplete, so no select lists every city, source or
    # organization.
    BUILDERS[model]()
    page = admin_url(model, "add")
    editor_client.get(page)
    with CaptureQueriesContext(connection) as few:
        assert editor_client.get(page).status_code == 200
    for _ in range(30):
        BUILDERS[model]()
    with CaptureQueriesContext(connection) as many:
        assert editor_client.get(page).status_code == 200
    assert len(many) == len(few) <= 4, [q["sql"][:80] for q in many.captured_queries]


# Who may do what ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_anonymous_visitors_are_sent_to_the_login_page(client, model):
    obj = BUILDERS[model]()
    login = reverse("admin:login")
    for page in (
        admin_url(model, "changelist"),
        admin_url(model, "add"),
        admin_url(model, "change", obj.pk),
    ):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith(login)


def test_a_researcher_adds_and_changes_but_cannot_delete(client, researcher):
    client.force_login(researcher)
    data = form_data(client.get(admin_url(Source, "add")))
    data.update(slug="un-habitat-2024", kind="report", title="Cities and diplomacy")
    assert client.post(admin_url(Source, "add"), data).status_code == 302
    source = Source.objects.get(slug="un-habitat-2024")

    data = form_data(client.get(admin_url(Source, "change", source.pk)))
    data["title"] = "Cities and diplomacy, 2nd edition"
    assert client.post(admin_url(Source, "change", source.pk), data).status_code == 302
    source.refresh_from_db()
    assert source.title == "Cities and diplomacy, 2nd edition"

    assert client.get(admin_url(Source, "delete", source.pk)).status_code == 403
    assert client.post(admin_url(Source, "delete", source.pk), {"post": "yes"}).status_code == 403
    assert Source.objects.filter(pk=source.pk).exists()
    make_tie()
    actions = client.get(admin_url(Tie, "changelist")).context["action_form"].fields["action"]
    assert "mark_verified" in dict(actions.choices)
    assert "delete_selected" not in dict(actions.choices)


def test_an_editor_may_delete(editor_client):
    source = make_source()
    response = editor_client.post(admin_url(Source, "delete", source.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Source.objects.filter(pk=source.pk).exists()


# History -----------------------------------------------------------------------------------


def test_a_change_through_the_admin_records_who_and_what_in_the_history(editor_client, editor):
    tie = make_tie(status="active")
    page = admin_url(Tie, "change", tie.pk)
    data = form_data(editor_client.get(page))
    data.update(status="suspended", start="1965")
    assert editor_client.post(page, data).status_code == 302

    latest = tie.history.first()
    assert latest.history_user == editor
    changed = {c.field for c in latest.diff_against(latest.prev_record).changes}
    assert changed == {"status", "start"}

    history = editor_client.get(admin_url(Tie, "history", tie.pk))
    assert shows(history, editor.username)
    assert shows(history, "Status:") and shows(history, "suspended")
    assert shows(history, "1965")


# Actions -----------------------------------------------------------------------------------


def test_marking_selected_as_verified_records_each_change_with_its_curator(client, researcher):
    client.force_login(researcher)
    ties = [make_tie(), make_tie()]
    untouched = make_tie()
    response = client.post(
        admin_url(Tie, "changelist"),
        {"action": "mark_verified", "_selected_action": [t.pk for t in ties]},
        follow=True,
    )
    assert shows(response, "2 ties marked as verified.")
    for tie in ties:
        tie.refresh_from_db()
        assert tie.verification == "verified"
        latest = tie.history.first()
        assert (latest.history_user, latest.verification) == (researcher, "verified")
        assert latest.history_change_reason == "Marked as verified from the list"
    untouched.refresh_from_db()
    assert untouched.verification == "unverified"


def test_marking_as_disputed_works_on_every_curated_list(editor_client):
    figure = make_figure()
    editor_client.post(
        admin_url(StatedFigure, "changelist"),
        {"action": "mark_disputed", "_selected_action": [figure.pk]},
    )
    figure.refresh_from_db()
    assert figure.verification == "disputed"
    assert figure.history.count() == 2


# What curators see -------------------------------------------------------------------------


def test_city_page_lists_ties_entered_at_either_end_with_partner_kind_status_and_date(
    editor_client,
):
    odesa = make_city(name="Odesa", country="UA")
    yokohama = make_city(name="Yokohama", country="JP")
    liverpool = make_city(name="Liverpool", country="GB")
    as_a = make_tie(odesa, liverpool, kind="sister", status="active", start="1957~")
    as_b = make_tie(yokohama, odesa, kind="partner", status="suspended")
    other = make_tie(yokohama, liverpool)

    response = editor_client.get(admin_url(City, "change", odesa.pk))

    page = response.content.decode()
    for text in ("Liverpool (GB)", "Sister city", "Active", "c. 1957"):
        assert shows(response, text)
    for text in ("Yokohama (JP)", "Partner city", "Suspended", "date unknown"):
        assert shows(response, text)
    assert admin_url(Tie, "change", as_a.pk) in page
    assert admin_url(Tie, "change", as_b.pk) in page
    assert admin_url(Tie, "change", other.pk) not in page


def test_city_search_matches_alternate_names_in_any_script(editor_client):
    odesa = make_city(name="Odesa", country="UA")
    AlternateName.objects.create(city=odesa, name="Одеса", language="uk", kind="native")
    taipei = make_city(name="Taipei", country="TW")
    tie = make_tie(taipei, odesa)
    make_tie(taipei, make_city(name="Yokohama"))

    found = editor_client.get(admin_url(City, "changelist"), {"q": "одеса"}).context["cl"]
    assert list(found.result_list) == [odesa]
    found = editor_client.get(admin_url(Tie, "changelist"), {"q": "Одеса"}).context["cl"]
    assert list(found.result_list) == [tie]
    found = editor_client.get(admin_url(Tie, "changelist"), {"q": "taipei"}).context["cl"]
    assert found.result_count == 2


def test_tie_city_autocomplete_finds_a_city_by_its_native_name(editor_client):
    odesa = make_city(name="Odesa", country="UA")
    AlternateName.objects.create(city=odesa, name="Одеса", language="uk", kind="native")
    response = editor_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "partnerships", "model_name": "tie", "field_name": "city_b", "term": "Одеса"},
    )
    assert [r["text"] for r in response.json()["results"]] == ["Odesa (UA)"]


def changelist_rows(client, model, **params):
    return set(client.get(admin_url(model, "changelist"), params).context["cl"].result_list)


def test_tie_filters_no_source_yet_date_unknown_and_country_of_either_city(editor_client):
    ua, jp, gb = (make_city(country=c) for c in ("UA", "JP", "GB"))
    sourced = make_tie(ua, jp, source=make_source(), start="1965")
    unsourced = make_tie(jp, gb)

    assert changelist_rows(editor_client, Tie, sourced="no") == {unsourced}
    assert changelist_rows(editor_client, Tie, sourced="yes") == {sourced}
    assert changelist_rows(editor_client, Tie, start_known="no") == {unsourced}
    assert changelist_rows(editor_client, Tie, start_known="yes") == {sourced}
    assert changelist_rows(editor_client, Tie, country="UA") == {sourced}
    assert changelist_rows(editor_client, Tie, country="GB") == {unsourced}
    assert changelist_rows(editor_client, Tie, country="JP") == {sourced, unsourced}


def test_membership_filter_by_kind_of_organization(editor_client):
    network = Membership.objects.create(
        organization=make_organization(kind="city_network"), city=make_city()
    )
    Membership.objects.create(
        organization=make_organization(kind="international_organization"), city=make_city()
    )
    rows = changelist_rows(editor_client, Membership, organization_kind="city_network")
    assert rows == {network}


def test_tie_list_shows_dates_as_people_write_them_and_counts_sources(editor_client):
    tie = make_tie(start="196X", end="1990", source=make_source())
    make_tie(start="")
    response = editor_client.get(admin_url(Tie, "changelist"))
    assert shows(response, "1960s–1990")
    assert shows(response, "date unknown")
    assert response.context["cl"].result_list.get(pk=tie.pk).source_count == 1


def test_source_list_counts_citations_from_every_kind_of_claim(editor_client):
    source = make_source()
    for claim in (make_city(), make_tie(), make_membership(), make_figure()):
        claim.citations.model.objects.create(**{claim.citations.field.name: claim}, source=source)
    rows = editor_client.get(admin_url(Source, "changelist")).context["cl"].result_list
    assert rows.get(pk=source.pk).citation_count == 4
