"""Canonical forms of names people type: one spelling per person, tenant or key name."""

from __future__ import annotations

import re
import unicodedata


def canonical_name(name: str) -> str:
    """NFKC, then casefold, then trimmed: ``Alice@Example.COM`` and its full-width twin meet."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


# A surrogate code point left in a str is a lone one (JSON's "\ud800"; a pair is one character):
# it has no UTF-8 form and would raise in every hash, database driver and log writer. NUL is
# well-formed, but PostgreSQL can neither store nor compare text that holds it.
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def storable(text: str) -> str:
    """``text`` with every lone surrogate and NUL replaced by U+FFFD: well-formed Unicode that
    every database bastion runs on can store and compare."""
    return _UNSTORABLE.sub("\ufffd", text)
