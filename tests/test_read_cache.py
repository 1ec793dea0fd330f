"""The read cache: public answers come from the cache until any write, from any path, moves
the atlas version on; signed-in researchers always see fresh pages."""

import gzip

import pytest
from django.db import connection
from django.urls import reverse

from cities.models import City
from partnerships.models import AtlasVersion, Tie
from partnerships.readcache import atlas_tables, current_version

from .conftest import make_city, make_source, make_tie

pytestmark = pytest.mark.django_db


@pytest.fixture
def yokohama(read_cache):
    city = make_city(name="Yokohama", slug="yokohama", country="JP")
    make_tie(city, make_city(name="Vancouver", slug="vancouver", country="CA"), make_source())
    return city


def profile(client, **headers):
    return client.get(reverse("partnerships:city_detail", args=["yokohama"]), headers=headers)


def test_a_second_read_is_answered_from_the_cache_with_one_query(
    client, yokohama, django_assert_num_queries
):
    first = profile(client)
    assert first.status_code == 200
    assert first.headers["X-Read-Cache"] == "miss"
    with django_assert_num_queries(1):  # the atlas version
        second = profile(client)
    assert second.headers["X-Read-Cache"] == "hit"
    assert second.content == first.content
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert second.headers["ETag"] == first.headers["ETag"]


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(
            lambda: City.objects.filter(slug="vancouver").update(name="Vancouver BC"),
            id="queryset-update",
        ),
        pytest.param(
            lambda: City.objects.bulk_update(
                [City(pk=City.objects.get(slug="vancouver").pk, name="Vancouver BC")], ["name"]
            ),
            id="bulk-update",
        ),
        pytest.param(
            lambda: connection.cursor().execute(
                "UPDATE cities_city SET name = 'Vancouver BC' WHERE slug = 'vancouver'"
            ),
            id="raw-sql",
        ),
        pytest.param(lambda: _save_name("vancouver", "Vancouver BC"), id="model-save"),
    ],
)
def test_every_kind_of_write_shows_on_the_next_read(client, yokohama, write):
    assert b"Vancouver BC" not in profile(client).content
    assert profile(client).headers["X-Read-Cache"] == "hit"
    write()
    fresh = profile(client)
    assert fresh.headers["X-Read-Cache"] == "miss"
    assert b"Vancouver BC" in fresh.content


def _save_name(slug, name):
    city = City.objects.get(slug=slug)
    city.name = name
    city.save()


def test_a_deleted_tie_disappears_and_a_new_one_appears(client, yokohama):
    assert b"Vancouver" in profile(client).content
    Tie.objects.all().delete()
    assert b"Vancouver" not in profile(client).content
    make_tie(yokohama, make_city(name="Frankfurt", slug="frankfurt", country="DE"))
    assert b"Frankfurt" in profile(client).content


def test_an_admin_save_shows_to_the_next_anonymous_reader(client, yokohama, editor):
    from django.test import Client

    assert b"Kanagawa" not in profile(client).content
    staff = Client()
    staff.force_login(editor)
    change = reverse("admin:cities_city_change", args=[yokohama.pk])
    form = staff.get(change).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and not isinstance(value, (list, tuple))
    }
    data.update(name="Yokohama Kanagawa")
    page = staff.get(change)
    # Post the form as the page shows it, inline management forms included.
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for field in management:
            data[field.html_name] = field.value()
    response = staff.post(change, data)
    assert response.status_code == 302, getattr(response, "context", None) and [
        f.errors for f in [response.context["adminform"].form]
    ]
    assert b"Yokohama Kanagawa" in profile(client).content


def test_a_revalidating_client_gets_304_until_the_atlas_changes(client, yokohama):
    first = profile(client)
    etag = first.headers["ETag"]
    unchanged = profile(client, if_none_match=etag)
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert "no-cache" in unchanged.headers["Cache-Control"]
    City.objects.filter(slug="yokohama").update(population=3_700_000)
    changed = profile(client, if_none_match=etag)
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


def test_last_modified_only_once_the_version_is_older_than_its_second(client, yokohama):
    AtlasVersion.objects.filter(id=1).update(changed_at="2026-01-01T10:00:00.5Z")
    response = profile(client)
    assert response.headers["Last-Modified"] == "Thu, 01 Jan 2026 10:00:00 GMT"
    assert profile(client, if_modified_since="Thu, 01 Jan 2026 10:00:00 GMT").status_code == 304
    City.objects.filter(slug="yokohama").update(population=1)  # the version is new now
    fresh = profile(client, if_modified_since="Thu, 01 Jan 2026 10:00:00 GMT")
    assert fresh.status_code == 200
    assert "Last-Modified" not in fresh.headers


