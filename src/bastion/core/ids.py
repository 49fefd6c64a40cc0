"""Identifier formats: a short type prefix and random hex, e.g. ``evt_3f9a…``, ``req_…``."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """A 128-bit random identifier with a readable type prefix."""
    return f"{prefix}_{secrets.token_hex(16)}"
