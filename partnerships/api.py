"""The partner API, v1: one router under /api/v1/, plus comparison, exports, schema and docs.

Reading is open to everyone (partners with a key get a higher limit); creating and changing
ties, memberships and their citations needs a researcher's account, through HTTP Basic or the
admin's session, and runs the model's own validation. Every error, whatever raised it, has the
same shape: {"status", "code", "detail", "errors"?}.
"""

import base64
import binascii
import hashlib
import json

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F, Prefetch, Q
from django.http import Http404, StreamingHttpResponse
from django.urls import path
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags
from django_filters import rest_framework as filters
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)
from rest_framework import (
    exceptions,
    generics,
    mixins,
    pagination,
    permissions,
    renderers,
    routers,
    serializers,
    status,
    viewsets,
)
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from cities.models import City, CityCitation, Source, SourceKind, Theme
from cities.serializers import SourceSerializer, ThemeSerializer
from partnerships.filters import CityFilter

from . import exports
from .comparison import ComparisonError, compare, parse_cities
from .filters import KnownSlugFilter, TieFilter
from .models import (
    Event,
    EventCitation,
    EventKind,
    Initiative,
    InitiativeCitation,
    InitiativeKind,
    Measure,
    Membership,
    MembershipCitation,
    MembershipRole,
    Organization,
    OrganizationCitation,
    OrganizationKind,
    StatedFigure,
    StatedFigureCitation,
    Tie,
    TieCitation,
)
from .serializers import (
    CityWithFiguresDetailSerializer,
    CityWithFiguresSerializer,
    EventSerializer,
    InitiativeSerializer,
    MembershipCitationSerializer,
    MembershipCitationWriteSerializer,
    MembershipSerializer,
    MembershipWriteSerializer,
    OrganizationSerializer,
    StatedFigureSerializer,
    TieCitationSerializer,
    TieCitationWriteSerializer,
    TieSerializer,
    TieWriteSerializer,
    as_field_errors,
)

app_name = "api"

# Errors ----------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """The one shape of every error the API returns."""

    status = serializers.IntegerField(help_text="The HTTP status, repeated for convenience.")
    code = serializers.CharField(help_text="Stable machine-readable reason: invalid, not_found…")
    detail = serializers.CharField(help_text="What went wrong and what to do about it.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For invalid input: the messages for each parameter or field; "
        "`non_field_errors` holds those about the whole request.",
    )
    suggestions = serializers.DictField(
        required=False, help_text="For a comparison: cities each unclear name may have meant."
    )


def _messages(value):
    if isinstance(value, dict):
        return [m for v in value.values() for m in _messages(v)]
    if isinstance(value, list):
        return [m for v in value for m in _messages(v)]
    return [str(value)]


def _field_errors(data):
    """DRF's validation detail as {field: [messages]}; nested details are flattened."""
    if isinstance(data, dict):
        return {str(field): _messages(value) for field, value in data.items()}
    return {"non_field_errors": _messages(data)}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_field_errors(exc))
    if isinstance(exc, Http404) and not str(exc).strip():
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        messages = [m for ms in errors.values() for m in ms]
        body = {
            "status": response.status_code,
            "code": "invalid",
            "detail": messages[0] if len(messages) == 1 else "Fix the problems listed in errors.",
            "errors": errors,
        }
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        body = {
            "status": response.status_code,
            "code": codes if isinstance(codes, str) else "error",
            "detail": " ".join(_messages(response.data)),
        }
    body.update(getattr(exc, "extra", {}))
    response.data = body
    return response


