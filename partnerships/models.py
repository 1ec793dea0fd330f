import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Count, F, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Coalesce, Greatest, Least
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from cities.models import (
    CitationBase,
    City,
    Curated,
    EDTFMixin,
    SluggedMixin,
    SlugManager,
    Source,
    Theme,
    Verification,
    bound_field,
    choices_constraint,
    count_of,
    edtf_field,
    verification_constraint,
)

END_BEFORE_START = "The end date lies before the start date."
DUPLICATE_TIE = (
    "These two cities already have a tie of this kind (entered the other way round counts "
    "too): edit that tie instead."
)
KIND_ALREADY_STATED = (
    "These two cities already have a %(kind)s tie: %(tie)s. A twinning whose kind is not "
    "stated only confirms it: cite your source on that tie instead."
)


def end_not_before_start(label, start="start", end="end"):
    """Constraint: an end known to lie before a known start is refused."""
    return models.CheckConstraint(
        condition=Q(**{f"{start}_lower__isnull": True})
        | Q(**{f"{end}_upper__isnull": True})
        | Q(**{f"{end}_upper__gte": F(f"{start}_lower")}),
        name=f"{label}_{end}_not_before_{start}",
        violation_error_message=END_BEFORE_START,
    )


def check_dates(obj, errors, start="start", end="end"):
    """clean() half of end_not_before_start, in the researcher's words."""
    start_value, end_value = getattr(obj, start), getattr(obj, end)
    if not start_value or not end_value or start in errors or end in errors:
        return
    obj.derive_dates()
    end_upper, start_lower = getattr(obj, f"{end}_upper"), getattr(obj, f"{start}_lower")
    if end_upper and start_lower and end_upper < start_lower:
        errors.setdefault(end, []).append(
            ValidationError(END_BEFORE_START, code="end_before_start")
        )


class OrganizationKind(models.TextChoices):
    CITY_NETWORK = "city_network", "City network"
    REGIONAL_BRANCH = "regional_branch", "Regional branch"
    INTERNATIONAL_ORGANIZATION = "international_organization", "International organization"
    PROGRAMME_OWNER = "programme_owner", "Programme owner"
    COMPANY = "company", "Company"
    RESEARCH_CENTRE = "research_centre", "Research or knowledge centre"
    OTHER = "other", "Other"


def _as_set(value):
    """A record or a QuerySet of records, as something `__in` accepts."""
    return value if isinstance(value, models.QuerySet) else [value]


class OrganizationQuerySet(models.QuerySet):
    def for_profile(self):
        """With parent, headquarters, branches, themes and cited sources: an organization page."""
        return self.select_related("parent", "headquarters").prefetch_related(
            "branches", "themes", "citations__source"
        )

    def with_member_count(self):
        """Annotated with `member_count`, the member cities, for the list of organizations:
        those of its branches too (UCLG counts the members of UCLG-ASPAC), as the list of
        cities filtered by the organization does. Two grouped subqueries, no join fan-out."""
        direct = (
            Membership.objects.filter(organization=OuterRef("pk"), city__isnull=False)
            .order_by()
            .values("organization")
        )
        branch = (
            Membership.objects.filter(organization__parent=OuterRef("pk"), city__isnull=False)
            .exclude(
                city__in=Membership.objects.filter(organization=OuterRef(OuterRef("pk"))).values(
                    "city"
                )
            )
            .order_by()
            .values("organization__parent")
        )
        count = Count("city", distinct=True)
        return self.select_related("parent", "headquarters").annotate(
            member_count=Coalesce(Subquery(direct.annotate(n=count).values("n")), 0)
            + Coalesce(Subquery(branch.annotate(n=count).values("n")), 0)
        )

    def named_like(self, text):
        """Organizations a mistyped address may have meant."""
        return self.filter(Q(name__icontains=text.replace("-", " ")) | Q(acronym__iexact=text))


