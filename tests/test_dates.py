"""EDTF dates: parsing, derived bounds, display as people write them."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from cities import dates
from tests.conftest import make_source, make_tie


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("1965", "1965"),
        ("2023-05", "May 2023"),
        ("2023-05-12", "12 May 2023"),
        ("1957~", "c. 1957"),
        ("1965?", "1965?"),
        ("196X", "1960s"),
        ("19XX", "20th century"),
        ("1950/1960", "1950–1960"),
        ("1990/..", "since 1990"),
        ("", "date unknown"),
    ],
)
def test_dates_are_shown_the_way_people_write_them(value, shown):
    assert dates.humanize(value) == shown


@pytest.mark.parametrize(
    ("value", "lower", "upper"),
    [
        ("1965", dt.date(1965, 1, 1), dt.date(1965, 12, 31)),
        ("2023-05", dt.date(2023, 5, 1), dt.date(2023, 5, 31)),
        ("1957~", dt.date(1957, 1, 1), dt.date(1957, 12, 31)),
        ("196X", dt.date(1960, 1, 1), dt.date(1969, 12, 31)),
        ("1950/1960", dt.date(1950, 1, 1), dt.date(1960, 12, 31)),
        ("1990/..", dt.date(1990, 1, 1), None),
        ("", None, None),
    ],
)
def test_bounds_cover_every_day_the_date_allows(value, lower, upper):
    assert dates.bounds(value) == (lower, upper)


@pytest.mark.parametrize("value", ["May 1965", "65", "1965-13", "sometime", "2023/05/12"])
def test_a_date_that_is_not_edtf_is_refused_with_examples(value):
    with pytest.raises(ValidationError) as error:
        dates.validate_edtf(value)
    message = error.value.messages[0]
    assert value in message
    assert "1957~" in message and "196X" in message


@pytest.mark.parametrize("value", ["1965-02-29", "2023-02-29~", "1950/1965-02-29"])
def test_a_day_its_month_does_not_have_is_refused_rather_than_kept_out_of_time(value):
    with pytest.raises(ValidationError, match="names a day its month does not have"):
        dates.validate_edtf(value)


def test_the_29th_of_february_of_a_leap_year_is_a_day():
    assert dates.bounds("2024-02-29") == (dt.date(2024, 2, 29), dt.date(2024, 2, 29))


@pytest.mark.django_db
def test_saving_a_tie_derives_its_bounds_for_filtering_and_ordering():
    tie = make_tie(start="196X", end="1999-04")
    tie.refresh_from_db()
    assert (tie.start_lower, tie.start_upper) == (dt.date(1960, 1, 1), dt.date(1969, 12, 31))
    assert (tie.end_lower, tie.end_upper) == (dt.date(1999, 4, 1), dt.date(1999, 4, 30))
    tie.start = ""
    tie.save()
    tie.refresh_from_db()
    assert tie.start_lower is None and tie.start_upper is None


@pytest.mark.django_db
def test_a_source_publication_date_gets_bounds_too():
    source = make_source(issued="2023-05")
    source.refresh_from_db()
    assert (source.issued_lower, source.issued_upper) == (dt.date(2023, 5, 1), dt.date(2023, 5, 31))
