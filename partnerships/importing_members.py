"""Bulk import of a network's members from CSV or TSV files, on the ties' import machinery.

A member list names a city (matched or created exactly as `import_ties` does, through
partnerships.importing's CityIndex), an organization already in the atlas, and optionally the
member's role, since/until dates, a web address and a locator:

    table = read_table(path_or_bytes)                        # shared with the ties
    columns = resolve_member_mapping(table.header, mapping)  # this layout's fields
    plan = build_member_plan(table, columns, source=...)     # reads the database, writes nothing
    result = apply_members(plan, user=...)                   # one transaction, with history

An existing membership of the same city, organization and role is confirmed (cited), never
duplicated; a row's dates fill in only what the membership lacks, and disagreements are
reported. A member list never creates an organization: an unknown one rejects the row.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from cities import dates
from cities.models import SourceKind

# The ties' reading, city reconciliation, plan, city writing and the steps both imports'
# books share are reused as they are; _end, _cell and _choice are private there but are
# exactly the same steps.
from .importing import (
    BadRow,
    ImportFileError,
    ImportPlan,
    ImportResult,
    Outcome,
    _cell,
    _choice,
    _end,
    apply_import,
    column_name,
    dataset_source,
    date_fields,
    fill_missing,
    fold,
    history_options,
    load_full,
    period,
    plan_rows,
    read_table,
    resolve_mapping,
    run_plan,
    source_url,
    sources_by_url,
    web_source,
    write_dated,
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


@dataclass
class MembershipPlan(ImportPlan):
    """An ImportPlan whose claims are memberships: its cities, alternate names, city
    citations and sources are planned, and written by apply_import, as the ties' are."""

    new_memberships: list = field(default_factory=list)
    updated_memberships: list = field(default_factory=list)
    membership_citations: list = field(default_factory=list)
    disagreements: list = field(default_factory=list)  # (row number, what differs)

    def summary(self):
        """The figures of the report: the same for a dry run and the real run."""
        actions = Counter(outcome.action for outcome in self.outcomes)
        figures = {
            key: value
            for key, value in super().summary().items()
            if not key.startswith("ties_") and key != "rows_repeating_a_pair"
        }
        figures["citations_created"] += len(self.membership_citations)
        return {
            **figures,
            "memberships_created": len(self.new_memberships),
            "memberships_already_in_atlas": actions["confirmed"],
            "rows_repeating_a_membership": actions["repeated"],
            "memberships_updated": len(self.updated_memberships),
            "rows_with_differing_dates": len(self.disagreements),
        }


