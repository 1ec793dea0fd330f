"""The partner API: what a partner reads, what a researcher writes, and how bad input is
answered. Permissions per role are in test_api_permissions.py, the schema in
test_api_schema.py, exports in test_exports.py."""

import base64
import json

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from cities.models import AlternateName, CityCitation, Theme
from partnerships.apikeys import ApiThrottle
from partnerships.comparison import compare, parse_cities
from partnerships.models import (
    ApiKey,
    Membership,
    MembershipCitation,
    StatedFigure,
    StatedFigureCitation,
    Tie,
    TieCitation,
)
from tests.conftest import make_city, make_key, make_organization, make_source, make_tie

pytestmark = pytest.mark.usefixtures("fresh_throttle_counts")


@pytest.fixture
def researcher_api(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    return client


def odesa_with_names():
    odesa = make_city(name="Odesa", country="UA", latitude=46.48, longitude=30.72)
    AlternateName.objects.create(city=odesa, name="Одеса", language="uk", kind="native")
    AlternateName.objects.create(city=odesa, name="Odessa", language="en", kind="former")
    return odesa


# Reading ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_city_list_shows_alternate_names_stated_figures_and_links(api):
    odesa = odesa_with_names()
    source = make_source(title="City report")
    figure = StatedFigure.objects.create(
        city=odesa, measure="sister_cities", value=23, qualifier="more_than", as_of="2021"
    )
    StatedFigureCitation.objects.create(figure=figure, source=source, locator="p. 4")
    make_tie(city_a=odesa)

    response = api.get("/api/v1/cities/")

    assert response.status_code == 200
    [city] = [c for c in response.json()["results"] if c["slug"] == odesa.slug]
    assert {n["name"] for n in city["alternate_names"]} == {"Одеса", "Odessa"}
    assert city["tie_count"] == 1
    [stated] = city["stated_figures"]
    assert stated["display"] == "more than 23 sister cities"
    assert stated["as_of_display"] == "2021"
    assert stated["citations"][0]["source"] == source.slug
    assert stated["citations"][0]["locator"] == "p. 4"
    assert city["url"] == f"http://testserver/api/v1/cities/{odesa.slug}/"
    assert city["ties"] == f"http://testserver/api/v1/ties/?city={odesa.slug}"
    assert api.get(city["ties"]).json()["results"][0]["city_a"]["slug"] == odesa.slug


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["Одеса", "odessa", "ODESA"])
def test_city_search_matches_every_name_ignoring_case_and_script(api, query):
    odesa = odesa_with_names()
    make_city(name="Yokohama")

    response = api.get("/api/v1/cities/", {"q": query})

    assert [c["slug"] for c in response.json()["results"]] == [odesa.slug]


@pytest.mark.django_db
def test_city_detail_by_slug_lists_its_citations(api):
    city = make_city(name="Taipei", country="TW")
    source = make_source(title="Taipei City Government")
    CityCitation.objects.create(city=city, source=source, locator="section 2")

    data = api.get(f"/api/v1/cities/{city.slug}/").json()

    assert data["name"] == "Taipei"
    assert data["citations"] == [
        {
            "source": source.slug,
            "source_url": f"http://testserver/api/v1/sources/{source.slug}/",
            "source_title": "Taipei City Government",
            "locator": "section 2",
            "quote": "",
        }
    ]


@pytest.mark.django_db
def test_unknown_slug_answers_404_saying_where_to_look(api):
    response = api.get("/api/v1/cities/atlantis/")

    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "code": "not_found",
        "detail": "No city has the slug “atlantis”: find it in http://testserver/api/v1/cities/.",
    }


@pytest.mark.django_db
def test_tie_shows_both_cities_dates_as_written_and_sources(api):
    source = make_source()
    theme = Theme.objects.create(name="Peace", slug="peace")
    tie = make_tie(kind="sister", start="1957~", end="1991", status="ended", source=source)
    tie.topics.add(theme)

    data = api.get(f"/api/v1/ties/{tie.pk}/").json()

    assert data["city_a"]["slug"] == tie.city_a.slug
    assert data["city_b"]["url"] == f"http://testserver/api/v1/cities/{tie.city_b.slug}/"
    assert (data["start"], data["start_display"]) == ("1957~", "c. 1957")
    assert (data["end"], data["end_display"]) == ("1991", "1991")
    assert data["topics"] == ["peace"]
    assert data["citations"][0]["source"] == source.slug


