"""Backend-neutral key helpers: the end of a prefix range and signed page tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from ..errors import BadRequest


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    Python compares code points and SQLite compares UTF-8 bytes; both orders agree.
    """
    if prefix:
        c = ord(prefix[-1])
        if c < 0xD7FF or 0xE000 <= c < 0x10FFFF:  # the common case: bump the last character
            return prefix[:-1] + chr(c + 1)
    chars = list(prefix)
    while chars:
        c = ord(chars[-1])
        if c < 0x10FFFF:
            c += 1
            if 0xD800 <= c <= 0xDFFF:  # surrogates cannot be stored; skip past them
                c = 0xE000
            chars[-1] = chr(c)
            return "".join(chars)
        chars.pop()
    return None


BAD_TOKEN_MESSAGE = (
    "The page token is not valid (it was not issued by this index, or was changed); pass "
    "back exactly the next_token a previous page returned, or leave it out to start from "
    "the first page."
)

#: Bytes of the HMAC-SHA256 kept in a token: 128 bits cannot be guessed.
_TOKEN_MAC_BYTES = 16


def _token_mac(secret: bytes, payload: str) -> str:
    mac = hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()[:_TOKEN_MAC_BYTES]
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def _encode_token(secret: bytes, position: str, inclusive: bool) -> str:
    """``<base64url JSON {"p": position, "i": inclusive}>.<its HMAC>``, signed with the
    index's own secret: a token resumes only where a listing of this index left off."""
    raw = json.dumps({"p": position, "i": inclusive}, ensure_ascii=False).encode("utf-8")
    payload = base64.urlsafe_b64encode(raw).decode("ascii")
    return f"{payload}.{_token_mac(secret, payload)}"


def _decode_token(secret: bytes, token: str) -> tuple[str, bool]:
    payload, dot, mac = token.partition(".")
    try:
        if not dot or not hmac.compare_digest(
            mac.encode("ascii"), _token_mac(secret, payload).encode("ascii")
        ):
            raise ValueError("bad signature")
        data = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")).decode("utf-8"))
        position, inclusive = data["p"], data["i"]
        if not isinstance(position, str) or not isinstance(inclusive, bool):
            raise TypeError("bad fields")
        return position, inclusive
    except Exception as exc:
        raise BadRequest(BAD_TOKEN_MESSAGE) from exc


def start_position(
    secret: bytes, prefix: str, token: str | None, start_after: str | None
) -> tuple[str, bool]:
    """Where a listing page starts (a key, and whether it is itself included): the furthest
    of the prefix, ``start_after`` (exclusive) and a page token signed with ``secret``."""
    pos, inclusive = prefix, True
    if start_after is not None and start_after >= pos:
        pos, inclusive = start_after, False
    if token:
        tpos, tinc = _decode_token(secret, token)
        if (tpos, not tinc) > (pos, not inclusive):
            pos, inclusive = tpos, tinc
    return pos, inclusive
