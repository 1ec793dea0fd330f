"""Requests per second over HTTP: the atlas's app servers beside Datasette on the same file.

    .venv/bin/python bench/bench_http.py [--label current] [--rounds 3] [--seconds 5]
    .venv/bin/python bench/bench_http.py --project /work/before --label before
    .venv/bin/python bench/bench_http.py --redis redis://127.0.0.1:6379/14

Needs `wrk` and `sqlite3` (Debian: `apt-get install -y wrk sqlite3`, done here when missing
and run as root) and Datasette, a development dependency only (`.venv/bin/pip install -r
bench/requirements.txt`, also done here when missing).

1. Builds the atlas in a SQLite file (`--db`, default /tmp/atlas-bench.sqlite3) with
   `manage.py migrate` and `manage.py build_atlas` (3–5 minutes the first time); a file that
   exists is reused, migrated again (the schema may have grown) and left as it is otherwise.
2. Starts two gunicorn app servers (2 sync workers each, DEBUG off, loopback) running the
   code of `--project` (default: this checkout) with the settings of bench/http_settings.py,
   which add two reference views (bench/http_urls.py): "cached" as deployed, and "uncached"
   with READ_CACHE=false. Without `--redis` both run with SINGLE_PROCESS=true (a cache per
   process); with it, both share that Redis database, which is emptied first.
3. Starts Datasette (one process) on the same file, immutable, with a canned query returning
   the 100 ties of the API's first page joined with both cities.
4. Measures each target with `wrk --latency` (1 thread, 4 connections, `--seconds` each) in
   interleaved rounds: each round measures every target once, in turn, so that a burst of
   load on a shared machine hits all of them alike. Per target: req/s and p50/p99 latency
   (medians of the rounds), and the ratios to the floor and to Datasette, taken within each
   round and then the median of the rounds.
5. Outside wrk: the full CSV export against `sqlite3 -csv` running the same join (same
   columns), and the HTML size of the two profile pages.

Prints the table and writes it to bench/results/http-<label>.txt.
"""

import argparse
import csv
import datetime
import io
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PAGE = 100
THROTTLE = "100000000/minute"

# The API's first page of ties: start date ascending, undated last, then id (the keyset
# paginator's default ordering, partnerships/pagination.py). Same columns as /bench/bare-ties/.
TIES_SQL = f"""
SELECT t.id, a.slug AS city_a__slug, a.name AS city_a__name, a.country AS city_a__country,
       a.wikidata_id AS city_a__wikidata_id, b.slug AS city_b__slug, b.name AS city_b__name,
       b.country AS city_b__country, b.wikidata_id AS city_b__wikidata_id, t.kind, t.status,
       t.start, t."end", t.date_basis, t.summary, t.verification, t.created_at, t.updated_at
FROM partnerships_tie t
JOIN cities_city a ON a.id = t.city_a_id
JOIN cities_city b ON b.id = t.city_b_id
ORDER BY t.start_lower ASC NULLS LAST, t.id ASC
LIMIT {PAGE}
"""


def _coordinate(column):
    return f"CASE WHEN {column} IS NULL THEN '' ELSE printf('%.6f', {column}) END"


# The columns of /api/v1/exports/ties.csv (partnerships/exports.py), in its order.
EXPORT_SQL = f"""
SELECT t.id AS tie_id,
       a.slug AS city_a, a.name AS city_a_name, a.country AS city_a_country,
       a.wikidata_id AS city_a_wikidata, {_coordinate("a.latitude")} AS city_a_latitude,
       {_coordinate("a.longitude")} AS city_a_longitude,
       b.slug AS city_b, b.name AS city_b_name, b.country AS city_b_country,
       b.wikidata_id AS city_b_wikidata, {_coordinate("b.latitude")} AS city_b_latitude,
       {_coordinate("b.longitude")} AS city_b_longitude,
       t.kind, t.status, t.start, t."end", t.date_basis,
       (SELECT group_concat(slug, ';') FROM (
            SELECT th.slug FROM partnerships_tie_topics tt
            JOIN cities_theme th ON th.id = tt.theme_id
            WHERE tt.tie_id = t.id ORDER BY th.slug)) AS topics,
       (SELECT group_concat(slug, ';') FROM (
            SELECT DISTINCT s.slug FROM partnerships_tiecitation c
            JOIN cities_source s ON s.id = c.source_id
            WHERE c.tie_id = t.id ORDER BY s.slug)) AS sources,
       t.verification, t.summary
FROM partnerships_tie t
JOIN cities_city a ON a.id = t.city_a_id
JOIN cities_city b ON b.id = t.city_b_id
ORDER BY t.start_lower ASC NULLS LAST, t.id ASC
"""

