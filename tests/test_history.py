"""Every curated change is kept: who, when, what changed."""

import pytest

from tests.conftest import make_city, make_tie, make_user

pytestmark = pytest.mark.django_db


def test_a_change_records_the_user_and_the_changed_fields():
    editor = make_user("Editor")
    tie = make_tie(status="active")
    tie._history_user = editor
    tie.status = "suspended"
    tie.start = "1965"
    tie.save()

    latest, previous = tie.history.all()[:2]
    assert latest.history_user == editor
    assert latest.history_type == "~"
    changed = {
        change.field: (change.old, change.new) for change in latest.diff_against(previous).changes
    }
    assert changed["status"] == ("active", "suspended")
    assert changed["start"] == ("", "1965")


def test_history_keeps_the_record_after_deletion():
    city = make_city(name="Constanța", country="RO")
    pk = city.pk
    city.delete()
    assert city.history.model.objects.filter(id=pk, history_type="-").exists()