class ApiSchema(AutoSchema):
    """Documents the errors each operation can answer with, in the shared error shape."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = {"400": "Invalid parameters or body.", "401": "Unknown or revoked API key, or "
                 "wrong credentials.", "404": "No such resource, page or cursor.",
                 "429": "Rate limit reached: wait for the seconds in Retry-After."}  # fmt: skip
        if self.method not in ("GET", "HEAD"):
            codes["403"] = "Writing needs a researcher's account; a partner key only reads."
            codes["415"] = "Send JSON (Content-Type: application/json) or form data."
        if self.method == "GET" and not self._is_list_view() and getattr(self.view, "etag", 0):
            responses["304"] = {"description": "Not modified since the ETag you sent."}
        for code, description in codes.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description), code
                )
        return responses

    def get_filter_backends(self):
        if getattr(self.view, "filters_in_schema", False):
            return self.view.filter_backends
        return super().get_filter_backends()


# Pagination and ordering -----------------------------------------------------------------


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
        if raw is None:
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
            raise exceptions.ValidationError({self.cursor_query_param: [self.bad_cursor]}) from None

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


class StrictOrderingFilter(OrderingFilter):
    """`ordering` that refuses unknown fields instead of silently ignoring them."""

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        invalid = [f for f in fields if f not in valid]
        if invalid:
            allowed = ", ".join(name for name, _label in self.get_valid_fields(queryset, view))
            raise exceptions.ValidationError(
                {self.ordering_param: [f"Cannot order by {', '.join(invalid)}: use {allowed}."]}
            )
        return valid


class NameSearchFilter(SearchFilter):
    search_param = "q"
    search_title = "Search"
    search_description = "Words to look for in the names (case-insensitive)."


# Access ----------------------------------------------------------------------------------


class ResearcherWritePermission(permissions.DjangoModelPermissionsOrAnonReadOnly):
    """Anyone reads; writing needs a signed-in curator with the model permission, the same
    one the admin checks (Researchers add and change, Editors also delete)."""

    message = (
        "Writing needs a researcher's account with the right to change this kind of record; "
        "a partner key only reads."
    )


# Views -----------------------------------------------------------------------------------


def citations(model):
    return Prefetch("citations", queryset=model.objects.select_related("source"))


class MethodFirstMixin:
    """Refuses an unsupported method as such before credentials are looked at, so that
    everyone gets the same 405 rather than a 401 or 403 about a request that cannot be."""

    def initial(self, request, *args, **kwargs):
        if not hasattr(self, request.method.lower()):
            self.format_kwarg = self.get_format_suffix(**kwargs)
            # Credentials stay unread: rendering the refusal must not authenticate lazily.
            request.user, request.auth = AnonymousUser(), None
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)


class ApiViewMixin(MethodFirstMixin):
    """Shared behaviour: 404s that say what to look for, ETags on details, limit headers."""

    permission_classes = [ResearcherWritePermission]
    schema = ApiSchema()
    etag = True

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            lookup = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
            model = self.get_queryset().model._meta
            field = "slug" if self.lookup_field == "slug" else "id"
            raise exceptions.NotFound(
                f"No {model.verbose_name} has the {field} “{lookup}”: find it in "
                f"{reverse(f'api:{model.model_name}-list', request=self.request)}."
            ) from None

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        body = json.dumps(response.data, sort_keys=True, default=str).encode()
        etag = f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'
        sent = request.headers.get("If-None-Match", "")
        # Weak comparison (RFC 9110 §13.1.2): W/ prefixes do not matter for GET.
        known = {tag.removeprefix("W/") for tag in parse_etags(sent)}
        if "*" in known or etag.removeprefix("W/") in known:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        response["ETag"] = etag
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        limit = getattr(request, "rate_limit", None)
        if limit:
            response["RateLimit-Limit"], response["RateLimit-Remaining"], reset = limit
            response["RateLimit-Reset"] = str(reset)
        patch_vary_headers(response, ["Accept", "Authorization", "X-API-Key"])
        return response


class WriteMixin(mixins.CreateModelMixin, mixins.UpdateModelMixin):
    """Create and change through the write serializer; the reply is the read form."""

    write_serializer_class = None

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return self.write_serializer_class
        return self.serializer_class


def documented_writes(read, write, name):
    return {
        "create": extend_schema(
            request=write, responses={201: read}, summary=f"Record a new {name}"
        ),
        "update": extend_schema(request=write, responses={200: read}, summary=f"Change a {name}"),
        "partial_update": extend_schema(
            request=write, responses={200: read}, summary=f"Change some fields of a {name}"
        ),
    }


@extend_schema_view(
    list=extend_schema(summary="Cities, with alternate names and stated figures"),
    retrieve=extend_schema(summary="One city, with its citations"),
)
class CityViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """Cities, by slug. `q` searches every name (native script, former names), ignoring case
    and accents; the other filters are those of the /cities/ page."""

    queryset = City.objects.prefetch_related(
        "alternate_names",
        "themes",
        Prefetch(
            "stated_figures",
            queryset=StatedFigure.objects.prefetch_related(citations(StatedFigureCitation)),
        ),
    )
    serializer_class = CityWithFiguresSerializer
    lookup_field = "slug"
    filterset_class = CityFilter
    pagination_class = PagePagination

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(citations(CityCitation))
        return queryset

    def get_serializer_class(self):
        if self.action == "retrieve":
            return CityWithFiguresDetailSerializer
        return super().get_serializer_class()


@extend_schema_view(
    list=extend_schema(summary="Ties between cities (cursor-paginated)"),
    retrieve=extend_schema(summary="One tie"),
    **documented_writes(TieSerializer, TieWriteSerializer, "tie"),
)
class TieViewSet(ApiViewMixin, WriteMixin, viewsets.ReadOnlyModelViewSet):
    """Ties, undirected: each pair and kind once. Filters are those of the /ties/ page and of
    the exports; `ordering` keeps undated ties last."""

    queryset = Tie.objects.for_profile()
    serializer_class = TieSerializer
    write_serializer_class = TieWriteSerializer
    filterset_class = TieFilter
    pagination_class = KeysetPagination


class OrganizationFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=OrganizationKind.choices)
    parent = KnownSlugFilter(
        field_name="parent__slug", label="Parent organization (slug)", model=Organization
    )
    theme = KnownSlugFilter(field_name="themes__slug", label="Theme (slug)", model=Theme)

    class Meta:
        model = Organization
        fields = ["kind", "parent", "theme"]


@extend_schema_view(list=extend_schema(summary="City networks and the bodies around them"))
class OrganizationViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Organization.objects.select_related("parent", "headquarters").prefetch_related(
        "themes", citations(OrganizationCitation)
    )
    serializer_class = OrganizationSerializer
    lookup_field = "slug"
    filterset_class = OrganizationFilter
    filter_backends = [filters.DjangoFilterBackend, NameSearchFilter, StrictOrderingFilter]
    search_fields = ["name", "acronym"]
    ordering_fields = ["name", "founded_lower", "updated_at"]
    pagination_class = PagePagination


class MembershipFilter(filters.FilterSet):
    organization = KnownSlugFilter(
        method="filter_organization", label="Organization or its parent (slug)", model=Organization
    )
    city = KnownSlugFilter(field_name="city__slug", label="Member city (slug)", model=City)
    member_organization = KnownSlugFilter(
        field_name="member_organization__slug", label="Member organization (slug)",
        model=Organization,
    )  # fmt: skip
    role = filters.ChoiceFilter(choices=MembershipRole.choices)

    class Meta:
        model = Membership
        fields = ["organization", "city", "member_organization", "role"]

    def filter_organization(self, queryset, name, value):
        return queryset.filter(Q(organization__slug=value) | Q(organization__parent__slug=value))


@extend_schema_view(
    list=extend_schema(summary="Members of organizations"),
    **documented_writes(MembershipSerializer, MembershipWriteSerializer, "membership"),
)
class MembershipViewSet(ApiViewMixin, WriteMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Membership.objects.for_profile()
    serializer_class = MembershipSerializer
    write_serializer_class = MembershipWriteSerializer
    filterset_class = MembershipFilter
    filter_backends = [filters.DjangoFilterBackend, StrictOrderingFilter]
    ordering_fields = ["since_lower", "updated_at"]
    pagination_class = PagePagination


class ActorFilter(filters.FilterSet):
    """Filters shared by initiatives and events: by city, organization and theme."""

    city = KnownSlugFilter(method="filter_city", label="City involved (slug)", model=City)
    organization = KnownSlugFilter(
        method="filter_organization", label="Organization (slug)", model=Organization
    )
    theme = KnownSlugFilter(field_name="themes__slug", label="Theme (slug)", model=Theme)
    city_fields = ()
    organization_fields = ()

    def filter_city(self, queryset, name, value):
        q = Q()
        for field in self.city_fields:
            q |= Q(**{f"{field}__slug": value})
        return queryset.filter(q).distinct()

    def filter_organization(self, queryset, name, value):
        q = Q()
        for field in self.organization_fields:
            q |= Q(**{f"{field}__slug": value})
        return queryset.filter(q).distinct()


class InitiativeFilter(ActorFilter):
    kind = filters.ChoiceFilter(choices=InitiativeKind.choices)
    city_fields = ("lead_city", "partner_cities")
    organization_fields = ("lead_organization", "partner_organizations")

    class Meta:
        model = Initiative
        fields = ["kind", "city", "organization", "theme"]


@extend_schema_view(list=extend_schema(summary="Programmes, projects and platforms"))
class InitiativeViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Initiative.objects.select_related("lead_city", "lead_organization").prefetch_related(
        "partner_cities", "partner_organizations", "themes", citations(InitiativeCitation)
    )
    serializer_class = InitiativeSerializer
    lookup_field = "slug"
    filterset_class = InitiativeFilter
    filter_backends = [filters.DjangoFilterBackend, NameSearchFilter, StrictOrderingFilter]
    search_fields = ["name"]
    ordering_fields = ["name", "start_lower", "updated_at"]
    pagination_class = PagePagination


class EventFilter(ActorFilter):
    kind = filters.ChoiceFilter(choices=EventKind.choices)
    initiative = KnownSlugFilter(
        field_name="initiative__slug", label="Initiative (slug)", model=Initiative
    )
    tie = filters.NumberFilter(field_name="tie_id", label="Tie (id)")
    city_fields = ("city", "partner_city")
    organization_fields = ("organization",)

    class Meta:
        model = Event
        fields = ["kind", "city", "organization", "initiative", "tie", "theme"]


@extend_schema_view(list=extend_schema(summary="Dated events: visits, agreements, awards…"))
class EventViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Event.objects.select_related(
        "city", "partner_city", "organization", "initiative"
    ).prefetch_related("themes", citations(EventCitation))
    serializer_class = EventSerializer
    lookup_field = "slug"
    filterset_class = EventFilter
    filter_backends = [filters.DjangoFilterBackend, NameSearchFilter, StrictOrderingFilter]
    search_fields = ["title"]
    ordering_fields = ["date_lower", "title", "updated_at"]
    pagination_class = PagePagination


class StatedFigureFilter(filters.FilterSet):
    city = KnownSlugFilter(field_name="city__slug", label="City (slug)", model=City)
    organization = KnownSlugFilter(
        field_name="organization__slug", label="Organization (slug)", model=Organization
    )
    initiative = KnownSlugFilter(
        field_name="initiative__slug", label="Initiative (slug)", model=Initiative
    )
    measure = filters.ChoiceFilter(choices=Measure.choices)

    class Meta:
        model = StatedFigure
        fields = ["city", "organization", "initiative", "measure"]


@extend_schema_view(list=extend_schema(summary="Counts and sizes as sources state them"))
class StatedFigureViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = StatedFigure.objects.select_related(
        "city", "organization", "initiative"
    ).prefetch_related(citations(StatedFigureCitation))
    serializer_class = StatedFigureSerializer
    lookup_field = "slug"
    filterset_class = StatedFigureFilter
    filter_backends = [filters.DjangoFilterBackend, StrictOrderingFilter]
    ordering_fields = ["as_of_lower", "value", "updated_at"]
    pagination_class = PagePagination


class SourceFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=SourceKind.choices)

    class Meta:
        model = Source
        fields = ["kind"]


@extend_schema_view(list=extend_schema(summary="Sources cited by the atlas"))
class SourceViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Source.objects.all()
    serializer_class = SourceSerializer
    lookup_field = "slug"
    filterset_class = SourceFilter
    filter_backends = [filters.DjangoFilterBackend, NameSearchFilter, StrictOrderingFilter]
    search_fields = ["title", "authors", "container_title", "publisher"]
    ordering_fields = ["title", "issued_lower", "updated_at"]
    pagination_class = PagePagination


@extend_schema_view(list=extend_schema(summary="Themes tagged on cities, ties and programmes"))
class ThemeViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Theme.objects.all()
    serializer_class = ThemeSerializer
    lookup_field = "slug"
    filter_backends = [NameSearchFilter]
    search_fields = ["name"]
    pagination_class = PagePagination


class TieCitationFilter(filters.FilterSet):
    tie = filters.NumberFilter(field_name="tie_id", label="Tie (id)")
    source = KnownSlugFilter(field_name="source__slug", label="Source (slug)", model=Source)

    class Meta:
        model = TieCitation
        fields = ["tie", "source"]


@extend_schema_view(
    list=extend_schema(summary="Which source supports which tie"),
    **documented_writes(TieCitationSerializer, TieCitationWriteSerializer, "tie citation"),
)
class TieCitationViewSet(ApiViewMixin, WriteMixin, viewsets.ReadOnlyModelViewSet):
    queryset = TieCitation.objects.select_related("source").order_by("id")
    serializer_class = TieCitationSerializer
    write_serializer_class = TieCitationWriteSerializer
    filterset_class = TieCitationFilter
    pagination_class = PagePagination


class MembershipCitationFilter(filters.FilterSet):
    membership = filters.NumberFilter(field_name="membership_id", label="Membership (id)")
    source = KnownSlugFilter(field_name="source__slug", label="Source (slug)", model=Source)

    class Meta:
        model = MembershipCitation
        fields = ["membership", "source"]


@extend_schema_view(
    list=extend_schema(summary="Which source supports which membership"),
    **documented_writes(
        MembershipCitationSerializer, MembershipCitationWriteSerializer, "membership citation"
    ),
)
class MembershipCitationViewSet(ApiViewMixin, WriteMixin, viewsets.ReadOnlyModelViewSet):
    queryset = MembershipCitation.objects.select_related("source").order_by("id")
    serializer_class = MembershipCitationSerializer
    write_serializer_class = MembershipCitationWriteSerializer
    filterset_class = MembershipCitationFilter
    pagination_class = PagePagination


# Comparison ------------------------------------------------------------------------------


class ComparisonSerializer(serializers.Serializer):
    """The figures of the /compare/ page; each list holds one value per compared city."""

    cities = serializers.ListField(child=serializers.DictField())
    figures = serializers.ListField(child=serializers.DictField())
    ties_by_kind = serializers.ListField(child=serializers.DictField())
    partners_by_region = serializers.ListField(child=serializers.DictField())
    ties_by_decade = serializers.ListField(child=serializers.DictField())
    shared_partners = serializers.ListField(child=serializers.DictField())
    direct_ties = serializers.ListField(child=serializers.DictField())
    organizations = serializers.ListField(child=serializers.DictField())
    themes = serializers.ListField(child=serializers.DictField())


class CompareView(ApiViewMixin, APIView):
    """Two to four cities side by side, as on the /compare/ page and computed by the same
    code: stated and recorded figures, ties by kind, region and decade, shared partners,
    shared networks and themes."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="Compare two to four cities",
        parameters=[
            OpenApiParameter(
                "cities",
                str,
                required=True,
                description="Slugs or names, comma-separated: yokohama,taipei",
            )
        ],
        responses={200: ComparisonSerializer},
    )
    def get(self, request):
        try:
            cities = parse_cities(request.query_params.getlist("cities"))
        except ComparisonError as error:
            invalid = exceptions.ValidationError({"cities": error.messages})
            if error.suggestions:
                invalid.extra = {"suggestions": error.suggestions}
            raise invalid from None
        return Response(compare(cities))


