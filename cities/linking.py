"""Linking the atlas's cities to the GeoNames gazetteer, the authority behind every city.

`link_cities()` resolves each city against GeoNames (cities.reconcile.resolve) and, when the
match is certain, records the GeoNames id, fills coordinates and a population the city lacks,
replaces coordinates that lie in another country when the name is certain in the city's own,
and stores the place's names as search names (used to find the city, never shown as "also
known as"). Every value taken from GeoNames cites it, with the place's id as the locator.
What it cannot decide it flags for a curator (`City.location_flag`): coordinates inside
another country, or a country the gazetteer files the place under differently (an overseas
department coded FR). Nothing is ever recoded silently. Coordinates merely far from the
largest namesake in the same country are left alone: the tables omit villages (a hamlet
called Saint-Raphaël lies in the Dordogne, far from the town on the Riviera).
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from . import gazetteer, reconcile
from .models import AlternateName, City, CityCitation, LocationFlag, SearchName, SlugRedirect
from .text import fold

# A gazetteer place of another country this close to a city's coordinates, with no place of
# the city's own country nearer than OWN_COUNTRY_KM, means the coordinates lie abroad.
ABROAD_KM = 15.0
OWN_COUNTRY_KM = 40.0
BATCH = 2000


@dataclass
class LinkReport:
    linked: int = 0
    located: int = 0  # coordinates filled in from GeoNames
    corrected: list = field(default_factory=list)  # (city, old point, new point)
    populations: int = 0
    search_names: int = 0
    shared: list = field(default_factory=list)  # (city, id of the city that has its place)
    flagged: dict = field(default_factory=dict)  # flag -> [city]
    contradictions_found: int = 0  # coordinates contradicting the country, before fixes

    def lines(self):
        flagged = ", ".join(
            f"{len(c):,} {LocationFlag(f).label.lower()}" for f, c in self.flagged.items()
        )
        return [
            f"{self.linked:,} cities linked to GeoNames; {self.located:,} given coordinates, "
            f"{self.populations:,} a population, {self.search_names:,} search names stored.",
            f"{self.contradictions_found:,} cities had coordinates contradicting their country; "
            f"{len(self.corrected):,} corrected from the gazetteer, the rest flagged for a curator"
            + (f" ({flagged})." if flagged else "."),
            f"{len(self.shared):,} cities are the GeoNames place of another city: left unlinked, "
            "for the duplicates queue.",
        ]


def _abroad(city):
    """The nearest gazetteer place when the city's coordinates lie in another country."""
    near = reconcile._around(reconcile.TABLES[0], city.latitude, city.longitude, OWN_COUNTRY_KM)
    if not near or any(place.country == city.country for _d, place in near):
        return None
    d, place = min(near, key=lambda item: item[0])
    return place if d <= ABROAD_KM else None


def _certain(resolution):
    """The place when a name is unambiguous in its country though the coordinates are not
    at it: one place of that name, or one DOMINANCE times as large as the next."""
    places = resolution.candidates
    if len(places) == 1:
        return places[0]
    if len(places) > 1 and places[0].population >= reconcile.DOMINANCE * max(
        places[1].population, 1
    ):
        return places[0]
    return None


