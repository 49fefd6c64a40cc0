"""Whether an imported password hash is one bastion can verify, told by its structure alone
(verifying would cost a hash): a bcrypt hash or an Argon2id PHC string, at a cost a login can
afford. Used by `passwordHash` in the admin API, `bastion user create --password-hash` and
`security.authentication.basicAuth.users` in bastion.yaml.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = [
    "ARGON2ID_FORM",
    "BCRYPT_FORM",
    "MAX_ARGON2_MEMORY_KIB",
    "MAX_BCRYPT_COST",
    "hash_problem",
]

# Modular crypt format: $2a$, $2b$ or $2y$, a two-digit cost 04-31, 22 characters of salt and
# 31 of hash in bcrypt's base64 alphabet. Those encode 16 and 23 bytes, so the last character
# of each leaves 4 and 2 bits unused, which must be zero ("Invalid salt" at every login else).
_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_BCRYPT = re.compile(
    r"\$2[aby]\$(?:0[4-9]|[12][0-9]|3[01])\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})"
)
# The PHC string argon2-cffi writes and verifies: version 19, decimal parameters without
# leading zeros, salt and hash in standard base64 without padding.
_ARGON2ID = re.compile(
    r"\$argon2id\$v=19\$m=([1-9][0-9]{0,9}),t=([1-9][0-9]{0,9}),p=([1-9][0-9]{0,7})"
    r"\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)"
)
# RFC 9106 section 3.1 allows m up to 2^32-1 KiB, t up to 2^32-1 and p up to 2^24-1, but every
# login (and every failed attempt) for the user pays the hash's cost in the bounded pool, so an
# import may cost at most what a deliberate deployment would choose: 1 GiB, 10 passes, 16 lanes
# (OWASP: 19 MiB, 2 passes, 1 lane); bcrypt at most cost 16 (about 4 s here; OWASP: 10).
MAX_ARGON2_MEMORY_KIB = 1024 * 1024
MAX_ARGON2_PASSES = 10
MAX_ARGON2_LANES = 16
MAX_BCRYPT_COST = 16
BCRYPT_FORM = (
    "$2a$, $2b$ or $2y$, a two-digit cost from 04 to 31, $, then 53 characters of bcrypt base64"
)
ARGON2ID_FORM = "$argon2id$v=19$m=…,t=…,p=…$ then salt and hash in base64 without padding"


def hash_problem(hashed: str) -> str | None:
    """Why ``hashed`` is not a hash bastion can verify, or None: a well-formed bcrypt hash or
    Argon2id PHC string, checked by its structure (verifying would cost a hash). The reason
    never quotes the hash."""
    if hashed.startswith(("$2a$", "$2b$", "$2y$")):
        match = _BCRYPT.fullmatch(hashed)
        if match is None or not (_bits_clear(match[1][-1], 4) and _bits_clear(match[2][-1], 2)):
            return f"a bcrypt hash must be {BCRYPT_FORM}"
        if int(hashed[4:6]) > MAX_BCRYPT_COST:
            return f"a bcrypt cost above {MAX_BCRYPT_COST} would make every login too slow"
        return None
    if hashed.startswith("$argon2id$"):
        return _argon2id_problem(hashed)
    return "must be a bcrypt ($2b$…) or Argon2id ($argon2id$…) hash"


def _bits_clear(last: str, unused: int) -> bool:
    return _BCRYPT_ALPHABET.index(last) % (1 << unused) == 0


def _argon2id_problem(hashed: str) -> str | None:
    match = _ARGON2ID.fullmatch(hashed)
    salt = _phc_bytes(match[4]) if match else None
    tag = _phc_bytes(match[5]) if match else None
    if match is None or salt is None or tag is None:
        return f"an Argon2id hash must be {ARGON2ID_FORM}"
    memory, rounds, lanes = int(match[1]), int(match[2]), int(match[3])
    if memory < 8 * lanes:
        return "the Argon2id memory must be at least 8 KiB per lane (m >= 8·p)"
    if memory > MAX_ARGON2_MEMORY_KIB or rounds > MAX_ARGON2_PASSES or lanes > MAX_ARGON2_LANES:
        return (
            f"the Argon2id cost is above m={MAX_ARGON2_MEMORY_KIB}, t={MAX_ARGON2_PASSES}, "
            f"p={MAX_ARGON2_LANES}, which would make every login too slow"
        )
    if len(salt) < 8 or len(tag) < 4:
        return "an Argon2id hash needs a salt of at least 8 bytes and a hash of at least 4"
    return None


def _phc_bytes(text: str) -> bytes | None:
    """Base64 without padding as PHC writes it; None unless it reads back the same."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode().rstrip("=") == text else None
