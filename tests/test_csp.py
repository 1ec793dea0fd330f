"""The Content-Security-Policy at work.

The policy (CONTENT_SECURITY_POLICY in the settings) lets scripts and styles come from the
site's own files and from inline blocks carrying the request's nonce: no style or event
attribute, nothing from another origin. In Chromium, every public key page, both API
documentation pages and the admin pages a curator works in load, run their scripts and draw
without one violation of it; the comparison's bars, swatches and columns, drawn by classes
instead of style attributes, keep their widths and colours. Through the test client, each
public page's header has no 'unsafe-inline' and every inline block carries the header's nonce,
the cached copy of a page included.
"""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.template.loader import render_to_string
from django.urls import reverse
from playwright.sync_api import expect

from cities.models import City
from partnerships.groups import CURATED_APPS, GROUP_ACTIONS
from partnerships.models import Tie
from partnerships.templatetags.atlas import PALETTE
from tests import test_browser
from tests.conftest import (
    admin_url,
    make_city,
    make_organization,
    make_source,
    make_tie,
    make_user,
)
from tests.test_browser import KEY_PAGES, SCREENSHOTS, WIDTHS

# The browser tests' fixtures: Chromium as Debian ships it, the live server and its data.
_database_beside_playwright = test_browser._database_beside_playwright
base_url = test_browser.base_url
browser_type_launch_args = test_browser.browser_type_launch_args
live_server = test_browser.live_server
odesa_in_geonames = test_browser.odesa_in_geonames
site = test_browser.site

