"""Duplicate cities made by importing a second list of the same ties, written differently.

    .venv/bin/python bench/bench_duplicates.py [--rows 8000] [--seed 2026] [--workdir DIR]
    .venv/bin/python bench/bench_duplicates.py --variant LIST.csv --truth TRUTH.csv

Writes the second list with `make_variant_list.py` (unless --variant and --truth name one),
then, on a fresh SQLite database under --workdir, each import in a process of its own:

1. imports `data/twin-cities-wikipedia.csv` with --skip-bad-rows into the empty atlas;
2. imports the second list in its own layout (`--map`, semicolons), citing a source of its
   own, with --skip-bad-rows.

Every city of the second list is a city of the first, so a city the second import creates is,
per the ground truth, a duplicate of one already in the atlas (unless its original never got
in). Prints the time and peak resident memory of each import; the cities before, the cities
created and how many are duplicates, as a share of the cities created and of the cities the list
names; the list's cities tied as some other, older city (wrong matches); the rejected rows by
reason; and the kinds of spelling the matcher misses most, with examples. The second list's
checksum is printed so that runs before and after a change to the importer can be seen to
measure the same list.
"""

import argparse
import csv
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from _support import ROOT, remove_sqlite, setup_django
from make_variant_list import IMPORT_MAP

DATA = ROOT / "data" / "twin-cities-wikipedia.csv"
SOURCE = {
    "slug": "bench-second-list",
    "title": "The shared Wikipedia pairs as a second list would write them (benchmark)",
    "note": "Written by bench/make_variant_list.py: other spellings, layout and country forms.",
}