MOST_CONNECTED_SQL = """
SELECT c.slug, c.name, COUNT(*) AS n
FROM (SELECT city_a_id AS city FROM partnerships_tie
      UNION ALL SELECT city_b_id FROM partnerships_tie) ends
JOIN cities_city c ON c.id = ends.city
GROUP BY c.id ORDER BY n DESC, c.id LIMIT 1
"""

MOST_MEMBERS_SQL = """
SELECT o.slug, o.name, COUNT(*) AS n
FROM partnerships_membership m JOIN partnerships_organization o ON o.id = m.organization_id
GROUP BY o.id ORDER BY n DESC, o.id LIMIT 1
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/atlas-bench.sqlite3", help="SQLite atlas file")
    parser.add_argument(
        "--project", default=str(ROOT), help="checkout whose code the app servers run"
    )
    parser.add_argument("--label", default="current", help="names bench/results/http-LABEL.txt")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per measurement")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--export-runs", type=int, default=3, help="timed CSV exports")
    parser.add_argument("--redis", help="REDIS_URL for both app servers (emptied first)")
    return parser.parse_args()


# Tools ------------------------------------------------------------------------------------


def apt_install(package):
    if os.geteuid() != 0:
        sys.exit(f"{package} is missing: apt-get install -y {package} (as root), then run again.")
    print(f"Installing {package} with apt-get ...")
    subprocess.run(["apt-get", "install", "-y", "-q", package], check=True)


def ensure_tools():
    for command in ("wrk", "sqlite3"):
        if not shutil.which(command):
            apt_install(command)
    found = subprocess.run(
        [sys.executable, "-m", "datasette", "--version"], capture_output=True, text=True
    )
    if found.returncode != 0:
        print("Installing Datasette from bench/requirements.txt ...")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "-r", str(BENCH / "requirements.txt")],
            check=True,
        )


def versions():
    datasette = (
        subprocess.run(
            [sys.executable, "-m", "datasette", "--version"], capture_output=True, text=True
        )
        .stdout.split("version")[-1]
        .strip()
    )
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    gunicorn = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--version"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"Python {platform.python_version()}, {gunicorn}, Datasette {datasette}, "
        f"{wrk.split(' [')[0]}"
    )


def checkout_of(project):
    """The commit checked out in `project`, read from .git without running git."""
    dot_git = Path(project) / ".git"
    try:
        if dot_git.is_file():
            git_dir = Path(dot_git.read_text().split("gitdir:", 1)[1].strip())
        else:
            git_dir = dot_git
        common = git_dir
        if (git_dir / "commondir").exists():
            common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return f"{head[:12]} (detached)"
        ref = head[5:]
        for base in (git_dir, common):
            if (base / ref).exists():
                return f"{(base / ref).read_text().strip()[:12]} ({ref.rsplit('/', 1)[-1]})"
        packed = common / "packed-refs"
        if packed.exists():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return f"{line.split()[0][:12]} ({ref.rsplit('/', 1)[-1]})"
        return f"unknown commit ({ref})"
    except (OSError, IndexError):
        return "not a git checkout"


# The atlas ---------------------------------------------------------------------------------


def random_secret_key():
    alphabet = string.ascii_letters + string.digits + "!#%&()*+,-./:;<=>?@[]^_{|}~"
    return "".join(secrets.choice(alphabet) for _ in range(50))


def base_environ(args, db):
    """What every process of the project gets: production-like, as the README describes."""
    environ = dict(os.environ)
    for name in (
        "REDIS_URL",
        "READ_CACHE",
        "SINGLE_PROCESS",
        "HTTPS",
        "PYTHONPATH",
        "DJANGO_SETTINGS_MODULE",
    ):
        environ.pop(name, None)
    environ.update(
        DATABASE_URL=f"sqlite:///{db}",
        DEBUG="false",
        SECRET_KEY=random_secret_key(),
        ALLOWED_HOSTS="127.0.0.1",
        API_ANON_THROTTLE_RATE=THROTTLE,
        LOG_LEVEL="WARNING",
        REQUEST_LOG_LEVEL="WARNING",
        # Plain http on loopback: no redirect to https.
        HTTPS="false",
    )
    if args.redis:
        environ["REDIS_URL"] = args.redis
    else:
        environ["SINGLE_PROCESS"] = "true"
    return environ


def build_atlas(args, environ):
    db = Path(args.db)
    existed = db.exists()
    manage = [sys.executable, str(Path(args.project) / "manage.py")]
    print(("Reusing" if existed else "Building") + f" the atlas in {db} ({args.project}) ...")
    started = time.perf_counter()
    for command in (["migrate", "--noinput"], ["build_atlas"]):
        done = subprocess.run(
            [*manage, *command], cwd=args.project, env=environ, capture_output=True, text=True
        )
        if done.returncode != 0:
            sys.exit(f"manage.py {' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
        if not existed:
            print(done.stdout.rstrip())
    print(f"  ready in {time.perf_counter() - started:.0f} s")
    with sqlite3.connect(db) as connection:
        # Everything in the main file: Datasette reads it as immutable, ignoring the WAL.
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        ties = connection.execute("SELECT COUNT(*) FROM partnerships_tie").fetchone()[0]
        cities = connection.execute("SELECT COUNT(*) FROM cities_city").fetchone()[0]
        city = connection.execute(MOST_CONNECTED_SQL).fetchone()
        organization = connection.execute(MOST_MEMBERS_SQL).fetchone()
    return {"ties": ties, "cities": cities, "city": city, "organization": organization}


# Servers -----------------------------------------------------------------------------------


def free_ports(count):
    """Loopback ports below 32768 (the kernel hands out ephemeral ports above it)."""
    ports = []
    for port in random.sample(range(20000, 32000), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    sys.exit("No free loopback port found.")


class Servers:
    """The processes this benchmark starts, each in its own process group, stopped at the end."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.processes = {}
        self.logs = {}

    def start(self, name, command, **kwargs):
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        with log.open("w") as output:
            self.processes[name] = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            )

    def wait_ready(self, name, url, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        tail = self.logs[name].read_text()[-3000:]
        self.stop()
        sys.exit(f"{name} did not answer {url}:\n{tail}")

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes = {}


def start_servers(args, environ, servers, workdir):
    """gunicorn "cached" and "uncached", and Datasette; returns their base URLs."""
    # The bench's settings and URLs, copied so that the servers import them whatever
    # checkout they run (an older one has no bench/http_*.py).
    modules = Path(workdir) / "modules"
    modules.mkdir()
    for name in ("http_settings.py", "http_urls.py"):
        shutil.copy(BENCH / name, modules / name)
    app_environ = dict(
        environ, DJANGO_SETTINGS_MODULE="http_settings", PYTHONPATH=f"{modules}:{args.project}"
    )
    cached_port, uncached_port, datasette_port = free_ports(3)
    bases = {}
    for name, port, extra in (
        ("cached", cached_port, {}),
        ("uncached", uncached_port, {"READ_CACHE": "false"}),
    ):
        command = [
            sys.executable, "-m", "gunicorn", "cityDiplomacy.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
            "--chdir", args.project, "--timeout", "300", "--log-level", "warning",
        ]  # fmt: skip
        servers.start(name, command, cwd=args.project, env=dict(app_environ, **extra))
        bases[name] = f"http://127.0.0.1:{port}"

    metadata = Path(workdir) / "datasette.json"
    database = Path(args.db).stem
    metadata.write_text(
        json.dumps({"databases": {database: {"queries": {"ties100": {"sql": TIES_SQL}}}}})
    )
    command = [
        sys.executable, "-m", "datasette", "serve", "--immutable", args.db,
        "--host", "127.0.0.1", "--port", str(datasette_port), "--metadata", str(metadata),
        "--setting", "sql_time_limit_ms", "10000",
    ]  # fmt: skip
    servers.start("datasette", command, env=dict(os.environ))
    bases["datasette"] = f"http://127.0.0.1:{datasette_port}"
    for name in ("cached", "uncached"):
        servers.wait_ready(name, bases[name] + "/bench/floor/")
    datasette_path = f"/{database}/ties100.json?_shape=array"
    servers.wait_ready("datasette", bases["datasette"] + datasette_path)
    return bases, datasette_path


# Measuring ---------------------------------------------------------------------------------


def fetch(url):
    with urllib.request.urlopen(url, timeout=300) as response:
        return response.status, response.read()


def check_same_ties(bases, datasette_path):
    """The three views of the first 100 ties must list the same ids, in the same order."""
    api = json.loads(fetch(bases["cached"] + f"/api/v1/ties/?page_size={PAGE}")[1])
    bare = json.loads(fetch(bases["cached"] + "/bench/bare-ties/")[1])
    datasette = json.loads(fetch(bases["datasette"] + datasette_path)[1])
    ids = {
        "API": [row["id"] for row in api["results"]],
        "bare view": [row["id"] for row in bare["results"]],
        "Datasette": [row["id"] for row in datasette],
    }
    same = len({tuple(v) for v in ids.values()}) == 1 and len(ids["API"]) == PAGE
    summary = ", ".join(f"{name} {len(v)}" for name, v in ids.items())
    return ("same 100 ties, same order" if same else "DIFFERENT ties") + f" ({summary})"


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _milliseconds(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def run_wrk(args, url, seconds):
    command = [
        "wrk", "--latency", "-t", str(args.threads), "-c", str(args.connections),
        "-d", f"{seconds}s", "--timeout", "30s", url,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = _milliseconds(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))
    p99 = _milliseconds(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))
    errors = 0
    if found := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(found.group(1))
    if found := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(n) for n in found.groups())
    return {"rate": rate, "p50": p50, "p99": p99, "errors": errors}


