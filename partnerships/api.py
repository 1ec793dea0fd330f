"""The partner API, v1: one router under /api/v1/, plus comparison, exports, schema and docs.

Reading is open to everyone (partners with a key get a higher limit); creating and changing
ties, memberships and their citations needs a researcher's account, through HTTP Basic or the
admin's session, and runs the model's own validation. Every error, whatever raised it, has the
same shape: {"status", "code", "detail", "errors"?}.
"""

import hashlib
import json

from csp.decorators import csp_update
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Prefetch
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
    SpectacularSwaggerSplitView,
)
from rest_framework import (
    exceptions,
    generics,
    mixins,
    permissions,
    renderers,
    routers,
    serializers,
    status,
    viewsets,
)
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from cities.dates import validate_edtf
from cities.models import City, CityCitation, SlugRedirect, Source, Theme
from cities.serializers import LinkField, SourceSerializer, ThemeSerializer, api_view

from . import exports, fastrows
from .apikeys import ApiThrottle, parse_rate
from .comparison import ComparisonError, compare, parse_cities
from .filters import (
    CityFilter,
    EventFilter,
    InitiativeFilter,
    MembershipCitationFilter,
    MembershipFilter,
    OrganizationFilter,
    SourceFilter,
    StatedFigureFilter,
    TieCitationFilter,
    TieFilter,
)
from .models import (
    Event,
    EventCitation,
    Initiative,
    InitiativeCitation,
    Membership,
    MembershipCitation,
    Organization,
    OrganizationCitation,
    StatedFigure,
    StatedFigureCitation,
    Tie,
    TieCitation,
)
from .pagination import KeysetPagination
from .serializers import (
    CityWithFiguresDetailSerializer,
    CityWithFiguresSerializer,
    ComparisonSerializer,
    ErrorSerializer,
    EventSerializer,
    InitiativeSerializer,
    KnownFieldsOnly,
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
from .suggestions import suggestions_for

app_name = "api"

# Errors ----------------------------------------------------------------------------------


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


# Codes of errors that name something which does not exist: a record by slug or id, a city
# by name, a list position. The request was well formed; the answer's `code` says so.
UNKNOWN_REFERENCE_CODES = frozenset({"does_not_exist", "unknown_slug", "unknown_reference"})


def _codes(value):
    if isinstance(value, dict):
        return [c for v in value.values() for c in _codes(v)]
    if isinstance(value, list):
        return [c for v in value for c in _codes(v)]
    return [value]


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
        codes = _codes(exc.get_codes())
        unknown = bool(codes) and all(code in UNKNOWN_REFERENCE_CODES for code in codes)
        body = {
            "status": response.status_code,
            "code": "unknown_reference" if unknown else "invalid",
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


# Every text the API reads may hold any character but NUL, which PostgreSQL refuses in text
# and the API answers with 400 (partnerships/operations.py). ECMA-262 syntax, as OpenAPI asks.
NO_NUL = "^[^\\u0000]*$"


def _refuse_nul(schema):
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and "enum" not in schema and "pattern" not in schema:
        schema["pattern"] = NO_NUL
    for key in ("items", "additionalProperties"):
        _refuse_nul(schema.get(key))
    for key in ("properties",):
        for child in (schema.get(key) or {}).values():
            _refuse_nul(child)
    for key in ("allOf", "anyOf", "oneOf"):
        for child in schema.get(key) or []:
            _refuse_nul(child)


def request_conventions(result, generator, request, public):
    """drf-spectacular postprocessing hook for what holds across the API's requests: text
    holds no NUL character (parameters in the address, and the request bodies' components),
    and an optional query parameter left empty (`?kind=&page=`, as HTML forms send them)
    counts as not given."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") in ("query", "path"):
                    _refuse_nul(parameter.get("schema"))
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            _refuse_nul(schema)
    return result


class ApiSchema(AutoSchema):
    """Documents the errors each operation can answer with, in the shared error shape."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = {"400": "Invalid parameters or body.", "401": "Unknown or revoked API key, or "
                 "wrong credentials.", "404": "No such resource, page or cursor.",
                 "429": "Rate limit reached: wait for the seconds in Retry-After."}  # fmt: skip
        if self.method not in ("GET", "HEAD"):
            codes["403"] = "Writing needs a researcher's account; a partner key only reads."
            codes["413"] = "The body is larger than the API accepts."
            codes["415"] = "Send JSON (Content-Type: application/json)."
        if self.method in ("PUT", "PATCH"):
            codes["412"] = (
                "The record changed since the ETag sent in If-Match: read it again. The "
                "error's `etag` is the record's ETag now."
            )
        if self.method == "GET" and not self._is_list_view() and getattr(self.view, "etag", 0):
            responses["304"] = {"description": "Not modified since the ETag you sent."}
        for code, description in codes.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description), code
                )
        return responses

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, KnownFieldsOnly):
            schema["additionalProperties"] = False
        return schema

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        if validate_edtf in getattr(field, "validators", ()):
            # OpenAPI leaves `format` open: "edtf" names the Library of Congress's Extended
            # Date/Time Format, which no regular expression describes whole. The empty string
            # (date unknown) is allowed as well; the length limit is said in words, since a
            # string of a given length is no more a date for having it.
            schema.pop("maxLength", None)
            schema["format"] = "edtf"
            schema["description"] = f"{schema.get('description', '')} At most 64 characters."

    def get_auth(self):
        """Reads need no credentials (a partner key only raises the limit); writes need a
        researcher's account, never a partner key."""
        schemes = [scheme for scheme in super().get_auth() if scheme]
        if self.method in ("GET", "HEAD", "OPTIONS"):
            return [{}, *schemes]
        return [scheme for scheme in schemes if "partnerKey" not in scheme]

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if self.method in ("PUT", "PATCH"):
            parameters = [
                *parameters,
                OpenApiParameter(
                    "If-Match",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    description="The ETag of the record as last read: the change is refused "
                    "with 412 if the record changed since.",
                ),
            ]
        return parameters

    def get_filter_backends(self):
        if getattr(self.view, "filters_in_schema", False):
            return self.view.filter_backends
        return super().get_filter_backends()


