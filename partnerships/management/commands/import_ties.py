from functools import partial

from cities.linking import link_cities
from cities.models import City
from partnerships.importing import FIELDS, dataset_source, run_import
from partnerships.jobs import JobKind
from partnerships.management.importcommand import ImportCommand
from partnerships.models import TieKind


class Command(ImportCommand):
    help = (
        "Import ties between cities from a CSV or TSV file (UTF-8). The default layout is "
        "city1,country1,lat1,lng1,city2,country2,lat2,lng2; --map names the columns of other "
        "layouts. Cities are matched by name, country, alternate names and coordinates; a city "
        "is created only when nothing matches. Every tie cites the source with its row number."
    )
    flagged_detail = " (the same coordinates under another country code)"
    job_kind = JobKind.TIE

    def add_arguments(self, parser):
        self.add_file_options(parser, FIELDS, "city1=item1Label,country1=country1Label")
        parser.add_argument(
            "--kind",
            choices=TieKind.values,
            default=TieKind.UNSPECIFIED,
            help="Kind of tie for rows that do not state one (default: unspecified — a list "
            "that does not say sister or partner must not be read as saying either).",
        )
        self.add_source_options(
            parser,
            "Citation key of the dataset source. Default: wikipedia-twin-towns, the shared "
            "Wikipedia lists (Wikipedia contributors, via Hekman/twincities; CC BY-SA).",
        )
        self.add_run_options(
            parser,
            "Report what the import would do (cities created or matched, ties created, "
            "duplicates, rejected rows) and write nothing.",
        )
        parser.add_argument(
            "--link",
            action="store_true",
            help="Link the cities the import creates to the GeoNames gazetteer, so that the "
            "next file finds them by any name GeoNames knows (link_gazetteer does it later "
            "for every city).",
        )
        self.add_user_options(parser, "How many rejected rows to list (default 20).")

    def handle(self, *args, **options):
        plan, user = self.run_import(
            options, self.source_for, partial(run_import, default_kind=options["kind"])
        )
        created = [place.city.pk for place in plan.new_places if place.city.pk]
        if created and not options["dry_run"] and options["link"]:
            # The next file then finds these cities by any name the gazetteer knows.
            report = link_cities(City.objects.filter(pk__in=created), tables=(15000,), user=user)
            self.stdout.write(report.lines()[0])
        self.refuse_bad_dry_run(plan, options)

    def source_for(self, options):
        if options["source_slug"]:
            return dataset_source(options["source_slug"], **self.source_fields(options))
        return dataset_source()

    def claims_line(self, figures, verb):
        return (
            f"Ties: {figures['ties_created']:,} {verb} created, "
            f"{figures['ties_already_in_atlas']:,} rows confirm a tie already in the atlas, "
            f"{figures['rows_repeating_a_pair']:,} rows repeat a pair listed earlier; "
            f"{figures['citations_created']:,} citations."
        )

    def report_more(self, plan, figures, verb, show):
        if figures["ties_kind_stated"]:
            self.stdout.write(
                f"Kinds stated: {figures['ties_kind_stated']:,} twinnings of unstated kind "
                f"{verb} given the kind (sister, partner, friendship) a row states, instead of "
                "a second tie."
            )
