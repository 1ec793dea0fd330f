"""The commands behind `make run`: seed loading that is safe to repeat, a local login."""

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from cities.models import City

pytestmark = pytest.mark.django_db


def test_load_seed_twice_keeps_curators_changes():
    call_command("load_seed", verbosity=0)
    yokohama = City.objects.get(slug="yokohama")
    yokohama.summary = "Edited by a curator."
    yokohama.save()
    call_command("load_seed", verbosity=0)
    assert City.objects.get(slug="yokohama").summary == "Edited by a curator."
    assert City.objects.filter(slug="yokohama").count() == 1


def test_ensure_curator_prints_a_login_that_works(capsys, settings):
    settings.DEBUG = True
    call_command("ensure_curator")
    call_command("ensure_curator")
    out = capsys.readouterr().out
    assert "user:     curator" in out and "password: curator" in out
    # As the admin's sign-in form does: with the request, which the sign-in guard counts by.
    user = authenticate(
        RequestFactory().post("/admin/login/"), username="curator", password="curator"
    )
    assert user is not None and user.is_staff
    assert user.groups.filter(name="Editor").exists()


def test_ensure_curator_refuses_in_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("ensure_curator")
