"""Imports that run in the background, and the lock that lets one import write at a time.

Importing the shared Wikipedia file takes longer than an app server lets a request run. So
the admin's confirmation only records an ImportJob (the file, the options, the figures the
curator confirmed) and starts `manage.py run_import_job <id>` in a process of its own; it then
shows the job's page, which refreshes itself until the job is done. Why this way:

- **The job row is the shared state.** Status, progress, figures and report live in the
  database every app server reads, so the job's page is right whichever server answers, and
  the file waits in the row, not on one server's disk.
- **A detached process, not a thread.** launch() starts the runner with the app server's
  own interpreter, settings and environment, in a session of its own: neither the request
  ending, nor the worker being recycled (max_requests) or killed on its timeout, nor a signal
  to the worker's process group stops it. A thread would die with its worker. No broker or
  queue service is needed: one import at a time needs no queue.
- **A heartbeat tells a dead runner.** The runner records its progress, and so
  `heartbeat_at`, every few seconds and after every batch it writes. A job whose heartbeat
  is older than STALE_AFTER (the process was killed, the machine restarted) is shown as
  failed and gives up the lock; should its runner still be alive, its next heartbeat finds
  the job failed and it stops (JobLost) before writing another batch.
- **One import at a time.** At most one job is active (queued or running): a partial unique
  index on `is_active` guarantees it on SQLite and PostgreSQL alike, whichever app server or
  shell asks. The import commands take the same lock, through a job row of their own, so a
  second import, from the admin or a command, is refused with a message naming the one that
  runs. Dry runs write nothing and take no lock.

An import that fails half-way leaves the batches it wrote (partnerships.importing writes a
batch of rows per transaction); importing the same file again recognises them and adds the
rest.
"""

import os
import socket
import subprocess
import sys
import threading
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from cities.models import choices_constraint

# A runner reports at least this often while it works (importing.Progress: every 2 s, and
# after each batch, which takes about a second): silence this long means it died.
STALE_AFTER = timedelta(minutes=2)
# What to do about an import that stopped half-way.
RESUME = (
    "What it wrote before stopping stays, in whole batches of rows. Import the same file "
    "again to add the rest: the rows already imported are recognised and add nothing."
)
STALLED = (
    "The import stopped without finishing: its process was not heard from for "
    f"{STALE_AFTER.seconds // 60} minutes (it was stopped, or its server restarted). {RESUME}"
)


class JobKind(models.TextChoices):
    """What an import adds: the model its admin page belongs to."""

    TIE = "tie", "ties"
    MEMBERSHIP = "membership", "memberships"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Waiting to start"
    RUNNING = "running", "Running"
    DONE = "done", "Imported"
    CHANGED = "changed", "Not imported: the atlas changed since the preview"
    FAILED = "failed", "Failed"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class ImportBusy(Exception):
    """Another import holds the lock."""

    def __init__(self, job=None):
        self.job = job
        running = f": {job.describe()}" if job else ""
        super().__init__(
            f"Another import is running{running}. Only one import writes at a time: try "
            "again once it has finished."
        )


class JobLost(Exception):
    """The job's row no longer says it is active (it was taken for dead): its runner stops."""


class ImportJobQuerySet(models.QuerySet):
    def active(self):
        """The job holding the import lock (queued or running), if any."""
        return self.filter(is_active=True)

    def stale(self):
        """Active jobs not heard from for STALE_AFTER: their runner died."""
        return self.active().filter(heartbeat_at__lt=timezone.now() - STALE_AFTER)

    def expire_stale(self):
        """Mark the jobs of dead runners failed, which frees the lock. Returns how many."""
        stale = self.stale()
        if not stale.exists():  # a read: no write lock taken on each look at a job's page
            return 0
        now = timezone.now()
        return stale.update(
            status=JobStatus.FAILED, is_active=False, finished_at=now, error=STALLED, file_text=""
        )


class ImportJobManager(models.Manager.from_queryset(ImportJobQuerySet)):
    def open(self, **fields):
        """A new job holding the import lock: queued for a runner (the admin's), or running
        at once (a command's). Raises ImportBusy while another import is active; one whose
        runner died is marked failed first."""
        for _attempt in range(3):
            try:
                with transaction.atomic():
                    return self.create(is_active=True, heartbeat_at=timezone.now(), **fields)
            except IntegrityError:
                expired = self.expire_stale()
                running = self.active().defer("file_text").first()
                if running is not None and not expired:
                    raise ImportBusy(running) from None
        raise ImportBusy(self.active().defer("file_text").first())