# Ordering and search ----------------------------------------------------------------------


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

    def get_schema_operation_parameters(self, view):
        fields = [name for name, _label in self.get_valid_fields(None, view)]
        return [
            {
                "name": self.ordering_param,
                "in": "query",
                "required": False,
                "description": "Fields to order by, comma-separated; `-` before a field "
                "reverses it.",
                "schema": {
                    "type": "array",
                    "items": {"type": "string", "enum": [*fields, *(f"-{f}" for f in fields)]},
                },
                "style": "form",
                "explode": False,
            }
        ]


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
        etag = etag_of(response.data)
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
        # What the data may be reused under; each record names its own sources.
        response["Link"] = f'<{exports.ATLAS_LICENCE_URL}>; rel="license"'
        return response


def etag_of(data):
    """A record's ETag: a hash of its JSON as a GET shows it. Weak, as the bytes differ by
    compression; compared weakly for If-Match too (RFC 9110 asks strong comparison there,
    which no weak tag would ever pass)."""
    body = json.dumps(data, sort_keys=True, default=str).encode()
    return f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = (
        "This record changed since you read it (its ETag is no longer the one you sent in "
        "If-Match): read it again, apply your change to what it says now, and send that."
    )

    def __init__(self, etag):
        super().__init__()
        self.extra = {"etag": etag}


class WriteMixin(mixins.CreateModelMixin, mixins.UpdateModelMixin):
    """Create and change through the write serializer; the reply is the read form.

    Changes are optimistic: every record carries an ETag; a change sent with `If-Match`
    is refused with 412 when the record changed since (checked on the locked row, in the
    write's transaction), and a change writes only the fields it sends.
    """

    write_serializer_class = None

    def update(self, request, *args, **kwargs):
        with transaction.atomic():
            instance = self.get_object()
            type(instance)._default_manager.select_for_update().filter(pk=instance.pk).first()
            sent = request.headers.get("If-Match")
            if sent:
                current = etag_of(
                    self.serializer_class(instance, context=self.get_serializer_context()).data
                )
                tags = {tag.removeprefix("W/") for tag in parse_etags(sent)}
                if "*" not in tags and current.removeprefix("W/") not in tags:
                    raise PreconditionFailed(current)
            response = super().update(request, *args, **kwargs)
        response["ETag"] = etag_of(response.data)
        return response

    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        response["ETag"] = etag_of(response.data)
        return response

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


