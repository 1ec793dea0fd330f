"""Settings for cityDiplomacy, read from the environment only.

Every variable is documented in the README. Development defaults apply when DEBUG is on;
with DEBUG off the site refuses to start without a real SECRET_KEY and ALLOWED_HOSTS.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name, default):
    """Read a boolean variable; anything but a clear yes or no is an error."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name, default):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def envlist(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = envbool("DEBUG", True)

_DEV_SECRET = "dev-only-insecure-secret-key-change-me"
SECRET_KEY = os.environ.get("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not DEBUG and (
    not SECRET_KEY or SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 20
):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters, 20 of them "
        "different, when DEBUG is off: "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "partnerships.sites.AtlasAdminConfig",  # django.contrib.admin with the atlas's own site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "axes",
    "csp",
    "cities",
    "partnerships",
]

MIDDLEWARE = [
    # A request id and one JSON log line for every request, cached answers included.
    "partnerships.operations.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Addresses no database could look up (NUL) are refused before anything looks them up.
    "partnerships.operations.InputGuardMiddleware",
    # Public reads from the shared cache, before sessions and authentication are looked at.
    "partnerships.readcache.ReadCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Inside the CSRF middleware, so that it still sees whether the page used a token.
    "partnerships.readcache.PublicGZipMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Computed pages per client address (read-cache hits were answered above).
    "partnerships.operations.PageThrottleMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Answers a locked-out admin sign-in with its lockout page (django-axes).
    "axes.middleware.AxesMiddleware",
]

# Failed sign-ins, admin and API alike, are counted per address and per account; past the
# limit, signing in is refused — before any password is hashed — until the cool-off ends
# (or an Editor runs `manage.py axes_reset_username NAME` or `axes_reset_ip ADDRESS`).
# The address is the one the API's limits use.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("SIGN_IN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=envint("SIGN_IN_COOLOFF_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_CLIENT_IP_CALLABLE = "partnerships.apikeys.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_VERBOSE = False
# With Redis, failures are counted there, shared by the app servers and expiring with the
# cool-off; the database handler would append every failed request's data to one row
# (287 KiB after 1,500 bad logins in the load test).
AXES_HANDLER = (
    "axes.handlers.cache.AxesCacheHandler"
    if os.environ.get("REDIS_URL")
    else "axes.handlers.database.AxesDatabaseHandler"
)

ROOT_URLCONF = "cityDiplomacy.urls"
WSGI_APPLICATION = "cityDiplomacy.wsgi.application"
ASGI_APPLICATION = "cityDiplomacy.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
            ],
        },
    },
]

# Releases of the atlas (`manage.py release`, listed at /data/): a folder that every app
# server reads (shared storage in production), never part of the code's repository.
RELEASES_DIR = Path(os.environ.get("RELEASES_DIR", BASE_DIR / "var" / "releases"))
# The site's public address, for the citations of releases ("https://atlas.example.org").
SITE_URL = os.environ.get("SITE_URL", "").rstrip("/")

# SQLite by default so that a fresh machine needs nothing else; PostgreSQL in production.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=envint("CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT compilation: it pays off for long reports, not for a page's queries, and a
    # misestimated search once spent 1.4 s compiling a query that runs in 15 ms.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers go on while one writer writes; IMMEDIATE takes the write lock at
    # BEGIN, so two writers queue on the busy timeout instead of failing half-way.
    # Connections persist as on PostgreSQL: opening one parses the whole schema (its
    # tables, indexes and the read cache's triggers), some 5 ms a request otherwise.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if not DEBUG and not REDIS_URL and not envbool("SINGLE_PROCESS", False):
    # Throttle counts and cached pages must be shared by every app server.
    raise ImproperlyConfigured(
        "REDIS_URL must be set when DEBUG is off, so that all app servers share one cache "
        "and one count of API requests (SINGLE_PROCESS=true accepts a per-process cache)."
    )
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "citydiplomacy",
        }
    }
else:
    # One process only: fine for development and tests, not for several app servers.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 1000},
        }
    }

# Public pages and anonymous API reads are answered from the cache above, filed under the
# atlas version that every committed write moves on (partnerships/readcache.py), so a
# cached answer is never stale. READ_CACHE=false serves every request fresh.
READ_CACHE = envbool("READ_CACHE", True)
READ_CACHE_SECONDS = envint("READ_CACHE_SECONDS", 24 * 3600)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "admin:login"

# The curated seed data set: `manage.py loaddata seed`.
FIXTURE_DIRS = [BASE_DIR / "fixtures"]

