"""Rows of the ``versions`` table: flags, packing, and the tuning constants of the scans
(module attributes, read at use, so that tests can turn them)."""

from __future__ import annotations

import operator
from typing import Any, TypeAlias

from ..codec import (
    pack_version,
    unpack_version,
)
from ..models import (
    LabelRecord,
    ObjectVersion,
)

# A row as a statement returns it, or as a write builds it: its columns are the statement's.
Row: TypeAlias = tuple[Any, ...]

F_DELETE = 1  # the row is a delete marker

F_PRECISE = 2  # t carries real milliseconds (from an event or a ms-precise listing)

# Versions newer than (scan start - margin) may be missing from a listing simply because they
# were written after the scan passed their key; a scan never prunes those.
PRUNE_MARGIN_MS = 5 * 60 * 1000

LARGE_FOLDER_VERSIONS = 200

# A listing steps over at most this many rows of a rolled-up folder that is not large before
# it re-seeks past it instead.
STREAM_SKIP_ROWS = 48

# How many large folders a scan segment looks ahead for one it can skip.
SKIP_LOOKAHEAD = 8

# An enumeration that has stepped over this many older versions, at least one for every two
# keys, lets SQLite pick each key's newest version (GROUP BY) instead of handing every row to
# Python: most keys have several versions there (~20% faster at ~3 versions a key), while a
# GROUP BY costs ~8% where keys have one version.
GROUP_AFTER_OLDER_ROWS = 256

_R_OFFSET = 1 << 19  # packs (t, r) into one integer for max() over the time index

# Width of a timeline_hours row; an index keeps the width it was created with (meta).
TIMELINE_ROLLUP_MS = 3_600_000

_UPSERT = "INSERT OR REPLACE INTO versions(b, key, t, r, packed, f, seq) VALUES(?,?,?,?,?,?,?)"

# The columns a write reads back; _unpacked makes such a row (key, t, r, vid, size, etag, f,
# seq) with vid and etag encoded, and _packed_row takes (b, key, t, r, vid, size, etag, f,
# seq) the same way and makes the row _UPSERT writes.
_STORED_COLUMNS = "key, t, r, packed, f, seq"


def _unpacked(row: Row) -> Row:
    vid, size, etag, _ = unpack_version(row[3])
    return (row[0], row[1], row[2], vid, size, etag, row[4], row[5])


def _packed_row(row: Row) -> Row:
    """An unpacked row to write, as _UPSERT takes it."""
    return (
        row[0],
        row[1],
        row[2],
        row[3],
        pack_version(row[4], row[5], row[6], bool(row[7] & F_DELETE)),
        row[7],
        row[8],
    )


_first = operator.itemgetter(0)


def _to_version(row: Row, *, latest: bool = False) -> ObjectVersion:
    """An ObjectVersion from a row (key, t, r, packed, f)."""
    return ObjectVersion.from_stored(row[0], row[3], row[1], bool(row[4] & F_DELETE), latest)


def label_from_row(row: Row) -> LabelRecord:
    return LabelRecord(*row)
