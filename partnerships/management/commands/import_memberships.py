import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from cities.models import SourceKind
from partnerships.importing import ImportFileError, ImportRejected, parse_mapping, write_report
from partnerships.importing_members import (
    DEFAULT_LAYOUT,
    FIELDS,
    member_source,
    run_member_import,
)


class Command(BaseCommand):
    help = (
        "Import a network's members from a CSV or TSV file (UTF-8). The default layout is "
        f"{DEFAULT_LAYOUT}; --map names the columns of other layouts. The organization must be "
        "in the atlas already (slug, name or acronym). Cities are matched as import_ties "
        "matches them and created only when nothing matches; a membership already recorded is "
        "cited, not repeated. Every membership cites the source with its row number."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV or TSV file, UTF-8 with or without byte-order mark.")
        parser.add_argument(
            "--map",
            dest="mapping",
            metavar="SPEC",
            help="Column mapping for other layouts: field=column pairs separated by commas "
            "(city=Member,organization=Network,…) or a JSON file. Fields: " + ", ".join(FIELDS),
        )
        parser.add_argument(
            "--delimiter", help="Column separator (default: guessed from the header)."
        )
        source = parser.add_argument_group("source to cite (created once, then reused by key)")
        source.add_argument(
            "--source-slug",
            help="Citation key of the member list's source (required: a member list has no "
            "default source). A new key needs --source-title.",
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
            help="Report what the import would do (cities created or matched, memberships "
            "created or confirmed, rejected rows) and write nothing.",
        )
        parser.add_argument(
            "--skip-bad-rows",
            action="store_true",
            help="Import the good rows even when some are bad (default: all or nothing).",
        )
        parser.add_argument(
            "--report", metavar="FILE", help="Write rejected rows to this CSV file."
        )
        parser.add_argument("--user", help="Username the edit history credits with the import.")
        parser.add_argument(
            "--show",
            type=int,
            default=20,
            help="How many rejected rows and differing dates to list (default 20).",
        )

    def handle(self, *args, **options):
        user = None
        if options["user"]:
            try:
                user = get_user_model().objects.get_by_natural_key(options["user"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"There is no user “{options['user']}”.") from None
        try:
            source, source_is_new = member_source(
                options["source_slug"],
                title=options["source_title"] or "",
                url=options["source_url"],
                kind=options["source_kind"],
                authors=options["source_authors"],
                issued=options["source_issued"],
                licence=options["source_licence"],
            )
            plan = run_member_import(
                options["file"],
                mapping=parse_mapping(options["mapping"]),
                delimiter=options["delimiter"],
                source=source,
                source_is_new=source_is_new,
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
        out, show = self.stdout, options["show"]
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
            f"Memberships: {figures['memberships_created']:,} {verb} created, "
            f"{figures['memberships_already_in_atlas']:,} rows confirm a membership already in "
            f"the atlas, {figures['rows_repeating_a_membership']:,} rows repeat one listed "
            f"earlier, {figures['memberships_updated']:,} {verb} given dates they lacked; "
            f"{figures['citations_created']:,} citations."
        )
        if figures["cities_flagged"]:
            out.write(
                f"Flagged: {figures['cities_flagged']:,} cities matched across a country border "
                "are listed in needs attention for a curator to decide the code."
            )
        if plan.near_similar:
            out.write(
                f"Check: {len(plan.near_similar):,} of the new cities lie close to an existing "
                "city of a similar name:"
            )
            for new, old, km in plan.near_similar[:show]:
                out.write(f"  {new} — {old}, {km:.1f} km")
        if plan.disagreements:
            out.write(
                f"Differing dates: {len(plan.disagreements):,} rows give dates other than the "
                "membership's; the recorded ones were kept:"
            )
            for number, detail in plan.disagreements[:show]:
                out.write(f"  row {number}: {detail}")
        if plan.rejected:
            out.write(f"Rejected: {len(plan.rejected):,} rows.")
            for number, reason, _cells in plan.rejected[:show]:
                out.write(f"  row {number}: {reason}")
            if len(plan.rejected) > show:
                out.write(f"  … and {len(plan.rejected) - show:,} more.")
        if options["report"]:
            out.write(f"Rejected rows written to {options['report']}.")
        if options["dry_run"]:
            out.write(self.style.WARNING("Dry run: nothing was written."))
        elif plan.applied:
            out.write(self.style.SUCCESS("Imported."))
