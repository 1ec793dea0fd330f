"""Curation views of the admin: importing a file with a dry run, merging duplicate cities, and
the list of what needs attention.

The decisions live in partnerships.importing and partnerships.merging, shared with the
import_ties command; these views ask, show what would happen, and confirm. A confirmed import
runs in the background (partnerships.jobs), and its page follows it. partnerships/admin.py
wires them into the Tie and City admins through get_urls().
"""

import io
import logging
from pathlib import Path

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.views.decorators.http import require_POST
from django_countries import countries

from cities.duplicates import find_duplicate_cities
from cities.models import City, NotDuplicate, Verification

from . import curation, jobs
from .forms import ImportForm, MergeForm, NotDuplicateForm, source_for
from .importing import (
    ImportFileError,
    apply_import,
    build_import_plan,
    read_table,
    reporting,
    write_report,
)
from .jobs import ACTIVE, RESUME, ImportBusy, ImportJob, JobKind, JobStatus
from .merging import merge_cities
from .models import Tie, tie_counts

logger = logging.getLogger(__name__)

# How long an uploaded file waits for its confirmation.
PENDING_SECONDS = 6 * 3600
PENDING_KEY = "pending_import"
SAMPLE = 20
REJECTED_SHOWN = 100
# The page of a running import reloads itself this often; the upload page lists this many
# of the latest imports.
JOB_REFRESH_SECONDS = 3
RECENT_JOBS = 5
JOB_TITLES = {
    JobStatus.QUEUED: "Importing {name}",
    JobStatus.RUNNING: "Importing {name}",
    JobStatus.DONE: "Imported {name}",
    JobStatus.CHANGED: "{name}: the atlas changed since the preview",
    JobStatus.FAILED: "{name}: the import failed",
}
DUPLICATES_PER_PAGE = 50

# The figures of an import's dry run, in order: the rows and cities (READ_LABELS), what the
# rows add (ties here, memberships in admin_members), the citations and sources (CITED_LABELS).
READ_LABELS = [
    ("rows", "rows read"),
    ("rows_rejected", "rows rejected"),
    ("cities_created", "cities created"),
    ("cities_matched", "cities matched in the atlas"),
    ("cities_updated", "cities completed (coordinates or Wikidata id)"),
    ("alternate_names_created", "alternate names added"),
]
CITED_LABELS = [
    ("citations_created", "citations added"),
    ("sources_created", "sources created"),
]
SUMMARY_LABELS = [
    *READ_LABELS,
    ("ties_created", "ties created"),
    ("ties_already_in_atlas", "rows confirming a tie already in the atlas"),
    ("rows_repeating_a_pair", "rows repeating a pair listed earlier (skipped as duplicates)"),
    ("ties_updated", "ties completed (kind, status or dates)"),
    ("ties_kind_stated", "twinnings of unstated kind given the kind a row states"),
    *CITED_LABELS,
]


def admin_context(model_admin, request, title, **extra):
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        **extra,
    }


# Import -------------------------------------------------------------------------------------


class ImportedFilter(admin.SimpleListFilter):
    """The ties one admin import created or changed: those whose history records it."""

    title = "import"
    parameter_name = "imported"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, f"import {value}")] if value else []

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        written = Tie.history.filter(history_change_reason__endswith=f"import {self.value()}")
        return queryset.filter(pk__in=written.values("id"))


