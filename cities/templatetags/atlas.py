"""Template helpers of the public pages: dates as people write them, the world map and the
timeline drawn as SVG on the server, and links that must not break a page."""

import datetime
import json

from django import template
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from cities import dates

register = template.Library()

# The vendored map is equirectangular, x = longitude + 180 and y = 90 - latitude; the view
# box stops at 85° N and 60° S, where no city of the atlas lies.
MAP_TOP, MAP_BOTTOM = 5, 150


@register.filter
def edtf(value, unknown="date unknown"):
    """An EDTF string as people write it: "c. 1957", "1960s", "date unknown"."""
    return dates.humanize(value or "", unknown=unknown)


@register.filter
def edtf_span(start, end):
    """`tie.start|edtf_span:tie.end`: "1957 – 1990", or the start alone while it lasts."""
    if not end:
        return edtf(start)
    return f"{edtf(start)} – {edtf(end)}"


@register.filter
def get_item(sequence, index):
    """`row.counts|get_item:forloop.counter0` for the per-city columns of the comparison."""
    try:
        return sequence[index]
    except (IndexError, KeyError, TypeError):
        return None


@register.simple_tag
def admin_change_url(obj):
    """The admin page that edits `obj`, or "" while the model has no admin."""
    meta = obj._meta
    try:
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return ""


def project(latitude, longitude):
    return round(longitude + 180, 2), round(90 - latitude, 2)


@register.inclusion_tag("includes/world_map.html")
def world_map(center=None, points=(), label="", lines=True):
    """Partners (or members) as dots, linked to `center` by lines when there is one.

    `points` are objects with name, latitude and longitude; those without coordinates are
    counted in the caption instead of being placed somewhere wrong.
    """
    placed, missing = [], 0
    for point in points:
        if point.latitude is None or point.longitude is None:
            missing += 1
            continue
        x, y = project(point.latitude, point.longitude)
        placed.append({"x": x, "y": y, "name": point.name})
    origin = None
    if center is not None and center.latitude is not None and center.longitude is not None:
        x, y = project(center.latitude, center.longitude)
        origin = {"x": x, "y": y, "name": center.name}
    for dot in placed:
        if origin and lines:
            # A gentle bow rather than a straight stroke, so lines to neighbours stay apart.
            mx, my = (origin["x"] + dot["x"]) / 2, (origin["y"] + dot["y"]) / 2
            dx, dy = dot["x"] - origin["x"], dot["y"] - origin["y"]
            dot["path"] = (
                f"M{origin['x']} {origin['y']} "
                f"Q{mx - dy * 0.15:.2f} {my + dx * 0.15:.2f} {dot['x']} {dot['y']}"
            )
    return {
        "land": static("data/world-110m.svg"),
        "origin": origin,
        "points": placed,
        "missing": missing,
        "label": label,
        "top": MAP_TOP,
        "height": MAP_BOTTOM - MAP_TOP,
    }


LANES = [
    ("tie", "Ties started"),
    ("membership", "Memberships"),
    ("initiative", "Initiatives"),
    ("event", "Events"),
]


