"""Names for matching and search: folding (case, accents, look-alike letters, scripts) and
the split of a qualified name ("Setagaya (Tokyo)") into the place and where it is."""

import re

from anyascii import anyascii

_SPACES = re.compile(r"[^a-z0-9]+")


def fold(name):
    """A name reduced to lower-case ASCII words: "Constanţa" and "Constanța" both give
    "constanta", "Одеса" gives "odesa", "São Paulo" gives "sao paulo"."""
    name = name or ""
    # anyascii costs a dictionary look-up per character: skip it where there is nothing to do.
    return _SPACES.sub(" ", (name if name.isascii() else anyascii(name)).lower()).strip()


_QUALIFIER = re.compile(r"\s*\([^)]*\)\s*$")
# A qualifier made only of these words names a kind of body ("Göttingen (district)",
# "Sanok (rural gmina)"), not where the place is.
_BODY_WORDS = {
    "district", "county", "gmina", "communaute", "commune", "municipality", "municipal",
    "borough", "township", "region", "province", "prefecture", "department", "canton",
    "oblast", "raion", "rayon", "arrondissement", "agglomeration", "community", "metropolitan",
    "urban", "rural", "city", "town", "village", "parish", "ward", "council", "shire", "kreis",
    "landkreis", "local", "government", "area", "of", "the", "de",
}  # fmt: skip


def name_parts(name):
    """Split a name into the place and the qualifier that says where it is:
    "Setagaya (Tokyo)", "Tokyo – Setagaya" → ("Setagaya", "tokyo"); "Bayside, Victoria" →
    ("Bayside", "victoria"); a bare name → (name, ""). A qualifier naming a kind of body
    ("Göttingen (district)", "Sanok (rural gmina)") is no qualifier: the district around a town
    is not the town, so such a name stays whole. Only the qualifier's first word is kept, so
    that "Budapest XI – Újbuda" and "Újbuda (Budapest)" agree."""
    match = _QUALIFIER.search(name)
    if match:
        head, where = name[: match.start()], match.group().strip(" ()")
    elif " – " in name:
        where, _, head = name.partition(" – ")
    else:
        head, _, where = name.partition(",")
    head, where = head.strip(), fold(where)
    if not where or not head or set(where.split()) <= _BODY_WORDS:
        return name, ""
    return head, where.split()[0]