class Organization(SluggedMixin, EDTFMixin, Curated):
    name = models.CharField("name", max_length=200)
    slug = models.SlugField(
        "slug", max_length=100, unique=True, blank=True,
        help_text="Used in web addresses; made from the name when left empty.",
    )  # fmt: skip
    acronym = models.CharField("acronym", max_length=40, blank=True)
    kind = models.CharField("kind", max_length=32, choices=OrganizationKind.choices)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="branches",
        verbose_name="parent organization",
        help_text="The body this one belongs to: UCLG for UCLG-ASPAC, C40 for its Knowledge Hub.",
    )  # fmt: skip
    founded = edtf_field("founded")
    founded_lower = bound_field("founded, earliest")
    founded_upper = bound_field("founded, latest")
    headquarters = models.ForeignKey(
        City, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name="headquarters",
    )  # fmt: skip
    website = models.URLField("website", max_length=300, blank=True)
    summary = models.TextField("summary", blank=True)
    themes = models.ManyToManyField(
        Theme, blank=True, related_name="organizations", verbose_name="themes"
    )

    history = HistoricalRecords()
    objects = SlugManager.from_queryset(OrganizationQuerySet)()
    edtf_fields = ("founded",)

    class Meta:
        ordering = ["name", "slug"]
        constraints = [
            verification_constraint("organization"),
            choices_constraint("kind", OrganizationKind, "organization"),
            models.CheckConstraint(
                condition=~Q(parent=F("id")),
                name="organization_not_own_parent",
                violation_error_message="An organization cannot be its own parent.",
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("partnerships:organization_detail", kwargs={"slug": self.slug})

    def clean(self):
        errors = {}
        if self.pk and self.parent_id == self.pk:
            errors["parent"] = ["An organization cannot be its own parent."]
        self.explain(errors)

    def slug_text(self):
        return self.acronym or self.name


class TieKind(models.TextChoices):
    SISTER = "sister", "Sister city"
    PARTNER = "partner", "Partner city"
    FRIENDSHIP = "friendship", "Friendship city"
    MOU = "mou", "Memorandum of understanding / cooperation agreement"
    OTHER = "other", "Other"
    UNSPECIFIED = "unspecified", "Twinning (kind not stated by the source)"


# The kinds a twinning of unstated kind may turn out to be: a source that states one of them
# for the pair states the kind of its *unspecified* tie rather than adding a second tie.
TWINNING_KINDS = frozenset({TieKind.SISTER, TieKind.PARTNER, TieKind.FRIENDSHIP})


class TieStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    ENDED = "ended", "Ended"
    UNKNOWN = "unknown", "Not stated"


class DateBasis(models.TextChoices):
    SIGNING = "signing", "Signing"
    COUNCIL_APPROVAL = "council_approval", "Council approval"
    ANNOUNCEMENT = "announcement", "Announcement"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Not stated"


class TieQuerySet(models.QuerySet):
    def for_city(self, city):
        """Ties of `city`, whichever end it was entered at."""
        return self.filter(Q(city_a=city) | Q(city_b=city))

    def between(self, city, other):
        """Ties between two cities, in either direction."""
        return self.filter(Q(city_a=city, city_b=other) | Q(city_a=other, city_b=city))

    def active(self):
        return self.filter(status=TieStatus.ACTIVE)

    def undated(self):
        return self.filter(start="")

    def unsourced(self):
        return self.filter(citations__isnull=True)

    def for_list(self):
        """Ties with both cities, for lists, exports and the API."""
        return self.select_related("city_a", "city_b")

    def for_profile(self):
        """Ties with both cities, their topics and cited sources, for a city profile."""
        return self.for_list().prefetch_related(
            "topics",
            Prefetch("citations", queryset=TieCitation.objects.select_related("source")),
        )


class TieManager(models.Manager.from_queryset(TieQuerySet)):
    def get_by_natural_key(self, city_a_slug, city_b_slug, kind):
        return self.get(
            Q(city_a__slug=city_a_slug, city_b__slug=city_b_slug)
            | Q(city_a__slug=city_b_slug, city_b__slug=city_a_slug),
            kind=kind,
        )


class Tie(EDTFMixin, Curated):
    """A relationship between two cities. Undirected: one row per pair and kind."""

    city_a = models.ForeignKey(
        City, on_delete=models.PROTECT, related_name="ties_as_a", verbose_name="city"
    )
    city_b = models.ForeignKey(
        City, on_delete=models.PROTECT, related_name="ties_as_b", verbose_name="partner city"
    )
    kind = models.CharField("kind", max_length=16, choices=TieKind.choices)
    status = models.CharField(
        "status", max_length=12, choices=TieStatus.choices, default=TieStatus.UNKNOWN
    )
    start = edtf_field("start")
    start_lower = bound_field("start, earliest")
    start_upper = bound_field("start, latest")
    end = edtf_field("end")
    end_lower = bound_field("end, earliest")
    end_upper = bound_field("end, latest")
    date_basis = models.CharField(
        "date refers to", max_length=20, choices=DateBasis.choices, default=DateBasis.UNKNOWN,
        help_text="What the start date marks: signing, council approval, announcement.",
    )  # fmt: skip
    topics = models.ManyToManyField(Theme, blank=True, related_name="ties", verbose_name="topics")
    summary = models.TextField("summary", blank=True)

    history = HistoricalRecords()
    objects = TieManager()
    edtf_fields = ("start", "end")

    class Meta:
        ordering = ["start_lower", "id"]
        indexes = [
            models.Index(fields=["city_b", "kind"], name="tie_city_b_kind"),
            # Lists and keyset pages walk ties in this order.
            models.Index(fields=["start_lower", "id"], name="tie_start_order"),
        ]
        constraints = [
            verification_constraint("tie"),
            choices_constraint("kind", TieKind, "tie"),
            choices_constraint("status", TieStatus, "tie"),
            choices_constraint("date_basis", DateBasis, "tie"),
            models.CheckConstraint(
                condition=~Q(city_a=F("city_b")),
                name="tie_not_self",
                violation_error_message="A city cannot be tied to itself.",
            ),
            models.UniqueConstraint(
                Least("city_a", "city_b"),
                Greatest("city_a", "city_b"),
                "kind",
                name="tie_unique_pair_kind",
                violation_error_message=DUPLICATE_TIE,
            ),
            end_not_before_start("tie"),
        ]

    def __str__(self):
        return f"{self.city_a.name} – {self.city_b.name} ({self.get_kind_display()})"

    def natural_key(self):
        return (self.city_a.slug, self.city_b.slug, self.kind)

    natural_key.dependencies = ["cities.city"]

    def get_absolute_url(self):
        return reverse("partnerships:tie_detail", kwargs={"pk": self.pk})

    @classmethod
    def from_db(cls, db, field_names, values):
        tie = super().from_db(db, field_names, values)
        # The kind as saved, so that clean() tells a change of kind from an edit of the rest.
        tie._saved_kind = tie.__dict__.get("kind")
        return tie

    def partner_of(self, city):
        """The other end of the tie as seen from `city`."""
        return self.city_b if self.city_a_id == city.pk else self.city_a

    def same_pair(self):
        """The other ties between this tie's two cities, of any kind."""
        ties = Tie.objects.between(self.city_a_id, self.city_b_id).select_related(
            "city_a", "city_b"
        )
        return ties.exclude(pk=self.pk) if self.pk else ties

    def unspecified_tie(self):
        """The pair's tie of unstated kind that this new sister, partner or friendship tie
        states the kind of (record_tie() saves it there), or None."""
        if self.pk or self.kind not in TWINNING_KINDS or not (self.city_a_id and self.city_b_id):
            return None
        return self.same_pair().filter(kind=TieKind.UNSPECIFIED).order_by("pk").first()

    def stated_twinning(self):
        """For a tie of unstated kind, new or just given that kind: the pair's sister, partner
        or friendship tie, which it would only repeat; else None."""
        if self.kind != TieKind.UNSPECIFIED or getattr(self, "_saved_kind", None) == self.kind:
            return None
        return self.same_pair().filter(kind__in=TWINNING_KINDS).order_by("pk").first()

    def clean(self):
        errors = {}
        if self.city_a_id and self.city_a_id == self.city_b_id:
            errors["city_b"] = [
                ValidationError("A city cannot be tied to itself.", code="self_tie")
            ]
        elif self.city_a_id and self.city_b_id and self.kind:
            existing = Tie.objects.between(self.city_a_id, self.city_b_id).filter(kind=self.kind)
            if self.pk:
                existing = existing.exclude(pk=self.pk)
            stated = self.stated_twinning()
            if existing.exists():
                errors["__all__"] = [ValidationError(DUPLICATE_TIE, code="duplicate_tie")]
            elif stated:
                errors["__all__"] = [
                    ValidationError(
                        KIND_ALREADY_STATED,
                        code="kind_already_stated",
                        params={
                            "kind": stated.get_kind_display().lower(),
                            "tie": f"{stated} (id {stated.pk})",
                            "id": stated.pk,
                        },
                    )
                ]
        check_dates(self, errors)
        self.explain(errors)

    def add_claims(self, topics=(), citations=()):
        """Add topics and unsaved citations to this saved tie, leaving out the citations it
        already has (same source and locator)."""
        if topics:
            self.topics.add(*topics)
        cited = set(self.citations.values_list("source_id", "locator"))
        for citation in citations:
            if (citation.source_id, citation.locator) not in cited:
                cited.add((citation.source_id, citation.locator))
                citation.tie = self
                citation.save()


def kind_stated_reason(previous, kind):
    """The edit history's reason for stating a tie's kind: "Kind stated: unspecified → sister"."""
    return f"Kind stated: {previous} → {kind}"


@dataclass
class KindStated:
    """What record_tie() did instead of adding a tie: the kind it replaced, and the values
    entered for fields the tie already had, which it kept."""

    previous: str
    kept: dict


# What a tie whose kind gets stated takes from the entry, each only where it has nothing:
# (fields taken together, their empty values). Dates go together, so that an entered end
# never meets a kept start it was not checked against.
_FILLED = [
    (("status",), (TieStatus.UNKNOWN,)),
    (("start", "end", "date_basis"), ("", "", DateBasis.UNKNOWN)),
    (("summary",), ("",)),
    (("curator_notes",), ("",)),
    (("verification",), (Verification.UNVERIFIED,)),
]


def record_tie(tie, *, topics=(), citations=(), user=None):
    """Save the new, validated `tie` with its topics and (unsaved) citations.

    A sister, partner or friendship tie for a pair whose tie is *unspecified* states that
    tie's kind instead of adding a second tie: `tie` takes the other's place (its id, history
    and citations) and keeps that tie's values except where it had none. The change is in the
    edit history as "Kind stated: unspecified → sister" by `user`. Returns a KindStated then,
    and None when it saved a tie of its own.
    """
    with transaction.atomic():
        target = tie.unspecified_tie()
        if target is None:
            tie.save()
            tie.add_claims(topics, citations)
            return None
        kept = {}
        for names, empty in _FILLED:
            current = tuple(getattr(target, name) for name in names)
            entered = tuple(getattr(tie, name) for name in names)
            if current == empty:
                continue
            kept.update(
                (name, value)
                for name, value, was, blank in zip(names, entered, current, empty, strict=True)
                if value not in (blank, was)
            )
            for name, value in zip(names, current, strict=True):
                setattr(tie, name, value)
        tie.pk, tie.created_at = target.pk, target.created_at
        tie._state.adding = False
        tie._change_reason = kind_stated_reason(target.kind, tie.kind)
        if user is not None:
            tie._history_user = user
        tie.save()
        tie._saved_kind = tie.kind
        tie.add_claims(topics, citations)
    return KindStated(previous=target.kind, kept=kept)


def tie_count():
    """An annotation: the ties at either end of each city, as two correlated counts on the
    indexed foreign keys (a join to both ends would multiply rows)."""
    return count_of(Tie, "city_a") + count_of(Tie, "city_b")


def tie_counts(cities):
    """{city id: number of ties} for a few cities, in one query."""
    ids = [getattr(c, "pk", c) for c in cities]
    return dict(City.objects.filter(pk__in=ids).annotate(n=tie_count()).values_list("pk", "n"))


class TieCitation(CitationBase):
    claim_field = "tie"
    tie = models.ForeignKey(Tie, on_delete=models.CASCADE, related_name="citations")
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="tie_citations")
    history = HistoricalRecords()

    class Meta(CitationBase.Meta):
        verbose_name = "tie citation"
        constraints = [CitationBase.unique_per_claim("tiecitation", "tie")]


class MembershipRole(models.TextChoices):
    MEMBER = "member", "Member"
    FOUNDING_MEMBER = "founding_member", "Founding member"
    BOARD = "board", "Board / steering committee"
    CHAIR = "chair", "Chair"
    OBSERVER = "observer", "Observer"


class MembershipQuerySet(models.QuerySet):
    def for_profile(self):
        """Memberships with organization and cited sources, for profiles and member lists."""
        return self.select_related("organization", "city", "member_organization").prefetch_related(
            Prefetch("citations", queryset=MembershipCitation.objects.select_related("source"))
        )


class MembershipManager(models.Manager.from_queryset(MembershipQuerySet)):
    def get_by_natural_key(self, organization_slug, city_slug, member_slug, role):
        return self.get(
            organization__slug=organization_slug,
            city__slug=city_slug or None,
            member_organization__slug=member_slug or None,
            role=role,
        )


class Membership(EDTFMixin, Curated):
    """A city, or an organization, in an organization."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships",
        verbose_name="organization",
    )  # fmt: skip
    city = models.ForeignKey(
        City, on_delete=models.CASCADE, null=True, blank=True, related_name="memberships",
        verbose_name="member city",
    )  # fmt: skip
    member_organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True,
        related_name="memberships_held", verbose_name="member organization",
    )  # fmt: skip
    role = models.CharField(
        "role", max_length=20, choices=MembershipRole.choices, default=MembershipRole.MEMBER
    )
    since = edtf_field("since")
    since_lower = bound_field("since, earliest")
    since_upper = bound_field("since, latest")
    until = edtf_field("until")
    until_lower = bound_field("until, earliest")
    until_upper = bound_field("until, latest")
    summary = models.TextField("summary", blank=True)

    history = HistoricalRecords()
    objects = MembershipManager()
    edtf_fields = ("since", "until")

    class Meta:
        ordering = ["organization__name", "since_lower", "id"]
        constraints = [
            verification_constraint("membership"),
            choices_constraint("role", MembershipRole, "membership"),
            models.CheckConstraint(
                condition=Q(city__isnull=False, member_organization__isnull=True)
                | Q(city__isnull=True, member_organization__isnull=False),
                name="membership_one_member",
                violation_error_message="Choose either a member city or a member organization.",
            ),
            models.UniqueConstraint(
                fields=["organization", "city", "role"],
                condition=Q(city__isnull=False),
                name="membership_unique_city_role",
                violation_error_message="This city already has this role in this organization.",
            ),
            models.UniqueConstraint(
                fields=["organization", "member_organization", "role"],
                condition=Q(member_organization__isnull=False),
                name="membership_unique_org_role",
                violation_error_message="This member already has this role in this organization.",
            ),
            end_not_before_start("membership", "since", "until"),
        ]

    def __str__(self):
        member = self.city.name if self.city_id else self.member_organization.name
        return f"{member} in {self.organization.name} ({self.get_role_display()})"

    def natural_key(self):
        return (
            self.organization.slug,
            self.city.slug if self.city_id else "",
            self.member_organization.slug if self.member_organization_id else "",
            self.role,
        )

    natural_key.dependencies = ["cities.city", "partnerships.organization"]

    @property
    def member(self):
        return self.city if self.city_id else self.member_organization

    def clean(self):
        errors = {}
        if bool(self.city_id) == bool(self.member_organization_id):
            errors["__all__"] = [
                ValidationError(
                    "Choose either a member city or a member organization.",
                    code="one_member",
                )
            ]
        check_dates(self, errors, "since", "until")
        self.explain(errors)


class MembershipCitation(CitationBase):
    claim_field = "membership"
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="citations")
    source = models.ForeignKey(
        Source, on_delete=models.PROTECT, related_name="membership_citations"
    )
    history = HistoricalRecords()

    class Meta(CitationBase.Meta):
        verbose_name = "membership citation"
        constraints = [CitationBase.unique_per_claim("membershipcitation", "membership")]


class InitiativeKind(models.TextChoices):
    PROGRAMME = "programme", "Programme"
    PROJECT = "project", "Project"
    PLATFORM = "platform", "Platform or venue"
    STRATEGY = "strategy", "Strategy or policy document"
    OTHER = "other", "Other"


class InitiativeQuerySet(models.QuerySet):
    def involving(self, city=None, organization=None):
        """Initiatives a city (or organization) leads or takes part in; each accepts a record or
        a QuerySet of them."""
        match = Q()
        if city is not None:
            match |= Q(lead_city__in=_as_set(city)) | Q(partner_cities__in=_as_set(city))
        if organization is not None:
            organization = _as_set(organization)
            match |= Q(lead_organization__in=organization)
            match |= Q(partner_organizations__in=organization)
        return self.filter(match).distinct()

    def for_profile(self):
        """With the lead city or organization, in order of start: a profile's programmes."""
        return self.select_related("lead_city", "lead_organization").order_by(
            "start_lower", "name", "pk"
        )


class Initiative(SluggedMixin, EDTFMixin, Curated):
    """A programme, project, platform or strategy led by a city or an organization."""

    name = models.CharField("name", max_length=200)
    slug = models.SlugField(
        "slug", max_length=100, unique=True, blank=True,
        help_text="Used in web addresses; made from the name when left empty.",
    )  # fmt: skip
    kind = models.CharField("kind", max_length=16, choices=InitiativeKind.choices)
    lead_city = models.ForeignKey(
        City, on_delete=models.CASCADE, null=True, blank=True, related_name="initiatives",
        verbose_name="lead city",
    )  # fmt: skip
    lead_organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True,
        related_name="initiatives", verbose_name="lead organization",
    )  # fmt: skip
    partner_cities = models.ManyToManyField(
        City, blank=True, related_name="partner_initiatives", verbose_name="partner cities"
    )
    partner_organizations = models.ManyToManyField(
        Organization, blank=True, related_name="partner_initiatives",
        verbose_name="partner organizations",
    )  # fmt: skip
    start = edtf_field("start")
    start_lower = bound_field("start, earliest")
    start_upper = bound_field("start, latest")
    end = edtf_field("end")
    end_lower = bound_field("end, earliest")
    end_upper = bound_field("end, latest")
    summary = models.TextField("summary", blank=True)
    objectives = models.TextField(
        "objectives", blank=True, help_text="One objective per line, as the source states them."
    )
    website = models.URLField("website", max_length=300, blank=True)
    themes = models.ManyToManyField(
        Theme, blank=True, related_name="initiatives", verbose_name="themes"
    )

    history = HistoricalRecords()
    objects = SlugManager.from_queryset(InitiativeQuerySet)()
    edtf_fields = ("start", "end")

    class Meta:
        ordering = ["name", "slug"]
        constraints = [
            verification_constraint("initiative"),
            choices_constraint("kind", InitiativeKind, "initiative"),
            models.CheckConstraint(
                condition=Q(lead_city__isnull=False) | Q(lead_organization__isnull=False),
                name="initiative_has_lead",
                violation_error_message="Name the city or organization that leads it.",
            ),
            end_not_before_start("initiative"),
        ]

    def __str__(self):
        return self.name

    @property
    def objective_list(self):
        return [line.strip() for line in self.objectives.splitlines() if line.strip()]

    def clean(self):
        errors = {}
        if not self.lead_city_id and not self.lead_organization_id:
            errors["__all__"] = [
                ValidationError("Name the city or organization that leads it.", code="no_lead")
            ]
        check_dates(self, errors)
        self.explain(errors)


