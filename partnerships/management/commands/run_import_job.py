from django.core.management.base import BaseCommand, CommandError

from partnerships.admin_views import run_job
from partnerships.jobs import JobStatus


class Command(BaseCommand):
    help = (
        "Run an import confirmed in the admin: the admin starts this command itself, in a "
        "process of its own, for the job it queued (partnerships/jobs.py). A job that is not "
        "waiting to run (it ran already, or was taken for dead) is left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("job", type=int, help="Id of the queued import job.")

    def handle(self, *args, **options):
        job = run_job(options["job"])
        if job is None:
            raise CommandError(f"Import job {options['job']} is not waiting to run.")
        if options["verbosity"] >= 1:
            self.stdout.write(f"Import job {job.pk}: {job.get_status_display()}.")
        if job.status == JobStatus.FAILED:
            raise CommandError(job.error)
