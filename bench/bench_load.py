"""The production load test: two app servers on PostgreSQL and Redis, readers and bad logins.

    .venv/bin/python bench/bench_load.py [--duration 300] [--concurrency 20] [--label current]
    .venv/bin/python bench/bench_load.py --skip-build --duration 30 --label quick

Needs `wrk` (Debian: `apt-get install -y wrk`, done here when missing and run as root), a
PostgreSQL server (`--database-url`, default postgres://postgres@127.0.0.1:5432/cd_load) and a
Redis server (`--redis-url`, default redis://127.0.0.1:6379/12, emptied first).

1. Creates the database when it is missing, then `manage.py migrate`, `build_atlas` (3–5
   minutes the first time, nothing once built) and `collectstatic --noinput` (into
   /work/main/staticfiles, git-ignored); `--skip-build` goes straight to serving. Makes sure
   the account the bad logins aim at exists (`load-curator`, a random password never shown).
2. Starts two gunicorn app servers with gunicorn.conf.py (`--workers` sync workers each) on
   two loopback ports, configured as in production: DEBUG off, a random SECRET_KEY, Redis for
   the cache and the limits, the request log silenced; plain http (HTTPS=false) and
   anonymous API limits high enough that the readers are never throttled.
3. Picks the readers' paths from the database (bench/load_mix.lua reads them): home, city
   search and lists, the profiles of `--cities` cities, tie lists with filters, tie pages,
   comparisons, organizations, sources, API lists, details and comparisons, a few exports.
   Each path is requested once first and must answer 200; then a `--warmup` of load fills
   the read cache and brings every worker up.
4. Phase A: `--concurrency` readers for `--duration` seconds: one wrk process per server, each
   with half the connections, the same mix. Phase B: the same, while two other processes
   sign in with wrong passwords as fast as they can, one through the admin's form (GET
   /admin/login/ for the CSRF token, then POST, as a browser does) and one with HTTP Basic
   on POST /api/v1/ties/, both against the same account, from the same address, alternating
   between the servers. Failed sign-ins are counted by django-axes (`axes_reset_ip` and
   `axes_reset_username` start phase B with none), which answers 429 past the limit.
5. Reads the resident memory (RSS) and age of every gunicorn worker from /proc every second
   through both phases. gunicorn replaces a worker after max_requests (`--max-requests 0`:
   never), so the start and the end of the run are the first and the last moment at which
   every worker is at least 10 s old, past loading the project.

Prints one table and writes it to bench/results/load-<label>.txt, with the date, the commit and
the load average before and after. `--request-log DIR` also logs every request, keeps the
servers' logs in DIR and adds the servers' own time per category and the slowest requests
(that logging is not what production does, so use it to explain a figure, not to measure).
"""

import argparse
import base64
import datetime
import http.client
import json
import multiprocessing
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "load_mix.lua"
THROTTLE = "1000000000/minute"
ACCOUNT = "load-curator"

# Searches of the readers' mix: short and long names, common fragments, other languages.
SEARCH_TERMS = [
    "san", "odessa", "berlin", "york", "saint", "novo", "kyiv", "paris", "tokyo", "lima",
    "port", "bad", "gora", "wien", "nagoya", "accra", "rio", "malmo", "gdansk", "leon",
]  # fmt: skip


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=300, help="seconds of each phase")
    parser.add_argument("--concurrency", type=int, default=20, help="readers' connections")
    parser.add_argument("--label", default="current", help="names bench/results/load-LABEL.txt")
    parser.add_argument(
        "--skip-build", action="store_true", help="serve the database as it is (no migrate)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="seconds of load before phase A")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument(
        "--max-requests",
        type=int,
        help="GUNICORN_MAX_REQUESTS of the servers (default: gunicorn.conf.py's; "
        "0 never replaces a worker)",
    )
    parser.add_argument("--cities", type=int, default=200, help="city profiles in the mix")
    parser.add_argument(
        "--request-log",
        metavar="DIR",
        help="log every request (REQUEST_LOG_LEVEL=INFO), keep the servers' logs in DIR and "
        "add the servers' own time per category and the slowest requests to the report",
    )
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/cd_load", help="PostgreSQL"
    )
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/12", help="Redis database (emptied)"
    )
    return parser.parse_args()


# Machine and checkout ---------------------------------------------------------------------


def ensure_wrk():
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        sys.exit("wrk is missing: apt-get install -y wrk (as root), then run again.")
    print("Installing wrk with apt-get ...")
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)


def versions():
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    gunicorn = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--version"], capture_output=True, text=True
    ).stdout.strip()
    return f"Python {platform.python_version()}, {gunicorn}, {wrk.split(' [')[0]}"


def server_versions(database_url, redis_url):
    import psycopg
    import redis

    with psycopg.connect(database_url) as connection:
        postgres = connection.execute("SHOW server_version").fetchone()[0].split()[0]
    redis_version = redis.Redis.from_url(redis_url).info("server")["redis_version"]
    return f"PostgreSQL {postgres}, Redis {redis_version}"


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


def load_average():
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# The atlas ---------------------------------------------------------------------------------


