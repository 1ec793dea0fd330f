"""A sister, partner or friendship tie entered or imported for a pair whose tie is *unspecified*
states that tie's kind (sources and history kept, the change attributed) instead of adding a
second tie; a twinning of unstated kind beside a stated one is refused; a tie of another kind
beside one is allowed, with a warning that links the other."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from cities.models import City, Theme
from partnerships.importing import dataset_source, run_import
from partnerships.models import (
    KindStated,
    Tie,
    TieCitation,
    TieKind,
    record_tie,
    tie_counts,
)
from tests.conftest import add_inline_row, admin_url, form_data, make_city, make_source, make_tie

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_throttle_counts")]

TWIN_TOWNS = (
    b"city1,country1,lat1,lng1,city2,country2,lat2,lng2\n"
    b"Yokohama,Japan,35.44,139.64,Lyon,France,45.76,4.84\n"
)


@pytest.fixture
def twinning():
    """Yokohama–Lyon as the shared Wikipedia lists give it: a twinning of unstated kind,
    citing the list's row."""
    run_import(TWIN_TOWNS, name="twin-towns.csv")
    return Tie.objects.get()


def lyon_listed_once(client, tie):
    """The profile lists Lyon once, the counts and the CSV export have one tie."""
    yokohama, lyon = tie.city_a, tie.city_b
    page = client.get(yokohama.get_absolute_url())
    partners = [row["partner"] for group in page.context["groups"] for row in group["rows"]]
    assert partners == [lyon]
    assert page.context["tie_count"] == 1
    assert tie_counts([yokohama, lyon]) == {yokohama.pk: 1, lyon.pk: 1}
    export = APIClient().get("/api/v1/exports/ties.csv", {"city": yokohama.slug})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [(r["tie_id"], r["kind"]) for r in rows] == [(str(tie.pk), tie.kind)]
    return True


def cited(tie):
    return sorted((c.source.slug, c.locator) for c in tie.citations.select_related("source"))


# The admin ----------------------------------------------------------------------------------


def post_tie(client, data=None, **fields):
    """The tie form posted; with a cited source, as every new tie needs, unless it has one."""
    data = data or form_data(client.get(admin_url(Tie, "add")))
    data.update(fields)
    if not any(k.startswith("citations-") and k.endswith("-source") and v for k, v in data.items()):
        add_inline_row(data, "citations", source=make_source().pk, locator="p. 1")
    return client.post(admin_url(Tie, "add"), data)


def test_admin_sister_tie_states_the_kind_of_the_imported_twinning(editor_client, editor, twinning):
    report = make_source(slug="yokohama-city-report")
    data = form_data(editor_client.get(admin_url(Tie, "add")))
    data.update(city_a=twinning.city_b.pk, city_b=twinning.city_a.pk, kind="sister", start="1959")
    add_inline_row(data, "citations", source=report.pk, locator="p. 12")

    response = post_tie(editor_client, data)

    assert response.status_code == 302
    assert response["Location"] == admin_url(Tie, "change", twinning.pk)
    page = editor_client.get(response["Location"])
    assert "was already in the atlas as a twinning of unstated kind" in page.content.decode()
    tie = Tie.objects.get()
    assert (tie.pk, tie.kind, tie.start, tie.start_lower.year) == (
        twinning.pk,
        "sister",
        "1959",
        1959,
    )
    assert cited(tie) == [("wikipedia-twin-towns", "row 2"), ("yokohama-city-report", "p. 12")]
    latest = tie.history.latest()
    assert (latest.history_change_reason, latest.history_user) == (
        "Kind stated: unspecified → sister",
        editor,
    )
    assert tie.history.earliest().kind == "unspecified"  # the import's record is kept
    assert lyon_listed_once(editor_client, tie)


def test_admin_keeps_what_the_tie_said_and_says_what_it_kept(editor_client, twinning):
    Tie.objects.filter(pk=twinning.pk).update(start="1959", start_lower="1959-01-01")

    response = post_tie(
        editor_client,
        city_a=twinning.city_a.pk,
        city_b=twinning.city_b.pk,
        kind="partner",
        start="1960",
        summary="Port cities.",
    )

    page = editor_client.get(response["Location"]).content.decode()
    assert "It kept its own start (1959; you entered 1960)." in page
    tie = Tie.objects.get()
    assert (tie.kind, tie.start, tie.summary) == ("partner", "1959", "Port cities.")


def test_admin_warns_of_a_tie_of_another_kind_and_links_it(editor_client):
    odesa, yokohama = make_city(name="Odesa", country="UA"), make_city(name="Yokohama")
    sister = make_tie(odesa, yokohama, kind="sister")

    response = post_tie(editor_client, city_a=yokohama.pk, city_b=odesa.pk, kind="mou")

    assert response.status_code == 302
    assert Tie.objects.count() == 2
    page = editor_client.get(response["Location"]).content.decode()
    assert "These two cities also have" in page
    assert f'href="{admin_url(Tie, "change", sister.pk)}"' in page
    assert "Check that this memorandum of understanding / cooperation agreement tie" in page
    again = editor_client.get(response["Location"]).content.decode()
    assert "These two cities also have" not in again  # warned once