# Kosovo has no ISO 3166-1 code yet; XK is the user-assigned code most datasets use.
COUNTRIES_OVERRIDE = {"XK": "Kosovo"}

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Features no page of the atlas uses, switched off for every page (partnerships/operations).
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), interest-cohort=()"
)
# Content-Security-Policy (django-csp): scripts and styles from the site's own files only;
# the few inline <script> and <style> blocks carry the request's nonce; no inline style
# attributes; nothing from any other origin (the front-end libraries are vendored).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# HTTPS (on by default when DEBUG is off): the site is served over HTTPS, behind a proxy
# that sends X-Forwarded-Proto. Plain http is redirected, browsers are told to come back
# over HTTPS only (HSTS) and cookies travel over HTTPS only. HTTPS=false is for a server
# reached over plain http on a private network (a benchmark on loopback, say).
HTTPS = envbool("HTTPS", not DEBUG)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # The load balancer asks /healthz and /readyz over plain http.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
    SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", True)
SILENCED_SYSTEM_CHECKS = [
    # Subdomains may be other sites of the host's owner, and preloading is a one-way
    # commitment for the whole domain: both are the operator's choice (the variables above).
    "security.W005",
    "security.W021",
]

# Anonymous pages computed per client address (cached pages are not counted); empty: no limit.
PAGE_THROTTLE_RATE = os.environ.get("PAGE_THROTTLE_RATE", "120/minute") or None

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # Researchers write with HTTP Basic (scripts) or the admin's session (browser); partners
    # read with X-API-Key. Basic comes first so that a refusal names how to sign in, in a
    # scheme browsers do not prompt for (partnerships/apikeys.py).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "partnerships.apikeys.ResearcherBasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "partnerships.apikeys.ApiKeyAuthentication",
    ],
    "DEFAULT_RENDERER_CLASSES": ["partnerships.fastrows.FastJSONRenderer"],
    # JSON only: a cross-site HTML form cannot send it without the browser asking first
    # (CORS preflight), which this API never allows.
    "DEFAULT_PARSER_CLASSES": ["partnerships.operations.StrictJSONParser"],
    # Numbered pages with a maximum page size; the tie list overrides it with keyset pages.
    "DEFAULT_PAGINATION_CLASS": "partnerships.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "partnerships.api.exception_handler",
    # Counted in the default cache: Redis when REDIS_URL is set, shared by all app servers.
    "DEFAULT_THROTTLE_CLASSES": ["partnerships.apikeys.ApiThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_ANON_THROTTLE_RATE", "60/minute"),
        "anon_export": os.environ.get("API_ANON_EXPORT_THROTTLE_RATE", "10/minute"),
        "partner": os.environ.get("API_KEY_THROTTLE_RATE", "10000/hour"),
        "user": os.environ.get("API_USER_THROTTLE_RATE", "5000/hour"),
    },
    # Behind a load balancer, the number of proxies whose X-Forwarded-For to trust; with 0
    # the client address is REMOTE_ADDR, which a client cannot forge.
    "NUM_PROXIES": envint("API_NUM_PROXIES", 0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "cityDiplomacy API",
    "DESCRIPTION": (
        "Typed, dated and sourced ties between cities, their networks and programmes.\n\n"
        "Anyone may read, within a rate limit per address; a partner key, sent as "
        "`X-API-Key`, has its own higher limit. Creating and changing ties, memberships and "
        "citations needs a researcher's account (HTTP Basic, or the admin's session).\n\n"
        'Errors always look like `{"status": 400, "code": "invalid", "detail": '
        '"…", "errors": {"field": ["…"]}}`.\n\n'
        "```\n"
        "curl 'https://HOST/api/v1/cities/?q=odessa'\n"
        "curl -H 'X-API-Key: KEY' 'https://HOST/api/v1/ties/?city=yokohama&kind=sister'\n"
        "curl -o ties.gexf 'https://HOST/api/v1/exports/ties.gexf?country=JP'\n"
        "curl 'https://HOST/api/v1/compare/?cities=yokohama,taipei'\n"
        "curl -u researcher -H 'Content-Type: application/json' "
        '-d \'{"city_a": "yokohama", "city_b": "odesa", "kind": "partner", '
        '"start": "2023-05"}\' https://HOST/api/v1/ties/\n'
        "```"
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc come from drf-spectacular-sidecar's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "partnerships.api.request_conventions",
    ],
    "ENUM_NAME_OVERRIDES": {
        "VerificationEnum": "cities.models.Verification",
        "SourceKindEnum": "cities.models.SourceKind",
        "NameKindEnum": "cities.models.NameKind",
        "TieKindEnum": "partnerships.models.TieKind",
        "OrganizationKindEnum": "partnerships.models.OrganizationKind",
        "InitiativeKindEnum": "partnerships.models.InitiativeKind",
        "EventKindEnum": "partnerships.models.EventKind",
    },
}

SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # Request lines are JSON already (partnerships/operations.py): written as they are.
        "bare": {"format": "%(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "requests": {"class": "logging.StreamHandler", "formatter": "bare"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "citydiplomacy.requests": {
            "handlers": ["requests"],
            "level": os.environ.get("REQUEST_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}