def link_cities(cities=None, *, tables=reconcile.TABLES, user=None, dry_run=False, progress=None):
    """Link `cities` (default: every city with a country) to GeoNames; a LinkReport."""
    cities = cities if cities is not None else City.objects.exclude(country="")
    report = LinkReport()
    changed, citations, names = {}, [], []
    known_names = set(SearchName.objects.values_list("city_id", "folded"))
    known_names |= set(AlternateName.objects.values_list("city_id", "folded"))
    cited = set(
        CityCitation.objects.filter(source__slug=gazetteer.SOURCE["slug"]).values_list(
            "city_id", "locator"
        )
    )
    owners = dict(City.objects.exclude(geonames_id=None).values_list("geonames_id", "pk"))
    source = None if dry_run else gazetteer.source(user, "Linking cities to GeoNames")

    def cite(city, entry):
        locator = gazetteer.locator(entry)
        if (city.pk, locator) not in cited:
            cited.add((city.pk, locator))
            citations.append(CityCitation(city=city, source=source, locator=locator))

    for n, city in enumerate(cities.order_by("pk").iterator(chunk_size=BATCH)):
        if progress and n % 1000 == 0:
            progress(n)
        point = (city.latitude, city.longitude) if city.has_coordinates else (None, None)
        resolution = reconcile.resolve(city.name, city.country, *point, tables=tables)
        entry, flag = resolution.entry, ""
        if entry is None and city.has_coordinates and (resolution.elsewhere or _abroad(city)):
            # The coordinates lie in another country (Rome, Georgia drawn on Rome, Italy):
            # take the gazetteer's place when the name is certain in the city's country.
            report.contradictions_found += 1
            entry = _certain(resolution)
            if entry is None:
                flag = LocationFlag.OUTSIDE_COUNTRY
            else:
                old = (city.latitude, city.longitude)
                report.corrected.append((city, old, (entry.latitude, entry.longitude)))
                city.latitude, city.longitude = entry.latitude, entry.longitude
                changed[city.pk] = city
        elif resolution.country_differs:
            flag = LocationFlag.COUNTRY_DIFFERS
        if flag and city.location_flag != flag:
            city.location_flag = flag
            changed[city.pk] = city
        if flag:
            report.flagged.setdefault(flag, []).append(city)
        if entry is None:
            continue
        if city.geonames_id != entry.geonames_id:
            if owners.setdefault(entry.geonames_id, city.pk) != city.pk:
                # One place, two cities: a duplicate for the queue, not a second link.
                report.shared.append((city, owners[entry.geonames_id]))
                continue
            city.geonames_id = entry.geonames_id
            changed[city.pk] = city
        report.linked += 1
        if not city.has_coordinates:
            city.latitude, city.longitude = entry.latitude, entry.longitude
            report.located += 1
            changed[city.pk] = city
        if city.population is None and entry.population:
            city.population = entry.population  # GeoNames gives no year: it stays unknown
            report.populations += 1
            changed[city.pk] = city
        if city.pk in changed:
            cite(city, entry)
        for name in reconcile.search_names(entry):
            folded = fold(name)
            if folded and folded != city.folded_name and (city.pk, folded) not in known_names:
                known_names.add((city.pk, folded))
                names.append(SearchName(city=city, name=name[:200], folded=folded[:200]))
    report.search_names = len(names)
    if dry_run:
        return report
    history = _history(user, "Linked to GeoNames (cities.linking)")
    with transaction.atomic():
        _stamp(changed.values())
        fields = [
            "geonames_id",
            "latitude",
            "longitude",
            "population",
            "location_flag",
            "updated_at",
        ]
        bulk_update_with_history(list(changed.values()), City, fields, **history)
        bulk_create_with_history(citations, CityCitation, **history)
        SearchName.objects.bulk_create(names, batch_size=BATCH)
    return report


def _history(user, reason):
    """How the bulk writes of this module credit their change in the edit history."""
    return {"batch_size": BATCH, "default_user": user, "default_change_reason": reason}


def _stamp(cities):
    now = timezone.now()
    for city in cities:
        city.updated_at = now


def promote_plain_slugs(user=None):
    """Give the plain slug of a name shared by several cities to the most populous of them
    (/cities/london/ is London, England; London, Ontario becomes london-ca), keeping every
    slug a city gives up as a redirect to it when no other city takes it. Returns the cities
    whose slug changed. Names whose populations are unknown are left as they are."""
    groups = {}
    for city in City.objects.only("pk", "name", "slug", "country", "population"):
        groups.setdefault(slugify(fold(city.name))[:80], []).append(city)
    taken = set(City.objects.values_list("slug", flat=True))
    displaced, promoted = [], []
    for base, cities in groups.items():
        known = [c for c in cities if c.population]
        if len(cities) < 2 or not known or not base:
            continue
        best = max(known, key=lambda c: (c.population, -c.pk))
        if best.slug == base:
            continue
        owner = next((c for c in cities if c.slug == base), None)
        if owner is not None:
            owner.old_slug, owner.slug = (
                owner.slug,
                _free_slug(f"{base}-{owner.country.lower()}", taken),
            )
            displaced.append(owner)
        elif base in taken:
            continue  # a city of another name holds it (a merge's redirect target, say)
        best.old_slug, best.slug = best.slug, base
        taken.add(base)
        promoted.append(best)
    if not promoted:
        return []
    history = _history(user, "The plain slug of a shared name goes to its most populous city")
    with transaction.atomic():
        # Displaced cities first, so that no two cities hold one slug at any moment.
        for batch in (displaced, promoted):
            _stamp(batch)
            bulk_update_with_history(batch, City, ["slug", "updated_at"], **history)
        SlugRedirect.objects.record([(city, city.old_slug) for city in displaced + promoted])
    return displaced + promoted


def _free_slug(slug, taken):
    candidate, n = slug, 1
    while candidate in taken:
        n += 1
        candidate = f"{slug}-{n}"
    taken.add(candidate)
    return candidate
