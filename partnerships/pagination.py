"""The API's two paginators: numbered pages (the default, set in REST_FRAMEWORK) and keyset
pages for the tens of thousands of ties. No models are imported here: DRF's generics import the
default paginator while the app registry is still loading.
"""

import base64
import binascii
import json

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F, Q
from rest_framework import exceptions, pagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


def page_size_from(request, param, default, maximum):
    raw = request.query_params.get(param)
    if raw is None or raw == "":
        return default
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= maximum:
        raise exceptions.ValidationError(
            {param: [f"Give a page size between 1 and {maximum}, not “{raw}”."]}
        )
    return size


class PagePagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    invalid_page_message = (
        "There is no page “{page_number}”: count from 1 to the last page, or follow the "
        "`next` link."
    )

    def get_page_size(self, request):
        return page_size_from(
            request, self.page_size_query_param, self.page_size, self.max_page_size
        )

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == "page_size":
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
                parameter["description"] = f"Results per page, 1 to {self.max_page_size}."
            if parameter["name"] == "page":
                parameter["schema"]["minimum"] = 1
        return parameters


class KeysetPagination(pagination.BasePagination):
    """Cursor pagination that keeps the FilterSet's chosen order, undated rows last.

    DRF's CursorPagination pages on one column and skips ties with an offset capped at
    1,000, which breaks on the tens of thousands of ties whose start is unknown. This pages
    on the full ordering plus `id`: every page is one query with no OFFSET, as fast deep in
    the list as at its start. The cursor carries the last row's sort values (and is checked
    against the ordering it was made for); both directions are supported.
    """

    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"
    cursor_query_param = "cursor"
    default_ordering = ["start"]
    bad_cursor = (
        "This cursor was not issued for this list: start again without `cursor`, then "
        "follow the `next` and `previous` links as they come."
    )

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = page_size_from(
            request, self.page_size_query_param, type(self).page_size, self.max_page_size
        )
        self.keys = self.sort_keys(queryset.model, request, view)
        values, backwards = self.decode(queryset.model, request)
        ordered = queryset.order_by(*self.order_by(backwards))
        if values is not None:
            ordered = ordered.filter(self.after(values, backwards))
        rows = list(ordered[: self.page_size + 1])
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if backwards:
            rows.reverse()
        self.next_values = self.values_of(rows[-1]) if rows and (more or backwards) else None
        self.previous_values = (
            self.values_of(rows[0]) if rows and (values is not None and (more or not backwards))
            else None
        )  # fmt: skip
        if backwards and not more:
            self.previous_values = None
        return rows

    def sort_keys(self, model, request, view):
        """[(field path, descending, nullable)] from `ordering`, then `id`."""
        ordering_filter = view.filterset_class.base_filters.get("ordering")
        param_map = getattr(ordering_filter, "param_map", {})
        chosen = request.query_params.get("ordering", "") or ",".join(self.default_ordering)
        keys = []
        for term in (t.strip() for t in chosen.split(",") if t.strip()):
            descending = term.startswith("-")
            field = param_map.get(term.lstrip("-"))
            if field and not any(k[0] == field for k in keys):
                keys.append((field, descending, self.field(model, field).null))
        keys.append(("id", False, False))
        return keys

    @staticmethod
    def field(model, path):
        *joins, last = path.split("__")
        for name in joins:
            model = model._meta.get_field(name).related_model
        return model._meta.get_field(last)

    def order_by(self, backwards):
        terms = []
        for field, descending, nullable in self.keys:
            # Unknown values sit at the end going forwards, hence at the start backwards. Only
            # nullable keys say so: "id NULLS LAST" stops SQLite from walking the index and
            # makes it sort every tie (47 ms instead of 1 ms for a page of the real data).
            nulls = {}
            if nullable:
                nulls = {"nulls_first": True} if backwards else {"nulls_last": True}
            if descending != backwards:
                terms.append(F(field).desc(**nulls))
            else:
                terms.append(F(field).asc(**nulls))
        return terms

    def after(self, values, backwards):
        """Rows strictly after `values` in the walking order."""
        condition = Q(pk__in=[])
        equal = Q()
        for (field, descending, nullable), value in zip(self.keys, values, strict=True):
            if value is None:
                strictly = Q(**{f"{field}__isnull": False}) if backwards else Q(pk__in=[])
                same = Q(**{f"{field}__isnull": True})
            else:
                lookup = "lt" if descending != backwards else "gt"
                strictly = Q(**{f"{field}__{lookup}": value})
                if nullable and not backwards:
                    strictly |= Q(**{f"{field}__isnull": True})
                same = Q(**{field: value})
            condition |= equal & strictly
            equal &= same
        return condition

    def values_of(self, row):
        values = []
        for field, _descending, _nullable in self.keys:
            if isinstance(row, dict):  # a row of .values()
                value = row[field]
                values.append(value.isoformat() if hasattr(value, "isoformat") else value)
                continue
            value = row
            for name in field.split("__"):
                value = getattr(value, name) if value is not None else None
            values.append(value.isoformat() if hasattr(value, "isoformat") else value)
        return values

    def encode(self, values, backwards):
        payload = {"k": [k[0] for k in self.keys], "v": values, "b": int(backwards)}
        text = json.dumps(payload, separators=(",", ":"), default=str)
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def decode(self, model, request):
        raw = request.query_params.get(self.cursor_query_param)
        if not raw:  # `?cursor=` as a form leaves it: the first page
            return None, False
        try:
            payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            if payload["k"] != [k[0] for k in self.keys] or len(payload["v"]) != len(self.keys):
                raise ValueError("cursor for another ordering")
            values = [
                None if v is None else self.field(model, k[0]).to_python(v)
                for k, v in zip(self.keys, payload["v"], strict=True)
            ]
            if values[-1] is None:
                raise ValueError("no id")
            return values, bool(payload["b"])
        except (ValueError, TypeError, KeyError, binascii.Error, DjangoValidationError):
            raise exceptions.ValidationError(
                {self.cursor_query_param: [self.bad_cursor]}, code="unknown_reference"
            ) from None

    def link(self, values, backwards):
        url = self.request.build_absolute_uri()
        if values is None:
            return None
        return replace_query_param(url, self.cursor_query_param, self.encode(values, backwards))

    def get_paginated_response(self, data):
        return Response(
            {
                "next": self.link(self.next_values, False),
                "previous": self.link(self.previous_values, True),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "in": "query",
                "required": False,
                "description": "Opaque position from a `next` or `previous` link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "description": f"Results per page, 1 to {self.max_page_size}.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
