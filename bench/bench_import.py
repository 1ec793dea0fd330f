"""Import time of the shared Wikipedia file beside a bare bulk insert of the same rows.

    .venv/bin/python bench/bench_import.py [--data FILE] [--workdir /tmp/cd-bench-import]
    .venv/bin/python bench/bench_import.py --database-url postgres://postgres@127.0.0.1/cd_bench

Each measurement runs in a fresh process on a freshly migrated database (DEBUG off, as in
production, so no query log is kept):

- import: `import_ties FILE --skip-bad-rows` into an empty atlas (read, reconcile, write with
  citations and edit history), then the same file again (must create nothing), then a dry run;
- bare: the same rows through `bulk_create` alone — one city per distinct name and country
  as written, one tie per distinct pair, no reconciliation, citations or history — the floor
  any import of these rows pays;
- memory: the import again under tracemalloc, for the peak of Python allocations.

While the import writes, another connection writes a row every 0.2 s, as the admin or the
API would, with the app's 20-second busy timeout (SQLite only): the longest it waited and how
many of its writes gave up say how long the import holds the write lock.

`--repeat K` imports the file K times over in one file (the header once), for how memory and
time grow with the rows; `--no-bare` leaves out the bare insert.

Prints the times, their ratio, the counts, peak resident memory of each process and the
tracemalloc peak. Migrating is not timed.
"""

