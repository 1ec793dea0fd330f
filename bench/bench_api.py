"""Throughput of the partner API and cost of its exports, on the real data set.

    .venv/bin/python bench/bench_api.py [--seconds 5] [--db /tmp/cd-bench-api.sqlite3] [--reuse]
    .venv/bin/python bench/bench_api.py --database-url postgres://postgres@127.0.0.1/cd_bench_api

Builds a fresh database (migrate, the seed fixture, `import_ties` on the shared Wikipedia
file), then, through Django's full stack in this process (no network):

- requests per second for a page of 100 ties from /api/v1/ties/ (first page and a page deep
  in the list, reached by its cursor), beside a bare JsonResponse of the same 100 rows read
  with .values() in the same run: the price of serializers, links, auth and throttling;
- time and peak memory of the full GEXF and CSV exports. Memory is traced twice, on the
  whole atlas and on a fifth of it: a flat peak means rows are streamed, not accumulated.
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc

from _support import add_database_arguments, build, configure

PAGE = 100
FILTERED = f"/api/v1/ties/?page_size={PAGE}&kind=unspecified&country=JP&ordering=-start"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measured URL")
    add_database_arguments(parser, os.path.join(tempfile.gettempdir(), "cd-bench-api.sqlite3"))
    return parser.parse_args()


def floor_urlconf():
    """The project's URLs plus /bench-floor/: the same 100 ties as a bare JsonResponse."""
    from django.http import JsonResponse
    from django.urls import include, path

    from partnerships.models import Tie

    fields = [
        "id", "city_a__slug", "city_a__name", "city_a__country", "city_a__wikidata_id",
        "city_b__slug", "city_b__name", "city_b__country", "city_b__wikidata_id",
        "kind", "status", "start", "end", "date_basis", "summary", "verification",
        "created_at", "updated_at",
    ]  # fmt: skip

    def floor(request):
        rows = list(Tie.objects.order_by("start_lower", "id").values(*fields)[:PAGE])
        return JsonResponse({"results": rows})

    module = type(sys)("bench_api_urls")
    module.urlpatterns = [
        path("bench-floor/", floor),
        path("", include("cityDiplomacy.urls")),
    ]
    sys.modules["bench_api_urls"] = module
    return "bench_api_urls"


def throughput(client, url, seconds):
    """Requests per second for `url`, after a short warm-up; the body is read each time."""
    for _ in range(5):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        response = client.get(url)
        len(response.content)
        count += 1
    return count / (time.perf_counter() - started)


def deep_cursor(client):
    """The `next` link about half way through the ties, found by walking big pages."""
    from partnerships.models import Tie

    target = Tie.objects.count() // 2
    url, seen = "/api/v1/ties/?page_size=1000", 0
    while seen + 1000 <= target:
        data = client.get(url).json()
        if not data["next"]:
            break
        url, seen = data["next"], seen + 1000
    return url.replace("page_size=1000", f"page_size={PAGE}"), seen


def drain(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    size = 0
    for chunk in response.streaming_content:
        size += len(chunk)
    return size


def export_cost(client, url):
    """(seconds, bytes, peak traced bytes): timed untraced, then traced for memory."""
    started = time.perf_counter()
    size = drain(client, url)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    drain(client, url)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, size, peak


def main():
    args = parse_args()
    # The throttle still runs (and counts in the cache) on every request; it just never refuses.
    configure(args, API_ANON_THROTTLE_RATE="100000000/s")

    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from partnerships.models import Tie

    build(args, Tie)

    ties = Tie.objects.count()
    print(f"\n{connection.vendor}: {ties:,} ties between "
          f"{Tie.objects.values('city_a').distinct().count():,}+ cities.\n")  # fmt: skip
    client = Client()
    with override_settings(ROOT_URLCONF=floor_urlconf()):
        deep, offset = deep_cursor(client)
        rows = [
            ("bare JsonResponse, .values(), 100 ties", "/bench-floor/"),
            ("/api/v1/ties/, first page of 100", f"/api/v1/ties/?page_size={PAGE}"),
            (f"/api/v1/ties/, page of 100 after {offset:,}", deep),
            ("/api/v1/ties/, filtered and ordered by -start", FILTERED),
        ]
        results = [(label, throughput(client, url, args.seconds)) for label, url in rows]
    floor = results[0][1]
    print(f"{'request':58} {'req/s':>8} {'vs floor':>9}")
    for label, rate in results:
        print(f"{label:58} {rate:8.0f} {rate / floor:8.2f}x")

    print(f"\n{'export':40} {'seconds':>8} {'MB out':>8} {'peak MB':>8}")
    fifth = Tie.objects.order_by("id").values_list("id", flat=True)[ties // 5]
    for label, url in [
        ("ties.gexf, whole atlas", "/api/v1/exports/ties.gexf"),
        ("ties.csv, whole atlas", "/api/v1/exports/ties.csv"),
        ("ties.geojson, whole atlas", "/api/v1/exports/ties.geojson"),
        ("ties.graphml, whole atlas", "/api/v1/exports/ties.graphml"),
    ]:
        seconds, size, peak = export_cost(client, url)
        print(f"{label:40} {seconds:8.2f} {size / 1e6:8.1f} {peak / 1e6:8.1f}")
    # A fifth of the atlas for comparison: with streaming the peak barely moves.
    small = Tie.objects.filter(id__lte=fifth)
    from partnerships import exports

    for name, writer in (("gexf", exports.gexf_chunks), ("csv", exports.csv_rows)):
        tracemalloc.start()
        size = sum(len(chunk) for chunk in writer(small))
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        label = f"ties.{name}, first fifth (writer only)"
        print(f"{label:40} {'':>8} {size / 1e6:8.1f} {peak / 1e6:8.1f}")


if __name__ == "__main__":
    main()
