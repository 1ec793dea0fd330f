"""`manage.py restore_atlas PATH --yes`: replace the database's content with a backup."""

from django.core.management.base import BaseCommand, CommandError

from partnerships import backups


class Command(BaseCommand):
    help = (
        "Replace everything in the atlas's database with the backup at PATH (made by "
        "backup_atlas), then print the checksum to compare with the one the backup printed."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The backup file.")
        parser.add_argument(
            "--yes", action="store_true", help="Confirm: the database's content is replaced."
        )

    def handle(self, *args, path, yes, **options):
        if not yes:
            raise CommandError(
                "This replaces everything in the database with the backup: run it again with "
                "--yes to confirm."
            )
        try:
            backups.restore(path)
        except FileNotFoundError as error:
            raise CommandError(str(error)) from None
        counts, digest = backups.checksum()
        self.stdout.write(
            f"Restored {path}: {sum(counts.values()):,} rows in {len(counts)} tables, "
            f"checksum {digest}."
        )
