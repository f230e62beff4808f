"""SQLite (WAL) snapshot index: the embedded default.

Layout (see docs in the README, "How the index works"):

* ``versions`` is a WITHOUT ROWID table keyed ``(b, key, t DESC, r DESC)``: per key the chain,
  newest first. ``t`` is the version's time in ms, ``r`` orders versions that share a
  millisecond (0 for the newest of such a group, -1 the one before it, ...), so the snapshot
  of one key at T is a single seek: the first row with ``t <= T``.
* Version ids and ETags are stored in compact binary, packed with the size and the
  delete-marker flag into one value (``codec.pack_version``): listings read three columns
  a row (key, t, packed).
* ``versions_by_time_<b>``, one partial index ``(t, f) WHERE b=<b>`` per bucket, serves
  slices of short windows and timelines. It is built by one CREATE INDEX when the bucket's
  first full scan finishes (a sorted build, instead of a random insert per version during
  the scan) and maintained by every write after that. Until then slices and timelines take
  the key-ordered plans, which give the same answers.
* ``timeline_hours`` counts, per bucket and hour, the versions and delete markers whose time
  falls in that hour: the whole bucket's timeline (the sidebar's histogram at the root) adds
  whole hours from it and counts only the partial hours at bin edges through the time index,
  instead of counting every version. Like the time index it is counted once when the first
  full scan ends, and from then on every write adjusts it by exactly the rows it adds and
  removes.
* ``folders`` keeps, per '/'-folder, the first and last version time under it (bounds: exact
  until versions are pruned, which never narrows them)
  and ``n``, the rows ever written under it (an upper bound on its versions, enough to pick
  the folders large enough to be worth skipping). A listing as of an early T skips a large folder whose first version is after T
  instead of scanning its rows (likewise a slice skips folders with nothing after T1).

Listings stream one ordered scan and re-seek only at folder boundaries: when the delimiter
makes a key roll up into a common prefix, the scan jumps to the prefix with its last character
incremented, so a folder costs a few seeks whatever it holds.
"""

from __future__ import annotations

from ..keys import BAD_TOKEN_MESSAGE, prefix_end
from .rows import (
    F_DELETE,
    F_PRECISE,
    GROUP_AFTER_OLDER_ROWS,
    LARGE_FOLDER_VERSIONS,
    PRUNE_MARGIN_MS,
    SKIP_LOOKAHEAD,
    STREAM_SKIP_ROWS,
    TIMELINE_ROLLUP_MS,
)
from .schema import SCHEMA_VERSION, time_index_name
from .store import SqliteSnapshotIndex

__all__ = [
    "BAD_TOKEN_MESSAGE",
    "F_DELETE",
    "F_PRECISE",
    "GROUP_AFTER_OLDER_ROWS",
    "LARGE_FOLDER_VERSIONS",
    "PRUNE_MARGIN_MS",
    "SCHEMA_VERSION",
    "SKIP_LOOKAHEAD",
    "STREAM_SKIP_ROWS",
    "TIMELINE_ROLLUP_MS",
    "SqliteSnapshotIndex",
    "prefix_end",
    "time_index_name",
]
