"""How well do partner suggestions recover ties the atlas holds? An offline evaluation.

    .venv/bin/python bench/bench_suggestions.py [--db db.sqlite3] [--seeds 0 1 2]

Copies the atlas (`--db`, the built db.sqlite3 by default) to a scratch file and reads it
into memory. For each seed, hides a random 10% of the tied pairs, computes suggestions from
the remaining ties only and, for every city that lost at least one tie, looks for the hidden
partners in its ranking: **hits@10** is the share of hidden ties found in the city's top 10
(each hidden tie counts at both ends), **MRR** the mean over those cities of 1 / the rank of
the first hidden partner (0 when none is ranked).

The rankings are those of `partnerships/suggestions.py`: its `signals_in_memory()` gathers
the signals the page's queries gather (the same pools of at most POOL candidates) and its
`rank()` orders them; the run first checks, on some cities of the full atlas, that the
database path and the in-memory path rank the same cities in the same order.

Rows: each signal alone (shared partners, which is the "partners of your partners" list;
shared networks; shared themes; same region and similar size, both over every city they
score and over the candidate pool), the shipped combination ("cities like this one"), the
combination without each signal, and a popularity baseline (the most connected cities not
yet partners). Then the region and size weights are tuned on the first seed alone and the
tuned combination is reported on the others. Writes bench/results/suggestions.txt (or
--output) and prints it.
"""

import argparse
import datetime
import random
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from _support import ROOT, setup_django

HIDDEN_SHARE = 0.10
TOP = 10
REGION_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
SIZE_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(ROOT / "db.sqlite3"), help="the built atlas")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--checked", type=int, default=60, help="cities checked against SQL")
    parser.add_argument(
        "--output", default=str(ROOT / "bench" / "results" / "suggestions.txt"), type=Path
    )
    return parser.parse_args()


def copy_atlas(path):
    """A copy of the atlas to read, so that nothing touches the original (WAL included)."""
    copy = Path(tempfile.gettempdir()) / "sugg_bench_atlas.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    return copy


def load():
    """(rows, tied pairs, networks, themes) of the whole atlas."""
    from cities.models import City
    from partnerships.models import Membership, Tie
    from partnerships.suggestions import CityRow

    rows = {
        pk: CityRow(pk, name, slug, country, population)
        for pk, name, slug, country, population in City.objects.values_list(
            "pk", "name", "slug", "country", "population"
        )
    }
    pairs = sorted({(min(a, b), max(a, b)) for a, b in Tie.objects.values_list("city_a", "city_b")})
    networks = defaultdict(set)
    for city, organization, parent in Membership.objects.filter(city__isnull=False).values_list(
        "city", "organization", "organization__parent"
    ):
        networks[city].add(organization)
        if parent is not None:
            networks[city].add(parent)
    themes = defaultdict(set)
    for city, theme in City.themes.through.objects.values_list("city_id", "theme_id"):
        themes[city].add(theme)
    return rows, pairs, dict(networks), dict(themes)


def atlas_of(rows, pairs, networks, themes):
    from partnerships.suggestions import Atlas

    partners = defaultdict(set)
    for a, b in pairs:
        partners[a].add(b)
        partners[b].add(a)
    return Atlas(rows=rows, partners=partners, networks=networks, themes=themes)


