"""Duplicate cities merged into one, and the addresses they leave behind.

`merge_cities(keep, other)` moves everything that points at `other` onto `keep` in one
transaction and records it in the edit history; `other`'s slug keeps leading to `keep` (a
SlugRedirect). `SlugRedirect.objects.record()` does the same for a city whose slug a
curator changes: people cite the atlas's addresses, so none stops working.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalChanges

from cities.models import (
    AlternateName,
    City,
    NameKind,
    NotDuplicate,
    SlugRedirect,
    Verification,
)

from .models import Membership, Tie

# Merging --------------------------------------------------------------------------------------


@dataclass
class MergeReport:
    """What a merge did, for the curator's message and the record."""

    kept: City
    merged_name: str
    merged_slug: str
    moved: dict = field(default_factory=dict)  # what → how many rows moved onto the kept city
    collapsed_ties: list = field(default_factory=list)  # (removed tie id, kept tie id)
    dropped_self_ties: list = field(default_factory=list)  # descriptions, with their citations
    conflicts: list = field(default_factory=list)  # field values that could not both be kept
    redirects: list = field(default_factory=list)  # old slugs that now lead to the kept city

    def count(self, what, n=1):
        if n:
            self.moved[what] = self.moved.get(what, 0) + n


_FILLABLE = (
    "subdivision", "latitude", "longitude", "population", "population_year", "wikidata_id",
    "geonames_id", "website", "summary", "approach",
)  # fmt: skip
_PAIRED = {
    "latitude": "longitude", "longitude": "latitude",
    "population": "population_year", "population_year": "population",
}  # fmt: skip


def _stamp(obj, user, reason):
    obj._history_user = user
    obj._change_reason = reason
    return obj


def _citations_onto(source_claim, target_claim, user, reason, report, label):
    """Move the citations of one claim onto another, dropping exact repeats (same source and
    locator); a repeat whose quotation differs keeps it on the target when it has none."""
    manager = target_claim.citations
    claim_field = manager.model.claim_field
    existing = {(c.source_id, c.locator): c for c in manager.all()}
    for citation in list(source_claim.citations.all()):
        twin = existing.get((citation.source_id, citation.locator))
        if twin is None:
            setattr(citation, claim_field, target_claim)
            _stamp(citation, user, reason).save()
            existing[(citation.source_id, citation.locator)] = citation
            report.count(label)
        else:
            if citation.quote and not twin.quote:
                twin.quote = citation.quote
                _stamp(twin, user, reason).save()
            elif citation.quote and citation.quote != twin.quote:
                report.conflicts.append(
                    f"{label} {twin.pk}: kept quotation {twin.quote!r}, dropped {citation.quote!r}"
                )
            _stamp(citation, user, reason).delete()


def _fill_from(target, source, names, report, note_prefix):
    """Copy fields `target` lacks from `source`; note values that differ and were not kept."""
    changed = []
    for name in names:
        mine, theirs = getattr(target, name), getattr(source, name)
        if theirs in (None, ""):
            continue
        if mine in (None, ""):
            partner = _PAIRED.get(name)
            if partner and getattr(target, partner) not in (None, "") and partner not in changed:
                continue  # never mix one record's latitude with another's longitude
            setattr(target, name, theirs)
            changed.append(name)
        elif mine != theirs:
            report.conflicts.append(f"{note_prefix}{name}: kept {mine!r}, dropped {theirs!r}")
    return changed


def _merge_tie(keep_tie, tie, user, reason, report):
    known = len(report.conflicts)
    _citations_onto(tie, keep_tie, user, reason, report, "tie citations")
    changed = _fill_from(keep_tie, tie, ("start", "end", "summary"), report, f"tie {keep_tie.pk} ")
    # What could not be kept is written on the tie itself too, where a curator will look.
    notes = [tie.curator_notes, *report.conflicts[known:]]
    if keep_tie.status == "unknown" and tie.status != "unknown":
        keep_tie.status = tie.status
        changed.append("status")
    if keep_tie.date_basis == "unknown" and tie.date_basis != "unknown":
        keep_tie.date_basis = tie.date_basis
        changed.append("date_basis")
    if any(notes):
        keep_tie.curator_notes = "\n".join(filter(None, [keep_tie.curator_notes, *notes]))
        changed.append("curator_notes")
    if changed:
        _stamp(keep_tie, user, reason).save()
    keep_tie.topics.add(*tie.topics.all())
    for event in tie.events.all():
        event.tie = keep_tie
        _stamp(event, user, reason).save()
        report.count("events")
    report.collapsed_ties.append((tie.pk, keep_tie.pk))
    _stamp(tie, user, reason).delete()


