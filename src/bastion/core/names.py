"""Canonical forms of names people type: one spelling per person, tenant or key name."""

from __future__ import annotations

import re
import unicodedata


def canonical_name(name: str) -> str:
    """NFKC, then casefold, then trimmed: ``Alice@Example.COM`` and its full-width twin meet."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


# A surrogate code point left in a str is a lone one (JSON's "\ud800"; a pair is one character):
# it has no UTF-8 form and would raise in every hash, database driver and log writer.
_SURROGATE = re.compile("[\ud800-\udfff]")


def well_formed(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it is well-formed Unicode."""
    return _SURROGATE.sub("\ufffd", text)
