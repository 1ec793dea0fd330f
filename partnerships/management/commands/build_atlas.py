import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from cities.models import Source
from partnerships.importing import DEFAULT_SOURCE

DATA_FILE = Path(settings.BASE_DIR) / "data" / "twin-cities-wikipedia.csv"


class Command(BaseCommand):
    help = (
        "Build the atlas on first start: the curated seed, the twin-town pairs of data/ and "
        "the links to the GeoNames gazetteer. Does nothing once the atlas is built, so that "
        "curators' changes are never overwritten; --force builds again (a second import "
        "changes nothing it has already recorded)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Build even if built before.")
        parser.add_argument(
            "--data", default=str(DATA_FILE), help="The twin-town list (default: %(default)s)."
        )

    def handle(self, *args, force, data, **options):
        if not force and Source.objects.filter(slug=DEFAULT_SOURCE["slug"]).exists():
            self.stdout.write("The atlas is built (seed, data and gazetteer links): serving it.")
            return
        began = time.monotonic()
        # Step 3 links every city, the seed's included, in one pass.
        importing = {"skip_bad_rows": True, "show": 0, "stdout": self.stdout}
        steps = [
            ("1/3 seed data", lambda: call_command("load_seed", stdout=self.stdout)),
            (
                "2/3 twin-town pairs from data/",
                lambda: call_command("import_ties", data, **importing),
            ),
            (
                "3/3 links to the GeoNames gazetteer",
                lambda: call_command("link_gazetteer", min_population=15000, stdout=self.stdout),
            ),
        ]
        for label, step in steps:
            started = time.monotonic()
            self.stdout.write(self.style.MIGRATE_HEADING(f"Building the atlas: {label}"))
            step()
            self.stdout.write(f"  ({time.monotonic() - started:.0f} s)")
        self.stdout.write(
            self.style.SUCCESS(f"The atlas is built in {time.monotonic() - began:.0f} s.")
        )
