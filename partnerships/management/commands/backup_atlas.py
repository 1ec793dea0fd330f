"""`manage.py backup_atlas PATH`: a consistent copy of the live database (partnerships/backups)."""

from django.core.management.base import BaseCommand

from partnerships import backups


class Command(BaseCommand):
    help = "Back the atlas's database up to PATH while the site serves, and print its checksum."

    def add_arguments(self, parser):
        parser.add_argument("path", help="Where to write the backup (a file).")

    def handle(self, *args, path, **options):
        written = backups.backup(path)
        counts, digest = backups.checksum()
        self.stdout.write(
            f"Backed up to {written} ({written.stat().st_size:,} bytes): "
            f"{sum(counts.values()):,} rows in {len(counts)} tables, checksum {digest}."
        )
