"""Importing a network's members from a file: reconciliation, roles and dates, bad rows, dry
run, repeat runs, the admin's upload → dry run → confirm, and the planning's query count."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from cities.models import AlternateName, City, CityCitation, Source
from partnerships import jobs
from partnerships.admin_views import run_job
from partnerships.importing import read_table
from partnerships.importing_members import build_member_plan, resolve_member_mapping
from partnerships.models import ImportJob, Membership, MembershipCitation, Organization
from tests.conftest import make_city, make_organization, make_source, shows

pytestmark = pytest.mark.django_db

HEADER = "city,country,lat,lng,organization,role,since,until,source_url,locator"
MEMBERS_PAGE = "https://www.mayorsforpeace.org/en/members/"
# UCLG and Mayors for Peace style rows: the atlas's Yokohama as "Yokohama-shi", Barcelona as
# "City of Barcelona", Odesa under its alternate name Odessa; Nagasaki is new.
ROWS = [
    HEADER,
    f"Hiroshima,Japan,34.39,132.45,Mayors for Peace,founding member,1982-06-24,,{MEMBERS_PAGE},",
    "Odessa,Ukraine,46.48,30.73,mayors-for-peace,,2005,,,",
    "Yokohama-shi,JP,35.44,139.64,UCLG,board,2004~,,,",
    "City of Barcelona,Spain,41.39,2.17,United Cities and Local Governments,Chair,2004,2007,,p. 3",
    "Nagasaki,Japan,32.75,129.88,Mayors for Peace,Founding member,1982,,,",
]
SOURCE = ["--source-slug", "network-members", "--source-title", "Network member lists"]


def write(tmp_path, lines, name="members.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(path, *args):
    out = io.StringIO()
    call_command("import_memberships", str(path), *SOURCE, *args, stdout=out)
    return out.getvalue()


def counts():
    """What an import can write, including the edit history of each table."""
    models = (City, AlternateName, CityCitation, Membership, MembershipCitation, Source)
    return {m.__name__: (m.objects.count(), m.history.count()) for m in models}


def held():
    return {
        (m.city.name, m.organization.slug, m.role, m.since, m.until)
        for m in Membership.objects.select_related("city", "organization")
    }


@pytest.fixture
def atlas():
    """Two networks and four cities, Odesa known also as Odessa."""
    make_organization(slug="uclg", name="United Cities and Local Governments", acronym="UCLG")
    make_organization(slug="mayors-for-peace", name="Mayors for Peace")
    odesa = make_city(name="Odesa", country="UA", latitude=46.48, longitude=30.73)
    AlternateName.objects.create(city=odesa, name="Odessa", folded="odessa")
    for name, country, lat, lng in (
        ("Hiroshima", "JP", 34.39, 132.45),
        ("Yokohama", "JP", 35.44, 139.64),
        ("Barcelona", "ES", 41.39, 2.17),
    ):
        make_city(name=name, country=country, latitude=lat, longitude=lng)


def test_a_member_list_gives_each_city_its_membership_role_and_dates_citing_its_row(
    tmp_path, atlas
):
    output = run(write(tmp_path, ROWS))

    assert held() == {
        ("Hiroshima", "mayors-for-peace", "founding_member", "1982-06-24", ""),
        ("Odesa", "mayors-for-peace", "member", "2005", ""),
        ("Yokohama", "uclg", "board", "2004~", ""),
        ("Barcelona", "uclg", "chair", "2004", "2007"),
        ("Nagasaki", "mayors-for-peace", "founding_member", "1982", ""),
    }
    # Only Nagasaki is new, cited with its row; the others were matched, not duplicated.
    assert City.objects.count() == 5
    nagasaki = City.objects.get(name="Nagasaki")
    assert (nagasaki.country, nagasaki.latitude) == ("JP", 32.75)
    assert nagasaki.citations.get().locator == "row 6"
    locators = {
        (c.membership.city.name, c.source.slug, c.locator)
        for c in MembershipCitation.objects.select_related("membership__city", "source")
    }
    web_page = Source.objects.get(url=MEMBERS_PAGE).slug
    assert locators == {
        ("Hiroshima", "network-members", "row 2"),
        ("Hiroshima", web_page, ""),
        ("Odesa", "network-members", "row 3"),
        ("Yokohama", "network-members", "row 4"),
        ("Barcelona", "network-members", "p. 3"),  # the row's own locator
        ("Nagasaki", "network-members", "row 6"),
    }
    barcelona = Membership.objects.get(city__name="Barcelona")
    assert (barcelona.since_lower.year, barcelona.until_upper.year) == (2004, 2007)
    assert "Cities: 1 were created, 4 matched in the atlas" in output
    assert "Memberships: 5 were created, 0 rows confirm" in output
    assert "Imported." in output


def test_a_second_run_changes_nothing(tmp_path, atlas):
    path = write(tmp_path, ROWS)
    run(path)
    before = counts()

    output = run(path)

    assert counts() == before
    assert "Memberships: 0 were created, 5 rows confirm a membership already in the atlas" in (
        output
    )
    assert "0 citations" in output


def test_a_recorded_membership_is_confirmed_its_missing_dates_filled_and_differences_kept(
    tmp_path, atlas
):
    hiroshima, odesa = City.objects.get(name="Hiroshima"), City.objects.get(name="Odesa")
    mfp = Organization.objects.get(slug="mayors-for-peace")
    founding = Membership.objects.create(organization=mfp, city=hiroshima, role="founding_member")
    member = Membership.objects.create(organization=mfp, city=odesa, since="2004")
    lines = [*ROWS[:3], "Odesa,Ukraine,46.48,30.73,Mayors for Peace,member,2004,,,"]

    output = run(write(tmp_path, lines))

    assert Membership.objects.count() == 2  # confirmed, not duplicated
    founding.refresh_from_db()
    assert (founding.since, founding.since_lower.isoformat()) == ("1982-06-24", "1982-06-24")
    assert founding.history.first().history_change_reason == (
        "import_memberships: members.csv (3 rows)"
    )
    member.refresh_from_db()
    assert member.since == "2004"  # the recorded date is kept
    assert sorted(member.citations.values_list("locator", flat=True)) == ["row 3", "row 4"]
    assert "3 rows confirm a membership already in the atlas" in output
    assert "row 3: since 2005 differs from the membership's 2004, kept" in output


def test_bad_rows_are_rejected_with_their_row_numbers_and_nothing_is_written(tmp_path, atlas):
    lines = [
        *ROWS,
        "Kyiv,Ukraine,50.45,30.52,ICLEI,,,,,",
        "Lyon,France,45.77,4.84,UCLG,,sometime,,,",
        "Turin,Italy,45.07,7.69,UCLG,sponsor,,,,",
        "Kobe,Japan,34.69,135.2,UCLG,,2010,2001,,",
    ]
    path, report = write(tmp_path, lines), tmp_path / "rejected.csv"
    before = counts()

    for args in (("--dry-run",), ("--report", str(report))):
        out = io.StringIO()
        with pytest.raises(CommandError, match="4 .*rows"):
            call_command("import_memberships", str(path), *SOURCE, *args, stdout=out)
        assert counts() == before

    output = out.getvalue()
    assert "row 7: “ICLEI” (column organization) is not an organization in the atlas" in output
    assert "A member list does not create networks" in output
    assert "row 8: The since date (column since): “sometime” is not a date" in output
    assert "row 9: “sponsor” (column role) is not a membership role this atlas knows" in output
    assert "row 10: The until date lies before the since date." in output
    with report.open(encoding="utf-8") as handle:
        rejected = list(csv.reader(handle))
    assert rejected[0][:3] == ["row", "reason", "city"]
    assert [(row[0], row[2]) for row in rejected[1:]] == [
        ("7", "Kyiv"),
        ("8", "Lyon"),
        ("9", "Turin"),
        ("10", "Kobe"),
    ]


def test_the_dry_run_reports_what_it_would_do_and_writes_nothing(tmp_path, atlas):
    before = counts()
    output = run(write(tmp_path, ROWS), "--dry-run")
    assert counts() == before
    assert "Memberships: 5 would be created" in output
    assert "Dry run: nothing was written." in output


def test_skip_bad_rows_imports_the_good_rows(tmp_path, atlas):
    lines = [*ROWS, "Kyiv,Ukraine,50.45,30.52,ICLEI,,,,,"]
    output = run(write(tmp_path, lines), "--skip-bad-rows")
    assert Membership.objects.count() == 5
    assert not City.objects.filter(name="Kyiv").exists()
    assert "Rejected: 1 rows." in output and "row 7:" in output


def test_other_layouts_are_read_through_a_mapping(tmp_path, atlas):
    lines = ["Member;Land;Network;Joined", "Hiroshima;JP;MAYORS FOR PEACE;1982"]
    run(
        write(tmp_path, lines),
        "--map",
        "city=Member,country=Land,organization=Network,since=Joined",
    )
    assert held() == {("Hiroshima", "mayors-for-peace", "member", "1982", "")}


def test_a_member_list_names_its_own_source(tmp_path, atlas):
    path = write(tmp_path, ROWS)
    with pytest.raises(CommandError, match="cites its own source"):
        call_command("import_memberships", str(path), stdout=io.StringIO())
    with pytest.raises(CommandError, match="give its title"):
        call_command("import_memberships", str(path), "--source-slug", "x", stdout=io.StringIO())
    assert Membership.objects.count() == 0


def test_planning_reads_the_database_in_a_fixed_number_of_queries(
    tmp_path, atlas, django_assert_num_queries
):
    source = make_source(url="https://example.org/members")
    odesa = City.objects.get(name="Odesa")
    uclg = make_organization(slug="uclg-africa", name="UCLG Africa")
    Membership.objects.create(organization=uclg, city=odesa)

    def plan(n):
        lines = [HEADER, "Odesa,Ukraine,46.48,30.73,UCLG Africa,,2001,,,"]
        # Half a degree apart: far enough never to be taken for one place.
        lines += [
            f"Town {i},Japan,{10 + i / 2},139.6,UCLG,,2001,,{MEMBERS_PAGE},row {i}"
            for i in range(n)
        ]
        table = read_table(write(tmp_path, lines))
        return build_member_plan(table, resolve_member_mapping(table.header), source)

    for n in (2, 40):
        # organizations; alternate names; the gazetteer's search names; cities; the source's
        # city citations; memberships; membership citations; sources with an address. (The
        # membership a row completes is loaded whole only to be written.)
        with django_assert_num_queries(8):
            summary = plan(n).summary()
        assert (summary["memberships_created"], summary["memberships_updated"]) == (n, 1)


# The admin: Memberships → Import members from a file -------------------------------------

IMPORT = reverse("admin:partnerships_membership_import")
CONFIRM = reverse("admin:partnerships_membership_import_confirm")


def upload(lines, name="members.csv"):
    return SimpleUploadedFile(name, ("\n".join(lines) + "\n").encode(), content_type="text/csv")


def post_file(client, lines=ROWS, **fields):
    data = {
        "file": upload(lines),
        "source_slug": "mfp-members-2026",
        "source_title": "Mayors for Peace member cities",
        **fields,
    }
    return client.post(IMPORT, data)


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client


@pytest.fixture
def confirm(client, monkeypatch, django_capture_on_commit_callbacks):
    """Post a confirmation, then run the job it queued as its detached runner would."""
    started = []
    monkeypatch.setattr(jobs, "launch", started.append)

    def post(data):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(CONFIRM, data)
        while started:
            run_job(started.pop(0).pk)
        return response

    return post


def test_the_memberships_list_links_to_the_import(researcher_client):
    response = researcher_client.get(reverse("admin:partnerships_membership_changelist"))
    assert shows(response, "Import members from a file")
    assert IMPORT in response.content.decode()


def test_a_researcher_uploads_reads_the_dry_run_and_confirms(
    researcher_client, researcher, atlas, confirm
):
    before = counts()
    preview = post_file(researcher_client)

    assert preview.templates[0].name == "admin/partnerships/membership/import_preview.html"
    shown = dict(preview.context["figures"])
    assert (shown["rows read"], shown["cities created"], shown["memberships created"]) == (5, 1, 5)
    assert shown["cities matched in the atlas"] == 4
    for text in ("Dry run: nothing has been written yet.", "Nagasaki", "Board / steering"):
        assert shows(preview, text)
    assert counts() == before

    response = researcher_client.get(confirm({"token": preview.context["token"]}).url)

    assert response.context["job"] == ImportJob.objects.get(kind="membership")
    assert shows(response, "Imported members.csv: 5 memberships and 1 cities created")
    assert response.context["link"] == reverse("admin:partnerships_membership_changelist")
    assert len(held()) == 5
    membership = Membership.objects.get(city__name="Yokohama")
    assert membership.citations.get().source.slug == "mfp-members-2026"
    record = membership.history.get()
    assert (record.history_user, record.history_change_reason) == (
        researcher,
        "Imported from the admin: members.csv (5 rows)",
    )
    again = researcher_client.post(CONFIRM, {"token": preview.context["token"]}, follow=True)
    assert shows(again, "This preview is no longer waiting")
    assert len(held()) == 5


def test_the_admin_lists_rejected_rows_and_imports_the_good_ones_only_when_asked(
    researcher_client, atlas, confirm
):
    preview = post_file(researcher_client, [*ROWS, "Kyiv,Ukraine,50.45,30.52,ICLEI,,,,,"])

    assert dict(preview.context["figures"])["rows rejected"] == 1
    assert shows(preview, "“ICLEI” (column organization) is not an organization in the atlas")
    assert "Confirm the import" not in preview.content.decode()
    report = researcher_client.get(
        reverse("admin:partnerships_membership_import_rejected"),
        {"token": preview.context["token"]},
    )
    (number, reason, *_cells), *more = list(csv.reader(io.StringIO(report.content.decode())))[1:]
    assert (number, more) == ("7", [])
    assert reason.startswith("“ICLEI” (column organization) is not an organization")

    confirm({"token": preview.context["token"], "skip_bad_rows": "1"})
    assert len(held()) == 5


def test_the_admin_asks_for_the_member_lists_source(researcher_client, atlas):
    response = researcher_client.post(IMPORT, {"file": upload(ROWS)})
    assert response.templates[0].name == "admin/partnerships/membership/import_form.html"
    assert shows(response, "Name the member list's source")
    assert Membership.objects.count() == 0