def test_admin_refuses_a_twinning_of_unstated_kind_beside_a_sister_tie(editor_client):
    odesa, yokohama = make_city(name="Odesa", country="UA"), make_city(name="Yokohama")
    sister = make_tie(odesa, yokohama, kind="sister")

    response = post_tie(editor_client, city_a=yokohama.pk, city_b=odesa.pk, kind="unspecified")

    assert response.status_code == 200
    page = response.content.decode()
    assert "These two cities already have a sister city tie:" in page
    assert f'<a href="{admin_url(Tie, "change", sister.pk)}">{sister} (id {sister.pk})</a>' in page
    assert "cite your source on that tie instead" in page
    assert Tie.objects.count() == 1


def test_editing_a_tie_of_a_pair_tied_twice_before_the_rule_is_still_possible(editor_client):
    odesa, yokohama = make_city(name="Odesa", country="UA"), make_city(name="Yokohama")
    make_tie(odesa, yokohama, kind="sister")
    old = make_tie(odesa, yokohama, kind="unspecified")  # written before the rule
    page = admin_url(Tie, "change", old.pk)
    data = form_data(editor_client.get(page))
    data["summary"] = "To be merged."

    assert editor_client.post(page, data).status_code == 302


# The API ------------------------------------------------------------------------------------


