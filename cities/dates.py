"""Partial and uncertain dates, stored as EDTF strings (Library of Congress, level 0-2).

A model keeps the string as entered plus derived lower and upper bounds (`DateField`s) for
filtering and ordering. Parsing is left to the `edtf` package; this module only names the
bounds and writes the date the way people read it.
"""

import datetime
from functools import lru_cache

from django.core.exceptions import ValidationError
from edtf import parse_edtf, struct_time_to_date
from edtf.parser.edtf_exceptions import EDTFParseException

EDTF_HELP = (
    "Extended Date/Time Format (EDTF): 1965, 2023-05, 2023-05-12, 1957~ (about), 1965? "
    "(uncertain), 196X (some year in the 1960s), 1950/1960 (between). Leave empty when unknown."
)

MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip


def parse(value):
    """Return the parsed EDTF object, or None for an empty value; ValidationError if invalid."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = parse_edtf(value)
    except (EDTFParseException, TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        raise ValidationError(
            "“%(value)s” is not a date this atlas understands. Write it in EDTF, for "
            "example 1965, 2023-05, 2023-05-12, 1957~ (about 1957), 1965? (uncertain), "
            "196X (the 1960s) or 1950/1960 (between the two); leave it empty when unknown.",
            code="invalid_edtf",
            params={"value": value},
        )
    # The parser takes any day up to 31: 1965-02-29 would be kept with no place in time.
    for end in (parsed.lower_strict, parsed.upper_strict):
        try:
            struct_time_to_date(end())
        except ValueError as error:
            if "day is out of range" in str(error):
                raise ValidationError(
                    "“%(value)s” names a day its month does not have: check the day.",
                    code="invalid_edtf",
                    params={"value": value},
                ) from None
        except (TypeError, OverflowError):
            pass
    return parsed


def validate_edtf(value):
    parse(value)


def bounds(value):
    """The earliest and latest calendar dates an EDTF string allows, or (None, None).

    Strict bounds are used: "1957~" spans 1957, not the fuzzy 1956-1958, so that a tie
    "about 1957" is counted in the 1950s.
    """
    parsed = parse(value)
    if parsed is None:
        return None, None
    try:
        lower = struct_time_to_date(parsed.lower_strict())
    except (TypeError, ValueError, OverflowError):
        lower = None
    try:
        upper = struct_time_to_date(parsed.upper_strict())
    except (TypeError, ValueError, OverflowError):
        upper = None
    # Open ends ("1990/..") come back as sentinel extremes; keep them unknown.
    if lower is not None and lower <= datetime.date(1, 1, 2):
        lower = None
    if upper is not None and upper >= datetime.date(9999, 12, 30):
        upper = None
    return lower, upper


def _qualify(text, value):
    if value.endswith("%") or (value.endswith("~") and value.endswith("?")):
        return f"c. {text}?"
    if value.endswith("~"):
        return f"c. {text}"
    if value.endswith("?"):
        return f"{text}?"
    return text


def _plain(value):
    """Display one EDTF date (no interval) in words."""
    core = value.rstrip("~?%")
    parts = core.split("-")
    year = parts[0]
    if year.endswith("XX") and year[:2].isdigit():
        return f"{int(year[:2]) + 1}th century"
    if year.endswith("X") and year[:3].isdigit():
        return f"{year[:3]}0s"
    if not year.lstrip("-").isdigit():
        return value
    text = str(int(year)) if not year.startswith("-") else f"{-int(year)} BCE"
    if len(parts) >= 2 and parts[1].isdigit():
        month = int(parts[1])
        if 1 <= month <= 12:
            text = f"{MONTHS[month - 1]} {text}"
            if len(parts) >= 3 and parts[2].isdigit():
                text = f"{int(parts[2])} {text}"
        elif 21 <= month <= 24:
            text = f"{['Spring', 'Summer', 'Autumn', 'Winter'][month - 21]} {text}"
    return _qualify(text, value)


@lru_cache(maxsize=4096)
def humanize(value, unknown="date unknown"):
    """Write an EDTF string the way people write dates: "1965", "c. 1957", "1960s".

    Cached: parsing EDTF takes milliseconds and a profile shows the same few dates many times.
    """
    value = (value or "").strip()
    if not value:
        return unknown
    try:
        parse(value)
    except ValidationError:
        return value
    if "/" in value:
        start, end = value.split("/", 1)
        if start in ("", ".."):
            return f"until {_plain(end)}"
        if end in ("", ".."):
            return f"since {_plain(start)}"
        return f"{_plain(start)}–{_plain(end)}"
    return _plain(value)


def span(start, end, unknown="date unknown", dash=" – "):
    """When something held, from two EDTF strings: "1957 – 1990", "?–1990" with unknown="?"
    and the compact dash of narrow columns, or the start alone ("1965") while it lasts."""
    if not end:
        return humanize(start, unknown=unknown)
    return f"{humanize(start, unknown=unknown)}{dash}{humanize(end)}"