# Exports ---------------------------------------------------------------------------------


class ExportRenderer(renderers.BaseRenderer):
    """Lets a client ask for the export's own media type; errors still come out as JSON."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode()


def export_renderer(media_type, suffix):
    return type(
        f"{suffix.title()}Renderer", (ExportRenderer,), {"media_type": media_type, "format": suffix}
    )


TIE_EXPORTS = {
    "csv": ("text/csv", exports.csv_rows),
    "geojson": ("application/geo+json", exports.geojson_chunks),
    "gexf": ("application/gexf+xml", exports.gexf_chunks),
    "graphml": ("application/graphml+xml", exports.graphml_chunks),
}
SOURCE_EXPORTS = {
    "json": ("application/vnd.citationstyles.csl+json", exports.csl_chunks),
    "bib": ("application/x-bibtex", exports.bibtex_chunks),
}


def stream(chunks, media_type, filename):
    response = StreamingHttpResponse(chunks, content_type=f"{media_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ExportView(ApiViewMixin, generics.GenericAPIView):
    permission_classes = [permissions.AllowAny]
    filters_in_schema = True
    formats = {}
    export = ""  # set per URL: csv, geojson, …
    filename = ""

    def get_renderers(self):
        media_type, _writer = self.formats[self.export]
        return [renderers.JSONRenderer(), export_renderer(media_type, self.export)()]

    def get(self, request):
        media_type, writer = self.formats[self.export]
        queryset = self.filter_queryset(self.get_queryset())
        return stream(writer(queryset), media_type, f"{self.filename}.{self.export}")


class TieExportView(ExportView):
    """All ties matching the same filters as /api/v1/ties/, streamed in one file."""

    queryset = Tie.objects.all()
    filterset_class = TieFilter
    formats = TIE_EXPORTS
    filename = "citydiplomacy-ties"


class SourceExportView(ExportView):
    """Sources as CSL-JSON (Zotero, pandoc) or BibTeX."""

    queryset = Source.objects.all()
    filterset_class = SourceFilter
    filter_backends = [filters.DjangoFilterBackend, NameSearchFilter]
    search_fields = ["title", "authors", "container_title", "publisher"]
    formats = SOURCE_EXPORTS
    filename = "citydiplomacy-sources"


# The JSON-based formats, described as far as a generic schema can; the rest is text.
EXPORT_BODIES = {
    "geojson": {
        "type": "object",
        "required": ["type", "features"],
        "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {"type": "array", "items": {"type": "object"}},
        },
    },
    "json": {
        "type": "array",
        "items": {"type": "object", "required": ["id", "type"]},
        "description": "CSL-JSON items (https://citationstyles.org).",
    },
}

EXPORT_SUMMARIES = {
    "csv": "Ties as CSV: one row per tie, re-importable with import_ties",
    "geojson": "Ties as GeoJSON (RFC 7946): cities as points, ties as lines",
    "gexf": "Ties as GEXF 1.3 for Gephi, with start and end dates for the timeline",
    "graphml": "Ties as GraphML for igraph, Cytoscape and networkx",
    "json": "Sources as CSL-JSON for Zotero and pandoc",
    "bib": "Sources as BibTeX",
}


def export_path(view, export, prefix):
    media_type, _writer = view.formats[export]
    documented = extend_schema(
        summary=EXPORT_SUMMARIES[export],
        responses={(200, media_type): OpenApiResponse(EXPORT_BODIES.get(export, OpenApiTypes.STR))},
    )

    def get(self, request):
        return ExportView.get(self, request)

    # One subclass per format, so that each has its own operation in the schema.
    per_format = type(
        f"{view.__name__}{export.title()}", (view,), {"export": export, "get": documented(get)}
    )
    return path(
        f"exports/{prefix}.{export}", per_format.as_view(), name=f"{prefix[:-1]}-export-{export}"
    )


# Routing ---------------------------------------------------------------------------------


class NotFoundView(APIView):
    """Unknown addresses under /api/v1/ answer in the API's error format too."""

    permission_classes = [permissions.AllowAny]
    schema = None

    def get(self, request, rest):
        raise exceptions.NotFound(
            f"There is no API endpoint at /api/v1/{rest}: the list of endpoints is at "
            f"{reverse('api:api-root', request=request)} and the documentation at "
            f"{reverse('api:docs', request=request)}."
        )

    post = put = patch = delete = get


