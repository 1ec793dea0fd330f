"""Evidence a reader can check: written-out notes, the claim each source supports, citations
of a tie and of a comparison, and recorded counts read right."""

import html
import json
import re

import bibtexparser
import pytest

from cities.models import CityCitation
from partnerships.models import StatedFigure, StatedFigureCitation, Tie, TieCitation
from tests.conftest import make_city, make_source, make_tie

pytestmark = pytest.mark.django_db


def page(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def note(text, number):
    """The text of note `number` as a reader sees it, tags stripped."""
    match = re.search(rf'<li id="note-{number}"[^>]*>(.*?)</li>', text, re.S)
    assert match, f"no note {number}"
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).split()


def test_every_reference_leads_to_a_written_note_with_locator_quotation_and_row_link(client):
    dataset = make_source(
        slug="twin-towns",
        kind="dataset",
        title="Lists of twin towns",
        url="https://example.org/repo",
        locator_link="https://example.org/repo/list.csv#L{n}",
    )
    article = make_source(slug="article", title="City diplomacy article")
    yokohama = make_city(name="Yokohama", summary="A port city south of Tokyo.")
    CityCitation.objects.create(
        city=yokohama, source=article, locator="paragraph 3", quote="a major port city"
    )
    CityCitation.objects.create(city=yokohama, source=dataset, locator="row 15929")
    lyon = make_city(name="Lyon", country="FR")
    tie = make_tie(yokohama, lyon, kind="unspecified")
    TieCitation.objects.create(tie=tie, source=dataset, locator="row 15929")

    text = page(client, "/cities/yokohama/")

    # The summary cites the article only; the dataset supports the place, not the sentence.
    summary = re.search(r"A port city south of Tokyo\.(.*?)</p>", text, re.S).group(1)
    assert 'href="#note-1"' in summary and "#note-2" not in summary
    assert "City diplomacy article, paragraph 3: a major port city" in " ".join(note(text, 1))
    row_note = " ".join(note(text, 2))
    assert "Lists of twin towns, row 15929" in row_note
    assert 'href="https://example.org/repo/list.csv#L15929"' in text
    # The tie cites the same row: the same note, not a new one.
    assert text.count('id="note-') == 2


def test_a_tie_can_be_cited_as_bibtex_and_csl_json_that_parse(client):
    tie = make_tie(make_city(name="Yokohama"), make_city(name="Lyon", country="FR"))
    TieCitation.objects.create(tie=tie, source=make_source(), locator="p. 4")

    text = page(client, tie.get_absolute_url())

    bibtex = html.unescape(re.search(r"<pre class=\"code\"><code>(@misc.*?)</code>", text, re.S)[1])
    library = bibtexparser.parse_string(bibtex)
    assert library.failed_blocks == [] and "Yokohama" in library.entries[0]["title"]
    csl = re.findall(r"<pre class=\"code\"><code>(\[.*?)</code>", text, re.S)[0]
    (item,) = json.loads(html.unescape(csl))
    assert item["genre"] == "Tie" and item["URL"].endswith(tie.get_absolute_url())


def test_a_comparison_can_be_cited(client):
    make_city(name="Yokohama", slug="yokohama")
    make_city(name="Taipei", slug="taipei", country="TW")

    text = page(client, "/compare/?cities=yokohama,taipei")

    assert "Cite this page" in text
    assert "Comparison of Yokohama, Taipei" in html.unescape(text)


def test_recorded_counts_say_how_many_twinnings_are_of_unknown_kind(client):
    taipei = make_city(name="Taipei", slug="taipei", country="TW")
    for _ in range(3):
        make_tie(taipei, make_city(), kind="unspecified")
    figure = StatedFigure.objects.create(city=taipei, measure="sister_cities", value=53)
    StatedFigureCitation.objects.create(figure=figure, source=make_source(), locator="para. 8")

    profile = html.unescape(re.sub(r"<[^>]+>", "", page(client, "/cities/taipei/")))
    compared = client.get("/api/v1/compare/", {"cities": f"taipei,{make_city().slug}"}).json()

    assert "0 recorded and 3 of unknown kind" in " ".join(profile.split())
    sisters = next(row for row in compared["figures"] if row["key"] == "sister_cities")
    assert sisters["recorded"][0] == 0 and sisters["recorded_note"][0] == "and 3 of unknown kind"
    assert Tie.objects.count() == 3


def test_every_export_and_api_answer_states_its_licence_and_whom_it_credits(api):
    wikipedia = make_source(
        slug="wikipedia-twin-towns",
        kind="dataset",
        title="Lists of twin towns",
        authors="Wikipedia contributors",
        licence="CC BY-SA 4.0",
    )
    tie = make_tie(make_city(name="Yokohama"), make_city(name="Lyon", country="FR"))
    TieCitation.objects.create(tie=tie, source=wikipedia, locator="row 2")
    licence = '<https://creativecommons.org/licenses/by-sa/4.0/>; rel="license"'
    credit = "Lists of twin towns (Wikipedia contributors): CC BY-SA 4.0"

    def download(url):
        response = api.get(url)
        assert response.status_code == 200 and response["Link"] == licence, url
        return b"".join(response.streaming_content).decode()

    assert api.get("/api/v1/ties/")["Link"] == licence
    assert download("/api/v1/exports/ties.csv").startswith("tie_id,")  # re-importable as is
    collection = json.loads(download("/api/v1/exports/ties.geojson"))
    assert collection["licence"] == "CC BY-SA 4.0" and credit in collection["attribution"]
    assert credit in download("/api/v1/exports/ties.gexf")
    assert credit in download("/api/v1/exports/ties.graphml")
    (item,) = json.loads(download("/api/v1/exports/sources.json"))
    assert item["license"] == "CC BY-SA 4.0"
    bib = bibtexparser.parse_string(download("/api/v1/exports/sources.bib"))
    assert bib.failed_blocks == [] and bib.entries[0]["license"] == "CC BY-SA 4.0"