def random_secret_key():
    """50 characters of letters, digits and punctuation, at least 20 of them different."""
    alphabet = string.ascii_letters + string.digits + "!#%&()*+,-./:;<=>?@[]^_{|}~"
    while True:
        key = "".join(secrets.choice(alphabet) for _ in range(50))
        if len(set(key)) >= 20:
            return key


def app_environ(args):
    """Production settings, as the README's "In production" gives them, on loopback."""
    environ = dict(os.environ)
    for name in (
        "READ_CACHE",
        "READ_CACHE_SECONDS",
        "SINGLE_PROCESS",
        "PYTHONPATH",
        "DJANGO_SETTINGS_MODULE",
        "WEB_CONCURRENCY",
        "GUNICORN_MAX_REQUESTS",
        "GUNICORN_TIMEOUT",
        "BIND",
        "HOST",
        "PORT",
        "CONN_MAX_AGE",
        "SIGN_IN_FAILURE_LIMIT",
        "SIGN_IN_COOLOFF_MINUTES",
        "API_NUM_PROXIES",
    ):
        environ.pop(name, None)
    environ.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        DEBUG="false",
        SECRET_KEY=random_secret_key(),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        REQUEST_LOG_LEVEL="INFO" if args.request_log else "WARNING",
        API_ANON_THROTTLE_RATE=THROTTLE,
        API_ANON_EXPORT_THROTTLE_RATE=THROTTLE,
        # Plain http on loopback: no redirect to https, cookies without the Secure flag.
        HTTPS="false",
    )
    return environ


def manage(environ, *command, quiet=False):
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *command],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    if not quiet and done.stdout.strip():
        print(done.stdout.rstrip())
    return done.stdout


def create_database(database_url):
    """Create the database of `database_url` when it is missing; True if it was."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    server = parts._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


ACCOUNT_CODE = f"""
import secrets
from django.contrib.auth import get_user_model
user, created = get_user_model().objects.get_or_create(
    username={ACCOUNT!r}, defaults={{"is_staff": True}}
)
if created:
    user.set_password(secrets.token_urlsafe(32))
    user.save()
