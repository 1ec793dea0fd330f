"""Corrections from readers: the public form on every profile and tie page, its guards, and
the curators' queue in the admin."""

import html
import json
import re
import subprocess
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.apps import apps as django_apps
from django.contrib.auth.models import Permission
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from partnerships.corrections import RATE, sender_hash
from partnerships.groups import sync_groups
from partnerships.merging import merge_cities
from partnerships.models import Correction, CorrectionStatus
from tests.conftest import admin_url, form_data, make_city, make_tie, make_user

# The browser tests run as tests/test_browser.py runs its own: Debian's Chromium with the
# project's flags, the live server on the project's ports, the same widths and severities.
from tests.test_browser import (  # noqa: F401  (fixtures)
    SCREENSHOTS,
    SERIOUS,
    VNU_JAR,
    WIDTHS,
    _database_beside_playwright,
    base_url,
    browser_type_launch_args,
    live_server,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_throttle_counts")]

LIMIT = int(RATE.split("/")[0])


def city_form(city):
    return reverse("partnerships:city_correction", args=[city.slug])


def tie_form(tie):
    return reverse("partnerships:tie_correction", args=[tie.pk])


def suggestion(**kw):
    return {
        "what_is_wrong": "The page says the tie began in 1965.",
        "should_be": "It began in 1959, by a council vote.",
        "source_url": "https://www.city.yokohama.lg.jp/partners",
        "email": "reader@example.org",
        "website": "",
        **kw,
    }


def make_correction(about=None, **kw):
    about = about or make_city()
    target = {"city": about} if about._meta.model_name == "city" else {"tie": about}
    kw.setdefault("what_is_wrong", "Wrong year.")
    kw.setdefault("should_be", "1959.")
    return Correction.objects.create(**target, **kw)


# The public form ---------------------------------------------------------------------------


def test_profile_and_tie_pages_link_to_their_correction_form(client):
    city = make_city(name="Yokohama", slug="yokohama")
    tie = make_tie(city)
    assert f'href="{city_form(city)}">Suggest a correction' in (
        client.get(city.get_absolute_url()).content.decode()
    )
    assert f'href="{tie_form(tie)}">Suggest a correction' in (
        client.get(tie.get_absolute_url()).content.decode()
    )


def test_the_form_says_what_it_is_about(client):
    city = make_city(name="Yokohama", slug="yokohama")
    tie = make_tie(city, make_city(name="Odesa"))
    page = client.get(city_form(city)).content.decode()
    assert "<h1>Yokohama</h1>" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert "Leave this empty" in page
    page = client.get(tie_form(tie)).content.decode()
    assert "<h1>Yokohama – Odesa</h1>" in page
    assert f'href="{tie.get_absolute_url()}"' in page


def test_a_suggestion_is_stored_with_what_it_is_about_and_the_reader_thanked(client):
    city = make_city(name="Yokohama", slug="yokohama")
    response = client.post(city_form(city), suggestion(), REMOTE_ADDR="203.0.113.7")

    assert response.status_code == 303
    assert response["Location"] == f"{city_form(city)}?sent"
    correction = Correction.objects.get()
    assert (correction.city, correction.tie) == (city, None)
    assert correction.what_is_wrong == "The page says the tie began in 1965."
    assert correction.should_be == "It began in 1959, by a council vote."
    assert correction.source_url == "https://www.city.yokohama.lg.jp/partners"
    assert correction.email == "reader@example.org"
    assert correction.status == CorrectionStatus.NEW
    # The address is kept only as a keyed hash.
    assert correction.ip_hash == sender_hash("203.0.113.7")
    assert "203.0.113.7" not in correction.ip_hash

    thanks = client.get(response["Location"])
    assert thanks.status_code == 200
    page = thanks.content.decode()
    assert "your suggestion has arrived" in page
    assert "What happens next" in page
    assert f'href="{city.get_absolute_url()}"' in page


def test_a_suggestion_about_a_tie_is_stored_on_the_tie(client):
    tie = make_tie()
    response = client.post(tie_form(tie), suggestion(source_url="", email=""))
    assert response.status_code == 303
    correction = Correction.objects.get()
    assert (correction.city, correction.tie) == (None, tie)
    assert (correction.source_url, correction.email) == ("", "")


def test_an_unknown_city_or_tie_has_no_form(client):
    assert client.get("/cities/atlantis/correction/").status_code == 404
    assert client.post("/ties/999999/correction/", suggestion()).status_code == 404
    assert not Correction.objects.exists()


def test_the_sixth_suggestion_within_the_hour_from_one_address_is_refused(client):
    city = make_city()
    for _ in range(LIMIT):
        assert (
            client.post(city_form(city), suggestion(), REMOTE_ADDR="198.51.100.1").status_code
            == 303
        )

    response = client.post(
        city_form(city), suggestion(what_is_wrong="One more thing."), REMOTE_ADDR="198.51.100.1"
    )

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 3600
    page = response.content.decode()
    assert "Too many suggestions from your connection in the last hour" in page
    assert re.search(r"send it again in \d+ minutes?:", page)
    # What the reader wrote is still on the page, to send later.
    assert "One more thing." in page
    assert Correction.objects.count() == LIMIT
    # Another address is not held back.
    assert client.post(city_form(city), suggestion(), REMOTE_ADDR="198.51.100.2").status_code == 303


def test_the_limit_counts_the_address_the_api_trusts_behind_a_proxy(client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    city = make_city()
    for n in range(LIMIT):
        # Behind one proxy every request comes from the proxy's address; the client is the
        # last X-Forwarded-For entry, whatever the client claims before it.
        client.post(
            city_form(city),
            suggestion(),
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.9",
        )
    refused = client.post(
        city_form(city), suggestion(), REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    other = client.post(
        city_form(city), suggestion(), REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.10"
    )
    assert (refused.status_code, other.status_code) == (429, 303)
    assert set(Correction.objects.values_list("ip_hash", flat=True)) == {
        sender_hash("203.0.113.9"),
        sender_hash("203.0.113.10"),
    }


def test_a_filled_in_honeypot_is_refused_and_nothing_stored(client):
    city = make_city()
    response = client.post(city_form(city), suggestion(website="http://cheap-pills.example"))
    assert response.status_code == 400
    assert "filled in by programs that send spam, so nothing was saved" in html.unescape(
        response.content.decode()
    )
    assert not Correction.objects.exists()


def test_the_honeypot_is_hidden_from_sight_and_the_tab_order_but_labelled():
    page = Client().get(city_form(make_city())).content.decode()
    assert '<div class="visually-hidden">' in page
    assert '<label for="id_website">Leave this empty</label>' in page
    assert 'tabindex="-1"' in page and 'autocomplete="off"' in page
    assert "aria-hidden" not in page.split('<form class="correction-form"')[1]


@pytest.mark.parametrize("field", ["what_is_wrong", "should_be"])
def test_oversize_text_is_refused_with_the_limit_in_words(client, field):
    response = client.post(city_form(make_city()), suggestion(**{field: "x" * 2001}))
    assert response.status_code == 400
    assert "Please keep this to 2000 characters (it has 2001)" in response.content.decode()
    assert not Correction.objects.exists()
    # The browser stops at the limit before the server has to.
    assert 'maxlength="2000"' in response.content.decode()


def test_missing_and_malformed_fields_are_explained(client):
    response = client.post(
        city_form(make_city()),
        suggestion(what_is_wrong="", should_be="  ", source_url="not a link", email="nobody"),
    )
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "Your suggestion was not sent yet" in page
    assert "Say what is wrong on the page." in page
    assert "Say what it should be, as far as you know." in page
    assert "Give the source as a whole web address" in page
    assert "This does not look like an e-mail address" in page
    assert 'aria-invalid="true"' in page
    assert not Correction.objects.exists()


def test_only_web_addresses_are_taken_as_sources(client):
    response = client.post(city_form(make_city()), suggestion(source_url="javascript:alert(1)"))
    assert response.status_code == 400
    assert not Correction.objects.exists()


def test_the_form_refuses_a_post_without_the_csrf_token():
    city = make_city()
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(city_form(city), suggestion()).status_code == 403
    assert not Correction.objects.exists()

    page = browser.get(city_form(city))
    token = page.context["csrf_token"]
    response = browser.post(city_form(city), suggestion(csrfmiddlewaretoken=str(token)))
    assert response.status_code == 303
    assert Correction.objects.count() == 1


def test_html_the_reader_typed_is_shown_as_text_when_the_form_comes_back(client):
    response = client.post(
        city_form(make_city()), suggestion(what_is_wrong="<script>alert(1)</script>", email="x")
    )
    page = response.content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_corrections_never_appear_on_the_public_pages(client):
    city = make_city(name="Yokohama", slug="yokohama")
    tie = make_tie(city)
    make_correction(city, what_is_wrong="SECRET-CITY-NOTE", email="hidden@example.org")
    make_correction(tie, what_is_wrong="SECRET-TIE-NOTE")
    for url in (city.get_absolute_url(), tie.get_absolute_url(), "/cities/", "/ties/", "/"):
        page = client.get(url).content.decode()
        assert "SECRET-" not in page, url
        assert "hidden@example.org" not in page, url
    assert "SECRET-" not in client.get(f"/api/v1/cities/{city.slug}/").content.decode()


def test_the_form_page_queries_do_not_grow(client, django_assert_num_queries):
    city = make_city()
    tie = make_tie(city)
    for _ in range(5):
        make_correction(city)
        make_correction(tie)
    # 1 the city (an anonymous reader has no session to read).
    with django_assert_num_queries(1):
        assert client.get(city_form(city)).status_code == 200
    # 1 the tie with both its cities.
    with django_assert_num_queries(1):
        assert client.get(tie_form(tie)).status_code == 200


# The curators' queue -----------------------------------------------------------------------


def test_the_queue_lists_new_corrections_and_escapes_what_readers_wrote(editor_client):
    city = make_city(name="Yokohama")
    correction = make_correction(
        city, what_is_wrong='<img src=x onerror="alert(1)">Year is wrong', email="r@example.org"
    )
    make_correction(city, status=CorrectionStatus.DECLINED, decline_reason="No source.")

    listed = editor_client.get(admin_url(Correction, "changelist"), {"status__exact": "new"})
    assert list(listed.context["cl"].result_list) == [correction]
    page = listed.content.decode()
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;Year is wrong" in page

    change = editor_client.get(admin_url(Correction, "change", correction.pk)).content.decode()
    assert "<img src=x" not in change
    assert "&lt;img src=x" in change
    assert "r@example.org" in change
    assert f'href="{city.get_absolute_url()}">public page</a>' in change


def test_the_admin_index_and_needs_attention_count_new_corrections(editor_client):
    make_correction()
    make_correction(status=CorrectionStatus.ACCEPTED, change_url="https://example.org/h")
    index = editor_client.get(reverse("admin:index")).content.decode()
    assert "Corrections from readers to review" in index
    rows = editor_client.get(reverse("admin:needs_attention")).context["rows"]
    row = next(r for r in rows if r["key"] == "corrections_new")
    assert row["count"] == 1
    assert row["url"].endswith("/admin/partnerships/correction/?status__exact=new")


def test_what_the_reader_wrote_cannot_be_edited(editor_client):
    correction = make_correction()
    page = admin_url(Correction, "change", correction.pk)
    form = editor_client.get(page).context["adminform"].form
    assert set(form.fields) == {"status", "change_url", "decline_reason"}
    data = form_data(editor_client.get(page))
    data.update(what_is_wrong="Rewritten by a curator", status="new")
    editor_client.post(page, data)
    correction.refresh_from_db()
    assert correction.what_is_wrong == "Wrong year."
    assert editor_client.get(admin_url(Correction, "add")).status_code == 403


def test_accepting_needs_the_link_to_the_change_made(editor_client, editor):
    correction = make_correction()
    page = admin_url(Correction, "change", correction.pk)
    data = {**form_data(editor_client.get(page)), "status": "accepted"}

    refused = editor_client.post(page, data)
    assert refused.status_code == 200
    assert "To accept, link the change you made" in html.unescape(refused.content.decode())
    correction.refresh_from_db()
    assert correction.status == CorrectionStatus.NEW

    history = f"https://atlas.example.org/admin/cities/city/{correction.city_id}/history/"
    assert editor_client.post(page, {**data, "change_url": history}).status_code == 302
    correction.refresh_from_db()
    assert correction.status == CorrectionStatus.ACCEPTED
    assert correction.change_url == history
    assert correction.decided_by == editor
    assert correction.decided_at is not None


def test_declining_needs_a_reason(editor_client, editor):
    correction = make_correction()
    page = admin_url(Correction, "change", correction.pk)
    data = {**form_data(editor_client.get(page)), "status": "declined"}

    refused = editor_client.post(page, {**data, "decline_reason": "   "})
    assert refused.status_code == 200
    assert "To decline, say why in a sentence." in refused.content.decode()

    reason = "The council's own list says 1965."
    assert editor_client.post(page, {**data, "decline_reason": reason}).status_code == 302
    correction.refresh_from_db()
    assert (correction.status, correction.decline_reason) == (CorrectionStatus.DECLINED, reason)
    assert correction.decided_by == editor


def test_the_database_refuses_a_decision_without_its_link_or_reason():
    correction = make_correction()
    for changes in ({"status": "accepted"}, {"status": "declined"}, {"status": "spam"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Correction.objects.filter(pk=correction.pk).update(**changes)
    with pytest.raises(IntegrityError), transaction.atomic():
        Correction.objects.create(what_is_wrong="x", should_be="y")  # about nothing
    with pytest.raises(IntegrityError), transaction.atomic():
        Correction.objects.filter(pk=correction.pk).update(should_be="y" * 2001)


def test_declining_selected_as_spam(editor_client, editor):
    spam = [make_correction(what_is_wrong="Buy now") for _ in range(2)]
    kept = make_correction(status=CorrectionStatus.ACCEPTED, change_url="https://example.org/h")
    response = editor_client.post(
        admin_url(Correction, "changelist"),
        {"action": "decline_as_spam", "_selected_action": [c.pk for c in [*spam, kept]]},
    )
    assert response.status_code == 302
    assert set(Correction.objects.filter(decline_reason="Spam.")) == set(spam)
    assert Correction.objects.get(pk=kept.pk).status == CorrectionStatus.ACCEPTED
    decided = Correction.objects.filter(pk__in=[c.pk for c in spam])
    assert set(decided.values_list("decided_by", flat=True)) == {editor.pk}


def test_curators_who_may_not_view_corrections_do_not_see_the_queue(client):
    make_correction()
    viewer = make_user()
    viewer.user_permissions.add(Permission.objects.get(codename="view_city"))
    client.force_login(viewer)
    assert client.get(admin_url(Correction, "changelist")).status_code == 403
    assert "Corrections from readers" not in client.get(reverse("admin:index")).content.decode()


def test_a_researcher_decides_corrections(client, researcher):
    client.force_login(researcher)
    correction = make_correction()
    page = admin_url(Correction, "change", correction.pk)
    data = {**form_data(client.get(page)), "status": "declined", "decline_reason": "No source."}
    assert client.post(page, data).status_code == 302
    assert Correction.objects.get().status == CorrectionStatus.DECLINED


def test_the_queue_queries_do_not_grow_with_rows(editor_client, django_assert_num_queries):
    changelist = admin_url(Correction, "changelist")

    def rows(n):
        for _ in range(n):
            make_correction(make_city())
            make_correction(make_tie())

    rows(1)
    editor_client.get(changelist)
    # 1 session, 2 user, 3-4 the user's and groups' permissions, 5 the count of matching rows,
    # 6 of all rows, 7 the page of corrections joined to their city, tie (with both cities)
    # and deciding curator.
    with django_assert_num_queries(7):
        editor_client.get(changelist)
    rows(30)
    with django_assert_num_queries(7):
        many = editor_client.get(changelist)
    assert many.context["cl"].result_count == 62


def test_a_correction_about_a_merged_city_moves_to_the_city_kept():
    keep, other = make_city(name="Odesa"), make_city(name="Odessa")
    correction = make_correction(other)
    merge_cities(keep, other)
    correction.refresh_from_db()
    assert correction.city == keep


# In a browser: screenshots, axe and the Nu HTML Checker -----------------------------------


def browser_pages():
    """The pages a reader and a curator see, as (name, path, posted data or None, who)."""
    city = make_city(name="Yokohama", slug="yokohama", country="JP")
    tie = make_tie(city, make_city(name="Odesa", slug="odesa", country="UA"))
    make_correction(
        city,
        what_is_wrong="The profile gives <b>8</b> sister cities; the city's own list has nine.",
        should_be="Nine sister cities, Odesa included.",
        source_url="https://www.city.yokohama.lg.jp/partners",
        email="reader@example.org",
    )
    make_correction(tie, what_is_wrong="The tie began in 1965.", should_be="1957.")
    make_correction(
        tie,
        what_is_wrong="Cheap pills",
        should_be="Buy now",
        status=CorrectionStatus.DECLINED,
        decline_reason="Spam.",
    )
    queue = admin_url(Correction, "changelist")
    decide = admin_url(Correction, "change", Correction.objects.filter(city=city).get().pk)
    return {
        "correction-tie": tie_form(tie),
        "correction-thanks": f"{city_form(city)}?sent",
        "correction-queue": queue,
        "correction-decide": decide,
    }


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_correction_pages_in_a_browser_look_right_and_pass_axe(live_server, new_context):  # noqa: F811
    # A live-server test before this one may have flushed the groups the migrations made.
    sync_groups(django_apps)
    editor = make_user("Editor")
    pages = browser_pages()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    axe = Axe()
    found, too_wide = {}, []

    def check(page, name, label, width):
        page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
        if page.evaluate("document.documentElement.scrollWidth") > width:
            too_wide.append(f"{name} at {width} px")
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(str(node["target"][0]) for node in v["nodes"][:3])
            for v in axe.run(page).response["violations"]
            if v["impact"] in SERIOUS
        ]
        if serious:
            found[f"{name} at {width} px"] = serious

    for label, width in WIDTHS.items():
        page = new_context(viewport={"width": width, "height": 900}).new_page()
        for name in ("correction-tie", "correction-thanks"):
            assert page.goto(live_server.url + pages[name]).status == 200
            check(page, name, label, width)

        # What the server says when the browser's own checks are passed by.
        page.goto(live_server.url + pages["correction-tie"])
        page.evaluate("document.querySelector('.correction-form').noValidate = true")
        page.get_by_label("Where it is written").fill("not a link")
        page.get_by_role("button", name="Send the suggestion").click()
        expect(page.get_by_role("alert")).to_contain_text("Your suggestion was not sent yet")
        check(page, "correction-errors", label, width)

        page.get_by_label("What is wrong", exact=True).fill("The tie began in <i>1965</i>.")
        page.get_by_label("What it should be").fill("1957, by a council vote.")
        page.get_by_label("Where it is written").fill("https://example.org/council-1957")
        page.get_by_role("button", name="Send the suggestion").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("has arrived")

        page.goto(live_server.url + reverse("admin:login"))
        page.get_by_label("Username").fill(editor.username)
        page.get_by_label("Password").fill("pw-for-tests-only")
        page.get_by_role("button", name="Log in").click()
        for name in ("correction-queue", "correction-decide"):
            assert page.goto(live_server.url + pages[name]).status == 200
            check(page, name, label, width)
        expect(page.locator("body")).to_contain_text("<b>8</b> sister cities")

    assert Correction.objects.filter(what_is_wrong="The tie began in <i>1965</i>.").count() == 2
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)
    assert too_wide == []


@pytest.mark.browser
def test_correction_pages_pass_the_nu_html_checker(client, editor, tmp_path):
    assert VNU_JAR.exists(), "vnu.jar is missing: `make install-test` runs npm ci"
    pages = browser_pages()
    tie_page = pages["correction-tie"]
    files = {
        "correction-tie": Client().get(tie_page),
        "correction-errors": Client().post(tie_page, suggestion(what_is_wrong="", email="x")),
        "correction-thanks": Client().get(pages["correction-thanks"]),
    }
    for _ in range(LIMIT + 1):
        limited = Client().post(tie_page, suggestion(), REMOTE_ADDR="192.0.2.50")
    files["correction-limited"] = limited
    client.force_login(editor)
    files["correction-queue"] = client.get(pages["correction-queue"])
    files["correction-decide"] = client.get(pages["correction-decide"])
    paths = []
    for name, response in files.items():
        assert response.status_code in (200, 400, 429), name
        paths.append(tmp_path / f"{name}.html")
        paths[-1].write_bytes(response.content)
    checked = subprocess.run(
        ["java", "-jar", str(VNU_JAR), "--format", "json", "--stdout", *map(str, paths)],
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
