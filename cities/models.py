import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import connections, models, transaction
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.text import slugify
from django_countries import countries
from simple_history.models import HistoricalRecords

from . import dates
from .text import fold

WIKIDATA_ID = RegexValidator(
    r"^Q[1-9][0-9]*$",
    "A Wikidata id is the letter Q followed by digits, for example Q38283 (Yokohama).",
    code="invalid_wikidata_id",
)


def country_codes():
    """Every ISO 3166-1 alpha-2 code the atlas accepts (with Kosovo's XK)."""
    return sorted(code for code, _name in countries)


def choices_constraint(field, choices, model_label):
    """A named CheckConstraint limiting `field` to `choices`, also for update() and imports."""
    return models.CheckConstraint(
        condition=Q(**{f"{field}__in": choices.values}),
        name=f"{model_label}_{field}_valid",
        violation_error_message=f"Choose one of the listed values for {field}.",
    )


def slug_for(model, text, max_length=80):
    """A slug for `text` that no row of `model` uses yet (Odesa, odesa-2, …)."""
    base = slugify(fold(text))[:max_length] or "item"
    slug, n = base, 1
    # An old address that redirects is taken too: reusing it would silently break the link.
    taken = SlugRedirect.objects if model is City else None
    while model._default_manager.filter(slug=slug).exists() or (
        taken is not None and taken.filter(slug=slug).exists()
    ):
        n += 1
        slug = f"{base[: max_length - len(str(n)) - 1]}-{n}"
    return slug


