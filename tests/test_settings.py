"""Configuration comes from the environment and fails loudly on bad values."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
        SECRET_KEY="x" * 50,
        ALLOWED_HOSTS="atlas.example.org",
        REDIS_URL="redis://127.0.0.1:6379/15",
    )
    assert result.returncode == 0, result.stderr
    assert "False ['atlas.example.org']" in result.stdout


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
    result = load_settings(DEBUG="false", SECRET_KEY="x" * 50, ALLOWED_HOSTS="atlas.example.org")
    assert result.returncode != 0
    assert "REDIS_URL must be set" in result.stderr
