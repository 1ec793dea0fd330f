"""Password guessing stops: failed sign-ins, admin and API together, are counted per
address and per account, and past the limit no password is even checked."""

import base64

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.urls import reverse
from rest_framework.test import APIClient

from .conftest import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-only"


@pytest.fixture
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 5
    return 5


def basic(username, password):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def admin_sign_in(client, username, password):
    return client.post(
        reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"}
    )


def test_the_admin_refuses_the_right_password_after_repeated_wrong_ones(client, limit):
    user = make_user(group="Editor")
    for _ in range(limit - 1):
        assert admin_sign_in(client, user.username, "wrong").status_code == 200
    assert admin_sign_in(client, user.username, "wrong").status_code == 429  # the limit
    response = admin_sign_in(client, user.username, PASSWORD)
    assert response.status_code == 429
    assert "Signing in is paused" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("admin:index")).status_code == 302  # still signed out


def test_the_api_answers_429_past_the_limit_without_checking_the_password(limit, monkeypatch):
    user = make_user(group="Researcher")
    api = APIClient()
    ties = reverse("api:tie-list")
    for _ in range(limit):
        assert api.post(ties, {}, format="json", **basic(user.username, "wrong")).status_code == 401
    checked = []
    original = MD5PasswordHasher.verify
    monkeypatch.setattr(
        MD5PasswordHasher, "verify", lambda self, *a: checked.append(1) or original(self, *a)
    )
    response = api.post(ties, {}, format="json", **basic(user.username, PASSWORD))
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "throttled"
    assert checked == []  # refused before any hashing


def test_guessing_at_another_account_from_the_same_address_is_stopped_too(limit):
    api = APIClient()
    ties = reverse("api:tie-list")
    for n in range(limit):
        api.post(ties, {}, format="json", **basic(f"nobody{n}", "guess"))
    victim = make_user(group="Researcher")
    response = api.post(ties, {}, format="json", **basic(victim.username, PASSWORD))
    assert response.status_code == 429


def test_wrong_credentials_never_ask_a_browser_for_a_password():
    response = APIClient().get(reverse("api:tie-list"), **basic("someone", "wrong"))
    assert response.status_code == 401
    assert not response["WWW-Authenticate"].startswith("Basic")