@register.inclusion_tag("includes/timeline.html")
def timeline(items, label=""):
    """Ties, memberships, initiatives and events on one time axis.

    `items` are dicts with lane, label, start and end (datetime.date or None). Ties are many,
    so they are drawn as a count per year; the rest as bars (with an end) or dots. Undated
    items are counted in the caption: the atlas never guesses a date.
    """
    dated = [i for i in items if i.get("start")]
    undated = len(items) - len(dated)
    if not dated:
        return {"empty": True, "undated": undated, "label": label}
    this_year = datetime.date.today().year
    first = min(i["start"].year for i in dated)
    last = max(max((i["end"] or i["start"]).year for i in dated), first + 1)
    if any(i.get("open") for i in dated):
        last = this_year  # an ongoing membership runs to today, not to the decade's end
    first, last = first // 10 * 10, min(this_year, (last // 10 + 1) * 10)
    last = max(last, first + 10)
    width, left, right = 720, 96, 12
    scale = (width - left - right) / (last - first)

    def x_of(date):
        return round(left + (date.year - first + (date.timetuple().tm_yday - 1) / 366) * scale, 1)

    lanes, y = [], 24
    for lane, title in LANES:
        members = sorted((i for i in dated if i["lane"] == lane), key=lambda i: i["start"])
        if not members:
            continue
        if lane == "tie":
            per_year = {}
            for item in members:
                per_year[item["start"].year] = per_year.get(item["start"].year, 0) + 1
            peak = max(per_year.values())
            height = 40
            bars = [
                {
                    "x": round(left + (year - first) * scale, 1),
                    "w": max(round(scale * 0.8, 1), 1),
                    "h": max(round(count / peak * height, 1), 1.5),
                    "y": round(y + height - max(count / peak * height, 1.5), 1),
                    "title": f"{year}: {count} tie{'s' if count != 1 else ''} started",
                }
                for year, count in sorted(per_year.items())
            ]
            lanes.append({"title": title, "y": y, "height": height, "bars": bars, "peak": peak})
            y += height + 20
            continue
        rows = []
        for item in members:
            start = x_of(item["start"])
            end = x_of(item["end"]) if item.get("end") else None
            open_end = item.get("open", False) and end is None
            if open_end:
                end = round(width - right, 1)
            bar = max(round(end - start, 1), 3) if end else None
            after = start + (bar or 4) + 6
            # Labels go after the bar or dot, or before it when that would leave the chart.
            fits = after < width * 0.72
            rows.append(
                {
                    "x": start,
                    "w": bar,
                    "lx": round(after if fits else start - 6, 1),
                    "label": item["label"],
                    "title": item.get("title", item["label"]),
                    "anchor": "start" if fits else "end",
                }
            )
        height = 16 * len(rows)
        for n, row in enumerate(rows):
            row["y"] = y + n * 16
        lanes.append({"title": title, "y": y, "height": height, "rows": rows})
        y += height + 20
    ticks = [
        {"x": round(left + (year - first) * scale, 1), "year": year}
        for year in range(first, last + 1, 10 if last - first <= 80 else 20)
    ]
    return {
        "empty": False,
        "width": width,
        "height": y + 22,
        "left": left,
        "right": width - right,
        "lanes": lanes,
        "ticks": ticks,
        "undated": undated,
        "label": label,
        "axis_y": y,
    }


@register.filter
def as_json(value):
    return json.dumps(value, ensure_ascii=False, indent=2)


def _long_date(day):
    return f"{day.day} {day:%B %Y}"


def _bibtex_escape(text):
    for char in "\\{}&%$#_":
        text = text.replace(char, "\\" + char)
    return text


@register.inclusion_tag("includes/cite_page.html", takes_context=True)
def cite_page(context, title, genre, last_changed):
    """How to cite the page being read: formatted text, BibTeX and CSL-JSON.

    The date of issue is the day the page's data last changed, so two readers citing the
    same state of the page write the same reference.
    """
    request = context["request"]
    url = request.build_absolute_uri(request.path)
    changed = last_changed.date() if isinstance(last_changed, datetime.datetime) else last_changed
    today = datetime.date.today()
    key = "citydiplomacy-" + "-".join(request.path.strip("/").split("/"))
    text = (
        f"cityDiplomacy contributors. “{title}.” {genre}. cityDiplomacy: an atlas of city "
        f"diplomacy. Last changed {_long_date(changed)}. {url} (accessed {_long_date(today)})."
    )
    bibtex = (
        f"@misc{{{key},\n"
        f"  author = {{{{cityDiplomacy contributors}}}},\n"
        f"  title = {{{_bibtex_escape(title)}}},\n"
        f"  howpublished = {{cityDiplomacy: an atlas of city diplomacy, {genre.lower()}}},\n"
        f"  year = {{{changed.year}}},\n"
        f"  date = {{{changed.isoformat()}}},\n"
        f"  url = {{{url}}},\n"
        f"  urldate = {{{today.isoformat()}}}\n"
        "}"
    )
    csl = {
        "id": key,
        "type": "webpage",
        "title": title,
        "genre": genre,
        "container-title": "cityDiplomacy: an atlas of city diplomacy",
        "author": [{"literal": "cityDiplomacy contributors"}],
        "issued": {"date-parts": [[changed.year, changed.month, changed.day]]},
        "accessed": {"date-parts": [[today.year, today.month, today.day]]},
        "URL": url,
    }
    return {"text": text, "bibtex": bibtex, "csl": json.dumps([csl], ensure_ascii=False, indent=2)}


@register.filter
def stated_value(figure):
    """ "more than 3,500,000" or "53": a stated figure's qualifier and number."""
    qualifier = "" if figure.qualifier == "exact" else f"{figure.get_qualifier_display()} "
    return f"{qualifier}{figure.value:,}"


@register.simple_tag
def cite_refs(cited):
    """[1][3] links to the numbered sources of the page; a tag, not an include, because a
    profile renders it once per tie."""
    if not cited:
        return ""
    links = format_html_join(
        "",
        '<a href="#source-{}" title="{}">[{}]</a>',
        (
            (number, f"{source.title}, {locator}" if locator else source.title, number)
            for number, locator, source in cited
        ),
    )
    return format_html('<sup class="refs">{}</sup>', links)
