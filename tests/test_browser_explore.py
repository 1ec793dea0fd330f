"""The map and the network as tools, in a real browser (Debian's Chromium through Playwright):
a reader moves through the places of a profile's map and the nodes of a city's network with
the keyboard alone, at desktop and phone widths; axe-core finds nothing serious, the Nu HTML
Checker nothing wrong, and no request leaves the server.
"""

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from pytest_django.live_server_helper import LiveServer

from cities.models import City
from partnerships.models import Tie
from tests.conftest import make_city

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
VNU_JAR = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
WIDTHS = {"desktop": 1280, "phone": 390}
SERIOUS = {"serious", "critical"}
# Clear of tests/test_browser.py's live server (8100-8199), below the ephemeral ports.
LIVE_PORTS = range(8200, 8300)
PAGES = {
    "map": "/cities/bethlehem/",
    "network": "/cities/yokohama/network/",
    "compare": "/compare/?cities=yokohama,taipei,bethlehem",
}

# Bethlehem's partners: a few across the world and many in Europe, five of them Calabrian
# villages a few kilometres apart, which only the fully zoomed map can tell apart.
PARTNERS = [
    ("Sacramento", "US", 38.58, -121.49),
    ("Cusco", "PE", -13.52, -71.98),
    ("Glasgow", "GB", 55.86, -4.25),
    ("Chartres", "FR", 48.46, 1.48),
    ("Grenoble", "FR", 45.17, 5.72),
    ("Cologne", "DE", 50.94, 6.95),
    ("Milan", "IT", 45.47, 9.19),
    ("Florence", "IT", 43.77, 11.25),
    ("Assisi", "IT", 43.07, 12.61),
    ("Curinga", "IT", 38.83, 16.31),
    ("San Pietro a Maida", "IT", 38.85, 16.34),
    ("Maida", "IT", 38.85, 16.37),
    ("Jacurso", "IT", 38.85, 16.38),
    ("Cortale", "IT", 38.83, 16.42),
    ("Budapest", "HU", 47.49, 19.05),
    ("Athens", "GR", 37.98, 23.73),
    ("Sydney", "AU", -33.87, 151.21),
]


@pytest.fixture(scope="module", autouse=True)
def _database_beside_playwright():
    """As in test_browser.py: Playwright's sync API keeps an asyncio loop on the main thread,
    where Django would otherwise refuse the fixtures' database calls."""
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
    return None


@pytest.fixture(scope="session")
def live_server():
    for port in LIVE_PORTS:
        try:
            server = LiveServer(f"localhost:{port}")
        except OSError:
            continue
        yield server
        server.stop()
        return
    pytest.fail(f"No free port for the live server in {LIVE_PORTS}")


@pytest.fixture
def site(live_server):
    """Bethlehem and its partners with coordinates; Yokohama with partners that have
    partners of their own; Taipei sharing two of Yokohama's partners and one of Bethlehem's."""
    bethlehem = make_city(
        name="Bethlehem", slug="bethlehem", country="PS", latitude=31.7, longitude=35.2
    )
    partners = [
        make_city(name=name, slug=name.lower().replace(" ", "-"), country=country,
                  latitude=lat, longitude=lng)
        for name, country, lat, lng in PARTNERS
    ]  # fmt: skip
    Tie.objects.bulk_create(Tie(city_a=bethlehem, city_b=p, kind="sister") for p in partners)
    yokohama = make_city(name="Yokohama", slug="yokohama", latitude=35.44, longitude=139.64)
    taipei = make_city(name="Taipei", slug="taipei", country="TW", latitude=25.03, longitude=121.5)
    by_name = {c.name: c for c in City.objects.all()}
    ties = [(yokohama, by_name[n]) for n in ("Sacramento", "Milan", "Cusco", "Sydney")]
    ties += [(taipei, by_name[n]) for n in ("Sacramento", "Milan", "Athens")]
    ties += [(by_name["Milan"], by_name[n]) for n in ("Florence", "Cologne", "Athens")]
    ties += [(by_name["Sydney"], by_name["Glasgow"]), (by_name["Cusco"], by_name["Budapest"])]
    Tie.objects.bulk_create(Tie(city_a=a, city_b=b, kind="partner") for a, b in ties)
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
                and not response.url.endswith("/favicon.ico")
                and seen["failed"].append(f"{response.status} {response.url}")
            ),
        )
        return context

    make.seen = seen
    return make


