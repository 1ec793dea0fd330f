"""What operators and API clients rely on: health endpoints, request ids and JSON log lines,
and bad input answered 400 (in the API's JSON shape under /api/) instead of 500."""

import json
import logging

import pytest
from django.test import Client
from django.urls import reverse

from .conftest import make_city

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert "no-cache" in response.headers["Cache-Control"]


def test_readyz_checks_the_database_and_the_cache(client, monkeypatch):
    assert client.get("/readyz").json() == {"status": "ready"}

    class Unreachable:
        def set(self, *args, **kwargs):
            raise ConnectionError("cache down")

    monkeypatch.setattr("partnerships.operations.cache", Unreachable())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failed": {"cache": "ConnectionError"}}


def test_every_answer_has_a_request_id_and_a_json_log_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="citydiplomacy.requests"):
        response = client.get("/about/", headers={"X-Request-ID": "lb-7f3a9c2e"})
        fresh = client.get("/about/", headers={"X-Request-ID": "bad id\nwith newline"})
    assert response.headers["X-Request-ID"] == "lb-7f3a9c2e"
    assert len(fresh.headers["X-Request-ID"]) == 32  # replaced, not echoed
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("requests")]
    assert lines[0]["request_id"] == "lb-7f3a9c2e"
    assert lines[0]["path"] == "/about/" and lines[0]["status"] == 200
    assert lines[1]["request_id"] == fresh.headers["X-Request-ID"]


@pytest.mark.parametrize(
    "url", ["/ties/?city=%00", "/compare/?cities=%00,yokohama", "/cities/?q=a%00b"]
)
def test_a_nul_character_in_an_address_is_a_400_not_a_500(client, url):
    make_city(name="Yokohama", slug="yokohama")
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_a_nul_character_in_an_api_address_answers_in_the_json_shape(api):
    response = api.get("/api/v1/themes/a%00b/")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.fixture
def researcher_api(api, researcher):
    api.force_authenticate(researcher)
    return api


def test_deeply_nested_json_is_refused_in_the_json_shape(researcher_api):
    body = "[" * 5000 + "]" * 5000
    response = researcher_api.post(reverse("api:tie-list"), body, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_a_nul_character_in_a_json_body_is_refused(researcher_api):
    response = researcher_api.post(
        reverse("api:tie-list"),
        {"city_a": "yoko\u0000hama", "city_b": "odesa", "kind": "sister"},
        format="json",
    )
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_api_writes_take_json_only_so_a_cross_site_form_cannot_write(researcher_api):
    response = researcher_api.post(
        reverse("api:tie-list"),
        "city_a=yokohama&city_b=odesa&kind=sister",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    assert response.json()["status"] == 415


def test_an_unknown_api_address_answers_in_the_json_shape(api):
    response = api.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_an_oversized_api_body_answers_413_in_the_json_shape(researcher_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = researcher_api.post(reverse("api:tie-list"), {"summary": "x" * 5000}, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_a_server_error_in_the_api_answers_in_the_json_shape(monkeypatch, db):
    def fails(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("partnerships.api.ThemeViewSet.list", fails)
    client = Client(raise_request_exception=False)
    response = client.get(reverse("api:theme-list"))
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "error" and body["status"] == 500
    assert body["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize("value", ["99999999999999999999", "1.5", "-3"])
def test_an_id_out_of_any_column_is_a_400_not_a_500(api, value):
    response = api.get(reverse("api:tiecitation-list"), {"tie": value})
    assert response.status_code == 400
    assert "tie" in response.json()["errors"]


# Pages computed per client --------------------------------------------------------------


def test_a_client_asking_for_too_many_pages_waits_and_others_do_not(settings):
    settings.PAGE_THROTTLE_RATE = "3/minute"
    make_city(name="Yokohama")
    crawler, reader = Client(REMOTE_ADDR="203.0.113.9"), Client(REMOTE_ADDR="198.51.100.4")

    answers = [crawler.get("/cities/").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
    refused = crawler.get("/about/")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Too many pages at once" in refused.content.decode()
    assert reader.get("/cities/").status_code == 200
    # The API keeps its own limits; the health probes have none.
    assert crawler.get("/api/v1/cities/").status_code == 200
    assert crawler.get("/healthz").status_code == 200


def test_cached_pages_and_signed_in_staff_are_not_counted(settings, read_cache, editor_client):
    settings.PAGE_THROTTLE_RATE = "2/minute"
    make_city(name="Yokohama")
    reader = Client(REMOTE_ADDR="203.0.113.9")

    first = reader.get("/cities/")
    again = [reader.get("/cities/") for _ in range(5)]

    assert first["X-Read-Cache"] == "miss"
    assert {r.status_code for r in again} == {200}
    assert {r["X-Read-Cache"] for r in again} == {"hit"}
    assert {editor_client.get(f"/cities/?page={n}").status_code for n in range(4)} == {200}
