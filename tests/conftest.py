"""Shared fixtures and tiny builders for the suite."""

import html
import itertools
import os

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient

from cities.models import City, Source
from partnerships.models import ApiKey, Organization, Tie, TieCitation

_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _cache_of_this_worker(settings):
    """Each process of a parallel run (pytest-xdist) keeps its cache in a Redis database of
    its own: tests empty the cache, which would pull counts and pages from under the
    others."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    location = settings.CACHES["default"].get("LOCATION", "")
    if worker.startswith("gw") and str(location).startswith("redis://"):
        base, _, db = location.rpartition("/")
        number = (int(db or 0) - int(worker[2:])) % 16
        settings.CACHES = {
            **settings.CACHES,
            "default": {**settings.CACHES["default"], "LOCATION": f"{base}/{number}"},
        }


@pytest.fixture(autouse=True)
def _fresh_reads(settings, _cache_of_this_worker):
    """Pages are computed afresh unless a test asks for the read cache (`read_cache`), so
    query counts pin what a page costs to build; and every test starts from an empty cache
    (no rate-limit or failed-sign-in counts left by another)."""
    settings.READ_CACHE = False
    cache.clear()


@pytest.fixture
def read_cache(settings, db):
    """The read cache as in production, emptied. On PostgreSQL the atlas version moves at
    commit, which a test's transaction never reaches: its triggers fire at once instead."""
    from django.db import connection

    settings.READ_CACHE = True
    cache.clear()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    yield
    cache.clear()


def make_city(**kw):
    n = next(_counter)
    kw.setdefault("name", f"City {n}")
    kw.setdefault("country", "JP")
    return City.objects.create(**kw)


def make_source(**kw):
    n = next(_counter)
    kw.setdefault("slug", f"source-{n}")
    kw.setdefault("title", f"Source {n}")
    kw.setdefault("kind", "article")
    return Source.objects.create(**kw)


def make_organization(**kw):
    n = next(_counter)
    kw.setdefault("name", f"Network {n}")
    kw.setdefault("kind", "city_network")
    return Organization.objects.create(**kw)


def make_tie(city_a=None, city_b=None, source=None, **kw):
    kw.setdefault("kind", "sister")
    tie = Tie.objects.create(city_a=city_a or make_city(), city_b=city_b or make_city(), **kw)
    if source is not None:
        TieCitation.objects.create(tie=tie, source=source, locator="p. 1")
    return tie


def make_user(group=None, **kw):
    n = next(_counter)
    kw.setdefault("username", f"user{n}")
    user = User.objects.create_user(password="pw-for-tests-only", is_staff=True, **kw)
    if group:
        if not Group.objects.filter(name=group, permissions__isnull=False).exists():
            # A live-server test flushes every table, the groups a data migration made and
            # their permissions too: make them again, as the migration does.
            from django.apps import apps

            from partnerships.groups import sync_groups

            sync_groups(apps)
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def editor(db):
    return make_user("Editor")


@pytest.fixture
def researcher(db):
    return make_user("Researcher")


@pytest.fixture
def editor_client(client, editor):
    client.force_login(editor)
    return client


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def fresh_throttle_counts():
    """Rate-limit counts live in the default cache; a test using this starts with none."""
    cache.clear()
    yield
    cache.clear()


def make_key(**kw):
    """A saved partner key and the raw key its holder sends (only its hash is stored)."""
    key = ApiKey(name=kw.pop("name", "Partner lab"), **kw)
    raw = key.generate()
    key.save()
    return key, raw


# The admin's forms, as a browser fills them ------------------------------------------------


def admin_url(model, view, *args):
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
    """Fill the next row of the inline `prefix`: the empty row a new record's form opens
    with, else one more, as "Add another" does in the browser."""
    total = int(data[f"{prefix}-TOTAL_FORMS"])
    initial = int(data.get(f"{prefix}-INITIAL_FORMS", 0))
    empty = [
        n
        for n in range(initial, total)
        if not any(data.get(f"{prefix}-{n}-{name}") for name in fields)
    ]
    n = empty[0] if empty else total
    data[f"{prefix}-TOTAL_FORMS"] = str(max(total, n + 1))
    for name, value in fields.items():
        data[f"{prefix}-{n}-{name}"] = value
    return data


def shows(response, text):
    return html.escape(text) in response.content.decode()
