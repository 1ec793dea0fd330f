"""Country names as people and datasets write them, mapped to ISO 3166-1 alpha-2 codes.

The names come from pycountry (ISO 3166-1 names, official and common names) and
django-countries (the names the site shows), folded like city names. `ALIASES` adds what real
files use and neither library knows: constituent countries (England → GB), short or older
names (Russia, Ivory Coast, Macedonia), territories without an ISO code (Kosovo → XK) and
misspellings seen in the shared Wikipedia file. A name that still does not resolve is reported
to the researcher, never guessed at.
"""

import re
from functools import lru_cache

import pycountry
from django_countries import countries

from .text import fold

ALIASES = {
    # Constituent countries and regions of the United Kingdom.
    "England": "GB",
    "Scotland": "GB",
    "Wales": "GB",
    "Northern Ireland": "GB",
    "Great Britain": "GB",
    "Britain": "GB",
    "UK": "GB",
    # Short, older or English names that ISO words differently.
    "Russia": "RU",
    "Turkey": "TR",
    "Türkiye": "TR",
    "Czech Republic": "CZ",
    "Ivory Coast": "CI",
    "Cote d'Ivoire": "CI",
    "Cape Verde": "CV",
    "Brunei": "BN",
    "East Timor": "TL",
    "Timor Leste": "TL",
    "Macedonia": "MK",
    "Republic of Macedonia": "MK",
    "FYR Macedonia": "MK",
    "Moldavia": "MD",
    "Micronesia": "FM",
    "Federated States of Micronesia": "FM",
    "South Korea": "KR",
    "Republic of Korea": "KR",
    "North Korea": "KP",
    "Vietnam": "VN",
    "Laos": "LA",
    "Syria": "SY",
    "Iran": "IR",
    "Bolivia": "BO",
    "Venezuela": "VE",
    "Tanzania": "TZ",
    "Republic of Ireland": "IE",
    "Ireland": "IE",
    "Vatican City": "VA",
    "Vatican": "VA",
    "Swaziland": "SZ",
    "Burma": "MM",
    "The Gambia": "GM",
    "The Bahamas": "BS",
    "The Netherlands": "NL",
    "Holland": "NL",
    "United States of America": "US",
    "USA": "US",
    "Bosnia": "BA",
    "Bosnia and Hercegovina": "BA",
    "Falkland Islands": "FK",
    "Georgia (country)": "GE",
    "Georgia": "GE",
    # The two Congos: the short "Congo" is the Republic (Brazzaville), as in ISO.
    "Republic of the Congo": "CG",
    "Congo-Brazzaville": "CG",
    "Democratic Republic of the Congo": "CD",
    "DR Congo": "CD",
    "DRC": "CD",
    "Congo-Kinshasa": "CD",
    # Places without an ISO 3166-1 code of their own, filed where ISO 3166-2 and GeoNames
    # file them; XK is the user-assigned code for Kosovo that most datasets use.
    "Kosovo": "XK",
    "XKX": "XK",
    "Taiwan": "TW",
    "Republic of China": "TW",
    "Palestine": "PS",
    "State of Palestine": "PS",
    "Palestinian territories": "PS",
    "Palestinian Territory": "PS",
    "Occupied Palestinian Territory": "PS",
    "Palestinian National Authority": "PS",
    "Palestinian Authority": "PS",
    "West Bank": "PS",
    "Gaza Strip": "PS",
    "Northern Cyprus": "CY",
    "Turkish Republic of Northern Cyprus": "CY",
    # Misspellings found in the shared Wikipedia file, kept so its rows are not lost.
    "Grece": "GR",
    "Kazakhstah": "KZ",
    "Madagaskar": "MG",
    "Surinam": "SR",
    "Island": "IS",  # Icelandic and German for Iceland (the Norðurþing row)
}

# "Réunion, France" or "Brandenburg, Germany": the place, then the country it belongs to.
_QUALIFIED = re.compile(r"^(?P<head>.+?)\s*,\s*(?P<tail>[^,]+)$")
_PARENTHESES = re.compile(r"\s*\([^)]*\)\s*$")


