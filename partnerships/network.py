"""A city's network: its partners and their partners, laid out on the server as SVG.

`network_of()` gathers the city, its partners and the cities tied to most of them in four
queries, however many ties there are; `layout()` places any small graph with a deterministic
force-directed layout, and `drawing()` turns the laid-out graph into the plain data that
includes/network_graph.html draws (the comparison draws its shared partners with the same
two). The page works without JavaScript: every node is a link, and tables say the same.
"""

import math

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value, Window
from django.db.models.functions import Coalesce
from django.shortcuts import redirect, render
from django.urls import reverse
from django_countries import countries

from cities.models import City, SlugRedirect

from .models import Tie, tie_count

# The drawing stays readable and the page small: at most this many nodes, of which at most
# PARTNERS_DRAWN are the city's partners (those with the most ties), the rest the cities tied
# to most of them.
NETWORK_NODES = 150
PARTNERS_DRAWN = 100
# The table of partners of partners names, for each, this many of the partners it is tied to.
VIA_NAMES = 3

# Each step of the layout moves a node at most this far (in units of the ideal edge length),
# less and less as it settles: a fixed schedule, so the same graph always gets one drawing.
ITERATIONS = 120
GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))


def _partners(city):
    """The cities tied to `city`, each once, whichever end of the tie each was entered at."""
    return City.objects.filter(
        Q(pk__in=Tie.objects.filter(city_a=city).values("city_b"))
        | Q(pk__in=Tie.objects.filter(city_b=city).values("city_a"))
    )


def _links_into(ids):
    """An annotation: how many of the cities `ids` each city is tied to (by either end)."""

    def side(own, other):
        rows = (
            Tie.objects.filter(**{own: OuterRef("pk"), f"{other}__in": ids})
            .order_by()
            .values(own)
            .annotate(n=Count(other, distinct=True))
            .values("n")
        )
        return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))

    return side("city_a", "city_b") + side("city_b", "city_a")


CITY_FIELDS = ("pk", "name", "slug", "country")


def network_of(city):
    """The city, its partners and their partners, with the ties among them and laid out:
    {city, graph, partners, others, partner_total, other_total} in four queries whatever the
    number of ties (the city, then these three):

    1. the partners with their number of ties and how many there are, the most tied first,
       at most PARTNERS_DRAWN;
    2. the cities tied to them, with how many of them each is tied to, those tied to most
       first, as many as fit in NETWORK_NODES;
    3. every tie among the cities drawn."""
    partners = list(
        _partners(city)
        .annotate(ties=tie_count(), total=Window(Count("pk")))
        .order_by("-ties", "name", "pk")
        .values(*CITY_FIELDS, "ties", "total")[:PARTNERS_DRAWN]
    )
    ids = [p["pk"] for p in partners]
    others = []
    if ids:
        tied_to_partners = Q(pk__in=Tie.objects.filter(city_a__in=ids).values("city_b")) | Q(
            pk__in=Tie.objects.filter(city_b__in=ids).values("city_a")
        )
        others = list(
            City.objects.filter(tied_to_partners)
            .exclude(pk__in=[city.pk, *ids])
            .annotate(links=_links_into(ids), total=Window(Count("pk")))
            .order_by("-links", "name", "pk")
            .values(*CITY_FIELDS, "links", "total")[: NETWORK_NODES - 1 - len(ids)]
        )
    drawn = [city.pk, *ids, *(o["pk"] for o in others)]
    pairs = set()
    if len(drawn) > 1:
        rows = Tie.objects.filter(city_a__in=drawn, city_b__in=drawn).values_list(
            "city_a_id", "city_b_id"
        )
        pairs = {(min(a, b), max(a, b)) for a, b in rows.order_by() if a != b}

    neighbours = {pk: set() for pk in drawn}
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    partner_ids = set(ids)
    names = {p["pk"]: p["name"] for p in partners}
    country_names = {}

    def country(code):
        if code not in country_names:  # a translated lookup; once per country
            country_names[code] = countries.name(code) if code else ""
        return country_names[code]

    city_url = _address("partnerships:city_detail")
    partner_rows = [
        {
            "pk": p["pk"],
            "name": p["name"],
            "url": city_url(p["slug"]),
            "country_name": country(p["country"]),
            "ties": p["ties"],
            "links": len(neighbours[p["pk"]] & partner_ids),
        }
        for p in partners
    ]
    other_rows = []
    for o in others:
        via = sorted(neighbours[o["pk"]] & partner_ids, key=lambda pk: (names[pk], pk))
        other_rows.append(
            {
                "pk": o["pk"],
                "name": o["name"],
                "url": city_url(o["slug"]),
                "country_name": country(o["country"]),
                # Counted again on the ties drawn: the ranking's count adds both ends' ties.
                "links": len(via),
                "via": [names[pk] for pk in via[:VIA_NAMES]],
                "via_more": max(len(via) - VIA_NAMES, 0),
            }
        )
    other_rows.sort(key=lambda row: (-row["links"], row["name"], row["pk"]))

    nodes = [
        {
            "key": city.pk,
            "name": city.name,
            "url": city_url(city.slug),
            "role": "city",
            "weight": len(ids),
            "description": f"{city.name}, {country(city.country)}".rstrip(", ")
            + f": {len(ids)} partner{'s' if len(ids) != 1 else ''} drawn",
        }
    ]
    for row in partner_rows:
        nodes.append(
            {
                "key": row["pk"],
                "name": row["name"],
                "url": row["url"],
                "role": "partner",
                "weight": row["ties"],
                "description": f"{row['name']}, {row['country_name']}".rstrip(", ")
                + f": partner; {row['ties']} tie{'s' if row['ties'] != 1 else ''} in all",
            }
        )
    for row in other_rows:
        nodes.append(
            {
                "key": row["pk"],
                "name": row["name"],
                "url": row["url"],
                "role": "other",
                "weight": row["links"],
                "description": f"{row['name']}, {row['country_name']}".rstrip(", ")
                + f": tied to {row['links']} of the partners",
            }
        )
    role = {node["key"]: node["role"] for node in nodes}

    def kind(a, b):
        """A tie of the city, one between two partners, or one reaching beyond them."""
        if city.pk in (a, b):
            return "city"
        return "partners" if role[a] == role[b] == "partner" else "other"

    edges = [(a, b, kind(a, b)) for a, b in sorted(pairs)]
    graph = drawing(
        nodes,
        edges,
        label=f"The network of {city.name}: the city, its partners and cities tied to them",
        labelled={"city", "partner"},
        start=_rings(city.pk, ids, others, neighbours),
        fixed={city.pk},
    )
    return {
        "city": city,
        "graph": graph,
        "partners": partner_rows,
        "others": other_rows,
        "partner_total": partners[0]["total"] if partners else 0,
        "other_total": others[0]["total"] if others else 0,
    }


