"""Citable releases of the atlas: versioned Frictionless Data Packages, and their loading.

A release is a folder of RELEASES_DIR named by its version (`2026.12.06`, then
`2026.12.06.2` for a second one that day):

- one CSV per resource — the atlas's records and their links — in primary-key order;
- `datapackage.json`: a Table Schema per resource (types, required fields, choices, primary
  and foreign keys), each resource's licences and sources (those its records cite), its row
  count, size and SHA-256; the release's version and the checksum of its content;
- `citydiplomacy-<version>.zip`: all of the above in one file;
- `release.json`: what `/data/` lists (date, counts, sizes, checksums, the previous
  version) and `changes.json`: what changed since the previous release, by source.

A release is written in a hidden folder beside the others and renamed into place when whole:
a reader never sees one half-written. What a release publishes is the atlas as a reader sees
it; curators' notes, timestamps, edit history, corrections and keys stay out, and so do
columns derived from others (folded names, the bounds of EDTF dates), which loading derives
again.
"""

import csv
import datetime
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.management.color import no_style
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

PACKAGE = "citydiplomacy"
ATLAS_LICENCE = {
    "name": "CC-BY-SA-4.0",
    "path": "https://creativecommons.org/licenses/by-sa/4.0/",
    "title": "Creative Commons Attribution-ShareAlike 4.0",
}
# Known licences of sources, by the words curators write, as Data Package licences.
LICENCES = {
    "CC BY-SA 4.0": ATLAS_LICENCE,
    "CC BY 4.0": {
        "name": "CC-BY-4.0",
        "path": "https://creativecommons.org/licenses/by/4.0/",
        "title": "Creative Commons Attribution 4.0",
    },
    "CC0 1.0": {
        "name": "CC0-1.0",
        "path": "https://creativecommons.org/publicdomain/zero/1.0/",
        "title": "Creative Commons Zero 1.0",
    },
}

# (resource name, app label, model name), in an order where every record's references come
# before it; a model's many-to-many links follow as "<resource>_<field>".
RESOURCES = [
    ("themes", "cities", "Theme"),
    ("sources", "cities", "Source"),
    ("cities", "cities", "City"),
    ("alternate_names", "cities", "AlternateName"),
    ("search_names", "cities", "SearchName"),
    ("slug_redirects", "cities", "SlugRedirect"),
    ("organizations", "partnerships", "Organization"),
    ("ties", "partnerships", "Tie"),
    ("memberships", "partnerships", "Membership"),
    ("initiatives", "partnerships", "Initiative"),
    ("events", "partnerships", "Event"),
    ("stated_figures", "partnerships", "StatedFigure"),
    ("city_citations", "cities", "CityCitation"),
    ("organization_citations", "partnerships", "OrganizationCitation"),
    ("tie_citations", "partnerships", "TieCitation"),
    ("membership_citations", "partnerships", "MembershipCitation"),
    ("initiative_citations", "partnerships", "InitiativeCitation"),
    ("event_citations", "partnerships", "EventCitation"),
    ("stated_figure_citations", "partnerships", "StatedFigureCitation"),
]
# Kept out: working notes and timestamps of the curators, and what derives from other columns.
LEFT_OUT = {"curator_notes", "created_at", "updated_at", "folded_name", "folded"}
# The records whose changes the changelog counts, with the citations that say by which source.
CHANGELOG = {
    "cities": ("city_citations", "city_id"),
    "ties": ("tie_citations", "tie_id"),
    "memberships": ("membership_citations", "membership_id"),
}
CHUNK = 2000
# Resources whose rows come from one source rather than citing theirs: the gazetteer's names.
SOURCED_BY = {"search_names": "geonames-cities"}
log = logging.getLogger(__name__)


def releases_dir():
    return Path(settings.RELEASES_DIR)


# Resources and their Table Schemas ------------------------------------------------------


@dataclass
class Resource:
    name: str
    model: type
    columns: list  # [(column name in the CSV, model field)]
    primary_key: list
    many_to_many_of: str = ""  # for a link table: the resource it belongs to

    def queryset(self):
        return self.model._default_manager.order_by(*self.primary_key).values_list(
            *[field.attname for _column, field in self.columns]
        )


def _derived(model, field):
    """Columns another column gives: the bounds of an EDTF date, folded names."""
    edtf = getattr(model, "edtf_fields", ())
    return field.name in LEFT_OUT or any(
        field.name in (f"{name}_lower", f"{name}_upper") for name in edtf
    )