def count_of(model, field):
    """The number of `model` rows whose `field` points at the outer row.

    A subquery rather than Count(): it needs no GROUP BY, so several counts can sit beside
    list_select_related in a single changelist query.
    """
    rows = (
        model._default_manager.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


class SlugManager(models.Manager):
    """The manager of every model whose natural key is its slug (fixtures name records by it)."""

    def get_by_natural_key(self, slug):
        return self.get(slug=slug)


class SluggedMixin:
    """A slug made from `slug_text()` when left empty, unique in the model's table; the slug
    is also the record's natural key."""

    def slug_text(self):
        return self.name

    def natural_key(self):
        return (self.slug,)

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slug_for(type(self), self.slug_text())
        super().save(*args, **kwargs)


class Verification(models.TextChoices):
    UNVERIFIED = "unverified", "Unverified"
    VERIFIED = "verified", "Verified"
    DISPUTED = "disputed", "Disputed"


class Curated(models.Model):
    """Fields every curated record carries: its verification state and when it changed."""

    verification = models.CharField(
        "verification",
        max_length=12,
        choices=Verification.choices,
        default=Verification.UNVERIFIED,
        help_text="Verified: a curator checked every field against the cited sources.",
    )
    curator_notes = models.TextField(
        "curator notes", blank=True, help_text="Internal notes; not shown on the public site."
    )
    created_at = models.DateTimeField("created", auto_now_add=True)
    updated_at = models.DateTimeField("last changed", auto_now=True)

    class Meta:
        abstract = True

    def explain(self, errors):
        """Raise the rule violations clean() found, remembering them so that the database
        constraints stating the same rules do not show the message a second time."""
        self._explained = {
            " ".join(m.messages) if isinstance(m, ValidationError) else str(m)
            for messages in errors.values()
            for m in messages
        }
        if errors:
            raise ValidationError(errors)

    def validate_constraints(self, exclude=None):
        try:
            super().validate_constraints(exclude=exclude)
        except ValidationError as error:
            explained = getattr(self, "_explained", set())
            remaining = {}
            for field, messages in error.update_error_dict({}).items():
                kept = [m for m in messages if " ".join(m.messages) not in explained]
                if kept:
                    remaining[field] = kept
            if remaining:
                raise ValidationError(remaining) from None


def verification_constraint(label):
    return choices_constraint("verification", Verification, label)


class EDTFMixin:
    """Derives `<name>_lower`/`<name>_upper` from each EDTF field named in `edtf_fields`."""

    edtf_fields = ()

    def derive_dates(self):
        for name in self.edtf_fields:
            value = (getattr(self, name) or "").strip()
            setattr(self, name, value)
            try:
                lower, upper = dates.bounds(value)
            except ValidationError:
                lower = upper = None
            setattr(self, f"{name}_lower", lower)
            setattr(self, f"{name}_upper", upper)

    def save(self, *args, **kwargs):
        self.derive_dates()
        super().save(*args, **kwargs)


def edtf_field(verbose_name, help_text=dates.EDTF_HELP):
    return models.CharField(
        verbose_name,
        max_length=64,
        blank=True,
        validators=[dates.validate_edtf],
        help_text=help_text,
    )


def bound_field(verbose_name):
    return models.DateField(verbose_name, null=True, blank=True, editable=False)


class Theme(models.Model):
    name = models.CharField("name", max_length=80, unique=True)
    slug = models.SlugField("slug", max_length=80, unique=True)
    description = models.TextField("description", blank=True)

    history = HistoricalRecords()
    objects = SlugManager()

    class Meta:
        ordering = ["name", "slug"]

    def __str__(self):
        return self.name

    def natural_key(self):
        return (self.slug,)


class SourceKind(models.TextChoices):
    ARTICLE = "article", "Article"
    CITY_DOCUMENT = "city_document", "City document"
    DATASET = "dataset", "Dataset"
    WEB_PAGE = "web_page", "Web page"
    BOOK = "book", "Book"
    REPORT = "report", "Report"
    OTHER = "other", "Other"


class Source(SluggedMixin, EDTFMixin, models.Model):
    """A citable work. Every claim in the atlas cites at least one."""

    slug = models.SlugField(
        "citation key", max_length=100, unique=True, blank=True,
        help_text="Short stable key used in exports, e.g. wikipedia-twin-towns-2026; made "
        "from the title when left empty.",
    )  # fmt: skip
    kind = models.CharField(
        "kind", max_length=16, choices=SourceKind.choices, default=SourceKind.WEB_PAGE,
        help_text="Web page unless it is an article, a city document, a dataset, a book or a "
        "report.",
    )  # fmt: skip
    title = models.CharField("title", max_length=500)
    authors = models.CharField(
        "authors", max_length=500, blank=True,
        help_text="Family name, given names; separate several authors with semicolons. "
        "Leave empty when the work names none.",
    )  # fmt: skip
    container_title = models.CharField(
        "published in", max_length=300, blank=True,
        help_text="Journal, newspaper, website or series the work appeared in.",
    )  # fmt: skip
    publisher = models.CharField("publisher", max_length=300, blank=True)
    issued = edtf_field("date published")
    issued_lower = bound_field("published, earliest")
    issued_upper = bound_field("published, latest")
    url = models.URLField("web address", max_length=500, blank=True)
    accessed = models.DateField("date accessed", null=True, blank=True)
    licence = models.CharField("licence", max_length=200, blank=True)
    locator_link = models.CharField(
        "link to a place in the source", max_length=500, blank=True,
        help_text="A web address with {n} where a locator's number goes, so that a note can "
        "link to the exact row or page: https://github.com/…/twin_cities.csv#L{n}.",
    )  # fmt: skip
    note = models.TextField("note", blank=True)
    created_at = models.DateTimeField("created", auto_now_add=True)
    updated_at = models.DateTimeField("last changed", auto_now=True)

    history = HistoricalRecords()
    objects = SlugManager()
    edtf_fields = ("issued",)

    class Meta:
        ordering = ["title", "slug"]
        constraints = [choices_constraint("kind", SourceKind, "source")]

    def __str__(self):
        return self.title

    def slug_text(self):
        return self.title

    def get_absolute_url(self):
        return reverse("partnerships:source_detail", kwargs={"slug": self.slug})

    def link_to(self, locator):
        """The web address of the place a locator names ("row 15929" → …#L15929), or the
        source's own address when the source gives no pattern or the locator no number."""
        number = re.search(r"\d+", locator or "")
        if self.locator_link and number:
            return self.locator_link.replace("{n}", number.group())
        return self.url


class CitationManager(models.Manager):
    def get_by_natural_key(self, *key):
        *claim_key, source_slug, locator = key
        claim_model = self.model._meta.get_field(self.model.claim_field).related_model
        claim = claim_model._default_manager.get_by_natural_key(*claim_key)
        return self.get(
            **{self.model.claim_field: claim}, source__slug=source_slug, locator=locator
        )


class CitationBase(models.Model):
    """One claim citing one source, with a locator (page, paragraph, row).

    Each kind of claim has its own concrete table (CityCitation, TieCitation, …) with a
    foreign key named `claim_field`, so that fixtures and joins use real keys.
    """

    claim_field = None

    source = models.ForeignKey(
        Source, on_delete=models.PROTECT, related_name="+", verbose_name="source"
    )
    locator = models.CharField(
        "locator", max_length=100, blank=True,
        help_text="Where in the source: 'paragraph 3', 'p. 12', 'row 1045'.",
    )  # fmt: skip
    quote = models.TextField("quotation", blank=True, help_text="The words that support the claim.")
    created_at = models.DateTimeField("created", auto_now_add=True)

    objects = CitationManager()

    class Meta:
        abstract = True
        ordering = ["source__title", "locator", "id"]

    def __str__(self):
        return f"{self.source} ({self.locator})" if self.locator else str(self.source)

    @property
    def claim(self):
        return getattr(self, self.claim_field)

    def natural_key(self):
        return (*self.claim.natural_key(), self.source.slug, self.locator)

    @classmethod
    def unique_per_claim(cls, label, claim_field):
        return models.UniqueConstraint(
            fields=[claim_field, "source", "locator"],
            name=f"{label}_unique_per_claim",
            violation_error_message="This claim already cites that source at that place.",
        )


# The SQLite full-text table of every folded name of every city (cities/migrations/0007):
# trigrams, so that `LIKE '%…%'` on it is answered from its index.
NAME_INDEX = "cities_name_index"
# The shortest text trigrams can find; shorter texts are matched at the start of a name.
TRIGRAM = 3


class CityQuerySet(models.QuerySet):
    def search(self, text):
        """Cities any of whose names contains `text`, ignoring case, accents and script: the
        name, an alternate name, or a name the gazetteer knows the place by (Kiev, 横浜).
        One or two letters match the start of a name ("ny" finds Nyon, not Albany)."""
        folded = fold(text)
        if not folded:
            return self
        return self.filter(self._containing(folded))

    def named(self, text):
        """Cities one of whose names, alternate names or gazetteer names is `text`, ignoring
        case, accents and script ("odessa" finds Odesa)."""
        folded = fold(text)
        return self.filter(_named_in(exact=folded)) if folded else self.none()

    def ranked(self, text):
        """`search(text)` in the order a reader expects: cities one of whose names is exactly
        the text, then those with a name starting with it, then the rest; the most populous
        first within each (Paris, France before Paris, Texas; Odesa before Odessa, Texas)."""
        folded = fold(text)
        if not folded:
            return self
        rank = Case(
            When(_named_in(exact=folded), then=Value(0)),
            When(self._starting(folded), then=Value(1)),
            default=Value(2),
        )
        return (
            self.filter(self._containing(folded))
            .annotate(match_rank=rank)
            .order_by("match_rank", F("population").desc(nulls_last=True), "name", "pk")
        )

    def _containing(self, folded):
        """Cities one of whose names contains `folded`, read from a trigram index: the
        full-text table on SQLite, the `pg_trgm` index of each name column elsewhere."""
        if len(folded) < TRIGRAM:
            return self._starting(folded)
        connection = connections[self.db]
        if connection.vendor == "sqlite":
            # A folded text holds letters, digits and spaces: nothing to escape for LIKE.
            table = connection.ops.quote_name(NAME_INDEX)
            names = RawSQL(f"SELECT city_id FROM {table} WHERE folded LIKE %s", [f"%{folded}%"])
            return Q(pk__in=names)
        return _named_in(contains=folded)

    def _starting(self, folded):
        """Cities one of whose names starts with `folded`, read from each name column's
        ordinary index."""
        if connections[self.db].vendor == "sqlite":
            # SQLite's LIKE ignores case, so it cannot walk a binary index; a range can.
            following = folded[:-1] + chr(ord(folded[-1]) + 1)
            return _named_in(gte=folded, lt=following)
        return _named_in(startswith=folded)


def _named_in(**lookups):
    """A condition: the city's name, an alternate name or a search name passes `lookups`
    (`exact="odesa"`), as one IN over the three tables of names, each read through an index
    on its column. An EXISTS correlated with each city would visit every city, and an OR of
    three INs leaves PostgreSQL guessing that most cities match."""
    own = {f"folded_name__{lookup}": value for lookup, value in lookups.items()}
    names = {f"folded__{lookup}": value for lookup, value in lookups.items()}
    matches = (
        City.objects.filter(**own)
        .order_by()
        .values("pk")
        .union(
            AlternateName.objects.filter(**names).order_by().values("city"),
            SearchName.objects.filter(**names).order_by().values("city"),
            all=True,
        )
    )
    return Q(pk__in=matches)


class LocationFlag(models.TextChoices):
    """What the gazetteer says is wrong with a city's place, for a curator to check."""

    COORDINATES_DISAGREE = "coordinates_disagree", "Coordinates far from the gazetteer's place"
    OUTSIDE_COUNTRY = "outside_country", "Coordinates outside the city's country"
    COUNTRY_DIFFERS = "country_differs", "The gazetteer files it under another country"


class City(SluggedMixin, Curated):
    name = models.CharField("name", max_length=200, help_text="The name in English use.")
    slug = models.SlugField(
        "slug", max_length=100, unique=True, blank=True,
        help_text="Used in web addresses; made from the name when left empty.",
    )  # fmt: skip
    folded_name = models.CharField(max_length=200, editable=False, db_index=True)
    country = models.CharField(
        "country", max_length=2, blank=True, choices=list(countries),
        help_text="ISO 3166-1 alpha-2 code, for example JP or UA.",
        error_messages={
            "invalid_choice": "“%(value)s” is not a known country code: use the two-letter "
            "ISO 3166-1 code, for example JP for Japan or UA for Ukraine."
        },
    )  # fmt: skip
    subdivision = models.CharField(
        "subdivision", max_length=100, blank=True,
        help_text="Prefecture, state or province, as written in English.",
    )  # fmt: skip
    latitude = models.FloatField(
        "latitude", null=True, blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )  # fmt: skip
    longitude = models.FloatField(
        "longitude", null=True, blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )  # fmt: skip
    population = models.PositiveBigIntegerField("population", null=True, blank=True)
    population_year = models.PositiveSmallIntegerField(
        "population year", null=True, blank=True, help_text="The year the population refers to."
    )
    wikidata_id = models.CharField(
        "Wikidata id", max_length=20, blank=True, validators=[WIKIDATA_ID],
        help_text="For example Q38283.",
    )  # fmt: skip
    geonames_id = models.PositiveIntegerField("GeoNames id", null=True, blank=True)
    location_flag = models.CharField(
        "location check", max_length=24, blank=True, choices=LocationFlag.choices,
        help_text="Set when the coordinates or the country disagree with the gazetteer; "
        "cleared by a curator who has checked them.",
    )  # fmt: skip
    website = models.URLField("website", max_length=300, blank=True)
    summary = models.TextField("summary", blank=True)
    approach = models.TextField(
        "approach", blank=True, help_text="How the city acts internationally, in a few sentences."
    )
    themes = models.ManyToManyField(Theme, blank=True, related_name="cities", verbose_name="themes")

    history = HistoricalRecords(excluded_fields=["folded_name"])
    objects = SlugManager.from_queryset(CityQuerySet)()

    class Meta:
        verbose_name_plural = "cities"
        ordering = ["name", "slug"]
        constraints = [
            verification_constraint("city"),
            models.CheckConstraint(
                condition=Q(location_flag="") | Q(location_flag__in=LocationFlag.values),
                name="city_location_flag_valid",
                violation_error_message="Choose one of the listed location checks.",
            ),
            models.CheckConstraint(
                condition=Q(country="") | Q(country__in=country_codes()),
                name="city_country_iso_code",
                violation_error_message="Unknown country code: use ISO 3166-1 alpha-2 (JP, UA).",
            ),
            models.CheckConstraint(
                condition=Q(latitude__isnull=True) | Q(latitude__gte=-90, latitude__lte=90),
                name="city_latitude_range",
                violation_error_message="Latitude lies between -90 and 90.",
            ),
            models.CheckConstraint(
                condition=Q(longitude__isnull=True) | Q(longitude__gte=-180, longitude__lte=180),
                name="city_longitude_range",
                violation_error_message="Longitude lies between -180 and 180.",
            ),
            models.CheckConstraint(
                condition=Q(latitude__isnull=True, longitude__isnull=True)
                | Q(latitude__isnull=False, longitude__isnull=False),
                name="city_coordinates_pair",
                violation_error_message="Give both latitude and longitude, or neither.",
            ),
            models.CheckConstraint(
                condition=Q(wikidata_id="") | Q(wikidata_id__regex=r"^Q[1-9][0-9]*$"),
                name="city_wikidata_id_format",
                violation_error_message=WIKIDATA_ID.message,
            ),
            models.UniqueConstraint(
                fields=["wikidata_id"],
                condition=~Q(wikidata_id=""),
                name="city_wikidata_id_unique",
                violation_error_message="Another city already has this Wikidata id.",
            ),
            models.UniqueConstraint(
                fields=["geonames_id"],
                name="city_geonames_id_unique",
                violation_error_message="Another city already has this GeoNames id.",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.country})" if self.country else self.name

    def get_absolute_url(self):
        return reverse("partnerships:city_detail", kwargs={"slug": self.slug})

    @property
    def country_name(self):
        return countries.name(self.country) if self.country else ""

    @property
    def has_coordinates(self):
        return self.latitude is not None and self.longitude is not None

    def save(self, *args, **kwargs):
        self.folded_name = fold(self.name)
        super().save(*args, **kwargs)


class NameKind(models.TextChoices):
    NATIVE = "native", "Native / official"
    TRANSLITERATION = "transliteration", "Transliteration"
    FORMER = "former", "Former name"
    VARIANT = "variant", "Variant spelling"


class AlternateNameManager(models.Manager):
    def get_by_natural_key(self, city_slug, name, language):
        return self.get(city__slug=city_slug, name=name, language=language)


class AlternateName(models.Model):
    city = models.ForeignKey(
        City, on_delete=models.CASCADE, related_name="alternate_names", verbose_name="city"
    )
    name = models.CharField("name", max_length=200)
    language = models.CharField(
        "language", max_length=35, blank=True,
        help_text="BCP 47 tag: uk, ja, zh-Hant, ru-Latn. Empty when not known.",
    )  # fmt: skip
    kind = models.CharField(
        "kind", max_length=16, choices=NameKind.choices, default=NameKind.VARIANT
    )
    folded = models.CharField(max_length=200, editable=False, db_index=True)

    history = HistoricalRecords(excluded_fields=["folded"])
    objects = AlternateNameManager()

    class Meta:
        ordering = ["city", "name", "language", "id"]
        constraints = [
            choices_constraint("kind", NameKind, "alternatename"),
            models.UniqueConstraint(
                fields=["city", "name", "language"],
                name="alternatename_unique_per_city",
                violation_error_message="This city already has that name in that language.",
            ),
        ]

    def __str__(self):
        return f"{self.name} [{self.language}]" if self.language else self.name

    def natural_key(self):
        return (self.city.slug, self.name, self.language)

    natural_key.dependencies = ["cities.city"]

    def save(self, *args, **kwargs):
        self.folded = fold(self.name)
        super().save(*args, **kwargs)


class SearchName(models.Model):
    """A name a city is found by, in search and when files are matched, that the atlas does
    not assert: the gazetteer's names of the place (GeoNames lists noise such as "Bienne"
    under Vienna). Derived data, rebuilt by `link_gazetteer`; never shown as "also known as"."""

    city = models.ForeignKey(City, on_delete=models.CASCADE, related_name="search_names")
    name = models.CharField(max_length=200)
    folded = models.CharField(max_length=200, db_index=True)

    class Meta:
        ordering = ["city", "folded", "id"]
        constraints = [
            models.UniqueConstraint(fields=["city", "folded"], name="searchname_unique_per_city")
        ]

    def __str__(self):
        return self.name


class SlugRedirectManager(models.Manager):
    def record(self, changes):
        """Keep each old slug leading to its city for good: `changes` is [(city, old slug)]
        for cities whose slug just changed (a rename, a merge, a shared name's plain slug
        given to its most populous city). A slug a city now holds is nobody's redirect."""
        changes = [(city, old) for city, old in changes if old and old != city.slug]
        if not changes:
            return
        live = {city.slug for city, _old in changes}
        with transaction.atomic():
            self.filter(slug__in=live | {old for _city, old in changes}).delete()
            self.bulk_create(
                [SlugRedirect(slug=old, city=city) for city, old in changes if old not in live]
            )


class SlugRedirect(models.Model):
    """An address that once named a city (before a merge or a rename): it redirects for good,
    because people cite the atlas's URLs."""

    slug = models.SlugField("old slug", max_length=100, unique=True)
    city = models.ForeignKey(
        City, on_delete=models.CASCADE, related_name="old_slugs", verbose_name="city"
    )
    created_at = models.DateTimeField("since", auto_now_add=True)

    objects = SlugRedirectManager()

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return f"{self.slug} → {self.city.slug}"


class NotDuplicate(models.Model):
    """A curator's decision that two cities the duplicates queue paired are two places."""

    city = models.ForeignKey(City, on_delete=models.CASCADE, related_name="+")
    other = models.ForeignKey(City, on_delete=models.CASCADE, related_name="+")
    reason = models.TextField("why they are two places")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    decided_at = models.DateTimeField("decided", auto_now_add=True)

    class Meta:
        ordering = ["-decided_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["city", "other"], name="notduplicate_unique_pair"),
            models.CheckConstraint(
                condition=Q(city__lt=F("other")),
                name="notduplicate_ordered_pair",
                violation_error_message="Record a pair once, the lower id first.",
            ),
        ]

    def __str__(self):
        return f"{self.city} ≠ {self.other}"


class CityCitation(CitationBase):
    claim_field = "city"
    city = models.ForeignKey(
        City, on_delete=models.CASCADE, related_name="citations", verbose_name="city"
    )
    source = models.ForeignKey(
        Source, on_delete=models.PROTECT, related_name="city_citations", verbose_name="source"
    )

    history = HistoricalRecords()

    class Meta(CitationBase.Meta):
        verbose_name = "city citation"
        constraints = [CitationBase.unique_per_claim("citycitation", "city")]
