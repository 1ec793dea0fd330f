"""What operators and load balancers rely on: health endpoints, a request id on every answer
and one JSON log line per request, and answers that stay in shape when the input is bad.

- `/healthz`: the process is up (no database, no cache), for liveness probes.
- `/readyz`: the database and the shared cache both answer, for readiness probes; 503 with
  what failed otherwise.
- Every request gets an id (a sane `X-Request-ID` from the proxy, or a new one), sent back
  in `X-Request-ID` and written in its JSON log line, so a reader's report, the proxy's log
  and the app's log meet.
- NUL characters in an address, which PostgreSQL refuses in any text, are answered 400 once
  here instead of failing deep in a slug lookup; the API's bodies are checked by its parser.
- Pages that are computed (not served from the read cache) are limited per client address
  (PAGE_THROTTLE_RATE): a crawler cannot keep the servers rendering, while readers and
  cached pages are never counted against it.
- Under `/api/`, every error — a missing route, an oversized body, a server error — answers
  in the API's JSON error shape instead of an HTML page.
"""

import json
import logging
import re
import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.defaults import bad_request, page_not_found, server_error
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

log = logging.getLogger("citydiplomacy.requests")
errors_log = logging.getLogger("django.request")

API_PREFIX = "/api/"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}\Z")


def api_error(status, code, detail, **extra):
    """The API's error shape: {"status", "code", "detail"}."""
    return JsonResponse({"status": status, "code": code, "detail": detail, **extra}, status=status)


def is_api(request):
    return request.path.startswith(API_PREFIX)


@never_cache
def healthz(request):
    return HttpResponse("ok\n", content_type="text/plain")


@never_cache
def readyz(request):
    problems = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 — any failure means "not ready"
        problems["database"] = type(error).__name__
    try:
        key = f"readyz:{uuid.uuid4().hex}"
        cache.set(key, 1, 5)
        if cache.get(key) != 1:
            problems["cache"] = "the value written could not be read back"
        cache.delete(key)
    except Exception as error:  # noqa: BLE001
        problems["cache"] = type(error).__name__
    if problems:
        return JsonResponse({"status": "unavailable", "failed": problems}, status=503)
    return JsonResponse({"status": "ready"})


class RequestLogMiddleware:
    """A request id on every answer, and one JSON line per request in the log."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sent = request.META.get("HTTP_X_REQUEST_ID", "")
        request.id = sent if _REQUEST_ID.match(sent) else uuid.uuid4().hex
        started = time.perf_counter()
        response = self.get_response(request)
        response.headers["X-Request-ID"] = request.id
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        log.info(
            json.dumps(
                {
                    "request_id": request.id,
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "user": user.pk if user is not None and user.is_authenticated else None,
                    "cache": response.headers.get("X-Read-Cache"),
                },
                ensure_ascii=False,
            )
        )
        return response


class InputGuardMiddleware:
    """Refuses, once and for every page, addresses no database could look up, and keeps the
    API's errors in its JSON shape."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            detail = "The address holds a NUL character, which no name or slug contains."
            if is_api(request):
                return api_error(400, "invalid", detail)
            return HttpResponse(detail, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_api(request):
            return None
        if isinstance(exception, RequestDataTooBig):
            return api_error(
                413,
                "too_large",
                "The request body is larger than the API accepts: send fewer records at once.",
            )
        if isinstance(exception, SuspiciousOperation):
            return api_error(400, "invalid", "The request could not be understood.")
        errors_log.error(
            "Internal Server Error: %s",
            request.path,
            exc_info=exception,
            extra={"status_code": 500, "request": request},
        )
        return api_error(
            500,
            "error",
            "Something went wrong on our side; it has been logged. Try again later.",
            request_id=getattr(request, "id", None),
        )


def handler400(request, exception=None):
    if is_api(request):
        return api_error(400, "invalid", "The request could not be understood.")
    return bad_request(request, exception)


def handler404(request, exception=None):
    if is_api(request):
        return api_error(
            404, "not_found", "No such address in the API: see /api/v1/ for what there is."
        )
    return page_not_found(request, exception)


def handler500(request):
    if is_api(request):
        return api_error(
            500, "error", "Something went wrong on our side; it has been logged. Try again later."
        )
    return server_error(request)


MAX_JSON_DEPTH = 32


class StrictJSONParser(JSONParser):
    """JSON bodies, refused in the API's error shape when nested deeper than any record of
    the API (MAX_JSON_DEPTH) or holding a NUL character, which no database text may hold."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        pending = [(data, 1)]
        while pending:
            value, depth = pending.pop()
            if isinstance(value, str):
                if "\x00" in value:
                    raise ParseError(NUL_IN_BODY)
            elif isinstance(value, (dict, list)):
                if depth > MAX_JSON_DEPTH:
                    raise ParseError(TOO_DEEP)
                items = value.items() if isinstance(value, dict) else enumerate(value)
                for key, item in items:
                    if isinstance(key, str) and "\x00" in key:
                        raise ParseError(NUL_IN_BODY)
                    pending.append((item, depth + 1))
        return data


TOO_DEEP = f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep; no record of the API is."
NUL_IN_BODY = "The JSON holds a NUL character (\\u0000), which no name or text may contain."


class PageThrottleMiddleware:
    """Anonymous page views that reach a view (a read-cache hit is answered before this) are
    counted per client address, as the API counts its anonymous reads; past the rate the
    page answers 429 with Retry-After. Signed-in staff, the API (throttled by itself), the
    admin (sign-ins guarded by django-axes), static files and the health probes are left
    alone."""

    EXEMPT = ("/api/", "/admin/", "/static/", "/healthz", "/readyz")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rate = getattr(settings, "PAGE_THROTTLE_RATE", None)
        user = getattr(request, "user", None)
        if (
            rate
            and request.method in ("GET", "HEAD")
            and not request.path.startswith(self.EXEMPT)
            and not (user and user.is_authenticated)
        ):
            from .apikeys import client_address, count_request, parse_rate

            limit, window = parse_rate(rate)
            count, _reset, wait = count_request("pages", client_address(request), window)
            if count > limit:
                seconds = max(1, round(wait))
                response = render(request, "429.html", {"seconds": seconds}, status=429)
                response["Retry-After"] = str(seconds)
                return response
        return self.get_response(request)
