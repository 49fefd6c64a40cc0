"""Canonical forms of names people type: one spelling per person, tenant or key name."""

from __future__ import annotations

import unicodedata


def canonical_name(name: str) -> str:
    """NFKC, then casefold, then trimmed: ``Alice@Example.COM`` and its full-width twin meet."""
    return unicodedata.normalize("NFKC", name).casefold().strip()