class InitiativeCitation(CitationBase):
    claim_field = "initiative"
    initiative = models.ForeignKey(Initiative, on_delete=models.CASCADE, related_name="citations")
    source = models.ForeignKey(
        Source, on_delete=models.PROTECT, related_name="initiative_citations"
    )
    history = HistoricalRecords()

    class Meta(CitationBase.Meta):
        verbose_name = "initiative citation"
        constraints = [CitationBase.unique_per_claim("initiativecitation", "initiative")]


class EventKind(models.TextChoices):
    VISIT = "visit", "Visit"
    AGREEMENT = "agreement", "Agreement signed"
    AWARD = "award", "Award"
    DESIGNATION = "designation", "Designation"
    AID = "aid", "Aid"
    JOINED = "joined", "Joined a network"
    LEFT = "left", "Left a network"
    SUMMIT = "summit", "Summit or conference"
    FOUNDED = "founded", "Founded an organization or programme"
    OTHER = "other", "Other"


class EventQuerySet(models.QuerySet):
    def involving(self, city=None, organization=None):
        """Events of a city (at either end of a visit) or of an organization; each accepts a
        record or a QuerySet of them."""
        match = Q()
        if city is not None:
            match |= Q(city__in=_as_set(city)) | Q(partner_city__in=_as_set(city))
        if organization is not None:
            match |= Q(organization__in=_as_set(organization))
        return self.filter(match).distinct()

    def for_profile(self):
        """With the cities and organization an event names: a profile's timeline."""
        return self.select_related("city", "partner_city", "organization")


