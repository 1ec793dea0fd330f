"""Speed and memory of the full tie exports, beside `sqlite3 -csv` and the code before a change.

    .venv/bin/python bench/bench_exports.py [--db /tmp/atlas-exports.sqlite3]
        [--before ../before] [--rounds 7] [--output bench/results/exports-before-after.txt]

Needs a full atlas in a SQLite file (built when the file is missing, as `make run` builds it):

    DATABASE_URL=sqlite:////tmp/atlas-exports.sqlite3 .venv/bin/python manage.py migrate --noinput
    DATABASE_URL=sqlite:////tmp/atlas-exports.sqlite3 .venv/bin/python manage.py build_atlas

and Debian's sqlite3 command-line shell (`apt-get install sqlite3`). Two worker processes serve
the exports with DEBUG off and the read cache off (each request runs the export), each through
Django's test client consuming the streamed content: one runs this checkout, the other the
checkout given by --before (first on its sys.path).
Each round times every format in both workers and `sqlite3 -csv` of the CSV's own query (the
ties joined with both cities, their topic and source keys gathered by the same correlated
subqueries, in the same order), in an order that alternates from round to round, so that the
load of a shared machine falls on all of them alike. It prints the median and best times,
the speed of each export against sqlite3 (its time over the export's) and of this checkout
against --before, whether both write the same bytes, and the peak of Python allocations
(tracemalloc) for each export through the client on the whole atlas, and for the writer alone
on the whole atlas and on its first tenth: streamed rows keep the peak flat.
"""

