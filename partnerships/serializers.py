"""API representations of ties, networks, programmes, events and figures, and the writes
researchers may make through the API.

Reads: every resource links to itself and to what it mentions. Writes go through the model's
own `full_clean()`, the validation the admin runs, so the API accepts exactly what the admin
accepts and answers with the same messages.
"""

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.reverse import reverse
from rest_framework.settings import api_settings

from cities.models import City, Source, Theme
from cities.serializers import (
    API,
    CitationSerializer,
    CityDetailSerializer,
    CityRefSerializer,
    CitySerializer,
    DateDisplayField,
    LinkField,
    WebAddressField,
    api_view,
)

from .models import (
    Event,
    Initiative,
    Membership,
    MembershipCitation,
    Organization,
    StatedFigure,
    Tie,
    TieCitation,
    record_tie,
)


class OrganizationRefSerializer(serializers.ModelSerializer):
    url = LinkField(api_view("organization"), "slug")

    class Meta:
        model = Organization
        fields = ["url", "slug", "name", "acronym"]
        read_only_fields = fields


class InitiativeRefSerializer(serializers.ModelSerializer):
    url = LinkField(api_view("initiative"), "slug")

    class Meta:
        model = Initiative
        fields = ["url", "slug", "name"]
        read_only_fields = fields


class StatedFigureBriefSerializer(serializers.ModelSerializer):
    """A stated figure as its city shows it."""

    url = LinkField(api_view("statedfigure"), "slug")
    display = serializers.CharField(read_only=True, help_text="'more than 3,500,000 population'")
    as_of_display = DateDisplayField("as_of")
    citations = CitationSerializer(many=True, read_only=True)

    class Meta:
        model = StatedFigure
        fields = [
            "url",
            "slug",
            "measure",
            "label",
            "qualifier",
            "value",
            "display",
            "as_of",
            "as_of_display",
            "citations",
        ]


class StatedFigureSerializer(StatedFigureBriefSerializer):
    city = CityRefSerializer(read_only=True, allow_null=True)
    organization = OrganizationRefSerializer(read_only=True, allow_null=True)
    initiative = InitiativeRefSerializer(read_only=True, allow_null=True)

    class Meta(StatedFigureBriefSerializer.Meta):
        fields = [
            *StatedFigureBriefSerializer.Meta.fields[:2],
            "city",
            "organization",
            "initiative",
            *StatedFigureBriefSerializer.Meta.fields[2:],
            "verification",
            "updated_at",
        ]


class CityTiesMixin(serializers.Serializer):
    """What partnerships adds to a city: its tie count, a link to its ties, stated figures."""

    tie_count = serializers.IntegerField(
        read_only=True, help_text="Ties the atlas records for this city, all kinds."
    )
    ties = LinkField(
        f"{API}:tie-list", "slug", query="city", help_text="This city's ties in the API."
    )
    stated_figures = StatedFigureBriefSerializer(
        many=True, read_only=True, help_text="What sources say about the city's counts and size."
    )


def with_tie_fields(fields):
    """The city's fields with the tie count after its themes and the ties link after its page,
    then the stated figures."""
    fields = list(fields)
    fields.insert(fields.index("themes") + 1, "tie_count")
    fields.insert(fields.index("page") + 1, "ties")
    return [*fields, "stated_figures"]


class CityWithFiguresSerializer(CityTiesMixin, CitySerializer):
    class Meta(CitySerializer.Meta):
        fields = with_tie_fields(CitySerializer.Meta.fields)


class CityWithFiguresDetailSerializer(CityTiesMixin, CityDetailSerializer):
    class Meta(CityDetailSerializer.Meta):
        fields = with_tie_fields(CityDetailSerializer.Meta.fields)


class TieSerializer(serializers.ModelSerializer):
    url = LinkField(api_view("tie"), "pk")
    city_a = CityRefSerializer(read_only=True)
    city_b = CityRefSerializer(read_only=True)
    start_display = DateDisplayField("start")
    end_display = DateDisplayField("end")
    topics = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    citations = CitationSerializer(many=True, read_only=True)
    page = LinkField(
        "partnerships:tie_detail", "pk", help_text="The tie's page on the public site."
    )

    class Meta:
        model = Tie
        fields = [
            "url",
            "id",
            "city_a",
            "city_b",
            "kind",
            "status",
            "start",
            "start_display",
            "end",
            "end_display",
            "date_basis",
            "topics",
            "summary",
            "citations",
            "verification",
            "created_at",
            "updated_at",
            "page",
        ]