class Event(SluggedMixin, EDTFMixin, Curated):
    """Something that happened at a (possibly unknown) date."""

    slug = models.SlugField(
        "slug", max_length=100, unique=True, blank=True,
        help_text="Used in web addresses; made from the name when left empty.",
    )  # fmt: skip
    kind = models.CharField("kind", max_length=16, choices=EventKind.choices)
    title = models.CharField("title", max_length=300)
    date = edtf_field("date")
    date_lower = bound_field("date, earliest")
    date_upper = bound_field("date, latest")
    city = models.ForeignKey(
        City, on_delete=models.CASCADE, null=True, blank=True, related_name="events",
        verbose_name="city",
    )  # fmt: skip
    partner_city = models.ForeignKey(
        City, on_delete=models.SET_NULL, null=True, blank=True, related_name="partner_events",
        verbose_name="other city",
    )  # fmt: skip
    organization = models.ForeignKey(
        Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="events",
        verbose_name="organization",
    )  # fmt: skip
    initiative = models.ForeignKey(
        Initiative, on_delete=models.SET_NULL, null=True, blank=True, related_name="events",
        verbose_name="initiative",
    )  # fmt: skip
    tie = models.ForeignKey(
        Tie, on_delete=models.SET_NULL, null=True, blank=True, related_name="events",
        verbose_name="tie",
    )  # fmt: skip
    summary = models.TextField("summary", blank=True)
    themes = models.ManyToManyField(Theme, blank=True, related_name="events", verbose_name="themes")

    history = HistoricalRecords()
    objects = SlugManager.from_queryset(EventQuerySet)()
    edtf_fields = ("date",)

    class Meta:
        ordering = ["date_lower", "slug"]
        constraints = [
            verification_constraint("event"),
            choices_constraint("kind", EventKind, "event"),
            models.CheckConstraint(
                condition=Q(city__isnull=False) | Q(organization__isnull=False),
                name="event_has_actor",
                violation_error_message="Name the city or organization the event concerns.",
            ),
        ]

    def __str__(self):
        return self.title

    def clean(self):
        errors = {}
        if not self.city_id and not self.organization_id:
            errors["__all__"] = [
                ValidationError(
                    "Name the city or organization the event concerns.", code="no_actor"
                )
            ]
        self.explain(errors)

    def slug_text(self):
        return self.title