def _rings(centre, partners, others, neighbours):
    """Where the layout starts: the city in the middle, its partners around it, each other
    city beyond the partners it is tied to. A start near the end result lets a short, fixed
    schedule settle the drawing."""
    start = {centre: (0.0, 0.0)}
    inner = 1 + math.sqrt(len(partners)) / 2
    for i, pk in enumerate(partners):
        angle = 2 * math.pi * i / len(partners)
        start[pk] = (inner * math.cos(angle), inner * math.sin(angle))
    for i, other in enumerate(others):
        near = [start[pk] for pk in neighbours[other["pk"]] if pk in start and pk != centre]
        x = sum(p[0] for p in near) / len(near) if near else 0.0
        y = sum(p[1] for p in near) / len(near) if near else 0.0
        # Outwards from the middle, fanned out by a golden angle so that none share a spot.
        length = math.hypot(x, y) or 1
        turn = i * GOLDEN_ANGLE
        x += x / length * 1.2 + 0.5 * math.cos(turn)
        y += y / length * 1.2 + 0.5 * math.sin(turn)
        start[other["pk"]] = (x, y)
    return start


def _address(name):
    """A function giving the address of the page `name` for one slug: one reverse() for every
    node of a drawing."""
    before, _, after = reverse(name, args=["0"]).rpartition("0")
    return lambda value: f"{before}{value}{after}"


