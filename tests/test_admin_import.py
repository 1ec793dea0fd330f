"""Importing ties from the admin: upload, the dry-run report, confirm (the import then runs in
the background: tests/test_import_jobs.py); bad files refused."""

import csv
import html
import io

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cities.models import AlternateName, City, CityCitation, Source
from partnerships import forms as admin_forms
from partnerships import jobs
from partnerships.admin_views import run_job
from partnerships.models import ImportJob, Tie, TieCitation
from tests.conftest import make_city, make_source, make_user

pytestmark = pytest.mark.django_db

IMPORT = reverse("admin:partnerships_tie_import")
CONFIRM = reverse("admin:partnerships_tie_import_confirm")
HEADER = "city1,country1,lat1,lng1,city2,country2,lat2,lng2"
# Row 3 lists row 2's pair from the other end; Yokohama is in the atlas already.
ROWS = [
    HEADER,
    "Yokohama,Japan,35.44,139.64,Odesa,Ukraine,46.48,30.73",
    "Odesa,Ukraine,46.48,30.73,Yokohama,Japan,35.44,139.64",
    "Yokohama,Japan,35.44,139.64,Lyon,France,45.77,4.84",
]


def upload(lines, name="ties.csv", encoding="utf-8"):
    content = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode(encoding)
    return SimpleUploadedFile(name, content, content_type="text/csv")


def post_file(client, lines=ROWS, **fields):
    data = {"file": upload(lines), "kind": "unspecified", **fields}
    return client.post(IMPORT, data)


def counts():
    """What an import can write, with the edit history of each table."""
    models = (City, AlternateName, CityCitation, Tie, TieCitation, Source)
    return {m.__name__: (m.objects.count(), m.history.count()) for m in models}


def figures(response):
    return dict(response.context["figures"])


def shows(response, text):
    return html.escape(text) in response.content.decode()


@pytest.fixture
def yokohama():
    return make_city(name="Yokohama", country="JP", latitude=35.44, longitude=139.64)


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client


@pytest.fixture
def confirm(client, monkeypatch, django_capture_on_commit_callbacks):
    """Post a confirmation, then run the job it queued as its detached runner would
    (manage.py run_import_job). Answers the confirmation's response."""
    started = []
    monkeypatch.setattr(jobs, "launch", started.append)

    def post(data):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(CONFIRM, data)
        while started:
            run_job(started.pop(0).pk)
        return response

    return post


def test_the_preview_shows_what_the_import_would_do_and_writes_nothing(researcher_client, yokohama):
    before = counts()
    response = post_file(researcher_client)

    assert response.status_code == 200
    assert response.templates[0].name == "admin/partnerships/tie/import_preview.html"
    shown = figures(response)
    assert shown["rows read"] == 3
    assert shown["rows rejected"] == 0
    assert shown["cities created"] == 2  # Odesa, Lyon
    assert shown["cities matched in the atlas"] == 1  # Yokohama
    assert shown["ties created"] == 2
    assert shown["rows repeating a pair listed earlier (skipped as duplicates)"] == 1
    page = response.content.decode()
    assert "Dry run: nothing has been written yet." in page
    for text in ("Odesa (UA)", "Lyon (FR)", "same pair as row 2", "Confirm the import"):
        assert shows(response, text)
    assert counts() == before


def test_confirm_writes_exactly_what_the_preview_said_in_the_name_of_the_user(
    researcher_client, researcher, yokohama, confirm
):
    preview = post_file(researcher_client)
    before = counts()
    shown = figures(preview)

    response = confirm({"token": preview.context["token"]})

    # The import's page says what it wrote and links to it: its two new ties, not the whole
    # atlas.
    job = ImportJob.objects.get()
    assert response.url == job.get_absolute_url()
    page = researcher_client.get(response.url)
    assert shows(page, "Imported ties.csv: 2 ties and 2 cities created, 1 cities matched")
    assert dict(page.context["figures"]) == shown
    listed = researcher_client.get(page.context["link"])
    assert page.context["link"].startswith(
        reverse("admin:partnerships_tie_changelist") + "?imported="
    )
    assert listed.context["cl"].result_count == 2
    logged = LogEntry.objects.get()
    assert (logged.user, logged.object_repr) == (researcher, str(Source.objects.get()))
    assert logged.change_message.startswith("Imported ties.csv: 2 ties")
    after = counts()
    assert after["Tie"][0] - before["Tie"][0] == shown["ties created"]
    assert after["City"][0] - before["City"][0] == shown["cities created"]
    written = after["TieCitation"][0] + after["CityCitation"][0]
    assert (
        written - before["TieCitation"][0] - before["CityCitation"][0] == shown["citations added"]
    )
    assert Source.objects.filter(slug="wikipedia-twin-towns").count() == 1
    odesa = City.objects.get(name="Odesa")
    tie = Tie.objects.between(yokohama, odesa).get()
    assert sorted(tie.citations.values_list("locator", flat=True)) == ["row 2", "row 3"]
    # Every record written carries the curator and the import in its history.
    for model in (City, Tie, TieCitation, CityCitation, Source):
        records = model.history.all()
        assert records.exists()
        assert {r.history_user for r in records if r.history_type == "+"} - {None} == {researcher}
    assert tie.history.get().history_change_reason.startswith(
        "Imported from the admin: ties.csv (3 rows), import "
    )

    # The same preview cannot be applied twice.
    again = researcher_client.post(CONFIRM, {"token": preview.context["token"]}, follow=True)
    assert shows(again, "This preview is no longer waiting")
    assert counts() == after