class EventCitation(CitationBase):
    claim_field = "event"
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="citations")
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="event_citations")
    history = HistoricalRecords()

    class Meta(CitationBase.Meta):
        verbose_name = "event citation"
        constraints = [CitationBase.unique_per_claim("eventcitation", "event")]


class Measure(models.TextChoices):
    POPULATION = "population", "Population"
    SISTER_CITIES = "sister_cities", "Sister cities"
    PARTNER_CITIES = "partner_cities", "Partner cities"
    FRIENDSHIP_CITIES = "friendship_cities", "Friendship cities"
    MEMBERS = "members", "Members"
    PARTNER_COMPANIES = "partner_companies", "Partner companies"
    OTHER = "other", "Other"


class Qualifier(models.TextChoices):
    EXACT = "exact", "exactly"
    MORE_THAN = "more_than", "more than"
    AT_LEAST = "at_least", "at least"
    ABOUT = "about", "about"
    FEWER_THAN = "fewer_than", "fewer than"


# Which tie kind a stated count of ties corresponds to, so profiles can show stated vs recorded.
MEASURE_TIE_KIND = {
    Measure.SISTER_CITIES: TieKind.SISTER,
    Measure.PARTNER_CITIES: TieKind.PARTNER,
    Measure.FRIENDSHIP_CITIES: TieKind.FRIENDSHIP,
}