class _MemberBook:
    """The city memberships of the atlas and of the plan, by (organization, city, role), so
    that a membership listed twice, or already in the atlas, is one membership citing every
    row that lists it."""

    def __init__(self, source, plan):
        self.plan = plan
        self.source = source
        # Values only: a full instance is loaded for the few memberships a row fills in.
        self.existing = {}  # (organization, city, role) → (pk, since, until)
        rows = Membership.objects.filter(city__isnull=False).values_list(
            "pk", "organization_id", "city_id", "role", "since", "until"
        )
        for pk, organization, city, role, since, until in rows:
            self.existing[(organization, city, role)] = (pk, since, until)
        self.loaded = {}
        self.planned = {}  # (organization, place uid, role) → (membership, first row)
        # Memberships are thousands, not millions: every citation, so that the dataset's and
        # the rows' own web pages are checked against one set.
        self.cited = set(
            MembershipCitation.objects.values_list("membership_id", "source_id", "locator")
        )
        self.url_sources = sources_by_url()
        if source.url:
            # A row pointing at the list's own address cites the list, not a copy of it.
            self.url_sources.setdefault(source.url, source)

    def add(self, row, place):
        """The row's Outcome: its membership of `place` planned, or found and cited."""
        organization = row.organization
        key = (organization.pk, place.uid, row.role or MembershipRole.MEMBER)
        if not place.is_new and key in self.existing:
            pk, since, until = self.existing[key]
            membership = self.loaded.get(pk)
            if membership is None:
                membership = self.loaded[pk] = Membership(
                    pk=pk,
                    organization=organization,
                    city=place.city,
                    role=key[2],
                    since=since,
                    until=until,
                )
            outcome = Outcome(row.number, "confirmed", f"already in the atlas as membership {pk}")
        elif key in self.planned:
            membership, first = self.planned[key]
            outcome = Outcome(row.number, "repeated", f"same membership as row {first}")
        else:
            membership = Membership(organization=organization, city=place.city, role=key[2])
            self.planned[key] = (membership, row.number)
            self.plan.new_memberships.append(membership)
            outcome = Outcome(row.number, "created")
        self._cite(membership, self.source, row.locator or f"row {row.number}")
        if row.source_url:
            self._cite_url(membership, row.source_url, row.locator)
        conflicts = self._fill(membership, row)
        if conflicts:
            self.plan.disagreements.append((row.number, "; ".join(conflicts)))
            outcome.detail = "; ".join(filter(None, [outcome.detail, *conflicts]))
        return outcome

    def _cite(self, membership, source, locator):
        key = (membership.pk or id(membership), source.pk or id(source), locator)
        if key not in self.cited:
            self.cited.add(key)
            self.plan.membership_citations.append(
                MembershipCitation(membership=membership, source=source, locator=locator)
            )

    def _cite_url(self, membership, url, locator):
        """Cite the row's own web page, a Source of its own found or planned by address."""
        source, _is_new = web_source(url, self.url_sources, self.plan, self.source)
        if source is not self.source:
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
        elif membership.pk and membership not in self.plan.updated_memberships:
            self.plan.updated_memberships.append(membership)
        return conflicts

    def finish(self):
        """Swap the value-only memberships a row fills in for full ones, so the history is
        whole."""

        def copy(light, membership):
            membership.since, membership.until = light.since, light.until

        load_full(Membership, self.plan.updated_memberships, copy)


def build_member_plan(
    table, columns, source, *, source_is_new=False, skip_bad_rows=False, progress=False
):
    """Decide, without writing anything, what importing the member list `table` does."""
    plan = MembershipPlan.for_table(
        table, source, source_is_new=source_is_new, skip_bad_rows=skip_bad_rows
    )
    organizations = Organizations()

    def read_row(number, cells, places):
        row = parse_member_row(number, cells, columns, organizations)
        return row, ((row.end, places.lookup(row.end)),)

    book = _MemberBook(source, plan)
    return plan_rows(plan, table, read_row, book, progress=progress)


# Writing ------------------------------------------------------------------------------------


def change_reason_for(plan):
    return f"import_memberships: {plan.table_name} ({plan.rows} rows)"


def apply_members(plan, user=None, change_reason=None, progress=False):
    """Write what `plan` says in one transaction, with edit history attributed to `user`:
    sources and cities through apply_import (the plan holds no ties), then the memberships
    and their citations. Refuses, like apply_import, a plan with rejected rows unless built
    to skip them, and a plan applied before."""
    reason = change_reason or change_reason_for(plan)
    history = history_options(plan, user, reason)
    try:
        with transaction.atomic():
            apply_import(plan, user=user, change_reason=reason, progress=progress)
            new, updated = plan.new_memberships, plan.updated_memberships
            fields = date_fields("since", "until")
            write_dated(Membership, new, updated, fields, history, timezone.now())
            bulk_create_with_history(plan.membership_citations, MembershipCitation, **history)
    except Exception:
        plan.applied = False  # rolled back: nothing of it was written
        raise
    return ImportResult(written=plan.summary(), change_reason=reason)


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
    progress=False,
):
    """Read, plan and (unless `dry_run`) apply in one transaction. Returns the plan.

    Raises ImportFileError for a file that cannot be read, ImportRejected when rows are bad
    and `skip_bad_rows` is off (nothing is written then)."""
    table = read_table(data, name=name, delimiter=delimiter)
    columns = resolve_member_mapping(table.header, mapping)
    return run_plan(
        table,
        columns,
        source,
        build=build_member_plan,
        apply=apply_members,
        dry_run=dry_run,
        user=user,
        progress=progress,
        source_is_new=source_is_new,
        skip_bad_rows=skip_bad_rows,
    )
