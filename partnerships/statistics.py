"""The whole field at a glance: statistics of the atlas, their CSV files, and a page per
country.

Like `profiles.py`, the functions here return plain data that the templates render and the
CSV files write; the views at the end only check the address and hand the data over. Every
count is a GROUP BY in the database, so each page runs the same few queries however many ties
there are: the rows read grow with the number of countries, kinds and years, never with ties.

Ties by country count a tie once for each country it touches: a tie within Japan counts once
for Japan, a tie between Japan and Ukraine once for each (so the countries' counts add up to
more than the atlas's ties). A tie's decade is that of its earliest possible start, as the
list of ties files it; a tie whose start is not known is counted as such, never placed.
"""

import csv
import io
import json
import math
import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlencode

from django.contrib.staticfiles import finders
from django.db import connection
from django.db.models import Case, Count, Exists, F, Max, OuterRef, Q, When
from django.db.models.functions import Greatest, Least
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django_countries import countries

from cities.countries import country_code
from cities.models import City
from cities.regions import region_name, region_of
from cities.text import fold

from .exports import as_text_cell
from .filters import UNDATED
from .models import Membership, Organization, OrganizationKind, Tie, TieKind
from .profiles import Year
from .views import TIE_ROW_FIELDS, add_addresses, most_connected, not_found

# What the statistics page lists in full on the page; the CSV files hold every row.
CITIES_SHOWN = 25
PAIRS_SHOWN = 25
NETWORKS_SHOWN = 15
COUNTRIES_FIRST = 20  # a table of countries opens with these; the rest fold away
MATRIX_COUNTRIES = 12
# A country page lists its most connected cities and the first ties within it.
COUNTRY_CITIES = 50
COUNTRY_TIES = 20
# Shades of the maps and the matrix, lightest first (the classes .shade-1 … .shade-5).
SHADES = 5
FIRST_DECADE = 1900  # earlier ties are "before 1900", as the list of ties files them


# Addresses and names --------------------------------------------------------------------------


def _address(name):
    """A function giving the address of the page `name` for one code or slug: one reverse()
    for all the rows of a page."""
    before, _, after = reverse(name, args=["0"]).rpartition("0")
    return lambda value: f"{before}{value}{after}"


def _filtered(name):
    """A function giving the address of the list `name` with some filters, from one
    reverse(): a page links to a filtered list from hundreds of rows."""
    address = reverse(name)
    return lambda **filters: f"{address}?{urlencode(filters)}"


def _plural(n, one, many=None):
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def share_text(part, whole):
    """`part` of `whole` in whole per cent, never rounded to 0 % or 100 % unless it is."""
    if not whole:
        return "0 %"
    share = part / whole
    if 0 < share < 0.005:
        return "< 1 %"
    if 0.995 <= share < 1:
        return "> 99 %"
    return f"{round(share * 100)} %"


def _bar(value, peak):
    """Width of a bar in whole per cent of the largest value (the .w0–.w100 classes)."""
    return round(value / peak * 100) if peak else 0


@dataclass
class Country:
    """One country's ties: each tie it takes part in once, split by where the partner lies."""

    code: str
    name: str
    url: str
    ties: int = 0
    abroad: int = 0  # ties with a city of another (recorded) country
    within: int = 0  # ties between two of its own cities
    partners: int = 0  # other countries it has ties with
    cities: int = 0  # its cities with at least one tie
    rank: int = 0


def _country(code, names, country_url):
    if not code:
        return Country(code="", name="Country not recorded", url="")
    return Country(code=code, name=names.get(code, code), url=country_url(code))


# Shades ---------------------------------------------------------------------------------------


def _nice(value):
    """The nearest of 1, 2, 5, 10, 20, 50 … to `value`, on a logarithmic scale."""
    candidates = [
        step * 10**power for power in range(len(str(int(value))) + 1) for step in (1, 2, 5)
    ]
    return min(candidates, key=lambda nice: abs(math.log(nice / value)))