# Suggestions ------------------------------------------------------------------------------
# Serializers of the one endpoint that reads partnerships/suggestions.py's plain data.


class SuggestedCitySerializer(serializers.Serializer):
    url = LinkField(api_view("city"), "slug")
    slug = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    country = serializers.CharField(read_only=True, help_text="ISO 3166-1 alpha-2 code.")
    page = LinkField(
        "partnerships:city_detail", "slug", help_text="The city's profile on the public site."
    )


class SharedPartnerSerializer(serializers.Serializer):
    url = LinkField(api_view("city"), "slug")
    slug = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)


class SuggestionSerializer(serializers.Serializer):
    city = SuggestedCitySerializer(read_only=True)
    score = serializers.FloatField(
        read_only=True, help_text="Higher is a stronger suggestion; compare within one list."
    )
    reason = serializers.CharField(
        read_only=True, help_text="Why, in words: “shares 4 partners with Yokohama; also in Asia”."
    )
    shared_partners = serializers.IntegerField(
        read_only=True, help_text="Partners the two cities have in common."
    )
    partner_score = serializers.FloatField(
        read_only=True,
        help_text="Adamic–Adar over the shared partners: each counts 1 / ln(its number of "
        "partners).",
    )
    shared_networks = serializers.IntegerField(
        read_only=True,
        help_text="Organizations both belong to; a regional branch's members belong to its "
        "parent too.",
    )
    shared_themes = serializers.IntegerField(read_only=True)
    same_region = serializers.BooleanField(
        read_only=True, allow_null=True, help_text="Null when a country's region is unknown."
    )
    size_similarity = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="1 for equal populations, 0 from ten times apart; null when a population "
        "is not recorded.",
    )
    via = SharedPartnerSerializer(
        many=True, read_only=True, help_text="The shared partners, the most populous first."
    )


class SuggestionsSerializer(serializers.Serializer):
    like_this = SuggestionSerializer(
        many=True,
        read_only=True,
        help_text="Cities like this one: shared partners, networks and themes, same region, "
        "similar size.",
    )
    partners_of_partners = SuggestionSerializer(
        many=True, read_only=True, help_text="Cities tied to this city's partners, not to it."
    )


