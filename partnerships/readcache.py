"""The read cache: public pages and anonymous API reads answered from the shared cache, and
never stale.

Every cached answer is filed under the **atlas version**, a one-row table
(`partnerships.AtlasVersion`) that database triggers move on with every committed write to
the atlas's tables — from the admin, the API, an import, a merge, a management command, a
reader's correction or a raw SQL session alike. The triggers live in the database, so no
code path can forget them; `install_version_triggers` (re)creates them after every
`migrate`, for every table of the atlas's apps, so a new model is covered without a
migration of its own.

- **SQLite**: one trigger per table and statement kind, bumping the row as part of the
  writing transaction (SQLite has one writer at a time, so this costs no concurrency).
- **PostgreSQL**: a deferred constraint trigger, which runs at commit time, once per
  transaction (a transaction-local setting remembers the statement it ran for, and every
  deferred trigger runs within the one COMMIT statement): the version row is
  locked only for the instant of the commit, always as a transaction's last lock, so writers
  neither queue behind each other's long work nor deadlock on it.

Either way the new version becomes visible in the same commit as the data, so a request
never sees a new version with old data; it may see an old version with new data, which only
files a fresh page under a key no later request asks for.

A request reads the version (one indexed row) and looks its answer up under the version,
the absolute URL, and what the answer varies on (compression; the `Accept` header for the
API). Staff and researchers — anyone with a session, HTTP Basic or a partner key — pass
through to fresh pages, as do pages that carry a CSRF token or set a cookie. Answers carry
an `ETag` and a `Last-Modified` from the version and answer `304 Not Modified` to a
revalidating client; `Cache-Control: no-cache` makes browsers and proxies revalidate on each
use, which costs the server one version read.
"""

import hashlib
import itertools
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.http import HttpResponse
from django.middleware.gzip import GZipMiddleware
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import http_date

# The apps whose tables make up the atlas: writes to them change what pages show.
ATLAS_APPS = ("cities", "partnerships")
# Tables whose writes change no public answer: the version itself, the partners' keys and
# the import jobs' progress (which the rows they write move on anyway).
NOT_ATLAS = {"partnerships_atlasversion", "partnerships_apikey", "partnerships_importjob"}

VERSION_TABLE = "partnerships_atlasversion"
TRIGGER = "atlas_version_bump"

SQLITE_BUMP = (
    f"UPDATE {VERSION_TABLE} SET counter = counter + 1, "
    "changed_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = 1;"
)
POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('atlas.version_bumped', true)
            IS DISTINCT FROM statement_timestamp()::text THEN
        PERFORM set_config('atlas.version_bumped', statement_timestamp()::text, true);
        INSERT INTO {VERSION_TABLE} (id, counter, changed_at) VALUES (1, 1, clock_timestamp())
        ON CONFLICT (id) DO UPDATE
            SET counter = {VERSION_TABLE}.counter + 1, changed_at = clock_timestamp();
    END IF;
    RETURN NULL;
END
$$;
"""


def atlas_tables():
    """Every table of the atlas's apps (history and many-to-many tables included)."""
    tables = set()
    for label in ATLAS_APPS:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            if model._meta.managed and not model._meta.proxy:
                tables.add(model._meta.db_table)
    return sorted(tables - NOT_ATLAS)


def install_version_triggers(using=DEFAULT_DB_ALIAS, **kwargs):
    """Create (or re-create) the triggers that move the atlas version on every write."""
    connection = connections[using]
    existing = set(connection.introspection.table_names())
    if VERSION_TABLE not in existing:
        return
    tables = [table for table in atlas_tables() if table in existing]
    quote = connection.ops.quote_name
    with transaction.atomic(using=using), connection.cursor() as cursor:
        left_out = [table for table in NOT_ATLAS if table in existing]
        if connection.vendor == "sqlite":
            for table in left_out:
                for event in ("INSERT", "UPDATE", "DELETE"):
                    cursor.execute(
                        f"DROP TRIGGER IF EXISTS {quote(f'{TRIGGER}_{table}_{event.lower()}')}"
                    )
            for table in tables:
                for event in ("INSERT", "UPDATE", "DELETE"):
                    name = quote(f"{TRIGGER}_{table}_{event.lower()}")
                    cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
                    cursor.execute(
                        f"CREATE TRIGGER {name} AFTER {event} ON {quote(table)} "
                        f"BEGIN {SQLITE_BUMP} END"
                    )
        elif connection.vendor == "postgresql":
            cursor.execute(POSTGRES_FUNCTION)
            for table in left_out:
                cursor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {quote(table)}")
            for table in tables:
                cursor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {quote(table)}")
                cursor.execute(
                    f"CREATE CONSTRAINT TRIGGER {TRIGGER} "
                    f"AFTER INSERT OR UPDATE OR DELETE ON {quote(table)} "
                    f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()"
                )