def _merge_ties(keep, other, user, reason, report):
    kept_ties = {}
    for tie in Tie.objects.for_city(keep):
        partner_id = tie.city_b_id if tie.city_a_id == keep.pk else tie.city_a_id
        kept_ties[(partner_id, tie.kind)] = tie
    for tie in Tie.objects.for_city(other).select_related("city_a", "city_b").order_by("pk"):
        partner = tie.partner_of(other)
        if partner.pk == keep.pk:
            sources = ", ".join(
                f"{c.source.slug} {c.locator}".strip()
                for c in tie.citations.select_related("source")
            )
            report.dropped_self_ties.append(
                f"tie {tie.pk} {keep.name} – {other.name} ({tie.kind}); cited: {sources or 'none'}"
            )
            _stamp(tie, user, reason).delete()
            continue
        twin = kept_ties.get((partner.pk, tie.kind))
        if twin is not None:
            _merge_tie(twin, tie, user, reason, report)
            continue
        if tie.city_a_id == other.pk:
            tie.city_a = keep
        else:
            tie.city_b = keep
        _stamp(tie, user, reason).save()
        kept_ties[(partner.pk, tie.kind)] = tie
        report.count("ties")


def _merge_memberships(keep, other, user, reason, report):
    kept = {(m.organization_id, m.role): m for m in Membership.objects.filter(city=keep)}
    for membership in Membership.objects.filter(city=other).order_by("pk"):
        twin = kept.get((membership.organization_id, membership.role))
        if twin is None:
            membership.city = keep
            _stamp(membership, user, reason).save()
            report.count("memberships")
            continue
        _citations_onto(membership, twin, user, reason, report, "membership citations")
        if _fill_from(twin, membership, ("since", "until", "summary"), report, "membership "):
            _stamp(twin, user, reason).save()
        _stamp(membership, user, reason).delete()
        report.count("memberships collapsed")


def _merge_names(keep, other, user, reason, report):
    kept = set(keep.alternate_names.values_list("name", "language"))
    for alternate in other.alternate_names.order_by("pk"):
        if alternate.name == keep.name or (alternate.name, alternate.language) in kept:
            _stamp(alternate, user, reason).delete()
            continue
        alternate.city = keep
        _stamp(alternate, user, reason).save()
        kept.add((alternate.name, alternate.language))
        report.count("alternate names")
    if other.name != keep.name and (other.name, "") not in kept:
        _stamp(
            AlternateName(city=keep, name=other.name, kind=NameKind.VARIANT), user, reason
        ).save()
        report.count("alternate names")


def _merge_identity(keep, other, report):
    """What names the place rather than describes it: the merged city's gazetteer names
    (those the kept city lacks), its old addresses and its own, which lead to the kept city
    from now on, and the curators' decisions that it is not some third city."""
    known = [*keep.search_names.values_list("folded", flat=True), keep.folded_name]
    other.search_names.filter(folded__in=known).delete()
    other.search_names.update(city=keep)
    report.redirects = [other.slug, *other.old_slugs.values_list("slug", flat=True)]
    other.old_slugs.update(city=keep)
    SlugRedirect.objects.update_or_create(slug=other.slug, defaults={"city": keep})
    SlugRedirect.objects.filter(slug=keep.slug).delete()
    # "Not duplicates" of the merged city hold for the kept one: it is the same place.
    decided = {
        b if a == keep.pk else a
        for a, b in NotDuplicate.objects.filter(Q(city=keep) | Q(other=keep)).values_list(
            "city_id", "other_id"
        )
    }
    for decision in NotDuplicate.objects.filter(Q(city=other) | Q(other=other)):
        third = decision.other_id if decision.city_id == other.pk else decision.city_id
        if third == keep.pk or third in decided:
            decision.delete()
            continue
        decided.add(third)
        decision.city_id, decision.other_id = sorted((keep.pk, third))
        decision.save(update_fields=["city", "other"])


