"""Who may do what through the API: every endpoint × every method × every kind of caller.

Reading is open (a revoked key is refused rather than quietly downgraded, so its holder
notices); writing ties, memberships and their citations needs a Researcher or Editor; a
partner key never writes; methods an endpoint does not offer answer 405 to everyone.
"""

import itertools

import pytest
from rest_framework.test import APIClient

from cities.models import Theme
from partnerships.models import (
    ApiKey,
    Event,
    Initiative,
    Membership,
    MembershipCitation,
    StatedFigure,
    TieCitation,
)
from tests.conftest import (
    make_city,
    make_key,
    make_organization,
    make_source,
    make_tie,
    make_user,
)

ROLES = ["anonymous", "partner key", "revoked key", "Researcher", "Editor"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_n = itertools.count(1)


pytestmark = pytest.mark.usefixtures("fresh_throttle_counts")


@pytest.fixture
def world(db):
    """One record of every kind, so that each detail address exists."""
    source = make_source()
    city = make_city()
    tie = make_tie(city_a=city, source=source)
    org = make_organization()
    membership = Membership.objects.create(organization=org, city=city)
    MembershipCitation.objects.create(membership=membership, source=source)
    initiative = Initiative.objects.create(name="Y-Port", kind="programme", lead_city=city)
    event = Event.objects.create(title="Mayor's visit", kind="visit", city=city)
    figure = StatedFigure.objects.create(city=city, measure="population", value=3_500_000)
    theme = Theme.objects.create(name="Peace", slug="peace")
    return {
        "cities": city.slug,
        "ties": tie.pk,
        "organizations": org.slug,
        "memberships": membership.pk,
        "initiatives": initiative.slug,
        "events": event.slug,
        "figures": figure.slug,
        "sources": source.slug,
        "themes": theme.slug,
        "tie-citations": TieCitation.objects.get().pk,
        "membership-citations": MembershipCitation.objects.get().pk,
        "org": org,
        "tie": tie,
        "membership": membership,
    }


def body_for(resource, world):
    """A valid new record for each writable resource (fresh cities so none is a duplicate)."""
    n = next(_n)
    cited = [{"source": make_source().slug, "locator": f"p. {n}"}]
    if resource == "ties":
        return {
            "city_a": make_city().slug,
            "city_b": make_city().slug,
            "kind": "sister",
            "citations": cited,
        }
    if resource == "memberships":
        return {
            "organization": world["org"].slug,
            "city": make_city().slug,
            "role": "member",
            "citations": cited,
        }
    if resource == "tie-citations":
        return {"tie": world["tie"].pk, "source": make_source().slug, "locator": f"p. {n}"}
    if resource == "membership-citations":
        return {"membership": world["membership"].pk, "source": make_source().slug}
    return {"name": f"Thing {n}"}


def client_for(role):
    client = APIClient()
    if role in ("partner key", "revoked key"):
        key, raw = make_key(name=role)
        if role == "revoked key":
            key.revoke()
        client.credentials(HTTP_X_API_KEY=raw)
    elif role == "Researcher":
        # Researchers through HTTP Basic, as a script would…
        user = make_user("Researcher")
        client.credentials(
            HTTP_AUTHORIZATION="Basic "
            + __import__("base64").b64encode(f"{user.username}:pw-for-tests-only".encode()).decode()
        )
    elif role == "Editor":
        # …Editors through the admin's session, as the browser would.
        client.force_login(make_user("Editor"))
    return client


WRITABLE = {"ties", "memberships", "tie-citations", "membership-citations"}
READ_ONLY = {"cities", "organizations", "initiatives", "events", "figures", "sources", "themes"}
READ = {"anonymous": 200, "partner key": 200, "revoked key": 401, "Researcher": 200, "Editor": 200}
NOT_ALLOWED = dict.fromkeys(ROLES, 405)


def write(success):
    return {
        "anonymous": 401,
        "partner key": 403,
        "revoked key": 401,
        "Researcher": success,
        "Editor": success,
    }


def expected(resource, detail, method):
    if method == "GET":
        return READ
    if resource in WRITABLE:
        if not detail and method == "POST":
            return write(201)
        if detail and method in ("PUT", "PATCH"):
            return write(200)
    return NOT_ALLOWED


CASES = [
    (resource, detail, method)
    for resource in sorted(WRITABLE | READ_ONLY)
    for detail in (False, True)
    for method in METHODS
]


@pytest.mark.parametrize("resource, detail, method", CASES)
def test_resource_permissions(world, resource, detail, method):
    url = f"/api/v1/{resource}/{world[resource]}/" if detail else f"/api/v1/{resource}/"
    statuses = {}
    for role in ROLES:
        client = client_for(role)
        payload = body_for(resource, world) if method in ("POST", "PUT", "PATCH") else None
        response = getattr(client, method.lower())(url, payload, format="json")
        statuses[role] = response.status_code

    assert statuses == expected(resource, detail, method)


OTHER = [
    "/api/v1/",
    "/api/v1/compare/?cities={cities},{other}",
    "/api/v1/exports/ties.csv",
    "/api/v1/exports/ties.geojson",
    "/api/v1/exports/ties.gexf",
    "/api/v1/exports/ties.graphml",
    "/api/v1/exports/sources.json",
    "/api/v1/exports/sources.bib",
    "/api/v1/schema/",
    "/api/v1/docs/",
    "/api/v1/docs/redoc/",
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("address", OTHER)
def test_read_only_endpoint_permissions(world, address, method):
    url = address.format(cities=world["cities"], other=make_city().slug)
    statuses = {}
    for role in ROLES:
        response = getattr(client_for(role), method.lower())(url)
        statuses[role] = response.status_code

    assert statuses == (READ if method == "GET" else NOT_ALLOWED)


@pytest.mark.django_db
def test_staff_without_a_curator_group_cannot_write():
    client = APIClient()
    client.force_login(make_user())
    city_a, city_b = make_city(), make_city()

    response = client.post(
        "/api/v1/ties/", {"city_a": city_a.slug, "city_b": city_b.slug, "kind": "sister"}
    )

    assert response.status_code == 403
    assert "researcher's account" in response.json()["detail"]


@pytest.mark.django_db
def test_partner_key_write_is_refused_saying_keys_only_read():
    _key, raw = make_key(name="Lab")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)

    response = client.post("/api/v1/ties/", {}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"].endswith("a partner key only reads.")


@pytest.mark.django_db
def test_refused_anonymous_write_asks_for_credentials():
    response = APIClient().post("/api/v1/ties/", {}, format="json")

    assert response.status_code == 401
    # Named, but in a scheme browsers do not prompt for: no password to remember and reuse.
    assert response["WWW-Authenticate"] == 'Credentials realm="cityDiplomacy API"'
    assert "Basic" not in response["WWW-Authenticate"]


# Keys in the admin ------------------------------------------------------------------------


@pytest.mark.django_db
def test_editor_creates_a_key_and_sees_it_once(client, editor):
    client.force_login(editor)

    response = client.post(
        "/admin/partnerships/apikey/add/", {"name": "Urban lab", "requests_per_hour": "20000"}
    )

    assert response.status_code == 200
    key = ApiKey.objects.get()
    page = response.content.decode()
    raw = page.split('<code id="api-key">')[1]
    raw = raw.split("</code>")[0]
    assert ApiKey.find(raw) == key
    assert raw not in (key.hashed_key, key.prefix)
    assert key.created_by == editor
    assert "no-store" in response["Cache-Control"]
    later = client.get(f"/admin/partnerships/apikey/{key.pk}/change/").content.decode()
    assert key.prefix in later and raw not in later
    assert APIClient().get("/api/v1/themes/", HTTP_X_API_KEY=raw).status_code == 200


@pytest.mark.django_db
def test_editor_revokes_a_key_and_the_api_refuses_it(client, editor):
    key, raw = make_key(name="Old partner")
    client.force_login(editor)

    client.post(
        "/admin/partnerships/apikey/",
        {"action": "revoke", "_selected_action": [key.pk]},
    )

    key.refresh_from_db()
    assert key.is_revoked
    assert APIClient().get("/api/v1/themes/", HTTP_X_API_KEY=raw).status_code == 401


@pytest.mark.django_db
def test_researchers_cannot_see_or_make_keys(client, researcher):
    client.force_login(researcher)

    assert client.get("/admin/partnerships/apikey/").status_code == 403
    assert client.get("/admin/partnerships/apikey/add/").status_code == 403
    assert not researcher.has_perm("partnerships.manage_apikey")
