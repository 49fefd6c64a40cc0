"""The API key format: ``bk_live_`` + 32 base62 characters + a 6-character CRC32 checksum.

The checksum lets a secret scanner (and bastion itself) tell a real key from a typo or a guess
without any look-up, in the manner of GitHub's token format. A key that fails the shape or the
checksum is rejected before any database or hash work is done.
"""

from __future__ import annotations

import zlib

API_KEY_PREFIX = "bk_live_"
# A stored key's id (not the key): "key_" and 32 hex digits (`bastion.core.ids.new_id("key")`).
API_KEY_ID_PREFIX = "key_"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
DISPLAY_PREFIX_LENGTH = len(API_KEY_PREFIX) + 6
API_KEY_LENGTH = len(API_KEY_PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62_SET = frozenset(BASE62)


def base62(number: int, width: int) -> str:
    """``number`` in base62, left-padded with zeros to ``width`` characters."""
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(body: str) -> str:
    """The 6-character base62 CRC32 of the key up to the checksum."""
    return base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def format_api_key(random_part: str) -> str:
    """Assemble a key from its random part (exactly 32 base62 characters)."""
    if len(random_part) != RANDOM_LENGTH or not _BASE62_SET.issuperset(random_part):
        raise ValueError("the random part must be 32 base62 characters")
    body = API_KEY_PREFIX + random_part
    return body + checksum(body)


def is_well_formed_api_key(candidate: str) -> bool:
    """True when ``candidate`` has the shape of a bastion key and its checksum matches."""
    if len(candidate) != API_KEY_LENGTH or not candidate.startswith(API_KEY_PREFIX):
        return False
    tail = candidate[len(API_KEY_PREFIX) :]
    if not _BASE62_SET.issuperset(tail):
        return False
    body, check = candidate[:-CHECKSUM_LENGTH], candidate[-CHECKSUM_LENGTH:]
    return checksum(body) == check


def display_prefix(key: str) -> str:
    """The part of a key that may be shown and stored in clear, to tell keys apart."""
    return key[:DISPLAY_PREFIX_LENGTH]
