"""/data/: the atlas's citable releases, their changelogs and their files, and the full
current downloads beside them.

Release files are read from RELEASES_DIR, which every app server shares; a release appears
once its folder is whole (partnerships/releases.py). Files stream from disk with their
SHA-256 as ETag, and never change: a reader who has one is answered 304.
"""

import datetime
import json

from django.http import FileResponse, Http404
from django.shortcuts import render
from django.utils.cache import get_conditional_response, patch_cache_control

from .exports import bibtex_escape, bibtex_url
from .releases import list_releases, releases_dir

# What the changelog counts, in the reader's words.
CHANGED = {"cities": ("city", "cities"), "ties": ("tie", "ties"),
           "memberships": ("membership", "memberships")}  # fmt: skip


def _created(release):
    return datetime.datetime.fromisoformat(release["created"].replace("Z", "+00:00"))


def citation(release, url):
    """How to cite a release: text, BibTeX and CSL-JSON, naming its version and checksum."""
    created = _created(release)
    version = release["version"]
    archive = release["files"][release["archive"]]
    title = f"cityDiplomacy: an atlas of city diplomacy, release {version}"
    text = (
        f"cityDiplomacy contributors ({created.year}). {title} [Data set]. "
        f"{url} (SHA-256 of {release['archive']}: {archive['sha256']})."
    )
    key = f"citydiplomacy-{version.replace('.', '-')}"
    bibtex = (
        f"@dataset{{{key},\n"
        f"  author = {{{{cityDiplomacy contributors}}}},\n"
        f"  title = {{{bibtex_escape(title)}}},\n"
        f"  version = {{{bibtex_escape(version)}}},\n"
        f"  year = {{{created.year}}},\n"
        f"  date = {{{created.date().isoformat()}}},\n"
        f"  url = {{{bibtex_url(url)}}},\n"
        f"  note = {{SHA-256 of {bibtex_escape(release['archive'])}: {archive['sha256']}}}\n"
        "}"
    )
    csl = {
        "id": key,
        "type": "dataset",
        "title": title,
        "version": version,
        "author": [{"literal": "cityDiplomacy contributors"}],
        "issued": {"date-parts": [[created.year, created.month, created.day]]},
        "URL": url,
        "medium": "Frictionless Data Package (CSV)",
    }
    return {"text": text, "bibtex": bibtex, "csl": json.dumps([csl], ensure_ascii=False, indent=2)}


def _changes(release):
    path = releases_dir() / release["version"] / "changes.json"
    if not path.is_file():
        return None
    changes = json.loads(path.read_text())
    rows = []
    for name, (one, many) in CHANGED.items():
        counted = changes["resources"].get(name)
        if counted:
            sources = sorted(
                counted["by_source"].items(),
                key=lambda item: -(item[1]["added"] + item[1]["changed"] + item[1]["removed"]),
            )
            rows.append({"name": name, "one": one, "many": many, **counted, "sources": sources})
    return {"previous": changes["previous"], "rows": rows}


def data_index(request, only=None):
    releases = list_releases()
    if only:
        releases = [r for r in releases if r["version"] == only]
        if not releases:
            raise Http404("No such release.")
    for release in releases:
        url = request.build_absolute_uri(f"/data/{release['version']}/")
        release["url"] = url
        release["created_at"] = _created(release)
        release["archive_file"] = release["files"][release["archive"]]
        release["package_file"] = release["files"]["datapackage.json"]
        release["citation"] = citation(release, url)
        release["changes"] = _changes(release)
    return render(request, "partnerships/data.html", {"releases": releases, "only": only})


def _file_of(version, name):
    """(path, sha256) of a file a release lists, or Http404: nothing else is served."""
    folder = releases_dir() / version
    manifest = folder / "release.json"
    if version.startswith(".") or "/" in version or not manifest.is_file():
        raise Http404("No such release.")
    release = json.loads(manifest.read_text())
    known = dict(release["files"])
    if name not in known:
        package = json.loads((folder / "datapackage.json").read_text())
        for resource in package["resources"]:
            known[resource["path"]] = {"sha256": resource["hash"].removeprefix("sha256:")}
    if name not in known:
        raise Http404("No such file in this release.")
    return folder / name, known[name]["sha256"]


def release_file(request, version, name):
    path, sha256 = _file_of(version, name)
    etag = f'"{sha256}"'
    response = get_conditional_response(request, etag=etag)
    if response is None:
        response = FileResponse(
            path.open("rb"),
            as_attachment=name.endswith((".zip", ".csv")),
            filename=name,
            content_type={
                ".zip": "application/zip",
                ".csv": "text/csv; charset=utf-8",
                ".json": "application/json",
            }.get(path.suffix, "application/octet-stream"),
        )
    response["ETag"] = etag
    if response.status_code in (200, 304):
        # A release never changes: caches may keep its files for good (not a refusal).
        patch_cache_control(response, public=True, max_age=365 * 24 * 3600, immutable=True)
    return response


def release_page(request, version):
    """A release's own address, the one its citation gives."""
    return data_index(request, only=version)