def resources():
    found = []
    for name, app_label, model_name in RESOURCES:
        model = apps.get_model(app_label, model_name)
        fields = [f for f in model._meta.concrete_fields if not _derived(model, f)]
        # The record's own fields first, after its id; the curators' verification last.
        fields.sort(key=lambda f: (not f.primary_key, f.name == "verification"))
        columns = [(f.attname, f) for f in fields]
        found.append(Resource(name, model, columns, [model._meta.pk.attname]))
        for m2m in model._meta.many_to_many:
            through = m2m.remote_field.through
            ends = [f for f in through._meta.concrete_fields if f.is_relation and f.many_to_one]
            found.append(
                Resource(
                    f"{name}_{m2m.name}",
                    through,
                    [(f.attname, f) for f in ends],
                    [f.attname for f in ends],
                    many_to_many_of=name,
                )
            )
    return found


def _type(field):
    if field.is_relation:
        field = field.target_field
    if isinstance(field, models.BooleanField):
        return "boolean"
    if isinstance(field, (models.AutoField, models.BigAutoField, models.IntegerField)):
        return "integer"
    if isinstance(field, (models.FloatField, models.DecimalField)):
        return "number"
    if isinstance(field, models.DateTimeField):
        return "datetime"
    if isinstance(field, models.DateField):
        return "date"
    return "string"


def _schema_field(column, field, resource):
    described = {"name": column, "type": _type(field)}
    title = str(getattr(field, "verbose_name", "") or "")
    if title and title != column:
        described["title"] = title
    if field.help_text:
        described["description"] = str(field.help_text)
    if column in resource.primary_key and len(resource.primary_key) == 1:
        described["constraints"] = {"required": True, "unique": True}
    elif not field.null and not getattr(field, "blank", False):
        described["constraints"] = {"required": True}
    if field.choices and not field.is_relation:
        # An empty choice is a missing value, which `required` governs.
        described.setdefault("constraints", {})["enum"] = [str(v) for v, _ in field.flatchoices]
    if field.unique and column not in resource.primary_key:
        described.setdefault("constraints", {})["unique"] = True
    if isinstance(field, models.CharField) and field.max_length and not field.choices:
        described.setdefault("constraints", {})["maxLength"] = field.max_length
    return described


def table_schema(resource, by_model):
    schema = {
        "fields": [_schema_field(c, f, resource) for c, f in resource.columns],
        "primaryKey": resource.primary_key,
        "missingValues": [""],
    }
    keys = []
    for column, field in resource.columns:
        if not field.is_relation:
            continue
        target = by_model.get(field.related_model)
        if target is None:
            continue
        reference = {"resource": "" if target is resource else target.name, "fields": ["id"]}
        keys.append({"fields": [column], "reference": reference})
    if keys:
        schema["foreignKeys"] = keys
    return schema


# Writing a release ------------------------------------------------------------------------


def _cell(value, field):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    # Text as it is: a release is read by programs, which a spreadsheet's formula guard
    # (an apostrophe before a leading =, the API's CSV exports) would alter.
    return str(value)


class _Digest:
    """A file-like sink that counts and hashes what csv.writer writes."""

    def __init__(self, out):
        self.out, self.sha, self.size = out, hashlib.sha256(), 0

    def write(self, text):
        data = text.encode()
        self.sha.update(data)
        self.size += len(data)
        self.out.write(data)


def _write_csv(resource, path):
    """The resource's rows as CSV; (rows, bytes, sha256, {primary key: row digest})."""
    rows, digests = 0, {}
    fields = [field for _column, field in resource.columns]
    with path.open("wb") as out:
        sink = _Digest(out)
        writer = csv.writer(sink, lineterminator="\n")
        writer.writerow([column for column, _field in resource.columns])
        for values in resource.queryset().iterator(chunk_size=CHUNK):
            row = [_cell(v, f) for v, f in zip(values, fields, strict=True)]
            writer.writerow(row)
            rows += 1
            if resource.name in CHANGELOG:
                digests[row[0]] = hashlib.sha256("\x1f".join(row).encode()).digest()
    return rows, sink.size, sink.sha.hexdigest(), digests


