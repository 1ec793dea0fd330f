"""API representations of the places and the reference data everything cites.

Every resource links to itself (`url`) and to what it mentions; the viewsets preload what these
serializers touch, so no field here runs a query of its own.
"""

from urllib.parse import quote

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .dates import humanize
from .models import AlternateName, City, Source, Theme

API = "api"


def api_view(name):
    return f"{API}:{name}-detail"


@extend_schema_field(OpenApiTypes.STR)
class DateDisplayField(serializers.ReadOnlyField):
    """An EDTF date field as people write it: "1965", "c. 1957", "1960s", "date unknown"."""

    def __init__(self, field, unknown="date unknown", **kwargs):
        kwargs.setdefault("help_text", f"`{field}` as people write it (1965, c. 1957, 1960s).")
        super().__init__(source=field, **kwargs)
        self.unknown = unknown

    def to_representation(self, value):
        return humanize(value, unknown=self.unknown)


_KEY = "31415926535897932384"  # digits: valid wherever a slug or an id goes in a URL


@extend_schema_field(OpenApiTypes.URI)
class LinkField(serializers.Field):
    """An absolute link to `view_name` for the value at `source` (a slug or an id).

    Reverses each view once per response and fills the key in by string substitution:
    a page of 100 ties holds some 500 links, and reverse() plus build_absolute_uri() for
    each of them cost more than the rest of the serializer. With `query`, the value goes
    into that query parameter of the view instead (a filtered list).
    """

    def __init__(self, view_name, source, kwarg=None, query=None, **kwargs):
        super().__init__(source=source, read_only=True, **kwargs)
        self.view_name, self.query = view_name, query
        self.kwarg = kwarg or ("slug" if source.endswith("slug") else "pk")

    def template(self):
        templates = self.context.setdefault("_link_templates", {})
        key = (self.view_name, self.kwarg, self.query)
        if key not in templates:
            if self.query:
                path = f"{reverse(self.view_name)}?{self.query}={_KEY}"
            else:
                path = reverse(self.view_name, kwargs={self.kwarg: _KEY})
            templates[key] = self.context["request"].build_absolute_uri(path)
        return templates[key]

    def to_representation(self, value):
        return self.template().replace(_KEY, quote(str(value), safe=""))


class WebAddressField(serializers.URLField):
    """A web address, or null when none is recorded (the database keeps an empty string)."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value):
        return value or None


class ThemeSerializer(serializers.ModelSerializer):
    url = LinkField(api_view("theme"), "slug")

    class Meta:
        model = Theme
        fields = ["url", "slug", "name", "description"]


class SourceSerializer(serializers.ModelSerializer):
    url = LinkField(api_view("source"), "slug")
    # The model's own `url` is the work's web address; `url` here is the API's link.
    web_address = WebAddressField(source="url")
    issued_display = DateDisplayField("issued")
    page = LinkField(
        "partnerships:source_detail", "slug", help_text="The source's page on the public site."
    )

    class Meta:
        model = Source
        fields = [
            "url",
            "slug",
            "kind",
            "title",
            "authors",
            "container_title",
            "publisher",
            "issued",
            "issued_display",
            "web_address",
            "accessed",
            "licence",
            "note",
            "page",
            "updated_at",
        ]


class CityRefSerializer(serializers.ModelSerializer):
    """A city as other resources mention it: enough to label it and follow the link."""

    url = LinkField(api_view("city"), "slug")

    class Meta:
        model = City
        fields = ["url", "slug", "name", "country", "wikidata_id"]
        read_only_fields = fields


class CitationSerializer(serializers.Serializer):
    """One claim citing one source; shared by every kind of claim."""

    source = serializers.CharField(source="source.slug", read_only=True, help_text="Its slug.")
    source_url = LinkField(api_view("source"), "source.slug")
    source_title = serializers.CharField(source="source.title", read_only=True)
    locator = serializers.CharField(read_only=True)
    quote = serializers.CharField(read_only=True)


class AlternateNameSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlternateName
        fields = ["name", "language", "kind"]


class CitySerializer(serializers.ModelSerializer):
    url = LinkField(api_view("city"), "slug")
    alternate_names = AlternateNameSerializer(many=True, read_only=True)
    themes = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    website = WebAddressField()
    page = LinkField(
        "partnerships:city_detail", "slug", help_text="The city's profile on the public site."
    )

    class Meta:
        model = City
        fields = [
            "url",
            "slug",
            "name",
            "alternate_names",
            "country",
            "subdivision",
            "latitude",
            "longitude",
            "population",
            "population_year",
            "wikidata_id",
            "geonames_id",
            "website",
            "summary",
            "approach",
            "themes",
            "verification",
            "updated_at",
            "page",
        ]


class CityDetailSerializer(CitySerializer):
    citations = CitationSerializer(many=True, read_only=True)

    class Meta(CitySerializer.Meta):
        fields = [*CitySerializer.Meta.fields, "citations"]