class TieImport:
    """What the admin's import views below name for one kind of import: the ties' here,
    admin_members.MemberImport a member list's. The views take it as `steps`."""

    form = ImportForm
    title = "Import ties from a file"
    templates = "admin/partnerships/tie"  # import_form.html and import_preview.html
    url = "admin:partnerships_tie_import"  # and its _confirm, _cancel and _rejected
    slot = PENDING_KEY  # the session key of the upload waiting for its confirmation
    labels = SUMMARY_LABELS
    skipped = ("repeated", "cited")  # the outcomes of rows that add nothing
    sample = "new_ties"  # the plan's list the preview samples, under the same name

    def build(self, table, columns, source, *, source_is_new, skip_bad_rows, kind):
        return build_import_plan(
            table,
            columns,
            source,
            source_is_new=source_is_new,
            default_kind=kind,
            skip_bad_rows=skip_bad_rows,
        )

    def apply(self, plan, user, change_reason):
        apply_import(plan, user=user, change_reason=change_reason)

    def reason(self, pending):
        # The token marks this import's history rows, so that the list can show what it wrote.
        return (
            f"Imported from the admin: {pending['name']} ({pending['summary']['rows']} rows), "
            f"import {pending['token'][:12]}"
        )

    def done(self, pending, summary):
        """(the message logged, the message shown, the page shown) once the import is
        written."""
        message = (
            f"Imported {pending['name']}: {summary['ties_created']:,} ties and "
            f"{summary['cities_created']:,} cities created, {summary['cities_matched']:,} cities "
            f"matched, {summary['citations_created']:,} citations added, "
            f"{summary['rows_rejected']:,} rows rejected."
        )
        imported = urlencode({ImportedFilter.parameter_name: pending["token"][:12]})
        shown = message + " Listed below: the ties it created or changed."
        return message, shown, f"{reverse('admin:partnerships_tie_changelist')}?{imported}"


TIE_IMPORT = TieImport()
# What the page of a finished import links to, by what the import adds.
DONE_LINKS = {
    JobKind.TIE: "Show the ties it created or changed",
    JobKind.MEMBERSHIP: "Show the memberships",
}


def steps_for(kind):
    """The import steps of a job's kind."""
    from .admin_members import MEMBER_IMPORT  # built on this module's views

    return MEMBER_IMPORT if kind == JobKind.MEMBERSHIP else TIE_IMPORT


def job_kind(model_admin):
    """The kind of import an admin's import pages run: its model's name (tie, membership)."""
    return model_admin.model._meta.model_name


def plan_pending(pending, skip_bad_rows=None, steps=TIE_IMPORT):
    """Plan the waiting import again, from the stored file and options. Writes nothing."""
    table = read_table(pending["text"].encode("utf-8"), name=pending["name"])
    columns = steps.form.resolve_columns(table.header, pending["mapping"])
    source_fields = pending["source"]
    source, is_new = source_for(
        {
            "source_slug": source_fields["slug"],
            "source_title": source_fields["title"],
            "source_url": source_fields["url"],
        }
    )
    skip = pending["skip_bad_rows"] if skip_bad_rows is None else skip_bad_rows
    return steps.build(
        table, columns, source, source_is_new=is_new, skip_bad_rows=skip, kind=pending["kind"]
    )


# The uploaded file waits for its confirmation in a session row of its own, in the database
# that every app server shares: the user's own session, read on every request, stays small.
# `slot` keeps another import's upload (admin_members) apart from the ties'. Once confirmed,
# the file moves to the import's job row (partnerships.jobs).


def save_pending(request, pending, slot=PENDING_KEY):
    discard_pending(request, slot)
    store = SessionStore()
    store.update(pending)
    store.set_expiry(PENDING_SECONDS)
    store.save()
    request.session[slot] = store.session_key


def load_pending(request, token, slot=PENDING_KEY):
    key = request.session.get(slot)
    if not key or not token:
        return None
    pending = SessionStore(session_key=key).load()
    if pending.get("token") != token or pending.get("user") != request.user.pk:
        return None
    return pending


def waiting_pending(request, slot=PENDING_KEY):
    """The user's upload that passed its dry run and waits for confirmation, or None."""
    key = request.session.get(slot)
    pending = SessionStore(session_key=key).load() if key else {}
    return pending if pending.get("token") and pending.get("user") == request.user.pk else None


def discard_pending(request, slot=PENDING_KEY):
    key = request.session.pop(slot, None)
    if key:
        SessionStore(session_key=key).delete()


def require_add_tie(model_admin, request):
    if not model_admin.has_add_permission(request):
        raise PermissionDenied


