"""A backup and its restore give back the same atlas: the same rows, the same content."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from cities.models import City
from partnerships import backups
from partnerships.models import Tie

from .conftest import make_city, make_source, make_tie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def atlas():
    yokohama = make_city(name="Yokohama", slug="yokohama", population=3_700_000)
    make_tie(yokohama, make_city(name="Odesa", slug="odesa", country="UA"), make_source(),
             start="1965", summary="Signed in “Odessa”.")  # fmt: skip


def test_a_backup_restores_to_the_same_counts_and_checksum(atlas, tmp_path, capsys):
    if not backups.tools_available(connection.vendor):
        pytest.fail("pg_dump and pg_restore must be installed to back PostgreSQL up")
    before = backups.checksum()
    call_command("backup_atlas", str(tmp_path / "atlas.backup"))
    printed = capsys.readouterr().out
    assert before[1] in printed

    City.objects.filter(slug="yokohama").update(name="Changed after the backup")
    Tie.objects.all().delete()
    assert backups.checksum() != before

    call_command("restore_atlas", str(tmp_path / "atlas.backup"), "--yes")
    after = backups.checksum()
    assert after == before
    assert after[0]["partnerships_tie"] == 1
    assert City.objects.get(slug="yokohama").name == "Yokohama"


def test_restore_asks_for_confirmation_and_a_real_file(tmp_path):
    with pytest.raises(CommandError, match="--yes"):
        call_command("restore_atlas", str(tmp_path / "none.backup"))
    with pytest.raises(CommandError, match="No backup at"):
        call_command("restore_atlas", str(tmp_path / "none.backup"), "--yes")


def test_the_checksum_sees_a_change_in_any_column(atlas):
    counts, digest = backups.checksum()
    City.objects.filter(slug="odesa").update(population=1_000_000)
    assert backups.checksum() == (counts, backups.checksum()[1])
    assert backups.checksum()[1] != digest