def targets(atlas, datasette_path):
    city_slug, city_name, city_ties = atlas["city"]
    org = atlas["organization"]
    both = ("cached", "uncached")
    rows = [
        ("floor: tiny template", both, "/bench/floor/"),
        ("Datasette: 100 ties, canned query", ("datasette",), datasette_path),
        ("bare .values() JsonResponse, 100 ties", ("cached",), "/bench/bare-ties/"),
        ("API /api/v1/ties/?page_size=100", both, f"/api/v1/ties/?page_size={PAGE}"),
        (f"profile: {city_name} ({city_ties} ties)", both, f"/cities/{city_slug}/"),
    ]
    if org:
        rows.append((f"organization: {org[1][:22]} ({org[2]})", both, f"/organizations/{org[0]}/"))
    rows += [
        ("home /", both, "/"),
        ("/cities/?q=san", both, "/cities/?q=san"),
        ("/ties/", both, "/ties/"),
    ]
    return [(label, server, path) for label, servers_, path in rows for server in servers_]


def measure(args, bases, plan):
    print(f"\nWarming up {len(plan)} targets ...")
    for label, server, path in plan:
        status, _body = fetch(bases[server] + path)
        if status != 200:
            sys.exit(f"{label}: HTTP {status} from {bases[server] + path}")
        run_wrk(args, bases[server] + path, 1)
    results = {(label, server): [] for label, server, _path in plan}
    for round_ in range(1, args.rounds + 1):
        print(f"Round {round_} of {args.rounds}, {len(plan)} targets × {args.seconds} s ...")
        for label, server, path in plan:
            results[(label, server)].append(run_wrk(args, bases[server] + path, args.seconds))
    return results