def _licences_and_sources(resource_names):
    """{resource: (licences, sources)}: the licences and titles of the sources that the
    records of each resource cite (a link table takes those of its records)."""
    Source = apps.get_model("cities", "Source")
    cited = {}
    for name, app_label, model_name in RESOURCES:
        if not name.endswith("_citations"):
            continue
        model = apps.get_model(app_label, model_name)
        claims = name.removesuffix("_citations")
        claimed = {"city": "cities", "stated_figure": "stated_figures"}.get(claims, f"{claims}s")
        source_ids = set(model._default_manager.values_list("source_id", flat=True).distinct())
        cited.setdefault(claimed, set()).update(source_ids)
        cited.setdefault(name, set()).update(source_ids)
    for name, slug in SOURCED_BY.items():
        cited[name] = set(Source.objects.filter(slug=slug).values_list("pk", flat=True))
    sources = {s.pk: s for s in Source.objects.filter(pk__in=set().union(*cited.values()))}
    result = {}
    for name in resource_names:
        base = name if name in cited else next((n for n in cited if name.startswith(f"{n}_")), "")
        used = sorted((sources[i] for i in cited.get(base, ())), key=lambda s: s.slug)
        licences = [ATLAS_LICENCE]
        for source in used:
            licence = LICENCES.get(source.licence.strip())
            if licence and licence not in licences:
                licences.append(licence)
        result[name] = (
            licences,
            [
                {"title": s.title, **({"path": s.url} if s.url else {}), "licence": s.licence}
                for s in used
            ],
        )
    return result


def next_version(today=None, existing=()):
    base = (today or timezone.localdate()).strftime("%Y.%m.%d")
    taken = set(existing)
    if base not in taken:
        return base
    n = 2
    while f"{base}.{n}" in taken:
        n += 1
    return f"{base}.{n}"


def list_releases(root=None):
    """The releases as their release.json says, newest first; folders without one (being
    written, or not releases) are not listed."""
    root = root or releases_dir()
    found = []
    if root.is_dir():
        for folder in root.iterdir():
            manifest = folder / "release.json"
            if folder.name.startswith(".") or not manifest.is_file():
                continue
            try:
                release = json.loads(manifest.read_text())
                if not all(isinstance(release[key], str) for key in ("version", "created")):
                    raise TypeError("version and created must be text")
                release["files"][release["archive"]]["sha256"]  # noqa: B018 — must be there
            except (OSError, ValueError, KeyError, TypeError) as error:
                # A damaged or foreign folder is not a release: listed nowhere, said in logs.
                log.warning("%s is not a readable release: %s", manifest, error)
                continue
            found.append(release)
    return sorted(found, key=lambda r: (r["created"], r["version"]), reverse=True)