"""


def prepare_database(args, environ):
    if args.skip_build:
        print(f"Serving {args.database_url} as it is (--skip-build).")
    else:
        created = create_database(args.database_url)
        print(("Building" if created else "Checking") + f" the atlas in {args.database_url} ...")
        started = time.perf_counter()
        manage(environ, "migrate", "--noinput", quiet=not created)
        manage(environ, "build_atlas")
        manage(environ, "collectstatic", "--noinput", quiet=True)
        print(f"  ready in {time.perf_counter() - started:.0f} s")
    manage(environ, "shell", "--no-imports", "-c", ACCOUNT_CODE, quiet=True)


def pick_paths(args):
    """The readers' mix: [(weight, category, path)], from what the database holds."""
    import psycopg

    with psycopg.connect(args.database_url) as connection:

        def column(query, *params):
            return [row[0] for row in connection.execute(query, params).fetchall()]

        ties = connection.execute("SELECT COUNT(*) FROM partnerships_tie").fetchone()[0]
        cities = connection.execute("SELECT COUNT(*) FROM cities_city").fetchone()[0]
        if not ties:
            sys.exit("The atlas has no ties: run without --skip-build to build it.")
        connected = column(
            """
            SELECT c.slug FROM (SELECT city_a_id AS city FROM partnerships_tie
                                UNION ALL SELECT city_b_id FROM partnerships_tie) ends
            JOIN cities_city c ON c.id = ends.city
            GROUP BY c.id ORDER BY COUNT(*) DESC, c.id LIMIT %s
            """,
            args.cities // 4,
        )
        # The rest of the profiles: cities with at least one tie, in a fixed shuffled order.
        others = column(
            """
            SELECT c.slug FROM cities_city c
            WHERE EXISTS (SELECT 1 FROM partnerships_tie t
                          WHERE t.city_a_id = c.id OR t.city_b_id = c.id)
              AND NOT c.slug = ANY(%s)
            ORDER BY md5(c.slug) LIMIT %s
            """,
            connected,
            args.cities - len(connected),
        )
        tie_ids = column("SELECT id FROM partnerships_tie ORDER BY md5(id::text) LIMIT 60")
        organizations = column(
            """
            SELECT o.slug FROM partnerships_organization o
            LEFT JOIN partnerships_membership m ON m.organization_id = o.id
            GROUP BY o.id ORDER BY COUNT(m.id) DESC, o.id LIMIT 30
            """
        )
        countries = column(
            "SELECT country FROM cities_city GROUP BY country ORDER BY COUNT(*) DESC LIMIT 8"
        )
        themes = column("SELECT slug FROM cities_theme ORDER BY slug LIMIT 5")
        sources = column("SELECT slug FROM cities_source ORDER BY md5(slug) LIMIT 10")

    top, profiles = connected[:12], connected + others
    pairs = [f"{a},{b}" for a, b in zip(top[0::2], top[1::2], strict=False)]
    pairs += [f"{a},{b}" for a, b in zip(top, others[:12], strict=False)]
    pairs += [f"{a},{b},{c}" for a, b, c in zip(top, top[3:], others[20:], strict=False)][:6]
    # What the readers ask for, by category: (relative weight, paths); within a category
    # every path is equally likely. Profiles and lists dominate, as on a public atlas with a
    # partner API beside it; whole exports are rare.
    decades = ["1950", "1960", "1970", "1980", "1990", "2000", "2010"]
    mix = {
        "home": (6, ["/"]),
        "city search": (8, [f"/cities/?q={quote(t)}" for t in SEARCH_TERMS]),
        "city list": (
            3,
            ["/cities/", "/cities/?kind=sister", "/cities/?page=3"]
            + [f"/cities/?country={c}" for c in countries],
        ),
        "city profile": (30, [f"/cities/{slug}/" for slug in profiles]),
        "tie list": (
            9,
            ["/ties/", "/ties/?kind=sister", "/ties/?ordering=-start", "/ties/?page=5"]
            + [f"/ties/?country={c}" for c in countries[:5]]
            + [f"/ties/?decade={d}" for d in decades]
            + [f"/ties/?theme={t}" for t in themes[:2]]
            + [f"/ties/?city={slug}" for slug in top[:4]]
            + [f"/ties/?kind=partner&country={countries[0]}&decade=1990"],
        ),
        "tie page": (4, [f"/ties/{pk}/" for pk in tie_ids[:40]]),
        "comparison": (5, [f"/compare/?{urlencode({'cities': p}, safe=',')}" for p in pairs]),
        "organizations": (
            6,
            ["/organizations/"] + [f"/organizations/{slug}/" for slug in organizations],
        ),
        "sources": (1, ["/sources/"] + [f"/sources/{slug}/" for slug in sources]),
        "API list": (
            9,
            [
                "/api/v1/ties/",
                "/api/v1/ties/?page_size=100",
                f"/api/v1/ties/?kind=sister&country={countries[0]}",
                "/api/v1/cities/",
                "/api/v1/cities/?q=san",
                "/api/v1/cities/?q=odessa",
                "/api/v1/organizations/",
                "/api/v1/memberships/",
                "/api/v1/sources/",
                "/api/v1/themes/",
            ]
            + [f"/api/v1/ties/?city={slug}" for slug in top[:6]],
        ),
        "API detail": (
            7,
            [f"/api/v1/cities/{slug}/" for slug in profiles[:60]]
            + [f"/api/v1/ties/{pk}/" for pk in tie_ids[20:60]]
            + [f"/api/v1/organizations/{slug}/" for slug in organizations[:10]],
        ),
        "API compare": (
            1.8,
            [f"/api/v1/compare/?{urlencode({'cities': p}, safe=',')}" for p in pairs[:8]],
        ),
        "export (filtered)": (
            1,
            [
                f"/api/v1/exports/ties.csv?country={countries[1]}",
                f"/api/v1/exports/ties.geojson?city={top[0]}",
                f"/api/v1/exports/ties.gexf?country={countries[2]}",
                "/api/v1/exports/ties.graphml?kind=friendship",
                "/api/v1/exports/sources.json",
                "/api/v1/exports/sources.bib",
            ],
        ),
        "export (whole atlas)": (0.2, ["/api/v1/exports/ties.csv"]),
    }
    paths = []
    for category, (weight, category_paths) in mix.items():
        unique = list(dict.fromkeys(category_paths))
        paths += [(weight / len(unique), category, path) for path in unique]
    summary = {"ties": ties, "cities": cities, "top": top[0] if top else None}
    return paths, mix, summary


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

    def wait_ready(self, name, url, timeout=120):
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
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes = {}


def gunicorn_limits(environ):
    """max_requests and its jitter, as gunicorn.conf.py sets them for this environment."""
    code = (
        "import runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(c.get('max_requests', 0), c.get('max_requests_jitter', 0))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True
    )
    try:
        limit, jitter = (int(x) for x in done.stdout.split())
    except ValueError:
        return "unknown"
    return f"{limit:,} + up to {jitter:,}" if limit else "0 (never replaced)"


