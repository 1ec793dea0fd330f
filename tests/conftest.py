"""Shared fixtures and tiny builders for the suite."""

import itertools

import pytest
from django.contrib.auth.models import Group, User

from cities.models import City, Source
from partnerships.models import Organization, Tie, TieCitation

_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