# Copy-paste residue a list may carry into a spelling the atlas then keeps.
UNCLEAN = re.compile("[\ufeff\u200b\u200e]|  ")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="the first list (default layout)")
    parser.add_argument("--variant", help="the second list; written afresh when not given")
    parser.add_argument("--truth", help="its ground truth (with --variant)")
    parser.add_argument("--rows", type=int, default=8000, help="rows of the second list")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--workdir", default=os.path.join(tempfile.gettempdir(), "cd-bench-duplicates")
    )
    parser.add_argument("--kinds", type=int, default=20, help="duplicate kinds to list")
    parser.add_argument("--worker", choices=["first", "second"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if bool(args.variant) != bool(args.truth):
        parser.error("--variant and --truth go together")
    return args


def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_truth(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# Workers: one process per import, so that each peak of resident memory is that import's own.


def work_first(args):
    from django.core.management import call_command

    from cities.gazetteer import distance_km
    from cities.models import AlternateName, City
    from partnerships.importing import run_import

    call_command("migrate", verbosity=0)
    result = {"rss_before_mb": rss_mb()}
    started = time.perf_counter()
    plan = run_import(args.data, skip_bad_rows=True)
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = peak_rss_mb()
    result["figures"] = plan.summary()
    del plan
    # As on a first `make run`: the atlas the second list meets is linked to GeoNames.
    started = time.perf_counter()
    call_command("link_gazetteer", min_population=15000, verbosity=0)
    result["link_seconds"] = time.perf_counter() - started

    # Which city the first import made of each original the ground truth names: the importer
    # keeps every spelling it met as the city's name or an alternate name.
    cities = {
        pk: (name, country, lat, lng)
        for pk, name, country, lat, lng in City.objects.values_list(
            "pk", "name", "country", "latitude", "longitude"
        )
    }
    spots = defaultdict(list)
    for pk, (name, country, lat, lng) in cities.items():
        spots[(name, country)].append((pk, lat, lng))
    for pk, name in AlternateName.objects.values_list("city_id", "name"):
        _name, country, lat, lng = cities[pk]
        spots[(name, country)].append((pk, lat, lng))
    # One per ground-truth entry: two places may share a name and country (Wells, England).
    originals = []
    for entry in read_truth(args.truth):
        found = spots.get((entry["original_name"], entry["original_code"]), [])
        lat, lng = float(entry["original_lat"]), float(entry["original_lng"])
        near = sorted(
            (distance_km(lat, lng, c_lat, c_lng) if c_lat is not None else 0.0, pk)
            for pk, c_lat, c_lng in found
        )
        originals.append(near[0][1] if near else None)
    result["originals"] = originals
    result["cities"] = City.objects.count()
    return result


def work_second(args):
    from cities.models import AlternateName, City
    from partnerships.importing import dataset_source, parse_mapping, run_import
    from partnerships.models import TieCitation

    before = {
        "cities": City.objects.count(),
        "last_city": City.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
        "last_name": AlternateName.objects.order_by("-pk").values_list("pk", flat=True).first()
        or 0,
    }
    source, source_is_new = dataset_source(
        SOURCE["slug"], title=SOURCE["title"], note=SOURCE["note"]
    )
    result = {"rss_before_mb": rss_mb(), "before": before}
    started = time.perf_counter()
    plan = run_import(
        args.variant,
        mapping=parse_mapping(IMPORT_MAP),
        source=source,
        source_is_new=source_is_new,
        skip_bad_rows=True,
    )
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = peak_rss_mb()
    result["figures"] = plan.summary()
    result["rejected"] = [(number, reason, cells) for number, reason, cells in plan.rejected]
    del plan

    # What the second import made, read back from the database rather than from the plan, so
    # that the measure holds whatever the importer's internals become.
    new = {
        pk: {"country": country, "names": [name]}
        for pk, name, country in City.objects.filter(pk__gt=before["last_city"]).values_list(
            "pk", "name", "country"
        )
    }
    added = AlternateName.objects.filter(pk__gt=before["last_name"]).values_list("city_id", "name")
    kept = []
    for pk, name in added:
        if pk in new:
            new[pk]["names"].append(name)
        kept.append(name)
    result["new_cities"] = new
    result["unclean_spellings"] = sum(
        bool(UNCLEAN.search(name)) for name in kept + [city["names"][0] for city in new.values()]
    )
    # Each row cites its tie with "row N": the two cities the row was reconciled to.
    cited = TieCitation.objects.filter(source__slug=SOURCE["slug"]).values_list(
        "locator", "tie__city_a_id", "tie__city_b_id"
    )
    result["row_cities"] = {locator.removeprefix("row "): [a, b] for locator, a, b in cited}
    touched = {pk for pair in result["row_cities"].values() for pk in pair}
    result["city_names"] = dict(City.objects.filter(pk__in=touched).values_list("pk", "name"))
    result["cities_after"] = City.objects.count()
    return result


def run_worker(args, kind, url):
    command = [sys.executable, __file__, "--worker", kind, "--url", url, "--data", args.data]
    command += ["--variant", args.variant, "--truth", args.truth]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# Reading the results -------------------------------------------------------------------------


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def shown(text):
    """A name with its invisible characters made visible, for the report."""
    return (
        text.replace("\ufeff", "<BOM>")
        .replace("\u200b", "<ZWSP>")
        .replace("\u200e", "<LRM>")
        .replace("  ", "<2 spaces>")
    )


def reason_kind(reason):
    """A rejection reason without the row's own values, so that like reasons group."""
    reason = re.sub(r"“[^”]*”", "“…”", reason)
    return re.sub(r"^.+ and .+ \(\w+\) are the same city", "… and … are the same city", reason)


def analyse(args, truth, original, second):
    """Per the ground truth, (duplicates, missed, wrong, unexplained):

    - duplicates: created cities whose spellings are variants of cities the first import made;
    - missed: the list's cities (indices into `truth`) that became such a duplicate;
    - wrong: {index: name of the city it went to}, the list's cities reconciled by some row to
      an older city that is not their original;
    - unexplained: names of created cities that the ground truth does not list.
    """
    stripped, as_written = defaultdict(list), {}
    for i, entry in enumerate(truth):
        # The importer strips each cell; the ground truth keeps the name as written.
        stripped[(entry["variant_name"].strip(), entry["variant_code"])].append(i)
        as_written[(entry["variant_name"], entry["variant_country"])] = i

    duplicates, missed, unexplained = [], set(), []
    for pk, city in second["new_cities"].items():
        found = [i for name in city["names"] for i in stripped.get((name, city["country"]), ())]
        if not found:
            unexplained.append(city["names"][0])
        elif any(original[i] for i in found):
            duplicates.append(int(pk))
            missed.update(i for i in found if original[i])

    wrong = {}
    new = {int(pk) for pk in second["new_cities"]}
    with open(args.variant, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))[1:]
    for number, cells in enumerate(rows, start=2):
        cities = second["row_cities"].get(str(number))
        if not cities:
            continue  # rejected
        ends = [as_written.get((cells[0], cells[1])), as_written.get((cells[4], cells[5]))]
        if None in ends:
            continue
        # An end either went to its original, or created a duplicate (missed), or went to
        # one of the older cities the row's tie names besides the originals.
        older = [pk for pk in cities if pk not in new and pk not in {original[i] for i in ends}]
        for i in ends:
            if original[i] not in cities and i not in missed and older:
                pk = older.pop(0)
                wrong[i] = second["city_names"].get(str(pk), str(pk))
    return duplicates, missed, wrong, unexplained


def example(entry):
    name, original = shown(entry["variant_name"]), entry["original_name"]
    codes = entry["original_code"]
    if entry["variant_code"] != entry["original_code"]:
        codes = f"{entry['variant_code']} → {entry['original_code']}"
    return f"{name} → {original} ({codes})"


def table(lines):
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"  {label:<{width}}  {value}")


def import_lines(result):
    figures = result["figures"]
    return [
        ("rows", f"{figures['rows']:,}"),
        ("rows rejected", f"{figures['rows_rejected']:,}"),
        ("cities created", f"{figures['cities_created']:,}"),
        ("cities matched in the atlas", f"{figures['cities_matched']:,}"),
        ("alternate names kept", f"{figures['alternate_names_created']:,}"),
        ("ties created", f"{figures['ties_created']:,}"),
        ("rows confirming a tie already in the atlas", f"{figures['ties_already_in_atlas']:,}"),
        ("time", f"{result['seconds']:.1f} s"),
        (
            "peak RSS of the process (before importing)",
            f"{result['peak_rss_mb']:.0f} MB ({result['rss_before_mb']:.0f} MB)",
        ),
    ]


def report(args, first, second, truth):
    print(f"\nFirst import: {Path(args.data).name} (--skip-bad-rows)")
    table(import_lines(first))
    print(f"\nSecond import: {Path(args.variant).name} (--map, its own source, --skip-bad-rows)")
    table(import_lines(second))

    duplicates, missed, wrong, unexplained = analyse(args, truth, first["originals"], second)
    # Cities written with a country the importer refuses never reach it: not counted as listed.
    listed = [i for i, entry in enumerate(truth) if "refused" not in entry["country_form"]]
    rows = sum(int(entry["rows"]) for entry in truth) // 2
    created = second["cities_after"] - second["before"]["cities"]
    no_coords = [i for i in listed if truth[i]["coordinates"] == "no"]
    print("\nDuplicates, per the ground truth")
    table(
        [
            ("cities before the second import", f"{second['before']['cities']:,}"),
            ("cities the second list names", f"{len(listed):,} (in {rows:,} rows)"),
            ("cities created by the second import", f"{created:,}"),
            ("  of which duplicates of a city already there", f"{len(duplicates):,}"),
            ("duplicates / cities created", f"{len(duplicates) / max(created, 1):.1%}"),
            (
                "list's cities duplicated / cities the list names",
                f"{len(missed):,} / {len(listed):,} = {len(missed) / max(len(listed), 1):.1%}",
            ),
            (
                "  among those given without coordinates",
                f"{len(missed.intersection(no_coords)):,} / {len(no_coords):,}",
            ),
            (
                "ties created (the first list has every pair)",
                f"{second['figures']['ties_created']:,}",
            ),
            ("list's cities tied as another, older city", f"{len(wrong):,}"),
            ("spellings kept with invisible characters", f"{second['unclean_spellings']:,}"),
            ("created cities the ground truth cannot explain", f"{len(unexplained):,}"),
        ]
    )
    for i, name in list(wrong.items())[:5]:
        print(f"    e.g. {example(truth[i])}, tied as {name}")
    for name in unexplained[:5]:
        print(f"    unexplained: {shown(name)}")

    rejected = second["rejected"]
    reasons = Counter(reason_kind(reason) for _number, reason, _cells in rejected)
    print(f"\nRejected rows of the second import: {len(rejected):,}")
    for reason, count in reasons.most_common(5):
        print(f"  {count:>5}  {reason}")
        for number, _reason, cells in [r for r in rejected if reason_kind(r[1]) == reason][:2]:
            print(f"         row {number}: {';'.join(shown(cell) for cell in cells)}")

    by_kind = defaultdict(list)
    for i in listed:
        by_kind[truth[i]["kind"]].append(i)
    misses = {kind: [i for i in indices if i in missed] for kind, indices in by_kind.items()}
    ranked = sorted(by_kind, key=lambda kind: (-len(misses[kind]), kind))
    top = [kind for kind in ranked[: args.kinds] if misses[kind]]
    print(f"\nDuplicate kinds the matcher misses most (top {len(top)}): duplicated / listed")
    width = max((len(kind) for kind in top), default=0)
    for kind in top:
        count, total = len(misses[kind]), len(by_kind[kind])
        examples = "; ".join(example(truth[i]) for i in misses[kind][:2])
        print(f"  {kind:<{width}}  {count:>5} / {total:<5} {count / total:>4.0%}  e.g. {examples}")
    rest = [kind for kind in ranked[args.kinds :] if misses[kind]]
    if rest:
        print(
            "Also missed: "
            + ", ".join(f"{kind} ({len(misses[kind])} / {len(by_kind[kind])})" for kind in rest)
        )
    handled = [kind for kind in ranked if not misses[kind]]
    if handled:
        print(
            "Kinds the matcher reconciles (no duplicate): "
            + ", ".join(f"{kind} ({len(by_kind[kind])})" for kind in handled)
        )


def main():
    args = parse_args()
    if args.worker:
        setup_django(args.url)
        work = {"first": work_first, "second": work_second}[args.worker]
        print(json.dumps(work(args)))
        return
    started_all = time.perf_counter()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # Other work on the machine slows the imports; the load says how far to trust the times.
    print(
        f"Benchmark: duplicate cities from a second list of the same ties, SQLite, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    if not args.variant:
        args.variant, args.truth = str(workdir / "variant.csv"), str(workdir / "truth.csv")
        command = [sys.executable, str(Path(__file__).with_name("make_variant_list.py"))]
        command += [args.variant, "--truth", args.truth, "--rows", str(args.rows)]
        command += ["--seed", str(args.seed), "--data", args.data]
        started = time.perf_counter()
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        print(f"Second list written in {time.perf_counter() - started:.1f} s:")
        for line in output.strip().splitlines():
            print(f"  {line}")
    print(f"  second list sha256 {sha256(args.variant)}")
    print(f"  ground truth sha256 {sha256(args.truth)}")

    database = workdir / "duplicates.sqlite3"
    remove_sqlite(database)
    url = f"sqlite:///{database}"
    first = run_worker(args, "first", url)
    second = run_worker(args, "second", url)
    report(args, first, second, read_truth(args.truth))
    elapsed = time.perf_counter() - started_all
    print(f"\nDone in {elapsed:.0f} s, load average {os.getloadavg()[0]:.1f}.")


if __name__ == "__main__":
    main()