import argparse
import csv
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _support import DATA, remove_sqlite, setup_django


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="CSV to import")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "cd-bench-import"))
    parser.add_argument("--database-url", help="PostgreSQL URL; the database is recreated per run")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the memory run")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare insert")
    parser.add_argument("--repeat", type=int, default=1, help="the file's rows K times over")
    parser.add_argument("--worker", choices=["import", "bare", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    return parser.parse_args()


def rss_mb():
    """Resident memory now, from /proc (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(url):
    setup_django(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class WriteProbe:
    """Another writer of the SQLite file while the import runs: a row every 0.2 s, waiting for
    the write lock at most 20 s as the app's connections do. Records the longest wait and the
    writes that gave up (a 500 for a curator or an API client)."""

    def __init__(self, url):
        self.path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
        self.longest, self.failed, self.writes = 0.0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        if self.path:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.path:
            self._thread.join()

    def _run(self):
        connection = sqlite3.connect(self.path, timeout=20, isolation_level=None)
        connection.execute("CREATE TABLE IF NOT EXISTS bench_probe (at REAL)")
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("INSERT INTO bench_probe VALUES (?)", [started])
                connection.execute("COMMIT")
                self.writes += 1
            except sqlite3.OperationalError:
                self.failed += 1
            self.longest = max(self.longest, time.perf_counter() - started)
            self._stop.wait(0.2)
        connection.close()


def work_import(data):
    import io

    from django.core.management import call_command

    from cities.duplicates import find_duplicate_cities
    from cities.models import AlternateName, City, CityCitation
    from partnerships.importing import run_import
    from partnerships.models import Tie, TieCitation

    result = {"rss_before_mb": rss_mb()}
    started = time.perf_counter()
    plan = run_import(data, skip_bad_rows=True, dry_run=True)
    result["dry_run_s"] = time.perf_counter() - started
    dry = plan.summary()
    del plan

    started, cpu = time.perf_counter(), time.process_time()
    with WriteProbe(os.environ["DATABASE_URL"]) as probe:
        call_command("import_ties", data, "--skip-bad-rows", stdout=io.StringIO())
    result["import_s"] = time.perf_counter() - started
    result["import_cpu_s"] = time.process_time() - cpu
    result["peak_rss_mb"] = peak_rss_mb()
    result["probe"] = {"longest_s": probe.longest, "failed": probe.failed, "ok": probe.writes}

    figures = run_import(data, skip_bad_rows=True, dry_run=True).summary()
    counts = {m.__name__: m.objects.count() for m in (City, AlternateName, CityCitation, Tie)}
    counts["TieCitation"] = TieCitation.objects.count()
    started = time.perf_counter()
    call_command("import_ties", data, "--skip-bad-rows", stdout=io.StringIO())
    result["second_run_s"] = time.perf_counter() - started
    again = {m.__name__: m.objects.count() for m in (City, AlternateName, CityCitation, Tie)}
    again["TieCitation"] = TieCitation.objects.count()
    result["second_run_changed"] = again != counts

    started = time.perf_counter()
    duplicates = find_duplicate_cities()
    result["duplicates_s"] = time.perf_counter() - started
    result["possible_duplicates"] = len(duplicates)
    result.update(figures=dry, counts=counts, second_run_figures=figures)
    result["history_rows"] = City.history.count() + Tie.history.count()
    return result


def work_bare(data):
    from cities.countries import country_code
    from cities.models import City
    from partnerships.models import Tie

    result = {"rss_before_mb": rss_mb()}
    started = time.perf_counter()
    with open(data, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    cities, ties = {}, {}
    for row in rows:
        ends = []
        for name, country, lat, lng in (row[0:4], row[4:8]):
            code = country_code(country) or ""
            if (name, code) not in cities:
                cities[(name, code)] = City(
                    name=name,
                    folded_name=name.lower(),
                    slug=f"c-{len(cities)}",
                    country=code,
                    latitude=float(lat),
                    longitude=float(lng),
                )
            ends.append(cities[(name, code)])
        pair = frozenset(map(id, ends))
        if len(pair) == 2 and pair not in ties:
            ties[pair] = Tie(city_a=ends[0], city_b=ends[1], kind="unspecified")
    City.objects.bulk_create(cities.values(), batch_size=1000)
    Tie.objects.bulk_create(ties.values(), batch_size=1000)
    result["bare_s"] = time.perf_counter() - started
    result["peak_rss_mb"] = peak_rss_mb()
    result["bare_counts"] = {"cities": len(cities), "ties": len(ties)}
    return result


def work_memory(data):
    import tracemalloc

    from partnerships.importing import run_import

    tracemalloc.start()
    run_import(data, skip_bad_rows=True)
    _current, peak = tracemalloc.get_traced_memory()
    return {"tracemalloc_peak_mb": peak / 2**20}


def fresh_database(args, name):
    """A database URL for one run: a new SQLite file, or the PostgreSQL database recreated."""
    if not args.database_url:
        path = Path(args.workdir) / f"{name}.sqlite3"
        remove_sqlite(path)
        return f"sqlite:///{path}"
    import psycopg

    base, _, database = args.database_url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}"')
        connection.execute(f'CREATE DATABASE "{database}"')
    return args.database_url


def run_worker(args, kind):
    url = fresh_database(args, kind)
    command = [sys.executable, __file__, "--worker", kind, "--url", url, "--data", args.data]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def repeated(args):
    """The data file with its rows `--repeat` times over (the header once), in the workdir."""
    if args.repeat <= 1:
        return args.data
    path = Path(args.workdir) / f"{Path(args.data).stem}-x{args.repeat}.csv"
    with open(args.data, encoding="utf-8-sig", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for _ in range(args.repeat):
            writer.writerows(rows)
    return str(path)


def main():
    args = parse_args()
    if args.worker:
        setup(args.url)
        work = {"import": work_import, "bare": work_bare, "memory": work_memory}[args.worker]
        print(json.dumps(work(args.data)))
        return
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    args.data = repeated(args)
    engine = "PostgreSQL" if args.database_url else "SQLite"
    print(f"Benchmark: import of {Path(args.data).name} on {engine}, {os.cpu_count()} cores")
    imported = run_worker(args, "import")
    bare = None if args.no_bare else run_worker(args, "bare")
    memory = {} if args.no_tracemalloc else run_worker(args, "memory")
    figures = imported["figures"]
    probe = imported["probe"]
    lines = [
        ("rows", f"{figures['rows']:,}"),
        ("import (import_ties, empty atlas)", f"{imported['import_s']:.1f} s"),
        ("  of which CPU time of the process", f"{imported['import_cpu_s']:.1f} s"),
    ]
    if bare:
        lines += [
            ("bare bulk insert of the same rows", f"{bare['bare_s']:.1f} s"),
            ("ratio import / bare", f"{imported['import_s'] / bare['bare_s']:.1f}×"),
        ]
    if probe["ok"] or probe["failed"]:
        lines += [
            ("another writer meanwhile: longest wait", f"{probe['longest_s']:.1f} s"),
            (
                "  its writes that gave up after 20 s",
                f"{probe['failed']:,} of {probe['ok'] + probe['failed']:,}",
            ),
        ]
    lines += [
        ("dry run (plan only)", f"{imported['dry_run_s']:.1f} s"),
        ("second run (creates nothing)", f"{imported['second_run_s']:.1f} s"),
        ("second run changed the database", str(imported["second_run_changed"])),
        ("cities created", f"{figures['cities_created']:,}"),
        ("alternate names (other spellings)", f"{figures['alternate_names_created']:,}"),
        ("ties created", f"{figures['ties_created']:,}"),
        ("rows repeating a pair (duplicates)", f"{figures['rows_repeating_a_pair']:,}"),
        ("rows rejected", f"{figures['rows_rejected']:,}"),
        ("citations created", f"{figures['citations_created']:,}"),
        ("possible duplicate pairs afterwards", f"{imported['possible_duplicates']:,}"),
        ("finding them", f"{imported['duplicates_s']:.1f} s"),
        ("peak RSS, import process", f"{imported['peak_rss_mb']:.0f} MB"),
        ("  of which before importing", f"{imported['rss_before_mb']:.0f} MB"),
    ]
    if bare:
        lines += [
            ("bare insert: cities, ties", "{cities:,}, {ties:,}".format(**bare["bare_counts"])),
            ("peak RSS, bare process", f"{bare['peak_rss_mb']:.0f} MB"),
        ]
    if memory:
        lines.append(("tracemalloc peak, import", f"{memory['tracemalloc_peak_mb']:.0f} MB"))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"  {label:<{width}}  {value}")


if __name__ == "__main__":
    main()
