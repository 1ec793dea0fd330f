"""API representations of the places and the reference data everything cites.

Every resource links to itself (`url`) and to what it mentions; the viewsets preload what these
serializers touch, so no field here runs a query of its own.
"""

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


class WebAddressField(serializers.URLField):
    """A web address, or null when none is recorded (the database keeps an empty string)."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value):
        return value or None


class ThemeSerializer(serializers.HyperlinkedModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name=api_view("theme"), lookup_field="slug")

    class Meta:
        model = Theme
        fields = ["url", "slug", "name", "description"]


class SourceSerializer(serializers.HyperlinkedModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name=api_view("source"), lookup_field="slug")
    # The model's own `url` is the work's web address; `url` here is the API's link.
    web_address = WebAddressField(source="url")
    issued_display = DateDisplayField("issued")
    page = serializers.SerializerMethodField(help_text="The source's page on the public site.")

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

    def get_page(self, source) -> str:
        return self.context["request"].build_absolute_uri(source.get_absolute_url())


class CityRefSerializer(serializers.ModelSerializer):
    """A city as other resources mention it: enough to label it and follow the link."""

    url = serializers.HyperlinkedIdentityField(view_name=api_view("city"), lookup_field="slug")

    class Meta:
        model = City
        fields = ["url", "slug", "name", "country", "wikidata_id"]
        read_only_fields = fields


class CitationSerializer(serializers.Serializer):
    """One claim citing one source; shared by every kind of claim."""

    source = serializers.CharField(source="source.slug", read_only=True, help_text="Its slug.")
    source_url = serializers.HyperlinkedRelatedField(
        source="source", view_name=api_view("source"), lookup_field="slug", read_only=True
    )
    source_title = serializers.CharField(source="source.title", read_only=True)
    locator = serializers.CharField(read_only=True)
    quote = serializers.CharField(read_only=True)


class AlternateNameSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlternateName
        fields = ["name", "language", "kind"]


class CitySerializer(serializers.HyperlinkedModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name=api_view("city"), lookup_field="slug")
    alternate_names = AlternateNameSerializer(many=True, read_only=True)
    themes = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    tie_count = serializers.IntegerField(
        read_only=True, help_text="Ties the atlas records for this city, all kinds."
    )
    website = WebAddressField()
    page = serializers.SerializerMethodField(help_text="The city's profile on the public site.")
    ties = serializers.SerializerMethodField(help_text="This city's ties in the API.")

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
            "tie_count",
            "verification",
            "updated_at",
            "page",
            "ties",
        ]

    def get_page(self, city) -> str:
        return self.context["request"].build_absolute_uri(city.get_absolute_url())

    def get_ties(self, city) -> str:
        return self.context["request"].build_absolute_uri(
            f"{reverse(f'{API}:tie-list')}?city={city.slug}"
        )


class CityDetailSerializer(CitySerializer):
    citations = CitationSerializer(many=True, read_only=True)

    class Meta(CitySerializer.Meta):
        fields = [*CitySerializer.Meta.fields, "citations"]