class OrganizationSerializer(serializers.ModelSerializer):
    url = LinkField(api_view("organization"), "slug")
    parent = OrganizationRefSerializer(read_only=True, allow_null=True)
    headquarters = CityRefSerializer(read_only=True, allow_null=True)
    founded_display = DateDisplayField("founded")
    website = WebAddressField()
    themes = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    citations = CitationSerializer(many=True, read_only=True)
    memberships = LinkField(
        f"{API}:membership-list", "slug", query="organization", help_text="Its members."
    )

    class Meta:
        model = Organization
        fields = [
            "url",
            "slug",
            "name",
            "acronym",
            "kind",
            "parent",
            "founded",
            "founded_display",
            "headquarters",
            "website",
            "summary",
            "themes",
            "citations",
            "verification",
            "updated_at",
            "memberships",
        ]


class MembershipSerializer(serializers.ModelSerializer):
    url = LinkField(api_view("membership"), "pk")
    organization = OrganizationRefSerializer(read_only=True)
    city = CityRefSerializer(read_only=True, allow_null=True)
    member_organization = OrganizationRefSerializer(read_only=True, allow_null=True)
    since_display = DateDisplayField("since")
    until_display = DateDisplayField("until")
    citations = CitationSerializer(many=True, read_only=True)

    class Meta:
        model = Membership
        fields = [
            "url",
            "id",
            "organization",
            "city",
            "member_organization",
            "role",
            "since",
            "since_display",
            "until",
            "until_display",
            "summary",
            "citations",
            "verification",
            "updated_at",
        ]


class InitiativeSerializer(serializers.ModelSerializer):
    url = LinkField(api_view("initiative"), "slug")
    lead_city = CityRefSerializer(read_only=True, allow_null=True)
    lead_organization = OrganizationRefSerializer(read_only=True, allow_null=True)
    partner_cities = CityRefSerializer(many=True, read_only=True)
    partner_organizations = OrganizationRefSerializer(many=True, read_only=True)
    start_display = DateDisplayField("start")
    end_display = DateDisplayField("end")
    website = WebAddressField()
    objectives = serializers.ListField(
        source="objective_list", child=serializers.CharField(), read_only=True
    )
    themes = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    citations = CitationSerializer(many=True, read_only=True)

    class Meta:
        model = Initiative
        fields = [
            "url",
            "slug",
            "name",
            "kind",
            "lead_city",
            "lead_organization",
            "partner_cities",
            "partner_organizations",
            "start",
            "start_display",
            "end",
            "end_display",
            "summary",
            "objectives",
            "website",
            "themes",
            "citations",
            "verification",
            "updated_at",
        ]


class EventSerializer(serializers.ModelSerializer):
    url = LinkField(api_view("event"), "slug")
    date_display = DateDisplayField("date")
    city = CityRefSerializer(read_only=True, allow_null=True)
    partner_city = CityRefSerializer(read_only=True, allow_null=True)
    organization = OrganizationRefSerializer(read_only=True, allow_null=True)
    initiative = InitiativeRefSerializer(read_only=True, allow_null=True)
    tie = LinkField(api_view("tie"), "tie_id", allow_null=True)
    themes = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    citations = CitationSerializer(many=True, read_only=True)

    class Meta:
        model = Event
        fields = [
            "url",
            "slug",
            "kind",
            "title",
            "date",
            "date_display",
            "city",
            "partner_city",
            "organization",
            "initiative",
            "tie",
            "summary",
            "themes",
            "citations",
            "verification",
            "updated_at",
        ]


class TieCitationSerializer(CitationSerializer):
    url = LinkField(api_view("tiecitation"), "pk")
    id = serializers.IntegerField(read_only=True)
    tie = LinkField(api_view("tie"), "tie_id")
    tie_id = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class MembershipCitationSerializer(CitationSerializer):
    url = LinkField(api_view("membershipcitation"), "pk")
    id = serializers.IntegerField(read_only=True)
    membership = LinkField(api_view("membership"), "membership_id")
    membership_id = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


# Writes ---------------------------------------------------------------------------------


