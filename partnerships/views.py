"""The public pages: home, browse and search, city profiles, the comparison, networks, the
tie list, the bibliography and the method. Function views; QuerySets say what each page loads.

They live in partnerships because every page about a city shows what ties it to others;
cities itself knows nothing of ties.
"""

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db import connection
from django.db.models import (
    Count,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Value,
    Window,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from cities.models import City, CityCitation, SlugRedirect, Source
from cities.text import fold

from . import comparison, profiles
from .filters import CityFilter, OrganizationFilter, TieFilter
from .models import (
    Event,
    EventCitation,
    Initiative,
    InitiativeCitation,
    Membership,
    MembershipCitation,
    Organization,
    OrganizationCitation,
    OrganizationKind,
    StatedFigure,
    StatedFigureCitation,
    Tie,
    TieCitation,
    TieKind,
    TieStatus,
)
from .suggestions import suggestions_for

PAGE_SIZE = 50


def not_found(request, what, value, suggestions=(), hint=""):
    """A 404 that says what was looked for and offers the nearest matches."""
    return render(
        request,
        "404.html",
        {"what": what, "value": value, "suggestions": suggestions, "hint": hint},
        status=404,
    )


def suggest_cities(text, limit=8):
    """Cities a mistyped address may have meant: the whole text, else any of its words."""
    found = list(City.objects.ranked(text)[:limit])
    words = [word for word in fold(text).split() if len(word) >= 3]
    if found or not words:
        return found
    match = Q()
    for word in words:
        match |= Q(folded_name__contains=word) | Q(alternate_names__folded__contains=word)
    return list(City.objects.filter(match).distinct().order_by("name", "slug")[:limit])


def ignored_filters(filterset):
    """[(label, value)] of the filters whose values were not understood and so not applied."""
    form = filterset.form
    return [(form.fields[name].label or name, filterset.data.get(name, "")) for name in form.errors]


def most_connected(limit):
    """The `limit` cities with the most ties, most first, then by name and id, each with its
    `tie_count`: one GROUP BY over both ends of every tie, where a count per city through
    correlated subqueries would visit every city. Only cities with at least as many ties as
    the `limit`-th are joined to their names, which break ties between equal counts."""
    quote = connection.ops.quote_name
    city_a = quote(Tie._meta.get_field("city_a").column)
    city_b = quote(Tie._meta.get_field("city_b").column)
    ties, cities = quote(Tie._meta.db_table), quote(City._meta.db_table)
    sql = f"""
        WITH counts AS (
            SELECT city_id, COUNT(*) AS tie_count
            FROM (
                SELECT {city_a} AS city_id FROM {ties}
                UNION ALL
                SELECT {city_b} FROM {ties}
            ) AS ends
            GROUP BY city_id
        )
        SELECT city.*, counts.tie_count
        FROM counts JOIN {cities} AS city ON city.id = counts.city_id
        WHERE counts.tie_count >= COALESCE(
            (SELECT tie_count FROM counts ORDER BY tie_count DESC LIMIT 1 OFFSET %s), 0
        )
        ORDER BY counts.tie_count DESC, city.name, city.id
        LIMIT %s
    """
    return list(City.objects.raw(sql, [limit - 1, limit]))


def home(request):
    counts = {
        "cities": City.objects.count(),
        "ties": Tie.objects.count(),
        "organizations": Organization.objects.count(),
        "sources": Source.objects.count(),
    }
    # City networks only: the UN or WHO, international organizations that cities deal with,
    # are listed with everything else on the organizations page.
    organizations = Organization.objects.filter(
        parent__isnull=True, kind=OrganizationKind.CITY_NETWORK
    ).order_by("name")[:12]
    return render(
        request,
        "home.html",
        {"counts": counts, "connected": most_connected(12), "organizations": organizations},
    )


class SearchPaginator(Paginator):
    """Pages of a search, each counting every match in its own query (`COUNT(*) OVER ()`):
    the page query visits every match anyway, to rank them or to test them against the
    search, so a count query beside it would run the search a second time. A number past
    the last page, or a DISTINCT list (a window would count rows before DISTINCT), is left
    to Paginator, which counts first."""

    def get_page(self, number):
        try:
            number = int(number)
        except (TypeError, ValueError):
            number = 1
        if number < 1 or self.object_list.query.distinct:
            return super().get_page(number)
        bottom = (number - 1) * self.per_page
        counted = self.object_list.annotate(match_count=Window(Count("pk")))
        rows = list(counted[bottom : bottom + self.per_page])
        if not rows and number > 1:
            return super().get_page(number)
        self.count = rows[0].match_count if rows else 0
        return self._get_page(rows, number, self)


def add_addresses(records, viewname, key):
    """Set `address` on each record, as its get_absolute_url() gives it, from a single
    reverse(): a page of ties links to 150 records, and a reverse() each cost a sixth of it.
    `key` is the attribute the address is made of ("slug", "pk")."""
    marker = "0"  # a valid slug and a valid id
    head, _, tail = reverse(viewname, args=[marker]).rpartition(marker)
    for record in records:
        record.address = f"{head}{getattr(record, key)}{tail}"


def searched_text(filterset):
    """The search text a list applies, also beside a filter value it ignored."""
    filterset.is_valid()
    return filterset.form.cleaned_data.get("q") or ""


def paginate(request, queryset, searching):
    paginator = (SearchPaginator if searching else Paginator)(queryset, PAGE_SIZE)
    return paginator.get_page(request.GET.get("page"))


def city_list(request):
    filterset = CityFilter(request.GET, queryset=City.objects.all())
    query = searched_text(filterset)
    page = paginate(request, filterset.qs, searching=bool(query))
    if query:
        # Show which of its names matched, for "Odessa" finding Odesa.
        prefetch_related_objects(page.object_list, "alternate_names")
    add_addresses(page.object_list, "partnerships:city_detail", "slug")
    return render(
        request,
        "cities/city_list.html",
        {
            "filter": filterset,
            "ignored": ignored_filters(filterset),
            "page": page,
            "query": query,
            "export_query": request.GET.urlencode(),
        },
    )


def city_detail(request, slug):
    city = City.objects.prefetch_related("alternate_names", "themes").filter(slug=slug).first()
    if city is None:
        # An address from before a merge or a rename leads to the city for good.
        moved = SlugRedirect.objects.filter(slug=slug).values_list("city__slug", flat=True).first()
        if moved is not None:
            url = reverse("partnerships:city_detail", args=[moved])
            query = request.META.get("QUERY_STRING")
            return redirect(f"{url}?{query}" if query else url, permanent=True)
        return not_found(request, "city", slug, suggest_cities(slug))
    profile = profiles.city_profile(city)
    shown = 10
    suggested = suggestions_for(city, limit=2 * shown)
    # The two rankings overlap where shared partners are the one strong signal: the second
    # list goes on with cities the first does not already name.
    suggested["like_this"] = suggested["like_this"][:shown]
    named = {item.city["slug"] for item in suggested["like_this"]}
    suggested["partners_of_partners"] = [
        item for item in suggested["partners_of_partners"] if item.city["slug"] not in named
    ][:shown]
    profile["suggestions"] = suggested
    return render(request, "cities/city_detail.html", profile)


def _count_of(model):
    """Claims of one kind citing each source (a claim cited at two places counts once), as a
    correlated count: joins to seven citation tables would multiply rows."""
    rows = model.objects.filter(source=OuterRef("pk")).order_by().values("source")
    claims = Count(model.claim_field, distinct=True)
    return Coalesce(
        Subquery(rows.annotate(n=claims).values("n"), output_field=IntegerField()),
        Value(0),
    )


SUPPORTS = [
    ("cities", "city profile", "city profiles", CityCitation),
    ("ties", "tie", "ties", TieCitation),
    ("memberships", "membership", "memberships", MembershipCitation),
    ("figures", "stated figure", "stated figures", StatedFigureCitation),
    ("initiatives", "initiative", "initiatives", InitiativeCitation),
    ("events", "event", "events", EventCitation),
    ("organizations", "organization", "organizations", OrganizationCitation),
]


def source_list(request):
    sources = Source.objects.annotate(
        **{f"n_{key}": _count_of(model) for key, _one, _many, model in SUPPORTS}
    ).order_by("title", "slug")
    page = Paginator(sources, PAGE_SIZE).get_page(request.GET.get("page"))
    for source in page.object_list:
        source.supports = [
            (getattr(source, f"n_{key}"), one if getattr(source, f"n_{key}") == 1 else many)
            for key, one, many, _model in SUPPORTS
            if getattr(source, f"n_{key}")
        ]
    return render(request, "cities/source_list.html", {"page": page})


CLAIMS_SHOWN = 100


def source_detail(request, slug):
    source = Source.objects.filter(slug=slug).first()
    if source is None:
        suggestions = Source.objects.filter(title__icontains=slug.replace("-", " "))[:8]
        return not_found(request, "source", slug, suggestions)
    # One query per kind of claim, each cut at CLAIMS_SHOWN with the total beside it.
    ties = Tie.objects.filter(citations__source=source).for_list().distinct()
    claims = {
        "cities": City.objects.filter(citations__source=source).distinct(),
        "ties": ties.order_by("city_a__name", "city_b__name", "pk"),
        "memberships": Membership.objects.filter(citations__source=source)
        .select_related("organization", "city", "member_organization")
        .distinct(),
        "figures": StatedFigure.objects.filter(citations__source=source)
        .select_related("city", "organization", "initiative")
        .distinct(),
        "initiatives": Initiative.objects.filter(citations__source=source).distinct(),
        "events": Event.objects.filter(citations__source=source).distinct(),
        "organizations": Organization.objects.filter(citations__source=source).distinct(),
    }
    shown = {key: list(qs[: CLAIMS_SHOWN + 1]) for key, qs in claims.items()}
    return render(
        request,
        "cities/source_detail.html",
        {"source": source, "claims": shown, "limit": CLAIMS_SHOWN},
    )


def about(request):
    return render(request, "about.html")


SUGGESTIONS = 10


def compare(request):
    values = [v for v in request.GET.getlist("cities") if v.strip()]
    context = {"picked": comparison.split_tokens(values), "max": comparison.MAX_CITIES}
    if not values:
        # "Compare with…" on a profile starts the picker with that city filled in.
        context["picked"] = comparison.split_tokens(request.GET.get("with", ""))[:1]
        context["suggested"] = (
            comparison.suggestions(context["picked"][0]) if context["picked"] else []
        )
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
        query = urlencode({"cities": canonical}, safe=",")
        return redirect(f"{reverse('partnerships:compare')}?{query}")
    result = comparison.compare(cities, drawing=True)
    slugs = [c.slug for c in cities]
    for i, city in enumerate(result["cities"]):
        rest = slugs[:i] + slugs[i + 1 :]
        city["without"] = ",".join(rest) if len(rest) >= comparison.MIN_CITIES else ""
    # Cited as it stands: the newest change to the compared cities or any of their ties.
    changed = Tie.objects.filter(Q(city_a__in=cities) | Q(city_b__in=cities)).aggregate(
        last=Max("updated_at")
    )["last"]
    context.update(
        result=result,
        cities=cities,
        picked=slugs,
        slugs=canonical,
        citation_title="Comparison of " + ", ".join(c.name for c in cities),
        last_changed=max(filter(None, [changed, *(c.updated_at for c in cities)])),
    )
    return render(request, "partnerships/compare.html", context)


def city_suggestions(request):
    """Names for the comparison picker's autocomplete: [{slug, name, country}]."""
    text = request.GET.get("q", "").strip()
    cities = City.objects.ranked(text)[:SUGGESTIONS] if text else []
    return JsonResponse(
        {"results": [{"slug": c.slug, "name": c.name, "country": c.country} for c in cities]}
    )


def organization_list(request):
    filterset = OrganizationFilter(
        request.GET, queryset=Organization.objects.with_member_count().order_by("name", "slug")
    )
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    kind = request.GET.get("kind", "")
    return render(
        request,
        "partnerships/organization_list.html",
        {
            "page": page,
            "kinds": OrganizationKind.choices,
            "kind": "" if "kind" in filterset.errors else kind,
            "bad_kind": kind if "kind" in filterset.errors else "",
        },
    )


def organization_detail(request, slug):
    organization = Organization.objects.for_profile().filter(slug=slug).first()
    if organization is None:
        suggestions = Organization.objects.named_like(slug)[:8]
        return not_found(request, "organization", slug, suggestions)
    context = profiles.organization_profile(organization)
    return render(request, "partnerships/organization_detail.html", context)


# The columns a row of the list of ties shows (and it is ordered by): the rest of each tie and
# of both its cities (notes, summaries, times of edits) cost a tenth of the page to load.
TIE_ROW_FIELDS = [
    "kind", "status", "start", "end", "start_lower",
    *(f"{end}__{field}" for end in ("city_a", "city_b") for field in ("name", "slug", "country")),
]  # fmt: skip


def city_meant_by(slug):
    """The city an address's `city=` slug that names none most likely meant: a slug the city
    had before (a merge, a rename), or the one city with that name or alternate name
    ("odessa" is Odesa's former English name). None when it is not that clear."""
    moved = SlugRedirect.objects.filter(slug=slug).values_list("city__slug", flat=True).first()
    if moved:
        return moved
    named = list(City.objects.named(slug.replace("-", " ")).values_list("slug", flat=True)[:2])
    return named[0] if len(named) == 1 else None


def tie_list(request):
    ties = Tie.objects.for_list().only(*TIE_ROW_FIELDS)
    filterset = TieFilter(request.GET, queryset=ties)
    city, city_suggestions = None, []
    if "city" in filterset.form.errors:
        wanted = request.GET.get("city", "")
        meant = city_meant_by(wanted)
        if meant:
            query = request.GET.copy()
            query["city"] = meant
            query.pop("page", None)
            return redirect(f"{reverse('partnerships:tie_list')}?{query.urlencode()}")
        city_suggestions = suggest_cities(wanted.replace("-", " "), limit=5)
    elif filterset.form.cleaned_data.get("city"):
        city = City.objects.filter(slug=filterset.form.cleaned_data["city"]).first()
    page = paginate(request, filterset.qs, searching=bool(searched_text(filterset)))
    add_addresses(page.object_list, "partnerships:tie_detail", "pk")
    cities = [city for tie in page.object_list for city in (tie.city_a, tie.city_b)]
    add_addresses(cities, "partnerships:city_detail", "slug")
    return render(
        request,
        "partnerships/tie_list.html",
        {
            "filter": filterset,
            "ignored": ignored_filters(filterset),
            "city": city,
            "city_suggestions": city_suggestions,
            "page": page,
            "export_query": request.GET.urlencode(),
            # Labels by value: get_kind_display() reads every choice for each row.
            "kinds": dict(TieKind.choices),
            "statuses": dict(TieStatus.choices),
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
    numbers = profiles.SourceNumbers()
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
            "notes": numbers.notes,
        },
    )