def release(root=None, *, title="cityDiplomacy", site_url="", today=None):
    """Write a release of the atlas as it is now; returns its release.json."""
    root = root or releases_dir()
    root.mkdir(parents=True, exist_ok=True)
    # One release at a time, across processes and app servers sharing the folder: the
    # version is chosen from the folders there, and the changelog from the latest.
    with (root / ".release.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _release_locked(root, title, site_url, today)


def _release_locked(root, title, site_url, today):
    previous = next(iter(list_releases(root)), None)
    version = next_version(today, (p.name for p in root.iterdir()))
    work = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=root))
    work.chmod(0o755)  # mkdtemp makes it private; app servers may run as another user
    try:
        # One snapshot for every resource: a repeatable read on PostgreSQL, one read
        # transaction on SQLite, so that no record is written between two files.
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            if connection.vendor == "postgresql" and outermost:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            manifest = _write(work, version, previous, root, title, site_url)
        os.rename(work, root / version)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _write(work, version, previous, root, title, site_url):
    all_resources = resources()
    by_model = {r.model: r for r in all_resources if not r.many_to_many_of}
    licensing = _licences_and_sources([r.name for r in all_resources])
    described, digests, counts = [], {}, {}
    for resource in all_resources:
        path = work / f"{resource.name}.csv"
        rows, size, sha, digest = _write_csv(resource, path)
        counts[resource.name] = rows
        digests[resource.name] = digest
        licences, sources = licensing[resource.name]
        described.append(
            {
                "name": resource.name,
                "path": path.name,
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "title": str(resource.model._meta.verbose_name_plural).capitalize()
                if not resource.many_to_many_of
                else f"Links: {resource.name.replace('_', ' ')}",
                "dialect": {"delimiter": ",", "lineTerminator": "\n"},
                "schema": table_schema(resource, by_model),
                "licenses": licences,
                "sources": sources,
                "hash": f"sha256:{sha}",
                "bytes": size,
                "x_rows": rows,
            }
        )
    content = hashlib.sha256(
        "\n".join(f"{r['name']}:{r['hash']}" for r in described).encode()
    ).hexdigest()
    created = timezone.now().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    package = {
        "name": PACKAGE,
        "title": f"{title}: an atlas of city diplomacy",
        "description": "Cities acting on the world stage: typed, dated and sourced ties "
        "between cities, their networks, programmes, events and stated figures, each "
        "citing its sources.",
        "version": version,
        "created": created,
        "homepage": f"{site_url}/data/" if site_url else "",
        "licenses": [ATLAS_LICENCE],
        "contributors": [{"title": "cityDiplomacy contributors", "role": "author"}],
        "keywords": ["city diplomacy", "sister cities", "twin towns", "city networks"],
        "x_content_sha256": content,
        "x_counts": counts,
        "resources": described,
    }
    (work / "datapackage.json").write_text(json.dumps(package, indent=2, ensure_ascii=False))
    changes = changelog(previous and root / previous["version"], work, digests)
    (work / "changes.json").write_text(json.dumps(changes, indent=2, ensure_ascii=False))
    archive = work / f"{PACKAGE}-{version}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name in ["datapackage.json", *(r["path"] for r in described)]:
            zipped.write(work / name, f"{PACKAGE}-{version}/{name}")
    manifest = {
        "version": version,
        "created": created,
        "previous": previous["version"] if previous else None,
        "content_sha256": content,
        "counts": {
            name: counts[name] for name in ("cities", "ties", "organizations", "memberships")
        },
        "all_counts": counts,
        "files": {
            name: {"bytes": (work / name).stat().st_size, "sha256": _sha256(work / name)}
            for name in [archive.name, "datapackage.json"]
        },
        "archive": archive.name,
    }
    (work / "release.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def _sha256(path):
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


# The changelog ----------------------------------------------------------------------------


def _rows(path):
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader, None)
        yield from reader


def _citing(folder, name):
    """{record id: [source slugs]} from a release folder's citations of `name`."""
    citations, column = CHANGELOG[name]
    slugs = {row[0]: row[1] for row in _rows_dict(folder / "sources.csv", ("id", "slug"))}
    cited = {}
    for row in _rows_dict(folder / f"{citations}.csv", (column, "source_id")):
        # A record cited twice by one source (two pages of it) counts once for it.
        cited.setdefault(row[0], set()).add(slugs.get(row[1], row[1]))
    return {record: sorted(sources) for record, sources in cited.items()}


def _rows_dict(path, columns):
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for row in reader:
            yield tuple(row[c] for c in columns)


def changelog(previous_folder, folder, digests):
    """What changed since the previous release in cities, ties and memberships: added,
    changed and removed records, in all and by the source they cite ("no source" for none).
    """
    result = {"previous": previous_folder.name if previous_folder else None, "resources": {}}
    for name in CHANGELOG:
        now = digests[name]
        before = {}
        if previous_folder and (previous_folder / f"{name}.csv").is_file():
            for row in _rows(previous_folder / f"{name}.csv"):
                before[row[0]] = hashlib.sha256("\x1f".join(row).encode()).digest()
        added = [i for i in now if i not in before]
        removed = [i for i in before if i not in now]
        changed = [i for i in now if i in before and before[i] != now[i]]
        cited_now = _citing(folder, name)
        cited_before = _citing(previous_folder, name) if previous_folder else {}
        by_source = {}
        for what, ids, cited in (
            ("added", added, cited_now),
            ("changed", changed, cited_now),
            ("removed", removed, cited_before),
        ):
            for i in ids:
                for slug in cited.get(i) or ["(no source)"]:
                    counts = by_source.setdefault(slug, {"added": 0, "changed": 0, "removed": 0})
                    counts[what] += 1
        result["resources"][name] = {
            "added": len(added),
            "changed": len(changed),
            "removed": len(removed),
            "by_source": dict(sorted(by_source.items())),
        }
    return result


# Loading a release ------------------------------------------------------------------------


class ReleaseError(ValueError):
    pass