def as_field_errors(error):
    """A model ValidationError as {field: [messages]}, with rules about the whole record
    under DRF's `non_field_errors` rather than Django's `__all__`."""
    return {
        api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field: messages
        for field, messages in error.message_dict.items()
    }


@extend_schema_field({"type": "string", "minLength": 1})
class SlugOfField(serializers.SlugRelatedField):
    """A slug of an existing record: never empty, as the schema says."""


def slug_of(model, what, queryset=None, **kwargs):
    """A field taking the slug of an existing `model`, refusing unknown ones in plain words."""
    return SlugOfField(
        slug_field="slug",
        queryset=queryset if queryset is not None else model.objects.all(),
        error_messages={
            "does_not_exist": f"No {what} has the slug “{{value}}”: use the `slug` shown by "
            f"the API's {what} list.",
            "invalid": f"Give the slug of a {what} as text.",
        },
        **kwargs,
    )


NEEDS_A_SOURCE = (
    "Cite at least one source: the atlas shows no claim without one. Give "
    '[{"source": "<source slug>", "locator": "p. 12"}].'
)


class KnownFieldsOnly:
    """Writes name only fields they can write: a misspelt `stauts` is refused, with the
    other problems of the request, rather than ignored while the record is saved without it."""

    def to_internal_value(self, data):
        unknown = {}
        if isinstance(data, dict):
            writable = [name for name, field in self.fields.items() if not field.read_only]
            unknown = {
                str(name): [
                    ErrorDetail(
                        f"This API has no field “{name}” to write: the fields are "
                        f"{', '.join(writable)}.",
                        code="unknown_field",
                    )
                ]
                for name in data
                if name not in writable
            }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if unknown and isinstance(error.detail, dict):
                raise serializers.ValidationError({**unknown, **error.detail}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class CitationInputSerializer(KnownFieldsOnly, serializers.Serializer):
    """One source a new claim cites, with where in it and, if stored, its words."""

    source = slug_of(Source, "source")
    locator = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    quote = serializers.CharField(required=False, allow_blank=True, default="")


class CitedWriteMixin(serializers.Serializer):
    """A claim created through the API names its sources in the same request: `citations`,
    required with at least one on creation, written in the claim's transaction."""

    citations = CitationInputSerializer(
        many=True,
        write_only=True,
        required=False,
        help_text="The sources the claim cites; at least one when creating it.",
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if self.instance is None and not attrs.get("citations"):
            raise serializers.ValidationError({"citations": [NEEDS_A_SOURCE]})
        return attrs

    def create(self, validated_data):
        self.new_citations = validated_data.pop("citations", [])
        return super().create(validated_data)

    def update(self, instance, validated_data):
        self.new_citations = validated_data.pop("citations", [])
        return super().update(instance, validated_data)

    def citation_rows(self, claim):
        model = claim.citations.model
        field = claim.citations.field.name
        return [model(**{field: claim}, **cited) for cited in self.new_citations]

    def save_instance(self, instance, many):
        super().save_instance(instance, many)
        for citation in self.citation_rows(instance):
            citation.save()


def columns_of(instance):
    return {
        field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields
    }


class CleanedModelSerializer(KnownFieldsOnly, serializers.ModelSerializer):
    """Saves through the model's full_clean(), in one transaction, or not at all.

    DRF's own uniqueness validators are switched off (Meta.validators = []) so that the
    model's rules, stated once in clean() and the constraints, give every message.
    """

    read_serializer_class = None

    def create(self, validated_data):
        many = self._pop_many(validated_data)
        return self._clean_and_save(self.Meta.model(**validated_data), many)

    def update(self, instance, validated_data):
        many = self._pop_many(validated_data)
        # Remembered, so that the save writes only the columns this request changes: a
        # concurrent change to another field of the same record survives.
        instance._columns_before = columns_of(instance)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return self._clean_and_save(instance, many)

    def _pop_many(self, validated_data):
        return {
            name: validated_data.pop(name)
            for name, field in self.fields.items()
            if isinstance(field, serializers.ManyRelatedField) and name in validated_data
        }

    def _clean_and_save(self, instance, many):
        try:
            instance.full_clean()
        except DjangoValidationError as error:
            raise serializers.ValidationError(as_field_errors(self.explain(error))) from None
        try:
            with transaction.atomic():
                self.save_instance(instance, many)
        except IntegrityError:
            # Another request wrote the same row between full_clean() and save().
            raise serializers.ValidationError(
                {"non_field_errors": ["Someone saved a conflicting change meanwhile: reload "
                                      "and try again."]}
            ) from None  # fmt: skip
        return instance

    def explain(self, error):
        """The model's ValidationError, as the answer should word it."""
        return error

    def save_instance(self, instance, many):
        """Write the validated `instance` and its many-to-many values (in a transaction);
        a change writes only the columns it changes, and the time it was made."""
        before = getattr(instance, "_columns_before", None)
        if before is None:
            instance.save()
        else:
            if hasattr(instance, "derive_dates"):
                instance.derive_dates()  # the bounds an EDTF date change moves
            changed = [
                field.name
                for field in instance._meta.concrete_fields
                if not field.primary_key
                and (
                    getattr(field, "auto_now", False)
                    or getattr(instance, field.attname) != before[field.attname]
                )
            ]
            instance.save(update_fields=changed)
        for name, values in many.items():
            getattr(instance, name).set(values)

    def to_representation(self, instance):
        return self.read_serializer_class(instance, context=self.context).data


class TieWriteSerializer(CitedWriteMixin, CleanedModelSerializer):
    """A new sister, partner or friendship tie for a pair whose tie is *unspecified* states
    that tie's kind (record_tie()); `kind_stated` then says so and the API answers 200 with
    that tie rather than 201."""

    read_serializer_class = TieSerializer
    city_a = slug_of(City, "city")
    city_b = slug_of(City, "city")
    topics = slug_of(Theme, "theme", many=True, required=False)
    kind_stated = None

    def explain(self, error):
        # The model names the tie a twinning of unstated kind would repeat; give its address.
        for item in getattr(error, "error_dict", {}).get(NON_FIELD_ERRORS, []):
            if item.code == "kind_already_stated":
                url = reverse(
                    f"{API}:tie-detail", args=[item.params["id"]], request=self.context["request"]
                )
                item.params = {**item.params, "tie": f"{item.params['tie']}, {url}"}
        return error

    def save_instance(self, instance, many):
        if instance.pk is not None:
            return super().save_instance(instance, many)
        citations = [TieCitation(**cited) for cited in self.new_citations]
        self.kind_stated = record_tie(
            instance,
            topics=many.get("topics", ()),
            citations=citations,
            user=self.context["request"].user,
        )

    class Meta:
        model = Tie
        validators = []
        fields = [
            "city_a",
            "city_b",
            "kind",
            "status",
            "start",
            "end",
            "date_basis",
            "topics",
            "summary",
            "verification",
            "citations",
        ]


class MembershipWriteSerializer(CitedWriteMixin, CleanedModelSerializer):
    read_serializer_class = MembershipSerializer
    organization = slug_of(Organization, "organization")
    city = slug_of(City, "city", required=False, allow_null=True)
    member_organization = slug_of(Organization, "organization", required=False, allow_null=True)

    class Meta:
        model = Membership
        validators = []
        fields = [
            "organization",
            "city",
            "member_organization",
            "role",
            "since",
            "until",
            "summary",
            "verification",
            "citations",
        ]


class TieCitationWriteSerializer(CleanedModelSerializer):
    read_serializer_class = TieCitationSerializer
    tie = serializers.PrimaryKeyRelatedField(
        queryset=Tie.objects.all(),
        error_messages={"does_not_exist": "No tie has the id {pk_value}: use the `id` of a tie."},
    )
    source = slug_of(Source, "source")

    class Meta:
        model = TieCitation
        validators = []
        fields = ["tie", "source", "locator", "quote"]


class MembershipCitationWriteSerializer(CleanedModelSerializer):
    read_serializer_class = MembershipCitationSerializer
    membership = serializers.PrimaryKeyRelatedField(
        queryset=Membership.objects.all(),
        error_messages={
            "does_not_exist": "No membership has the id {pk_value}: use the `id` of a membership."
        },
    )
    source = slug_of(Source, "source")

    class Meta:
        model = MembershipCitation
        validators = []
        fields = ["membership", "source", "locator", "quote"]


# Errors and the comparison (answers that are not records) ---------------------------------


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
