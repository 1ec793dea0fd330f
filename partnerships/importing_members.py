"""Bulk import of a network's members from CSV or TSV files, on the ties' import machinery.

A member list names a city (matched or created exactly as `import_ties` does, through
partnerships.importing's CityIndex), an organization already in the atlas, and optionally the
member's role, since/until dates, a web address and a locator:

    table = read_table(path_or_bytes)                        # shared with the ties
    columns = resolve_member_mapping(table.header, mapping)  # this layout's fields
    plan = build_member_plan(table, columns, source=...)     # reads the database, writes nothing
    result = apply_members(plan, user=...)                   # a batch of rows per transaction

The plan walks the file as the ties' does (its cities, then what its rows add, a batch at a
time); only the reading of a row and the book of what it adds are this module's. An existing
membership of the same city, organization and role is confirmed (cited), never duplicated; a
row's dates fill in only what the membership lacks, and disagreements are reported. A member
list never creates an organization: an unknown one rejects the row.
"""

from collections import defaultdict
from dataclasses import dataclass

from cities import dates
from cities.models import SourceKind

# The ties' reading, city reconciliation, plan and writing, and the steps both imports' books
# share, are reused as they are; _end, _cell and _choice are private there but are exactly
# the same steps.
from .importing import (
    BadRow,
    ImportFileError,
    ImportPlan,
    Outcome,
    Sample,
    _Book,
    _cell,
    _choice,
    _end,
    apply_import,
    column_name,
    dataset_source,
    date_fields,
    fill_missing,
    fold,
    period,
    plan_rows,
    read_table,
    resolve_mapping,
    run_plan,
    source_url,
)
from .models import Membership, MembershipCitation, MembershipRole, Organization

FIELDS = {
    "city": "name of the member city",
    "country": "country of the member city",
    "lat": "latitude of the member city",
    "lng": "longitude of the member city",
    "coord": "coordinates of the member city as Point(longitude latitude)",
    "wikidata": "Wikidata id of the member city",
    "organization": "the organization (slug, name or acronym of one in the atlas)",
    "role": "role in the organization (member by default)",
    "since": "member since (EDTF)",
    "until": "member until (EDTF)",
    "source_url": "web address of the row's own source",
    "locator": "where in the source (default: the row number)",
}
REQUIRED = ("city", "country", "organization")
DEFAULT_LAYOUT = "city,country,lat,lng,organization,role,since,until,source_url,locator"

# What member lists write for the roles MembershipRole knows (keys folded).
ROLE_WORDS = {
    "full member": MembershipRole.MEMBER,
    "member city": MembershipRole.MEMBER,
    "founding member": MembershipRole.FOUNDING_MEMBER,
    "founding-member": MembershipRole.FOUNDING_MEMBER,
    "founding": MembershipRole.FOUNDING_MEMBER,
    "founder": MembershipRole.FOUNDING_MEMBER,
    "board": MembershipRole.BOARD,
    "board member": MembershipRole.BOARD,
    "steering committee": MembershipRole.BOARD,
    "executive committee": MembershipRole.BOARD,
    "executive bureau": MembershipRole.BOARD,
    "chairperson": MembershipRole.CHAIR,
    "chairman": MembershipRole.CHAIR,
    "co-chair": MembershipRole.CHAIR,
    "president": MembershipRole.CHAIR,
}
DATE_MAX = Membership._meta.get_field("since").max_length
LOCATOR_MAX = MembershipCitation._meta.get_field("locator").max_length


def resolve_member_mapping(header, mapping=None):
    """Field → column index for a member list: DEFAULT_LAYOUT, or the columns `mapping` names."""
    return resolve_mapping(header, mapping, FIELDS, REQUIRED)


def member_source(slug=None, title="", url="", kind=SourceKind.DATASET, **extra):
    """The Source a member list cites: it has no default, unlike the shared twin-town lists."""
    if not slug:
        raise ImportFileError(
            "A member list cites its own source: give its citation key (e.g. "
            "uclg-members-2026) and, for a new source, its title and web address."
        )
    return dataset_source(slug, title=title, url=url, kind=kind, **extra)


# One row -------------------------------------------------------------------------------------


@dataclass(slots=True)
class MemberRow:
    number: int
    end: object  # importing.End
    organization: Organization
    role: str
    since: str
    until: str
    source_url: str
    locator: str  # as the file gives it; empty when the row number stands for it