@pytest.mark.django_db
def test_ties_filter_with_the_tie_list_filters(api):
    yokohama = make_city(name="Yokohama")
    sister = make_tie(city_a=yokohama, kind="sister")
    make_tie(city_a=yokohama, kind="friendship")
    make_tie(kind="sister")

    response = api.get("/api/v1/ties/", {"city": yokohama.slug, "kind": "sister"})

    assert [t["id"] for t in response.json()["results"]] == [sister.pk]


def walk(api, url, params, direction="next"):
    """Every id met following `next` links from the first page, and the last page's body."""
    seen, data = [], api.get(url, params).json()
    seen += [t["id"] for t in data["results"]]
    while data[direction]:
        data = api.get(data[direction]).json()
        seen += [t["id"] for t in data["results"]]
    return seen, data


@pytest.mark.django_db
@pytest.mark.parametrize("ordering", ["", "start", "-start", "city,-start", "kind"])
def test_tie_cursor_pages_meet_every_tie_once_in_order_and_back(api, ordering):
    starts = ["1965", "", "1957~", "", "2001-05", "1965", "", "1990/1995", "1800"]
    for i, start in enumerate(starts):
        make_tie(kind=["sister", "partner", "mou"][i % 3], start=start)
    expected = [t["id"] for t in api.get("/api/v1/ties/", {"ordering": ordering}).json()["results"]]

    forwards, last = walk(api, "/api/v1/ties/", {"ordering": ordering, "page_size": 2})
    backwards, first = walk(api, last["previous"], {}, direction="previous")

    assert sorted(expected) == sorted(Tie.objects.values_list("pk", flat=True))
    assert forwards == expected
    assert first["previous"] is None
    # Walking back from the last page meets each earlier page once, newest page first.
    pages_back = [expected[i : i + 2] for i in range(0, len(expected) - 2, 2)]
    assert sorted(backwards) == sorted(sum(pages_back, [])[: len(backwards)])
    assert len(backwards) == len(expected) - len(last["results"])


@pytest.mark.django_db
def test_undated_ties_come_last_whichever_way_they_are_ordered(api):
    undated = make_tie(start="")
    old, new = make_tie(start="1950"), make_tie(start="2000")

    ascending = api.get("/api/v1/ties/", {"ordering": "start"}).json()["results"]
    descending = api.get("/api/v1/ties/", {"ordering": "-start"}).json()["results"]

    assert [t["id"] for t in ascending] == [old.pk, new.pk, undated.pk]
    assert [t["id"] for t in descending] == [new.pk, old.pk, undated.pk]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params, field, words, code",
    [
        ({"kind": "cousin"}, "kind", "not one of the available choices", "invalid"),
        ({"decade": "1066"}, "decade", "not one of the available choices", "invalid"),
        ({"ordering": "population"}, "ordering", "not one of the available choices", "invalid"),
        ({"page_size": "5000"}, "page_size", "between 1 and 1000", "invalid"),
        ({"page_size": "ten"}, "page_size", "between 1 and 1000", "invalid"),
        # Well formed, but naming what does not exist: a position, a city.
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor", "start again without", "unknown_reference"),
        ({"cursor": "%%%"}, "cursor", "start again without `cursor`", "unknown_reference"),
        ({"city": "yokohma"}, "city", "No city has the slug “yokohma”", "unknown_reference"),
        ({"theme": "pease"}, "theme", "No theme has the slug “pease”", "unknown_reference"),
    ],
)  # fmt: skip
def test_bad_tie_list_parameters_answer_400_naming_the_parameter(api, params, field, words, code):
    make_tie()

    response = api.get("/api/v1/ties/", params)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert words in body["errors"][field][0]