def shade_bounds(values, shades=SHADES):
    """The lower bounds of up to `shades` classes for the counts `values`: steps of equal
    ratio from 1 to the largest count, rounded to 1, 2, 5, 10, 20 …, so that a few countries
    with thousands of ties and many with a handful all show, and the legend reads in round
    numbers."""
    peak = max(values, default=0)
    bounds = [1]
    for i in range(1, shades):
        nice = _nice(peak ** (i / shades)) if peak > 1 else 1
        if bounds[-1] < nice <= peak:
            bounds.append(nice)
    return bounds


def _shade_classes(bounds):
    """The shade (1–SHADES) of each class: spread over the whole palette when there are
    fewer classes than shades, so that the darkest always means the most."""
    n = len(bounds)
    if n == 1:
        return [SHADES // 2 + 1]
    return [1 + round(i * (SHADES - 1) / (n - 1)) for i in range(n)]


def shade_of(value, bounds, classes):
    """0 for nothing recorded, else the shade of the class `value` falls in."""
    if not value:
        return 0
    return classes[bisect_right(bounds, value) - 1]


def _legend(bounds, classes, none_label):
    items = [{"shade": 0, "label": none_label}]
    for i, low in enumerate(bounds):
        high = bounds[i + 1] - 1 if i + 1 < len(bounds) else None
        if high is None:
            label = f"{low:,} or more"
        elif high == low:
            label = f"{low:,}"
        else:
            label = f"{low:,}–{high:,}"
        items.append({"shade": classes[i], "label": label})
    return items


# The map --------------------------------------------------------------------------------------

# The vendored map is equirectangular, x = longitude + 180 and y = 90 - latitude, as the maps
# of city pages; the view box stops at 85° N and 60° S.
MAP_TOP, MAP_BOTTOM = 5, 150


@cache
def country_shapes():
    """{ISO alpha-2 code: SVG path data} of the countries Natural Earth draws at 1:110m
    (static/data/countries-110m.json; static/data/README.md says how it was made). Read
    once per process: it is part of the code's release, not of the atlas."""
    with open(finders.find("data/countries-110m.json"), encoding="utf-8") as shapes:
        return json.load(shapes)


def choropleth(counts, label, none_label, home=None, home_title=""):
    """A world map with each country shaded by its count in `counts` ({code: n}), linked to
    its country page; `home`, when given, is drawn apart (the country a page is about).

    Returns the map's shapes, legend and caption, and the countries with a count that the
    map cannot draw (too small at this scale), which the caption names instead."""
    country_url = _address("partnerships:country_detail")
    bounds = shade_bounds([n for code, n in counts.items() if code and code != home])
    classes = _shade_classes(bounds)
    names = dict(countries)
    shapes = []
    for code, path in country_shapes().items():
        name = names.get(code, code)
        n = counts.get(code, 0)
        if code == home:
            shade, title = "home", f"{name}: {home_title}"
        else:
            shade = shade_of(n, bounds, classes)
            title = f"{name}: {_plural(n, 'tie') if n else none_label}"
        shapes.append({"url": country_url(code), "d": path, "shade": shade, "title": title})
    drawn = country_shapes()
    not_drawn = sorted(
        (
            {"name": names.get(code, code), "url": country_url(code), "n": n}
            for code, n in counts.items()
            if code and n and code not in drawn and code != home
        ),
        key=lambda row: (-row["n"], row["name"]),
    )
    return {
        "shapes": shapes,
        "legend": _legend(bounds, classes, none_label),
        "label": label,
        "not_drawn": not_drawn,
        "top": MAP_TOP,
        "height": MAP_BOTTOM - MAP_TOP,
        "home": home is not None,
    }


# Queries --------------------------------------------------------------------------------------


def pair_counts():
    """[(country, country, ties)] for every pair of countries with ties between them, the
    codes in alphabetical order and a country paired with itself for the ties within it
    ("" for a city whose country is not recorded): one GROUP BY over every tie."""
    rows = (
        Tie.objects.order_by()
        .values(
            low=Least("city_a__country", "city_b__country"),
            high=Greatest("city_a__country", "city_b__country"),
        )
        .annotate(n=Count("pk"))
    )
    return [(row["low"], row["high"], row["n"]) for row in rows]


def _has_ties():
    """A condition on cities: at either end of at least one tie (two indexed lookups)."""
    return Q(Exists(Tie.objects.filter(city_a=OuterRef("pk")))) | Q(
        Exists(Tie.objects.filter(city_b=OuterRef("pk")))
    )


def cities_with_ties():
    """{country: number of its cities with at least one tie}, and when a city last changed."""
    rows = list(
        City.objects.filter(_has_ties())
        .order_by()
        .values("country")
        .annotate(n=Count("pk"), changed=Max("updated_at"))
    )
    changed = max((row["changed"] for row in rows), default=None)
    return {row["country"]: row["n"] for row in rows}, changed


def kind_year_counts():
    """{(kind, earliest year, latest year): ties}, the years of the start's bounds (None when
    the start is not known), in one GROUP BY: the counts by kind and by decade; and when a
    tie last changed."""
    rows = list(
        Tie.objects.order_by()
        .values("kind", first=Year("start_lower"), last=Year("start_upper"))
        .annotate(n=Count("pk"), changed=Max("updated_at"))
    )
    changed = max((row["changed"] for row in rows), default=None)
    return {(row["kind"], row["first"], row["last"]): row["n"] for row in rows}, changed


def network_counts():
    """Organizations with at least one member city, the most members first, each with
    `member_cities` and `member_countries`: the direct members, as the list of networks
    counts them."""
    return list(
        Organization.objects.annotate(
            member_cities=Count("memberships__city", distinct=True),
            member_countries=Count(
                "memberships__city__country",
                distinct=True,
                filter=~Q(memberships__city__country=""),
            ),
        )
        .filter(member_cities__gt=0)
        .order_by("-member_cities", "name", "pk")
        .only("name", "slug", "acronym", "kind")
    )


def ranked_cities():
    """(slug, name, country, ties) of every city with a tie, the most ties first, then by
    name and id: one GROUP BY over both ends of every tie, for the CSV file."""
    quote = connection.ops.quote_name
    city_a = quote(Tie._meta.get_field("city_a").column)
    city_b = quote(Tie._meta.get_field("city_b").column)
    ties, cities = quote(Tie._meta.db_table), quote(City._meta.db_table)
    sql = f"""
        SELECT city.slug, city.name, city.country, counts.tie_count
        FROM (
            SELECT city_id, COUNT(*) AS tie_count
            FROM (
                SELECT {city_a} AS city_id FROM {ties}
                UNION ALL
                SELECT {city_b} FROM {ties}
            ) AS ends
            GROUP BY city_id
        ) AS counts JOIN {cities} AS city ON city.id = counts.city_id
        ORDER BY counts.tie_count DESC, city.name, city.id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def competition_ranks(values):
    """1, 2, 2, 4 …: equal values share a rank (values in descending order)."""
    ranks, previous = [], None
    for i, value in enumerate(values, start=1):
        ranks.append(ranks[-1] if value == previous else i)
        previous = value
    return ranks


# The statistics page --------------------------------------------------------------------------


def countries_of(pairs, cities):
    """[Country] with ties, the most first (then by name), from `pair_counts()` and
    `cities_with_ties()`; the ties of cities whose country is not recorded come last."""
    country_url = _address("partnerships:country_detail")
    names = dict(countries)
    found = {}

    def get(code):
        if code not in found:
            found[code] = _country(code, names, country_url)
        return found[code]

    for low, high, n in pairs:
        if low == high:
            country = get(low)
            country.ties += n
            country.within += n
            continue
        for code, other in ((low, high), (high, low)):
            country = get(code)
            country.ties += n
            if code and other:
                country.abroad += n
                country.partners += 1
    for code, n in cities.items():
        get(code).cities = n
    known = sorted((c for c in found.values() if c.code), key=lambda c: (-c.ties, c.name))
    for country, rank in zip(known, competition_ranks([c.ties for c in known]), strict=True):
        country.rank = rank
    return known + ([found[""]] if "" in found else [])


def _pairs(pairs, by_code, limit):
    """The first `limit` pairs of two different, known countries, the most ties first,
    ranked among all of them; and how many such pairs there are."""
    rows = []
    for low, high, n in pairs:
        if low != high and low and high:
            first, second = by_code[low], by_code[high]
            if second.name < first.name:
                first, second = second, first
            rows.append((n, first, second))
    rows.sort(key=lambda row: (-row[0], row[1].name, row[2].name))
    tie_list = _filtered("partnerships:tie_list")
    ranks = competition_ranks([n for n, _first, _second in rows[:limit]])
    shown = [
        {
            "rank": rank,
            "first": first,
            "second": second,
            "n": n,
            "url": tie_list(country=first.code, partner_country=second.code),
        }
        for rank, (n, first, second) in zip(ranks, rows[:limit], strict=True)
    ]
    return shown, len(rows)


def _matrix(pairs, top):
    """The ties between each two of the `top` countries (and within each, on the diagonal),
    shaded on the scale of the cells off the diagonal."""
    index = {c.code: i for i, c in enumerate(top)}
    counts = {}
    for low, high, n in pairs:
        if low in index and high in index:
            counts[low, high] = counts[high, low] = n
    between = [counts.get((a.code, b.code), 0) for a in top for b in top if a.code < b.code]
    bounds = shade_bounds(between)
    classes = _shade_classes(bounds)
    tie_list = _filtered("partnerships:tie_list")
    rows = []
    for a in top:
        cells = []
        for b in top:
            n = counts.get((a.code, b.code), 0)
            if a.code == b.code:
                title = f"Within {a.name}: {_plural(n, 'tie')}"
                url = tie_list(country=a.code, partner_country=a.code)
                cells.append({"n": n, "within": True, "title": title, "url": url if n else ""})
                continue
            cells.append(
                {
                    "n": n,
                    "shade": shade_of(n, bounds, classes),
                    "title": f"{a.name} – {b.name}: {_plural(n, 'tie')}",
                    "url": tie_list(country=a.code, partner_country=b.code) if n else "",
                }
            )
        rows.append({"country": a, "cells": cells})
    return {"columns": top, "rows": rows, "legend": _legend(bounds, classes, "none")[1:]}


def kind_rows(counts):
    """[{kind, label, n, share, bar, url}] in the order of TieKind, each kind shown even when
    the atlas records none of it."""
    total = sum(counts.values())
    by_kind = {}
    for (kind, _first, _last), n in counts.items():
        by_kind[kind] = by_kind.get(kind, 0) + n
    peak = max(by_kind.values(), default=0)
    tie_list = _filtered("partnerships:tie_list")
    return [
        {
            "kind": kind,
            "label": label,
            "n": by_kind.get(kind, 0),
            "share": share_text(by_kind.get(kind, 0), total),
            "bar": _bar(by_kind.get(kind, 0), peak),
            "url": tie_list(kind=kind),
        }
        for kind, label in TieKind.choices
    ]


def decade_rows(counts):
    """The dated ties by decade of their earliest possible start ("before 1900", then each
    decade from the first to the last, empty ones included), and the undated apart:
    (rows, {n, share, url} of the undated, ties whose start spans into a later decade)."""
    total = sum(counts.values())
    by_decade, undated, spanning = {}, 0, 0
    for (_kind, first, last), n in counts.items():
        if first is None:
            undated += n
            continue
        decade = first // 10 * 10 if first >= FIRST_DECADE else None
        by_decade[decade] = by_decade.get(decade, 0) + n
        if last is None or last // 10 != first // 10:
            spanning += n
    rows = []
    if None in by_decade:
        rows.append({"value": "before-1900", "label": "before 1900", "n": by_decade[None]})
    decades = [d for d in by_decade if d is not None]
    if decades:
        for decade in range(min(decades), max(decades) + 10, 10):
            rows.append(
                {"value": str(decade), "label": f"{decade}s", "n": by_decade.get(decade, 0)}
            )
    peak = max((row["n"] for row in rows), default=0)
    tie_list = _filtered("partnerships:tie_list")
    for row in rows:
        row["share"] = share_text(row["n"], total)
        row["bar"] = _bar(row["n"], peak)
        row["url"] = tie_list(decade=row["value"])
    unknown = {
        "value": UNDATED,
        "label": "no known start",
        "n": undated,
        "share": share_text(undated, total),
        "url": tie_list(decade=UNDATED),
    }
    return rows, unknown, spanning


def atlas_statistics():
    """Everything the statistics page shows, in five queries: the ties per pair of countries
    (which give the counts by country, the pairs and the matrix), the cities with ties per
    country, the ties per kind and year, the most connected cities, and the networks."""
    pairs = pair_counts()
    cities, cities_changed = cities_with_ties()
    by_country = countries_of(pairs, cities)
    known = [c for c in by_country if c.code]
    by_code = {c.code: c for c in by_country}
    total = sum(n for _low, _high, n in pairs)
    counts, ties_changed = kind_year_counts()
    decades, undated, spanning = decade_rows(counts)
    shown_pairs, pair_count = _pairs(pairs, by_code, PAIRS_SHOWN)

    connected = most_connected(CITIES_SHOWN)
    add_addresses(connected, "partnerships:city_detail", "slug")
    country_url = _address("partnerships:country_detail")
    names = dict(countries)
    for city, rank in zip(
        connected, competition_ranks([c.tie_count for c in connected]), strict=True
    ):
        city.rank, city.country_label = rank, names.get(city.country, city.country)
        city.country_url = country_url(city.country) if city.country else ""

    networks = network_counts()
    add_addresses(networks, "partnerships:organization_detail", "slug")
    kinds = dict(OrganizationKind.choices)
    for network, rank in zip(
        networks, competition_ranks([n.member_cities for n in networks]), strict=True
    ):
        network.rank, network.kind_label = rank, kinds.get(network.kind, "")

    mapped = choropleth(
        {c.code: c.ties for c in known},
        label="Ties by country: each country shaded by the number of ties its cities take part in",
        none_label="no ties recorded",
    )
    changed = [d for d in (ties_changed, cities_changed) if d]
    return {
        "total_ties": total,
        "total_cities": sum(cities.values()),
        "countries": known,
        "countries_first": known[:COUNTRIES_FIRST],
        "countries_rest": known[COUNTRIES_FIRST:],
        "country_unknown": by_code.get(""),
        "map": mapped,
        "pairs": shown_pairs,
        "pair_count": pair_count,
        "matrix": _matrix(pairs, known[:MATRIX_COUNTRIES]) if len(known) > 1 else None,
        "kinds": kind_rows(counts),
        "decades": decades,
        "undated": undated,
        "dated": total - undated["n"],
        "dated_bar": _bar(total - undated["n"], total),
        "spanning": spanning,
        "cities": connected,
        "networks": networks[:NETWORKS_SHOWN],
        "network_count": len(networks),
        "last_changed": max(changed, default=None),
        "csv": {
            name.replace("-", "_"): reverse("partnerships:statistics_csv", args=[name])
            for name in CSV_TABLES
        },
    }


# CSV files ------------------------------------------------------------------------------------


def _countries_csv():
    rows = countries_of(pair_counts(), cities_with_ties()[0])
    return (
        ["country", "country_name", "ties", "ties_abroad", "ties_within", "partner_countries",
         "cities_with_ties"],
        ([c.code, c.name if c.code else "", c.ties, c.abroad, c.within, c.partners, c.cities]
         for c in rows),
    )  # fmt: skip


def _pairs_csv():
    rows = sorted(pair_counts(), key=lambda row: (-row[2], row[0], row[1]))
    names = dict(countries)
    return (
        ["country_a", "country_a_name", "country_b", "country_b_name", "ties"],
        ([low, names.get(low, ""), high, names.get(high, ""), n] for low, high, n in rows),
    )


def _kinds_csv():
    return (
        ["kind", "label", "ties"],
        ([row["kind"], row["label"], row["n"]] for row in kind_rows(kind_year_counts()[0])),
    )


def _decades_csv():
    rows, unknown, _spanning = decade_rows(kind_year_counts()[0])
    return (
        ["decade", "label", "ties"],
        ([row["value"], row["label"], row["n"]] for row in [*rows, unknown]),
    )


def _cities_csv():
    rows = ranked_cities()
    ranks = competition_ranks([row[3] for row in rows])
    return (
        ["rank", "city", "name", "country", "ties"],
        ([rank, *row] for rank, row in zip(ranks, rows, strict=True)),
    )


def _networks_csv():
    rows = network_counts()
    ranks = competition_ranks([n.member_cities for n in rows])
    return (
        ["rank", "organization", "name", "acronym", "kind", "member_cities", "member_countries"],
        ([rank, n.slug, n.name, n.acronym, n.kind, n.member_cities, n.member_countries]
         for rank, n in zip(ranks, rows, strict=True)),
    )  # fmt: skip


# Each table of the statistics page as a file: /statistics/<name>.csv.
CSV_TABLES = {
    "countries": _countries_csv,
    "country-pairs": _pairs_csv,
    "kinds": _kinds_csv,
    "decades": _decades_csv,
    "cities": _cities_csv,
    "networks": _networks_csv,
}


def csv_text(header, rows):
    """CSV as the tie export writes it (csv.writer, CRLF), text cells guarded against being
    run as spreadsheet formulas."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([as_text_cell(v) if isinstance(v, str) else v for v in row])
    return out.getvalue()


# A country page -------------------------------------------------------------------------------


def connected_in(country, limit):
    """The `limit` cities of `country` with the most ties, most first, then by name and id,
    each with its `tie_count`: the ends of the ties that lie in the country, grouped."""
    quote = connection.ops.quote_name
    city_a = quote(Tie._meta.get_field("city_a").column)
    city_b = quote(Tie._meta.get_field("city_b").column)
    column = quote(City._meta.get_field("country").column)
    ties, cities = quote(Tie._meta.db_table), quote(City._meta.db_table)
    sql = f"""
        SELECT city.*, counts.tie_count
        FROM (
            SELECT city_id, COUNT(*) AS tie_count
            FROM (
                SELECT t.{city_a} AS city_id FROM {ties} AS t
                JOIN {cities} AS c ON c.id = t.{city_a} WHERE c.{column} = %s
                UNION ALL
                SELECT t.{city_b} FROM {ties} AS t
                JOIN {cities} AS c ON c.id = t.{city_b} WHERE c.{column} = %s
            ) AS ends
            GROUP BY city_id
        ) AS counts JOIN {cities} AS city ON city.id = counts.city_id
        ORDER BY counts.tie_count DESC, city.name, city.id
        LIMIT %s
    """
    return list(City.objects.raw(sql, [country, country, limit]))


def networks_in(country):
    """The organizations with member cities in `country`, each with `listed`, those cities
    counted as the list of cities filtered by the organization counts them (its own members
    and those of its branches), and `direct`, its own members alone: one query."""
    quote = connection.ops.quote_name
    members, orgs = quote(Membership._meta.db_table), quote(Organization._meta.db_table)
    cities = quote(City._meta.db_table)
    m_org = quote(Membership._meta.get_field("organization").column)
    m_city = quote(Membership._meta.get_field("city").column)
    parent = quote(Organization._meta.get_field("parent").column)
    column = quote(City._meta.get_field("country").column)
    sql = f"""
        SELECT o.*, counts.listed, counts.direct
        FROM (
            SELECT e.organization_id, COUNT(DISTINCT e.city_id) AS listed,
                   COUNT(DISTINCT CASE WHEN e.direct = 1 THEN e.city_id END) AS direct
            FROM (
                SELECT m.{m_org} AS organization_id, m.{m_city} AS city_id, 1 AS direct
                FROM {members} AS m JOIN {cities} AS c ON c.id = m.{m_city}
                WHERE c.{column} = %s
                UNION ALL
                SELECT b.{parent}, m.{m_city}, 0
                FROM {members} AS m JOIN {cities} AS c ON c.id = m.{m_city}
                JOIN {orgs} AS b ON b.id = m.{m_org}
                WHERE c.{column} = %s AND b.{parent} IS NOT NULL
            ) AS e
            GROUP BY e.organization_id
        ) AS counts JOIN {orgs} AS o ON o.id = counts.organization_id
        ORDER BY counts.listed DESC, o.name, o.id
    """
    return list(Organization.objects.raw(sql, [country, country]))


def country_profile(code):
    """Everything a country's page shows, in five queries: its ties grouped by partner
    country and kind, its cities' totals, its most connected cities, the first ties within
    it, and the networks its cities belong to."""
    names = dict(countries)
    name = names[code]
    country_url = _address("partnerships:country_detail")
    tie_list, city_list = _filtered("partnerships:tie_list"), _filtered("partnerships:city_list")
    partner = Case(
        When(city_a__country=code, then=F("city_b__country")), default=F("city_a__country")
    )
    grouped = list(
        Tie.objects.filter(Q(city_a__country=code) | Q(city_b__country=code))
        .order_by()
        .values("kind", partner=partner)
        .annotate(
            n=Count("pk"),
            undated=Count("pk", filter=Q(start_lower__isnull=True)),
            changed=Max("updated_at"),
        )
    )
    totals = City.objects.filter(country=code).aggregate(
        cities=Count("pk"), with_ties=Count("pk", filter=_has_ties()), changed=Max("updated_at")
    )
    cities = connected_in(code, COUNTRY_CITIES)
    within_ties = list(
        Tie.objects.filter(city_a__country=code, city_b__country=code)
        .for_list()
        .only(*TIE_ROW_FIELDS)
        .order_by(F("start_lower").asc(nulls_last=True), "id")[:COUNTRY_TIES]
    )
    networks = networks_in(code)

    by_partner, by_kind = {}, {}
    for row in grouped:
        by_partner[row["partner"]] = by_partner.get(row["partner"], 0) + row["n"]
        by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + row["n"]
    ties = sum(by_partner.values())
    within = by_partner.pop(code, 0)
    unknown_partner = by_partner.pop("", 0)
    abroad = sum(by_partner.values())
    undated = sum(row["undated"] for row in grouped)
    partners = sorted(
        ({"code": c, "name": names.get(c, c), "n": n} for c, n in by_partner.items()),
        key=lambda row: (-row["n"], row["name"]),
    )
    peak = partners[0]["n"] if partners else 0
    for row, rank in zip(partners, competition_ranks([p["n"] for p in partners]), strict=True):
        row["rank"], row["url"] = rank, country_url(row["code"])
        row["share"], row["bar"] = share_text(row["n"], abroad), _bar(row["n"], peak)
        row["ties_url"] = tie_list(country=code, partner_country=row["code"])

    add_addresses(cities, "partnerships:city_detail", "slug")
    for city, rank in zip(cities, competition_ranks([c.tie_count for c in cities]), strict=True):
        city.rank = rank
    add_addresses(within_ties, "partnerships:tie_detail", "pk")
    add_addresses(
        [c for tie in within_ties for c in (tie.city_a, tie.city_b)],
        "partnerships:city_detail",
        "slug",
    )
    kinds = dict(OrganizationKind.choices)
    for network in networks:
        network.kind_label = kinds.get(network.kind, "")
        network.cities_url = city_list(country=code, organization=network.slug)
    add_addresses(networks, "partnerships:organization_detail", "slug")

    kind_labels = dict(TieKind.choices)
    changed = [row["changed"] for row in grouped] + [totals["changed"]]
    return {
        "code": code,
        "name": name,
        "region": region_name(region_of(code)),
        "ties": ties,
        "abroad": abroad,
        "within": within,
        "unknown_partner": unknown_partner,
        "undated": undated,
        "undated_share": share_text(undated, ties),
        "kinds": [
            {
                "label": kind_labels[kind],
                "n": by_kind[kind],
                "url": tie_list(country=code, kind=kind),
            }
            for kind in TieKind.values
            if by_kind.get(kind)
        ],
        "partners": partners,
        "partners_first": partners[:COUNTRIES_FIRST],
        "partners_rest": partners[COUNTRIES_FIRST:],
        "map": choropleth(
            {row["code"]: row["n"] for row in partners},
            label=f"Ties of {name} by partner country",
            none_label="no ties with " + name,
            home=code,
            home_title=f"{_plural(within, 'tie')} within the country",
        ),
        "city_count": totals["cities"],
        "cities_with_ties": totals["with_ties"],
        "cities": cities,
        "more_cities": totals["with_ties"] > len(cities),
        "all_cities_url": city_list(country=code, ordering="-ties"),
        "within_ties": within_ties,
        "within_url": tie_list(country=code, partner_country=code),
        "all_ties_url": tie_list(country=code),
        "networks": networks,
        "tie_kinds": kind_labels,
        "last_changed": max((d for d in changed if d is not None), default=None),
    }


# Views ----------------------------------------------------------------------------------------


def statistics_page(request):
    return render(request, "partnerships/statistics.html", atlas_statistics())


def statistics_csv(request, chart):
    table = CSV_TABLES.get(chart)
    if table is None:
        names = ", ".join(f"{name}.csv" for name in CSV_TABLES)
        return not_found(
            request, "table", f"{chart}.csv", hint=f"The statistics page offers {names}."
        )
    response = HttpResponse(csv_text(*table()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="citydiplomacy-{chart}.csv"'
    return response


@dataclass(frozen=True)
class CountryLink:
    """A country a mistyped address may have meant, as the 404 page lists suggestions."""

    code: str
    name: str

    def __str__(self):
        return f"{self.name} ({self.code})"

    def get_absolute_url(self):
        return reverse("partnerships:country_detail", args=[self.code])


def suggest_countries(text, limit=8):
    """Countries a mistyped address may have meant: the one the text names, read as imports
    read country names (/countries/uk/, /countries/japan/), then those whose name holds it."""
    words = text.replace("-", " ").replace("_", " ")
    names = dict(countries)
    found = [code for code in [country_code(words)] if code in names]
    folded = fold(words)
    if len(folded) >= 3:
        found += [c for c, name in names.items() if folded in fold(name) and c not in found]
    return [CountryLink(code, names[code]) for code in found[:limit]]


# ISO 3166-1 alpha-2, alpha-3 or numeric, in any case.
CODE = re.compile(r"[A-Za-z]{2,3}|[0-9]{3}")


def country_detail(request, code):
    # JP, jp, JPN and 392 all name Japan: each leads to the one address people cite.
    found = countries.alpha2(code) if CODE.fullmatch(code) else ""
    if not found:
        return not_found(
            request,
            "country",
            code,
            suggest_countries(code),
            hint="A country's page is named by its two-letter ISO 3166-1 code: /countries/JP/ "
            "for Japan, /countries/UA/ for Ukraine. The statistics page links to every country "
            "with ties.",
        )
    if found != code:
        return redirect("partnerships:country_detail", found, permanent=True)
    return render(request, "partnerships/country_detail.html", country_profile(found))