def table(plan, results):
    floor = results[(plan[0][0], "cached")]
    datasette = next(v for (_label, server), v in results.items() if server == "datasette")
    header = (
        f"{'target':42} {'server':9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'× floor':>8} {'× Datasette':>11} {'errors':>6}"
    )
    lines = [header, "-" * len(header)]
    for label, server, _path in plan:
        runs = results[(label, server)]
        median = statistics.median
        vs_floor = median(r["rate"] / f["rate"] for r, f in zip(runs, floor, strict=True))
        vs_datasette = median(r["rate"] / d["rate"] for r, d in zip(runs, datasette, strict=True))
        lines.append(
            f"{label:42} {server:9} {median(r['rate'] for r in runs):7.0f} "
            f"{median(r['p50'] for r in runs):7.1f} {median(r['p99'] for r in runs):7.1f} "
            f"{vs_floor:8.3f} {vs_datasette:11.3f} {sum(r['errors'] for r in runs):6d}"
        )
    return lines


def csv_records(data):
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def export_comparison(args, bases):
    """Seconds for the whole CSV export over HTTP beside sqlite3 -csv on the same join."""
    app, cli = [], []
    for _ in range(args.export_runs):
        started = time.perf_counter()
        status, body = fetch(bases["cached"] + "/api/v1/exports/ties.csv")
        app.append(time.perf_counter() - started)
        assert status == 200, status
        started = time.perf_counter()
        done = subprocess.run(
            ["sqlite3", "-readonly", "-csv", "-header", args.db, EXPORT_SQL],
            capture_output=True,
            check=True,
        )
        cli.append(time.perf_counter() - started)
    ours, theirs = csv_records(body), csv_records(done.stdout)
    same_records = ours == theirs
    app_s, cli_s = statistics.median(app), statistics.median(cli)
    return [
        f"{'CSV export of every tie':42} {'seconds':>8} {'MB':>6} {'rows':>7}",
        f"{'/api/v1/exports/ties.csv (cached server)':42} {app_s:8.2f} "
        f"{len(body) / 1e6:6.1f} {len(ours) - 1:7,}",
        f"{'sqlite3 -csv, same join and columns':42} {cli_s:8.2f} "
        f"{len(done.stdout) / 1e6:6.1f} {len(theirs) - 1:7,}",
        f"ratio export / sqlite3: {app_s / cli_s:.1f}× slower (medians of {args.export_runs} "
        f"runs); same records, field by field: {'yes' if same_records else 'no'}; "
        f"same bytes: {'yes' if body == done.stdout else 'no'}",
    ]


