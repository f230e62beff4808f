"""Write paths' pure parts: merging a listed chain of one key with the stored one, placing
event versions in a chain, and the per-folder statistics a write adjusts."""

from __future__ import annotations

import operator
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any

from ..codec import (
    encode_etag,
    encode_version_id,
)
from ..models import (
    VersionEntry,
    sequencer_sort_key,
)
from . import rows as _rows
from .rows import (
    F_DELETE,
    F_PRECISE,
    Row,
    _packed_row,
)


class _FolderStats:
    """Accumulates (first_t, last_t, count) per folder for rows written in one transaction,
    and the exact change of rows per timeline hour (``hours``: hour -> [created, deleted],
    +1 per row added, -1 per row removed) while the bucket keeps timeline_hours (``width``
    0: it does not yet)."""

    __slots__ = ("by_dir", "hours", "width")

    def __init__(self, width: int) -> None:
        self.by_dir: dict[str, list[int]] = {}
        self.hours: dict[int, list[int]] = {}
        self.width = width

    def _add_hour(self, h: int, f: int, n: int) -> None:
        c = self.hours.get(h)
        if c is None:
            c = self.hours[h] = [0, 0]
        c[f & F_DELETE] += n

    def count(self, t: int, f: int, delta: int) -> None:
        """A row at time ``t`` added (delta 1) or removed (-1)."""
        if self.width:
            self._add_hour(t // self.width, f, delta)

    def count_times(self, times: list[int], f: int) -> None:
        """Rows added at these times (all versions, or all delete markers: ``f``)."""
        if self.width:
            for h, n in Counter(map(operator.floordiv, times, repeat(self.width))).items():
                self._add_hour(h, f, n)

    def count_rows(self, rows: Iterable[tuple[int, int]], delta: int) -> None:
        """``rows``: (t, f) of rows added (delta 1) or removed (-1)."""
        for t, f in rows:
            self.count(t, f, delta)

    def add(self, key: str, t: int) -> None:
        d = key[: key.rfind("/") + 1]
        s = self.by_dir.get(d)
        if s is None:
            self.by_dir[d] = [t, t, 1]
        else:
            s[0] = min(s[0], t)
            s[1] = max(s[1], t)
            s[2] += 1

    def rollup(self) -> dict[str, list[int]]:
        """Fold each directory's figures into all its ancestors (root is "")."""
        out: dict[str, list[int]] = {}
        for d, (lo, hi, n) in self.by_dir.items():
            pos = 0
            ancestors = [""]
            while True:
                i = d.find("/", pos)
                if i < 0:
                    break
                ancestors.append(d[: i + 1])
                pos = i + 1
            for a in ancestors:
                s = out.get(a)
                if s is None:
                    out[a] = [lo, hi, n]
                else:
                    s[0] = min(s[0], lo)
                    s[1] = max(s[1], hi)
                    s[2] += n
        return out


def merge_chain(
    b: int,
    key: str,
    chain: Sequence[VersionEntry],
    old: list[Row],
    prune_before: int,
    upserts: list[Row],
    deletes: list[Row],
    stats: _FolderStats,
) -> None:
    """Rebuild one key's rows from its complete listing chain (newest first)."""
    old_by_vid = {row[3]: row for row in old}
    items: list[list[Any]] = []  # oldest -> newest: [t, vid_bytes, entry, precise]
    for e in reversed(chain):
        vb = encode_version_id(e[1])
        t = e[2]
        precise = e[6]
        o = old_by_vid.pop(vb, None)
        if o is not None and (o[6] & F_PRECISE) and not precise and o[1] >= t:
            # Keep the more precise time an event gave us. A listed time can be seconds
            # before S3 finished the object (a multipart upload's is its initiation); the
            # event carries when S3 finished it, from which on the object is visible. An
            # event time before the listed second contradicts S3's listing, which wins.
            t = o[1]
            precise = True
        items.append([t, vb, e, precise, o[7] if o is not None else None])
    # A newer version cannot be older than the one it replaced: lift coarse times.
    prev = None
    for it in items:
        if prev is not None and it[0] < prev:
            it[0] = prev
        prev = it[0]
    # Versions the listing lacks but that are too recent to prune: written after the scan
    # passed this key, or deleted since. They take their place by time; within one
    # millisecond they keep their old order relative to the listed versions they were
    # known with, and go above listed versions new to the index.
    old_rank = {
        row[3]: i
        for i, row in enumerate(sorted(old, key=lambda row: (row[1], row[2]), reverse=True))
    }  # 0 = newest
    kept = sorted(
        (row for row in old_by_vid.values() if row[1] >= prune_before),
        key=lambda row: old_rank[row[3]],
    )
    rebuilt: list[Row] = []  # newest first: (t, vid, size, etag_b, f, seq)
    for it in reversed(items):
        e = it[2]
        f = (F_DELETE if e[5] else 0) | (F_PRECISE if it[3] else 0)
        rebuilt.append((it[0], it[1], e[3], encode_etag(e[4]), f, it[4]))
    for row in kept:
        t, rank = row[1], old_rank[row[3]]
        pos = 0
        while pos < len(rebuilt):
            ct, cvid = rebuilt[pos][0], rebuilt[pos][1]
            if ct > t:
                pos += 1
                continue
            if ct == t and old_rank.get(cvid, len(old_rank)) < rank:
                pos += 1  # a listed version it knew as newer stays above it
                continue
            break
        rebuilt.insert(pos, (t, row[3], row[4], row[5], row[6], row[7]))
    new_rows: dict[tuple[int, int], Row] = {}
    prev_t = None
    r = 0
    for t, vb, size, eb, f, seq in rebuilt:
        r = r - 1 if t == prev_t else 0
        prev_t = t
        new_rows[(t, r)] = (b, key, t, r, vb, size, eb, f, seq)
    old_by_pos = {(row[1], row[2]): row for row in old}
    for at in old_by_pos:
        if at not in new_rows:
            deletes.append((b, key, at[0], at[1]))
    for at, nrow in new_rows.items():
        orow = old_by_pos.get(at)
        if orow is None or orow[3:] != nrow[4:]:
            upserts.append(_packed_row(nrow))
            stats.add(key, at[0])
    # The key's rows go from old to new_rows: the timeline hours change by exactly that.
    stats.count_rows(((row[1], row[6]) for row in old), -1)
    stats.count_rows(((row[2], row[7]) for row in new_rows.values()), 1)


def refine(chain: list[list[Any]], at: int, t: int, precise: bool, seq: str | None) -> None:
    """A version we know, seen again: keep its place in the chain; take a more precise
    time (at or after the listed one) and lift newer versions up to it."""
    row = chain[at]
    if seq and not row[5]:
        row[5] = seq
    if not precise or row[4] & F_PRECISE or t < row[0]:
        return  # (an event time before the listed one: see merge_chain)
    row[0] = t
    row[4] |= F_PRECISE
    for newer in chain[:at]:
        newer[0] = max(newer[0], t)


def insert_position(chain: list[list[Any]], t: int, seq: str | None) -> int:
    """Where a version learned alone goes in a chain (newest first): after every version
    with a later time, and among versions of the same millisecond by S3 event sequencer
    when both have one; otherwise on top (events mostly arrive in order, and the next
    listing pass fixes any other case)."""
    for i, row in enumerate(chain):
        if row[0] > t:
            continue
        if row[0] == t and seq and row[5] and sequencer_sort_key(row[5]) > sequencer_sort_key(seq):
            continue
        return i
    return len(chain)


def save_stats(conn: sqlite3.Connection, b: int, stats: _FolderStats, *, look: bool = True) -> None:
    changed = [(b, h, c[0], c[1]) for h, c in stats.hours.items() if c[0] or c[1]]
    if changed:
        conn.executemany(
            "INSERT INTO timeline_hours(b, h, created, deleted) VALUES(?,?,?,?) "
            "ON CONFLICT(b, h) DO UPDATE SET created=created+excluded.created, "
            "deleted=deleted+excluded.deleted",
            changed,
        )
    if not stats.by_dir:
        return
    rolled = stats.rollup()
    # Snapshot listings skip large folders by their first version time, cached per
    # skip_gen (see _large_folders): it moves when a folder's first time goes back (a
    # cached one would skip a folder that now has a version at T); large_gen moves when
    # a folder becomes large (only so that it gets skipped too). Appends to known
    # folders move neither.
    went_back = became_large = not look
    prefixes = list(rolled) if look else []
    for start in range(0, len(prefixes), 500):
        part = prefixes[start : start + 500]
        seen = set()
        for p, first_t, n in conn.execute(
            f"SELECT prefix, first_t, n FROM folders WHERE b=? AND prefix IN "
            f"({','.join('?' * len(part))})",
            [b, *part],
        ):
            seen.add(p)
            lo, _hi, added = rolled[p]
            if lo < first_t:
                went_back = True
            if n < _rows.LARGE_FOLDER_VERSIONS <= n + added:
                became_large = True
        if not became_large and any(
            rolled[p][2] >= _rows.LARGE_FOLDER_VERSIONS for p in part if p not in seen
        ):
            became_large = True
    conn.executemany(
        "INSERT INTO folders(b, prefix, first_t, last_t, n) VALUES(?,?,?,?,?) "
        "ON CONFLICT(b, prefix) DO UPDATE SET first_t=min(first_t, excluded.first_t), "
        "last_t=max(last_t, excluded.last_t), n=n+excluded.n",
        [(b, p, s[0], s[1], s[2]) for p, s in rolled.items()],
    )
    if went_back or became_large:
        conn.execute(
            "UPDATE buckets SET skip_gen=skip_gen+?, large_gen=large_gen+? WHERE id=?",
            (int(went_back), int(became_large), b),
        )
