"""The fingerprint of a view: SHA-256 over its sorted (key, version id) pairs.

Each pair is serialised as one line of compact JSON, ``["<key>","<version id>"]\\n``, with
keys in S3 order (UTF-8 byte order); JSON makes the encoding unambiguous for any key.
Anyone holding a manifest can recompute it with a few lines of code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable


def fingerprint_line(key: str, version_id: str) -> bytes:
    return (json.dumps([key, version_id], ensure_ascii=False, separators=(",", ":")) + "\n").encode(
        "utf-8"
    )


def fingerprint(pairs: Iterable[tuple[str, str]], *, presorted: bool = False) -> str:
    items = pairs if presorted else sorted(pairs, key=lambda p: p[0].encode("utf-8"))
    h = hashlib.sha256()
    for key, version_id in items:
        h.update(fingerprint_line(key, version_id))
    return "sha256:" + h.hexdigest()