def outside(urls, site):
    home = urlsplit(site).netloc
    return [url for url in urls if urlsplit(url).netloc != home]


# The key of the place drawn nearest the five Calabrian villages.
NEAREST_TO_CALABRIA = """() => {
    const far = m => Math.hypot(m.dataset.x - 196.35, m.dataset.y - 51.15);
    const all = [...document.querySelectorAll(".map__markers .map__marker")];
    return all.sort((a, b) => far(a) - far(b))[0].dataset.key;
}"""


def focused(page, attribute):
    return page.evaluate(f"document.activeElement.getAttribute({attribute!r})")


def markers(page):
    return page.locator(".map__markers .map__marker")


@pytest.mark.parametrize("width", WIDTHS.values())
def test_the_map_names_each_place_by_keyboard_and_splits_a_group_as_it_zooms(site, watched, width):
    page = watched(viewport={"width": width, "height": 900}).new_page()
    page.goto(site + PAGES["map"])
    label = page.locator(".map__label text")

    page.locator(".map__svg").focus()
    page.keyboard.press("Tab")
    # The city first, then its partners west to east, each named beside its dot and to
    # screen readers.
    assert focused(page, "aria-label") == "Bethlehem (this city)"
    expect(label).to_have_text("Bethlehem")
    page.keyboard.press("Tab")
    assert focused(page, "aria-label") == "Sacramento (United States of America)"
    expect(label).to_have_text("Sacramento (United States of America)")
    expect(page.locator(".map__label")).to_have_attribute("visibility", "visible")

    # Tab on to the group of European partners, which names some of them.
    for _ in range(len(PARTNERS)):
        if "map__marker--group" in (focused(page, "class") or ""):
            break
        page.keyboard.press("Tab")
    group = focused(page, "aria-label")
    assert re.match(r"\d+ places: .+ Zoom in to separate them", group), group
    size = int(group.split()[0])
    expect(label).to_contain_text(f"{size} places:")
    before = markers(page).count()

    page.keyboard.press("+")
    page.keyboard.press("+")
    # The group parted into more places, and focus stayed on one of its cities.
    assert markers(page).count() > before
    after = focused(page, "aria-label")
    assert after != group
    assert (int(after.split()[0]) if after[0].isdigit() else 1) < size
    expect(label).to_be_visible()
    expect(page.locator(".map__status")).to_contain_text("Zoom 4×")

    # Fully zoomed in on Calabria, even its villages a few kilometres apart are apart.
    for _ in range(6):
        page.locator(f'.map__marker[data-key="{page.evaluate(NEAREST_TO_CALABRIA)}"]').focus()
        page.keyboard.press("+")
    assert not page.locator(".map__marker--group").count()
    names = page.locator(".map__markers .map__marker").evaluate_all(
        "ms => ms.map(m => m.getAttribute('aria-label'))"
    )
    calabria = {f"{name} (Italy)" for name, *_rest in PARTNERS[9:14]}
    assert calabria <= set(names), names
    # The finer shapes load once zoomed in; the whole world comes back with 0.
    expect(page.locator(".map__land--fine")).to_have_count(1)
    page.keyboard.press("0")
    assert page.locator(".map__svg").get_attribute("viewBox") == "0 5 360 145"
    page.get_by_role("button", name="Zoom in", exact=True).click()
    assert page.locator(".map__svg").get_attribute("viewBox") != "0 5 360 145"

    assert outside(watched.seen["requests"], site) == []
    assert watched.seen["failed"] == []


