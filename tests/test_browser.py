"""The public site in a real browser: Debian's Chromium driven by Playwright.

A visitor's path from a search to a comparison; the comparison picker with and without
JavaScript; every key page at desktop and phone widths, saved as screenshots under
test-artifacts/screenshots/, checked by axe-core and the Nu HTML Checker, and watched for any
request that leaves the server.
"""

import csv
import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command
from playwright.sync_api import expect
from pytest_django.live_server_helper import LiveServer

from cities import gazetteer
from cities.models import AlternateName, City, CityCitation, NameKind, Source
from partnerships import releases
from partnerships.models import Membership, MembershipCitation, Organization, Tie, TieCitation

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
# The shared data lives beside the project, never inside it.
SHARED_FILE = ROOT / "data" / "twin-cities-wikipedia.csv"
CHROMIUM = Path("/usr/bin/chromium")
VNU_JAR = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

SLICE_CITIES = {"Yokohama", "Taipei", "Odesa"}
WIDTHS = {"desktop": 1280, "phone": 390}
KEY_PAGES = {
    "home": "/",
    "cities": "/cities/",
    "city-yokohama": "/cities/yokohama/",
    "city-taipei": "/cities/taipei/",
    "compare": "/compare/?cities=yokohama,taipei",
    "organizations": "/organizations/",
    "organization-c40": "/organizations/c40/",
    "ties": "/ties/",
    "sources": "/sources/",
    "about": "/about/",
    "correction-yokohama": "/cities/yokohama/correction/",
    "statistics": "/statistics/",
    "country-jp": "/countries/JP/",
    "network-yokohama": "/cities/yokohama/network/",
    "data": "/data/",
    # The seed's memorandum between Yokohama and Odesa: its notes and "cite this tie"; its
    # address is set by `site`, once the tie exists.
    "tie": None,
}
SERIOUS = {"serious", "critical"}
# EDTF of every kind the pages write out: a year, about, a decade, a month, a range, unsure.
MADE_UP_STARTS = ["1957", "1959~", "1965", "196X", "1973-10", "1980/1985", "1998", "2012?"]
SCROLLING_TABLES = """[...document.querySelectorAll(".table-wrap")]
    .filter(box => box.scrollWidth > box.clientWidth + 1)
    .map(box => [box.querySelector("thead")?.innerText.replace(/\\s+/g, " "), box.scrollWidth])"""
# Below 32768, where the kernel's ephemeral ports (port 0) begin, and clear of `make run`.
LIVE_PORTS = range(8100, 8200)


@pytest.fixture(scope="module", autouse=True)
def _database_beside_playwright():
    """Playwright's sync API keeps an asyncio loop on the main thread, so Django would refuse
    the fixtures' database calls there (the pages themselves run in the server's thread).
    Not restored: the browser lives until the session ends, after the test database is gone."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install-test` installs Debian's Chromium.")
    return {
        "executable_path": str(CHROMIUM),
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="session")
def base_url():
    """Pages are opened by full address. Defined here, it also stands in for the fallback
    fixture of pytest-playwright, which pytest 9 warns about."""
    return None


@pytest.fixture(scope="session")
def live_server():
    """pytest-django's live server on the first free port of LIVE_PORTS."""
    for port in LIVE_PORTS:
        try:
            server = LiveServer(f"localhost:{port}")
        except OSError:  # taken: the helper stops its thread and re-raises
            continue
        yield server
        server.stop()
        return
    pytest.fail(f"No free port for the live server in {LIVE_PORTS}")


@pytest.fixture(scope="module")
def odesa_in_geonames():
    """GeoNames' entry for Odesa, read once: it lists the spelling "Odessa"."""
    return gazetteer.match("Odesa", "UA", 46.4843, 30.7323)


