"""Public pages about what ties places together: the comparison, networks, the tie list."""

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from cities.models import City
from cities.views import PAGE_SIZE, SourceNumbers, ignored_filters, not_found

from . import comparison
from .filters import TieFilter
from .models import (
    Event,
    Initiative,
    Membership,
    Organization,
    OrganizationKind,
    StatedFigure,
    Tie,
)

SUGGESTIONS = 10


def compare(request):
    values = [v for v in request.GET.getlist("cities") if v.strip()]
    context = {"picked": comparison.split_tokens(values), "max": comparison.MAX_CITIES}
    if not values:
        # "Compare with…" on a profile starts the picker with that city filled in.
        context["picked"] = comparison.split_tokens(request.GET.get("with", ""))[:1]
        return render(request, "partnerships/compare.html", context)
    try:
        cities = comparison.parse_cities(values)
    except comparison.ComparisonError as error:
        # Each suggestion links to this comparison with the name it replaces corrected.
        tokens = context["picked"]
        for token, options in error.suggestions.items():
            for option in options:
                fixed = [option["slug"] if t == token else t for t in tokens]
                option["fix_url"] = "?" + urlencode({"cities": ",".join(fixed)})
        context.update(errors=error.messages, suggestions=error.suggestions)
        return render(request, "partnerships/compare.html", context, status=400)
    canonical = ",".join(c.slug for c in cities)
    if request.GET.getlist("cities") != [canonical] or set(request.GET) != {"cities"}:
        # The picker sends one field per city and may use names: share the short form.
        return redirect(f"{reverse('partnerships:compare')}?{urlencode({'cities': canonical})}")
    result = comparison.compare(cities)
    slugs = [c.slug for c in cities]
    for i, city in enumerate(result["cities"]):
        rest = slugs[:i] + slugs[i + 1 :]
        city["without"] = ",".join(rest) if len(rest) >= comparison.MIN_CITIES else ""
    context.update(result=result, cities=cities, picked=slugs, slugs=canonical)
    return render(request, "partnerships/compare.html", context)


def city_suggestions(request):
    """Names for the comparison picker's autocomplete: [{slug, name, country}]."""
    text = request.GET.get("q", "").strip()
    cities = City.objects.search(text).order_by("name", "slug")[:SUGGESTIONS] if text else []
    return JsonResponse(
        {"results": [{"slug": c.slug, "name": c.name, "country": c.country} for c in cities]}
    )


def organization_list(request):
    organizations = (
        Organization.objects.select_related("parent", "headquarters")
        .annotate(member_count=Count("memberships__city", distinct=True))
        .order_by("name", "slug")
    )
    kind = request.GET.get("kind", "")
    kinds = dict(OrganizationKind.choices)
    if kind in kinds:
        organizations = organizations.filter(kind=kind)
    page = Paginator(organizations, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "partnerships/organization_list.html",
        {
            "page": page,
            "kinds": OrganizationKind.choices,
            "kind": kind if kind in kinds else "",
            "bad_kind": kind if kind and kind not in kinds else "",
        },
    )


def organization_detail(request, slug):
    organization = (
        Organization.objects.select_related("parent", "headquarters")
        .prefetch_related("branches", "themes", "citations__source")
        .filter(slug=slug)
        .first()
    )
    if organization is None:
        suggestions = Organization.objects.filter(
            Q(name__icontains=slug.replace("-", " ")) | Q(acronym__iexact=slug)
        )[:8]
        return not_found(request, "organization", slug, suggestions)
    memberships = list(
        Membership.objects.filter(organization=organization)
        .for_profile()
        .order_by("city__name", "member_organization__name", "since_lower", "pk")
    )
    initiatives = list(
        Initiative.objects.filter(
            Q(lead_organization=organization) | Q(partner_organizations=organization)
        )
        .select_related("lead_city", "lead_organization")
        .distinct()
        .order_by("start_lower", "name", "pk")
    )
    figures = list(
        StatedFigure.objects.filter(organization=organization).prefetch_related("citations__source")
    )
    events = list(Event.objects.filter(organization=organization).select_related("city"))
    numbers = SourceNumbers()
    cited = numbers.cite(organization.citations.all())
    member_rows = [{"membership": m, "cited": numbers.cite(m.citations.all())} for m in memberships]
    figure_rows = [{"figure": f, "cited": numbers.cite(f.citations.all())} for f in figures]
    cities = [m.city for m in memberships if m.city_id]
    changed = [organization.updated_at] + [o.updated_at for o in (*memberships, *figures)]
    return render(
        request,
        "partnerships/organization_detail.html",
        {
            "organization": organization,
            "cited": cited,
            "members": member_rows,
            "member_cities": list({c.pk: c for c in cities}.values()),
            "initiatives": initiatives,
            "figures": figure_rows,
            "events": events,
            "sources": numbers.sources,
            "last_changed": max(changed),
        },
    )


def tie_list(request):
    filterset = TieFilter(request.GET, queryset=Tie.objects.for_list())
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "partnerships/tie_list.html",
        {
            "filter": filterset,
            "ignored": ignored_filters(filterset),
            "page": page,
            "export_query": request.GET.urlencode(),
        },
    )


def tie_detail(request, pk):
    tie = Tie.objects.for_profile().filter(pk=pk).first()
    if tie is None:
        return not_found(
            request,
            "tie",
            pk,
            hint="Ties are numbered in the order they were entered; find one from a city "
            "profile or the list of ties.",
        )
    others = Tie.objects.between(tie.city_a_id, tie.city_b_id).exclude(pk=tie.pk).order_by("kind")
    events = Event.objects.filter(tie=tie).select_related("city", "organization")
    numbers = SourceNumbers()
    cited = numbers.cite(tie.citations.all())
    return render(
        request,
        "partnerships/tie_detail.html",
        {
            "tie": tie,
            "cited": cited,
            "others": list(others),
            "events": list(events),
            "sources": numbers.sources,
        },
    )