def start_servers(args, environ, servers):
    """Two gunicorn servers with gunicorn.conf.py; returns {name: port}."""
    ports = {}
    for name, port in zip(("server 1", "server 2"), free_ports(2), strict=True):
        extra = {"BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(args.workers)}
        if args.max_requests is not None:
            extra["GUNICORN_MAX_REQUESTS"] = str(args.max_requests)
        command = [
            sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
            "cityDiplomacy.wsgi:application",
        ]  # fmt: skip
        servers.start(name, command, cwd=ROOT, env=dict(environ, **extra))
        ports[name] = port
    for name, port in ports.items():
        servers.wait_ready(name, f"http://127.0.0.1:{port}/readyz")
    return ports


# Worker memory -----------------------------------------------------------------------------


def children(pid):
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return sorted(int(child) for child in found)
    except OSError:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
        return sorted(found)


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


_TICKS = os.sysconf("SC_CLK_TCK")


def age_seconds(pid):
    """How long ago the process started (field 22 of /proc/PID/stat, against /proc/uptime)."""
    try:
        started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return uptime - started / _TICKS


def worker_memory(servers):
    """{server name: {worker pid: (RSS in KiB, age in s)}} for every gunicorn worker."""
    memory = {}
    for name, process in servers.processes.items():
        memory[name] = {}
        for pid in children(process.pid):
            rss, age = rss_kib(pid), age_seconds(pid)
            if rss is not None and age is not None:
                memory[name][pid] = (rss, age)
    return memory


# A worker's memory counts once it has loaded the project and served for this long.
SETTLED_AGE = 10


class MemorySampler(threading.Thread):
    """Every second: the RSS and age of every worker. gunicorn replaces workers after
    max_requests, so the run's start and end are read at the first and the last sample in
    which every worker is at least SETTLED_AGE seconds old."""

    def __init__(self, servers, workers):
        super().__init__(daemon=True)
        self.servers = servers
        self.expected = workers
        self.samples = []
        self.peak = {}
        self.halt = threading.Event()

    def sample(self):
        snapshot = worker_memory(self.servers)
        self.samples.append((time.monotonic(), snapshot))
        for workers in snapshot.values():
            for pid, (rss, _age) in workers.items():
                self.peak[pid] = max(rss, self.peak.get(pid, 0))

    def run(self):
        self.sample()
        while not self.halt.wait(1):
            self.sample()

    def settled(self):
        return [
            (at, snapshot)
            for at, snapshot in self.samples
            if all(
                len(workers) == self.expected
                and all(age >= SETTLED_AGE for _rss, age in workers.values())
                for workers in snapshot.values()
            )
        ]


# Readers -----------------------------------------------------------------------------------


def fetch(port, path, timeout=120):
    """The status of one GET, redirects not followed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Accept-Encoding": "gzip"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def preflight(ports, paths):
    """Every path once on each server: each must answer 200 (not even a redirect). This also
    fills the read cache, whose answers are filed under the address, port included."""
    print(f"Requesting each of the {len(paths)} paths once on each server ...")
    started = time.perf_counter()
    failures = []
    for _weight, category, path in paths:
        for port in ports.values():
            status = fetch(port, path)
            if status != 200:
                failures.append(f"  {status} {category}: {path} (port {port})")
    if failures:
        sys.exit("These paths did not answer 200:\n" + "\n".join(failures))
    print(f"  all 200, in {time.perf_counter() - started:.0f} s")


def run_readers(args, ports, paths_file, workdir, phase, seconds):
    """One wrk process per server, the connections split between them; their results."""
    names = list(ports)
    split = [args.concurrency // 2 + args.concurrency % 2, args.concurrency // 2]
    processes = []
    for n, (name, connections) in enumerate(zip(names, split, strict=True), start=1):
        if connections == 0:
            continue
        out = Path(workdir) / f"wrk-{phase}-{n}.json"
        environ = dict(
            os.environ,
            LOAD_PATHS=str(paths_file),
            LOAD_OUT=str(out),
            LOAD_TAG=f"{phase}{n}",
            LOAD_SEED=str(random.randrange(1, 10**6)),
        )
        command = [
            "wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "20s",
            "-s", str(LUA), f"http://127.0.0.1:{ports[name]}/",
        ]  # fmt: skip
        processes.append((out, subprocess.Popen(command, env=environ, stdout=subprocess.PIPE)))
    results = []
    for out, process in processes:
        stdout, _ = process.communicate()
        if process.returncode != 0 or not out.exists():
            sys.exit(f"wrk failed ({process.returncode}):\n{stdout.decode()}")
        results.append(json.loads(out.read_text()))
    return results


def merged_percentile(results, fraction):
    """Latency (ms) at `fraction` of all requests of several wrk runs, from their grids."""
    total = sum(r["requests"] for r in results)
    grids = [(r["requests"], r["latency"]["grid"]) for r in results]
    candidates = sorted({value for _n, grid in grids for _p, value in grid})
    for value in candidates:
        below = 0.0
        for requests, grid in grids:
            share = max((p for p, v in grid if v <= value), default=0.0) / 100
            below += requests * share
        if below >= fraction * total - 1e-9:
            return value / 1000
    return candidates[-1] / 1000 if candidates else float("nan")


def summarize(results, seconds):
    classes = Counter()
    unexpected = Counter()
    errors = Counter()
    for r in results:
        classes.update(r["classes"])
        unexpected.update(r["unexpected"])
        errors.update(r["errors"])
    requests = sum(r["requests"] for r in results)
    duration = max(r["duration_us"] for r in results) / 1e6 or seconds
    return {
        "requests": requests,
        "rate": requests / duration,
        "classes": classes,
        "unexpected": unexpected,
        "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        "p50": merged_percentile(results, 0.50),
        "p99": merged_percentile(results, 0.99),
        "p999": merged_percentile(results, 0.999),
        "max": max(r["latency"]["max"] for r in results) / 1000,
    }


# Bad logins --------------------------------------------------------------------------------


def _send(connections, port, method, path, body=None, headers=None):
    """One request on a kept connection (reopened when the server closed it)."""
    connection = connections[port]
    for attempt in (1, 2):
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
            return response, data
        except (ConnectionError, http.client.HTTPException, OSError):
            connection.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def admin_logins(ports, stop, results):
    """Wrong passwords through the admin's sign-in form, as a browser sends them."""
    connections = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=60) for p in ports}
    statuses, pages, cookies = Counter(), Counter(), SimpleCookie()
    attempts, started, timings = 0, time.monotonic(), []
    while not stop.is_set():
        port = ports[attempts % len(ports)]
        attempts += 1
        cookie = "; ".join(f"{k}={m.value}" for k, m in cookies.items())
        try:
            response, page = _send(
                connections, port, "GET", "/admin/login/?next=/admin/", headers={"Cookie": cookie}
            )
            pages[response.status] += 1
            for header in response.headers.get_all("Set-Cookie") or []:
                cookies.load(header)
            token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
            if response.status != 200 or not token:
                continue
            form = urlencode(
                {
                    "csrfmiddlewaretoken": token.group(1).decode(),
                    "username": ACCOUNT,
                    "password": f"wrong-{attempts}-{secrets.token_hex(4)}",
                    "next": "/admin/",
                }
            )
            cookie = "; ".join(f"{k}={m.value}" for k, m in cookies.items())
            sent = time.monotonic()
            response, _body = _send(
                connections,
                port,
                "POST",
                "/admin/login/?next=/admin/",
                body=form,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Cookie": cookie,
                    "Origin": f"http://127.0.0.1:{port}",
                    "Referer": f"http://127.0.0.1:{port}/admin/login/?next=/admin/",
                },
            )
            statuses[response.status] += 1
            timings.append((sent - started, (time.monotonic() - sent) * 1000, response.status))
        except (ConnectionError, http.client.HTTPException, OSError):
            statuses["connection error"] += 1
    results.put(
        {
            "kind": "admin",
            "statuses": dict(statuses),
            "pages": dict(pages),
            "seconds": time.monotonic() - started,
            "timings": timings,
        }
    )


