import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from cities.linking import link_cities
from cities.models import City, SourceKind
from partnerships.importing import (
    FIELDS,
    ImportFileError,
    ImportRejected,
    dataset_source,
    parse_mapping,
    run_import,
    write_report,
)
from partnerships.models import TieKind


class Command(BaseCommand):
    help = (
        "Import ties between cities from a CSV or TSV file (UTF-8). The default layout is "
        "city1,country1,lat1,lng1,city2,country2,lat2,lng2; --map names the columns of other "
        "layouts. Cities are matched by name, country, alternate names and coordinates; a city "
        "is created only when nothing matches. Every tie cites the source with its row number."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV or TSV file, UTF-8 with or without byte-order mark.")
        parser.add_argument(
            "--map",
            dest="mapping",
            metavar="SPEC",
            help="Column mapping for other layouts: field=column pairs separated by commas "
            "(city1=item1Label,country1=country1Label,…) or a JSON file. Fields: "
            + ", ".join(FIELDS),
        )
        parser.add_argument(
            "--delimiter", help="Column separator (default: guessed from the header)."
        )
        parser.add_argument(
            "--kind",
            choices=TieKind.values,
            default=TieKind.UNSPECIFIED,
            help="Kind of tie for rows that do not state one (default: unspecified — a list "
            "that does not say sister or partner must not be read as saying either).",
        )
        source = parser.add_argument_group("source to cite (created once, then reused by key)")
        source.add_argument(
            "--source-slug",
            help="Citation key of the dataset source. Default: wikipedia-twin-towns, the shared "
            "Wikipedia lists (Wikipedia contributors, via Hekman/twincities; CC BY-SA).",
        )
        source.add_argument("--source-title")
        source.add_argument("--source-url", default="")
        source.add_argument("--source-authors", default="")
        source.add_argument("--source-issued", default="", help="Publication date (EDTF).")
        source.add_argument("--source-licence", default="")
        source.add_argument("--source-kind", choices=SourceKind.values, default=SourceKind.DATASET)
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what the import would do (cities created or matched, ties created, "
            "duplicates, rejected rows) and write nothing.",
        )
        parser.add_argument(
            "--skip-bad-rows",
            action="store_true",
            help="Import the good rows even when some are bad (default: all or nothing).",
        )
        parser.add_argument(
            "--report", metavar="FILE", help="Write rejected rows to this CSV file."
        )
        parser.add_argument(
            "--link",
            action="store_true",
            help="Link the cities the import creates to the GeoNames gazetteer, so that the "
            "next file finds them by any name GeoNames knows (link_gazetteer does it later "
            "for every city).",
        )
        parser.add_argument("--user", help="Username the edit history credits with the import.")
        parser.add_argument(
            "--show", type=int, default=20, help="How many rejected rows to list (default 20)."
        )

    def handle(self, *args, **options):
        user = None
        if options["user"]:
            try:
                user = get_user_model().objects.get_by_natural_key(options["user"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"There is no user “{options['user']}”.") from None
        try:
            if options["source_slug"]:
                source, source_is_new = dataset_source(
                    options["source_slug"],
                    title=options["source_title"] or "",
                    url=options["source_url"],
                    kind=options["source_kind"],
                    authors=options["source_authors"],
                    issued=options["source_issued"],
                    licence=options["source_licence"],
                )
            else:
                source, source_is_new = dataset_source()
            plan = run_import(
                options["file"],
                mapping=parse_mapping(options["mapping"]),
                delimiter=options["delimiter"],
                source=source,
                source_is_new=source_is_new,
                default_kind=options["kind"],
                skip_bad_rows=options["skip_bad_rows"],
                dry_run=options["dry_run"],
                user=user,
                progress=sys.stderr.isatty(),
            )
        except ImportFileError as error:
            raise CommandError(str(error)) from None
        except ImportRejected as error:
            self.report(error.plan, options)
            raise CommandError(str(error)) from None
        self.report(plan, options)
        created = [place.city.pk for place in plan.new_places if place.city.pk]
        if created and not options["dry_run"] and options["link"]:
            # The next file then finds these cities by any name the gazetteer knows.
            report = link_cities(City.objects.filter(pk__in=created), tables=(15000,), user=user)
            self.stdout.write(report.lines()[0])
        if options["dry_run"] and not plan.can_apply:
            raise CommandError(
                f"{len(plan.rejected)} rows are bad: a real run would write nothing. Fix them, "
                "or pass --skip-bad-rows to import the good rows only."
            )

    def report(self, plan, options):
        if options["report"]:
            write_report(plan, options["report"])
        if options["verbosity"] < 1:
            return
        figures = plan.summary()
        out = self.stdout
        verb = "would be" if options["dry_run"] or not plan.can_apply else "were"
        out.write(
            f"{plan.table_name}: {figures['rows']:,} rows, citing “{plan.source.title}” "
            f"({plan.source.slug}{', new' if plan.source_is_new else ''})."
        )
        out.write(
            f"Cities: {figures['cities_created']:,} {verb} created, {figures['cities_matched']:,} "
            f"matched in the atlas, {figures['cities_updated']:,} completed (coordinates or "
            f"Wikidata id); {figures['alternate_names_created']:,} alternate names."
        )
        out.write(
            f"Ties: {figures['ties_created']:,} {verb} created, "
            f"{figures['ties_already_in_atlas']:,} rows confirm a tie already in the atlas, "
            f"{figures['rows_repeating_a_pair']:,} rows repeat a pair listed earlier; "
            f"{figures['citations_created']:,} citations."
        )
        if figures["cities_flagged"]:
            out.write(
                f"Flagged: {figures['cities_flagged']:,} cities matched across a country border "
                "(the same coordinates under another country code) are listed in needs "
                "attention for a curator to decide the code."
            )
        if plan.near_similar:
            out.write(
                f"Check: {len(plan.near_similar):,} of the new cities lie close to an existing "
                "city of a similar name:"
            )
            for new, old, km in plan.near_similar[: options["show"]]:
                out.write(f"  {new} — {old}, {km:.1f} km")
        if figures["ties_kind_stated"]:
            out.write(
                f"Kinds stated: {figures['ties_kind_stated']:,} twinnings of unstated kind "
                f"{verb} given the kind (sister, partner, friendship) a row states, instead of "
                "a second tie."
            )
        if plan.rejected:
            out.write(f"Rejected: {len(plan.rejected):,} rows.")
            for number, reason, _cells in plan.rejected[: options["show"]]:
                out.write(f"  row {number}: {reason}")
            if len(plan.rejected) > options["show"]:
                out.write(f"  … and {len(plan.rejected) - options['show']:,} more.")
        if options["report"]:
            out.write(f"Rejected rows written to {options['report']}.")
        if options["dry_run"]:
            out.write(self.style.WARNING("Dry run: nothing was written."))
        elif plan.applied:
            out.write(self.style.SUCCESS("Imported."))