@pytest.mark.django_db
def test_forged_cursor_values_answer_400_not_500(api):
    make_tie(start="1960")
    for values in (["not a date", 1], ["1960-01-01", "x"], [None, None], ["1960-01-01"]):
        payload = json.dumps({"k": ["start_lower", "id"], "v": values, "b": 0})
        cursor = base64.urlsafe_b64encode(payload.encode()).decode()

        response = api.get("/api/v1/ties/", {"cursor": cursor})

        assert response.status_code == 400, values


@pytest.mark.django_db
def test_page_size_past_the_maximum_is_refused_not_silently_cut(api):
    response = api.get("/api/v1/cities/", {"page_size": 501})

    assert response.status_code == 400
    assert response.json()["errors"]["page_size"] == [
        "Give a page size between 1 and 500, not “501”."
    ]


@pytest.mark.django_db
def test_unknown_ordering_field_is_refused_with_the_allowed_ones(api):
    response = api.get("/api/v1/sources/", {"ordering": "secret"})

    assert response.status_code == 400
    assert (
        "Cannot order by secret: use title, issued_lower, updated_at."
        in (response.json()["errors"]["ordering"])
    )


@pytest.mark.django_db
def test_unknown_api_address_answers_in_the_error_format(api):
    response = api.get("/api/v1/townships/")

    assert response.status_code == 404
    assert response.json()["detail"].startswith("There is no API endpoint at /api/v1/townships/")


@pytest.mark.django_db
def test_organizations_link_to_their_members(api):
    uclg = make_organization(name="United Cities and Local Governments", acronym="UCLG")
    aspac = make_organization(name="UCLG Asia-Pacific", acronym="UCLG-ASPAC", parent=uclg)
    city = make_city()
    Membership.objects.create(organization=aspac, city=city)

    data = api.get(f"/api/v1/organizations/{aspac.slug}/").json()
    members = api.get(data["memberships"]).json()["results"]
    via_parent = api.get("/api/v1/memberships/", {"organization": uclg.slug}).json()["results"]

    assert data["parent"]["slug"] == uclg.slug
    assert [m["city"]["slug"] for m in members] == [city.slug]
    assert [m["city"]["slug"] for m in via_parent] == [city.slug]


@pytest.mark.django_db
def test_compare_returns_what_the_comparison_module_computes(api):
    yokohama = make_city(name="Yokohama")
    taipei = make_city(name="Taipei", country="TW")
    make_tie(city_a=yokohama, city_b=taipei, kind="friendship")

    response = api.get("/api/v1/compare/", {"cities": f"{yokohama.slug},{taipei.slug}"})

    assert response.status_code == 200
    expected = compare(parse_cities(f"{yokohama.slug},{taipei.slug}"))
    assert response.json() == json.loads(json.dumps(expected))


@pytest.mark.django_db
def test_compare_with_an_unknown_city_says_which_and_suggests(api):
    make_city(name="Yokohama")

    response = api.get("/api/v1/compare/", {"cities": "yokohama,yokohamaa"})

    assert response.status_code == 400
    body = response.json()
    assert "“yokohamaa”" in body["errors"]["cities"][0]


# Conditional GET ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_detail_answers_304_while_unchanged_and_200_after_a_change(api):
    tie = make_tie(start="1965")
    first = api.get(f"/api/v1/ties/{tie.pk}/")
    etag = first["ETag"]

    again = api.get(f"/api/v1/ties/{tie.pk}/", HTTP_IF_NONE_MATCH=etag)
    tie.start = "1966"
    tie.save()
    changed = api.get(f"/api/v1/ties/{tie.pk}/", HTTP_IF_NONE_MATCH=etag)

    assert again.status_code == 304
    assert again.content == b""
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert changed.json()["start"] == "1966"


