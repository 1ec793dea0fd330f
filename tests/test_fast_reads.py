"""The lean tie list answers exactly what TieSerializer would, in a constant number of
queries, and the orjson renderer writes what DRF's JSON renderer writes."""

import json

import pytest
from django.urls import reverse
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIRequestFactory

from cities.models import Theme
from partnerships.fastrows import FastJSONRenderer
from partnerships.models import Tie, TieCitation
from partnerships.serializers import TieSerializer

from .conftest import make_city, make_source, make_tie

pytestmark = pytest.mark.django_db


@pytest.fixture
def varied_ties():
    """Ties with and without dates, topics, summaries, Wikidata ids and citations."""
    peace, trade = (
        Theme.objects.create(slug="peace", name="Peace"),
        Theme.objects.create(slug="trade", name="Trade"),
    )
    yokohama = make_city(name="Yokohama", slug="yokohama", wikidata_id="Q38283")
    odesa = make_city(name="Odesa", slug="odesa", country="UA")
    sao = make_city(name="São Paulo", slug="sao-paulo", country="BR", wikidata_id="")
    book, page = make_source(title="Z book"), make_source(title="A page, “quoted”")
    dated = make_tie(
        yokohama,
        odesa,
        start="1965",
        end="2014-03",
        status="ended",
        summary='Signed in "Odessa", 1965.\nRenewed.',
    )
    dated.topics.add(trade, peace)
    TieCitation.objects.create(tie=dated, source=book, locator="p. 12", quote='a, b "c"')
    TieCitation.objects.create(tie=dated, source=page, locator="")
    TieCitation.objects.create(tie=dated, source=book, locator="p. 3")
    vague = make_tie(odesa, sao, kind="partner", start="196X")
    TieCitation.objects.create(tie=vague, source=page, locator="§ 2")
    make_tie(sao, yokohama, kind="friendship")  # undated, no topics, unsourced
    return Tie.objects.all()


def test_the_lean_list_equals_the_serializer_field_for_field(api, varied_ties):
    listed = api.get(reverse("api:tie-list"), {"page_size": 100}).json()["results"]
    request = APIRequestFactory().get("/api/v1/ties/", SERVER_NAME="testserver")
    from rest_framework.request import Request

    context = {"request": Request(request)}
    expected = {
        tie.pk: json.loads(JSONRenderer().render(TieSerializer(tie, context=context).data))
        for tie in Tie.objects.for_profile()
    }
    assert len(listed) == 3
    for row in listed:
        assert row == expected[row["id"]]
    dated = next(row for row in listed if row["start"] == "1965")
    assert dated["topics"] == ["peace", "trade"]
    # By the source's title, then the locator as written.
    assert [c["locator"] for c in dated["citations"]] == ["", "p. 12", "p. 3"]


@pytest.mark.parametrize("n", [3, 60])
def test_the_tie_list_costs_three_queries_at_any_size(api, django_assert_num_queries, n):
    source = make_source()
    theme = Theme.objects.create(slug=f"theme-{n}", name=f"Theme {n}")
    for _ in range(n):
        make_tie(source=source).topics.add(theme)
    # The page of ties with both cities; their topics; their citations with sources.
    with django_assert_num_queries(3):
        response = api.get(reverse("api:tie-list"), {"page_size": 100})
    assert len(response.json()["results"]) == n


def test_cursor_pages_of_the_lean_list_walk_every_tie_once(api):
    for i in range(7):
        make_tie(start=str(1960 + i % 3) if i % 2 else "")
    seen, url = [], reverse("api:tie-list") + "?page_size=3&ordering=city"
    while url:
        page = api.get(url).json()
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert sorted(seen) == sorted(Tie.objects.values_list("id", flat=True))
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize(
    "data",
    [
        {"status": 400, "detail": "Refused", "errors": {"kind": ["Pick one of: sister."]}},
        {"results": [{"name": "São Paulo", "n": 1.5, "none": None, "ok": True}], "next": None},
        [],
    ],
)
def test_the_fast_renderer_writes_what_drf_writes(data):
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


def test_lazy_text_and_decimals_still_render():
    from decimal import Decimal

    from django.utils.translation import gettext_lazy

    data = {"detail": gettext_lazy("Not found."), "value": Decimal("1.50")}
    assert json.loads(FastJSONRenderer().render(data)) == json.loads(JSONRenderer().render(data))