@extend_schema_view(
    list=extend_schema(summary="Cities, with alternate names and stated figures"),
    retrieve=extend_schema(
        summary="One city, with its citations",
        responses={
            200: CityWithFiguresDetailSerializer,
            301: OpenApiResponse(
                description="The slug named the city before a merge or a rename: Location "
                "gives its address now."
            ),
        },
    ),
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

    def get_queryset(self):
        if self.action == "similar":
            return City.objects.all()  # the suggestions read what they need themselves
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(citations(CityCitation))
        return queryset

    def get_serializer_class(self):
        if self.action == "retrieve":
            return CityWithFiguresDetailSerializer
        return super().get_serializer_class()

    def retrieve(self, request, *args, **kwargs):
        try:
            return super().retrieve(request, *args, **kwargs)
        except exceptions.NotFound:
            # A slug from before a merge or a rename answers 301 with the city's address.
            slug = kwargs[self.lookup_url_kwarg or self.lookup_field]
            moved = (
                SlugRedirect.objects.filter(slug=slug).values_list("city__slug", flat=True).first()
            )
            if moved is None:
                raise
            url = reverse("api:city-detail", kwargs={"slug": moved}, request=request)
            query = request.META.get("QUERY_STRING")
            location = f"{url}?{query}" if query else url
            return Response(
                status=status.HTTP_301_MOVED_PERMANENTLY, headers={"Location": location}
            )

    @extend_schema(
        # A tag of its own: computed suggestions, apart from the recorded facts about cities.
        tags=["suggestions"],
        summary="Partner suggestions for a city",
        description="Two lists of at most ten cities that are not yet partners of this city, "
        "each with its reason in words: cities like this one (shared partners, networks and "
        "themes, the same region, a similar size) and partners of its partners. They are "
        "computed from the atlas (partnerships/suggestions.py), not stated by any source: "
        "suggestions, not facts.",
        responses={200: SuggestionsSerializer},
    )
    @action(detail=True, methods=["get"])
    def similar(self, request, slug=None):
        city = self.get_object()
        context = self.get_serializer_context()
        return Response(SuggestionsSerializer(suggestions_for(city), context=context).data)


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

    def list(self, request, *args, **kwargs):
        # Rows straight from .values(), in TieSerializer's shape (partnerships/fastrows.py).
        queryset = fastrows.tie_values(self.filter_queryset(self.get_queryset()))
        rows = self.paginate_queryset(queryset)
        return self.get_paginated_response(fastrows.tie_rows(rows, request))

    def create(self, request, *args, **kwargs):
        # A sister tie over an unspecified one states its kind: the tie exists already, so
        # the answer is 200 with it, not 201.
        response = super().create(request, *args, **kwargs)
        if getattr(self, "kind_stated", False):
            response.status_code = status.HTTP_200_OK
        return response

    def perform_create(self, serializer):
        serializer.save()
        self.kind_stated = serializer.kind_stated


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


@extend_schema_view(list=extend_schema(summary="Sources cited by the atlas"))
class SourceViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Source.objects.all()
    serializer_class = SourceSerializer
    lookup_field = "slug"
    filterset_class = SourceFilter
    filter_backends = [filters.DjangoFilterBackend, NameSearchFilter, StrictOrderingFilter]
    search_fields = ["title", "authors", "container_title", "publisher"]
    ordering_fields = ["title", "issued_lower", "updated_at"]


@extend_schema_view(list=extend_schema(summary="Themes tagged on cities, ties and programmes"))
class ThemeViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Theme.objects.all()
    serializer_class = ThemeSerializer
    lookup_field = "slug"
    filter_backends = [NameSearchFilter]
    search_fields = ["name"]


@extend_schema_view(
    list=extend_schema(summary="Which source supports which tie"),
    **documented_writes(TieCitationSerializer, TieCitationWriteSerializer, "tie citation"),
)
class TieCitationViewSet(ApiViewMixin, WriteMixin, viewsets.ReadOnlyModelViewSet):
    queryset = TieCitation.objects.select_related("source").order_by("id")
    serializer_class = TieCitationSerializer
    write_serializer_class = TieCitationWriteSerializer
    filterset_class = TieCitationFilter


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


# Comparison ------------------------------------------------------------------------------


# Two to four names, each with something besides spaces, and no NUL.
_NAME = "[^,\\u0000]*[^,\\s\\u0000][^,\\u0000]*"
COMPARE_PATTERN = f"^{_NAME}(,{_NAME}){{1,3}}$"


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
                {"type": "string", "pattern": COMPARE_PATTERN},
                required=True,
                description="Two to four slugs or names, comma-separated: yokohama,taipei",
            )
        ],
        responses={200: ComparisonSerializer},
    )
    def get(self, request):
        try:
            cities = parse_cities(request.query_params.getlist("cities"))
        except ComparisonError as error:
            code = "unknown_reference" if error.unresolved else "invalid"
            invalid = exceptions.ValidationError({"cities": error.messages}, code=code)
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
    "jsonl": ("application/jsonl", exports.tie_jsonl),
    "geojson": ("application/geo+json", exports.geojson_chunks),
    "gexf": ("application/gexf+xml", exports.gexf_chunks),
    "graphml": ("application/graphml+xml", exports.graphml_chunks),
}
CITY_EXPORTS = {
    "csv": ("text/csv", exports.city_csv),
    "jsonl": ("application/jsonl", exports.city_jsonl),
}
MEMBERSHIP_EXPORTS = {
    "csv": ("text/csv", exports.membership_csv),
    "jsonl": ("application/jsonl", exports.membership_jsonl),
}
SOURCE_EXPORTS = {
    "json": ("application/vnd.citationstyles.csl+json", exports.csl_chunks),
    "bib": ("application/x-bibtex", exports.bibtex_chunks),
}