class ImportJob(models.Model):
    """An import from a file, run in the background for the admin, or by a command: its
    status and progress while it runs, then its figures and report. Also the lock that lets
    one import write at a time (`is_active`)."""

    kind = models.CharField("imports", max_length=12, choices=JobKind.choices)
    status = models.CharField(
        "status", max_length=8, choices=JobStatus.choices, default=JobStatus.QUEUED
    )
    file_name = models.CharField("file", max_length=255)
    file_text = models.TextField(
        "file contents",
        blank=True,
        help_text="The uploaded file, kept until the import has run (and while the atlas "
        "changed since its preview, for a second confirmation).",
    )
    options = models.JSONField(
        "options",
        default=dict,
        blank=True,
        help_text="What the confirmation planned with: column mapping, source, kind of tie, "
        "good rows only, and the figures of the preview.",
    )
    curator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="import_jobs",
        verbose_name="curator",
    )
    started_from = models.CharField(
        "started from", max_length=40, default="admin", help_text="The admin, or a command."
    )
    phase = models.CharField("phase", max_length=80, blank=True)
    unit = models.CharField("counting", max_length=12, default="rows")
    done = models.PositiveIntegerField("done", default=0)
    total = models.PositiveIntegerField("of", default=0)
    summary = models.JSONField("figures", default=dict, blank=True)
    report = models.JSONField("report", default=dict, blank=True)
    error = models.TextField("why it failed", blank=True)
    runner = models.CharField("runs in", max_length=120, blank=True, help_text="Host and process.")
    is_active = models.BooleanField(
        "is queued or running", default=True, help_text="Holds the lock: one import at a time."
    )
    created_at = models.DateTimeField("confirmed", auto_now_add=True)
    started_at = models.DateTimeField("started", null=True, blank=True)
    heartbeat_at = models.DateTimeField("last heard from", default=timezone.now)
    finished_at = models.DateTimeField("finished", null=True, blank=True)

    objects = ImportJobManager()

    class Meta:
        verbose_name = "import"
        ordering = ["-created_at", "-id"]
        # Machinery, not research data: the import pages' own permissions (adding ties or
        # memberships) say who may see and start imports.
        default_permissions = ()
        constraints = [
            choices_constraint("kind", JobKind, "importjob"),
            choices_constraint("status", JobStatus, "importjob"),
            models.UniqueConstraint(
                fields=["is_active"],
                condition=Q(is_active=True),
                name="importjob_one_at_a_time",
                violation_error_message="Another import is running.",
            ),
            models.CheckConstraint(
                condition=Q(is_active=False) | Q(status__in=ACTIVE),
                name="importjob_active_until_finished",
                violation_error_message="A finished import no longer holds the lock.",
            ),
        ]

    def __str__(self):
        return f"{self.file_name} ({self.get_status_display().lower()})"

    def get_absolute_url(self):
        return f"{reverse(f'admin:partnerships_{self.kind}_import')}?job={self.pk}"

    @property
    def has_stalled(self):
        """Active, but its runner has not been heard from for STALE_AFTER: it died."""
        return self.is_active and self.heartbeat_at < timezone.now() - STALE_AFTER

    @property
    def shown_status(self):
        return JobStatus.FAILED if self.has_stalled else self.status

    @property
    def shown_status_label(self):
        return JobStatus(self.shown_status).label

    @property
    def percent(self):
        return min(100, round(100 * self.done / self.total)) if self.total else 0

    def describe(self):
        """The job in a line: file, who and how, since when, how far."""
        who = f" by {self.curator}" if self.curator_id else ""
        since = timezone.localtime(self.created_at).strftime("%H:%M %Z")
        line = f"{self.file_name} ({self.started_from}{who}, since {since}"
        if self.total:
            line += f"; {self.phase.lower()}: {self.done:,} of {self.total:,} {self.unit}"
        return line + ")"

    def pending(self):
        """The confirmed upload as the admin's import steps read it (admin_views)."""
        return {
            **self.options,
            "name": self.file_name,
            "text": self.file_text,
            "user": self.curator_id,
        }

    def claim(self, runner):
        """Mark the queued job running in `runner`; False when it is not queued (it ran
        already, or was taken for dead)."""
        now = timezone.now()
        claimed = ImportJob.objects.filter(
            pk=self.pk, status=JobStatus.QUEUED, is_active=True
        ).update(status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, runner=runner)
        if claimed:
            self.status, self.started_at, self.heartbeat_at, self.runner = (
                JobStatus.RUNNING,
                now,
                now,
                runner,
            )
        return bool(claimed)

    def beat(self, phase, done, total, unit="rows"):
        """Record how far the import got, and that its runner lives. Raises JobLost when the
        job is no longer active: its runner stops before writing another batch."""
        now = timezone.now()
        fields = {"phase": phase[:80], "done": done, "total": total, "unit": unit}
        if not ImportJob.objects.filter(pk=self.pk, is_active=True).update(
            heartbeat_at=now, **fields
        ):
            raise JobLost(f"Import job {self.pk} is no longer running.")
        for name, value in fields.items():
            setattr(self, name, value)
        self.heartbeat_at = now

    def finish(self, status, *, summary=None, report=None, error="", keep_file=False):
        """End the job with `status` and give up the lock."""
        now = timezone.now()
        fields = {
            "status": status,
            "is_active": False,
            "finished_at": now,
            "heartbeat_at": now,
            "error": error,
            "summary": summary if summary is not None else self.summary,
            "report": report if report is not None else self.report,
        }
        if not keep_file:
            fields["file_text"] = ""
        ImportJob.objects.filter(pk=self.pk).update(**fields)
        for name, value in fields.items():
            setattr(self, name, value)


def runner_name():
    """Where a runner runs: host and process id, for whoever looks for it."""
    return f"{socket.gethostname()} pid {os.getpid()}"[:120]


def progress_of(job, bar=False):
    """An importing.Progress that records itself in `job`'s row."""
    from .importing import Progress  # the import machinery loads after the models

    return Progress(bar=bar, report=job.beat)


def launch(job):
    """Start `manage.py run_import_job <id>` for `job`, detached: a session of its own, the
    app server's interpreter, settings and environment; its errors go to the server's log."""
    command = [
        sys.executable,
        str(settings.BASE_DIR / "manage.py"),
        "run_import_job",
        str(job.pk),
    ]
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE")
        or settings.SETTINGS_MODULE,
    }
    process = subprocess.Popen(
        command,
        cwd=settings.BASE_DIR,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    # Collect its exit status when it ends, so that no zombie is left behind while the
    # worker lives on; should the worker go first, init adopts the runner.
    threading.Thread(target=process.wait, daemon=True).start()
    return process
