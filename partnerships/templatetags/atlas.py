"""Template helpers of the public pages: dates as people write them, the world map and the
timeline drawn as SVG on the server, links that must not break a page, "cite this page", and
for ties and the comparison short kind names, bar widths, the leader of a row and the chart of
ties started per decade."""

import datetime
import json

from django import template
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from cities import dates

from ..exports import bibtex_escape

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
    return dates.span(start, end)


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


def _long_date(day):
    return f"{day.day} {day:%B %Y}"


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
        f"  title = {{{bibtex_escape(title)}}},\n"
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


@register.simple_tag
def cite_refs(cited):
    """[1][3]: links to the page's numbered notes, each saying source, locator and quotation
    in words (no hover needed); a tag, not an include, because a profile renders it once per
    tie."""
    if not cited:
        return ""
    links = format_html_join(
        "", '<a href="#note-{}" aria-label="note {}">[{}]</a>', ((n.number,) * 3 for n in cited)
    )
    return format_html('<sup class="refs">{}</sup>', links)


# Ties and the comparison ---------------------------------------------------------------------

# Colour-blind-safe (Okabe-Ito) and distinct in greyscale print, one per compared city. The
# pages draw them through the classes .c0–.c3 of static/css/site.css, which list them in the
# same order; the SVG chart of ties per decade fills its bars with them directly.
PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7"]


def _numbers(values):
    return [v for v in values if isinstance(v, int | float)]


@register.filter
def bar_percent(value, values):
    """Width of a bar for `value`, as a percentage of the largest of `values`."""
    peak = max(_numbers(values), default=0)
    if not peak or not isinstance(value, int | float):
        return 0
    return round(value / peak * 100)


@register.filter
def leads(value, values):
    """True when `value` is the single largest of `values` (ties and zeros lead nothing)."""
    numbers = _numbers(values)
    if not numbers or not isinstance(value, int | float) or value <= 0:
        return False
    return value == max(numbers) and numbers.count(value) == 1


@register.filter
def colour(index):
    return PALETTE[index % len(PALETTE)]


@register.filter
def colour_class(index):
    """`c0`…`c3`: the class that paints a swatch or bar in the colour of the city in column
    `index` (the Content-Security-Policy allows no style attribute)."""
    return f"c{index % len(PALETTE)}"


@register.filter
def width_class(percent):
    """`w0`…`w100`: the class that draws a bar `percent` per cent of its cell wide."""
    try:
        whole = round(float(percent))
    except (TypeError, ValueError, OverflowError):
        whole = 0
    return f"w{min(max(whole, 0), 100)}"


@register.filter
def percent(share):
    return f"{round(share * 100)} %"


@register.inclusion_tag("includes/decade_chart.html")
def decade_chart(rows, cities):
    """Grouped bars: one group per decade, one bar per city, on a shared scale."""
    dated = [r for r in rows if r["decade"] is not None]
    n = len(cities)
    peak = max((c for r in dated for c in r["counts"]), default=0)
    if not dated or not peak:
        return {"empty": True}
    # 40 units at least: a decade's label ("1950s", 11 px) needs about 32.
    left, top, plot_h, group_w = 34, 10, 160, max(40, 8 * n + 10)
    width = left + group_w * len(dated) + 10
    bar_w = (group_w - 8) / n
    groups = []
    for g, row in enumerate(dated):
        x0 = left + g * group_w + 4
        bars = [
            {
                "x": round(x0 + i * bar_w, 1),
                "w": round(bar_w - 1, 1),
                "h": round(count / peak * plot_h, 1),
                "y": round(top + plot_h - count / peak * plot_h, 1),
                "fill": PALETTE[i % len(PALETTE)],
                "title": f"{cities[i]['name']}, {row['label']}: {count}",
            }
            for i, count in enumerate(row["counts"])
        ]
        groups.append({"bars": bars, "label": row["label"], "cx": round(x0 + (group_w - 8) / 2, 1)})
    step = 1 if len(dated) <= 12 else 2
    for g, group in enumerate(groups):
        group["show_label"] = g % step == 0
    scale = [
        {"y": round(top + plot_h - v / peak * plot_h, 1), "value": v}
        for v in sorted({0, peak // 2, peak})
    ]
    return {
        "empty": False,
        "width": width,
        "height": top + plot_h + 30,
        "groups": groups,
        "scale": scale,
        "left": left,
        "baseline": top + plot_h,
        "label_y": top + plot_h + 16,
    }


SHORT_KIND = {
    "sister": "sister city",
    "partner": "partner city",
    "friendship": "friendship city",
    "mou": "memorandum",
    "other": "other tie",
    "unspecified": "twinning",
}


@register.filter
def kind_labels(kinds):
    """["sister", "mou"] as "sister city, memorandum": short enough for a table cell."""
    return ", ".join(SHORT_KIND.get(k, k) for k in kinds)


@register.filter
def short_kind(kind):
    return SHORT_KIND.get(kind, kind)