def stream(chunks, media_type, filename):
    response = StreamingHttpResponse(chunks, content_type=f"{media_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # The read cache may keep a whole export (partnerships/readcache.py): computed once per
    # version of the atlas, however many anonymous clients ask.
    response.read_cache_whole = True
    return response


class ExportThrottle(ApiThrottle):
    """A whole export costs seconds: anonymous clients may compute few of them (a cached
    one, answered before the API is reached, counts nothing); partner keys and researchers
    keep their own limits."""

    def identify(self, request):
        scope, ident, limit, window = super().identify(request)
        if scope == "anon":
            rate = api_settings.DEFAULT_THROTTLE_RATES.get("anon_export", "10/minute")
            return ("anon_export", ident, *parse_rate(rate))
        return scope, ident, limit, window


class ExportView(ApiViewMixin, generics.GenericAPIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ExportThrottle]
    pagination_class = None  # one streamed file
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


class CityExportView(ExportView):
    """All cities matching the same filters as /api/v1/cities/, streamed in one file."""

    queryset = City.objects.all()
    filterset_class = CityFilter
    formats = CITY_EXPORTS
    filename = "citydiplomacy-cities"
    summaries = {
        "csv": "Cities as CSV: ids (GeoNames, Wikidata), coordinates, themes and sources",
        "jsonl": "Cities as JSON Lines: one object per city, typed",
    }


class MembershipExportView(ExportView):
    """All memberships matching the same filters as /api/v1/memberships/, in one file."""

    queryset = Membership.objects.all()
    filterset_class = MembershipFilter
    formats = MEMBERSHIP_EXPORTS
    filename = "citydiplomacy-memberships"
    summaries = {
        "csv": "Memberships as CSV: network, member city or organization, role, dates, sources",
        "jsonl": "Memberships as JSON Lines: one object per membership, typed",
    }


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
    "jsonl": "Ties as JSON Lines: one object per tie with the CSV's columns, typed",
    "json": "Sources as CSL-JSON for Zotero and pandoc",
    "bib": "Sources as BibTeX",
}


def export_path(view, export, prefix):
    media_type, _writer = view.formats[export]
    documented = extend_schema(
        summary=getattr(view, "summaries", EXPORT_SUMMARIES)[export],
        responses={(200, media_type): OpenApiResponse(EXPORT_BODIES.get(export, OpenApiTypes.STR))},
    )

    def get(self, request):
        return ExportView.get(self, request)

    # One subclass per format, so that each has its own operation in the schema.
    per_format = type(
        f"{view.__name__}{export.title()}", (view,), {"export": export, "get": documented(get)}
    )
    return path(
        f"exports/{prefix}.{export}",
        per_format.as_view(),
        name=f"{ {'cities': 'city'}.get(prefix, prefix[:-1]) }-export-{export}",
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


class SwaggerView(MethodFirstMixin, SpectacularSwaggerSplitView):
    """Swagger UI. Its start-up script is a second request to the same address (`?script`),
    a file from the site itself under the Content-Security-Policy; the page's one style block
    carries the request's nonce (templates/drf_spectacular/swagger_ui.html)."""


class RedocView(MethodFirstMixin, SpectacularRedocView):
    """Redoc. Its start-up script and the style elements it adds while drawing carry the
    request's nonce, which the page hands it (templates/drf_spectacular/redoc.html)."""

    # What Redoc needs beyond the site's policy, on this page only (no 'unsafe-inline'): the
    # scrollbar styles its bundle inserts as it loads, before it has been handed the nonce,
    # allowed by their hashes (the empty element first, then its text; a new Redoc release
    # changes the second, which tests/test_csp.py then reports), and the Web Worker that its
    # search runs in, which it starts from a blob: address.
    POLICY = {
        "style-src": [
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
            "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
        ],
        "worker-src": ["blob:"],
    }

    @classmethod
    def as_view(cls, **initkwargs):
        return csp_update(cls.POLICY)(super().as_view(**initkwargs))


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
    *(export_path(CityExportView, export, "cities") for export in CITY_EXPORTS),
    *(export_path(MembershipExportView, export, "memberships") for export in MEMBERSHIP_EXPORTS),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("docs/redoc/", RedocView.as_view(url_name="api:schema"), name="redoc"),
    *router.urls,
    path("<path:rest>", NotFoundView.as_view(), name="not-found"),
]