class Organizations:
    """The atlas's organizations by slug, name and acronym, loaded in one query."""

    def __init__(self):
        self.by_slug = {}
        self.by_name = defaultdict(list)
        self.by_acronym = defaultdict(list)
        for org in Organization.objects.order_by("pk"):
            self.by_slug[org.slug] = org
            self.by_name[fold(org.name)].append(org)
            if org.acronym:
                self.by_acronym[fold(org.acronym)].append(org)

    def find(self, text, column):
        if not text:
            raise BadRow(
                f"The organization (column {column}) is empty: name the network by its slug, "
                "name or acronym."
            )
        key = fold(text)
        if key in self.by_slug:
            return self.by_slug[key]
        for index in (self.by_name, self.by_acronym):
            found = index.get(key, ())
            if len(found) == 1:
                return found[0]
            if found:
                slugs = ", ".join(org.slug for org in found)
                raise BadRow(
                    f"“{text}” (column {column}) names several organizations ({slugs}): "
                    "give the slug of the one meant."
                )
        raise BadRow(
            f"“{text}” (column {column}) is not an organization in the atlas: give the slug, "
            "name or acronym of an existing one. A member list does not create networks: add "
            "it in the admin first."
        )


def parse_member_row(number, cells, columns, organizations):
    """A MemberRow, or BadRow with the reason in the researcher's words."""
    end = _end(cells, columns, "", which="member")
    organization = organizations.find(
        _cell(cells, columns, "organization"), column_name(columns, "organization")
    )
    text = _cell(cells, columns, "role")
    try:
        role = _choice(text, MembershipRole, ROLE_WORDS, "role")
    except BadRow:
        raise BadRow(
            f"“{text}” (column {column_name(columns, 'role')}) is not a membership role this atlas "
            "knows: write member, founding member, board, chair or observer."
        ) from None
    since, until = period(cells, columns, "since", "until", max_length=DATE_MAX, name_column=True)
    url = source_url(cells, columns)
    locator = _cell(cells, columns, "locator")
    if len(locator) > LOCATOR_MAX:
        raise BadRow(f"The locator is longer than {LOCATOR_MAX} characters.")
    return MemberRow(number, end, organization, role, since, until, url, locator)


# The plan -----------------------------------------------------------------------------------


class MembershipPlan(ImportPlan):
    """An ImportPlan whose claims are memberships: its cities, alternate names, city
    citations and sources are planned and written as the ties' are."""

    claim = "membership"
    command = "import_memberships"
    ends_per_row = 1

    def __init__(self, table, columns, source, *, organizations, **options):
        super().__init__(table, columns, source, **options)
        self.organizations = organizations

    def reset_claims(self):
        super().reset_claims()
        self.disagreements = Sample()  # (row number, what differs)

    @property
    def new_memberships(self):
        return self.new_claims

    def summary(self):
        """The figures of the report: the same for a dry run and the real run."""
        figures = {
            key: value
            for key, value in super().summary().items()
            if not key.startswith("ties_") and key != "rows_repeating_a_pair"
        }
        return {
            **figures,
            "memberships_created": len(self.new_claims),
            "memberships_already_in_atlas": self.actions["confirmed"],
            "rows_repeating_a_membership": self.actions["repeated"],
            "memberships_updated": len(self.updated_claims),
            "rows_with_differing_dates": len(self.disagreements),
        }

    def parse(self, number, cells):
        return parse_member_row(number, cells, self.columns, self.organizations)

    def find(self, row, places):
        return ((row.end, places.lookup(row.end)),)

    def new_book(self):
        return _MemberBook(self)


class _Membership:
    """A membership as the book follows it: its values, its id (the atlas's, or once
    written), and the row that planned it (None for one the atlas had)."""

    __slots__ = ("pk", "first", "organization", "city", "role", "since", "until")

    def __init__(self, pk, organization, city, role, since="", until="", first=None):
        self.pk, self.first, self.organization, self.city = pk, first, organization, city
        self.role, self.since, self.until = role, since, until

    def instance(self):
        return Membership(
            pk=self.pk,
            organization=self.organization,
            city=self.city,
            role=self.role,
            since=self.since,
            until=self.until,
        )

    def copy_to(self, membership, reason):
        membership.since, membership.until = self.since, self.until


