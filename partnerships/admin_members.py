"""The admin's import of a network's members from a file: upload, dry run, confirm.

The steps are the ties' (admin_views), for memberships: the decisions live in
partnerships.importing_members, and these views share the ties' machinery — the upload kept
in a session row of its own until confirmed (admin_views.save_pending and friends, in a slot
of their own), the admin context, the form's reading and source checks (MembershipImportForm
extends ImportForm), and the confirmation that plans again and writes only what was shown.
The ties' views name their form, plan, templates and URLs in their bodies, so these stand
beside them rather than in them. partnerships/admin.py wires them into MembershipAdmin.
"""

import io
from pathlib import Path

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from .admin_views import (
    REJECTED_SHOWN,
    SAMPLE,
    _PlanChanged,
    admin_context,
    discard_pending,
    load_pending,
    require_add_tie,
    save_pending,
)
from .forms import ImportForm, source_for
from .importing import ImportFileError, read_table, write_report
from .importing_members import (
    DEFAULT_LAYOUT,
    FIELDS,
    apply_members,
    build_member_plan,
    resolve_member_mapping,
)

PENDING_SLOT = "pending_member_import"
IMPORT_URL = "admin:partnerships_membership_import"

SUMMARY_LABELS = [
    ("rows", "rows read"),
    ("rows_rejected", "rows rejected"),
    ("cities_created", "cities created"),
    ("cities_matched", "cities matched in the atlas"),
    ("cities_updated", "cities completed (coordinates or Wikidata id)"),
    ("alternate_names_created", "alternate names added"),
    ("memberships_created", "memberships created"),
    ("memberships_already_in_atlas", "rows confirming a membership already in the atlas"),
    ("rows_repeating_a_membership", "rows repeating a membership listed earlier"),
    ("memberships_updated", "memberships given dates they lacked"),
    ("rows_with_differing_dates", "rows whose dates differ from the recorded ones (kept)"),
    ("citations_created", "citations added"),
    ("sources_created", "sources created"),
]


class MembershipImportForm(ImportForm):
    """The ties' upload form for a member list: its own columns, no kind of tie, and a
    source always named (a member list has no default source)."""

    command = "import_memberships"
    resolve_columns = staticmethod(resolve_member_mapping)
    kind = None

    file = forms.FileField(
        label="CSV or TSV file",
        help_text="UTF-8, with or without a byte-order mark; the first row names the columns. "
        "Up to 20 MB: larger files go through manage.py import_memberships.",
    )
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
        try:
            return super().clean_mapping()
        except forms.ValidationError:
            raise forms.ValidationError(
                "Write the mapping as field=column pairs separated by commas, e.g. "
                'city=Member,organization=Network, or as a JSON object {"city": "Member"}.'
            ) from None


def plan_pending(pending, skip_bad_rows=None):
    """Plan the waiting member import again, from the stored file and options."""
    table = read_table(pending["text"].encode("utf-8"), name=pending["name"])
    columns = resolve_member_mapping(table.header, pending["mapping"])
    fields = pending["source"]
    source, is_new = source_for(
        {
            "source_slug": fields["slug"],
            "source_title": fields["title"],
            "source_url": fields["url"],
        }
    )
    skip = pending["skip_bad_rows"] if skip_bad_rows is None else skip_bad_rows
    return build_member_plan(table, columns, source, source_is_new=is_new, skip_bad_rows=skip)


def import_view(request, model_admin):
    """Upload a member list and its options; answer with the dry-run report."""
    require_add_tie(model_admin, request)  # the right to add this admin's records
    form = MembershipImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        plan = build_member_plan(
            form.table,
            form.columns,
            form.source,
            source_is_new=form.source_is_new,
            skip_bad_rows=form.cleaned_data["skip_bad_rows"],
        )
        pending = form.pending(request.user)
        pending["summary"] = plan.summary()
        save_pending(request, pending, PENDING_SLOT)
        return preview_response(model_admin, request, plan, pending)
    context = admin_context(model_admin, request, "Import members from a file", form=form)
    return TemplateResponse(request, "admin/partnerships/membership/import_form.html", context)


