"""Two app servers sharing Redis, as in production: a page cached by one is answered by the
other, and a write from a third process shows on the very next request to either."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def redis_answers():
    host, port = REDIS.split("//")[1].split("/")[0].split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not redis_answers(), reason=f"no Redis at {REDIS}")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    database = tmp_path_factory.mktemp("servers") / "atlas.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": REDIS,
        # DEBUG keeps static files unhashed, so no collectstatic is needed first.
        "DEBUG": "true",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
    shell(env, "make", "Yokohama", "Vancouver")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import redis, sys; redis.Redis.from_url(sys.argv[1]).flushdb()",
            REDIS,
        ],
        check=True,
    )
    return env


def shell(env, *args):
    """Writes from a process of its own, as a curator's command would."""
    code = (
        "import os\n"
        "from cities.models import City\n"
        "from partnerships.models import Tie\n"
        "what, *names = os.environ['ATLAS_WRITE'].split(',')\n"
        "if what == 'make':\n"
        "    a, b = (City.objects.create(name=n, slug=n.lower(), country='JP') for n in names)\n"
        "    Tie.objects.create(city_a=a, city_b=b, kind='sister')\n"
        "else:\n"
        "    City.objects.filter(slug=names[0]).update(name=names[1])\n"
    )
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        env={**env, "ATLAS_WRITE": ",".join(args)},
        check=True,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def servers(environment):
    ports, processes = [], []
    for _ in range(2):
        port = free_port()
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "cityDiplomacy.wsgi",
                    "--workers",
                    "1",
                    "--bind",
                    f"127.0.0.1:{port}",
                ],
                env=environment,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        ports.append(port)
    try:
        for port in ports:
            deadline = time.monotonic() + 60
            while True:
                try:
                    get(port, "/about/")
                    break
                except (OSError, ConnectionError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        yield ports
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


def get(port, path):
    # One public host name for both, as behind a load balancer.
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Host": "localhost"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers.get("X-Read-Cache"), response.read().decode()


def test_a_write_shows_on_the_next_request_to_either_server(environment, servers):
    first, second = servers
    outcome, page = get(first, "/cities/vancouver/")
    assert outcome == "miss" and "Yokohama" in page
    outcome, page = get(second, "/cities/vancouver/")
    assert outcome == "hit" and "Yokohama" in page  # cached by the other server

    shell(environment, "rename", "yokohama", "Yokohama-shi")

    outcome, page = get(second, "/cities/vancouver/")
    assert outcome == "miss" and "Yokohama-shi" in page
    outcome, page = get(first, "/cities/vancouver/")
    assert outcome == "hit" and "Yokohama-shi" in page
