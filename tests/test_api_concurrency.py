"""Changes through the API are optimistic: a stale If-Match gets 412, and a change writes
only the fields it sends, so two researchers changing different fields both keep theirs."""

import pytest
from django.urls import reverse

from partnerships.models import Tie

from .conftest import make_city, make_source, make_tie

pytestmark = pytest.mark.django_db


@pytest.fixture
def tie():
    return make_tie(
        make_city(name="Yokohama"),
        make_city(name="Odesa"),
        make_source(),
        summary="Signed in Odesa.",
    )


@pytest.fixture
def researcher_api(api, researcher):
    api.force_authenticate(researcher)
    return api


def url(tie):
    return reverse("api:tie-detail", args=[tie.pk])


def test_a_change_with_a_stale_etag_is_refused_with_412(researcher_api, tie):
    etag = researcher_api.get(url(tie))["ETag"]
    assert researcher_api.patch(url(tie), {"summary": "Renewed."}, format="json").status_code == 200
    refused = researcher_api.patch(url(tie), {"status": "ended"}, format="json", HTTP_IF_MATCH=etag)
    assert refused.status_code == 412
    body = refused.json()
    assert body["code"] == "precondition_failed"
    assert body["etag"] == researcher_api.get(url(tie))["ETag"]
    tie.refresh_from_db()
    assert tie.status != "ended"


def test_a_change_with_the_current_etag_goes_through_and_answers_the_new_one(researcher_api, tie):
    etag = researcher_api.get(url(tie))["ETag"]
    response = researcher_api.patch(
        url(tie), {"summary": "Renewed."}, format="json", HTTP_IF_MATCH=etag
    )
    assert response.status_code == 200
    assert response["ETag"] != etag
    assert response["ETag"] == researcher_api.get(url(tie))["ETag"]


def test_a_change_writes_only_the_fields_it_sends(researcher_api, tie, monkeypatch):
    """Another request changes the summary between this one's read and its write."""
    original = Tie.full_clean

    def meanwhile(self, *args, **kwargs):
        Tie.objects.filter(pk=self.pk).update(summary="Changed meanwhile.")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Tie, "full_clean", meanwhile)
    response = researcher_api.patch(url(tie), {"status": "ended"}, format="json")
    assert response.status_code == 200
    tie.refresh_from_db()
    assert (tie.status, tie.summary) == ("ended", "Changed meanwhile.")


def test_a_date_change_moves_its_derived_bounds(researcher_api, tie):
    response = researcher_api.patch(url(tie), {"start": "1965-05"}, format="json")
    assert response.status_code == 200
    tie.refresh_from_db()
    assert (tie.start_lower.year, tie.start_lower.month) == (1965, 5)
    assert researcher_api.get(reverse("api:tie-list"), {"decade": "1960"}).json()["results"]