def current_version(using=DEFAULT_DB_ALIAS):
    """(token, changed_at) of the atlas as committed now: one primary-key read."""
    from .models import AtlasVersion

    row = AtlasVersion.objects.using(using).filter(id=1).values_list("counter", "changed_at")
    found = row.first()
    if found is None:
        # Only after a flush of every table (tests): start again, told apart by its time.
        try:
            with transaction.atomic(using=using):
                AtlasVersion.objects.using(using).create(id=1)
        except IntegrityError:
            pass
        found = row.first()
    counter, changed_at = found
    return f"{counter}.{changed_at.timestamp():.6f}", changed_at


def cache_enabled():
    return getattr(settings, "READ_CACHE", False)


def _has_credentials(request):
    cookies = request.COOKIES
    return (
        "HTTP_AUTHORIZATION" in request.META
        or "HTTP_X_API_KEY" in request.META
        or settings.SESSION_COOKIE_NAME in cookies
        or "messages" in cookies
    )


def is_public_read(request):
    """A read that every anonymous visitor would be answered alike."""
    return (
        request.method in ("GET", "HEAD")
        and not _has_credentials(request)
        and not request.path.startswith(READ_CACHE_SKIPS)
    )


# /data/ lists release folders, which are files, not atlas rows: no atlas version covers them.
READ_CACHE_SKIPS = ("/admin/", "/static/", "/healthz", "/readyz", "/data/")
CACHED_STATUSES = {200, 301, 404, 410}


def _storable(request, response):
    if response.status_code not in CACHED_STATUSES:
        return False
    if response.streaming and not getattr(response, "read_cache_whole", False):
        return False
    if response.cookies or request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        return False
    control = response.get("Cache-Control", "")
    return "private" not in control and "no-store" not in control


def _key(request, token):
    accepts_gzip = "gzip" in request.META.get("HTTP_ACCEPT_ENCODING", "")
    parts = [token, request.build_absolute_uri(), "gzip" if accepts_gzip else "identity"]
    if request.path.startswith("/api/"):
        parts.append(request.META.get("HTTP_ACCEPT", ""))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _last_modified(changed_at):
    """The version's time in whole seconds, once that second has passed: a date shared by
    two versions would make `If-Modified-Since` answer 304 for the older one's page, so a
    version younger than that goes out with its ETag alone."""
    if timezone.now() - changed_at < LAST_MODIFIED_SETTLES:
        return None
    return int(changed_at.timestamp())


LAST_MODIFIED_SETTLES = timedelta(seconds=2)


class ReadCacheMiddleware:
    """Answers public reads from the shared cache, filed under the atlas version."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.cache = caches[getattr(settings, "READ_CACHE_ALIAS", "default")]
        self.timeout = getattr(settings, "READ_CACHE_SECONDS", 24 * 3600)

    def __call__(self, request):
        if not cache_enabled() or not is_public_read(request):
            return self.get_response(request)
        token, changed_at = current_version()
        key = _key(request, token)
        stored = self.cache.get(f"page:{key}")
        if stored is not None:
            status, headers, content = stored
            response = HttpResponse(content, status=status)
            for header, value in headers:
                response.headers[header] = value
            outcome = "hit"
        else:
            response = self.get_response(request)
            if not _storable(request, response):
                return response
            if response.streaming:
                response = self._whole(response)
                if response.streaming:  # larger than the cache keeps: streamed on
                    return response
            self._label(response, key, changed_at)
            self.cache.set(
                f"page:{key}",
                (response.status_code, list(response.headers.items()), response.content),
                self.timeout,
            )
            outcome = "miss"
        # A revalidating client that holds this very answer gets no body.
        response = get_conditional_response(
            request,
            etag=response.get("ETag"),
            last_modified=_last_modified(changed_at),
            response=response,
        )
        response.headers["X-Read-Cache"] = outcome
        return response

    def _whole(self, response):
        """A streamed export gathered whole to be kept, up to READ_CACHE_MAX_BYTES; past
        that, the part read and the rest stream on as they come, and nothing is kept."""
        limit = getattr(settings, "READ_CACHE_MAX_BYTES", 32 * 1024 * 1024)
        chunks, size = [], 0
        stream = iter(response.streaming_content)
        for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                response.streaming_content = itertools.chain(chunks, stream)
                return response
        whole = HttpResponse(b"".join(chunks), status=response.status_code)
        for header, value in response.headers.items():
            whole.headers[header] = value
        return whole

    @staticmethod
    def _label(response, key, changed_at):
        if response.status_code != 200:
            return
        # The API's records carry an ETag of their content, which stays valid across versions.
        response.headers.setdefault("ETag", f'"{key[:32]}"')
        last_modified = _last_modified(changed_at)
        if last_modified is not None:
            response.headers["Last-Modified"] = http_date(last_modified)
        patch_cache_control(response, public=True, no_cache=True)


class PublicGZipMiddleware(GZipMiddleware):
    """Compresses public answers only. A page that carries a secret a third party could
    probe for through its compressed size (BREACH) — a CSRF token, or anything shown to a
    signed-in researcher — goes out uncompressed; Django also masks CSRF tokens anew on each
    answer and pads compressed answers by a random length."""

    def process_response(self, request, response):
        if request.META.get("CSRF_COOKIE_NEEDS_UPDATE") or not is_public_read(request):
            return response
        return super().process_response(request, response)