# Records every violation of the policy on the page's window, from the first byte parsed on.
LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline"} ` +
    `(${event.sourceFile}:${event.lineNumber}) ${event.sample}`
  );
}, true);
"""
COMPARE_FOUR = "/compare/?cities=yokohama,taipei,odesa,vancouver"
EXTRA_PUBLIC_PAGES = {
    "compare-4": COMPARE_FOUR,
    "compare-picker": "/compare/",
    "source": "/sources/city-diplomacy-article/",
}
NOT_FOUND = "/cities/no-such-place/"
# Swagger UI and Redoc draw the whole schema in the browser: seconds on a busy machine.
DRAWN = 20_000


def directives(header):
    """{"script-src": ["'self'", "'nonce-…'"], …} from a Content-Security-Policy header."""
    found = {}
    for part in header.split(";"):
        if part.strip():
            name, *values = part.split()
            found[name] = values
    return found


def nonce_of(header):
    """The nonce a policy allows scripts with, or None."""
    found = re.search(r"'nonce-([^']+)'", " ".join(directives(header).get("script-src", [])))
    return found and found[1]


def make_editor():
    """An Editor. A database emptied between live-server tests has lost the groups that the
    migrations made, so the group is made again with the permissions they give it."""
    group, created = Group.objects.get_or_create(name="Editor")
    if created:
        codenames = [
            f"{action}_{model._meta.model_name}"
            for label in CURATED_APPS
            for model in apps.get_app_config(label).get_models()
            for action in GROUP_ACTIONS["Editor"]
        ]
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label__in=CURATED_APPS, codename__in=codenames
            )
        )
    return make_user("Editor")


class Watcher:
    """A browser context that notes policy violations, console errors and page errors."""

    def __init__(self, context):
        self.problems = []
        # Chromium asks every site for /favicon.ico, which the atlas does not have; and a
        # page opened to see its 404 is logged as a resource that failed to load.
        self.missing = {"/favicon.ico"}
        context.add_init_script(LISTENER)
        context.on("console", self._console)
        context.on("weberror", lambda error: self.problems.append(f"error: {error.error}"))
        self.page = context.new_page()

    def _console(self, message):
        url = message.location.get("url", "")
        expected = message.text.startswith("Failed to load resource") and (
            urlsplit(url).path in self.missing
        )
        if message.type == "error" and not expected:
            self.problems.append(f"console: {message.text} ({url})")

    def visit(self, url, status=200):
        if status == 404:
            self.missing.add(urlsplit(url).path)
        response = self.page.goto(url)
        assert response.status == status, url
        header = response.headers.get("content-security-policy")
        assert header, f"no Content-Security-Policy on {url}"
        script_src = directives(header)["script-src"]
        assert "'self'" in script_src, url
        assert "'unsafe-inline'" not in script_src, url
        return response

    def check(self, where):
        """The problems seen on the page since the last check, labelled with `where`."""
        self.page.wait_for_load_state("load")
        found = [f"{where}: {v}" for v in self.page.evaluate("window.__cspViolations || []")]
        found += [f"{where}: {p}" for p in self.problems]
        self.page.evaluate("window.__cspViolations = []")
        self.problems.clear()
        return found


@pytest.mark.browser
def test_public_pages_and_api_docs_run_under_the_policy(site, new_context):
    watcher = Watcher(new_context(viewport={"width": 1280, "height": 900}))
    page = watcher.page
    found = []
    for name, path in {**KEY_PAGES, **EXTRA_PUBLIC_PAGES}.items():
        watcher.visit(site + path)
        found += watcher.check(name)

    # The picker's suggestions arrive from the server and fill the list while typing.
    watcher.visit(site + "/compare/")
    page.get_by_label("City 1").press_sequentially("Odess")
    expect(page.locator("#city-options option")).to_have_count(1)
    found += watcher.check("compare picker")

    watcher.visit(site + NOT_FOUND, status=404)
    found += watcher.check("not found")

    # Swagger UI: the page, its start-up script, and an operation opened.
    watcher.visit(site + reverse("api:docs"))
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "cityDiplomacy API", timeout=DRAWN
    )
    page.locator(".opblock-summary").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible(timeout=DRAWN)
    page.get_by_role("button", name="Try it out").first.click()
    page.get_by_role("button", name="Execute").first.click()
    expect(page.locator(".live-responses-table tbody .response-col_status")).to_have_text(
        "200", timeout=DRAWN
    )
    page.screenshot(path=SCREENSHOTS / "api-docs-swagger.png")
    found += watcher.check("Swagger UI")

    # Redoc: the page, the styles it adds while drawing, and an operation opened.
    watcher.visit(site + reverse("api:redoc"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("cityDiplomacy API", timeout=DRAWN)
    page.locator("[role=menuitem]").nth(3).click()
    page.get_by_placeholder("Search...").fill("compare")
    expect(page.locator("[data-role='search:results'] li").first).to_be_visible(timeout=DRAWN)
    page.screenshot(path=SCREENSHOTS / "api-docs-redoc.png")
    found += watcher.check("Redoc")
    assert found == [], "\n".join(found)


@pytest.mark.browser
def test_admin_pages_run_under_the_policy_for_an_editor(site, new_context):
    editor = make_editor()
    city = City.objects.get(slug="yokohama")
    tie = Tie.objects.get(kind="mou")
    watcher = Watcher(new_context(viewport={"width": 1280, "height": 900}))
    page = watcher.page
    found = []

    watcher.visit(site + reverse("admin:login") + "?next=" + reverse("admin:index"))
    page.get_by_label("Username").fill(editor.username)
    page.get_by_label("Password").fill("pw-for-tests-only")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-tools")).to_contain_text(editor.username)
    found += watcher.check("sign-in")

    pages = {
        "index": reverse("admin:index"),
        "needs attention": reverse("admin:needs_attention"),
        "duplicates": reverse("admin:cities_city_duplicates"),
        "city list": admin_url(City, "changelist"),
        "tie list": admin_url(Tie, "changelist"),
        "city change form": admin_url(City, "change", city.pk),
        "city history": admin_url(City, "history", city.pk),
        "tie history": admin_url(Tie, "history", tie.pk),
        "tie import form": reverse("admin:partnerships_tie_import"),
    }
    for name, path in pages.items():
        watcher.visit(site + path)
        found += watcher.check(name)
        # What style attributes did on these two pages, static/css/admin.css does.
        if name == "needs attention":
            count = page.locator("#needs-attention td.count").first
            expect(count).to_have_css("text-align", "right")
        if name == "tie history":
            paginator = page.locator("#change-history + .paginator")
            expect(paginator).to_have_css("border-top-width", "0px")

    # The tie form's city field looks cities up as the curator types (Select2).
    watcher.visit(site + admin_url(Tie, "add"))
    page.locator(".field-city_a .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill("Yokoh")
    expect(page.locator(".select2-results__option").first).to_contain_text("Yokohama")
    page.keyboard.press("Enter")
    found += watcher.check("tie add form")

    # The dry run of an import, whose report has a style block of its own.
    watcher.visit(site + reverse("admin:partnerships_tie_import"))
    page.locator("input[type=file]").set_input_files(
        files=[
            {
                "name": "ties.csv",
                "mimeType": "text/csv",
                "buffer": b"city1,country1,lat1,lng1,city2,country2,lat2,lng2\n"
                b"Yokohama,Japan,35.44,139.64,Lyon,France,45.77,4.84\n",
            }
        ]
    )
    page.get_by_role("button", name="Check the file (dry run)").click()
    expect(page.locator(".import-report")).to_be_visible()
    found += watcher.check("tie import preview")
    assert found == [], "\n".join(found)


def bar_layout(page):
    """For each bar of the comparison: its column, the width its class names, the width it is
    drawn at (as a share of its cell) and its colour; and the swatches' colours by column."""
    return page.evaluate(
        """() => {
        const rgb = (el) => getComputedStyle(el).backgroundColor;
        const bars = [...document.querySelectorAll("table.bars td .bar")].map((bar) => {
          const cell = bar.parentElement;
          const style = getComputedStyle(cell);
          const inner = cell.clientWidth - parseFloat(style.paddingLeft)
            - parseFloat(style.paddingRight);
          return {
            column: cell.cellIndex - 1,
            named: Number((bar.className.match(/\\bw(\\d+)\\b/) || [])[1]),
            drawn: bar.getBoundingClientRect().width / inner * 100,
            colour: rgb(bar),
          };
        });
        const heads = [...document.querySelectorAll(".compare-head .swatch")].map(rgb);
        const legend = [...document.querySelectorAll(".legend .swatch")].map(rgb);
        const grid = getComputedStyle(document.querySelector(".compare-heads"));
        return {bars, heads, legend, columns: grid.gridTemplateColumns.split(" ").length};
    }"""
    )


