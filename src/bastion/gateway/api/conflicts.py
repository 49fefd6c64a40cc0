"""A value that must be unique, said for the caller when it is taken: "a user named
bob@example.com already exists" rather than the storage layer's "create principal: a value
that must be unique is already taken". Other conflicts keep their own words."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bastion.errors import ConflictError

# What every backend says when a unique constraint refuses a row (bastion.backends).
_UNIQUE = "must be unique"


@contextmanager
def unique(message: str) -> Iterator[None]:
    """Inside, a unique value that is taken is a `ConflictError` saying ``message``."""
    try:
        yield
    except ConflictError as exc:
        if _UNIQUE not in str(exc):
            raise
        raise ConflictError(message) from None
