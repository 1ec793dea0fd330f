"""Configuration comes from the environment and fails loudly on bad values."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = (
    "k3Y-" + "".join(chr(c) for c in range(ord("A"), ord("Z") + 1)) + "0123456789-_abcdefghij"
)


def load_settings(**env):
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "REDIS_URL", "SINGLE_PROCESS")
    }
    environment.update(env, DJANGO_SETTINGS_MODULE="cityDiplomacy.settings")
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings;"
         "print(settings.DEBUG, settings.ALLOWED_HOSTS)"],
        cwd=ROOT, env=environment, capture_output=True, text=True,
    )  # fmt: skip


def test_production_refuses_to_start_without_a_real_secret_key():
    result = load_settings(DEBUG="false", ALLOWED_HOSTS="atlas.example.org")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_starts_with_a_secret_key_and_named_hosts():
    result = load_settings(
        DEBUG="false",
        SECRET_KEY=GOOD_KEY,
        ALLOWED_HOSTS="atlas.example.org",
        REDIS_URL="redis://127.0.0.1:6379/15",
    )
    assert result.returncode == 0, result.stderr
    assert "False ['atlas.example.org']" in result.stdout


def test_production_refuses_a_short_or_repetitive_secret_key():
    for key in ["a" * 32, "ab" * 40]:
        result = load_settings(
            DEBUG="false", SECRET_KEY=key, ALLOWED_HOSTS="atlas.example.org", SINGLE_PROCESS="true"
        )
        assert result.returncode != 0
        assert "20 of them different" in result.stderr


def deploy_check(**env):
    # DJANGO_ALLOW_ASYNC_UNSAFE is the browser tests' own, never a deployment's.
    unset = ("DEBUG", "SECRET_KEY", "HTTPS", "DJANGO_ALLOW_ASYNC_UNSAFE")
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    environment.update(env, DJANGO_SETTINGS_MODULE="cityDiplomacy.settings")
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=environment, capture_output=True, text=True,
    )  # fmt: skip


def test_check_deploy_is_clean_in_production_settings():
    result = deploy_check(
        DEBUG="false", SECRET_KEY=GOOD_KEY, ALLOWED_HOSTS="atlas.example.org",
        REDIS_URL="redis://127.0.0.1:6379/15",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_redirects_to_https_and_sends_hsts():
    code = (
        "import django; django.setup(); from django.test import Client;"
        "c = Client(); r = c.get('/api/v1/'); print(r.status_code, r['Location']);"
        "r = c.get('/healthz', secure=True); print(r['Strict-Transport-Security']);"
        "print(c.get('/healthz').status_code)"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "HTTPS")}
    environment.update(
        DEBUG="false", SECRET_KEY=GOOD_KEY, ALLOWED_HOSTS="testserver", SINGLE_PROCESS="true",
        DJANGO_SETTINGS_MODULE="cityDiplomacy.settings",
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "301 https://testserver/api/v1/", result.stderr
    assert lines[1].startswith("max-age=31536000")
    assert lines[2] == "200"  # the load balancer's probe is not redirected


def test_a_nonsense_boolean_is_an_error_not_a_guess():
    result = load_settings(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


def test_sqlite_runs_in_wal_mode_with_immediate_transactions():
    result = load_settings(DATABASE_URL="sqlite:////tmp/citydiplomacy-settings-check.sqlite3")
    assert result.returncode == 0, result.stderr
    check = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.db import connection;"
         "from django.conf import settings; c = connection.cursor();"
         "print(c.execute('PRAGMA journal_mode').fetchone()[0],"
         " settings.DATABASES['default']['OPTIONS']['transaction_mode'])"],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "DATABASE_URL": "sqlite:////tmp/citydiplomacy-settings-check.sqlite3"},
    )  # fmt: skip
    assert check.stdout.split() == ["wal", "IMMEDIATE"], check.stderr


def test_production_refuses_a_cache_that_app_servers_would_not_share():
    result = load_settings(DEBUG="false", SECRET_KEY=GOOD_KEY, ALLOWED_HOSTS="atlas.example.org")
    assert result.returncode != 0
    assert "REDIS_URL must be set" in result.stderr