@pytest.fixture
def site(live_server, tmp_path, odesa_in_geonames, settings):
    """The live server's address, serving the seed and the Wikipedia rows naming Yokohama,
    Taipei or Odesa (about ninety ties with coordinates)."""
    if not SHARED_FILE.exists():
        pytest.skip("the shared data folder is not beside the project")
    call_command("load_seed", verbosity=0)
    path = tmp_path / "slice.csv"
    with SHARED_FILE.open(encoding="utf-8-sig", newline="") as source, path.open("w") as out:
        rows = csv.reader(source)
        writer = csv.writer(out)
        writer.writerow(next(rows))
        writer.writerows(row for row in rows if SLICE_CITIES & {row[0], row[4]})
    call_command("import_ties", str(path), verbosity=0)

    # Neither the seed nor the Wikipedia file spells Odesa "Odessa", and link_gazetteer sets
    # ids and coordinates, not names; GeoNames lists the spelling, so cite GeoNames for it.
    odesa = City.objects.get(slug="odesa")
    assert "Odessa" in odesa_in_geonames.alternate_names
    geonames, _ = Source.objects.get_or_create(
        slug=gazetteer.SOURCE["slug"], defaults=gazetteer.SOURCE
    )
    AlternateName.objects.create(city=odesa, name="Odessa", kind=NameKind.VARIANT)
    CityCitation.objects.create(
        city=odesa,
        source=geonames,
        locator=f"GeoNames {odesa_in_geonames.geonames_id}, alternate names",
    )

    # The article puts Yokohama and Taipei in different networks and gives no years; made-up
    # facts, citing a source that says it is made up, give the comparison a network to share
    # and the timelines and the decade chart something to draw.
    made_up = Source.objects.create(
        slug="browser-test-fixture",
        title="Browser test fixture (made up for the tests, not a real source)",
        kind="other",
    )
    network = Organization.objects.create(
        name="Test Network of Port Cities", slug="test-network", kind="city_network"
    )
    for slug in ("yokohama", "taipei"):
        city = City.objects.get(slug=slug)
        membership = Membership.objects.create(
            city=city, organization=network, role="member", since="2001"
        )
        MembershipCitation.objects.create(membership=membership, source=made_up)
        ties = Tie.objects.for_city(city).order_by("pk")[: len(MADE_UP_STARTS)]
        for tie, start in zip(ties, MADE_UP_STARTS, strict=True):
            tie.start = start
            tie.save()
            TieCitation.objects.create(tie=tie, source=made_up, locator="start")
    KEY_PAGES["tie"] = Tie.objects.get(kind="mou").get_absolute_url()
    # A release for /data/ to list, written where the live server reads them.
    settings.RELEASES_DIR = tmp_path / "releases"
    releases.release(settings.RELEASES_DIR)
    return live_server.url


@pytest.fixture
def watched(new_context, site):
    """A factory of browser contexts that note every request and every failed response."""
    seen = {"requests": [], "failed": []}

    def make(**kwargs):
        context = new_context(**kwargs)
        context.on("request", lambda request: seen["requests"].append(request.url))
        context.on(
            "response",
            lambda response: (
                response.status >= 400
                and seen["failed"].append(f"{response.status} {response.url}")
            ),
        )
        return context

    make.seen = seen
    return make


def outside(urls, site):
    """The URLs among `urls` served by anything but the live server."""
    home = urlsplit(site).netloc
    return [url for url in urls if urlsplit(url).netloc != home]