def api_logins(ports, stop, results):
    """Wrong HTTP Basic passwords on the API's tie creation, as a script sends them."""
    connections = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=60) for p in ports}
    body = json.dumps({"city_a": "yokohama", "city_b": "odesa", "kind": "partner"})
    statuses, attempts, started, timings = Counter(), 0, time.monotonic(), []
    while not stop.is_set():
        port = ports[attempts % len(ports)]
        attempts += 1
        secret = f"{ACCOUNT}:wrong-{attempts}-{secrets.token_hex(4)}".encode()
        headers = {
            "Authorization": "Basic " + base64.b64encode(secret).decode(),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        try:
            sent = time.monotonic()
            response, _body = _send(connections, port, "POST", "/api/v1/ties/", body, headers)
            statuses[response.status] += 1
            timings.append((sent - started, (time.monotonic() - sent) * 1000, response.status))
        except (ConnectionError, http.client.HTTPException, OSError):
            statuses["connection error"] += 1
    results.put(
        {
            "kind": "api",
            "statuses": dict(statuses),
            "seconds": time.monotonic() - started,
            "timings": timings,
        }
    )


def forget_attempt_rows(database_url):
    """The bad logins' rows a database handler of django-axes kept from earlier runs (with
    the cache handler, the reset commands above leave them), so that B reports its own."""
    import psycopg

    with psycopg.connect(database_url) as connection:
        connection.execute("DELETE FROM axes_accessattempt WHERE username = %s", [ACCOUNT])


def run_phase(args, ports, paths_file, workdir, phase, environ=None):
    """Readers for --duration; in phase B with the two bad-login loops beside them."""
    attackers, stop, queue = [], None, None
    if phase == "B":
        # Per address and per account: the cache handler cannot clear everything at once.
        manage(environ, "axes_reset_ip", "127.0.0.1", quiet=True)
        manage(environ, "axes_reset_username", ACCOUNT, quiet=True)
        forget_attempt_rows(args.database_url)
        context = multiprocessing.get_context("spawn")
        stop, queue = context.Event(), context.Queue()
        for target in (admin_logins, api_logins):
            process = context.Process(target=target, args=(list(ports.values()), stop, queue))
            process.start()
            attackers.append(process)
        time.sleep(1)
    load_before = load_average()
    print(f"Phase {phase}: {args.concurrency} readers for {args.duration} s ...")
    results = run_readers(args, ports, paths_file, workdir, phase, args.duration)
    logins = {}
    if attackers:
        stop.set()
        for _ in attackers:
            found = queue.get(timeout=120)
            logins[found["kind"]] = found
        for process in attackers:
            process.join(timeout=30)
    summary = summarize(results, args.duration)
    summary.update(logins=logins, load=(load_before, load_average()))
    return summary


# Report ------------------------------------------------------------------------------------


def mib(kib):
    return kib / 1024


def memory_lines(sampler, began):
    settled = sampler.settled()
    note = f"every worker at least {SETTLED_AGE} s old"
    if len(settled) < 2:
        settled, note = sampler.samples, "NOT settled: workers younger than 10 s"
    (start_at, start), (end_at, end) = settled[0], settled[-1]
    lines = [
        f"start: {start_at - began:+.0f} s from the start of phase A, end: "
        f"{end_at - began:+.0f} s ({note})",
        f"{'server':9} {'worker pid':>10} {'RSS start MB':>12} {'RSS end MB':>10}",
    ]
    for name in start:
        for pid in sorted(set(start[name]) | set(end.get(name, {}))):
            before, after = start[name].get(pid), end.get(name, {}).get(pid)
            lines.append(
                f"{name:9} {pid:>10} "
                + (f"{mib(before[0]):12.1f}" if before else f"{'-':>12}")
                + " "
                + (f"{mib(after[0]):10.1f}" if after else f"{'-':>10}")
            )
    total_start = sum(rss for w in start.values() for rss, _age in w.values())
    total_end = sum(rss for w in end.values() for rss, _age in w.values())
    count_start = sum(len(w) for w in start.values())
    count_end = sum(len(w) for w in end.values())
    growth = (total_end - total_start) / total_start * 100 if total_start else float("nan")

    def pids(snapshots):
        return {pid for snapshot in snapshots for workers in snapshot.values() for pid in workers}

    first = pids(snapshot for _at, snapshot in sampler.samples[:1])
    seen = pids(snapshot for _at, snapshot in sampler.samples)
    kept = len(pids([start]) & pids([end]))
    peak = max(sampler.peak.values(), default=0)
    # A replaced worker's last sample: its size after serving its max_requests.
    last_seen = {}
    for at, snapshot in sampler.samples:
        for workers in snapshot.values():
            for pid, (rss, _age) in workers.items():
                last_seen[pid] = (at, rss)
    ended = sorted(last_seen[pid] for pid in seen - pids([sampler.samples[-1][1]]))
    if len(ended) >= 8:
        quarter = len(ended) // 4
        lines.append(
            f"replaced workers' last RSS (median MB), first / last quarter of the "
            f"{len(ended)} replaced: {mib(_quantile([r for _a, r in ended[:quarter]], 0.5)):.1f}"
            f" / {mib(_quantile([r for _a, r in ended[-quarter:]], 0.5)):.1f}"
        )
    lines += [
        f"all workers: {mib(total_start):.1f} MB ({count_start}) at the start, "
        f"{mib(total_end):.1f} MB ({count_end}) at the end: {growth:+.1f}% "
        f"(target under +10%: {'met' if growth < 10 else 'NOT met'})",
        f"workers started by gunicorn during the phases (max_requests): {len(seen - first)}; "
        f"workers of the start still running at the end: {kept} of {count_start}; largest RSS "
        f"of any worker, sampled every second: {mib(peak):.1f} MB",
    ]
    return lines


def server_errors(servers):
    """Tracebacks and error lines the servers logged, with a sample."""
    lines, sample = 0, []
    for name, log in servers.logs.items():
        for line in log.read_text(errors="replace").splitlines():
            if re.search(r"Traceback|Internal Server Error|\[ERROR\]|WORKER TIMEOUT", line):
                lines += 1
                if len(sample) < 8:
                    sample.append(f"  {name}: {line[:150]}")
    return lines, sample


def worker_restarts(servers, workers):
    """gunicorn's own account of max_requests: how many workers it restarted, and how often
    every worker of one server restarted within 10 s of each other (the server then has no
    worker ready until a new one has loaded the project)."""
    stamp = re.compile(r"^\[([\d-]+ [\d:]+) [^\]]*\] \[\d+\] \[INFO\] Autorestarting worker")
    total, together = 0, 0
    for log in servers.logs.values():
        times = []
        for line in log.read_text(errors="replace").splitlines():
            if found := stamp.match(line):
                times.append(datetime.datetime.fromisoformat(found.group(1)).timestamp())
        total += len(times)
        times.sort()
        i = 0
        while i < len(times):
            j = i
            while j + 1 < len(times) and times[j + 1] - times[i] <= 10:
                j += 1
            if j - i + 1 >= workers:
                together += 1
            i = j + 1
    return total, together


def _quantile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def request_log_lines(servers, paths):
    """The servers' own time (ms from the request log) per phase and category, and the
    slowest requests; the X-Request-ID the readers send names the phase and the path."""
    times, slowest, boots = {}, [], 0
    for name, log in servers.logs.items():
        for line in log.read_text(errors="replace").splitlines():
            if "Booting worker" in line:
                boots += 1
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            found = re.match(r"load([A-Z])\d+-\d+-(\d+)-", entry.get("request_id") or "")
            if not found:
                continue
            phase, index = found.group(1), int(found.group(2))
            category = paths[index - 1][1] if 0 < index <= len(paths) else "?"
            times.setdefault((phase, category), []).append(entry["ms"])
            if phase in "AB":
                slowest.append((entry["ms"], phase, name, entry["status"], entry["path"]))
    lines = [
        "servers' own time per request (request log, ms), by phase and category:",
        f"{'category':22} {'A: n':>7} {'p50':>6} {'p99':>7} {'B: n':>7} {'p50':>6} {'p99':>7}",
    ]
    for category in dict.fromkeys(category for _w, category, _p in paths):
        cells = []
        for phase in "AB":
            values = times.get((phase, category), [])
            if values:
                cells.append(
                    f"{len(values):7,} {_quantile(values, 0.5):6.1f} {_quantile(values, 0.99):7.1f}"
                )
            else:
                cells.append(f"{0:7} {'-':>6} {'-':>7}")
        lines.append(f"{category:22} {cells[0]} {cells[1]}")
    lines.append("slowest requests of phases A and B (server time):")
    for ms, phase, name, status, path in sorted(slowest, reverse=True)[:10]:
        lines.append(f"  {ms:8.1f} ms  {phase}  {name}  {status}  {path}")
    lines.append(f"workers booted in all (gunicorn's log, both servers): {boots}")
    return lines


def login_trend(found):
    """Median time of a wrong password's 429 answer (client side, queueing included) in the
    first and the last tenth of those answers: whether refusing gets dearer as they pile up."""
    refused = [ms for _t, ms, status in found["timings"] if status == 429]
    if len(refused) < 20:
        return "POST answered 429: too few to compare the first and the last"
    tenth = len(refused) // 10
    first, last = refused[:tenth], refused[-tenth:]
    return (
        f"429 answers, ms (client side), first / last tenth ({tenth} each): median "
        f"{_quantile(first, 0.5):.1f} / {_quantile(last, 0.5):.1f}, "
        f"p99 {_quantile(first, 0.99):.1f} / {_quantile(last, 0.99):.1f}"
    )


def attempt_rows(database_url, redis_url):
    """What django-axes keeps of the failed sign-ins: with its database handler a row per
    address, account and user agent, whose request data grows with every attempt it
    records; with its cache handler a counter per address and per account."""
    import psycopg
    import redis

    with psycopg.connect(database_url) as connection:
        rows, failures, largest = connection.execute(
            "SELECT COUNT(*), COALESCE(SUM(failures_since_start), 0), "
            "COALESCE(MAX(length(get_data) + length(post_data)), 0) FROM axes_accessattempt"
        ).fetchone()
    store = redis.Redis.from_url(redis_url)
    counters = [store.get(key) for key in store.scan_iter("*axes-*")]
    counts = [int(value) for value in counters if value and value.isdigit()]
    return (
        f"failed sign-ins django-axes holds after B: database {rows} rows ({failures:,} "
        f"failures, largest request data {largest / 1024:,.0f} KiB); Redis {len(counters)} "
        f"keys (highest count {max(counts, default=0):,})"
    )


def report(args, context, phases, memory, mix, paths):
    a, b = phases["A"], phases["B"]
    ratio = b["p99"] / a["p99"] if a["p99"] else float("nan")
    header = (
        f"{'phase':30} {'requests':>9} {'req/s':>7} {'5xx':>5} {'4xx':>5} {'3xx':>5} "
        f"{'sock err':>8} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} {'max ms':>7}"
    )
    lines = [header, "-" * len(header)]
    for label, phase in (("A: readers only", a), ("B: readers + bad logins", b)):
        c = phase["classes"]
        lines.append(
            f"{label:30} {phase['requests']:9,} {phase['rate']:7.1f} {c['5xx']:5} {c['4xx']:5} "
            f"{c['3xx']:5} {phase['socket_errors']:8} {phase['p50']:7.1f} {phase['p99']:7.1f} "
            f"{phase['p999']:8.1f} "
            f"{phase['max']:7.0f}"
        )
    lines += [
        f"p99(B) / p99(A): {ratio:.2f} (target at most 2: {'met' if ratio <= 2 else 'NOT met'}); "
        f"p50(B) / p50(A): {b['p50'] / a['p50']:.2f}; "
        f"req/s B / A: {b['rate'] / a['rate']:.2f}",
        f"load average during A: {a['load'][0]} -> {a['load'][1]}; "
        f"during B: {b['load'][0]} -> {b['load'][1]}",
        "",
        f"{'bad logins in phase B':34} {'attempts':>8} {'per s':>6} {'200':>6} {'401':>6} "
        f"{'429':>6} {'other':>6}",
    ]
    names = {"admin": "admin: POST /admin/login/", "api": "API: POST /api/v1/ties/ (Basic)"}
    for kind in ("admin", "api"):
        found = b["logins"].get(kind)
        if not found:
            lines.append(f"{names[kind]:34} (no result)")
            continue
        statuses = Counter(found["statuses"])
        total = sum(statuses.values())
        other = total - statuses[200] - statuses[401] - statuses[429]
        lines.append(
            f"{names[kind]:34} {total:8,} {total / found['seconds']:6.1f} {statuses[200]:6,} "
            f"{statuses[401]:6,} {statuses[429]:6,} {other:6,}"
        )
        extra = {k: v for k, v in statuses.items() if k not in (200, 401, 429)}
        if extra:
            lines.append(f"  other statuses: {extra}")
        if kind == "admin":
            lines.append(f"  GET /admin/login/ before each POST (CSRF token): {found['pages']}")
        lines.append("  " + login_trend(found))
    lines.append(context["attempt_rows"])
    lines += ["", "gunicorn workers' resident memory (RSS, from /proc/PID/status):"]
    lines += memory_lines(memory["sampler"], memory["began"])
    lines += ["", "unexpected statuses (anything but 200), both phases:"]
    unexpected = a["unexpected"] + b["unexpected"]
    if unexpected:
        for key, n in unexpected.most_common(15):
            lines.append(f"  {n:6,} × {key}")
    else:
        lines.append("  none")
    logged, sample = context["server_errors"]
    lines.append(f"error lines in the servers' logs: {logged}")
    lines += sample
    restarts, together = context["restarts"]
    lines.append(
        f"workers restarted by max_requests (gunicorn's log, warm-up included): {restarts}; "
        f"times all {args.workers} workers of one server restarted within 10 s: {together}"
    )
    if context.get("request_log"):
        lines += ["", *context["request_log"]]
    lines += ["", f"readers' mix: {len(paths)} paths, share of requests by category:"]
    total_weight = sum(weight for weight, _paths in mix.values())
    shares = [
        f"{category} {weight / total_weight * 100:.{0 if weight >= total_weight / 100 else 1}f}%"
        + (f" ({len(set(category_paths))})" if len(set(category_paths)) > 1 else "")
        for category, (weight, category_paths) in mix.items()
    ]
    for start in range(0, len(shares), 5):
        lines.append("  " + ", ".join(shares[start : start + 5]))

    intro = [
        f"bench_load.py, label {args.label!r}, {context['started_at']}",
        f"checkout: {ROOT} at {checkout_of(ROOT)}",
        f"machine: {platform.node()}, {os.cpu_count()} cores; {versions()}; "
        f"{context['servers_versions']}",
        f"load average (1, 5, 15 min) before: {context['load_before']}; after: "
        f"{context['load_after']}",
        f"atlas: {args.database_url}, {context['atlas']['ties']:,} ties, "
        f"{context['atlas']['cities']:,} cities; cache and limits: {args.redis_url}",
        f"app servers: 2 × gunicorn -c gunicorn.conf.py, {args.workers} sync workers each, "
        f"max_requests {context['max_requests']}, ports {context['ports']}; DEBUG off, "
        "HTTPS=false, REQUEST_LOG_LEVEL=WARNING, anonymous API limits "
        f"{THROTTLE}",
        f"readers: wrk, {args.concurrency} connections (one wrk process per server), "
        f"{args.duration} s per phase after a {args.warmup} s warm-up; latency of every "
        "request of both wrk processes (percentiles merged from their grids)",
        f"bad logins (B): one loop through the admin's form, one with HTTP Basic on the API, "
        f"account {ACCOUNT!r}, alternating servers; failed sign-ins reset before B",
        "",
    ]
    return intro + lines


# Main --------------------------------------------------------------------------------------


def main():
    args = parse_args()
    # Stopped from outside: stop the servers too (the `finally` below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("Stopped (SIGTERM)."))
    if args.duration < 1 or args.concurrency < 1:
        sys.exit("--duration and --concurrency must be at least 1.")
    ensure_wrk()
    context = {
        "load_before": load_average(),
        "started_at": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
    }
    environ = app_environ(args)
    limits = dict(environ)
    if args.max_requests is not None:
        limits["GUNICORN_MAX_REQUESTS"] = str(args.max_requests)
    context["max_requests"] = gunicorn_limits(limits)
    prepare_database(args, environ)
    paths, mix, context["atlas"] = pick_paths(args)
    context["servers_versions"] = server_versions(args.database_url, args.redis_url)
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    phases, memory = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as workdir:
        paths_file = Path(workdir) / "paths.tsv"
        paths_file.write_text(
            "".join(f"{weight:.6f}\t{category}\t{path}\n" for weight, category, path in paths)
        )
        logs = workdir
        if args.request_log:
            logs = Path(args.request_log).resolve()
            logs.mkdir(parents=True, exist_ok=True)
        servers = Servers(logs)
        try:
            ports = start_servers(args, environ, servers)
            context["ports"] = ", ".join(str(p) for p in ports.values())
            preflight(ports, paths)
            if args.warmup:
                print(f"Warming up for {args.warmup} s ...")
                run_readers(args, ports, paths_file, workdir, "W", args.warmup)
            sampler = MemorySampler(servers, args.workers)
            sampler.start()
            memory["began"] = time.monotonic()
            phases["A"] = run_phase(args, ports, paths_file, workdir, "A")
            phases["B"] = run_phase(args, ports, paths_file, workdir, "B", environ)
            context["attempt_rows"] = attempt_rows(args.database_url, args.redis_url)
            sampler.halt.set()
            sampler.join()
            memory["sampler"] = sampler
            context["server_errors"] = server_errors(servers)
            context["restarts"] = worker_restarts(servers, args.workers)
            if args.request_log:
                context["request_log"] = request_log_lines(servers, paths)
        finally:
            servers.stop()
    context["load_after"] = load_average()
    text = "\n".join(report(args, context, phases, memory, mix, paths)) + "\n"
    print("\n" + text)
    out = BENCH / "results" / f"load-{args.label}.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(f"Written to {out}")


if __name__ == "__main__":
    main()