def import_view(request, model_admin, steps=TIE_IMPORT):
    """Upload a file and its options; answer with the dry-run report. With ?job=<id>: the
    page of a confirmed import, its progress, then its result."""
    require_add_tie(model_admin, request)  # the right to add this admin's records
    if request.method == "GET" and "job" in request.GET:
        return job_view(request, model_admin, steps)
    form = steps.form(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        plan = steps.build(
            form.table,
            form.columns,
            form.source,
            source_is_new=form.source_is_new,
            skip_bad_rows=form.cleaned_data["skip_bad_rows"],
            kind=form.cleaned_data.get("kind"),
        )
        pending = form.pending(request.user)
        pending["summary"] = plan.summary()
        save_pending(request, pending, steps.slot)
        return preview_response(model_admin, request, plan, pending, steps=steps)
    recent = ImportJob.objects.filter(kind=job_kind(model_admin)).select_related("curator")
    context = admin_context(
        model_admin,
        request,
        steps.title,
        form=form,
        import_url=steps.url,
        waiting=waiting_pending(request, steps.slot) if request.method == "GET" else None,
        jobs=recent.defer("file_text", "options", "summary", "report")[:RECENT_JOBS],
    )
    return TemplateResponse(request, f"{steps.templates}/import_form.html", context)


def preview_response(model_admin, request, plan, pending, steps=TIE_IMPORT):
    summary = plan.summary()
    outcomes = [o for o in plan.outcomes if o.action in steps.skipped]
    context = admin_context(
        model_admin,
        request,
        f"Import {plan.table_name}: what it would do",
        plan=plan,
        token=pending["token"],
        figures=[(label, summary[key]) for key, label in steps.labels],
        summary=summary,
        new_cities=[place.city for place in plan.new_places[:SAMPLE]],
        skipped=outcomes[:SAMPLE],
        rejected=plan.rejected[:REJECTED_SHOWN],
        more_rejected=max(0, len(plan.rejected) - REJECTED_SHOWN),
        sample=SAMPLE,
        import_url=steps.url,
        **{steps.sample: getattr(plan, steps.sample)[:SAMPLE]},
    )
    return TemplateResponse(request, f"{steps.templates}/import_preview.html", context)


@require_POST
def import_confirm_view(request, model_admin, steps=TIE_IMPORT):
    """Start the import the preview showed, in the background (partnerships.jobs): its job
    plans the file again and writes it only when the figures are still exactly the
    previewed ones. The answer is the job's page, at once."""
    require_add_tie(model_admin, request)
    if request.POST.get("job"):
        return confirm_again(request, model_admin, steps)
    pending = load_pending(request, request.POST.get("token"), steps.slot)
    if pending is None:
        messages.error(
            request,
            "This preview is no longer waiting: it was imported, cancelled, replaced by a newer "
            "upload or expired. Upload the file again.",
        )
        return HttpResponseRedirect(reverse(steps.url))
    pending["skip_bad_rows"] = pending["skip_bad_rows"] or request.POST.get("skip_bad_rows") == "1"
    options = {key: pending[key] for key in ("token", "mapping", "source", "kind", "summary")}
    options["skip_bad_rows"] = pending["skip_bad_rows"]
    job = start_job(request, model_admin, pending["name"], pending["text"], options)
    if job is None:
        # Refused while another import runs: the file waits on the upload page.
        save_pending(request, pending, steps.slot)
        return HttpResponseRedirect(reverse(steps.url))
    discard_pending(request, steps.slot)
    return HttpResponseRedirect(job.get_absolute_url())


def confirm_again(request, model_admin, steps):
    """Start again an import whose job found the atlas changed since its preview, now that
    the curator has seen and confirmed the new figures."""
    old = (
        ImportJob.objects.filter(
            pk=_job_id(request.POST.get("job")),
            kind=job_kind(model_admin),
            status=JobStatus.CHANGED,
            curator=request.user,
        )
        .exclude(file_text="")
        .first()
    )
    if old is None:
        messages.error(
            request,
            "This import is no longer waiting for a confirmation: it was started again, or "
            "it is not yours. Upload the file again.",
        )
        return HttpResponseRedirect(reverse(steps.url))
    options = {**old.options, "summary": old.summary}
    options["skip_bad_rows"] = options["skip_bad_rows"] or request.POST.get("skip_bad_rows") == "1"
    job = start_job(request, model_admin, old.file_name, old.file_text, options)
    if job is None:
        return HttpResponseRedirect(old.get_absolute_url())
    ImportJob.objects.filter(pk=old.pk).update(file_text="")  # the new job has the file
    return HttpResponseRedirect(job.get_absolute_url())


def start_job(request, model_admin, file_name, file_text, options):
    """The import's job, queued, its runner started once the job row is committed; None,
    with a message saying so, while another import runs."""
    try:
        job = ImportJob.objects.open(
            kind=job_kind(model_admin),
            curator=request.user,
            file_name=file_name,
            file_text=file_text,
            options=options,
        )
    except ImportBusy as busy:
        if busy.job is None:
            messages.error(request, str(busy))
        else:
            messages.error(
                request,
                format_html(
                    '{} <a href="{}">See its progress</a>.', busy, busy.job.get_absolute_url()
                ),
            )
        return None
    transaction.on_commit(lambda: launch(job))
    return job


def launch(job):
    """Start the job's runner; a runner that cannot start fails its job at once."""
    try:
        jobs.launch(job)
    except OSError as error:
        logger.exception("Import job %s could not be started", job.pk)
        job.finish(JobStatus.FAILED, error=f"The import could not be started: {error}.")


def _job_id(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("No such import.") from None


def job_view(request, model_admin, steps):
    """The page of a confirmed import: while it runs, its phase and how far it got,
    refreshing itself (a meta refresh: the site's Content-Security-Policy allows no inline
    script); then the figures of what it wrote and its rejected rows, or why it stopped."""
    ImportJob.objects.expire_stale()
    job = (
        ImportJob.objects.defer("file_text")
        .select_related("curator")
        .filter(pk=_job_id(request.GET.get("job")), kind=job_kind(model_admin))
        .first()
    )
    if job is None:
        raise Http404("No such import.")
    summary = job.summary or {}
    status = job.shown_status
    report = job.report or {}
    rejected = report.get("rejected", [])
    context = admin_context(
        model_admin,
        request,
        JOB_TITLES[status].format(name=job.file_name),
        job=job,
        status=status,
        refresh=JOB_REFRESH_SECONDS if status in ACTIVE else None,
        figures=[(label, summary[key]) for key, label in steps.labels if key in summary],
        rejected=rejected,
        more_rejected=max(0, summary.get("rows_rejected", 0) - len(rejected)),
        message=report.get("message", ""),
        link=report.get("url", ""),
        link_text=DONE_LINKS.get(job.kind, "Show what it wrote"),
        can_confirm=status == JobStatus.CHANGED and job.curator_id == request.user.pk,
        skip_needed=bool(summary.get("rows_rejected")) and not job.options.get("skip_bad_rows"),
        label=steps.title,
        import_url=steps.url,
    )
    return TemplateResponse(request, "admin/import_job.html", context)


def job_report(plan):
    """What a job's page lists besides the figures: the first rejected rows and why."""
    return {"rejected": [[number, reason] for number, reason, _ in plan.rejected[:REJECTED_SHOWN]]}


def run_job(job_id):
    """Run an import the admin queued (manage.py run_import_job): plan the stored file
    again and write it only when the figures are still exactly those the curator confirmed;
    otherwise record the new figures for a second confirmation. Returns the job, or None
    when it was not waiting to run."""
    job = ImportJob.objects.select_related("curator").filter(pk=job_id).first()
    if job is None or not job.claim(jobs.runner_name()):
        return None
    steps = steps_for(job.kind)
    pending = job.pending()
    job.file_text = ""  # the plan reads its own copy of the file
    try:
        with reporting(jobs.progress_of(job)):
            plan = plan_pending(pending, steps=steps)
            del pending["text"]
            if plan.summary() != pending["summary"] or not plan.can_apply:
                job.finish(
                    JobStatus.CHANGED,
                    summary=plan.summary(),
                    report=job_report(plan),
                    keep_file=True,
                )
                return job
            steps.apply(plan, user=job.curator, change_reason=steps.reason(pending))
    except jobs.JobLost:
        return job  # taken for dead: its row says so already
    except ImportFileError as error:
        job.finish(JobStatus.FAILED, error=f"Nothing was imported: {error}")
        return job
    except Exception as error:
        logger.exception("Import job %s stopped", job.pk)
        job.finish(JobStatus.FAILED, error=f"The import stopped: {error}. {RESUME}")
        return job
    summary = plan.summary()
    logged, _shown, url = steps.done(pending, summary)
    if job.curator_id:
        LogEntry.objects.log_actions(
            job.curator_id, [plan.source], CHANGE, change_message=logged, single_object=True
        )
    job.finish(
        JobStatus.DONE, summary=summary, report={**job_report(plan), "message": logged, "url": url}
    )
    return job


@require_POST
def import_cancel_view(request, model_admin, steps=TIE_IMPORT):
    require_add_tie(model_admin, request)
    if load_pending(request, request.POST.get("token"), steps.slot) is not None:
        discard_pending(request, steps.slot)
        messages.info(request, "The import was cancelled; nothing was written.")
    return HttpResponseRedirect(reverse(steps.url))


def import_rejected_view(request, model_admin, steps=TIE_IMPORT):
    """The rejected rows of the waiting import, with row numbers and reasons, as CSV."""
    require_add_tie(model_admin, request)
    pending = load_pending(request, request.GET.get("token"), steps.slot)
    if pending is None:
        messages.error(request, "This preview is no longer waiting. Upload the file again.")
        return HttpResponseRedirect(reverse(steps.url))
    plan = plan_pending(pending, steps=steps)
    out = io.StringIO()
    write_report(plan, out)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    name = f"{Path(pending['name']).stem}-rejected.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# Duplicate cities ---------------------------------------------------------------------------


def can_merge(model_admin, request):
    """Merging deletes one city: it needs the right to change cities and to delete them."""
    return model_admin.has_change_permission(request) and model_admin.has_delete_permission(request)


def duplicates_url(country="", page=""):
    """The duplicates queue, as the curator left it (country and page)."""
    query = urlencode({k: v for k, v in (("country", country), ("page", page)) if v})
    return reverse("admin:cities_city_duplicates") + (f"?{query}" if query else "")


def duplicates_view(request, model_admin):
    """The likely duplicate pairs, best first, with what tells them apart."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    country = request.GET.get("country", "")
    candidates = find_duplicate_cities()
    if country:
        # Either end: a pair across a border (FR and GP) shows under both countries.
        candidates = [c for c in candidates if country in (c.city.country, c.other.country)]
    page = Paginator(candidates, DUPLICATES_PER_PAGE).get_page(request.GET.get("page"))
    ids = {c.city.pk for c in page} | {c.other.pk for c in page}
    counts = tie_counts(ids) if ids else {}
    for candidate in page:
        candidate.ends = (candidate.city, candidate.other)
        for city in candidate.ends:
            city.tie_count = counts.get(city.pk, 0)
    codes = City.objects.exclude(country="").order_by().values_list("country", flat=True)
    context = admin_context(
        model_admin,
        request,
        "Possible duplicate cities",
        page=page,
        total=len(candidates),
        country=country,
        countries=sorted(((c, countries.name(c)) for c in codes.distinct()), key=lambda c: c[1]),
        can_merge=can_merge(model_admin, request),
        can_dismiss=model_admin.has_change_permission(request),
    )
    return TemplateResponse(request, "admin/cities/city/duplicates.html", context)


@require_POST
def not_duplicates_view(request, model_admin):
    """Record that a pair of the queue is two places: who, when and why. The pair never
    comes back; an Editor brings it back by deleting the decision."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    back = duplicates_url(request.POST.get("country", ""), request.POST.get("page", ""))
    form = NotDuplicateForm(request.POST)
    if not form.is_valid():
        problems = " ".join(m for errors in form.errors.values() for m in errors)
        messages.error(request, f"Nothing was recorded. {problems}")
        return HttpResponseRedirect(back)
    city, other, reason = (form.cleaned_data[k] for k in ("city", "other", "reason"))
    decision, created = NotDuplicate.objects.get_or_create(
        city=city, other=other, defaults={"reason": reason, "decided_by": request.user}
    )
    if not created:
        messages.info(request, f"{city} and {other} were already recorded as two places.")
        return HttpResponseRedirect(back)
    model_admin.log_change(request, city, f"Not a duplicate of {other}: {reason}")
    messages.success(
        request,
        f"{city} and {other} are recorded as two places; the pair leaves the duplicates queue.",
    )
    return HttpResponseRedirect(back)


class _Rollback(Exception):
    pass


def preview_merge(keep, other):
    """The MergeReport a merge would give, from a merge rolled back: the confirmation shows
    exactly what would move, collapse and be dropped, as merge_cities decides it."""
    try:
        with transaction.atomic():
            report = merge_cities(keep, other)
            raise _Rollback
    except _Rollback:
        return report


def merge_summary(report):
    """The figures of a MergeReport in a sentence."""

    def n(count, one, many):
        return f"{count:,} {one if count == 1 else many}"

    moved = ", ".join(f"{what} {count:,}" for what, count in report.moved.items())
    parts = [f"moved: {moved}" if moved else "nothing to move"]
    if report.collapsed_ties:
        parts.append(
            n(len(report.collapsed_ties), "tie", "ties") + " collapsed into the kept city's own"
        )
    if report.dropped_self_ties:
        parts.append(n(len(report.dropped_self_ties), "tie", "ties") + " between the two removed")
    if report.conflicts:
        parts.append(
            n(len(report.conflicts), "differing value", "differing values")
            + " noted in the curator notes"
        )
    return "; ".join(parts)


@require_POST
def merge_view(request, model_admin):
    """Confirm, then merge one city into another (POST twice: ask, then do)."""
    if not can_merge(model_admin, request):
        raise PermissionDenied
    country = request.POST.get("country", "")
    back = duplicates_url(country)
    form = MergeForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "These two cities cannot be merged: "
            + " ".join(m for errors in form.errors.values() for m in errors)
            + " One of them may have been merged or deleted meanwhile.",
        )
        return HttpResponseRedirect(back)
    keep, other = form.cleaned_data["keep"], form.cleaned_data["other"]
    if request.POST.get("confirm") != "yes":
        return merge_confirm_response(model_admin, request, keep, other, country)
    report = merge_cities(keep, other, user=request.user)
    summary = merge_summary(report)
    model_admin.log_change(request, report.kept, f"Merged {report.merged_name}; {summary}.")
    kept_url = reverse("admin:cities_city_change", args=[report.kept.pk])
    addresses = [reverse("partnerships:city_detail", args=[slug]) for slug in report.redirects]
    done = format_html(
        'Merged {} into <a href="{}">{}</a>. {}. {} now {} to it for good.',
        report.merged_name, kept_url, report.kept, capfirst(summary),
        ("Its web address " if len(addresses) == 1 else "Its web addresses ")
        + ", ".join(addresses),
        "leads" if len(addresses) == 1 else "lead",
    )  # fmt: skip
    messages.success(request, done)
    return HttpResponseRedirect(back)


def merge_confirm_response(model_admin, request, keep, other, country):
    """The page that shows what a merge would move, with its confirm button."""
    counts = tie_counts([keep, other])
    for city in (keep, other):
        city.tie_count = counts.get(city.pk, 0)
    context = admin_context(
        model_admin,
        request,
        f"Merge {other} into {keep}?",
        keep=keep,
        other=other,
        report=preview_merge(keep, other),
        country=country,
    )
    return TemplateResponse(request, "admin/cities/city/merge_confirm.html", context)


# Needs attention ----------------------------------------------------------------------------


def needs_attention_view(request, site):
    """What curators should look at next, with counts and links to the filtered lists."""
    checks = curation.visible_queue(request.user)
    visible = [
        model
        for model, model_admin in site._registry.items()
        if hasattr(model, "verification") and model_admin.has_view_permission(request)
    ]
    if not visible:
        raise PermissionDenied
    rows = [{"key": c.key, "label": c.label, "count": c.count(), "url": c.url()} for c in checks]
    # Ties are counted above; the other curated records' unverified counts follow.
    unverified = [
        {
            "key": f"{model._meta.model_name}_unverified",
            "label": f"Unverified {model._meta.verbose_name_plural}",
            "count": model._default_manager.filter(verification=Verification.UNVERIFIED).count(),
            "url": reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            + "?verification__exact=unverified",
        }
        for model in sorted(visible, key=lambda m: m._meta.verbose_name_plural)
        if model is not Tie
    ]
    context = {
        **site.each_context(request),
        "title": "Needs attention",
        "rows": rows,
        "unverified": unverified,
    }
    return TemplateResponse(request, "admin/needs_attention.html", context)
