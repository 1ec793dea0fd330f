"""Lean reads for the API's busiest list, and JSON written by orjson.

`/api/v1/ties/` pages through tens of thousands of ties. Built through `TieSerializer`, a
page of 100 costs a model instance, two related managers and some twenty field objects per
tie. Here the same page is three queries of `.values()` — the ties with both cities, their
topics, their citations — turned into dictionaries of exactly `TieSerializer`'s shape (the
tests compare the two, field for field, over varied ties), so the schema the serializer
documents stays the truth. Writes and single ties still go through the serializers.
"""

import re
from collections import defaultdict
from functools import lru_cache
from urllib.parse import quote

import orjson
from django.urls import reverse
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

from cities.dates import humanize

from .models import Tie, TieCitation

CITY_FIELDS = ("slug", "name", "country", "wikidata_id")
TIE_FIELDS = (
    "id",
    "kind",
    "status",
    "start",
    "end",
    "date_basis",
    "summary",
    "verification",
    "created_at",
    "updated_at",
)
# Every column a page of ties may be ordered on is fetched too: the keyset paginator
# reads the last row's values for the next cursor.
ORDER_FIELDS = ("start_lower", "city_a__name")
TIE_VALUES = (
    *TIE_FIELDS,
    *ORDER_FIELDS,
    *(f"city_a__{name}" for name in CITY_FIELDS),
    *(f"city_b__{name}" for name in CITY_FIELDS),
)

_KEY = "31415926535897932384"  # stands for the key in a reversed link, as LinkField does


_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]*\Z").match


class Links:
    """Absolute links by view name, each reversed once per request; ids and plain slugs
    need no quoting."""

    def __init__(self, request):
        self.request = request
        self.templates = {}

    def __call__(self, view_name, kwarg, value):
        parts = self.templates.get(view_name)
        if parts is None:
            path = reverse(view_name, kwargs={kwarg: _KEY})
            url = self.request.build_absolute_uri(path)
            parts = self.templates[view_name] = url.split(_KEY, 1)
        value = str(value)
        if not _URL_SAFE(value):
            value = quote(value, safe="")
        return f"{parts[0]}{value}{parts[1]}"


display = lru_cache(maxsize=4096)(humanize)


def moments(zone):
    """A writer of dates and times as DRF's DateTimeField writes them (ISO 8601 in the
    current time zone, "Z" for UTC), without its per-value field machinery."""

    def when(value):
        if value is None:
            return None
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return when


def tie_values(queryset):
    """The filtered ties as the rows `tie_rows` reads."""
    return queryset.prefetch_related(None).values(*TIE_VALUES)


def tie_rows(rows, request):
    """[dict] for `rows` of `tie_values`, each equal to TieSerializer's representation."""
    link = _links(request)
    when = moments(timezone.get_current_timezone())
    ids = [row["id"] for row in rows]
    topics, cited = defaultdict(list), defaultdict(list)
    if ids:
        through = Tie.topics.through.objects.filter(tie_id__in=ids)
        for tie_id, slug in through.order_by("theme__name", "theme__slug").values_list(
            "tie_id", "theme__slug"
        ):
            topics[tie_id].append(slug)
        citations = TieCitation.objects.filter(tie_id__in=ids).order_by(
            "source__title", "locator", "id"
        )
        for tie_id, slug, title, locator, quoted in citations.values_list(
            "tie_id", "source__slug", "source__title", "locator", "quote"
        ):
            cited[tie_id].append(
                {
                    "source": slug,
                    "source_url": link("api:source-detail", "slug", slug),
                    "source_title": title,
                    "locator": locator,
                    "quote": quoted,
                }
            )
    return [
        {
            "url": link("api:tie-detail", "pk", row["id"]),
            "id": row["id"],
            "city_a": _city(row, "city_a__", link),
            "city_b": _city(row, "city_b__", link),
            "kind": row["kind"],
            "status": row["status"],
            "start": row["start"],
            "start_display": display(row["start"]),
            "end": row["end"],
            "end_display": display(row["end"]),
            "date_basis": row["date_basis"],
            "topics": topics[row["id"]],
            "summary": row["summary"],
            "citations": cited[row["id"]],
            "verification": row["verification"],
            "created_at": when(row["created_at"]),
            "updated_at": when(row["updated_at"]),
            "page": link("partnerships:tie_detail", "pk", row["id"]),
        }
        for row in rows
    ]


def _links(request):
    links = getattr(request, "_atlas_links", None)
    if links is None:
        links = request._atlas_links = Links(request)
    return links


def _city(row, prefix, link):
    slug = row[f"{prefix}slug"]
    return {
        "url": link("api:city-detail", "slug", slug),
        "slug": slug,
        "name": row[f"{prefix}name"],
        "country": row[f"{prefix}country"],
        "wikidata_id": row[f"{prefix}wikidata_id"],
    }


class FastJSONRenderer(JSONRenderer):
    """DRF's JSON, compact and in UTF-8 as the API's settings ask, written by orjson; what
    orjson does not know (lazy translations, decimals…) goes through DRF's own encoder."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        return orjson.dumps(data, default=JSONEncoder().default, option=orjson.OPT_NON_STR_KEYS)
