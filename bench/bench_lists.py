"""Server time of the home page and the city and tie lists on a full atlas, before and after.

    .venv/bin/python bench/bench_lists.py --db /tmp/atlas-lists.sqlite3
    .venv/bin/python bench/bench_lists.py --db /tmp/atlas-lists.sqlite3 \
        --before-project /work/before --before-db /tmp/atlas-lists-before.sqlite3 \
        --out bench/results/lists-before-after.txt

Each measurement runs in a child process of its own, with DEBUG off and the read cache off (so
every request builds its page), the project's code taken from `--project` (this checkout by
default) and the atlas from a SQLite file built beforehand (`manage.py migrate` then
`manage.py build_atlas`). A child requests the pages through Django's full stack with the test
client, interleaved (one request per page in turn, `--runs` times), after `--warmup` untimed
turns; `/about/`, which renders the site's templates and queries nothing, is the floor.

With `--before-project`, children of the old code (on `--before-db`, the same atlas migrated
only as far as that code knows) and of this code alternate for `--rounds` rounds, so a change
in the machine's load weighs on both alike. Prints the median per page, the speed-up and each
page's ratio to the floor, in wall-clock time and in CPU time of the serving thread.
"""

import argparse
import json
import os
import platform
import secrets
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PAGES = [
    ("floor: /about/", "/about/"),
    ("home", "/"),
    ("cities, search “san”", "/cities/?q=san"),
    ("cities, search “odessa”", "/cities/?q=odessa"),
    ("ties", "/ties/"),
    ("ties, country JP", "/ties/?country=JP"),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file of the full atlas")
    parser.add_argument("--project", default=str(ROOT), help="checkout whose code is measured")
    parser.add_argument("--before-project", help="checkout of the code to compare with")
    parser.add_argument("--before-db", help="the atlas as the code of --before-project has it")
    parser.add_argument("--rounds", type=int, default=3, help="child processes per side")
    parser.add_argument("--runs", type=int, default=20, help="timed requests per page and child")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page")
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def child(args):
    """Measure in this process, on the code of --project; print the timings as JSON."""
    os.environ.update(
        DATABASE_URL=f"sqlite:///{args.db}",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="testserver",
        SINGLE_PROCESS="true",
        READ_CACHE="false",
        DJANGO_SETTINGS_MODULE="cityDiplomacy.settings",
    )
    sys.path.insert(0, args.project)
    import django

    django.setup()
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    # Plain static storage: production's manifest needs a collectstatic this bench skips.
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    times = {url: [] for _label, url in PAGES}
    cpu = {url: [] for _label, url in PAGES}
    queries = {}
    with override_settings(STORAGES=storages, READ_CACHE=False):
        # As over HTTPS, which production redirects plain http to.
        client = Client()
        for _ in range(args.warmup):
            for _label, url in PAGES:
                response = client.get(url, secure=True)
                assert response.status_code == 200, (url, response.status_code)
        for _label, url in PAGES:
            with CaptureQueriesContext(connection) as captured:
                client.get(url, secure=True)
            queries[url] = len(captured)
        for _ in range(args.runs):
            for _label, url in PAGES:
                started, started_cpu = time.perf_counter(), time.thread_time()
                client.get(url, secure=True)
                cpu[url].append((time.thread_time() - started_cpu) * 1000)
                times[url].append((time.perf_counter() - started) * 1000)
    json.dump({"times": times, "cpu": cpu, "queries": queries}, sys.stdout)


def run_child(args, project, db):
    command = [
        sys.executable, __file__, "--child", "--project", project, "--db", db,
        "--runs", str(args.runs), "--warmup", str(args.warmup),
    ]  # fmt: skip
    # The child's own directory first, so `import cityDiplomacy` finds the measured checkout.
    env = {**os.environ, "PYTHONPATH": project}
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(output.stdout)


def merge(results, key):
    """Median per page of `key` ("times" or "cpu") over every child, and the query counts."""
    values = {url: [] for _label, url in PAGES}
    for result in results:
        for url, timings in result[key].items():
            values[url] += timings
    medians = {url: statistics.median(timings) for url, timings in values.items()}
    return medians, results[0]["queries"]


def table(title, after, before=None):
    """Lines of one table: each page's median, speed-up and ratio to the floor."""
    after_ms, after_q = after
    lines = [title]
    if before is None:
        lines.append(f"{'page':26} {'ms':>8} {'× floor':>8} {'queries':>8}")
        for label, url in PAGES:
            ratio = after_ms[url] / after_ms["/about/"]
            lines.append(f"{label:26} {after_ms[url]:8.1f} {ratio:7.1f}× {after_q[url]:8d}")
        return lines
    before_ms, before_q = before
    lines.append(
        f"{'page':26} {'before':>8} {'after':>8} {'speed-up':>9} "
        f"{'before/floor':>13} {'after/floor':>12} {'queries':>9}"
    )
    for label, url in PAGES:
        lines.append(
            f"{label:26} {before_ms[url]:8.1f} {after_ms[url]:8.1f} "
            f"{before_ms[url] / after_ms[url]:8.1f}× "
            f"{before_ms[url] / before_ms['/about/']:12.1f}× "
            f"{after_ms[url] / after_ms['/about/']:11.1f}× "
            f"{before_q[url]:>4} → {after_q[url]:<3}"
        )
    return lines


def report(args, after, before):
    lines = [
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
        f"load average at the end {os.getloadavg()[0]:.2f}",
        f"atlas: {args.db}",
        f"before: {args.before_project} on {args.before_db}" if before else "",
        f"{args.rounds} child processes per side, each {args.runs} interleaved requests per page "
        f"after {args.warmup} warm-up turns; medians in ms",
        "",
    ]
    for key, title in [
        ("times", "Wall-clock time of a request:"),
        # The CPU time of the serving thread (SQLite runs in it) moves less with the load
        # of a shared machine than the wall clock does.
        ("cpu", "CPU time of the serving thread:"),
    ]:
        lines += table(title, merge(after, key), merge(before, key) if before else None)
        lines.append("")
    text = "\n".join(line for line in lines) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)


def main():
    args = parse_args()
    if args.child:
        child(args)
        return
    if args.before_project and not args.before_db:
        sys.exit("--before-project needs --before-db: the atlas as that code migrated it.")
    before, after = [], []
    for _ in range(args.rounds):
        if args.before_project:
            before.append(run_child(args, args.before_project, args.before_db))
        after.append(run_child(args, args.project, args.db))
    report(args, after, before)


if __name__ == "__main__":
    main()