def check_same_ranking(atlas, count):
    """How many of `count` cities (the most connected half, a seeded sample the rest) get
    the same two rankings from the database as from memory."""
    from cities.models import City
    from partnerships import suggestions as s

    by_ties = sorted(atlas.partners, key=lambda pk: (-len(atlas.partners[pk]), pk))
    picked = by_ties[: count // 2] + random.Random(7).sample(by_ties[count // 2 :], count // 2)
    agree = 0
    for city in City.objects.filter(pk__in=picked):
        from_db, rows = s.signals_from_database(city)
        in_memory = s.signals_in_memory(atlas, city.pk)
        same = all(
            s.rank(from_db, rows, weights, s.SHOWN)
            == s.rank(in_memory, atlas.rows, weights, s.SHOWN)
            for weights in (s.LIKE_THIS, s.PARTNERS_ONLY)
        )
        agree += same
    return agree, len(picked)


def time_the_page(atlas, count=5, runs=5):
    """[(name, ties, median ms, queries)] of suggestions_for() on the most connected cities."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cities.models import City
    from partnerships.suggestions import suggestions_for

    busiest = sorted(atlas.partners, key=lambda pk: (-len(atlas.partners[pk]), pk))[:count]
    timed = []
    for city in City.objects.filter(pk__in=busiest):
        suggestions_for(city)  # warm: the region table, the connection
        times = []
        for _ in range(runs):
            with CaptureQueriesContext(connection) as queries:
                start = time.perf_counter()
                suggestions_for(city)
                times.append((time.perf_counter() - start) * 1000)
        timed.append(
            (city.name, len(atlas.partners[city.pk]), statistics.median(times), len(queries))
        )
    return sorted(timed, key=lambda row: -row[1])


# Rankings ------------------------------------------------------------------------------------


class Split:
    """One seed: the hidden pairs, the atlas without them, and the cities that lost ties."""

    def __init__(self, rows, pairs, networks, themes, seed):
        hidden = set(random.Random(seed).sample(pairs, int(len(pairs) * HIDDEN_SHARE)))
        self.atlas = atlas_of(rows, [p for p in pairs if p not in hidden], networks, themes)
        self.hidden = defaultdict(set)
        for a, b in hidden:
            self.hidden[a].add(b)
            self.hidden[b].add(a)
        self.ends = sum(len(h) for h in self.hidden.values())
        from partnerships.suggestions import signals_in_memory

        self.signals = {pk: signals_in_memory(self.atlas, pk) for pk in self.hidden}


def metrics(split, ranked_of):
    """(hits@10, MRR) for `ranked_of(pk)`: the city's ranked candidate ids, or a pair
    (top ids, rank of the first hidden partner or None) for the global rankings."""
    hits, reciprocal = 0, 0.0
    for pk, hidden in split.hidden.items():
        result = ranked_of(pk)
        if isinstance(result, tuple):
            top, first = result
        else:
            top = result[:TOP]
            first = next((i + 1 for i, other in enumerate(result) if other in hidden), None)
        hits += len(hidden.intersection(top))
        reciprocal += 1 / first if first else 0.0
    return hits / split.ends, reciprocal / len(split.hidden)


def pooled(split, weights):
    from partnerships.suggestions import rank

    rows = split.atlas.rows
    return lambda pk: [other for other, _v in rank(split.signals[pk], rows, weights)]


class Ordered:
    """A ranking that does not depend on the city but for whom it leaves out (its partners
    and itself): `order` lists candidate ids best first; `group(pk)` picks the list."""

    def __init__(self, split, orders, group):
        self.split, self.group = split, group
        self.orders = orders
        self.position = {
            key: {pk: i for i, pk in enumerate(order)} for key, order in orders.items()
        }

    def __call__(self, pk):
        key = self.group(pk)
        order, position = self.orders.get(key, []), self.position.get(key, {})
        excluded = self.split.atlas.partners.get(pk, set()) | {pk}
        top = []
        for other in order:
            if other not in excluded:
                top.append(other)
                if len(top) == TOP:
                    break
        ahead = sorted(position[e] for e in excluded if e in position)
        first = None
        for hidden in self.split.hidden[pk]:
            if hidden in position:
                at = position[hidden]
                rank = at + 1 - sum(1 for p in ahead if p < at)
                first = rank if first is None else min(first, rank)
        return top, first


def popularity(split):
    rows, partners = split.atlas.rows, split.atlas.partners
    order = sorted(rows, key=lambda pk: (-len(partners.get(pk, ())), rows[pk].name, pk))
    return Ordered(split, {None: order}, lambda pk: None)


def region_alone(split):
    """Every city of the city's region, equal in score, so by name: as `rank()` orders them."""
    from cities.regions import UNKNOWN, region_of

    rows = split.atlas.rows
    orders = defaultdict(list)
    for pk in sorted(rows, key=lambda pk: (rows[pk].name, pk)):
        region = region_of(rows[pk].country)
        if region != UNKNOWN:
            orders[region].append(pk)
    return Ordered(split, orders, lambda pk: region_of(rows[pk].country))


def size_alone(split):
    """Every city whose population lies within 10 times the city's, by size similarity."""
    from partnerships.suggestions import size_similarity

    rows = split.atlas.rows
    populated = [(pk, row.population, row.name) for pk, row in rows.items() if row.population]

    def ranked(pk):
        population = rows[pk].population
        if not population:
            return []
        scored = []
        for other, theirs, name in populated:
            value = round(size_similarity(population, theirs), 9)
            if value > 0:
                scored.append((-value, name, other))
        scored.sort()
        excluded = split.atlas.partners.get(pk, set()) | {pk}
        return [other for _v, _n, other in scored if other not in excluded]

    return ranked


BASE = "shared partners alone (= partners of your partners)"


def weighted(weights, region, size):
    return replace(weights, region=region, size=size)


def paired_gain(results, base, seeds):
    """Gain in hits@10 and MRR over `base`, seed by seed: steadier than either spread."""
    hits = [results[sd][0] - base[sd][0] for sd in seeds]
    mrr = [results[sd][1] - base[sd][1] for sd in seeds]
    return (
        f"hits@10 {statistics.fmean(hits):+.4f} ({min(hits):+.4f}, {max(hits):+.4f})   "
        f"MRR {statistics.fmean(mrr):+.4f} ({min(mrr):+.4f}, {max(mrr):+.4f})"
    )


def lists_on_the_full_atlas(atlas):
    """((cities with a suggestion, with a full list), mean overlap of the two lists)."""
    from partnerships import suggestions as s

    some = full = 0
    overlaps = []
    for pk in atlas.rows:
        candidates = s.signals_in_memory(atlas, pk)
        like = {o for o, _v in s.rank(candidates, atlas.rows, s.LIKE_THIS, TOP)}
        tied = {o: c for o, c in candidates.items() if c.shared_partners}
        partners = {o for o, _v in s.rank(tied, atlas.rows, s.PARTNERS_ONLY, TOP)}
        some += bool(like)
        full += len(like) == TOP
        if like and partners:
            overlaps.append(len(like & partners) / len(like | partners))
    return (some, full), statistics.fmean(overlaps)


# Report --------------------------------------------------------------------------------------


def spread(values):
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.4f} ± {sd:.4f} ({min(values):.4f}–{max(values):.4f})"