def preview_response(model_admin, request, plan, pending, changed=False):
    summary = plan.summary()
    skipped = [o for o in plan.outcomes if o.action in ("confirmed", "repeated")]
    context = admin_context(
        model_admin,
        request,
        f"Import {plan.table_name}: what it would do",
        plan=plan,
        token=pending["token"],
        figures=[(label, summary[key]) for key, label in SUMMARY_LABELS],
        summary=summary,
        new_cities=[place.city for place in plan.new_places[:SAMPLE]],
        new_memberships=plan.new_memberships[:SAMPLE],
        skipped=skipped[:SAMPLE],
        rejected=plan.rejected[:REJECTED_SHOWN],
        more_rejected=max(0, len(plan.rejected) - REJECTED_SHOWN),
        changed=changed,
        sample=SAMPLE,
    )
    return TemplateResponse(request, "admin/partnerships/membership/import_preview.html", context)


@require_POST
def import_confirm_view(request, model_admin):
    """Apply the import the preview showed: planned again from the same file and options,
    and written only when the figures are still exactly the previewed ones."""
    require_add_tie(model_admin, request)
    pending = load_pending(request, request.POST.get("token"), PENDING_SLOT)
    if pending is None:
        messages.error(
            request,
            "This preview is no longer waiting: it was imported, cancelled, replaced by a newer "
            "upload or expired. Upload the file again.",
        )
        return HttpResponseRedirect(reverse(IMPORT_URL))
    skip = pending["skip_bad_rows"] or request.POST.get("skip_bad_rows") == "1"
    reason = f"Imported from the admin: {pending['name']} ({pending['summary']['rows']} rows)"
    try:
        with transaction.atomic():
            plan = plan_pending(pending, skip_bad_rows=skip)
            if plan.summary() != pending["summary"] or not plan.can_apply:
                raise _PlanChanged(plan)
            apply_members(plan, user=request.user, change_reason=reason)
    except ImportFileError as error:
        messages.error(request, f"Nothing was imported: {error}")
        return HttpResponseRedirect(reverse(IMPORT_URL))
    except _PlanChanged as changed:
        # Someone changed the atlas since the preview: show what the import would do now.
        pending["summary"] = changed.plan.summary()
        save_pending(request, pending, PENDING_SLOT)
        return preview_response(model_admin, request, changed.plan, pending, changed=True)
    discard_pending(request, PENDING_SLOT)
    summary = plan.summary()
    message = (
        f"Imported {pending['name']}: {summary['memberships_created']:,} memberships and "
        f"{summary['cities_created']:,} cities created, "
        f"{summary['memberships_already_in_atlas']:,} memberships confirmed, "
        f"{summary['citations_created']:,} citations added, "
        f"{summary['rows_rejected']:,} rows rejected."
    )
    model_admin.log_change(request, plan.source, message)
    messages.success(request, message)
    return HttpResponseRedirect(reverse("admin:partnerships_membership_changelist"))


@require_POST
def import_cancel_view(request, model_admin):
    require_add_tie(model_admin, request)
    if load_pending(request, request.POST.get("token"), PENDING_SLOT) is not None:
        discard_pending(request, PENDING_SLOT)
        messages.info(request, "The import was cancelled; nothing was written.")
    return HttpResponseRedirect(reverse(IMPORT_URL))


def import_rejected_view(request, model_admin):
    """The rejected rows of the waiting member import, with row numbers and reasons, as CSV."""
    require_add_tie(model_admin, request)
    pending = load_pending(request, request.GET.get("token"), PENDING_SLOT)
    if pending is None:
        messages.error(request, "This preview is no longer waiting. Upload the file again.")
        return HttpResponseRedirect(reverse(IMPORT_URL))
    out = io.StringIO()
    write_report(plan_pending(pending), out)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    name = f"{Path(pending['name']).stem}-rejected.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