def layout(keys, edges, start=None, fixed=()):
    """Positions {key: (x, y)} for the nodes `keys` joined by `edges` [(a, b)], about one
    unit apart where tied: Fruchterman and Reingold's forces (every pair repels, every tie
    pulls) with a slight pull to the middle, from `start` positions or a spiral in the
    order of `keys`, over a fixed cooling schedule; nodes in `fixed` do not move. The same
    graph in the same order always gets the same drawing.

    Pure Python, on at most NETWORK_NODES nodes: about 0.2 s for 150, once: the read cache
    keeps the page it is drawn on."""
    n = len(keys)
    if n == 0:
        return {}
    index = {key: i for i, key in enumerate(keys)}
    xs, ys = [], []
    for i, key in enumerate(keys):
        if start and key in start:
            x, y = start[key]
        else:
            radius, angle = math.sqrt(i + 0.5), i * GOLDEN_ANGLE
            x, y = radius * math.cos(angle), radius * math.sin(angle)
        xs.append(x)
        ys.append(y)
    ties = [(index[a], index[b]) for a, b in edges if a in index and b in index and a != b]
    pinned = [key in fixed for key in keys]
    gravity = 0.02
    for step in range(ITERATIONS):
        heat = 0.3 * (1 - step / ITERATIONS) + 0.01
        dx = [0.0] * n
        dy = [0.0] * n
        for i in range(n):
            xi, yi = xs[i], ys[i]
            fx = fy = 0.0
            for j in range(i + 1, n):
                ddx = xi - xs[j]
                ddy = yi - ys[j]
                d2 = ddx * ddx + ddy * ddy
                if d2 < 1e-6:  # two nodes on one spot part along a fixed direction
                    ddx, ddy, d2 = 1e-3 * (1 + i % 7), 1e-3 * (1 + j % 5), 1e-6
                push = 1 / d2
                fx += ddx * push
                fy += ddy * push
                dx[j] -= ddx * push
                dy[j] -= ddy * push
            dx[i] += fx
            dy[i] += fy
        for a, b in ties:
            ddx = xs[a] - xs[b]
            ddy = ys[a] - ys[b]
            pull = math.sqrt(ddx * ddx + ddy * ddy)
            dx[a] -= ddx * pull
            dy[a] -= ddy * pull
            dx[b] += ddx * pull
            dy[b] += ddy * pull
        for i in range(n):
            if pinned[i]:
                continue
            mx = dx[i] - xs[i] * gravity * math.sqrt(n)
            my = dy[i] - ys[i] * gravity * math.sqrt(n)
            length = math.sqrt(mx * mx + my * my)
            if length > heat:
                mx, my = mx / length * heat, my / length * heat
            xs[i] += mx
            ys[i] += my
    return {key: (xs[i], ys[i]) for i, key in enumerate(keys)}


# Sizes of the drawing, in the units of its viewBox (a pixel at the widest).
WIDTH, HEIGHT = 1000, 680
MARGIN_X, MARGIN_Y = 80, 24
LABEL_FONT = 11  # px; a character is about 0.58 of it wide
RADIUS = {"city": 11, "compared": 11, "partner": (4, 9), "shared": (5, 9), "other": (2.5, 6)}


def _radius(role, weight, heaviest):
    size = RADIUS.get(role, (3, 6))
    if isinstance(size, int | float):
        return size
    low, high = size
    return round(low + (high - low) * math.sqrt(weight / heaviest) if heaviest else low, 1)


def _label_box(x, y, r, name, where):
    """The box (left, top, right, bottom) a label takes, and where its text starts."""
    width = len(name) * LABEL_FONT * 0.58
    height = LABEL_FONT + 2
    if where == "right":
        return (x + r + 3, y - height / 2, x + r + 3 + width, y + height / 2), "start"
    if where == "left":
        return (x - r - 3 - width, y - height / 2, x - r - 3, y + height / 2), "end"
    if where == "above":
        return (x - width / 2, y - r - 2 - height, x + width / 2, y - r - 2), "middle"
    return (x - width / 2, y + r + 2, x + width / 2, y + r + 2 + height), "middle"