@pytest.mark.django_db
def test_a_new_citation_changes_the_city_etag(api):
    city = make_city()
    etag = api.get(f"/api/v1/cities/{city.slug}/")["ETag"]
    CityCitation.objects.create(city=city, source=make_source())

    response = api.get(f"/api/v1/cities/{city.slug}/", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 200


# Writing ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_researcher_records_a_tie_by_city_slugs(researcher_api, researcher):
    yokohama, odesa = make_city(name="Yokohama"), make_city(name="Odesa", country="UA")
    Theme.objects.create(name="Urban development", slug="urban-development")

    response = researcher_api.post(
        "/api/v1/ties/",
        {
            "city_a": yokohama.slug,
            "city_b": odesa.slug,
            "kind": "mou",
            "start": "2023-05",
            "topics": ["urban-development"],
            "citations": [{"source": make_source(slug="article").slug, "locator": "para. 5"}],
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["start_display"] == "May 2023"
    assert body["topics"] == ["urban-development"]
    tie = Tie.objects.get(pk=body["id"])
    assert (tie.city_a, tie.city_b, tie.kind) == (yokohama, odesa, "mou")
    assert tie.history.latest().history_user == researcher
    assert [(c.source.slug, c.locator) for c in tie.citations.all()] == [("article", "para. 5")]


@pytest.mark.django_db
def test_a_tie_without_a_source_is_refused_and_nothing_written(researcher_api):
    a, b = make_city(), make_city()

    response = researcher_api.post(
        "/api/v1/ties/", {"city_a": a.slug, "city_b": b.slug, "kind": "sister"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"]["citations"][0].startswith("Cite at least one source")
    assert not Tie.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"city_b": "SELF"}, "city_b", "A city cannot be tied to itself."),
        ({"start": "sometime in May"}, "start", "is not a date this atlas understands"),
        ({"start": "2000", "end": "1990"}, "end", "The end date lies before the start date."),
        ({"city_b": "atlantis"}, "city_b", "No city has the slug “atlantis”"),
        ({"kind": "cousin"}, "kind", "is not a valid choice"),
    ],
)
def test_invalid_tie_is_refused_with_field_messages_and_nothing_written(
    researcher_api, change, field, message
):
    a, b = make_city(), make_city()
    body = {"city_a": a.slug, "city_b": b.slug, "kind": "sister", **change}
    body["citations"] = [{"source": make_source().slug, "locator": "p. 1"}]
    if body["city_b"] == "SELF":
        body["city_b"] = a.slug

    response = researcher_api.post("/api/v1/ties/", body, format="json")

    assert response.status_code == 400
    assert any(message in m for m in response.json()["errors"][field])
    assert not Tie.objects.exists()


@pytest.mark.django_db
def test_a_misspelt_field_is_refused_not_silently_dropped(researcher_api):
    a, b = make_city(), make_city()
    body = {"city_a": a.slug, "city_b": b.slug, "kind": "sister", "stauts": "ended"}
    body["citations"] = [{"source": make_source().slug, "pages": "p. 1"}]

    response = researcher_api.post("/api/v1/ties/", body, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["stauts"][0].startswith("This API has no field “stauts” to write: the fields")
    assert "status" in errors["stauts"][0]
    assert any("no field “pages”" in m for m in errors["citations"])
    assert not Tie.objects.exists()


@pytest.mark.django_db
def test_a_read_only_field_sent_back_is_refused_with_the_fields_that_can_be_written(
    researcher_api,
):
    tie = make_tie(kind="sister", summary="")

    response = researcher_api.patch(
        f"/api/v1/ties/{tie.pk}/", {"id": tie.pk, "summary": "Renewed."}, format="json"
    )

    assert response.status_code == 400
    message = response.json()["errors"]["id"][0]
    assert message.startswith("This API has no field “id” to write: the fields are city_a,")
    tie.refresh_from_db()
    assert tie.summary == ""


@pytest.mark.django_db
def test_a_well_formed_request_naming_no_record_says_so_in_its_code(researcher_api):
    a = make_city()
    body = {"city_a": a.slug, "city_b": "atlantis", "kind": "sister"}
    body["citations"] = [{"source": "no-such-source"}]

    unknown = researcher_api.post("/api/v1/ties/", body, format="json").json()
    mixed = researcher_api.post("/api/v1/ties/", {**body, "kind": "cousin"}, format="json").json()

    assert unknown["code"] == "unknown_reference"
    assert set(unknown["errors"]) == {"city_b", "citations"}
    assert mixed["code"] == "invalid"  # a kind that no tie can have is not a missing record


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["null", "maybe", "yes"])
def test_a_yes_or_no_filter_refuses_other_words(api, value):
    make_tie()

    response = api.get("/api/v1/cities/", {"has_ties": value})

    assert response.status_code == 400
    assert response.json()["errors"]["has_ties"] == [
        "Use true or false, or leave it out for either."
    ]
    assert api.get("/api/v1/cities/", {"has_ties": "false"}).json()["count"] == 0
    assert api.get("/api/v1/cities/", {"has_ties": ""}).json()["count"] == 2


@pytest.mark.django_db
def test_an_empty_cursor_is_the_first_page(api):
    make_tie()

    response = api.get("/api/v1/ties/", {"cursor": ""})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.django_db
def test_duplicate_tie_entered_the_other_way_round_is_refused(researcher_api):
    tie = make_tie(kind="sister")

    response = researcher_api.post(
        "/api/v1/ties/",
        {
            "city_a": tie.city_b.slug,
            "city_b": tie.city_a.slug,
            "kind": "sister",
            "citations": [{"source": make_source().slug}],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"]["non_field_errors"][0].startswith(
        "These two cities already have a tie of this kind"
    )
    assert Tie.objects.count() == 1


@pytest.mark.django_db
def test_researcher_changes_a_tie_status_and_end(researcher_api):
    tie = make_tie(start="1960")

    response = researcher_api.patch(
        f"/api/v1/ties/{tie.pk}/", {"status": "ended", "end": "1999"}, format="json"
    )

    assert response.status_code == 200
    tie.refresh_from_db()
    assert (tie.status, tie.end, tie.end_upper.year) == ("ended", "1999", 1999)


@pytest.mark.django_db
def test_researcher_cites_a_source_for_a_tie_once(researcher_api):
    tie, source = make_tie(), make_source()
    body = {"tie": tie.pk, "source": source.slug, "locator": "p. 3"}

    first = researcher_api.post("/api/v1/tie-citations/", body, format="json")
    again = researcher_api.post("/api/v1/tie-citations/", body, format="json")

    assert first.status_code == 201
    assert first.json()["tie"] == f"http://testserver/api/v1/ties/{tie.pk}/"
    assert again.status_code == 400
    assert "already cites that source at that place" in str(again.json()["errors"])
    assert TieCitation.objects.count() == 1


@pytest.mark.django_db
def test_membership_needs_exactly_one_member(researcher_api):
    org, city, other = make_organization(), make_city(), make_organization()

    both = researcher_api.post(
        "/api/v1/memberships/",
        {
            "organization": org.slug,
            "city": city.slug,
            "member_organization": other.slug,
            "citations": [{"source": make_source().slug}],
        },
        format="json",
    )
    good = researcher_api.post(
        "/api/v1/memberships/",
        {
            "organization": org.slug,
            "city": city.slug,
            "since": "2014",
            "citations": [{"source": make_source().slug, "locator": "p. 2"}],
        },
        format="json",
    )
    cite = researcher_api.post(
        "/api/v1/membership-citations/",
        {"membership": good.json()["id"], "source": make_source().slug},
        format="json",
    )

    assert both.status_code == 400
    assert both.json()["errors"]["non_field_errors"] == [
        "Choose either a member city or a member organization."
    ]
    assert good.status_code == 201
    assert good.json()["since_display"] == "2014"
    assert cite.status_code == 201
    assert Membership.objects.count() == 1
    # The source it was created with, and the one cited afterwards.
    assert MembershipCitation.objects.count() == 2


# Keys and limits -------------------------------------------------------------------------


@pytest.mark.django_db
def test_key_is_stored_only_as_a_hash(api):
    key, raw = make_key()

    assert raw not in (key.prefix, key.hashed_key)
    assert ApiKey.find(raw) == key
    assert ApiKey.find(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None


@pytest.mark.django_db
def test_revoked_key_is_refused_with_a_way_out(api):
    key, raw = make_key()
    key.revoke()

    response = api.get("/api/v1/cities/", HTTP_X_API_KEY=raw)

    assert response.status_code == 401
    assert response.json()["detail"].startswith("This API key was revoked on ")
    assert "without the header you read as a visitor" in response.json()["detail"]


@pytest.mark.django_db
def test_anonymous_reads_stop_at_the_limit_with_retry_after(api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "3/minute", "partner": "5/minute", "user": "9/hour"},
    }
    statuses = [api.get("/api/v1/themes/").status_code for _ in range(4)]
    refused = api.get("/api/v1/themes/")

    assert statuses == [200, 200, 200, 429]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["code"] == "throttled"


@pytest.mark.django_db
def test_partner_key_has_its_own_higher_limit(api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "2/minute", "partner": "5/minute", "user": "9/hour"},
    }
    _key, raw = make_key()
    _own, own_raw = make_key(name="Big partner", requests_per_hour=7)

    anonymous = [api.get("/api/v1/themes/").status_code for _ in range(3)]
    partner = [api.get("/api/v1/themes/", HTTP_X_API_KEY=raw).status_code for _ in range(6)]
    own = [api.get("/api/v1/themes/", HTTP_X_API_KEY=own_raw).status_code for _ in range(8)]

    assert anonymous == [200, 200, 429]
    assert partner == [200] * 5 + [429]
    assert own == [200] * 7 + [429]


@pytest.mark.django_db
def test_throttle_counts_live_in_the_shared_cache_not_in_the_process(rf, settings):
    """Two throttle objects (as in two app servers) see one count, kept in the cache."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "2/minute", "partner": "5/minute", "user": "9/hour"},
    }
    from rest_framework.request import Request

    request = Request(rf.get("/api/v1/themes/", REMOTE_ADDR="203.0.113.9"))
    server_one, server_two = ApiThrottle(), ApiThrottle()

    assert server_one.allow_request(request, None)
    assert server_two.allow_request(request, None)
    assert not server_one.allow_request(request, None)
    cache.clear()
    assert server_two.allow_request(request, None)


# Query counts ----------------------------------------------------------------------------


def city_rows(n):
    source = make_source()
    theme = Theme.objects.create(name=f"Theme {n}", slug=f"theme-{n}")
    for _ in range(n):
        city = make_city()
        city.themes.add(theme)
        AlternateName.objects.create(city=city, name=f"{city.name} alt")
        figure = StatedFigure.objects.create(city=city, measure="population", value=10)
        StatedFigureCitation.objects.create(figure=figure, source=source)
        CityCitation.objects.create(city=city, source=source)
        make_tie(city_a=city, source=source)
    return city


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [2, 12])
def test_city_list_and_detail_queries_do_not_grow_with_rows(api, django_assert_num_queries, rows):
    city = city_rows(rows)
    # count; cities (with tie counts); alternate names; themes; stated figures; their citations
    with django_assert_num_queries(6):
        assert api.get("/api/v1/cities/").status_code == 200
    # city; alternate names; themes; stated figures; their citations; the city's citations
    with django_assert_num_queries(6):
        assert api.get(f"/api/v1/cities/{city.slug}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [2, 12])
def test_tie_list_and_detail_queries_do_not_grow_with_rows(api, django_assert_num_queries, rows):
    city_rows(rows)
    tie = Tie.objects.last()
    tie.topics.add(Theme.objects.first())
    # ties with both cities; topics; citations with their sources
    with django_assert_num_queries(3):
        assert api.get("/api/v1/ties/", {"ordering": "city"}).status_code == 200
    with django_assert_num_queries(3):
        assert api.get(f"/api/v1/ties/{tie.pk}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [2, 12])
@pytest.mark.parametrize(
    "url, queries",
    [
        # count; organizations with parent and headquarters; themes; citations
        ("/api/v1/organizations/", 4),
        # count; memberships with organization, city and member; citations
        ("/api/v1/memberships/", 3),
        # count; initiatives with leads; partner cities; partner organizations; themes; cites
        ("/api/v1/initiatives/", 6),
        # count; events with city, other city, organization, initiative; themes; citations
        ("/api/v1/events/", 4),
        # count; figures with their subject; citations
        ("/api/v1/figures/", 3),
        # count; sources
        ("/api/v1/sources/", 2),
        # count; themes
        ("/api/v1/themes/", 2),
        # count; citations with sources
        ("/api/v1/tie-citations/", 2),
        ("/api/v1/membership-citations/", 2),
    ],
)
def test_other_lists_pin_their_queries(api, django_assert_num_queries, rows, url, queries):
    from partnerships.models import Event, Initiative

    source = make_source()
    for _ in range(rows):
        org = make_organization(parent=make_organization(), headquarters=make_city())
        city = make_city()
        membership = Membership.objects.create(organization=org, city=city)
        MembershipCitation.objects.create(membership=membership, source=source)
        initiative = Initiative.objects.create(name="Y-Port", kind="programme", lead_city=city)
        initiative.partner_cities.add(make_city())
        initiative.partner_organizations.add(org)
        event = Event.objects.create(title="Visit", kind="visit", city=city, initiative=initiative)
        event.citations.create(source=source)
        StatedFigure.objects.create(organization=org, measure="members", value=2000)
        make_tie(source=source)
        Theme.objects.create(name=f"Theme {org.pk}", slug=f"theme-{org.pk}")
    with django_assert_num_queries(queries):
        assert api.get(url).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [1, 6])
@pytest.mark.parametrize(
    "resource, queries",
    [
        # organization with parent and headquarters; themes; citations
        ("organizations", 3),
        # membership with organization, city and member; citations
        ("memberships", 2),
        # initiative with leads; partner cities; partner organizations; themes; citations
        ("initiatives", 5),
        # event with its cities, organization and initiative; themes; citations
        ("events", 3),
        # figure with its subject; citations
        ("figures", 2),
        ("sources", 1),
        ("themes", 1),
        ("tie-citations", 1),
        ("membership-citations", 1),
    ],
)
def test_other_details_pin_their_queries(api, django_assert_num_queries, rows, resource, queries):
    from partnerships.models import Event, Initiative

    org = make_organization(parent=make_organization(), headquarters=make_city())
    city = make_city()
    membership = Membership.objects.create(organization=org, city=city)
    initiative = Initiative.objects.create(name="Y-Port", kind="programme", lead_city=city)
    event = Event.objects.create(title="Visit", kind="visit", city=city, initiative=initiative)
    figure = StatedFigure.objects.create(organization=org, measure="members", value=2000)
    theme = Theme.objects.create(name="Climate", slug="climate")
    tie = make_tie(city_a=city)
    for _ in range(rows):
        source = make_source()
        for claim in (org, membership, initiative, event, figure, tie):
            claim.citations.create(source=source)
        for claim in (org, initiative, event):
            label = f"{source.pk}-{claim.pk}-{claim._meta.model_name}"
            claim.themes.add(Theme.objects.create(name=label, slug=label))
        initiative.partner_cities.add(make_city())
        initiative.partner_organizations.add(make_organization())
    keys = {
        "organizations": org.slug,
        "memberships": membership.pk,
        "initiatives": initiative.slug,
        "events": event.slug,
        "figures": figure.slug,
        "sources": source.slug,
        "themes": theme.slug,
        "tie-citations": tie.citations.first().pk,
        "membership-citations": membership.citations.first().pk,
    }
    with django_assert_num_queries(queries):
        assert api.get(f"/api/v1/{resource}/{keys[resource]}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, params, field",
    [
        ("/api/v1/memberships/", {"organization": "c4O"}, "organization"),
        ("/api/v1/memberships/", {"city": "odessa"}, "city"),
        ("/api/v1/events/", {"city": "odessa"}, "city"),
        ("/api/v1/initiatives/", {"theme": "climat"}, "theme"),
        ("/api/v1/figures/", {"initiative": "y-port"}, "initiative"),
        ("/api/v1/tie-citations/", {"source": "wikipedia"}, "source"),
        ("/api/v1/exports/ties.csv", {"city": "odessa"}, "city"),
        ("/api/v1/ties/", {"source": "wikipedia"}, "source"),
    ],
)
def test_a_misspelt_slug_in_a_filter_answers_400_instead_of_an_empty_list(api, url, params, field):
    response = api.get(url, params)

    assert response.status_code == 400
    assert "has the slug" in response.json()["errors"][field][0]


@pytest.mark.django_db
def test_api_root_leads_to_the_documentation(client):
    response = client.get("/api/")

    assert response.status_code == 302
    assert response["Location"] == "/api/v1/docs/"
