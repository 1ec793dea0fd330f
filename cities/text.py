"""Folding of names for matching and search: case, accents, look-alike letters, scripts."""

import re

from anyascii import anyascii

_SPACES = re.compile(r"[^a-z0-9]+")


def fold(name):
    """A name reduced to lower-case ASCII words: "Constanţa" and "Constanța" both give
    "constanta", "Одеса" gives "odesa", "São Paulo" gives "sao paulo"."""
    return _SPACES.sub(" ", anyascii(name or "").lower()).strip()
