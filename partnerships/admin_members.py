"""The admin's import of a network's members from a file: upload, dry run, confirm.

The steps are the ties' (admin_views), for memberships: the decisions live in
partnerships.importing_members, and the views are the ties' own, given MEMBER_IMPORT — this
import's form (MembershipImportForm extends ImportForm), plan, templates, URLs and the session
slot its upload waits in until confirmed. partnerships/admin.py wires them into
MembershipAdmin.
"""

from functools import partial

from django import forms
from django.urls import reverse

from . import admin_views
from .forms import ImportForm
from .importing_members import (
    DEFAULT_LAYOUT,
    FIELDS,
    apply_members,
    build_member_plan,
    resolve_member_mapping,
)

SUMMARY_LABELS = [
    *admin_views.READ_LABELS,
    ("memberships_created", "memberships created"),
    ("memberships_already_in_atlas", "rows confirming a membership already in the atlas"),
    ("rows_repeating_a_membership", "rows repeating a membership listed earlier"),
    ("memberships_updated", "memberships given dates they lacked"),
    ("rows_with_differing_dates", "rows whose dates differ from the recorded ones (kept)"),
    *admin_views.CITED_LABELS,
]


class MembershipImportForm(ImportForm):
    """The ties' upload form for a member list: its own columns, no kind of tie, and a
    source always named (a member list has no default source)."""

    command = "import_memberships"
    resolve_columns = staticmethod(resolve_member_mapping)
    mapping_example = 'city=Member,organization=Network, or as a JSON object {"city": "Member"}'
    kind = None

    source_slug = forms.SlugField(
        label="Source: citation key",
        max_length=100,
        help_text="Every imported membership cites this source, with its row number (or the "
        "row's locator). Give the key of an existing source, or a new key with a title below "
        "to create a dataset source.",
        error_messages={
            "required": "Name the member list's source: a citation key such as "
            "uclg-members-2026, with a title if it is new."
        },
    )
    mapping = forms.CharField(
        label="Column mapping",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text=f"Only for files not laid out as {DEFAULT_LAYOUT}: field=column pairs "
        "separated by commas (city=Member,organization=Network), or a JSON object. Fields: "
        + ", ".join(FIELDS)
        + ".",
    )

    def clean_mapping(self):
        # parse_mapping words its refusals with the ties' fields: say it with this layout's.
        try:
            return super().clean_mapping()
        except forms.ValidationError:
            raise self.mapping_refused() from None


class MemberImport(admin_views.TieImport):
    """What the shared import views name for a member list."""

    form = MembershipImportForm
    title = "Import members from a file"
    templates = "admin/partnerships/membership"
    url = "admin:partnerships_membership_import"
    slot = "pending_member_import"
    labels = SUMMARY_LABELS
    skipped = ("confirmed", "repeated")
    sample = "new_memberships"

    def build(self, table, columns, source, *, source_is_new, skip_bad_rows, kind=None):
        return build_member_plan(
            table, columns, source, source_is_new=source_is_new, skip_bad_rows=skip_bad_rows
        )

    def apply(self, plan, user, change_reason):
        apply_members(plan, user=user, change_reason=change_reason)

    def reason(self, pending):
        return f"Imported from the admin: {pending['name']} ({pending['summary']['rows']} rows)"

    def done(self, pending, summary):
        message = (
            f"Imported {pending['name']}: {summary['memberships_created']:,} memberships and "
            f"{summary['cities_created']:,} cities created, "
            f"{summary['memberships_already_in_atlas']:,} memberships confirmed, "
            f"{summary['citations_created']:,} citations added, "
            f"{summary['rows_rejected']:,} rows rejected."
        )
        return message, message, reverse("admin:partnerships_membership_changelist")


MEMBER_IMPORT = MemberImport()

# The ties' views, for a member list.
import_view = partial(admin_views.import_view, steps=MEMBER_IMPORT)
import_confirm_view = partial(admin_views.import_confirm_view, steps=MEMBER_IMPORT)
import_cancel_view = partial(admin_views.import_cancel_view, steps=MEMBER_IMPORT)
import_rejected_view = partial(admin_views.import_rejected_view, steps=MEMBER_IMPORT)
