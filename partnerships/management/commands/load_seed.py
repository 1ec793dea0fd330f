from django.core.management import call_command
from django.core.management.base import BaseCommand

from cities.models import Source

SEED_SOURCE = "city-diplomacy-article"


class Command(BaseCommand):
    help = (
        "Load the curated seed data set (fixtures/seed.json) unless it is already there, so "
        "that running it again never overwrites what curators have changed since."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Load it again, resetting the seeded records."
        )

    def handle(self, *args, force, **options):
        if not force and Source.objects.filter(slug=SEED_SOURCE).exists():
            self.stdout.write("Seed data already loaded (use --force to reload it).")
            return
        call_command("loaddata", "seed", verbosity=options["verbosity"])