def test_a_second_import_of_the_same_file_creates_nothing(researcher_client, yokohama, confirm):
    first = post_file(researcher_client)
    confirm({"token": first.context["token"]})
    before = counts()

    second = post_file(researcher_client)
    shown = figures(second)
    assert (shown["ties created"], shown["cities created"], shown["citations added"]) == (0, 0, 0)
    assert shown["rows confirming a tie already in the atlas"] == 3
    confirm({"token": second.context["token"]})
    assert {k: v[0] for k, v in counts().items()} == {k: v[0] for k, v in before.items()}


def test_a_change_to_the_atlas_after_the_preview_is_shown_before_anything_is_written(
    researcher_client, yokohama, confirm
):
    preview = post_file(researcher_client)
    make_city(name="Lyon", country="FR", latitude=45.76, longitude=4.83)
    before = counts()

    response = researcher_client.get(confirm({"token": preview.context["token"]}).url)

    assert shows(response, "The atlas changed since the preview you confirmed")
    assert figures(response)["cities created"] == 1
    assert counts() == before
    confirm({"job": response.context["job"].pk})
    assert Tie.objects.count() == 2
    assert City.objects.filter(name="Lyon").count() == 1


def test_bad_rows_are_listed_and_nothing_is_imported_unless_good_rows_only(
    researcher_client, yokohama, confirm
):
    lines = [
        *ROWS,
        ",Japan,35.0,139.0,Lyon,France,45.77,4.84",
        "Kobe,Japan,north,135.2,Lyon,France,45.77,4.84",
    ]
    before = counts()
    preview = post_file(researcher_client, lines)

    assert figures(preview)["rows rejected"] == 2
    assert shows(preview, "The first city's name (column city1) is empty.")
    assert shows(preview, "Latitude “north” (column lat1) is not a number.")
    assert "Confirm the import" not in preview.content.decode()
    assert shows(preview, "Import the good rows only, leaving out 2 rejected")

    report = researcher_client.get(
        reverse("admin:partnerships_tie_import_rejected"), {"token": preview.context["token"]}
    )
    assert report["Content-Disposition"] == 'attachment; filename="ties-rejected.csv"'
    rows = list(csv.reader(io.StringIO(report.content.decode())))
    assert [row[:2] for row in rows[1:]] == [
        ["5", "The first city's name (column city1) is empty."],
        ["6", "Latitude “north” (column lat1) is not a number."],
    ]
    assert counts() == before

    page = researcher_client.get(
        confirm({"token": preview.context["token"], "skip_bad_rows": "1"}).url
    )
    assert Tie.objects.count() == 2
    assert not City.objects.filter(name="Kobe").exists()
    assert page.context["rejected"] == [
        [5, "The first city's name (column city1) is empty."],
        [6, "Latitude “north” (column lat1) is not a number."],
    ]


def test_good_rows_only_ticked_on_upload_offers_the_confirmation_at_once(
    researcher_client, yokohama, confirm
):
    lines = [*ROWS, "Yokohama,Japan,35.44,139.64,Yokohama,Japan,35.44,139.64"]
    preview = post_file(researcher_client, lines, skip_bad_rows="on")
    assert shows(preview, "These rows will be left out; the others will be imported.")
    assert shows(preview, "a city cannot be tied to itself")
    assert shows(preview, "Confirm the import, leaving out 1 rejected rows")
    confirm({"token": preview.context["token"]})
    assert Tie.objects.count() == 2


def test_another_layout_with_a_mapping_and_a_new_source(researcher_client, researcher, confirm):
    lines = [
        "item,itemLabel,countryLabel,partnerLabel,partnerCountryLabel,kind,start",
        "Q38283,Yokohama,Japan,Odesa,Ukraine,sister city,1965",
    ]
    mapping = "city1=itemLabel,country1=countryLabel,wikidata1=item,city2=partnerLabel,"
    mapping += "country2=partnerCountryLabel"
    preview = post_file(
        researcher_client,
        lines,
        mapping=mapping,
        source_slug="wikidata-2026",
        source_title="Wikidata: twinned administrative bodies",
        source_url="https://query.wikidata.org/",
    )
    assert shows(preview, "bodies” (wikidata-2026, a new source)")
    confirm({"token": preview.context["token"]})

    tie = Tie.objects.get()
    assert (tie.kind, tie.start) == ("sister", "1965")
    assert City.objects.get(name="Yokohama").wikidata_id == "Q38283"
    source = tie.citations.get().source
    assert (source.slug, source.url) == ("wikidata-2026", "https://query.wikidata.org/")
    assert source.history.get().history_user == researcher