class ApiRootView(MethodFirstMixin, routers.APIRootView):
    """The list of endpoints; the documentation is at /api/v1/docs/."""


class SchemaView(MethodFirstMixin, SpectacularAPIView):
    pass


class SwaggerView(MethodFirstMixin, SpectacularSwaggerView):
    pass


class RedocView(MethodFirstMixin, SpectacularRedocView):
    pass


class Router(routers.DefaultRouter):
    include_format_suffixes = False
    APIRootView = ApiRootView


router = Router()
router.register("cities", CityViewSet, basename="city")
router.register("ties", TieViewSet, basename="tie")
router.register("organizations", OrganizationViewSet, basename="organization")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("initiatives", InitiativeViewSet, basename="initiative")
router.register("events", EventViewSet, basename="event")
router.register("figures", StatedFigureViewSet, basename="statedfigure")
router.register("sources", SourceViewSet, basename="source")
router.register("themes", ThemeViewSet, basename="theme")
router.register("tie-citations", TieCitationViewSet, basename="tiecitation")
router.register("membership-citations", MembershipCitationViewSet, basename="membershipcitation")

urlpatterns = [
    path("compare/", CompareView.as_view(), name="compare"),
    *(export_path(TieExportView, export, "ties") for export in TIE_EXPORTS),
    *(export_path(SourceExportView, export, "sources") for export in SOURCE_EXPORTS),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("docs/redoc/", RedocView.as_view(url_name="api:schema"), name="redoc"),
    *router.urls,
    path("<path:rest>", NotFoundView.as_view(), name="not-found"),
]