import argparse
import hashlib
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ["csv", "geojson", "gexf", "graphml"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/atlas-exports.sqlite3", help="full atlas (SQLite)")
    parser.add_argument("--before", default=str(ROOT.parent / "before"), help="other checkout")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per export")
    parser.add_argument("--output", default=str(ROOT / "bench/results/exports-before-after.txt"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # the checkout a worker runs
    return parser.parse_args()


# Worker: one checkout, answering one command per line on stdin -------------------------------


def setup_django(code, db):
    """Django from the checkout `code`, DEBUG off as in production, on the SQLite file `db`."""
    os.environ.update(
        DATABASE_URL=f"sqlite:///{db}",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="testserver",
        SINGLE_PROCESS="true",
        # The throttles still count every request; they just never refuse one.
        API_ANON_THROTTLE_RATE="100000000/s",
        API_ANON_EXPORT_THROTTLE_RATE="100000000/s",
        # Every request runs the export: none is answered from the read cache.
        READ_CACHE="false",
        # One log line per request would drown the report.
        LOG_LEVEL="WARNING",
        REQUEST_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="cityDiplomacy.settings",
    )
    sys.path.insert(0, str(code))
    import warnings

    # WhiteNoise warns about the static files only `collectstatic` writes.
    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()


def export_queryset():
    """The ties as the export view passes them to a writer: unfiltered, in the view's order."""
    from partnerships.filters import TieFilter
    from partnerships.models import Tie

    return TieFilter(data={}, queryset=Tie.objects.all()).qs


def drain(client, suffix, digest=None):
    # Over HTTPS, as behind the production proxy: plain http is redirected when DEBUG is off.
    response = client.get(f"/api/v1/exports/ties.{suffix}", secure=True)
    assert response.status_code == 200, response.content[:300]
    size = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        if digest is not None:
            digest.update(chunk)
    return size


def traced_peak(function, *args):
    tracemalloc.start()
    try:
        function(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def write_all(writer, ties):
    for _chunk in writer(ties):
        pass


def worker(code, db):
    setup_django(code, db)
    from django.test import Client

    from partnerships import exports

    writers = {
        "csv": exports.csv_rows,
        "geojson": exports.geojson_chunks,
        "gexf": exports.gexf_chunks,
        "graphml": exports.graphml_chunks,
    }
    client = Client()
    for suffix in FORMATS:  # warm-up: imports, caches, the database file in the page cache
        drain(client, suffix)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command, suffix = line.split()
        if command == "time":
            started = time.perf_counter()
            size = drain(client, suffix)
            answer = {"seconds": time.perf_counter() - started, "bytes": size}
        elif command == "hash":
            digest = hashlib.sha256()
            drain(client, suffix, digest)
            answer = {"sha256": digest.hexdigest()}
        elif command == "peak":
            ties = export_queryset()
            ids = ties.order_by("id").values_list("id", flat=True)
            tenth = ties.filter(id__lte=ids[ids.count() // 10])
            writer = writers[suffix]
            answer = {
                "client": traced_peak(drain, client, suffix),
                "writer": traced_peak(write_all, writer, ties),
                "writer_tenth": traced_peak(write_all, writer, tenth),
                "ties": ties.count(),
                "ties_tenth": tenth.count(),
            }
        elif command == "sql":
            answer = {"sql": csv_sql(), "join": csv_sql(keys=False)}
        else:
            raise SystemExit(f"unknown command {command}")
        print(json.dumps(answer), flush=True)


def csv_sql(keys=True):
    """The CSV export's query as one SQLite statement, its parameters written in; without
    `keys`, the bare join (ties and both cities) without the topic and source subqueries."""
    import sqlite3

    from partnerships import exports

    columns = [c for c in exports.CSV_VALUES if keys or not c.endswith("_slugs")]
    query = exports.tie_values(export_queryset(), *columns).query
    sql, params = query.sql_with_params()
    quote = sqlite3.connect(":memory:").execute
    literals = [quote("SELECT quote(?)", [p]).fetchone()[0] for p in params]
    return sql.replace("%s", "{}").format(*literals) if literals else sql


class Worker:
    def __init__(self, code, db):
        self.code = code
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(code), "--db", str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=code,
        )
        self.read()

    def ask(self, command, suffix):
        self.process.stdin.write(f"{command} {suffix}\n")
        self.process.stdin.flush()
        return self.read()

    def read(self):
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the worker for {self.code} stopped")
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait()


# Orchestration ---------------------------------------------------------------------------


def build_atlas(db):
    environ = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    manage = [sys.executable, str(ROOT / "manage.py")]
    if not Path(db).exists():
        print(f"Building the atlas in {db} (a few minutes)…", flush=True)
        subprocess.run([*manage, "migrate", "--noinput"], env=environ, check=True)
        subprocess.run([*manage, "build_atlas"], env=environ, check=True)
    else:  # tables this checkout added since the file was built
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=environ, check=True)


def time_sqlite(db, sql):
    """Seconds for `sqlite3 -csv` to write the query's rows (to /dev/null)."""
    started = time.perf_counter()
    subprocess.run(
        ["sqlite3", "-csv", "-header", str(db)],
        input=sql.encode(),
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def main():
    args = parse_args()
    if args.worker:
        worker(args.worker, args.db)
        return
    if not shutil.which("sqlite3"):
        raise SystemExit("sqlite3 is missing: apt-get install sqlite3")
    before = Path(args.before).resolve()
    if not (before / "partnerships" / "exports.py").exists():
        raise SystemExit(f"--before {before} is not a checkout of the project")
    build_atlas(args.db)

    after_worker, before_worker = Worker(ROOT, args.db), Worker(before, args.db)
    queries = after_worker.ask("sql", "csv")
    sqlite_bytes = len(
        subprocess.run(["sqlite3", "-csv", "-header", args.db], input=queries["sql"].encode(),
                       capture_output=True, check=True).stdout
    )  # fmt: skip
    times = {(who, suffix): [] for who in ("after", "before") for suffix in FORMATS}
    times["sqlite3", "csv"] = []
    times["sqlite3 join", "csv"] = []
    sizes = {}
    for round_ in range(args.rounds):
        for suffix in FORMATS:
            runs = [("after", after_worker), ("before", before_worker)]
            if suffix == "csv":
                runs += [("sqlite3", queries["sql"]), ("sqlite3 join", queries["join"])]
            # Rotate who goes first, so that no one always runs on a cache just warmed.
            shift = round_ % len(runs)
            for who, process in runs[shift:] + runs[:shift]:
                if isinstance(process, str):
                    times[who, suffix].append(time_sqlite(args.db, process))
                    continue
                answer = process.ask("time", suffix)
                times[who, suffix].append(answer["seconds"])
                sizes[who, suffix] = answer["bytes"]
        print(f"round {round_ + 1} of {args.rounds} done", flush=True)
    hashes = {
        (who, suffix): process.ask("hash", suffix)["sha256"]
        for who, process in (("after", after_worker), ("before", before_worker))
        for suffix in FORMATS
    }
    peaks = {
        (who, suffix): process.ask("peak", suffix)
        for who, process in (("after", after_worker), ("before", before_worker))
        for suffix in FORMATS
    }
    after_worker.close()
    before_worker.close()

    lines = report(args, before, times, sizes, sqlite_bytes, hashes, peaks)
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"Written to {args.output}")


def report(args, before, times, sizes, sqlite_bytes, hashes, peaks):
    median = {key: statistics.median(values) for key, values in times.items()}
    best = {key: min(values) for key, values in times.items()}
    some = peaks["after", "csv"]
    load = " ".join(f"{n:.1f}" for n in os.getloadavg())
    lines = [
        f"# bench/bench_exports.py, {time.strftime('%Y-%m-%d %H:%M')}",
        f"Full atlas: {some['ties']:,} ties in {args.db}; tenth: {some['ties_tenth']:,} ties.",
        f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {load}; "
        f"{args.rounds} interleaved rounds; before = {before}.",
        "",
        "Time of a full export through the test client (streamed content consumed), seconds",
        f"{'export':10} {'after med':>10} {'best':>7} {'before med':>11} {'best':>7} "
        f"{'MB':>6} {'after/before speed':>19} {'same bytes':>11}",
    ]
    for suffix in FORMATS:
        after, earlier = ("after", suffix), ("before", suffix)
        same = "yes" if hashes[after] == hashes[earlier] else "NO"
        lines.append(
            f"{suffix:10} {median[after]:10.3f} {best[after]:7.3f} {median[earlier]:11.3f} "
            f"{best[earlier]:7.3f} {sizes[after] / 1e6:6.2f} "
            f"{median[earlier] / median[after]:18.2f}x {same:>11}"
        )
    lines += [
        "",
        "Speed of the CSV export against sqlite3 -csv (sqlite3 time / export time), median "
        "and best:",
    ]
    for reference, label in (
        ("sqlite3", f"the CSV's query ({sqlite_bytes / 1e6:.2f} MB)"),
        ("sqlite3 join", "the bare join, without topic and source keys"),
    ):
        ref = (reference, "csv")
        lines += [
            f"  sqlite3 -csv of {label}: {median[ref]:.3f} s, best {best[ref]:.3f} s",
            *(
                f"    {who + ':':7} {median[ref] / median[who, 'csv']:.2f}x, "
                f"{best[ref] / best[who, 'csv']:.2f}x"
                for who in ("after", "before")
            ),
        ]
    lines += [
        "",
        "Peak of Python allocations (tracemalloc), MB: through the client on the whole atlas; "
        "the writer alone on the whole atlas and on its first tenth",
        f"{'export':10} {'after client':>13} {'writer':>7} {'tenth':>7} "
        f"{'before client':>14} {'writer':>7} {'tenth':>7}",
    ]
    for suffix in FORMATS:
        a, b = peaks["after", suffix], peaks["before", suffix]
        lines.append(
            f"{suffix:10} {a['client'] / 1e6:13.2f} {a['writer'] / 1e6:7.2f} "
            f"{a['writer_tenth'] / 1e6:7.2f} {b['client'] / 1e6:14.2f} "
            f"{b['writer'] / 1e6:7.2f} {b['writer_tenth'] / 1e6:7.2f}"
        )
    lines += ["", "All times, seconds, in round order:"]
    for (who, suffix), values in times.items():
        lines.append(f"  {who:12} {suffix:8} " + " ".join(f"{v:.3f}" for v in values))
    return lines


if __name__ == "__main__":
    main()
