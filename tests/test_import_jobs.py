"""Imports run in the background: the admin's confirmation answers at once with the import's
page, which follows the job to its end; one import writes at a time, from the admin or a
command; a job whose runner died is shown as failed and frees the lock."""

import io
import os
import re
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from cities.models import City
from partnerships import admin_views, importing, jobs
from partnerships.jobs import JobLost, JobStatus
from partnerships.models import ImportJob, Tie
from tests.conftest import make_city, make_user, shows

pytestmark = pytest.mark.django_db

IMPORT = reverse("admin:partnerships_tie_import")
CONFIRM = reverse("admin:partnerships_tie_import_confirm")
HEADER = "city1,country1,lat1,lng1,city2,country2,lat2,lng2"
ROWS = [
    HEADER,
    "Yokohama,Japan,35.44,139.64,Odesa,Ukraine,46.48,30.73",
    "Odesa,Ukraine,46.48,30.73,Yokohama,Japan,35.44,139.64",
    "Yokohama,Japan,35.44,139.64,Lyon,France,45.77,4.84",
]


def upload(lines=ROWS, name="ties.csv"):
    return SimpleUploadedFile(name, ("\n".join(lines) + "\n").encode(), content_type="text/csv")


def preview(client, lines=ROWS):
    """Upload a file: the dry run's token."""
    return client.post(IMPORT, {"file": upload(lines), "kind": "unspecified"}).context["token"]


def running_job(**fields):
    """An import holding the lock, as a command running elsewhere would."""
    fields.setdefault("kind", "tie")
    fields.setdefault("file_name", "other.csv")
    fields.setdefault("status", JobStatus.RUNNING)
    fields.setdefault("started_from", "import_ties")
    return ImportJob.objects.open(**fields)


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client


@pytest.fixture
def launched(monkeypatch):
    """The jobs confirmations start: recorded, not run, so that a test runs them itself."""
    started = []
    monkeypatch.setattr(jobs, "launch", started.append)
    return started


@pytest.fixture
def yokohama():
    return make_city(name="Yokohama", country="JP", latitude=35.44, longitude=139.64)


def test_a_confirmed_import_answers_at_once_and_its_page_follows_the_job_to_the_end(
    researcher_client, researcher, yokohama, launched, django_capture_on_commit_callbacks
):
    token = preview(researcher_client)

    with django_capture_on_commit_callbacks(execute=True):
        response = researcher_client.post(CONFIRM, {"token": token})

    # The answer is the job's page, before anything is written: the runner is started once
    # the job is committed.
    [job] = launched
    assert response.status_code == 302 and response.url == job.get_absolute_url()
    assert (job.status, job.curator, job.file_name) == ("queued", researcher, "ties.csv")
    assert not Tie.objects.exists()
    waiting = researcher_client.get(response.url)
    assert shows(waiting, "Waiting to start")
    assert '<meta http-equiv="refresh" content="3">' in waiting.content.decode()
    # No inline script: the site's Content-Security-Policy would block it.
    assert not re.search(r"<script(?![^>]*\bsrc=)", waiting.content.decode())

    out = io.StringIO()
    call_command("run_import_job", job.pk, stdout=out)

    assert "Import job" in out.getvalue() and "Imported" in out.getvalue()
    done = researcher_client.get(response.url)
    assert shows(done, "Imported ties.csv: 2 ties and 2 cities created, 1 cities matched")
    assert 'http-equiv="refresh"' not in done.content.decode()
    assert dict(done.context["figures"])["ties created"] == 2
    listed = researcher_client.get(done.context["link"])
    assert listed.context["cl"].result_count == 2
    job.refresh_from_db()
    assert (job.status, job.is_active, job.file_text) == ("done", False, "")
    # A job runs once.
    with pytest.raises(CommandError, match="not waiting to run"):
        call_command("run_import_job", job.pk, stdout=io.StringIO())


