"""`manage.py load_release PATH`: a release (its folder, datapackage.json or zip) into an
empty atlas."""

from django.core.management.base import BaseCommand, CommandError

from partnerships import releases


class Command(BaseCommand):
    help = "Load a release of the atlas into an empty database, all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("path", help="A release folder, its datapackage.json or its zip.")

    def handle(self, *args, path, **options):
        try:
            loaded = releases.load(path)
        except (releases.ReleaseError, OSError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Loaded {sum(loaded.values()):,} rows in {len(loaded)} resources "
            f"({loaded.get('cities', 0):,} cities, {loaded.get('ties', 0):,} ties); "
            f"content {releases.content_checksum()}."
        )
