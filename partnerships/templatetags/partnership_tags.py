"""Template helpers for ties and the comparison: short kind names, bar widths, the leader of a
row, and the chart of ties started per decade."""

from django import template

register = template.Library()

# Colour-blind-safe (Okabe-Ito) and distinct in greyscale print, one per compared city.
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