class StatedFigureQuerySet(models.QuerySet):
    def with_citations(self):
        """With each figure's citations and their sources, for profiles and comparisons."""
        return self.prefetch_related(
            Prefetch("citations", queryset=StatedFigureCitation.objects.select_related("source"))
        )


def latest_per_measure(figures):
    """{(city id, organization id, initiative id, measure): the most recent figure}; an undated
    figure counts only when none of its subject and measure is dated."""
    latest = {}
    for figure in sorted(figures, key=lambda f: (f.as_of_lower is not None, f.as_of_lower)):
        subject = (figure.city_id, figure.organization_id, figure.initiative_id)
        latest[(*subject, figure.measure)] = figure
    return latest


class StatedFigure(SluggedMixin, EDTFMixin, Curated):
    """What a source says about a count or size, kept apart from what the atlas records."""

    slug = models.SlugField(
        "slug", max_length=100, unique=True, blank=True,
        help_text="Used in web addresses; made from the name when left empty.",
    )  # fmt: skip
    city = models.ForeignKey(
        City, on_delete=models.CASCADE, null=True, blank=True, related_name="stated_figures",
        verbose_name="city",
    )  # fmt: skip
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True,
        related_name="stated_figures", verbose_name="organization",
    )  # fmt: skip
    initiative = models.ForeignKey(
        Initiative, on_delete=models.CASCADE, null=True, blank=True,
        related_name="stated_figures", verbose_name="initiative",
    )  # fmt: skip
    measure = models.CharField("measure", max_length=20, choices=Measure.choices)
    label = models.CharField(
        "label", max_length=200, blank=True,
        help_text="What is counted, in the source's words when the measure is not enough: "
        "'Japanese companies'.",
    )  # fmt: skip
    qualifier = models.CharField(
        "qualifier", max_length=12, choices=Qualifier.choices, default=Qualifier.EXACT,
        help_text="'over 3.5 million' is more than 3,500,000, not exactly.",
    )  # fmt: skip
    value = models.PositiveBigIntegerField("value")
    as_of = edtf_field(
        "as of", help_text="When the figure applies; empty when the source does not say."
    )
    as_of_lower = bound_field("as of, earliest")
    as_of_upper = bound_field("as of, latest")

    history = HistoricalRecords()
    objects = SlugManager.from_queryset(StatedFigureQuerySet)()
    edtf_fields = ("as_of",)

    class Meta:
        ordering = ["measure", "slug"]
        constraints = [
            verification_constraint("statedfigure"),
            choices_constraint("measure", Measure, "statedfigure"),
            choices_constraint("qualifier", Qualifier, "statedfigure"),
            models.CheckConstraint(
                condition=Q(city__isnull=False, organization__isnull=True, initiative__isnull=True)
                | Q(city__isnull=True, organization__isnull=False, initiative__isnull=True)
                | Q(city__isnull=True, organization__isnull=True, initiative__isnull=False),
                name="statedfigure_one_subject",
                violation_error_message="A figure is about exactly one city, organization or "
                "initiative.",
            ),
        ]

    def __str__(self):
        return f"{self.subject}: {self.display}"

    @property
    def subject(self):
        return self.city or self.organization or self.initiative

    @property
    def value_display(self):
        """'more than 3,500,000' or '53': the qualifier and the number, as the source states."""
        qualifier = "" if self.qualifier == Qualifier.EXACT else f"{self.get_qualifier_display()} "
        return f"{qualifier}{self.value:,}"

    @property
    def display(self):
        """'more than 3,500,000 population' or '53 sister cities'."""
        return f"{self.value_display} {self.label or self.get_measure_display().lower()}"

    def clean(self):
        errors = {}
        subjects = [self.city_id, self.organization_id, self.initiative_id]
        if sum(1 for s in subjects if s) != 1:
            errors["__all__"] = [
                ValidationError(
                    "A figure is about exactly one city, organization or initiative.",
                    code="one_subject",
                )
            ]
        self.explain(errors)

    def slug_text(self):
        return f"{self.subject} {self.measure}"


