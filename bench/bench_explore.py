"""Server time of the pages that explore the network — statistics, countries, a city's
network, the profile with its suggested partners, the comparison with its shared partners,
the list of releases — and a CSV file, beside the method page.

    .venv/bin/python bench/bench_explore.py [--runs 30] [--db db.sqlite3]
    .venv/bin/python bench/bench_explore.py --database-url postgres://postgres@127.0.0.1/cd_bench

Reads an atlas already built (the project's db.sqlite3 by default; it writes nothing) through
Django's full stack in this process (no network), DEBUG off and the read cache off, so that
every request computes its page afresh. The pages are requested in turn, round after round,
so that a slow moment of the machine falls on all of them alike; /about/ (one template, no
query) is the floor. Prints and writes (--out) the median, fastest and p95 times, each page's
median and fastest as multiples of the floor's, its queries and its size, raw and as gzip
sends it; then the statistics page once more as a visitor gets it, from the read cache.
"""

import argparse
import gzip
import os
import statistics
import time
from datetime import date
from pathlib import Path

from _support import ROOT, setup_django

PAGES = [
    ("method page /about/ (floor)", "/about/"),
    ("statistics /statistics/", "/statistics/"),
    ("country /countries/JP/", "/countries/JP/"),
    ("country /countries/UA/", "/countries/UA/"),
    ("country /countries/DE/ (most ties)", "/countries/DE/"),
    ("file /statistics/cities.csv", "/statistics/cities.csv"),
    ("network /cities/bethlehem/network/", "/cities/bethlehem/network/"),
    ("network /cities/yokohama/network/", "/cities/yokohama/network/"),
    ("profile + suggestions /cities/bethlehem/", "/cities/bethlehem/"),
    ("comparison of 4 /compare/?cities=…", "/compare/?cities=yokohama,taipei,odesa,bethlehem"),
    ("releases /data/", "/data/"),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed rounds over every page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--db", default=str(ROOT / "db.sqlite3"), help="SQLite atlas to read")
    parser.add_argument("--database-url", help="read this database instead of --db")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "explore.txt"))
    return parser.parse_args()


def percentile(times, share):
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(args):
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from partnerships.models import Tie

    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    lines = []
    with override_settings(STORAGES=storages, READ_CACHE=False):
        client = Client()
        sizes, queries = {}, {}
        for _ in range(args.warmup):
            for _label, url in PAGES:
                response = client.get(url, secure=True)
                assert response.status_code == 200, (url, response.status_code)
                sizes[url] = (len(response.content), len(gzip.compress(response.content)))
        for _label, url in PAGES:
            with CaptureQueriesContext(connection) as captured:
                client.get(url, secure=True)
            queries[url] = len(captured)
        times = {url: [] for _label, url in PAGES}
        for run in range(args.runs):
            # Each round starts one page later, so no page always follows the same one.
            for _label, url in PAGES[run % len(PAGES) :] + PAGES[: run % len(PAGES)]:
                started = time.perf_counter()
                client.get(url, secure=True)
                times[url].append((time.perf_counter() - started) * 1000)
    with override_settings(STORAGES=storages, READ_CACHE=True):
        client = Client()
        client.get("/statistics/", secure=True)  # stores the page
        cached = []
        for _ in range(args.runs):
            started = time.perf_counter()
            response = client.get("/statistics/", secure=True)
            cached.append((time.perf_counter() - started) * 1000)
        assert response["X-Read-Cache"] == "hit"

    floor = statistics.median(times[PAGES[0][1]])
    fastest_floor = min(times[PAGES[0][1]])
    lines.append(
        f"Pages that explore the network: {connection.vendor}, DEBUG off, read cache off, "
        f"{args.runs} interleaved rounds after {args.warmup} warm-up rounds"
    )
    lines.append(
        f"{date.today().isoformat()}, {Tie.objects.count():,} ties in the atlas, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end (other work "
        "on the machine slows every page alike; the ratios move less than the times)"
    )
    lines.append("")
    header = (
        f"{'page':42} {'min ms':>7} {'p50 ms':>7} {'p95 ms':>7} {'× floor':>8} "
        f"{'min ×':>6} {'queries':>7} {'KB':>6} {'gzip KB':>7}"
    )
    lines.append(header)
    for label, url in PAGES:
        t = times[url]
        raw, packed = sizes[url]
        lines.append(
            f"{label:42} {min(t):7.1f} {statistics.median(t):7.1f} {percentile(t, 0.95):7.1f} "
            f"{statistics.median(t) / floor:8.1f} {min(t) / fastest_floor:6.1f} "
            f"{queries[url]:7d} {raw / 1000:6.1f} "
            f"{packed / 1000:7.1f}"
        )
    lines.append("")
    lines.append(
        f"/statistics/ from the read cache: p50 {statistics.median(cached):.1f} ms, "
        f"{statistics.median(cached) / floor:.1f}× the uncached floor"
    )
    return lines


def main():
    args = parse_args()
    url = args.database_url or f"sqlite:///{Path(args.db).resolve()}"
    # No rate limit on pages: one client asks for hundreds of them a minute.
    setup_django(url, READ_CACHE="false", PAGE_THROTTLE_RATE="")
    lines = measure(args)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