@lru_cache(maxsize=1)
def _index():
    """Folded name → code, built once: exact names first, then names derived from ISO's
    inverted forms ("Korea, Republic of" → "Republic of Korea"), then aliases."""
    exact, derived = {}, {}
    for country in pycountry.countries:
        code = country.alpha_2
        for attr in ("name", "official_name", "common_name", "alpha_2", "alpha_3"):
            value = getattr(country, attr, None)
            if value:
                exact.setdefault(fold(value), code)
        head, _, tail = country.name.partition(", ")
        if tail:
            derived.setdefault(fold(f"{tail} {head}"), set()).add(code)
            derived.setdefault(fold(head), set()).add(code)
    for code, name in countries:
        # The site's own codes too (XK for Kosovo is not ISO's), so that every country code
        # the exports write reads back in.
        exact.setdefault(fold(code), code)
        exact.setdefault(fold(name), code)
    index = {key: codes.pop() for key, codes in derived.items() if len(codes) == 1}
    index.update(exact)
    index.update({fold(name): code for name, code in ALIASES.items()})
    return index


def _lookup(text):
    key = fold(text)
    if key.startswith("the "):
        key = key[4:]
    return _index().get(key)


@lru_cache(maxsize=4096)
def country_code(name):
    """The ISO 3166-1 alpha-2 code for a country name as written in a file, or None.

    Accepts ISO names and codes, common English names, the names in ALIASES, and the
    qualified forms real lists use: "Wales, United Kingdom", "Réunion, France" (an overseas
    region with its own ISO code), "Georgia (country)", "in Italy".
    """
    text = (name or "").strip()
    if not text:
        return None
    code = _lookup(text)
    if code:
        return code
    if text.lower().startswith("in "):
        return country_code(text[3:])
    bare = _PARENTHESES.sub("", text)
    if bare != text and bare:
        return country_code(bare)
    match = _QUALIFIED.match(text)
    if match:
        # The place itself when ISO gives it a code (Réunion → RE), else the country named
        # after the comma (Brandenburg, Germany → DE).
        return _lookup(match["head"]) or _lookup(match["tail"])
    return None


def split_qualified_name(name):
    """("Varna", "BG") for "Varna, Bulgaria": a city name carrying its country after a comma,
    as some rows do when their country column is empty; None when the tail is no country."""
    match = _QUALIFIED.match((name or "").strip())
    if not match:
        return None
    code = _lookup(match["tail"])
    return (match["head"], code) if code else None


# Codes one place may be filed under by different lists: a country and its overseas parts,
# which ISO codes apart (Pointe-à-Pitre is FR in one list, GP in another), and territories
# whose country is disputed. Elsewhere two same-named cities at one point across a border
# are two places, one geocoded on the other (Florence, US drawn on Florence, Italy), or
# border twins (Nogales, MX and US): the location check is for those, not this queue.
FILED_EITHER_WAY = (
    {"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF"},
    {"US", "PR", "GU", "VI", "AS", "MP"},
    {"GB", "GG", "JE", "IM", "GI", "BM", "KY", "VG", "TC", "MS", "AI", "FK", "SH"},
    {"NL", "AW", "CW", "SX", "BQ"},
    {"DK", "GL", "FO"},
    {"NO", "SJ"},
    {"AU", "CX", "CC", "NF"},
    {"NZ", "CK", "NU"},
    {"CN", "HK", "MO", "TW"},
    {"FI", "AX"},
    {"UA", "RU"},
    {"GE", "RU"},
    {"RS", "XK"},
    {"IL", "PS"},
    {"MA", "EH"},
    {"CY", "TR"},
    {"AZ", "AM"},
    {"SD", "SS"},
)
_FILED_TOGETHER = {(a, b) for group in FILED_EITHER_WAY for a in group for b in group}


def filed_together(code, other):
    """May one place be filed under either code by different lists (FR and GP, RS and XK)?"""
    return (code, other) in _FILED_TOGETHER
