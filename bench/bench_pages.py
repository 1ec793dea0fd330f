"""Server time of the heaviest public pages on the real data set, beside a bare Django page.

    .venv/bin/python bench/bench_pages.py [--runs 50] [--db /tmp/cd-bench.sqlite3] [--reuse]
    .venv/bin/python bench/bench_pages.py --database-url postgres://postgres@127.0.0.1/cd_bench

Builds a fresh database (migrate, the seed fixture, then `import_ties` on the shared Wikipedia
file when the command exists), then requests through Django's full stack in this process (no
network): the profile of the city with the most ties, the comparison of the four most
connected cities, two searches, and a bare page rendering one tiny template as the floor.
Prints p50 and p95 per page, the ratio to the floor, and the queries each page issues.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

from _support import add_database_arguments, build, configure


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page")
    add_database_arguments(parser, os.path.join(tempfile.gettempdir(), "cd-bench.sqlite3"))
    return parser.parse_args()


def floor_urlconf():
    """The project's URLs plus /bench-floor/, a page that renders one tiny template."""
    from django.http import HttpResponse
    from django.template import engines
    from django.urls import include, path

    template = engines["django"].from_string("<!doctype html><title>floor</title><p>{{ n }}</p>")

    def floor(request):
        return HttpResponse(template.render({"n": 1}, request))

    module = type(sys)("bench_urls")
    module.urlpatterns = [path("bench-floor/", floor), path("", include("cityDiplomacy.urls"))]
    sys.modules["bench_urls"] = module
    return "bench_urls"


def targets():
    from cities.models import City
    from partnerships.filters import tie_count

    top = list(City.objects.annotate(n=tie_count()).order_by("-n", "pk")[:4])
    print("Most connected: " + ", ".join(f"{c.name} ({c.n} ties)" for c in top))
    return [
        ("bare Django page (floor)", "/bench-floor/"),
        (f"profile: {top[0].name}", top[0].get_absolute_url()),
        ("compare: four most connected", "/compare/?cities=" + ",".join(c.slug for c in top)),
        ("search: odessa", "/cities/?q=odessa"),
        ("search: san (many matches)", "/cities/?q=san"),
    ]


def measure(args):
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    rows = []
    with override_settings(ROOT_URLCONF=floor_urlconf(), STORAGES=storages):
        client = Client()
        for label, url in targets():
            for _ in range(args.warmup):
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
            with CaptureQueriesContext(connection) as queries:
                client.get(url)
            # Counted now: the next request clears the log the capture reads lazily.
            n_queries = len(queries)
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                client.get(url)
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            rows.append((label, statistics.median(times), p95, n_queries, len(response.content)))
    floor = rows[0][1]
    vendor = connection.vendor
    print(f"\n{vendor}, {args.runs} runs per page (after {args.warmup} warm-up runs)\n")
    print(f"{'page':38} {'p50 ms':>8} {'p95 ms':>8} {'× floor':>8} {'queries':>8} {'KiB':>6}")
    for label, p50, p95, n_queries, size in rows:
        print(
            f"{label:38} {p50:8.1f} {p95:8.1f} {p50 / floor:8.1f} {n_queries:8d} {size / 1024:6.0f}"
        )


def main():
    args = parse_args()
    configure(args)
    from cities.models import City

    build(args, City)
    measure(args)


if __name__ == "__main__":
    main()