class StatedFigureCitation(CitationBase):
    claim_field = "figure"
    figure = models.ForeignKey(StatedFigure, on_delete=models.CASCADE, related_name="citations")
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="figure_citations")
    history = HistoricalRecords()

    class Meta(CitationBase.Meta):
        verbose_name = "stated figure citation"
        constraints = [CitationBase.unique_per_claim("statedfigurecitation", "figure")]


class OrganizationCitation(CitationBase):
    claim_field = "organization"
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="citations"
    )
    source = models.ForeignKey(
        Source, on_delete=models.PROTECT, related_name="organization_citations"
    )
    history = HistoricalRecords()

    class Meta(CitationBase.Meta):
        verbose_name = "organization citation"
        constraints = [CitationBase.unique_per_claim("organizationcitation", "organization")]


class ApiKeyQuerySet(models.QuerySet):
    def live(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A partner's key for the API. Only a SHA-256 of the key is kept; the key itself is
    shown once, when it is created, and cannot be recovered afterwards."""

    PREFIX_LENGTH = 8

    name = models.CharField(
        "partner", max_length=200,
        help_text="Who holds the key: the institution, network or tool, and a contact.",
    )  # fmt: skip
    prefix = models.CharField(
        "key starts with", max_length=PREFIX_LENGTH, unique=True, editable=False,
        help_text="The first characters of the key, to tell keys apart; not secret.",
    )  # fmt: skip
    hashed_key = models.CharField("SHA-256 of the key", max_length=64, unique=True, editable=False)
    requests_per_hour = models.PositiveIntegerField(
        "requests per hour", null=True, blank=True,
        help_text="Leave empty for the standard partner limit (API_KEY_THROTTLE_RATE).",
    )  # fmt: skip
    created_at = models.DateTimeField("created", auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name="created by", editable=False,
    )  # fmt: skip
    revoked_at = models.DateTimeField("revoked", null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at", "id"]
        # Only Editors manage keys: the Researcher group's add/change rights, granted for
        # every model by groups.sync_groups, must not reach them.
        default_permissions = ()
        permissions = [("manage_apikey", "Can create and revoke partner API keys")]
        constraints = [
            models.CheckConstraint(
                condition=Q(requests_per_hour__isnull=True) | Q(requests_per_hour__gt=0),
                name="apikey_rate_positive",
                violation_error_message="A key needs at least one request per hour; revoke it "
                "instead.",
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self):
        return self.revoked_at is not None

    @staticmethod
    def hash(raw_key):
        return hashlib.sha256(raw_key.encode()).hexdigest()

    def generate(self):
        """Give this key a new secret and return it; the caller shows it once and forgets it."""
        while True:
            raw = secrets.token_urlsafe(32)
            prefix = raw[: self.PREFIX_LENGTH]
            if not ApiKey.objects.filter(prefix=prefix).exists():
                break
        self.prefix, self.hashed_key = prefix, self.hash(raw)
        return raw

    @classmethod
    def find(cls, raw_key):
        """The key matching `raw_key`, revoked or not, or None."""
        candidate = cls.objects.filter(prefix=raw_key[: cls.PREFIX_LENGTH]).first()
        if candidate and hmac.compare_digest(candidate.hashed_key, cls.hash(raw_key)):
            return candidate
        return None

    def revoke(self):
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


# Corrections from readers --------------------------------------------------------------------
# What a reader says is wrong on a city's or a tie's page, sent from the public form
# (partnerships/corrections.py) and decided by a curator in the admin. Never shown publicly.


CORRECTION_MAX_TEXT = 2000


class CorrectionStatus(models.TextChoices):
    NEW = "new", "to review"
    ACCEPTED = "accepted", "accepted"
    DECLINED = "declined", "declined"


class Correction(models.Model):
    """A reader's suggestion about one city or one tie, and the curator's decision on it."""

    city = models.ForeignKey(
        City, on_delete=models.CASCADE, null=True, blank=True, related_name="corrections",
        verbose_name="city",
    )  # fmt: skip
    # A tie deleted (or collapsed into another by a merge) takes its suggestions with it; a
    # merged city's suggestions move to the city kept (merging._move_remaining).
    tie = models.ForeignKey(
        Tie, on_delete=models.CASCADE, null=True, blank=True, related_name="corrections",
        verbose_name="tie",
    )  # fmt: skip
    what_is_wrong = models.TextField("what is wrong", max_length=CORRECTION_MAX_TEXT)
    should_be = models.TextField("what it should be", max_length=CORRECTION_MAX_TEXT)
    source_url = models.URLField("source", max_length=500, blank=True)
    email = models.EmailField(
        "reader's e-mail", blank=True, help_text="Only to ask the reader about this suggestion; "
        "never shown on the site.",
    )  # fmt: skip
    created_at = models.DateTimeField("sent", auto_now_add=True)
    ip_hash = models.CharField(
        "sender (hashed address)", max_length=64, blank=True, editable=False,
        help_text="A keyed hash of the sender's network address: suggestions from one address "
        "share it; the address itself is not kept.",
    )  # fmt: skip
    status = models.CharField(
        "status", max_length=10, choices=CorrectionStatus.choices, default=CorrectionStatus.NEW
    )
    change_url = models.URLField(
        "the change made", max_length=500, blank=True,
        help_text="When accepting: the address of the change you made, e.g. the record's "
        "history page in the admin.",
    )  # fmt: skip
    decline_reason = models.TextField(
        "why declined", blank=True,
        help_text="When declining: why, in a sentence (no source, the source says otherwise, "
        "spam).",
    )  # fmt: skip
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name="decided by", editable=False,
    )  # fmt: skip
    decided_at = models.DateTimeField("decided", null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "correction from a reader"
        verbose_name_plural = "corrections from readers"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="correction_status_sent")]
        constraints = [
            choices_constraint("status", CorrectionStatus, "correction"),
            models.CheckConstraint(
                condition=Q(city__isnull=False, tie__isnull=True)
                | Q(city__isnull=True, tie__isnull=False),
                name="correction_about_one_record",
                violation_error_message="A correction is about one city or one tie.",
            ),
            models.CheckConstraint(
                condition=Q(
                    models.lookups.LessThanOrEqual(
                        models.functions.Length("what_is_wrong"), CORRECTION_MAX_TEXT
                    ),
                    models.lookups.LessThanOrEqual(
                        models.functions.Length("should_be"), CORRECTION_MAX_TEXT
                    ),
                ),
                name="correction_text_size",
                violation_error_message="Each text holds at most 2,000 characters.",
            ),
            models.CheckConstraint(
                condition=~Q(status=CorrectionStatus.ACCEPTED) | ~Q(change_url=""),
                name="correction_accepted_links_change",
                violation_error_message="An accepted correction links the change made.",
            ),
            models.CheckConstraint(
                condition=~Q(status=CorrectionStatus.DECLINED) | ~Q(decline_reason=""),
                name="correction_declined_has_reason",
                violation_error_message="A declined correction says why.",
            ),
        ]

    def __str__(self):
        return f"Correction {self.pk} ({self.get_status_display()})"

    @property
    def about(self):
        """The city or the tie the reader wrote about."""
        return self.city if self.city_id else self.tie

    def clean(self):
        errors = {}
        if self.status == CorrectionStatus.ACCEPTED and not self.change_url:
            errors["change_url"] = (
                "To accept, link the change you made (the record's history page, say), so "
                "that other curators can see what the suggestion led to."
            )
        if self.status == CorrectionStatus.DECLINED and not self.decline_reason.strip():
            errors["decline_reason"] = "To decline, say why in a sentence."
        if errors:
            raise ValidationError(errors)

    def decide(self, user):
        """Record who decided and when; a correction put back to review is undecided again."""
        if self.status == CorrectionStatus.NEW:
            self.decided_by, self.decided_at = None, None
        else:
            self.decided_by, self.decided_at = user, timezone.now()


class AtlasVersion(models.Model):
    """The atlas's version: one row that every committed write to the atlas's tables moves
    on, through database triggers (partnerships/readcache.py installs them after each
    migrate). Cached pages are filed under it, so no page outlives the data it shows."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    counter = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "atlas version"

    def __str__(self):
        return f"version {self.counter} of {self.changed_at:%Y-%m-%d %H:%M:%S}"


from .jobs import ImportJob  # noqa: E402, F401 (the import jobs, in a module of their own)