def page_sizes(bases, atlas):
    lines = []
    city_slug, city_name, _n = atlas["city"]
    pages = [(f"profile of {city_name}", f"/cities/{city_slug}/")]
    if atlas["organization"]:
        slug, name, _n = atlas["organization"]
        pages.append((f"profile of {name}", f"/organizations/{slug}/"))
    for label, path in pages:
        _status, body = fetch(bases["cached"] + path)
        lines.append(f"HTML of the {label} ({path}): {len(body):,} bytes")
    return lines


def main():
    args = parse_args()
    args.project = str(Path(args.project).resolve())
    args.db = str(Path(args.db).resolve())
    ensure_tools()
    load_before = os.getloadavg()
    started_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    environ = base_environ(args, args.db)
    atlas = build_atlas(args, environ)
    if args.redis:
        import redis

        redis.Redis.from_url(args.redis).flushdb()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as workdir:
        servers = Servers(workdir)
        try:
            bases, datasette_path = start_servers(args, environ, servers, workdir)
            same = check_same_ties(bases, datasette_path)
            plan = targets(atlas, datasette_path)
            results = measure(args, bases, plan)
            exports = export_comparison(args, bases)
            sizes = page_sizes(bases, atlas)
        finally:
            servers.stop()
    load_after = os.getloadavg()
    cache = f"Redis {args.redis}" if args.redis else "SINGLE_PROCESS=true (cache per process)"
    report = [
        f"bench_http.py, label {args.label!r}, {started_at.isoformat()}",
        f"checkout measured: {args.project} at {checkout_of(args.project)}",
        f"machine: {platform.node()}, {os.cpu_count()} cores; {versions()}",
        "load average (1, 5, 15 min) before: "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after: "
        + ", ".join(f"{x:.2f}" for x in load_after),
        f"atlas: {args.db}, {atlas['ties']:,} ties, {atlas['cities']:,} cities",
        f"app servers: gunicorn, {args.workers} sync workers each, DEBUG off, {cache}; "
        "uncached = READ_CACHE=false",
        "Datasette: one process, --immutable, canned query ties100 (?_shape=array)",
        f"first 100 ties: {same}",
        f"wrk: {args.threads} thread, {args.connections} connections, {args.seconds} s per "
        f"measurement, {args.rounds} interleaved rounds; medians of the rounds; ratios taken "
        "within each round",
        "",
        *table(plan, results),
        "",
        *exports,
        "",
        *sizes,
    ]
    text = "\n".join(report) + "\n"
    print("\n" + text)
    out = BENCH / "results" / f"http-{args.label}.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(f"Written to {out}")


if __name__ == "__main__":
    main()