def _move_remaining(keep, other, user, reason, report, handled):
    """Point every other relation at `keep`: initiatives, events, stated figures, an
    organization's headquarters, and any relation added to the model later, so that a merge
    never leaves anything behind on the city it deletes."""
    for relation in City._meta.get_fields(include_hidden=True):
        if not relation.auto_created or relation.concrete:
            continue
        model = relation.related_model
        # History rows keep pointing at what was; many-to-many link tables are reached
        # through their relation below, not through their own foreign keys.
        if issubclass(model, HistoricalChanges) or model._meta.auto_created:
            continue
        if relation.name in handled or model in handled:
            continue
        if relation.many_to_many:
            through = relation.through
            source_field = relation.remote_field.m2m_reverse_field_name()
            target_field = relation.remote_field.m2m_field_name()
            links = through.objects.filter(**{source_field: other})
            owners = set(
                through.objects.filter(**{source_field: keep}).values_list(
                    f"{target_field}_id", flat=True
                )
            )
            for link in links:
                if getattr(link, f"{target_field}_id") in owners:
                    link.delete()
                else:
                    setattr(link, source_field, keep)
                    link.save()
                    report.count(model._meta.verbose_name_plural)
            continue
        for obj in model._default_manager.filter(**{relation.field.name: other}):
            setattr(obj, relation.field.name, keep)
            _stamp(obj, user, reason).save()
            report.count(f"{model._meta.verbose_name_plural} ({relation.field.verbose_name})")


def merge_cities(keep, other, user=None, reason=None):
    """Merge `other` into `keep`, in one transaction, and return a MergeReport.

    Every tie (either end), membership, citation, alternate name, initiative, event and stated
    figure of `other` moves to `keep`. Ties that become duplicates collapse into the kept tie
    with all their citations; a tie between the two cities would become a self-tie and is
    removed and reported. `other`'s name stays as an alternate name, empty fields of `keep`
    are filled from `other`, differing values are reported and written to the curator notes.
    `other`'s slug, and every old slug that led to it, lead to `keep` from now on; its
    gazetteer names move too (those `keep` lacks), and so do the curators' decisions that it
    is not some third city.
    """
    if keep.pk == other.pk:
        raise ValueError("A city cannot be merged into itself.")
    reason = reason or f"merge: {other.name} ({other.slug}) into {keep.name} ({keep.slug})"
    report = MergeReport(kept=keep, merged_name=other.name, merged_slug=other.slug)
    with transaction.atomic():
        keep = City.objects.select_for_update().get(pk=keep.pk)
        other = City.objects.select_for_update().get(pk=other.pk)
        report.kept = keep
        _merge_ties(keep, other, user, reason, report)
        _merge_memberships(keep, other, user, reason, report)
        _citations_onto(other, keep, user, reason, report, "city citations")
        _merge_names(keep, other, user, reason, report)
        keep.themes.add(*other.themes.all())
        _merge_identity(keep, other, report)
        handled = {
            "ties_as_a", "ties_as_b", "memberships", "citations", "alternate_names", "themes",
            "search_names", "old_slugs", NotDuplicate,
        }  # fmt: skip
        _move_remaining(keep, other, user, reason, report, handled)
        _fill_from(keep, other, _FILLABLE, report, "")
        if keep.verification != other.verification and Verification.VERIFIED in (
            keep.verification,
            other.verification,
        ):
            keep.verification = Verification.UNVERIFIED
            report.conflicts.append("verification: set to unverified, the merge needs a check")
        notes = [f"{timezone.now():%Y-%m-%d}: merged {other.name} ({other.slug}) into this city."]
        notes += [f"  {conflict}" for conflict in report.conflicts]
        if other.curator_notes:
            notes.append(f"  Its notes: {other.curator_notes}")
        keep.curator_notes = "\n".join(filter(None, [keep.curator_notes, *notes]))
        # Deleted first, so that unique ids (Wikidata, GeoNames) taken over are free.
        _stamp(other, user, reason).delete()
        _stamp(keep, user, reason).save()
    return report