def rgb(hex_colour):
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.mark.browser
@pytest.mark.parametrize(
    "path, cities", [("/compare/?cities=yokohama,taipei", 2), (COMPARE_FOUR, 4)]
)
def test_comparison_draws_bars_swatches_and_columns_without_style_attributes(
    site, new_context, path, cities
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        watcher = Watcher(new_context(viewport={"width": width, "height": 900}))
        page = watcher.page
        watcher.visit(site + path)
        page.screenshot(path=SCREENSHOTS / f"compare-{cities}-{label}.png", full_page=True)
        assert page.locator(".compare-heads[style], .swatch[style], .bar[style]").count() == 0
        layout = bar_layout(page)
        colours = [rgb(PALETTE[n]) for n in range(cities)]
        assert layout["heads"] == colours
        assert layout["legend"] == colours
        # Four heads side by side on a desktop; two a row on a phone.
        assert layout["columns"] == (cities if label == "desktop" else 2)
        assert layout["bars"], "the comparison draws no bar"
        for bar in layout["bars"]:
            assert bar["colour"] == colours[bar["column"]], bar
            # At least a pixel wide, as a bar of 0 % always was.
            assert abs(bar["drawn"] - bar["named"]) < 1.5 or bar["named"] == 0, bar
        assert watcher.check(f"{path} at {width} px") == []


# Through the test client ------------------------------------------------------------------


class InlineBlocks(HTMLParser):
    """The inline <script> and <style> elements of a page, and any style or event attribute."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks = []
        self.attributes = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "style" or (tag == "script" and "src" not in attrs):
            self.blocks.append((tag, attrs.get("nonce")))
        self.attributes += [
            f"<{tag} {name}>" for name in attrs if name == "style" or name.startswith("on")
        ]


def inline_parts(html):
    parser = InlineBlocks()
    parser.feed(html)
    parser.close()
    return parser


@pytest.fixture
def atlas(db):
    """The seed, and a comparison of two cities with ties of several kinds."""
    call_command("load_seed", verbosity=0)
    source = make_source(slug="csp-test-source")
    yokohama, taipei = City.objects.get(slug="yokohama"), City.objects.get(slug="taipei")
    for n, kind in enumerate(["sister", "partner", "friendship", "sister"]):
        make_tie(yokohama, make_city(name=f"Partner {n}"), source=source, kind=kind, start="1990")
        make_tie(taipei, make_city(name=f"Other {n}"), source=source, kind=kind, start="2001")
    make_organization(name="CSP Test Network", slug="csp-test-network")
    return {
        "home": "/",
        "cities": "/cities/",
        "city": "/cities/yokohama/",
        "compare": "/compare/?cities=yokohama,taipei",
        "compare-picker": "/compare/",
        "organizations": "/organizations/",
        "organization": "/organizations/csp-test-network/",
        "ties": "/ties/",
        "tie": Tie.objects.for_city(yokohama).first().get_absolute_url(),
        "sources": "/sources/",
        "source": "/sources/csp-test-source/",
        "about": "/about/",
        "correction": "/cities/yokohama/correction/",
        "not found": NOT_FOUND,
        "api docs": reverse("api:docs"),
        "redoc": reverse("api:redoc"),
    }


def check_page(response):
    """What is wrong with a page under the policy in its header: an empty list if nothing."""
    header = response.headers.get("Content-Security-Policy", "")
    if not header:
        return ["no Content-Security-Policy header"]
    problems = []
    if "'unsafe-inline'" in header:
        problems.append(f"'unsafe-inline' in {header}")
    nonce = nonce_of(header)
    html = response.content.decode()
    parts = inline_parts(html)
    problems += [
        f"inline <{tag}> without the header's nonce"
        for tag, given in parts.blocks
        if not nonce or given != nonce
    ]
    problems += parts.attributes
    return problems


def test_public_pages_send_the_policy_and_nonce_every_inline_block(client, atlas):
    found = {}
    for name, path in atlas.items():
        response = client.get(path)
        assert response.status_code == (404 if name == "not found" else 200), path
        problems = check_page(response)
        if problems:
            found[name] = problems
        if name == "compare":
            # The bars and swatches are there, drawn by classes.
            assert 'class="bar w' in response.content.decode()
    assert found == {}


def test_a_page_from_the_read_cache_keeps_the_nonce_its_header_names(client, atlas, read_cache):
    for path in (atlas["compare"], atlas["api docs"], atlas["redoc"]):
        first, again = client.get(path), client.get(path)
        assert again.headers.get("X-Read-Cache") == "hit", path
        assert check_page(first) == check_page(again) == [], path


def test_the_server_error_page_needs_no_inline_style_or_script():
    """500.html is drawn without the request, so without a nonce: it may hold no inline
    block or style attribute at all."""
    parts = inline_parts(render_to_string("500.html"))
    assert parts.blocks == parts.attributes == []
