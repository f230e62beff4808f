"""A brute-force reference model of the snapshot index, built from an operations log.

An op is ``Op(key, version_id, time_ms, is_delete, size, etag)``. A history is a list of ops in
*chain order*: the order in which S3 applied them. Per key, times never decrease along the chain,
but several versions of one key may share a time (the same second, or even the same
millisecond); their order is the chain order, never the time.

Every function here is the definition from DESIGN.md ("Words and their exact meaning") written
as plainly as possible, with no cleverness, so the index can be checked against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from infinstor_jlab.index import VersionEntry


class Op(NamedTuple):
    key: str
    version_id: str
    time_ms: int
    is_delete: bool
    size: int
    etag: str


View = Mapping[str, Op]


def _newest_in(ops: Iterable[Op], lo: int | None, hi: int) -> dict[str, Op]:
    """Per key, the newest op in chain order with lo <= time <= hi (lo=None: unbounded)."""
    newest: dict[str, Op] = {}
    for op in ops:  # chain order: a later op of the same key is newer
        if op.time_ms <= hi and (lo is None or op.time_ms >= lo):
            newest[op.key] = op
    return {k: op for k, op in newest.items() if not op.is_delete}


def snapshot(ops: Sequence[Op], t: int) -> dict[str, Op]:
    """Snapshot at T: per key the newest version with time <= T; absent if a delete marker."""
    return _newest_in(ops, None, t)


def slice(ops: Sequence[Op], t1: int, t2: int) -> dict[str, Op]:
    """Slice [T1, T2]: per key the newest version with T1 <= time <= T2; absent if that is a
    delete marker or there is none."""
    return _newest_in(ops, t1, t2)


def view(ops: Sequence[Op], end_ms: int, start_ms: int | None = None) -> dict[str, Op]:
    return snapshot(ops, end_ms) if start_ms is None else slice(ops, start_ms, end_ms)


class Diff(NamedTuple):
    added: dict[str, Op]  # key -> the version in snapshot T2
    deleted: dict[str, Op]  # key -> the version in snapshot T1
    modified: dict[str, tuple[str, str]]  # key -> (version id at T1, version id at T2)


def diff(ops: Sequence[Op], t1: int, t2: int) -> Diff:
    """Diff T1 -> T2: added (in snapshot T2, not T1), deleted (in T1, not T2), modified (in
    both, different version ids). T1 may be later than T2."""
    a = snapshot(ops, t1)
    z = snapshot(ops, t2)
    return Diff(
        added={k: op for k, op in z.items() if k not in a},
        deleted={k: op for k, op in a.items() if k not in z},
        modified={
            k: (a[k].version_id, z[k].version_id)
            for k in a.keys() & z.keys()
            if a[k].version_id != z[k].version_id
        },
    )


def listing(
    view: View,
    prefix: str = "",
    delimiter: str | None = None,
    start_after: str | None = None,
) -> tuple[list[Op], list[str]]:
    """S3 ListObjectsV2 over a view: (objects sorted by key, common prefixes sorted).

    Keys compare as UTF-8 bytes, which is the same order as Python's code-point order. Keys
    after ``start_after`` only; a key whose remainder after ``prefix`` contains ``delimiter``
    rolls up into the common prefix ending at that delimiter's first occurrence, which is
    listed only when it too sorts after ``start_after`` (S3 lists entries after it; paging
    ListObjects V1 by NextMarker = the last common prefix relies on this).
    """
    objects: list[Op] = []
    prefixes: set[str] = set()
    for key in sorted(view):
        if not key.startswith(prefix):
            continue
        if start_after is not None and key <= start_after:
            continue
        if delimiter:
            i = key.find(delimiter, len(prefix))
            if i >= 0:
                cp = key[: i + len(delimiter)]
                if start_after is None or cp > start_after:
                    prefixes.add(cp)
                continue
        objects.append(view[key])
    return objects, sorted(prefixes)


def chains(ops: Sequence[Op]) -> dict[str, list[Op]]:
    """Per key, its versions newest first (reverse chain order)."""
    out: dict[str, list[Op]] = {}
    for op in ops:
        out.setdefault(op.key, []).append(op)
    return {k: list(reversed(v)) for k, v in out.items()}


def history(ops: Sequence[Op], key: str) -> list[Op]:
    return chains(ops).get(key, [])


def to_entry(op: Op, *, precise: bool = False) -> VersionEntry:
    return VersionEntry(op.key, op.version_id, op.time_ms, op.size, op.etag, op.is_delete, precise)


def listing_entries(ops: Sequence[Op]) -> list[VersionEntry]:
    """What ListObjectVersions returns: keys ascending, each key's versions and delete markers
    interleaved newest first (chain order)."""
    by_key = chains(ops)
    return [to_entry(op) for key in sorted(by_key) for op in by_key[key]]


def count_in_range(ops: Sequence[Op], prefix: str, t1: int, t2: int) -> tuple[int, int]:
    """(versions, delete markers) under ``prefix`` with t1 <= time <= t2."""
    created = deleted = 0
    for op in ops:
        if op.key.startswith(prefix) and t1 <= op.time_ms <= t2:
            if op.is_delete:
                deleted += 1
            else:
                created += 1
    return created, deleted
