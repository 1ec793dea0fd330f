"""Settings of the app servers that bench/bench_http.py starts: the project's own (read from
the environment as in production), plus the reference views of bench/http_urls.py.

Static files use the plain storage: the manifest of `collectstatic` is not built for a
benchmark, and a page costs the same either way (one dictionary look-up per file).
"""

from cityDiplomacy.settings import *  # noqa: F403

ROOT_URLCONF = "http_urls"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
