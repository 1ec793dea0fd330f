from partnerships.importing_members import (
    DEFAULT_LAYOUT,
    FIELDS,
    member_source,
    run_member_import,
)
from partnerships.jobs import JobKind
from partnerships.management.importcommand import ImportCommand


class Command(ImportCommand):
    help = (
        "Import a network's members from a CSV or TSV file (UTF-8). The default layout is "
        f"{DEFAULT_LAYOUT}; --map names the columns of other layouts. The organization must be "
        "in the atlas already (slug, name or acronym). Cities are matched as import_ties "
        "matches them and created only when nothing matches; a membership already recorded is "
        "cited, not repeated. Every membership cites the source with its row number."
    )
    job_kind = JobKind.MEMBERSHIP

    def add_arguments(self, parser):
        self.add_file_options(parser, FIELDS, "city=Member,organization=Network")
        self.add_source_options(
            parser,
            "Citation key of the member list's source (required: a member list has no "
            "default source). A new key needs --source-title.",
        )
        self.add_run_options(
            parser,
            "Report what the import would do (cities created or matched, memberships "
            "created or confirmed, rejected rows) and write nothing.",
        )
        self.add_user_options(
            parser, "How many rejected rows and differing dates to list (default 20)."
        )

    def handle(self, *args, **options):
        plan, _user = self.run_import(options, self.source_for, run_member_import)
        self.refuse_bad_dry_run(plan, options)

    def source_for(self, options):
        return member_source(options["source_slug"], **self.source_fields(options))

    def claims_line(self, figures, verb):
        return (
            f"Memberships: {figures['memberships_created']:,} {verb} created, "
            f"{figures['memberships_already_in_atlas']:,} rows confirm a membership already in "
            f"the atlas, {figures['rows_repeating_a_membership']:,} rows repeat one listed "
            f"earlier, {figures['memberships_updated']:,} {verb} given dates they lacked; "
            f"{figures['citations_created']:,} citations."
        )

    def report_more(self, plan, figures, verb, show):
        if plan.disagreements:
            self.stdout.write(
                f"Differing dates: {len(plan.disagreements):,} rows give dates other than the "
                "membership's; the recorded ones were kept:"
            )
            for number, detail in plan.disagreements[:show]:
                self.stdout.write(f"  row {number}: {detail}")
