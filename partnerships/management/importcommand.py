"""What the import commands (import_ties, import_memberships) share: their common options,
running an import with the user and source the options name, and the report's lines.

A real run takes the import lock (partnerships.jobs) for its whole run, through a job row that
also shows its progress in the admin: a second import, from a shell or the admin, is refused
with a message naming the one that runs."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cities.management.users import history_user
from cities.models import SourceKind
from partnerships.importing import (
    ImportFileError,
    ImportRejected,
    Progress,
    parse_mapping,
    write_report,
)
from partnerships.jobs import RESUME, ImportBusy, ImportJob, JobLost, JobStatus, runner_name


class ImportCommand(BaseCommand):
    """An import command. A subclass adds its options with the add_*_options methods below in
    the order its help lists them, runs its import through run_import, and words the lines
    of its report that are its own (claims_line, report_more)."""

    # What a cross-border match adds to the Flagged line, if anything.
    flagged_detail = ""
    # What the import adds (partnerships.jobs.JobKind), for its job row.
    job_kind = None

    def add_file_options(self, parser, fields, example):
        """The file, and --map and --delimiter for its layout; `fields` are the layout's,
        `example` a mapping of its first fields."""
        parser.add_argument("file", help="CSV or TSV file, UTF-8 with or without byte-order mark.")
        parser.add_argument(
            "--map",
            dest="mapping",
            metavar="SPEC",
            help="Column mapping for other layouts: field=column pairs separated by commas "
            f"({example},…) or a JSON file. Fields: " + ", ".join(fields),
        )
        parser.add_argument(
            "--delimiter", help="Column separator (default: guessed from the header)."
        )

    def add_source_options(self, parser, slug_help):
        source = parser.add_argument_group("source to cite (created once, then reused by key)")
        source.add_argument("--source-slug", help=slug_help)
        source.add_argument("--source-title")
        source.add_argument("--source-url", default="")
        source.add_argument("--source-authors", default="")
        source.add_argument("--source-issued", default="", help="Publication date (EDTF).")
        source.add_argument("--source-licence", default="")
        source.add_argument("--source-kind", choices=SourceKind.values, default=SourceKind.DATASET)

    def add_run_options(self, parser, dry_run_help):
        """--dry-run, --skip-bad-rows and --report."""
        parser.add_argument("--dry-run", action="store_true", help=dry_run_help)
        parser.add_argument(
            "--skip-bad-rows",
            action="store_true",
            help="Import the good rows even when some are bad (default: all or nothing).",
        )
        parser.add_argument(
            "--report", metavar="FILE", help="Write rejected rows to this CSV file."
        )

    def add_user_options(self, parser, show_help):
        """--user, and --show: how many of the report's listed rows to show."""
        parser.add_argument("--user", help="Username the edit history credits with the import.")
        parser.add_argument("--show", type=int, default=20, help=show_help)

    @staticmethod
    def source_fields(options):
        """The new source's fields the options give, but its key."""
        return {
            "title": options["source_title"] or "",
            "url": options["source_url"],
            "kind": options["source_kind"],
            "authors": options["source_authors"],
            "issued": options["source_issued"],
            "licence": options["source_licence"],
        }

    def run_import(self, options, source_for, run):
        """Run the import: `source_for(options)` gives (source, is_new), `run(file, **options)`
        plans and (unless a dry run) applies it, holding the import lock. Reports; returns
        (plan, user)."""
        user = history_user(options["user"])
        job = None
        try:
            source, source_is_new = source_for(options)
            if not options["dry_run"]:
                job = ImportJob.objects.open(
                    kind=self.job_kind,
                    status=JobStatus.RUNNING,
                    file_name=Path(options["file"]).name[:255],
                    curator=user,
                    started_from=self.__module__.rpartition(".")[2],
                    runner=runner_name(),
                )
            plan = run(
                options["file"],
                mapping=parse_mapping(options["mapping"]),
                delimiter=options["delimiter"],
                source=source,
                source_is_new=source_is_new,
                skip_bad_rows=options["skip_bad_rows"],
                dry_run=options["dry_run"],
                user=user,
                progress=Progress(bar=sys.stderr.isatty(), report=job and job.beat),
            )
        except ImportBusy as error:
            raise CommandError(str(error)) from None
        except JobLost:
            raise CommandError(
                "The import was taken for dead (it was not heard from for too long) and "
                f"stopped. {RESUME}"
            ) from None
        except (ImportFileError, ImportRejected) as error:
            if job is not None:
                job.finish(JobStatus.FAILED, error=f"Nothing was imported: {error}")
            if isinstance(error, ImportRejected):
                self.report(error.plan, options)
            raise CommandError(str(error)) from None
        except BaseException as error:
            # Interrupted, or a batch failed: the batches before it stay written.
            if job is not None:
                job.finish(JobStatus.FAILED, error=f"The import stopped: {error!r}. {RESUME}")
            raise
        if job is not None:
            job.finish(JobStatus.DONE, summary=plan.summary())
        self.report(plan, options)
        return plan, user

    def refuse_bad_dry_run(self, plan, options):
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
        out.write(self.claims_line(figures, verb))
        if figures["cities_flagged"]:
            out.write(
                f"Flagged: {figures['cities_flagged']:,} cities matched across a country border"
                f"{self.flagged_detail} are listed in needs attention for a curator to decide "
                "the code."
            )
        if plan.near_similar:
            out.write(
                f"Check: {len(plan.near_similar):,} of the new cities lie close to an existing "
                "city of a similar name:"
            )
            for new, old, km in plan.near_similar[:show]:
                out.write(f"  {new} — {old}, {km:.1f} km")
        self.report_more(plan, figures, verb, show)
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

    def claims_line(self, figures, verb):
        """The report's line about what the rows add (ties, memberships)."""
        raise NotImplementedError

    def report_more(self, plan, figures, verb, show):
        """Lines of the report of this import's own, after the cities to check."""