def test_visitor_finds_odesa_as_odessa_follows_its_tie_to_yokohama_and_compares_with_taipei(
    site, watched
):
    page = watched(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(site + "/")

    page.get_by_role("searchbox", name="Search cities by any name").fill("Odessa")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/cities/\?q=Odessa$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Cities matching “Odessa”")
    result = page.locator("table.data tbody tr").filter(has_text="Odesa")
    expect(result).to_contain_text("Odessa")
    result.get_by_role("link", name="Odesa", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Odesa")
    expect(page.locator(".also-known")).to_contain_text("Odessa")
    ties = page.locator("section", has=page.get_by_role("heading", name=re.compile("^Ties")))
    ties.get_by_role("link", name="Yokohama", exact=True).first.click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Yokohama")
    page.get_by_role("link", name="Compare with…").click()
    expect(page.get_by_label("City 1")).to_have_value("yokohama")
    page.get_by_label("City 2").fill("Taipei")
    page.get_by_role("button", name="Compare", exact=True).click()

    # The picker's four fields come back as the short, shareable address.
    expect(page).to_have_url(re.compile(r"/compare/\?cities=yokohama,taipei$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Yokohama and Taipei")
    networks = page.locator("section", has=page.get_by_role("heading", name="Networks and"))
    shared = networks.locator("tbody tr", has_text="shared")
    expect(shared).to_have_count(1)
    expect(shared.locator("th")).to_contain_text("Test Network of Port Cities")
    expect(shared.locator("td")).to_have_text(["✓ Member, since 2001"] * 2)
    c40 = networks.locator("tbody tr", has_text="C40 Cities")
    expect(c40.locator("td")).to_have_text(["✓ Member", "—not a member"])
    assert outside(watched.seen["requests"], site) == []
    assert watched.seen["failed"] == []


def test_comparison_picker_works_without_javascript(site, watched):
    page = watched(java_script_enabled=False).new_page()
    page.goto(site + "/compare/")
    page.get_by_label("City 1").fill("Odessa")
    page.get_by_label("City 2").fill("yokohama")
    page.get_by_role("button", name="Compare", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Odesa and Yokohama")
    expect(page.get_by_role("heading", name="Ties between these cities")).to_be_visible()
    # Nothing filled the suggestions: the form alone did the work.
    expect(page.locator("#city-options option")).to_have_count(0)
    assert outside(watched.seen["requests"], site) == []


def test_comparison_picker_suggests_cities_by_any_name_with_javascript(site, watched):
    page = watched().new_page()
    page.goto(site + "/compare/")
    options = page.locator("#city-options option")

    page.get_by_label("City 1").press_sequentially("Odess")
    expect(options).to_have_count(1)
    # The reader sees the name and the country; the form still sends the slug.
    expect(options).to_have_attribute("value", "Odesa (Ukraine)")
    expect(options).to_have_attribute("data-slug", "odesa")
    page.get_by_label("City 1").fill("odesa")

    page.get_by_label("City 2").press_sequentially("Taip")
    expect(page.locator("#city-options option[data-slug=taipei]")).to_have_count(1)
    page.get_by_label("City 2").fill("taipei")
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Odesa and Taipei")
    assert any("/compare/cities.json?q=" in url for url in watched.seen["requests"])
    assert outside(watched.seen["requests"], site) == []


def test_key_pages_fit_desktop_and_phone_widths_and_load_only_from_the_server(site, watched):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    too_wide = []
    for label, width in WIDTHS.items():
        page = watched(viewport={"width": width, "height": 900}).new_page()
        for name, path in KEY_PAGES.items():
            response = page.goto(site + path)
            assert response.status == 200, path
            page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
            scroll = page.evaluate("document.documentElement.scrollWidth")
            if scroll > width:
                too_wide.append((label, path, "page", scroll))
            # A table may scroll in its own box, but on these pages none should need to,
            # but for the statistics' matrix of countries on a phone.
            for table in page.evaluate(SCROLLING_TABLES):
                if not (name == "statistics" and label == "phone"):
                    too_wide.append((label, path, *table))
    assert too_wide == []
    assert outside(watched.seen["requests"], site) == []
    # A missing stylesheet, script or map shape shows here.
    assert watched.seen["failed"] == []


def test_key_pages_have_no_serious_or_critical_accessibility_violation(site, watched):
    axe = Axe()
    found = {}
    # At both widths: what scrolls sideways on a phone must be reachable by keyboard.
    for width in WIDTHS.values():
        page = watched(viewport={"width": width, "height": 900}).new_page()
        for name, path in KEY_PAGES.items():
            page.goto(site + path)
            violations = axe.run(page).response["violations"]
            serious = [
                f"{v['id']} ({v['impact']}): {v['help']} — "
                + "; ".join(str(node["target"][0]) for node in v["nodes"][:3])
                for v in violations
                if v["impact"] in SERIOUS
            ]
            if serious:
                found[f"{name} at {width} px"] = serious
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)


def test_key_pages_pass_the_nu_html_checker(site, tmp_path):
    assert VNU_JAR.exists(), "vnu.jar is missing: `make install-test` runs npm ci"
    files = []
    for name, path in KEY_PAGES.items():
        with urllib.request.urlopen(site + path) as response:
            html = response.read()
        files.append(tmp_path / f"{name}.html")
        files[-1].write_bytes(html)
    # One Java start for every page: it costs more than the checking.
    checked = subprocess.run(
        ["java", "-jar", str(VNU_JAR), "--format", "json", "--stdout", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.stdout, checked.stderr
    messages = json.loads(checked.stdout)["messages"]
    errors = [
        f"{Path(m['url']).stem}:{m.get('lastLine', '?')}: {m['message']}"
        for m in messages
        if m["type"] in {"error", "non-document-error"}
    ]
    assert not errors, "\n".join(errors)