@pytest.mark.parametrize("width", WIDTHS.values())
def test_the_network_lights_up_a_nodes_ties_by_keyboard_and_enter_opens_it(site, watched, width):
    page = watched(viewport={"width": width, "height": 900}).new_page()
    page.goto(site + PAGES["network"])
    lit = page.locator(".net__edge.is-lit")
    expect(lit).to_have_count(0)

    page.get_by_role("link", name="The network as tables").focus()
    page.keyboard.press("Tab")
    # First the city itself: its four ties light up.
    assert focused(page, "aria-label").startswith("Yokohama")
    expect(page.locator(".net__svg")).to_have_class(re.compile(r"\bnet--focus\b"))
    expect(lit).to_have_count(4)

    page.keyboard.press("Tab")
    # Then its partners, the most tied first: Milan, tied to Yokohama, Taipei, Bethlehem,
    # Florence, Cologne and Athens, all drawn.
    assert focused(page, "aria-label") == "Milan, Italy: partner; 6 ties in all"
    node = focused(page, "data-node")
    expect(lit).to_have_count(6)
    ends = lit.evaluate_all("es => es.map(e => e.dataset.ends.split(' '))")
    assert all(node in pair for pair in ends)
    expect(page.locator(f'[data-node="{node}"] .net__label')).to_be_visible()

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/cities/milan/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Milan")
    assert outside(watched.seen["requests"], site) == []
    assert watched.seen["failed"] == []


def test_compare_with_waits_in_the_second_box(site, watched):
    page = watched(viewport={"width": 390, "height": 900}).new_page()
    page.goto(site + "/compare/?with=yokohama")
    expect(page.get_by_label("City 2")).to_be_focused()


def test_the_explore_pages_fit_both_widths_and_have_no_serious_accessibility_violation(
    site, watched
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    axe = Axe()
    found, too_wide = {}, []
    for label, width in WIDTHS.items():
        page = watched(viewport={"width": width, "height": 900}).new_page()
        for name, path in PAGES.items():
            page.goto(site + path)
            if name == "map":  # checked as a reader leaves it: zoomed in, a place named
                page.get_by_role("button", name="Zoom in", exact=True).click()
                page.locator(".map__svg").focus()
                page.keyboard.press("Tab")
            page.screenshot(path=SCREENSHOTS / f"explore-{name}-{label}.png", full_page=True)
            scroll = page.evaluate("document.documentElement.scrollWidth")
            if scroll > width:
                too_wide.append((label, path, scroll))
            serious = [
                f"{v['id']} ({v['impact']}): {v['help']} — "
                + "; ".join(str(node["target"][0]) for node in v["nodes"][:3])
                for v in axe.run(page).response["violations"]
                if v["impact"] in SERIOUS
            ]
            if serious:
                found[f"{name} at {width} px"] = serious
    assert too_wide == []
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)
    assert outside(watched.seen["requests"], site) == []
    assert watched.seen["failed"] == []


def test_the_explore_pages_pass_the_nu_html_checker(site, tmp_path):
    assert VNU_JAR.exists(), "vnu.jar is missing: `make install-test` runs npm ci"
    files = []
    for name, path in PAGES.items():
        with urllib.request.urlopen(site + path) as response:
            files.append(tmp_path / f"{name}.html")
            files[-1].write_bytes(response.read())
    checked = subprocess.run(
        ["java", "-jar", str(VNU_JAR), "--format", "json", "--stdout", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.stdout, checked.stderr
    errors = [
        f"{Path(m['url']).stem}:{m.get('lastLine', '?')}: {m['message']}"
        for m in json.loads(checked.stdout)["messages"]
        if m["type"] in {"error", "non-document-error"}
    ]
    assert not errors, "\n".join(errors)
