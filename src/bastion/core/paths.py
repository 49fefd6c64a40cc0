"""Request-path canonicalisation (DESIGN.md section 7.2): reject ambiguity, never normalise.

A path is accepted only if it has exactly one reading. Anything a proxy, a framework and an
upstream might read differently is refused outright: dot segments, empty segments (``//``),
``;`` parameters, backslashes, control characters and white space, percent-encoded ``/``, ``\\``,
``.``, ``%`` and ``;``, and malformed percent-escapes. The accepted path is decoded exactly once.
An encoded ``;`` is refused like a raw one: the upstream client (yarl) sends ``%3B`` as ``;``,
which Java servers read as a parameter separator (``/patterns/secret%3Bx`` would reach them as
``/patterns/secret``, while bastion decided on the resource ``secret;x``).
"""

from __future__ import annotations

import re

# RFC 3986 pchar plus "/", without ";" (matrix parameters are a classic bypass) and without "%"
# (checked separately as part of a percent-escape).
_ALLOWED_RAW = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,=:@/%]*")
_ESCAPE = re.compile(r"%(?P<hex>[0-9A-Fa-f]{2})")
_FORBIDDEN_ENCODED = {0x2F, 0x5C, 0x2E, 0x25, 0x3B}  # / \ . % ;


class NonCanonicalPathError(ValueError):
    """The path has more than one possible reading; the reason is safe to show."""


def canonical_path(raw_path: bytes | str) -> str:
    """Validate a raw request path (no query string) and return it decoded once."""
    if isinstance(raw_path, bytes):
        try:
            raw = raw_path.decode("ascii")
        except UnicodeDecodeError:
            raise NonCanonicalPathError("path contains raw non-ASCII bytes") from None
    else:
        raw = raw_path
    if not raw.startswith("/"):
        raise NonCanonicalPathError("path must start with /")
    if not _ALLOWED_RAW.fullmatch(raw):
        raise NonCanonicalPathError("path contains a character that must not appear in it")
    # Without escapes the path is its own decoding, and the allowed characters hold no white
    # space or control character.
    decoded = raw if "%" not in raw else _decoded(raw)
    segments = decoded.split("/")[1:]
    if len(segments) > 1 and "" in segments[:-1]:
        raise NonCanonicalPathError("path contains an empty segment (//)")
    if "." in segments or ".." in segments:
        raise NonCanonicalPathError("path contains a dot segment")
    return decoded


def _decoded(raw: str) -> str:
    if _ESCAPE.sub("", raw).count("%"):
        raise NonCanonicalPathError("path contains a malformed percent-escape")
    for match in _ESCAPE.finditer(raw):
        if int(match["hex"], 16) in _FORBIDDEN_ENCODED:
            raise NonCanonicalPathError("path contains an encoded /, \\, ., % or ;")
    decoded_bytes = _ESCAPE.sub(lambda m: chr(int(m["hex"], 16)), raw).encode("latin-1")
    try:
        decoded = decoded_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise NonCanonicalPathError("path is not valid UTF-8 once decoded") from None
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in decoded):
        raise NonCanonicalPathError("path contains white space or a control character")
    return decoded
