"""gunicorn settings for `make serve`, read from the environment like the project's settings.

Requests are short: the longest page or export takes seconds, and long work (an admin import
of any size) runs in a background job, not in a request. So a request that runs past TIMEOUT
is a fault, and its worker is replaced; workers are also replaced after MAX_REQUESTS, which
keeps memory flat over weeks of traffic.
"""

import multiprocessing
import os

bind = os.environ.get(
    "BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
# Sync workers: the views do database work, not waiting; two per core and one more.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Often enough to bound slow growth, rarely enough that restarts (a second of imports each)
# do not show in the readers' latency: at 2,000, a server under 380 req/s restarted all its
# workers within ten seconds of each other 52 times in five minutes.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 4
# The project is loaded once, in the master: a replaced worker is a fork, ready at once,
# instead of a second of imports during which its server answers nobody. (No connection
# is opened at import, so none is shared between workers.)
preload_app = True
# The proxy in front terminates TLS and says so in X-Forwarded-Proto; trust it only from
# the addresses given (the default: the proxy runs on this machine).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The app writes one JSON line per request (partnerships/operations.py): no access log here.
accesslog = None
errorlog = "-"
# Worker heartbeats in memory, not on a disk that may stall.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