class _Grid:
    """Boxes filed by the cells of a coarse grid they touch: placing a name then looks at
    the names and dots near it, not at all of them."""

    SIZE = 64

    def __init__(self):
        self.cells = {}

    def _cells(self, box):
        size = self.SIZE
        for cx in range(int(box[0] // size), int(box[2] // size) + 1):
            for cy in range(int(box[1] // size), int(box[3] // size) + 1):
                yield cx, cy

    def add(self, box, tag):
        for cell in self._cells(box):
            self.cells.setdefault(cell, []).append((box, tag))

    def near(self, box):
        seen = set()
        for cell in self._cells(box):
            for item in self.cells.get(cell, ()):
                if id(item) not in seen:
                    seen.add(id(item))
                    yield item


def _overlap(one, two):
    width = min(one[2], two[2]) - max(one[0], two[0])
    height = min(one[3], two[3]) - max(one[1], two[1])
    return width * height if width > 0 and height > 0 else 0


def drawing(nodes, edges, *, label, labelled, start=None, fixed=(), width=WIDTH, height=HEIGHT):
    """What includes/network_graph.html draws: `nodes` [{key, name, url, role, weight,
    description}] and `edges` [(key, key, kind)] laid out, scaled into the viewBox, each node
    with its radius and, for the roles in `labelled`, a name placed where it covers the
    fewest other names. Plain data: the comparison's API returns it too."""
    keys = [node["key"] for node in nodes]
    positions = layout(keys, [(a, b) for a, b, _kind in edges], start=start, fixed=fixed)
    xs = [x for x, _y in positions.values()] or [0]
    ys = [y for _x, y in positions.values()] or [0]
    spread_x = (max(xs) - min(xs)) or 1
    spread_y = (max(ys) - min(ys)) or 1
    # The drawing fills the width and the height, squeezed by at most a half either way.
    scale_x = (width - 2 * MARGIN_X) / spread_x
    scale_y = (height - 2 * MARGIN_Y) / spread_y
    scale_x, scale_y = min(scale_x, scale_y * 1.5), min(scale_y, scale_x * 1.5)
    off_x = (width - spread_x * scale_x) / 2 - min(xs) * scale_x
    off_y = (height - spread_y * scale_y) / 2 - min(ys) * scale_y
    heaviest = {}
    for node in nodes:
        heaviest[node["role"]] = max(heaviest.get(node["role"], 0), node["weight"])
    drawn, ids = [], {}
    for i, node in enumerate(nodes):
        x, y = positions[node["key"]]
        ids[node["key"]] = f"n{i}"
        drawn.append(
            {
                **{k: v for k, v in node.items() if k != "key"},
                "id": f"n{i}",
                "x": round(x * scale_x + off_x, 1),
                "y": round(y * scale_y + off_y, 1),
                "r": _radius(node["role"], node["weight"], heaviest[node["role"]]),
                "labelled": node["role"] in labelled,
            }
        )
    # Names: the most important first, each where it covers the fewest names already placed
    # and the fewest dots; a name for the others shows on hover and focus, right of its dot.
    grid = _Grid()
    for j, d in enumerate(drawn):
        grid.add((d["x"] - d["r"], d["y"] - d["r"], d["x"] + d["r"], d["y"] + d["r"]), ("dot", j))
    order = sorted(
        range(len(drawn)),
        key=lambda i: (not drawn[i]["labelled"], drawn[i]["role"] != "city", -drawn[i]["weight"]),
    )
    for i in order:
        node = drawn[i]
        choices = []
        for rank, where in enumerate(("right", "left", "above", "below")):
            box, anchor = _label_box(node["x"], node["y"], node["r"], node["name"], where)
            outside = max(0, -box[0]) + max(0, box[2] - width) + max(0, -box[1])
            outside += max(0, box[3] - height)
            covered = 0
            for other, (what, j) in grid.near(box):
                if what == "label":
                    covered += _overlap(box, other)
                elif j != i:
                    covered += _overlap(box, other) / 2
            choices.append((covered + outside * 50, rank, box, anchor))
        _cost, _rank, box, anchor = min(choices, key=lambda c: (c[0], c[1]))
        if node["labelled"]:
            grid.add(box, ("label", i))
        node["anchor"] = anchor
        left, right = box[0], box[2]
        node["label_x"] = round({"start": left, "end": right}.get(anchor, (left + right) / 2), 1)
        node["label_y"] = round(box[3] - 3.5, 1)
    return {
        "label": label,
        "width": width,
        "height": height,
        "nodes": drawn,
        "edges": [
            {
                "a": ids[a],
                "b": ids[b],
                "kind": kind,
                "x1": drawn[int(ids[a][1:])]["x"],
                "y1": drawn[int(ids[a][1:])]["y"],
                "x2": drawn[int(ids[b][1:])]["x"],
                "y2": drawn[int(ids[b][1:])]["y"],
            }
            for a, b, kind in edges
        ],
    }


def city_network(request, slug):
    city = City.objects.filter(slug=slug).first()
    if city is None:
        # An address from before a merge or a rename leads to the city's network for good.
        moved = SlugRedirect.objects.filter(slug=slug).values_list("city__slug", flat=True).first()
        if moved is not None:
            return redirect("partnerships:city_network", moved, permanent=True)
        from .views import not_found, suggest_cities

        return not_found(request, "city", slug, suggest_cities(slug))
    return render(request, "partnerships/city_network.html", network_of(city))