def open_package(path):
    """The folder holding datapackage.json, from a release folder, its datapackage.json or
    its zip (unpacked into a temporary folder that the caller removes): (folder, temporary)."""
    path = Path(path)
    if path.is_dir():
        return path, None
    if path.name == "datapackage.json":
        return path.parent, None
    if zipfile.is_zipfile(path):
        temporary = Path(tempfile.mkdtemp(prefix="release-"))
        try:
            with zipfile.ZipFile(path) as zipped:
                for member in zipped.namelist():
                    target = (temporary / member).resolve()
                    if not target.is_relative_to(temporary.resolve()):
                        raise ReleaseError(f"The zip holds a path outside itself: {member}")
                zipped.extractall(temporary)
            inner = [p.parent for p in temporary.rglob("datapackage.json")]
            if len(inner) != 1:
                raise ReleaseError("The zip holds no datapackage.json, or several.")
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        return inner[0], temporary
    raise ReleaseError(f"{path} is not a release folder, a datapackage.json or a zip.")


def load(path, *, reason=None):
    """Load a release into an empty atlas, all or nothing; {resource: rows loaded}."""
    folder, temporary = open_package(path)
    try:
        package = json.loads((folder / "datapackage.json").read_text())
        for described in package["resources"]:
            file = folder / described["path"]
            if _sha256(file) != described["hash"].removeprefix("sha256:"):
                raise ReleaseError(f"{described['path']} does not match its SHA-256.")
        known = {r.name: r for r in resources()}
        holding = sorted(r.name for r in known.values() if r.model._default_manager.exists())
        if holding:
            raise ReleaseError(
                "The atlas is not empty (it holds " + ", ".join(holding) + "): a release "
                "loads into an empty one, such as a newly migrated database."
            )
        reason = reason or f"Loaded from release {package['version']}"
        try:
            loaded = _load_all(package, known, folder, reason)
        except IntegrityError as error:  # a reference checked at commit
            raise ReleaseError(f"The release's records do not hold together: {error}") from None
        return loaded
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


def _load_all(package, known, folder, reason):
    loaded = {}
    with transaction.atomic():
        for described in package["resources"]:
            resource = known.get(described["name"])
            if resource is None:
                raise ReleaseError(f"Unknown resource {described['name']!r}.")
            try:
                loaded[resource.name] = _load_resource(resource, folder / described["path"], reason)
            except (ValueError, IntegrityError) as error:
                raise ReleaseError(f"{described['path']}: {error}") from None
        _reset_sequences({r.model for r in known.values()})
    return loaded


def _value(text, field):
    if text == "":
        return None if field.null else ("" if not field.is_relation else None)
    kind = _type(field)
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "boolean":
        return text == "true"
    if kind == "date":
        return datetime.date.fromisoformat(text)
    if kind == "datetime":
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return text


def _load_resource(resource, path, reason):
    model = resource.model
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        expected = [column for column, _field in resource.columns]
        if header != expected:
            raise ReleaseError(f"{path.name}: columns {header} where {expected} were expected.")
        fields = [field for _column, field in resource.columns]
        batch, total = [], 0
        for row in reader:
            values = {f.attname: _value(t, f) for t, f in zip(row, fields, strict=True)}
            record = model(**values)
            _derive(record)
            batch.append(record)
            if len(batch) >= CHUNK:
                total += _save(model, batch, reason)
                batch = []
        total += _save(model, batch, reason)
    return total


def _derive(record):
    """The columns a release leaves out because others give them."""
    from cities.text import fold

    if hasattr(record, "derive_dates"):
        record.derive_dates()
    for field in ("folded_name", "folded"):
        if hasattr(record, field):
            setattr(record, field, fold(record.name))


def _save(model, batch, reason):
    if not batch:
        return 0
    if hasattr(model, "history"):
        bulk_create_with_history(batch, model, default_change_reason=reason)
    else:
        model._default_manager.bulk_create(batch)
    return len(batch)


def _reset_sequences(models_):
    statements = connection.ops.sequence_reset_sql(no_style(), list(models_))
    if statements:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)


def content_checksum():
    """The checksum a release of the atlas as it is now would carry, without writing it:
    equal before a release and after loading it is the proof of a lossless round trip."""
    digests = []
    for resource in resources():
        sha = hashlib.sha256()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([column for column, _field in resource.columns])
        fields = [field for _column, field in resource.columns]
        sha.update(out.getvalue().encode())
        for values in resource.queryset().iterator(chunk_size=CHUNK):
            out.seek(0)
            out.truncate()
            writer.writerow([_cell(v, f) for v, f in zip(values, fields, strict=True)])
            sha.update(out.getvalue().encode())
        digests.append(f"{resource.name}:sha256:{sha.hexdigest()}")
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()
