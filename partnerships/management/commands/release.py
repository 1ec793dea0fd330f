"""`manage.py release`: a versioned, citable Frictionless Data Package of the atlas."""

import time
import tracemalloc

from django.conf import settings
from django.core.management.base import BaseCommand

from partnerships import releases


class Command(BaseCommand):
    help = (
        "Write a release of the atlas as it is now (a Frictionless Data Package: CSV per "
        "resource, datapackage.json, a zip and a changelog) into RELEASES_DIR."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dir",
            default=None,
            help=f"Where releases are kept (default {settings.RELEASES_DIR}).",
        )
        parser.add_argument(
            "--site-url", default=settings.SITE_URL, help="The site's address, for citations."
        )

    def handle(self, *args, dir=None, site_url="", **options):
        from pathlib import Path

        started = time.perf_counter()
        tracemalloc.start()
        manifest = releases.release(Path(dir) if dir else None, site_url=site_url.rstrip("/"))
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        archive = manifest["files"][manifest["archive"]]
        counts = manifest["counts"]
        self.stdout.write(
            f"Release {manifest['version']}: {counts['cities']:,} cities, {counts['ties']:,} "
            f"ties, {counts['organizations']:,} organizations, {counts['memberships']:,} "
            f"memberships; {manifest['archive']} {archive['bytes']:,} bytes, sha256 "
            f"{archive['sha256']}; content {manifest['content_sha256']}. "
            f"{time.perf_counter() - started:.1f} s, peak Python memory {peak / 2**20:.1f} MiB."
        )