def table(results, seeds):
    lines = [
        f"{'ranking':<52} {'hits@10 mean ± sd (min–max)':<32} {'MRR mean ± sd (min–max)':<32}",
        "-" * 118,
    ]
    for label, per_seed in results.items():
        hits = [per_seed[s][0] for s in seeds]
        mrr = [per_seed[s][1] for s in seeds]
        lines.append(f"{label:<52} {spread(hits):<32} {spread(mrr):<32}")
    return lines


def main():
    args = parse_args()
    started = time.perf_counter()
    copy = copy_atlas(args.db)
    setup_django(f"sqlite:///{copy}")
    from partnerships import suggestions as s

    rows, pairs, networks, themes = load()
    full = atlas_of(rows, pairs, networks, themes)
    agree, checked = check_same_ranking(full, args.checked)
    timed = time_the_page(full)

    shipped = s.LIKE_THIS
    rankings = {
        BASE: lambda sp: pooled(sp, s.PARTNERS_ONLY),
        "shared networks alone": lambda sp: pooled(sp, s.Weights(networks=1)),
        "shared themes alone": lambda sp: pooled(sp, s.Weights(themes=1)),
        "same region alone, every city of the region": region_alone,
        "same region alone, within the candidate pool": lambda sp: pooled(sp, s.Weights(region=1)),
        "similar size alone, every city within 10x": size_alone,
        "similar size alone, within the candidate pool": lambda sp: pooled(sp, s.Weights(size=1)),
        "COMBINATION as shipped (= cities like this one)": lambda sp: pooled(sp, shipped),
        "  without shared partners": lambda sp: pooled(sp, replace(shipped, partners=0)),
        "  without networks": lambda sp: pooled(sp, replace(shipped, networks=0)),
        "  without themes": lambda sp: pooled(sp, replace(shipped, themes=0)),
        "  without region": lambda sp: pooled(sp, replace(shipped, region=0)),
        "  without size": lambda sp: pooled(sp, replace(shipped, size=0)),
        "POPULARITY baseline (most ties, not yet partners)": popularity,
    }
    results = defaultdict(dict)
    ceilings, grid, splits_info = {}, {}, {}
    tuning_seed, held_out = args.seeds[0], args.seeds[1:]
    for seed in args.seeds:
        split = Split(rows, pairs, networks, themes, seed)
        splits_info[seed] = (len(split.hidden), split.ends)
        reachable = sum(len(h & split.signals[pk].keys()) for pk, h in split.hidden.items())
        ceilings[seed] = reachable / split.ends
        for label, make in rankings.items():
            results[label][seed] = metrics(split, make(split))
        if seed == tuning_seed:
            # The whole grid on the tuning seed only; the other seeds see its best.
            tried = [(region, size) for region in REGION_GRID for size in SIZE_GRID]
            grid = {
                key: {seed: metrics(split, pooled(split, weighted(shipped, *key)))} for key in tried
            }
            best = max(tried, key=lambda key: grid[key][seed])
            compared = [best, (shipped.region, shipped.size), (0.0, 0.0)]
        else:
            for key in compared:
                grid[key][seed] = metrics(split, pooled(split, weighted(shipped, *key)))

    coverage, overlap = lists_on_the_full_atlas(full)
    gains = {
        label: paired_gain(results[label], results[BASE], args.seeds)
        for label in results
        if label != BASE and label.startswith(("COMBINATION", "  without"))
    }
    elapsed = time.perf_counter() - started
    lines = [
        f"Partner suggestions, offline evaluation ({datetime.date.today().isoformat()})",
        f"atlas: {len(rows):,} cities, {len(pairs):,} tied pairs, "
        f"{sum(map(len, networks.values())):,} city–network links (branches' parents "
        f"included) of {len(networks):,} cities, "
        f"{sum(map(len, themes.values())):,} city themes of {len(themes):,} cities, "
        f"{sum(1 for r in rows.values() if r.population):,} populations known",
        f"hidden: {HIDDEN_SHARE:.0%} of the tied pairs per seed; seeds {args.seeds}; "
        "cities that lost a tie / hidden tie ends: "
        + ", ".join(f"{c:,} / {e:,}" for c, e in splits_info.values()),
        f"database and in-memory rankings agree on {agree} of {checked} cities checked",
        "suggestions_for() on the most connected cities (median of 5, SQLite, DEBUG off): "
        + ", ".join(
            f"{name} ({ties} ties) {ms:.1f} ms in {n} queries" for name, ties, ms, n in timed
        ),
        f"shipped weights: {shipped}",
        "hidden tie ends within the candidate pool (cities sharing a partner, network or "
        "theme: the ceiling of every pooled ranking): "
        + ", ".join(f"{v:.4f}" for v in ceilings.values()),
        "",
        *table(results, args.seeds),
        "",
        f"Paired by seed, against {BASE.strip()}: mean gain (min, max)",
        *(f"  {label.strip():<50} {gain}" for label, gain in gains.items()),
        "",
        f"Tuning the region and size weights (partners 1, networks {shipped.networks:g}, "
        f"themes {shipped.themes:g}) on seed {tuning_seed} only, over {len(REGION_GRID)}×"
        f"{len(SIZE_GRID)} values, by hits@10 then MRR: best region {best[0]:g}, size "
        f"{best[1]:g}. Hits@10 / MRR per seed (* tuned on; held out: {held_out}):",
    ]
    for key in dict.fromkeys(compared):
        label = f"region {key[0]:g}, size {key[1]:g}"
        if key == (shipped.region, shipped.size):
            label += " (shipped)"
        cells = "  ".join(
            f"seed {sd}{'*' if sd == tuning_seed else ' '} {h:.4f} / {m:.4f}"
            for sd, (h, m) in grid[key].items()
        )
        lines.append(f"  {label:<32} {cells}")
    if held_out:
        held = [grid[best][sd] for sd in held_out]
        lines.append(
            f"  best weights on the held-out seeds: hits@10 {spread([h for h, _m in held])}, "
            f"MRR {spread([m for _h, m in held])}"
        )
    lines += [
        "",
        f"On the full atlas: {coverage[0]:,} of {len(rows):,} cities get at least one "
        f"suggestion ({coverage[1]:,} at least {TOP}); the two top-{TOP} lists share "
        f"{overlap:.0%} of their cities on average (Jaccard, cities with both lists).",
    ]
    lines += ["", f"run time {elapsed:.0f} s"]
    text = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
