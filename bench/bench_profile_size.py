"""Does a city profile or an organization page cost more as ties and members grow?

    .venv/bin/python bench/bench_profile_size.py [--runs 15] [--db /tmp/cd-size.sqlite3]
    .venv/bin/python bench/bench_profile_size.py --database-url postgres://postgres@127.0.0.1/cd_size

Builds a throwaway database (migrated, no seed): one city with 300 and one with 5,000 ties,
one organization with 300 and one with 5,000 member cities, every tie and membership citing
its own row of a dataset, as the imported Wikipedia lists do. Then requests the four pages
through Django's full stack with DEBUG off, interleaved (small, large, small, large …) so
that a change in the machine's load hits both sizes alike. Prints, and writes to
bench/results/profile-size.txt (or --output), the fastest, median and p95 time of each page,
its queries and HTML size, and the ratio of the large page to the small one. On a machine
shared with other work the fastest run is the steadier figure.
"""

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from _support import ROOT, configure

SIZES = (300, 5000)
KINDS = ["unspecified", "sister", "partner", "friendship", "mou", "unspecified"]
COUNTRIES = ["FR", "DE", "JP", "US", "BR", "UA", "CN", "IT", "PL", "GB", "ES", "KR", "MX", "IN"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests per page")
    parser.add_argument("--db", default=os.path.join(tempfile.gettempdir(), "cd-size.sqlite3"))
    parser.add_argument("--database-url", help="use this database instead of a SQLite file")
    parser.add_argument(
        "--output", default=str(ROOT / "bench" / "results" / "profile-size.txt"), type=Path
    )
    args = parser.parse_args()
    args.reuse = False
    return args


def year(value, field="start"):
    """An EDTF year with the bounds save() derives (bulk inserts skip save(), and parsing
    10,000 dates would take a minute)."""
    return {
        field: str(value),
        f"{field}_lower": datetime.date(value, 1, 1),
        f"{field}_upper": datetime.date(value, 12, 31),
    }


def build():
    """The cities and organizations measured; returns [(label, size, url)]."""
    from django.core.management import call_command
    from django.db import connection

    from cities.models import City, Source
    from cities.text import fold
    from partnerships.models import Membership, MembershipCitation, Organization, Tie, TieCitation

    call_command("migrate", verbosity=0)
    source = Source.objects.create(
        slug="twin-towns",
        kind="dataset",
        title="Lists of twin towns",
        url="https://example.org/twin-towns",
        locator_link="https://example.org/twin-towns.csv#L{n}",
    )
    partners = [
        City(
            name=f"Partner {i:05}",
            slug=f"partner-{i:05}",
            folded_name=fold(f"Partner {i:05}"),
            country=COUNTRIES[i % len(COUNTRIES)],
            latitude=-50 + (i * 7) % 120,
            longitude=-170 + (i * 13) % 340,
        )
        for i in range(max(SIZES))
    ]
    City.objects.bulk_create(partners)
    partners = list(City.objects.filter(slug__startswith="partner-").order_by("slug"))
    pages, row = [], 0
    for size in SIZES:
        city = City.objects.create(
            name=f"Hub {size}", slug=f"hub-{size}", country="UA", latitude=46.5, longitude=30.7
        )
        Tie.objects.bulk_create(
            Tie(
                city_a=city,
                city_b=partner,
                kind=KINDS[i % len(KINDS)],
                status="active" if i % 3 else "unknown",
                **(year(1950 + i % 70) if i % 10 else {}),
            )
            for i, partner in enumerate(partners[:size])
        )
        citations = []
        for tie in Tie.objects.filter(city_a=city).order_by("pk"):
            row += 1
            citations.append(TieCitation(tie=tie, source=source, locator=f"row {row}"))
        TieCitation.objects.bulk_create(citations)

        network = Organization.objects.create(
            name=f"Network of {size}", slug=f"network-{size}", kind="city_network"
        )
        Membership.objects.bulk_create(
            Membership(organization=network, city=partner, **year(1982 + i % 40, "since"))
            for i, partner in enumerate(partners[:size])
        )
        citations = []
        for membership in Membership.objects.filter(organization=network).order_by("pk"):
            row += 1
            citations.append(
                MembershipCitation(membership=membership, source=source, locator=f"row {row}")
            )
        MembershipCitation.objects.bulk_create(citations)
        pages.append(("city profile", size, city.get_absolute_url()))
        pages.append(("organization page", size, network.get_absolute_url()))
    if connection.vendor == "postgresql":
        # Autovacuum would gather the statistics of the new rows within a minute; without
        # them the planner takes 5,000 rows for 5.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return pages


def measure(pages, args):
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    results = {}
    # The read cache would answer every request after the first from memory: what is
    # measured is the page being built, as after any change to the atlas.
    with override_settings(STORAGES=storages, READ_CACHE=False):
        # Over HTTPS, as production serves pages (plain HTTP is redirected there).
        client = Client()
        for label, size, url in pages:
            for _ in range(args.warmup):
                response = client.get(url, secure=True)
                assert response.status_code == 200, (url, response.status_code)
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, secure=True)
            results[label, size] = {
                "queries": len(queries),
                "bytes": len(response.content),
                "times": [],
            }
        # Interleaved: every run requests each page once, small and large in turn.
        for _ in range(args.runs):
            for label, size, url in pages:
                started = time.perf_counter()
                client.get(url, secure=True)
                results[label, size]["times"].append((time.perf_counter() - started) * 1000)
    return results, connection.vendor


def report(results, vendor, args):
    lines = [
        f"Profile and organization page size: {vendor}, DEBUG off, "
        f"{args.runs} interleaved runs per page after {args.warmup} warm-up requests",
        f"{datetime.date.today().isoformat()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
        "",
        f"{'page':30} {'min ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8} {'HTML KB':>8}",
    ]
    for (label, size), row in results.items():
        times = sorted(row["times"])
        row["min"], row["p50"] = times[0], statistics.median(times)
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        name = f"{label}, {size:,}"
        lines.append(
            f"{name:30} {row['min']:8.1f} {row['p50']:8.1f} {p95:8.1f} {row['queries']:8d} "
            f"{row['bytes'] / 1000:8.1f}"
        )
    small, large = SIZES
    lines.append("")
    for label in ("city profile", "organization page"):
        a, b = results[label, small], results[label, large]
        lines.append(
            f"{label}: time {large:,}/{small:,} = {b['p50'] / a['p50']:.2f}x at the median, "
            f"{b['min'] / a['min']:.2f}x at the fastest; "
            f"HTML {b['bytes'] / 1000:.1f} KB against {a['bytes'] / 1000:.1f} KB, "
            f"queries {b['queries']} against {a['queries']}"
        )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"Written to {args.output}")


def main():
    args = parse_args()
    configure(args, LOG_LEVEL="WARNING", REQUEST_LOG_LEVEL="WARNING")
    started = time.perf_counter()
    pages = build()
    print(f"Database built in {time.perf_counter() - started:.1f} s.")
    results, vendor = measure(pages, args)
    report(results, vendor, args)


if __name__ == "__main__":
    main()