class _MemberBook(_Book):
    """The city memberships of the atlas and of the plan, by (organization, city, role), so
    that a membership listed twice, or already in the atlas, is one membership citing every
    row that lists it."""

    model, citation_model = Membership, MembershipCitation
    fields = tuple(date_fields("since", "until"))

    def __init__(self, plan):
        # A row pointing at the list's own address cites the list, not a copy of it.
        super().__init__(plan, own_url=True)
        # Values only: a membership a row names is followed as a _Membership from then on.
        self.existing = {}  # (organization, city, role) → (pk, since, until)
        rows = Membership.objects.filter(city__isnull=False).values_list(
            "pk", "organization_id", "city_id", "role", "since", "until"
        )
        for pk, organization, city, role, since, until in rows:
            self.existing[(organization, city, role)] = (pk, since, until)
        self.loaded = {}
        self.planned = {}  # (organization, place uid, role) → _Membership the import creates
        # Memberships are thousands, not millions: every citation, so that the dataset's and
        # the rows' own web pages are checked against one set.
        self.cited = set(
            MembershipCitation.objects.values_list("membership_id", "source_id", "locator")
        )
        self.source_key = self.source.pk or "dataset"

    def add(self, row, place):
        """The row's Outcome: its membership of `place` planned, or found and cited."""
        organization = row.organization
        key = (organization.pk, place.uid, row.role or MembershipRole.MEMBER)
        if not place.is_new and key in self.existing:
            pk, since, until = self.existing[key]
            membership = self.loaded.get(pk)
            if membership is None:
                membership = self.loaded[pk] = _Membership(
                    pk, organization, place.city, key[2], since, until
                )
            outcome = Outcome(row.number, "confirmed", f"already in the atlas as membership {pk}")
        elif key in self.planned:
            membership = self.planned[key]
            outcome = Outcome(row.number, "repeated", f"same membership as row {membership.first}")
        else:
            membership = _Membership(None, organization, place.city, key[2], first=row.number)
            self.planned[key] = membership
            self._create(membership)
            outcome = Outcome(row.number, "created")
        locator = row.locator or f"row {row.number}"
        self._cite_once(membership, self.source_key, self.source, locator)
        if row.source_url:
            source_key, source = self._web_source(row.source_url)
            if source_key is not None:
                self._cite_once(membership, source_key, source, row.locator)
        conflicts = self._fill(membership, row)
        if conflicts:
            self.plan.disagreements.append((row.number, "; ".join(conflicts)))
            outcome.detail = "; ".join(filter(None, [outcome.detail, *conflicts]))
        return outcome

    def _cite_once(self, membership, source_key, source, locator):
        key = (membership if membership.first is not None else membership.pk, source_key, locator)
        if key not in self.cited:
            self.cited.add(key)
            self._cite(membership, source, locator)

    def _fill(self, membership, row):
        """Take the row's dates where the membership has none; report disagreements."""
        before = (membership.since, membership.until)
        values = (("since", row.since, ""), ("until", row.until, ""))
        conflicts, changed = fill_missing(membership, values, "membership")
        if not changed:
            return conflicts
        since_lower, _ = dates.bounds(membership.since)
        _, until_upper = dates.bounds(membership.until)
        if since_lower and until_upper and until_upper < since_lower:
            # Each date is sound, but with the membership's other one it would end first.
            membership.since, membership.until = before
            conflicts.append(
                f"since {row.since or before[0]} and until {row.until or before[1]} would end "
                "the membership before it began, kept its dates"
            )
        else:
            self._touch(membership)
        return conflicts


def build_member_plan(
    table,
    columns,
    source,
    *,
    source_is_new=False,
    skip_bad_rows=False,
    progress=None,
    count=True,
):
    """Decide, without writing anything, what importing the member list `table` does.
    Without `count` the rows' memberships are left to apply_members, which counts them as it
    writes."""
    plan = MembershipPlan(
        table,
        columns,
        source,
        organizations=Organizations(),
        source_is_new=source_is_new,
        skip_bad_rows=skip_bad_rows,
    )
    return plan_rows(plan, progress=progress, count=count)


# Writing ------------------------------------------------------------------------------------


def change_reason_for(plan):
    return plan.default_reason()


def apply_members(plan, user=None, change_reason=None, progress=None):
    """Write what `plan` says as apply_import writes a tie plan: the sources and cities, then
    the memberships and their citations a batch of rows at a time, with edit history
    attributed to `user`. Refuses, like apply_import, a plan with rejected rows unless built
    to skip them, and a plan applied before."""
    return apply_import(plan, user=user, change_reason=change_reason, progress=progress)


def run_member_import(
    data,
    *,
    source,
    source_is_new=False,
    name=None,
    mapping=None,
    delimiter=None,
    skip_bad_rows=False,
    dry_run=False,
    user=None,
    progress=None,
):
    """Read, plan and (unless `dry_run`) apply, a batch of rows at a time. Returns the plan.

    Raises ImportFileError for a file that cannot be read, ImportRejected when rows are bad
    and `skip_bad_rows` is off (nothing is written then)."""
    table = read_table(data, name=name, delimiter=delimiter)
    columns = resolve_member_mapping(table.header, mapping)
    plan = MembershipPlan(
        table,
        columns,
        source,
        organizations=Organizations(),
        source_is_new=source_is_new,
        skip_bad_rows=skip_bad_rows,
    )
    return run_plan(plan, dry_run=dry_run, user=user, progress=progress)