def test_the_page_of_a_running_import_shows_how_far_it_got(researcher_client):
    job = running_job(curator=make_user(username="kim"))
    job.beat("Writing ties", 12000, 25917)

    page = researcher_client.get(job.get_absolute_url())

    assert shows(page, "Writing ties")
    assert shows(page, "— 12,000 of 25,917 rows")
    assert '<progress max="100" value="46">' in page.content.decode()
    assert page.context["refresh"] == 3
    # The upload page lists it, with a link to its page.
    form = researcher_client.get(IMPORT)
    assert job.get_absolute_url() in form.content.decode()
    assert shows(form, "Running: 12,000 of 25,917 rows")


def test_a_second_import_while_one_runs_is_refused_and_the_file_waits(
    researcher_client, yokohama, launched, django_capture_on_commit_callbacks
):
    other = running_job(curator=make_user(username="kim"))
    token = preview(researcher_client)

    response = researcher_client.post(CONFIRM, {"token": token}, follow=True)

    assert response.redirect_chain[-1][0] == IMPORT
    assert shows(response, "Another import is running: other.csv (import_ties by kim, since")
    assert shows(response, "Only one import writes at a time: try again once it has finished.")
    assert other.get_absolute_url() in response.content.decode()
    assert (ImportJob.objects.count(), launched, Tie.objects.count()) == (1, [], 0)
    # The upload waits, and is confirmed from the upload page once the other import is done.
    assert response.context["waiting"]["name"] == "ties.csv"
    assert shows(response, "(3 rows) passed its dry run and\nwaits for your confirmation")
    other.finish(JobStatus.DONE)
    with django_capture_on_commit_callbacks(execute=True):
        researcher_client.post(CONFIRM, {"token": response.context["waiting"]["token"]})
    [job] = launched
    admin_views.run_job(job.pk)
    assert Tie.objects.count() == 2


def test_a_second_import_while_one_runs_is_refused_by_the_command(tmp_path, researcher):
    running_job(curator=researcher, started_from="admin")
    path = tmp_path / "ties.csv"
    path.write_text("\n".join(ROWS) + "\n", encoding="utf-8")

    with pytest.raises(CommandError, match=r"Another import is running: other\.csv \(admin by"):
        call_command("import_ties", str(path), stdout=io.StringIO())
    assert not Tie.objects.exists()
    # A dry run writes nothing and needs no lock.
    call_command("import_ties", str(path), "--dry-run", stdout=io.StringIO())


def test_the_command_holds_the_lock_while_it_runs_and_records_its_import(tmp_path, researcher):
    path = tmp_path / "ties.csv"
    path.write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    seen = []
    original = ImportJob.beat

    def beat(job, *args):
        seen.append(ImportJob.objects.active().get().started_from)
        original(job, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImportJob, "beat", beat)
        call_command("import_ties", str(path), "--user", researcher.username, stdout=io.StringIO())

    assert set(seen) == {"import_ties"}
    job = ImportJob.objects.get()
    assert (job.status, job.is_active, job.curator, job.file_name) == (
        "done",
        False,
        researcher,
        "ties.csv",
    )
    assert job.summary["ties_created"] == 2


def test_an_import_whose_runner_died_is_shown_failed_and_frees_the_lock(researcher_client):
    dead = running_job(file_name="stalled.csv")
    ImportJob.objects.filter(pk=dead.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=10), phase="Writing ties", total=50
    )

    page = researcher_client.get(dead.get_absolute_url())

    assert page.context["status"] == "failed"
    assert shows(page, "The import stopped without finishing: its process was not heard from")
    assert shows(page, "Import the same file again to add the rest")
    assert 'http-equiv="refresh"' not in page.content.decode()
    assert not ImportJob.objects.active().exists()
    assert running_job().is_active  # the next import may start


