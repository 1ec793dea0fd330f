"""Partner API keys and the rate limits of the API.

A partner sends its key in the `X-API-Key` header. The key identifies the partner, who then
reads with its own, higher limit; a key never grants writes, which need a researcher's
account. Limits are counted in the default cache, which is Redis when REDIS_URL is set, so
every app server behind the load balancer sees the same counts.
"""

import time

from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling
from rest_framework.settings import api_settings

from .models import ApiKey

HEADER = "X-API-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Reads `X-API-Key`; a request without one passes on to the other authenticators."""

    def authenticate(self, request):
        raw = request.headers.get(HEADER, "").strip()
        if not raw:
            return None
        key = ApiKey.find(raw)
        if key is None:
            raise exceptions.AuthenticationFailed(
                "This API key is not known. Check that it was copied whole, or ask the "
                "atlas editors for a new one; without the header you read as a visitor."
            )
        if key.is_revoked:
            raise exceptions.AuthenticationFailed(
                f"This API key was revoked on {key.revoked_at:%Y-%m-%d}. Ask the atlas "
                "editors for a new one; without the header you read as a visitor."
            )
        # A key identifies a partner, not a person: the user stays anonymous, so the
        # write permissions (which need a researcher) refuse it.
        return AnonymousUser(), key

    def authenticate_header(self, request):
        return HEADER


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "partnerKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": HEADER,
            "description": "A partner key, created by the atlas editors and shown once.",
        }


def count_request(scope, ident, window):
    """Count one request of `ident` in the current fixed window of `window` seconds, in the
    shared cache: (count so far, when the window ends, seconds until then)."""
    now = time.time()
    start = int(now // window * window)
    key = f"throttle:{scope}:{ident}:{window}:{start}"
    # add() is a no-op when the key exists, so the window's expiry is set once.
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=window + 1)
        count = 1
    return count, start + window, start + window - now


def parse_rate(rate):
    """'60/minute' -> (60, 60). Refuses what DRF would silently misread."""
    try:
        count, period = rate.split("/")
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period.strip()[0]]
        return int(count), seconds
    except (ValueError, KeyError, IndexError, AttributeError):
        raise ImproperlyConfigured(
            f"An API rate limit looks like 60/minute or 5000/hour, not {rate!r}."
        ) from None


class ApiThrottle(throttling.BaseThrottle):
    """One limit per caller: a partner key by its own or the standard partner rate, a
    signed-in researcher by the user rate, anyone else by address at the anonymous rate.

    Counts requests in fixed windows with cache.incr(), which is atomic in Redis, so app
    servers never lose each other's counts (DRF's own throttles rewrite a list of
    timestamps, which loses counts under concurrency and grows with the limit).
    """

    def allow_request(self, request, view):
        scope, ident, limit, window = self.identify(request)
        count, reset, self._wait = count_request(scope, ident, window)
        request.rate_limit = (limit, max(limit - count, 0), reset)
        return count <= limit

    def identify(self, request):
        rates = api_settings.DEFAULT_THROTTLE_RATES
        if isinstance(request.auth, ApiKey):
            key = request.auth
            if key.requests_per_hour:
                return "key", key.pk, key.requests_per_hour, 3600
            return ("key", key.pk, *parse_rate(rates["partner"]))
        if request.user and request.user.is_authenticated:
            return ("user", request.user.pk, *parse_rate(rates["user"]))
        return ("anon", self.get_ident(request), *parse_rate(rates["anon"]))

    def wait(self):
        return max(1, round(self._wait))


def client_address(request):
    """The client's address as the API's limits see it: REMOTE_ADDR, or the entry of
    X-Forwarded-For that REST_FRAMEWORK's NUM_PROXIES trusts. Sign-in lockouts count by it."""
    return throttling.BaseThrottle().get_ident(request)


SCRIPT_SCHEME = 'Credentials realm="cityDiplomacy API"'


class ResearcherBasicAuthentication(authentication.BasicAuthentication):
    """HTTP Basic for researchers' scripts, with two guards.

    - **No password guessing**: failed sign-ins are counted per address and per account by
      django-axes, for the API and the admin together; past the limit the API answers 429
      before any password is hashed (hashing is what makes a guessing loop costly for
      everyone else).
    - **No browser prompt**: a refusal names a scheme browsers do not handle, so a browser
      never offers to remember a password that a cross-site page could then reuse.
    """

    def authenticate_credentials(self, userid, password, request=None):
        from axes.handlers.proxy import AxesProxyHandler
        from axes.helpers import get_cool_off

        if not AxesProxyHandler.is_allowed(request, {"username": userid}):
            cool_off = get_cool_off(request)
            raise exceptions.Throttled(
                wait=cool_off.total_seconds() if cool_off else None,
                detail="Too many failed sign-ins from this address or for this account: "
                "wait, then try again with the right password.",
            )
        return super().authenticate_credentials(userid, password, request)

    def authenticate_header(self, request):
        return SCRIPT_SCHEME


class ResearcherBasicScheme(OpenApiAuthenticationExtension):
    target_class = ResearcherBasicAuthentication
    name = "researcherBasic"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "A researcher's account, for writes. Reads need no sign-in.",
        }