def test_signed_in_researchers_and_api_credentials_get_fresh_answers(
    client, yokohama, editor, api, django_assert_num_queries
):
    profile(client)
    assert profile(client).headers["X-Read-Cache"] == "hit"
    client.force_login(editor)
    staff_view = profile(client)
    assert "X-Read-Cache" not in staff_view.headers
    ties = reverse("api:tie-list")
    assert api.get(ties).headers["X-Read-Cache"] == "miss"
    assert api.get(ties).headers["X-Read-Cache"] == "hit"
    api.force_authenticate(None)
    with_key = api.get(ties, headers={"X-API-Key": "not-a-key"})
    assert "X-Read-Cache" not in with_key.headers


def test_api_answers_vary_on_the_query_and_are_cached_apart(api, yokohama):
    first = api.get(reverse("api:city-list"), {"q": "yoko"}).json()
    second = api.get(reverse("api:city-list"), {"q": "vanc"}).json()
    assert [c["slug"] for c in first["results"]] == ["yokohama"]
    assert [c["slug"] for c in second["results"]] == ["vancouver"]


def test_pages_with_a_csrf_token_are_never_stored(client, yokohama):
    url = reverse("partnerships:city_correction", args=["yokohama"])
    assert client.get(url).status_code == 200
    again = client.get(url)
    assert "X-Read-Cache" not in again.headers
    assert b"csrfmiddlewaretoken" in again.content


def test_public_pages_are_compressed_and_cached_per_encoding(client, yokohama):
    zipped = profile(client, accept_encoding="gzip")
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert b"Yokohama" in gzip.decompress(zipped.content)
    plain = profile(client)
    assert "Content-Encoding" not in plain.headers
    assert b"Yokohama" in plain.content
    assert profile(client, accept_encoding="gzip").headers["X-Read-Cache"] == "hit"


def test_pages_with_a_csrf_token_and_staff_pages_go_out_uncompressed(client, yokohama, editor):
    url = reverse("partnerships:city_correction", args=["yokohama"])
    assert "Content-Encoding" not in client.get(url, headers={"accept_encoding": "gzip"})
    client.force_login(editor)
    admin = client.get(reverse("admin:index"), headers={"accept_encoding": "gzip"})
    assert admin.status_code == 200
    assert "Content-Encoding" not in admin.headers


def test_every_atlas_table_has_the_version_trigger(read_cache):
    """Triggers, not code paths, move the version: each table of the atlas carries one,
    history and many-to-many tables included, and the version row itself does not."""
    tables = atlas_tables()
    assert {"cities_city", "partnerships_tie", "partnerships_historicaltie"} <= set(tables)
    assert "partnerships_apikey" not in tables
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute(
                "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = %s",
                ["atlas_version_bump"],
            )
        triggered = {row[0].strip('"') for row in cursor.fetchall()}
    assert set(tables) <= triggered
    assert "partnerships_atlasversion" not in triggered


def test_a_flushed_version_row_starts_again_under_a_new_token(read_cache):
    before, _ = current_version()
    AtlasVersion.objects.all().delete()
    after, _ = current_version()
    assert after != before
    assert AtlasVersion.objects.count() == 1


def test_a_whole_export_is_computed_once_per_version(client, yokohama):
    url = "/api/v1/exports/ties.csv"
    first = client.get(url)
    assert first.headers["X-Read-Cache"] == "miss"
    body = first.content
    assert b"Vancouver" in body
    again = client.get(url)
    assert again.headers["X-Read-Cache"] == "hit"
    assert again.content == body
    City.objects.filter(slug="vancouver").update(name="Vancouver BC")
    fresh = client.get(url)
    assert b"Vancouver BC" in fresh.content


def test_an_export_larger_than_the_cache_keeps_streams_on_whole(client, yokohama, settings):
    settings.READ_CACHE_MAX_BYTES = 10
    first = client.get("/api/v1/exports/ties.csv")
    body = b"".join(first.streaming_content)
    assert b"Yokohama" in body and b"Vancouver" in body
    second = client.get("/api/v1/exports/ties.csv")
    assert "X-Read-Cache" not in second.headers  # nothing kept
    assert b"".join(second.streaming_content) == body


def test_anonymous_clients_may_compute_few_exports(api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "anon_export": "2/minute",
        },
    }
    from django.core.cache import cache

    cache.clear()
    statuses = [api.get("/api/v1/exports/ties.csv").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert api.get(reverse("api:tie-list")).status_code == 200  # other reads go on