def test_a_dead_job_blocks_nothing_even_before_anyone_looks_at_it(tmp_path):
    dead = running_job(file_name="stalled.csv")
    ImportJob.objects.filter(pk=dead.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    path = tmp_path / "ties.csv"
    path.write_text("\n".join(ROWS) + "\n", encoding="utf-8")

    call_command("import_ties", str(path), stdout=io.StringIO())

    assert Tie.objects.count() == 2
    dead.refresh_from_db()
    assert (dead.status, dead.is_active) == ("failed", False)


def test_a_runner_taken_for_dead_stops_before_writing_another_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(importing, "BATCH_ROWS", 1)
    monkeypatch.setattr(importing.Progress, "REPORT_SECONDS", 0)
    job = running_job()
    path = tmp_path / "ties.csv"
    path.write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    original = job.beat

    def beat(phase, done, total, unit="rows"):
        if phase == "Writing ties" and done == 1:
            # Meanwhile another server took the job for dead.
            ImportJob.objects.filter(pk=job.pk).update(status="failed", is_active=False)
        original(phase, done, total, unit)

    with pytest.raises(JobLost):
        importing.run_import(path, progress=importing.Progress(report=beat))
    assert Tie.objects.count() == 1  # the first batch only


def test_a_job_that_fails_says_why_and_how_to_go_on(
    researcher_client, yokohama, launched, django_capture_on_commit_callbacks, monkeypatch
):
    token = preview(researcher_client)
    with django_capture_on_commit_callbacks(execute=True):
        researcher_client.post(CONFIRM, {"token": token})

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importing, "write_batch", broken)
    with pytest.raises(CommandError, match="disk full"):
        call_command("run_import_job", launched[0].pk, stdout=io.StringIO())

    page = researcher_client.get(launched[0].get_absolute_url())
    assert page.context["status"] == "failed"
    assert shows(page, "The import stopped: disk full.")
    assert shows(page, "What it wrote before stopping stays, in whole batches of rows.")
    assert City.objects.count() == 3  # the cities' batch was written; the ties' was not
    assert not Tie.objects.exists()
    assert not ImportJob.objects.active().exists()


def test_a_runner_that_cannot_start_fails_its_job_at_once(
    researcher_client, yokohama, monkeypatch, django_capture_on_commit_callbacks
):
    def no_process(job):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(jobs, "launch", no_process)
    token = preview(researcher_client)
    with django_capture_on_commit_callbacks(execute=True):
        response = researcher_client.post(CONFIRM, {"token": token})

    page = researcher_client.get(response.url)
    assert page.context["status"] == "failed"
    assert shows(page, "The import could not be started: [Errno 11] Resource temporarily")
    assert not ImportJob.objects.active().exists()


def test_the_runner_is_started_detached_with_the_servers_interpreter_and_settings(monkeypatch):
    calls = []

    class Process:
        def __init__(self, command, **options):
            calls.append((command, options))

        def wait(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Process)
    job = running_job(status=JobStatus.QUEUED)

    jobs.launch(job)

    [(command, options)] = calls
    manage = str(settings.BASE_DIR / "manage.py")
    assert command == [sys.executable, manage, "run_import_job", str(job.pk)]
    assert options["start_new_session"] is True
    assert options["env"]["DJANGO_SETTINGS_MODULE"] == "cityDiplomacy.settings"
    assert options["env"]["PATH"] == os.environ["PATH"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql" and "DATABASE_URL" not in os.environ,
    reason="another process cannot open the in-memory SQLite database of the tests",
)
def test_a_real_runner_process_imports_in_the_background(client, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("another process cannot open the in-memory SQLite database of the tests")
    database = connection.settings_dict
    monkeypatch.setenv(
        "DATABASE_URL",
        f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
    )
    # A flushed database has no groups (their data migration ran once): a superuser then.
    client.force_login(make_user(is_superuser=True))
    make_city(name="Yokohama", country="JP", latitude=35.44, longitude=139.64)
    token = preview(client)

    response = client.post(CONFIRM, {"token": token})

    job = ImportJob.objects.get()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if not job.is_active:
            break
        time.sleep(0.5)
    assert (job.status, job.error) == ("done", "")
    assert shows(client.get(response.url), "Imported ties.csv: 2 ties and 2 cities created")
    assert Tie.objects.count() == 2