def test_the_kind_chosen_applies_to_rows_that_state_none(researcher_client, yokohama, confirm):
    source = make_source(slug="yokohama-list", title="Yokohama's partners")
    preview = post_file(researcher_client, kind="partner", source_slug=source.slug)
    assert shows(preview, "Yokohama's partners” (yokohama-list)")
    confirm({"token": preview.context["token"]})
    assert set(Tie.objects.values_list("kind", flat=True)) == {"partner"}
    assert set(TieCitation.objects.values_list("source", flat=True)) == {source.pk}


@pytest.mark.parametrize(
    "content, fields, field, message",
    [
        (
            "Constanţa,Romania".encode("cp1250") + b"\n",
            {},
            "file",
            "ties.csv is not UTF-8 text (byte 8 is not valid UTF-8): save it as UTF-8",
        ),
        (b"", {}, "file", "The submitted file is empty."),
        (
            b"name,country\nYokohama,Japan\n",
            {},
            "mapping",
            "No column for name of the first city, country of the first city",
        ),
        (
            "\n".join(ROWS).encode(),
            {"mapping": "city1=town"},
            "mapping",
            "The mapping names column “town” for name of the first city, but the file has no "
            "such column.",
        ),
        (
            "\n".join(ROWS).encode(),
            {"mapping": "town=city1"},
            "mapping",
            "Unknown field(s) in the column mapping: town.",
        ),
        (
            "\n".join(ROWS).encode(),
            {"mapping": "/etc/passwd"},
            "mapping",
            "Write the mapping as field=column pairs separated by commas",
        ),
        (
            "\n".join(ROWS).encode(),
            {"mapping": '{"city1": '},
            "mapping",
            "The column mapping is not valid JSON",
        ),
        (
            "\n".join(ROWS).encode(),
            {"source_slug": "my-register"},
            "source_slug",
            "There is no source “my-register” yet: give its title",
        ),
        (
            "\n".join(ROWS).encode(),
            {"source_title": "A register"},
            "source_slug",
            "Give the new source a citation key as well",
        ),
    ],
    ids=[
        "not-utf8",
        "empty",
        "missing-columns",
        "mapping-names-no-column",
        "mapping-unknown-field",
        "mapping-is-a-path",
        "mapping-bad-json",
        "unknown-source",
        "source-without-key",
    ],
)
def test_a_bad_file_or_option_is_a_form_error_in_words_and_writes_nothing(
    researcher_client, content, fields, field, message
):
    before = counts()
    response = post_file(researcher_client, content, **fields)
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors[field])
    assert message in errors
    assert shows(response, message)
    assert shows(response, "Nothing was written.")
    assert "pending_import" not in researcher_client.session
    assert counts() == before


def test_a_file_over_the_size_limit_is_refused_with_the_command_to_use(
    researcher_client, monkeypatch
):
    monkeypatch.setattr(admin_forms, "IMPORT_MAX_BYTES", 100)
    response = post_file(researcher_client, [*ROWS, *ROWS[1:]])
    errors = response.context["form"].errors["file"]
    assert errors == [
        "The file is 0.0 MB; the admin takes files up to 0 MB. Split it, or import it with "
        "manage.py import_ties."
    ]
    assert not Tie.objects.exists()


def test_cancel_discards_the_waiting_file(researcher_client, yokohama):
    preview = post_file(researcher_client)
    token = preview.context["token"]
    response = researcher_client.post(
        reverse("admin:partnerships_tie_import_cancel"), {"token": token}, follow=True
    )
    assert shows(response, "The import was cancelled; nothing was written.")
    response = researcher_client.post(CONFIRM, {"token": token}, follow=True)
    assert shows(response, "This preview is no longer waiting")
    assert not Tie.objects.exists()


def test_another_users_preview_cannot_be_confirmed(client, researcher, yokohama, confirm):
    client.force_login(researcher)
    token = post_file(client).context["token"]
    other = make_user("Editor")
    client.force_login(other)
    confirm({"token": token})
    assert not Tie.objects.exists()
    assert not ImportJob.objects.exists()


def test_importing_needs_the_right_to_add_ties(client):
    viewer = make_user()
    viewer.user_permissions.add(Permission.objects.get(codename="view_tie"))
    client.force_login(viewer)
    assert client.get(IMPORT).status_code == 403
    assert post_file(client).status_code == 403
    changelist = client.get(reverse("admin:partnerships_tie_changelist"))
    assert IMPORT not in changelist.content.decode()


def test_the_tie_list_and_the_index_link_to_the_import(researcher_client):
    for page in (reverse("admin:partnerships_tie_changelist"), reverse("admin:index")):
        assert IMPORT in researcher_client.get(page).content.decode()
    form = researcher_client.get(IMPORT)
    assert form.status_code == 200
    assert shows(form, "Check the file (dry run)")