@pytest.fixture
def researcher_api(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    return client


def test_api_sister_tie_states_the_kind_of_the_twinning(researcher_api, researcher, twinning):
    topic = Theme.objects.create(name="Ports", slug="ports")
    body = {
        "city_a": twinning.city_a.slug,
        "city_b": twinning.city_b.slug,
        "kind": "sister",
        "start": "1959",
        "topics": [topic.slug],
        "citations": [{"source": make_source(slug="city-report").slug, "locator": "p. 4"}],
    }

    response = researcher_api.post("/api/v1/ties/", body, format="json")

    assert response.status_code == 200
    data = response.json()
    assert (data["id"], data["kind"], data["start"]) == (twinning.pk, "sister", "1959")
    assert response["Location"] == f"http://testserver/api/v1/ties/{twinning.pk}/"
    assert data["topics"] == [topic.slug]
    tie = Tie.objects.get()
    assert cited(tie) == [("city-report", "p. 4"), ("wikipedia-twin-towns", "row 2")]
    latest = tie.history.latest()
    assert (latest.history_change_reason, latest.history_user) == (
        "Kind stated: unspecified → sister",
        researcher,
    )
    assert lyon_listed_once(APIClient(), tie)


def test_api_answers_200_when_it_states_the_kind_rather_than_creating(researcher_api, twinning):
    body = {"city_a": twinning.city_a.slug, "city_b": twinning.city_b.slug, "kind": "sister"}
    body["citations"] = [{"source": make_source().slug}]

    assert researcher_api.post("/api/v1/ties/", body, format="json").status_code == 200


def test_api_refuses_a_twinning_of_unstated_kind_beside_a_sister_tie(researcher_api):
    sister = make_tie(kind="sister")
    body = {"city_a": sister.city_b.slug, "city_b": sister.city_a.slug, "kind": "unspecified"}
    body["citations"] = [{"source": make_source().slug}]

    response = researcher_api.post("/api/v1/ties/", body, format="json")

    assert response.status_code == 400
    error = response.json()
    assert (error["status"], error["code"]) == (400, "invalid")
    assert error["errors"]["non_field_errors"] == [
        f"These two cities already have a sister city tie: {sister} (id {sister.pk}), "
        f"http://testserver/api/v1/ties/{sister.pk}/. A twinning whose kind is not stated "
        "only confirms it: cite your source on that tie instead."
    ]
    assert Tie.objects.count() == 1


def test_api_adds_a_memorandum_beside_a_sister_tie(researcher_api):
    sister = make_tie(kind="sister")
    body = {"city_a": sister.city_a.slug, "city_b": sister.city_b.slug, "kind": "mou"}
    body["citations"] = [{"source": make_source().slug}]

    response = researcher_api.post("/api/v1/ties/", body, format="json")

    assert response.status_code == 201
    assert Tie.objects.count() == 2


# The importer -------------------------------------------------------------------------------

SISTER_CITIES = (
    b"city1,country1,city2,country2,kind,start\nLyon,France,Yokohama,Japan,sister city,1959\n"
)


def test_import_states_the_kind_and_the_dry_run_says_so(client, editor, twinning, tmp_path):
    path = tmp_path / "sister-cities.csv"
    path.write_bytes(SISTER_CITIES)
    options = ["--source-slug", "yokohama-sisters", "--source-title", "Yokohama's sister cities"]

    dry = io.StringIO()
    call_command("import_ties", str(path), *options, "--dry-run", stdout=dry)
    assert "Kinds stated: 1 twinnings of unstated kind would be given the kind" in dry.getvalue()
    assert Tie.objects.get().kind == "unspecified"

    out = io.StringIO()
    call_command("import_ties", str(path), *options, "--user", editor.username, stdout=out)

    assert "Kinds stated: 1 twinnings of unstated kind were given the kind" in out.getvalue()
    tie = Tie.objects.get()
    assert (tie.pk, tie.kind, tie.start) == (twinning.pk, "sister", "1959")
    assert cited(tie) == [("wikipedia-twin-towns", "row 2"), ("yokohama-sisters", "row 2")]
    latest = tie.history.latest()
    assert latest.history_user == editor
    assert latest.history_change_reason.startswith(
        "Kind stated: unspecified → sister (import_ties: sister-cities.csv"
    )
    assert lyon_listed_once(client, tie)

    again = io.StringIO()
    call_command("import_ties", str(path), *options, stdout=again)
    assert "Kinds stated" not in again.getvalue()
    assert Tie.objects.get().kind == "sister"


def test_import_plan_reports_the_row_as_upgraded(twinning):
    source, _new = dataset_source("yokohama-sisters", title="Yokohama's sister cities")
    plan = run_import(SISTER_CITIES, name="sisters.csv", source=source, dry_run=True)

    assert plan.summary()["ties_kind_stated"] == 1
    assert plan.summary()["ties_created"] == 0
    [outcome] = plan.outcomes
    assert (outcome.action, outcome.detail) == (
        "upgraded",
        f"states the kind of tie {twinning.pk}: unspecified → sister",
    )


def test_one_file_listing_a_pair_without_and_with_its_kind_makes_one_tie():
    lines = [
        "city1,country1,city2,country2,kind",
        "Yokohama,Japan,Lyon,France,",
        "Lyon,France,Yokohama,Japan,sister",
        "Yokohama,Japan,Lyon,France,twin town",
    ]
    plan = run_import("\n".join(lines).encode(), name="mixed.csv")

    tie = Tie.objects.get()
    assert tie.kind == "sister"
    assert [o.action for o in plan.outcomes] == ["created", "repeated", "repeated"]
    assert TieCitation.objects.filter(tie=tie).count() == 3


def test_a_memorandum_row_does_not_state_the_kind_of_a_twinning(twinning):
    lines = ["city1,country1,city2,country2,kind", "Yokohama,Japan,Lyon,France,mou"]
    run_import("\n".join(lines).encode(), name="memoranda.csv")

    assert sorted(Tie.objects.values_list("kind", flat=True)) == ["mou", "unspecified"]


def test_the_admin_import_preview_counts_the_kinds_stated(editor_client, twinning):
    upload = SimpleUploadedFile("sisters.csv", SISTER_CITIES, content_type="text/csv")
    response = editor_client.post(
        reverse("admin:partnerships_tie_import"),
        {"file": upload, "kind": "unspecified", "source_slug": "sisters", "source_title": "S"},
    )

    figures = dict(response.context["figures"])
    assert figures["twinnings of unstated kind given the kind a row states"] == 1
    assert figures["ties created"] == 0


# The service function -----------------------------------------------------------------------


def test_record_tie_fills_only_what_the_tie_left_empty(editor):
    yokohama, lyon = make_city(name="Yokohama"), make_city(name="Lyon", country="FR")
    old = make_tie(yokohama, lyon, kind="unspecified", status="active", start="1959")
    entry = Tie(
        city_a=lyon, city_b=yokohama, kind="friendship", status="ended", start="1960",
        end="1970", summary="Friendship city since 1959.",
    )  # fmt: skip

    stated = record_tie(entry, user=editor)

    assert stated == KindStated(
        previous=TieKind.UNSPECIFIED, kept={"status": "ended", "start": "1960", "end": "1970"}
    )
    tie = Tie.objects.get()
    assert (tie.pk, tie.kind, tie.status, tie.start, tie.end, tie.summary) == (
        old.pk, "friendship", "active", "1959", "", "Friendship city since 1959.",
    )  # fmt: skip
    assert tie.created_at == old.created_at


def test_record_tie_saves_a_tie_of_its_own_when_nothing_is_unspecified():
    a, b = make_city(), make_city()
    make_tie(a, b, kind="mou")

    assert record_tie(Tie(city_a=a, city_b=b, kind="sister")) is None
    assert City.objects.count() == 2
    assert sorted(Tie.objects.values_list("kind", flat=True)) == ["mou", "sister"]
