"""Property-based tests: the snapshot index answers exactly like the brute-force model, on both
backends (every test runs on SQLite and on a real PostgreSQL: the ``backend`` fixture).

Random version histories (puts, overwrites, delete markers, delete-then-recreate, several
versions of one key in the same second or even the same millisecond, keys with spaces, ``+``,
``%``, unicode, ``//``, trailing ``/`` and nested folders) are ingested through
``merge_listing`` (random batch splits at key boundaries) or ``append_versions`` (chain order),
and every query is compared with :mod:`tests.brute`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from unittest import mock

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(__file__))

import brute
from brute import Op

from infinstor_jlab.errors import BadRequest
from infinstor_jlab.index import SqliteSnapshotIndex, VersionEntry
from infinstor_jlab.index import sqlite as sqlite_mod
from infinstor_jlab.index.sqlite import rows as sqlite_rows
from infinstor_jlab.index.sqlite import schema as sqlite_schema

try:
    from infinstor_jlab.index.postgres import PostgresSnapshotIndex
except ImportError:  # pragma: no cover - psycopg missing: the postgres runs skip
    PostgresSnapshotIndex = None  # type: ignore[assignment,misc]

BUCKET = "bkt"
BASE_MS = 1_763_632_800_000  # 2025-11-20T10:00:00Z
FAR_FUTURE_MS = 10**13  # scan_started_ms: every listed version is older than the scan

# No "explain" phase: on a failure it re-runs the test thousands of times to annotate the
# example, which costs minutes here; shrinking alone gives the minimal example.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
MAIN = settings(
    max_examples=150,
    deadline=None,
    database=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SMALL = settings(
    max_examples=60,
    deadline=None,
    database=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KEYS = [
    "a",
    "a b",
    "a+b",
    "a%2Fb",
    "a/",
    "a/b",
    "a/bc",
    "a/b/c",
    "a/b/c/d.txt",
    "a//b",
    "x//",
    "x//y",
    "dir/",
    "dir/sub/",
    "dir/sub/f 1.csv",
    "é",
    "é/x",
    "日本",
    "日本/データ.csv",
    "日本/x y+z",
    "z+%/é",
    "emoji/\U0001f600.png",
    "a\ud7ff",  # the last code point before the surrogates
    "\U0010ffff/x",  # the largest code point: prefix_end() must roll over it
]
QUERY_PREFIXES = [
    "",
    "a",
    "a/",
    "a/b",
    "a/b/",
    "a/b/c/",
    "a//",
    "x/",
    "x//",
    "dir/",
    "dir/sub/",
    "é",
    "日",
    "日本/",
    "z",
    "zz",
    "nomatch/",
    "\ud7ff",
    "\U0010ffff",
    "\U0010ffff/",
]
DELIMITERS = [None, "/", "/", "/", "//", "b"]
AWS_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"


# -- strategies ----------------------------------------------------------------------------------
# Each op of a history is drawn as one "step" tuple, so hypothesis shrinks a history by dropping
# and simplifying steps (toward: first key, same time, a put, a short version id).
def _aws_id(n: int) -> str:
    """32 characters over AWS's version-id alphabet, from one integer (cheap to draw and to
    shrink: 0 -> 'AAA...A')."""
    chars = []
    for _ in range(32):
        n, d = divmod(n, 64)
        chars.append(AWS_ID_ALPHABET[d])
    return "".join(chars)


_vid_st = st.one_of(
    st.integers(0, 2**192 - 1).map(_aws_id),  # AWS-style
    st.integers(0, 2**128 - 1).map(lambda n: str(uuid.UUID(int=n, version=4))),  # moto, MinIO
    st.text(min_size=1, max_size=10),  # anything else an S3 implementation may use
    # long ids sharing a long start: stored with two-byte lengths, matched as whole ids
    st.text(min_size=1, max_size=10).map(lambda s: "L" * 128 + s),
    st.just("null"),  # written before versioning was enabled: only a key's oldest version
)
_etag_st = st.one_of(
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 10000)).map(
        lambda t: f'"{t[0]:032x}"' if t[1] == 0 or t[1] % 4 else f'"{t[0]:032x}-{t[1]}"'
    ),
    st.text(min_size=1, max_size=8).map(lambda s: '"' + "e" * 130 + s + '"'),  # verbatim
)


def _step_st(ms_steps: bool, dense: bool):
    if dense:  # a few busy seconds: many versions per second, most times with real ms
        clock_steps = ["same", "ms", "ms", "next"]
    else:
        clock_steps = ["same", "next", "same", "next", "jump"] + (["ms"] if ms_steps else [])
    return st.tuples(
        st.integers(0, 6),  # which of the history's keys
        st.sampled_from(clock_steps),
        st.integers(1, 400 if dense else 999),  # ms for an "ms" step
        st.integers(2, 5),  # seconds for a "jump" step
        st.integers(0, 3),  # 3: a delete marker
        _vid_st,
        st.integers(0, 10**9),  # size
        _etag_st,
    )


@st.composite
def histories(draw, max_ops: int = 30, ms_steps: bool = True, dense: bool = False) -> list[Op]:
    """A chain of ops (the order S3 applied them); per key, times never decrease. Clock steps:
    the same time (same second, even the same ms), the next whole second, a jump of a few
    seconds, or a few milliseconds (non-round times, as events and Ceph give)."""
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=7, unique=True))
    step = _step_st(ms_steps, dense)
    # A list of bursts, flattened: hypothesis' lists average ~5 elements, too few for long
    # chains, and this stays shrinkable element by element (a min_size would not be).
    bursts = draw(st.lists(st.lists(step, min_size=1, max_size=6), max_size=6))
    steps = [s for burst in bursts for s in burst][:max_ops]
    clock = BASE_MS + draw(st.sampled_from([0, 250]))
    ops: list[Op] = []
    used: set[str] = set()
    seen: set[str] = set()
    for slot, clock_step, ms, jump, kind, vid, size, etag in steps:
        key = keys[slot % len(keys)]
        if clock_step == "next":
            clock = (clock // 1000 + 1) * 1000
        elif clock_step == "jump":
            clock = (clock // 1000 + jump) * 1000
        elif clock_step == "ms":
            clock += ms
        if vid == "null" and key in seen:
            vid = "null-not-oldest"
        n = 0
        base = vid
        while vid in used and vid != "null":  # 'null' is unique per key, not per bucket
            n += 1
            vid = f"{base}~{n}"
        used.add(vid)
        seen.add(key)
        if kind == 3:
            ops.append(Op(key, vid, clock, True, 0, ""))
        else:
            ops.append(Op(key, vid, clock, False, size, etag))
    return ops


def time_candidates(ops: Sequence[Op]) -> list[int]:
    out = {BASE_MS - 1, BASE_MS, FAR_FUTURE_MS}
    for op in ops:
        t = op.time_ms
        out.update(
            {t - 1, t, t + 1, t // 1000 * 1000, t // 1000 * 1000 - 1, t // 1000 * 1000 + 999}
        )
    return sorted(out)


def draw_time(data, ops: Sequence[Op], label: str) -> int:
    cands = time_candidates(ops)
    return data.draw(
        st.one_of(st.sampled_from(cands), st.integers(cands[0], cands[-2] + 2000)), label=label
    )


def draw_slice(data, ops: Sequence[Op], label: str) -> tuple[int, int]:
    """(start, end) of a slice; often starting exactly at a version's time, so that versions
    on the inclusive start edge are in the answers (from candidates alone: ~2% of slices)."""
    end = draw_time(data, ops, f"{label}_end")
    starts = [st.sampled_from(time_candidates(ops))]
    if ops:
        starts.insert(0, st.sampled_from([op.time_ms for op in ops]))
    start = data.draw(st.one_of(*starts), label=f"{label}_start")
    return min(start, end), max(start, end)


def draw_prefix(data, ops: Sequence[Op], label: str = "prefix") -> str:
    from_keys = sorted({op.key[:i] for op in ops for i in range(len(op.key) + 1)})
    choices = QUERY_PREFIXES + from_keys
    return data.draw(st.sampled_from(choices), label=label)


# Every index built here has its bucket's time index and timeline_hours from the start, as a
# bucket has once its first full scan ended (the "time-index" plan writes without them), with
# timeline_hours rows 997 ms wide instead of an hour: the histories span seconds, and rows
# that narrow (and not aligned to seconds) make every write's exact accounting per row
# visible (check_timeline_hours).
ROLLUP_MS = 997


@pytest.fixture(autouse=True, scope="module")
def _steady_state_with_narrow_timeline_rows():
    with (
        mock.patch.object(sqlite_rows, "TIMELINE_ROLLUP_MS", ROLLUP_MS),
        mock.patch.object(sqlite_mod.SqliteSnapshotIndex, "EAGER_TIME_INDEX", True),
    ):
        yield


# -- ingest ----------------------------------------------------------------------------------
# A tmpfs when there is one: each example builds a fresh index, and fsyncs on a disk-backed
# /tmp cost ~100 ms per index (the answers do not depend on the filesystem).
_TMP_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


# -- backends ----------------------------------------------------------------------------------
# Every test runs on both backends. On PostgreSQL an example's "fresh index" is one of a few
# databases made once per module (nested fresh indexes take the next one), emptied before the
# example: a database per example would cost more than the examples. PostgreSQL examples are
# fewer (PG_EXAMPLES_DIVISOR) so that its half of the suite stays within a minute or two; the
# plans that only turn SQLite's scan strategies run on SQLite alone.
PG_EXAMPLES_DIVISOR = int(os.environ.get("INFINSTOR_PG_EXAMPLES_DIVISOR", "4"))
_PG_ONLY_PLANS = {"default", "time-index"}
_STATE: dict = {"backend": "sqlite", "pg": [], "depth": 0}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request):
    if request.param == "sqlite":
        yield "sqlite"
        return
    if PostgresSnapshotIndex is None:
        pytest.skip("psycopg is not installed (pip install 'infinstor_jlab[postgres]')")
    server = request.getfixturevalue("pg_server")
    indexes = [PostgresSnapshotIndex(server.new_database(), max_size=4) for _ in range(2)]
    _STATE["pg"] = indexes
    try:
        yield "postgres"
    finally:
        _STATE["pg"] = []
        for idx in indexes:
            idx.close()


@pytest.fixture(autouse=True)
def _on_backend(backend, request):
    _STATE["backend"] = backend
    fn = request.function
    original = getattr(fn, "_hypothesis_internal_use_settings", None)
    if backend == "postgres":
        if request.node.get_closest_marker("sqlite_only"):
            pytest.skip("about the SQLite index's own layout")
        callspec = getattr(request.node, "callspec", None)
        plan = callspec.params.get("plan") if callspec else None
        if plan is not None and plan not in _PG_ONLY_PLANS:
            pytest.skip(f"the {plan!r} plan turns SQLite's scans only")
        if original is not None:
            fn._hypothesis_internal_use_settings = settings(
                original, max_examples=max(5, original.max_examples // PG_EXAMPLES_DIVISOR)
            )
    try:
        yield
    finally:
        _STATE["backend"] = "sqlite"
        if original is not None:
            fn._hypothesis_internal_use_settings = original


def is_pg(idx) -> bool:
    return PostgresSnapshotIndex is not None and isinstance(idx, PostgresSnapshotIndex)


@contextlib.contextmanager
def fresh_index() -> Iterator[SqliteSnapshotIndex]:
    if _STATE["backend"] == "postgres":
        depth = _STATE["depth"]
        idx = _STATE["pg"][depth]
        with idx._pool.connection() as conn:
            conn.execute("DELETE FROM versions")
            conn.execute("DELETE FROM labels")
            conn.execute("DELETE FROM buckets")
        idx.register_bucket(BUCKET, versioning="Enabled")
        _STATE["depth"] = depth + 1
        try:
            yield idx
        finally:
            _STATE["depth"] = depth
        return
    with tempfile.TemporaryDirectory(prefix="idxprop", dir=_TMP_ROOT) as tmp:
        idx = SqliteSnapshotIndex(os.path.join(tmp, "index.sqlite"))
        try:
            idx.register_bucket(BUCKET, versioning="Enabled")
            yield idx
        finally:
            idx.close()


def split_at_key_boundaries(
    entries: Sequence[VersionEntry], cuts: Sequence[int]
) -> list[tuple[list[VersionEntry], str | None, str | None]]:
    """[(batch, after_key, through_key)]: cuts index into the distinct keys; the last batch is
    open-ended (through_key None), like the last page of a scan."""
    keys = sorted({e.key for e in entries})
    bounds = sorted({c for c in cuts if 0 < c < len(keys)})
    groups: list[list[str]] = []
    prev = 0
    for c in bounds + [len(keys)]:
        groups.append(keys[prev:c])
        prev = c
    out = []
    after: str | None = None
    for gi, group in enumerate(groups):
        members = set(group)
        batch = [e for e in entries if e.key in members]
        through = group[-1] if group and gi < len(groups) - 1 else None
        out.append((batch, after, through))
        if group:
            after = group[-1]
    return out


def merge_all(idx: SqliteSnapshotIndex, ops: Sequence[Op], cuts: Sequence[int]) -> int:
    written = 0
    for batch, after, through in split_at_key_boundaries(brute.listing_entries(ops), cuts):
        written += idx.merge_listing(
            BUCKET, batch, after_key=after, through_key=through, scan_started_ms=FAR_FUTURE_MS
        )
    return written


def append_all(idx: SqliteSnapshotIndex, ops: Sequence[Op], chunks: Sequence[int]) -> int:
    entries = [brute.to_entry(op) for op in ops]  # chain order
    written = 0
    pos = 0
    for size in list(chunks) + [len(entries)]:
        if pos >= len(entries):
            break
        written += idx.append_versions(BUCKET, entries[pos : pos + max(1, size)])
        pos += max(1, size)
    return written


cuts_st = st.lists(st.integers(0, 25), max_size=6)


@contextlib.contextmanager
def query_plan(plan: str) -> Iterator[None]:
    """'default'; 'folder-skip': every folder counts as large so listings skip folders by
    their time range; 'time-index': slices always take the time-index plan."""
    if plan == "default":
        yield
    elif plan == "folder-skip":
        with mock.patch.object(sqlite_rows, "LARGE_FOLDER_VERSIONS", 1):
            yield
    elif plan == "folder-skip-lookahead-1":
        # ... and a scan segment looks only one folder ahead for a skippable one.
        with (
            mock.patch.object(sqlite_rows, "LARGE_FOLDER_VERSIONS", 1),
            mock.patch.object(sqlite_rows, "SKIP_LOOKAHEAD", 1),
        ):
            yield
    elif plan == "short-skip":
        # Listings re-seek past a rolled-up folder after one row instead of stepping over it.
        with mock.patch.object(sqlite_rows, "STREAM_SKIP_ROWS", 1):
            yield
    elif plan == "time-index":
        # Slices through the time-index plan; the bucket's time index is built only when a
        # first scan finishes, so here the plan runs without it (the key-ordered fallback),
        # and the writes keep no timeline_hours.
        with (
            mock.patch.object(
                sqlite_mod.SqliteSnapshotIndex, "_slice_by_time", lambda *a, **k: True
            ),
            mock.patch.object(sqlite_mod.SqliteSnapshotIndex, "EAGER_TIME_INDEX", False),
        ):
            yield
    elif plan == "time-index-built":
        # The same with the bucket's time index built before the first write and maintained
        # by every write after it.
        with (
            mock.patch.object(
                sqlite_mod.SqliteSnapshotIndex, "_slice_by_time", lambda *a, **k: True
            ),
            mock.patch.object(sqlite_mod.SqliteSnapshotIndex, "EAGER_TIME_INDEX", True),
        ):
            yield
    elif plan == "grouped":
        # Enumerations let SQLite pick each key's newest row (GROUP BY) from the first row on,
        # and every folder counts as large, so the grouped scans skip folders too.
        with (
            mock.patch.object(sqlite_rows, "GROUP_AFTER_OLDER_ROWS", 0),
            mock.patch.object(sqlite_rows, "LARGE_FOLDER_VERSIONS", 1),
        ):
            yield
    elif plan == "grouped-switch":
        # ... or switch to it in the middle of a scan, after the first older version.
        with mock.patch.object(sqlite_rows, "GROUP_AFTER_OLDER_ROWS", 1):
            yield
    else:  # pragma: no cover
        raise AssertionError(plan)


# -- comparisons ----------------------------------------------------------------------------------
def ov(o) -> tuple:
    return (o.key, o.version_id, o.last_modified_ms, o.size, o.etag, o.is_delete_marker)


def op_t(op: Op) -> tuple:
    return (op.key, op.version_id, op.time_ms, op.size, op.etag, op.is_delete)


def list_all_pages(
    idx, *, end_ms, start_ms, prefix, delimiter, start_after, page_sizes
) -> tuple[list[tuple], list[str]]:
    objects: list[tuple] = []
    prefixes: list[str] = []
    token = None
    for page_no in range(500):
        max_keys = page_sizes[page_no % len(page_sizes)]
        page = idx.list_view(
            BUCKET,
            end_ms=end_ms,
            start_ms=start_ms,
            prefix=prefix,
            delimiter=delimiter,
            max_keys=max_keys,
            token=token,
            start_after=start_after,
        )
        n = len(page.objects) + len(page.prefixes)
        assert n <= max_keys, (page, max_keys)
        if page.next_token is not None:
            assert n == max_keys, f"truncated page with {n} < max_keys={max_keys} entries"
        objects += [ov(o) for o in page.objects]
        prefixes += page.prefixes
        if page.next_token is None:
            return objects, prefixes
        token = page.next_token
    raise AssertionError("pagination did not terminate")


def check_listing(idx, ops, data, *, with_start_after: bool = True) -> None:
    end = draw_time(data, ops, "end_ms")
    start = None
    if data.draw(st.booleans(), label="is_slice"):
        start, end = draw_slice(data, ops, "slice")
    prefix = draw_prefix(data, ops)
    delimiter = data.draw(st.sampled_from(DELIMITERS), label="delimiter")
    start_after = None
    if with_start_after and data.draw(st.integers(0, 3), label="use_start_after") == 0:
        start_after = data.draw(
            st.sampled_from(KEYS + QUERY_PREFIXES + ["", "0", "a/b/c/zzz", "\U0010ffff"]),
            label="start_after",
        )
    page_sizes = data.draw(st.lists(st.integers(1, 7), min_size=1, max_size=4), label="max_keys")
    got_objs, got_prefixes = list_all_pages(
        idx,
        end_ms=end,
        start_ms=start,
        prefix=prefix,
        delimiter=delimiter,
        start_after=start_after,
        page_sizes=page_sizes,
    )
    want_objs, want_prefixes = brute.listing(
        brute.view(ops, end, start), prefix, delimiter, start_after
    )
    assert got_objs == [op_t(o) for o in want_objs]
    assert got_prefixes == want_prefixes


def check_iter_view(idx, ops, data) -> None:
    end = draw_time(data, ops, "iter_end")
    start = None
    if data.draw(st.booleans(), label="iter_is_slice"):
        start, end = draw_slice(data, ops, "iter_slice")
    prefix = draw_prefix(data, ops, "iter_prefix")
    got = [ov(o) for o in idx.iter_view(BUCKET, end_ms=end, start_ms=start, prefix=prefix)]
    want = brute.view(ops, end, start)
    assert got == [op_t(want[k]) for k in sorted(want) if k.startswith(prefix)]


def check_diff(idx, ops, data) -> None:
    t1 = draw_time(data, ops, "diff_from")
    t2 = draw_time(data, ops, "diff_to")
    prefix = draw_prefix(data, ops, "diff_prefix")
    got = idx.diff(BUCKET, prefix=prefix, from_ms=t1, to_ms=t2)
    want = brute.diff(ops, t1, t2)

    def under(d):
        return sorted(k for k in d if k.startswith(prefix))

    assert [ov(o) for o in got.added] == [op_t(want.added[k]) for k in under(want.added)]
    assert [ov(o) for o in got.deleted] == [op_t(want.deleted[k]) for k in under(want.deleted)]
    assert [(m.key, m.from_version_id, m.to_version_id) for m in got.modified] == [
        (k, *want.modified[k]) for k in under(want.modified)
    ]


def check_history(idx, ops) -> None:
    chains = brute.chains(ops)
    for key in KEYS:
        got = idx.history(BUCKET, key)
        assert [ov(o) for o in got] == [op_t(op) for op in chains.get(key, [])], key
        assert [o.is_latest for o in got] == [i == 0 for i in range(len(got))], key


def check_get_version_at(idx, ops, data) -> None:
    end = draw_time(data, ops, "gva_end")
    start = None
    if data.draw(st.booleans(), label="gva_is_slice"):
        start = draw_time(data, ops, "gva_start")
        start, end = min(start, end), max(start, end)
    want = brute.view(ops, end, start)
    chains = brute.chains(ops)
    for key in sorted({op.key for op in ops}) + ["a", "never/written"]:
        got = idx.get_version_at(BUCKET, key, end_ms=end, start_ms=start)
        assert (None if got is None else ov(got)) == (op_t(want[key]) if key in want else None), (
            key,
            start,
            end,
        )
        if got is not None:  # the newest version of its key, whatever the view
            assert got.is_latest == (got.version_id == chains[key][0].version_id), key


def check_timeline(idx, ops, data) -> None:
    prefix = draw_prefix(data, ops, "tl_prefix")
    bins = data.draw(st.integers(1, 12), label="bins")
    if data.draw(st.booleans(), label="tl_bounded"):
        t1 = draw_time(data, ops, "tl_from")
        t2 = draw_time(data, ops, "tl_to")
        t1, t2 = min(t1, t2), max(t1, t2)
        tl = idx.timeline(BUCKET, prefix=prefix, from_ms=t1, to_ms=t2, bins=bins)
        assert (tl.start_ms, tl.end_ms) == (t1, t2)
    else:
        tl = idx.timeline(BUCKET, prefix=prefix, bins=bins)
        t1, t2 = tl.start_ms, tl.end_ms
        # Unbounded: the range covers every version under the prefix.
        assert brute.count_in_range(ops, prefix, t1, t2) == brute.count_in_range(
            ops, prefix, -(2**62), 2**62
        )
    assert len(tl.created) == len(tl.deleted) <= bins
    assert tl.start_ms + tl.bin_ms * len(tl.created) > tl.end_ms
    created = [0] * len(tl.created)
    deleted = [0] * len(tl.deleted)
    for op in ops:
        if op.key.startswith(prefix) and t1 <= op.time_ms <= t2:
            i = (op.time_ms - t1) // tl.bin_ms
            (deleted if op.is_delete else created)[i] += 1
    assert (tl.created, tl.deleted) == (created, deleted)
    assert (sum(tl.created), sum(tl.deleted)) == brute.count_in_range(ops, prefix, t1, t2)


def check_timeline_hours(idx, ops) -> None:
    """timeline_hours counts exactly the versions and delete markers of each row's width (none
    until the bucket's first full scan ends)."""
    if is_pg(idx):
        return  # (SQLite's rollup table; PostgreSQL counts through its time index)
    width = idx._rollup_ms
    assert width == ROLLUP_MS
    want: dict[int, list[int]] = {}
    conn = idx._conn()
    b = conn.execute("SELECT id FROM buckets WHERE name=?", (BUCKET,)).fetchone()[0]
    if sqlite_schema.time_index_of(conn, b) is not None:
        for op in ops:
            want.setdefault(op.time_ms // width, [0, 0])[int(op.is_delete)] += 1
    rows = conn.execute("SELECT h, created, deleted FROM timeline_hours WHERE b=?", (b,)).fetchall()
    assert {h: [c, d] for h, c, d in rows if c or d} == want


def check_bucket_record(idx, ops) -> None:
    """The bucket's figures: its rows, and (once the time index exists: before, folder bounds
    that may only be wider) its first and last version times, also after versions were
    pruned."""
    record = idx.get_bucket(BUCKET)
    assert record.version_count == len(ops)
    assert idx.has_bucket(BUCKET) and not idx.has_bucket(BUCKET + "-other")
    times = [op.time_ms for op in ops]
    want = (min(times), max(times)) if times else (None, None)
    if is_pg(idx):  # exact from the start
        assert (record.first_ms, record.last_ms) == want
        return
    conn = idx._conn()
    b = conn.execute("SELECT id FROM buckets WHERE name=?", (BUCKET,)).fetchone()[0]
    if sqlite_schema.time_index_of(conn, b) is not None:
        assert (record.first_ms, record.last_ms) == want
        if times:  # the whole bucket's timeline spans the same times by default
            tl = idx.timeline(BUCKET, bins=1)
            assert (tl.start_ms, tl.end_ms) == want
    elif times:
        assert record.first_ms <= want[0] and record.last_ms >= want[1]


def check_all(idx, ops, data, rounds: int = 3) -> None:
    check_bucket_record(idx, ops)
    check_history(idx, ops)
    check_timeline_hours(idx, ops)
    for _ in range(rounds):
        check_listing(idx, ops, data)
        check_iter_view(idx, ops, data)
        check_diff(idx, ops, data)
        check_get_version_at(idx, ops, data)
        check_timeline(idx, ops, data)


def token_position(token: str | None) -> str | None:
    """Where a page token resumes (its signed payload): each index file signs with its own
    secret, so two indexes agree on positions, not on signatures."""
    return None if token is None else token.rpartition(".")[0]


def answers(idx, ops) -> dict:
    """A deterministic battery of answers, to compare two index states."""
    ts = time_candidates(ops)
    out: dict = {
        "history": {k: [ov(o) + (o.is_latest,) for o in idx.history(BUCKET, k)] for k in KEYS}
    }
    for i, t in enumerate(ts):
        out[("snap", t)] = [ov(o) for o in idx.iter_view(BUCKET, end_ms=t)]
        page = idx.list_view(BUCKET, end_ms=t, delimiter="/")
        out[("list", t)] = (
            [ov(o) for o in page.objects],
            page.prefixes,
            token_position(page.next_token),
        )
        for t2 in ts[i : i + 3]:
            out[("slice", t, t2)] = [ov(o) for o in idx.iter_view(BUCKET, start_ms=t, end_ms=t2)]
        d = idx.diff(BUCKET, prefix="", from_ms=ts[0], to_ms=t)
        out[("diff", t)] = d.to_json()
    return out


# -- the properties ----------------------------------------------------------------------------
_PLANS = [
    pytest.param("default"),
    pytest.param(
        "folder-skip",
        marks=pytest.mark.skipif(
            not hasattr(sqlite_rows, "LARGE_FOLDER_VERSIONS"), reason="no folder skipping"
        ),
    ),
    pytest.param(
        "folder-skip-lookahead-1",
        marks=pytest.mark.skipif(not hasattr(sqlite_rows, "SKIP_LOOKAHEAD"), reason="no lookahead"),
    ),
    pytest.param(
        "short-skip",
        marks=pytest.mark.skipif(
            not hasattr(sqlite_rows, "STREAM_SKIP_ROWS"), reason="no streaming skip"
        ),
    ),
    pytest.param(
        "grouped",
        marks=pytest.mark.skipif(
            not hasattr(sqlite_rows, "GROUP_AFTER_OLDER_ROWS"), reason="no grouped scans"
        ),
    ),
    pytest.param(
        "grouped-switch",
        marks=pytest.mark.skipif(
            not hasattr(sqlite_rows, "GROUP_AFTER_OLDER_ROWS"), reason="no grouped scans"
        ),
    ),
    pytest.param(
        "time-index",
        marks=pytest.mark.skipif(
            not hasattr(sqlite_mod.SqliteSnapshotIndex, "_slice_by_time"), reason="no time plan"
        ),
    ),
    pytest.param(
        "time-index-built",
        marks=pytest.mark.skipif(
            not hasattr(sqlite_mod.SqliteSnapshotIndex, "_slice_by_time"), reason="no time plan"
        ),
    ),
]


@pytest.mark.parametrize("plan", _PLANS)
@MAIN
@given(ops=histories(), cuts=cuts_st, data=st.data())
def test_merge_listing_matches_brute_force(plan, ops, cuts, data):
    with query_plan(plan), fresh_index() as idx:
        written = merge_all(idx, ops, cuts)
        assert written == len(ops)
        check_all(idx, ops, data)
        if plan == "time-index":
            # the first full scan ends: the time index and timeline_hours are built
            idx.finish_scan(BUCKET, FAR_FUTURE_MS)
            check_timeline_hours(idx, ops)
            check_timeline(idx, ops, data)


@MAIN
@given(ops=histories(), chunks=st.lists(st.integers(1, 6), max_size=5), data=st.data())
def test_append_versions_in_chain_order_matches_brute_force(ops, chunks, data):
    with fresh_index() as idx:
        # Every new version is a row written (re-ranking a millisecond's versions may rewrite
        # rows already there, so this is a lower bound).
        assert append_all(idx, ops, chunks) >= len(ops)
        check_all(idx, ops, data)
        # Appending the same versions again is a no-op.
        assert append_all(idx, ops, chunks) == 0
        check_history(idx, ops)


def check_snapshots_at_every_time(idx, ops) -> None:
    """Every snapshot (whole bucket, and its root page) at every time that matters."""
    for t in time_candidates(ops):
        want = brute.view(ops, t, None)
        got = [ov(o) for o in idx.iter_view(BUCKET, end_ms=t)]
        assert got == [op_t(want[k]) for k in sorted(want)], t
        page = idx.list_view(BUCKET, end_ms=t, delimiter="/")
        want_objs, want_prefixes = brute.listing(want, "", "/", None)
        assert ([ov(o) for o in page.objects], page.prefixes) == (
            [op_t(o) for o in want_objs],
            want_prefixes,
        ), t


@MAIN
@given(
    ops=histories(),
    cuts=cuts_st,
    order=st.randoms(use_true_random=False),
    chunks=st.lists(st.integers(1, 6), max_size=5),
    data=st.data(),
)
@example(
    # pages ["a/a"], ["a/b"] merged in the order "a/b" (5 s), then "a/a" (1 s)
    ops=[
        Op("a/a", "v1", BASE_MS + 1000, False, 1, '"' + "0" * 32 + '"'),
        Op("a/b", "v2", BASE_MS + 5000, False, 1, '"' + "0" * 32 + '"'),
    ],
    cuts=[1],
    order=random.Random(1),
    chunks=[],
    data=None,
).via("a folder's first version time goes back when a later page brings an older key")
def test_listings_between_writes_answer_each_state(ops, cuts, order, chunks, data):
    """What a listing caches about folders (which to skip as of T) never answers for a later
    state: a scan's pages merged in random order (a folder's first version time goes back
    when a later page brings older keys into it), then events, each write followed by
    listings of exactly what was written so far."""
    with query_plan("folder-skip"), fresh_index() as idx:
        pages = split_at_key_boundaries(brute.listing_entries(ops), cuts)
        order.shuffle(pages)
        merged: set[str] = set()
        for batch, after, through in pages:
            idx.merge_listing(
                BUCKET, batch, after_key=after, through_key=through, scan_started_ms=FAR_FUTURE_MS
            )
            merged |= {e.key for e in batch}
            check_snapshots_at_every_time(idx, [op for op in ops if op.key in merged])
    with query_plan("folder-skip"), fresh_index() as idx:
        pos = 0
        for size in list(chunks) + [len(ops)]:
            if pos >= len(ops):
                break
            idx.append_versions(BUCKET, [brute.to_entry(op) for op in ops[pos : pos + size]])
            pos += size
            check_snapshots_at_every_time(idx, ops[:pos])


@SMALL
@given(ops=histories(), cuts=cuts_st, data=st.data())
def test_append_then_merge_listing_matches_brute_force(ops, cuts, data):
    """Events first, then a reconciliation scan: the listing is authoritative and agrees."""
    with fresh_index() as idx:
        append_all(idx, ops, [3])
        merge_all(idx, ops, cuts)
        check_all(idx, ops, data, rounds=2)
        assert merge_all(idx, ops, cuts) == 0


@SMALL
@given(ops=histories(), cuts=cuts_st, other_cuts=cuts_st)
def test_merge_listing_is_idempotent_and_split_independent(ops, cuts, other_cuts):
    with fresh_index() as idx:
        merge_all(idx, ops, cuts)
        before = answers(idx, ops)
        assert merge_all(idx, ops, cuts) == 0
        assert merge_all(idx, ops, other_cuts) == 0
        assert answers(idx, ops) == before
        assert idx.get_bucket(BUCKET).version_count == len(ops)
    with fresh_index() as other:
        merge_all(other, ops, other_cuts)
        assert answers(other, ops) == before


@pytest.mark.parametrize("plan", ["default", "time-index"])  # after / before a full scan
@SMALL
@given(old=histories(max_ops=15), new=histories(max_ops=15), cuts=cuts_st, data=st.data())
def test_merge_listing_replaces_what_the_listing_no_longer_has(plan, old, new, cuts, data):
    """A full pass over the bucket makes the index equal to that pass's listing (versions the
    listing lacks and that are older than the scan are pruned)."""
    new_vids = {op.version_id for op in new}
    old = [op for op in old if op.version_id not in new_vids]
    with query_plan(plan), fresh_index() as idx:
        merge_all(idx, old, [])
        merge_all(idx, new, cuts)
        assert idx.get_bucket(BUCKET).version_count == len(new)
        check_all(idx, new, data, rounds=1)


@SMALL
@given(ops=histories(), cuts=cuts_st, data=st.data())
def test_scan_keeps_versions_written_after_it_passed_their_key(ops, cuts, data):
    """Events told the index about every version; a scan then lists, per key, only an older
    part of the chain (the rest was written after the scan passed the key, i.e. later than
    scan start - margin). Nothing is lost and the chain order stays right."""
    chains = brute.chains(ops)  # newest first
    missing: set[str] = set()
    for key in sorted(chains):
        n_recent = data.draw(st.integers(0, len(chains[key])), label=f"recent[{key}]")
        missing.update(op.version_id for op in chains[key][:n_recent])
    listed = [op for op in ops if op.version_id not in missing]
    recent_times = [op.time_ms for op in ops if op.version_id in missing]
    scan_started = (
        (min(recent_times) + sqlite_rows.PRUNE_MARGIN_MS) if recent_times else FAR_FUTURE_MS
    )
    with fresh_index() as idx:
        idx.append_versions(BUCKET, [brute.to_entry(op) for op in ops])
        for batch, after, through in split_at_key_boundaries(brute.listing_entries(listed), cuts):
            idx.merge_listing(
                BUCKET, batch, after_key=after, through_key=through, scan_started_ms=scan_started
            )
        check_history(idx, ops)
        check_all(idx, ops, data, rounds=1)


def test_scan_keeps_recent_same_millisecond_versions_on_top():
    """Minimal case of the property above. Events gave v0, v1, v2 of key k, all in the same
    millisecond (chain order v0 < v1 < v2). A scan that passed k after v0 but before v1 and v2
    were written lists only v0. v1 and v2 are recent (not older than scan start - margin), so
    they are kept, and being newer than everything listed they must stay on top: the history
    must remain v2, v1, v0."""
    etag = '"' + "0" * 32 + '"'
    with fresh_index() as idx:
        idx.append_versions(
            BUCKET, [VersionEntry("k", v, BASE_MS, 1, etag, False) for v in ("v0", "v1", "v2")]
        )
        assert [o.version_id for o in idx.history(BUCKET, "k")] == ["v2", "v1", "v0"]
        idx.merge_listing(
            BUCKET,
            [VersionEntry("k", "v0", BASE_MS, 1, etag, False)],
            after_key=None,
            through_key=None,
            scan_started_ms=BASE_MS + sqlite_rows.PRUNE_MARGIN_MS,
        )
        assert [o.version_id for o in idx.history(BUCKET, "k")] == ["v2", "v1", "v0"]
        assert idx.get_version_at(BUCKET, "k", end_ms=BASE_MS).version_id == "v2"


# -- whole-second answers with a mix of precise (event) and coarse (listing) times -------------
def coarse(op: Op) -> Op:
    return op._replace(time_ms=op.time_ms // 1000 * 1000)


def whole_second_times(ops: Sequence[Op]) -> list[int]:
    secs = sorted({op.time_ms // 1000 for op in ops})
    return [BASE_MS - 1] + [s * 1000 + 999 for s in secs]


def check_whole_second_answers(idx, ops: Sequence[Op]) -> None:
    """Queries on second boundaries (tm... snapshots, tmA-tmB slices) do not depend on
    sub-second times, so they must be exact whatever mix of precise and coarse times the
    index holds; and each key's history is its chain, newest first."""
    chains = brute.chains(ops)
    for key, chain in chains.items():
        got = idx.history(BUCKET, key)
        assert [o.version_id for o in got] == [op.version_id for op in chain], key
        assert [o.is_latest for o in got] == [i == 0 for i in range(len(got))], key
    ts = whole_second_times(ops)
    for t in ts:
        want = brute.snapshot(ops, t)
        got = [(o.key, o.version_id) for o in idx.iter_view(BUCKET, end_ms=t)]
        assert got == [(k, want[k].version_id) for k in sorted(want)], ("snapshot", t)
        for key in chains:
            g = idx.get_version_at(BUCKET, key, end_ms=t)
            assert (g and g.version_id) == (want[key].version_id if key in want else None), (key, t)
    for i, t1 in enumerate(ts):
        for t2 in ts[i:]:
            start = t1 + 1  # t1 is the last ms of a second: start at the next second
            want = brute.slice(ops, start, t2)
            got = [(o.key, o.version_id) for o in idx.iter_view(BUCKET, start_ms=start, end_ms=t2)]
            assert got == [(k, want[k].version_id) for k in sorted(want)], ("slice", start, t2)


precise_histories = histories(dense=True)


# Which versions an event (with its ms-precise time) arrived for, by position in the chain.
event_masks = st.lists(st.booleans(), max_size=30)


@SMALL
@given(ops=precise_histories, cuts=cuts_st)
def test_events_then_coarse_listing_keep_precise_times(ops, cuts):
    """All events (ms-precise) first, then an AWS listing (whole seconds): every answer is
    the precise one — a more precise time is never replaced by a coarser one."""
    with fresh_index() as idx:
        idx.append_versions(BUCKET, [brute.to_entry(op, precise=True) for op in ops])
        listing = [coarse(op) for op in ops]
        for batch, after, through in split_at_key_boundaries(brute.listing_entries(listing), cuts):
            idx.merge_listing(
                BUCKET, batch, after_key=after, through_key=through, scan_started_ms=FAR_FUTURE_MS
            )
        check_history(idx, ops)
        for t in time_candidates(ops):
            want = brute.snapshot(ops, t)
            got = [ov(o) for o in idx.iter_view(BUCKET, end_ms=t)]
            assert got == [op_t(want[k]) for k in sorted(want)], t


def events_for(ops: Sequence[Op], got_event: Sequence[bool]) -> list[VersionEntry]:
    """The events that arrived (chain order): ops[i] has one if got_event[i] (missing: no)."""
    return [brute.to_entry(op, precise=True) for op, e in zip(ops, got_event) if e]


@SMALL
@given(ops=precise_histories, cuts=cuts_st, got_event=event_masks)
def test_coarse_listing_then_some_events_whole_second_answers_exact(ops, cuts, got_event):
    """An AWS listing (whole seconds), then events (ms-precise, in chain order) for some of
    the versions: answers on second boundaries and each key's chain order stay exact."""
    with fresh_index() as idx:
        merge_all(idx, [coarse(op) for op in ops], cuts)
        idx.append_versions(BUCKET, events_for(ops, got_event))
        check_whole_second_answers(idx, ops)


@SMALL
@given(ops=precise_histories, cuts=cuts_st, got_event=event_masks)
def test_some_events_then_coarse_listing_whole_second_answers_exact(ops, cuts, got_event):
    """Events for some versions first, then the AWS listing: the same guarantee."""
    with fresh_index() as idx:
        idx.append_versions(BUCKET, events_for(ops, got_event))
        merge_all(idx, [coarse(op) for op in ops], cuts)
        check_whole_second_answers(idx, ops)


def test_event_for_the_older_of_two_same_second_versions_keeps_chain_order():
    """Minimal case of the property above. S3 chain of key k: v1 at 10:00:05.123, then v2 at
    10:00:05.456. The AWS listing gives both as 10:00:05 (v2 IsLatest); then the event for v1
    alone arrives with its precise time. v2 must stay the newest: history() must list v2
    first, and the snapshot at tm...100005 (end_ms = 10:00:05.999) must show v2, never v1
    (an answer never shows a version older in the chain than one it hides)."""
    s = BASE_MS + 5000
    etag = '"' + "0" * 32 + '"'
    with fresh_index() as idx:
        idx.merge_listing(
            BUCKET,
            [
                VersionEntry("k", "v2", s, 2, etag, False, False),
                VersionEntry("k", "v1", s, 1, etag, False, False),
            ],
            after_key=None,
            through_key=None,
            scan_started_ms=FAR_FUTURE_MS,
        )
        idx.append_versions(BUCKET, [VersionEntry("k", "v1", s + 123, 1, etag, False, True)])
        hist = idx.history(BUCKET, "k")
        assert [(o.version_id, o.is_latest) for o in hist] == [("v2", True), ("v1", False)]
        assert idx.get_version_at(BUCKET, "k", end_ms=s + 999).version_id == "v2"
        assert [o.version_id for o in idx.iter_view(BUCKET, end_ms=s + 999)] == ["v2"]


# S3 lists an object with the time its upload started (a multipart upload's: when it was
# initiated) in whole seconds, while its event carries the time S3 finished it, which can be
# seconds or minutes later; the object is visible from then on.
upload_delays = st.lists(st.sampled_from([0, 1, 400, 1000, 2500, 60_000]), max_size=30)


def listed_at_upload_start(ops: Sequence[Op], delays: Sequence[int]) -> list[Op]:
    return [
        op._replace(time_ms=(op.time_ms - (delays[i] if i < len(delays) else 0)) // 1000 * 1000)
        for i, op in enumerate(ops)
    ]


def check_precise_answers(idx, ops: Sequence[Op]) -> None:
    check_history(idx, ops)
    for t in time_candidates(ops):
        want = brute.snapshot(ops, t)
        got = [ov(o) for o in idx.iter_view(BUCKET, end_ms=t)]
        assert got == [op_t(want[k]) for k in sorted(want)], t


@SMALL
@given(ops=precise_histories, cuts=cuts_st, delays=upload_delays)
def test_events_then_listing_of_upload_start_times_keep_event_times(ops, cuts, delays):
    """Every version's event first, then a listing whose times are the uploads' starts (whole
    seconds, any number of seconds before the event's): the event times stay, so every answer
    is exact to the millisecond (DESIGN: a precise time is never replaced by a listing's)."""
    with fresh_index() as idx:
        idx.append_versions(BUCKET, [brute.to_entry(op, precise=True) for op in ops])
        merge_all(idx, listed_at_upload_start(ops, delays), cuts)
        check_precise_answers(idx, ops)


@SMALL
@given(ops=precise_histories, cuts=cuts_st, delays=upload_delays)
def test_listing_of_upload_start_times_then_events_take_event_times(ops, cuts, delays):
    """The same listing first, then every version's event: the same exact answers."""
    with fresh_index() as idx:
        merge_all(idx, listed_at_upload_start(ops, delays), cuts)
        idx.append_versions(BUCKET, [brute.to_entry(op, precise=True) for op in ops])
        check_precise_answers(idx, ops)


def test_multipart_upload_is_visible_from_its_completion_after_a_reconcile():
    """Minimal case: v1 written at 10:00:03 (event 10:00:03.100); a multipart upload of the
    same key initiated at 10:00:00 completes as v2 at 10:00:05.200 (its event). S3 lists v2
    as the latest with LastModified 10:00:00. After the reconciling listing, the bucket as of
    10:00:04 still shows v1 (v2 did not exist yet) and v2 keeps its event's time."""
    etag = '"' + "0" * 32 + '"'
    s = BASE_MS
    with fresh_index() as idx:
        idx.append_versions(
            BUCKET,
            [
                VersionEntry("k", "v1", s + 3100, 1, etag, False, True),
                VersionEntry("k", "v2", s + 5200, 2, etag, False, True),
            ],
        )
        idx.merge_listing(
            BUCKET,
            [
                VersionEntry("k", "v2", s, 2, etag, False, False),  # IsLatest, initiation time
                VersionEntry("k", "v1", s + 3000, 1, etag, False, False),
            ],
            after_key=None,
            through_key=None,
            scan_started_ms=FAR_FUTURE_MS,
        )
        assert [(o.version_id, o.last_modified_ms) for o in idx.history(BUCKET, "k")] == [
            ("v2", s + 5200),
            ("v1", s + 3100),
        ]
        assert idx.get_version_at(BUCKET, "k", end_ms=s + 4000).version_id == "v1"
        assert idx.get_version_at(BUCKET, "k", end_ms=s + 5200).version_id == "v2"


@pytest.mark.parametrize("plan", ["default", "grouped", "grouped-switch"])
def test_a_slice_keeps_versions_written_exactly_at_its_start(plan):
    """A slice [T1, T2] includes T1 itself, in every scan plan: versions at T1 (alone, or
    ranked below a same-millisecond newer one) are in it, delete markers at T1 are not."""
    etag = '"' + "0" * 32 + '"'
    t1 = BASE_MS + 2000
    listing = [  # chain order: keys ascending, newest first
        VersionEntry("a", "a2", t1, 2, etag, False, True),
        VersionEntry("a", "a1", t1 - 1000, 1, etag, False, True),
        VersionEntry("b", "b3", t1, 3, etag, False, True),  # same ms: b3 is newer than b2
        VersionEntry("b", "b2", t1, 2, etag, False, True),
        VersionEntry("c", "c1", t1 - 1, 1, etag, False, True),
        VersionEntry("d", "dm", t1, 0, "", True, True),
        VersionEntry("d", "d1", t1 - 1000, 1, etag, False, True),
        VersionEntry("e", "e2", t1 + 1, 2, etag, False, True),
        VersionEntry("e", "e1", t1, 1, etag, False, True),
    ]
    with query_plan(plan), fresh_index() as idx:
        idx.merge_listing(
            BUCKET, listing, after_key=None, through_key=None, scan_started_ms=FAR_FUTURE_MS
        )
        got = [(o.key, o.version_id) for o in idx.iter_view(BUCKET, start_ms=t1, end_ms=t1)]
        assert got == [("a", "a2"), ("b", "b3"), ("e", "e1")]
        got = [
            (o.key, o.version_id, o.size) for o in idx.iter_view(BUCKET, start_ms=t1, end_ms=t1 + 5)
        ]
        assert got == [("a", "a2", 2), ("b", "b3", 3), ("e", "e2", 2)]


@st.composite
def sequenced_events(draw, ops: Sequence[Op]) -> list[VersionEntry]:
    """Real S3 events: ms-precise times and a ``sequencer`` (per key, a greater hex value is
    later; compare after right-padding with zeros) — in any arrival order."""
    events = []
    for n, op in enumerate(ops):
        seq = f"{(n + 1) << 40:016X}"
        style = draw(st.integers(0, 2))
        if style == 1:
            seq = seq.rstrip("0")  # the same value under right-padding
        elif style == 2:
            seq = seq.lower()
        events.append(brute.to_entry(op, precise=True)._replace(sequencer=seq))
    return draw(st.permutations(events))


@SMALL
@given(ops=histories(dense=True), data=st.data())
def test_events_with_sequencers_in_any_order_match_brute_force(ops, data):
    """With sequencers, the arrival order of events does not matter: versions of one key that
    share a millisecond are ordered by sequencer."""
    events = data.draw(sequenced_events(ops), label="events")
    with fresh_index() as idx:
        pos = 0
        while pos < len(events):
            size = data.draw(st.integers(1, 5), label="batch")
            idx.append_versions(BUCKET, events[pos : pos + size])
            pos += size
        check_all(idx, ops, data, rounds=1)
        assert idx.append_versions(BUCKET, events) == 0


# -- S3 request semantics ------------------------------------------------------------------------
@SMALL
@given(ops=histories(), data=st.data())
def test_start_after_is_s3_start_after(ops, data):
    """StartAfter: only keys after it (UTF-8 byte order), whatever the prefix; with a
    delimiter, a key after it rolls up into its common prefix, listed only if that sorts
    after StartAfter too (not the folder StartAfter lies in)."""
    with fresh_index() as idx:
        merge_all(idx, ops, [])
        t = draw_time(data, ops, "t")
        prefix = draw_prefix(data, ops)
        delimiter = data.draw(st.sampled_from(DELIMITERS), label="delimiter")
        start_after = data.draw(
            st.one_of(st.just(prefix), st.sampled_from(KEYS + QUERY_PREFIXES), st.text(max_size=6)),
            label="start_after",
        )
        got = list_all_pages(
            idx,
            end_ms=t,
            start_ms=None,
            prefix=prefix,
            delimiter=delimiter,
            start_after=start_after,
            page_sizes=[1000],
        )
        want_objs, want_prefixes = brute.listing(
            brute.snapshot(ops, t), prefix, delimiter, start_after
        )
        assert got == ([op_t(o) for o in want_objs], want_prefixes)


def test_start_after_examples():
    ops = [
        Op("a/1", "v1", BASE_MS, False, 1, '"' + "0" * 32 + '"'),
        Op("a/2", "v2", BASE_MS, False, 2, '"' + "1" * 32 + '"'),
        Op("b", "v3", BASE_MS, False, 3, '"' + "2" * 32 + '"'),
        Op("prefix1/object", "v4", BASE_MS, False, 4, '"' + "3" * 32 + '"'),
        Op("prefix2/object", "v5", BASE_MS, False, 5, '"' + "4" * 32 + '"'),
    ]
    with fresh_index() as idx:
        merge_all(idx, ops, [])

        def keys(**kw):
            page = idx.list_view(BUCKET, end_ms=FAR_FUTURE_MS, **kw)
            return [o.key for o in page.objects], page.prefixes

        assert keys(start_after="a/1") == (["a/2", "b", "prefix1/object", "prefix2/object"], [])
        assert keys(start_after="b", prefix="a/") == ([], [])
        assert keys(start_after="", prefix="a/") == (["a/1", "a/2"], [])
        assert keys(start_after="0") == (
            ["a/1", "a/2", "b", "prefix1/object", "prefix2/object"],
            [],
        )
        # The versitygw#1275 case: a start-after before a folder keeps the folder.
        assert keys(prefix="prefix", start_after="prefix1", delimiter="/") == (
            [],
            ["prefix1/", "prefix2/"],
        )
        # A start-after in (or equal to) a folder: that folder is not listed again. This is
        # how ListObjects V1 pages on after NextMarker = a common prefix (Ceph s3-tests'
        # test_bucket_list_delimiter_prefix: marker boo/ -> cquux/ only).
        assert keys(start_after="prefix1/", delimiter="/") == ([], ["prefix2/"])
        assert keys(start_after="prefix1/obj", delimiter="/") == ([], ["prefix2/"])
        assert keys(start_after="prefix1/object", delimiter="/") == ([], ["prefix2/"])
        assert keys(start_after="a/1", delimiter="/") == (["b"], ["prefix1/", "prefix2/"])
        assert keys(start_after="a", delimiter="/") == (["b"], ["a/", "prefix1/", "prefix2/"])
        assert keys(start_after="prefix1/", delimiter="/", prefix="prefix1/") == (
            ["prefix1/object"],
            [],
        )


@SMALL
@given(
    token=st.one_of(
        st.text(min_size=1, max_size=30),
        st.binary(min_size=1, max_size=30).map(lambda b: base64.urlsafe_b64encode(b).decode()),
        st.sampled_from(
            [
                "garbage",
                "!!!!",
                "é",
                "WzFd",
                "e30=",
                "bnVsbA==",
                "eyJwIjogMX0=",
                # {"p": "a", "i": true}: well formed, but not signed by the index
                "eyJwIjogImEiLCAiaSI6IHRydWV9",
            ]
        ),
    )
)
def test_bad_continuation_token_is_bad_request(token):
    """Only tokens the index signed are accepted: any other text is a 400."""
    with fresh_index() as idx:
        merge_all(idx, [Op("a", str(uuid.uuid4()), BASE_MS, False, 1, '"' + "0" * 32 + '"')], [])
        with pytest.raises(BadRequest):
            idx.list_view(BUCKET, end_ms=FAR_FUTURE_MS, token=token)


def test_max_keys_out_of_range_is_bad_request():
    with fresh_index() as idx:
        for bad in (-1, 1001):
            with pytest.raises(BadRequest):
                idx.list_view(BUCKET, end_ms=FAR_FUTURE_MS, max_keys=bad)
        with pytest.raises(BadRequest):
            idx.timeline(BUCKET, from_ms=2, to_ms=1)


# -- several index objects on one file, and open iterators ------------------------------------
@pytest.mark.sqlite_only
def test_forgotten_bucket_does_not_leave_stale_folder_bounds_in_another_instance():
    """Two index objects on one file (the Jupyter server and a CLI `untrack`/`track`). The
    server caches each bucket's large folders keyed by (bucket id, generation). Forgetting a
    bucket and tracking a new one can reuse the same bucket id with the generation starting
    again from 0, so the server's cached folder bounds (first version at 5 s) get applied to
    the new bucket and its folder is skipped as if it were empty at T = 2 s."""
    etag = '"' + "0" * 32 + '"'
    n = sqlite_rows.LARGE_FOLDER_VERSIONS  # enough versions for "a/" to count as large
    with tempfile.TemporaryDirectory(prefix="idxprop", dir=_TMP_ROOT) as tmp:
        path = os.path.join(tmp, "index.sqlite")
        cli, server = SqliteSnapshotIndex(path), SqliteSnapshotIndex(path)
        try:
            cli.register_bucket("old")
            cli.merge_listing(
                "old",
                [VersionEntry(f"a/{i:05d}", f"o{i}", 5000, 1, etag, False) for i in range(n)],
                after_key=None,
                through_key=None,
                scan_started_ms=FAR_FUTURE_MS,
            )
            assert len(server.list_view("old", end_ms=6000, max_keys=1000).objects) == min(n, 1000)
            cli.forget_bucket("old")
            cli.register_bucket("new")
            cli.merge_listing(
                "new",
                [VersionEntry(f"a/{i:05d}", f"n{i}", 1000, 1, etag, False) for i in range(n)],
                after_key=None,
                through_key=None,
                scan_started_ms=FAR_FUTURE_MS,
            )
            want = [f"a/{i:05d}" for i in range(n)]
            assert [o.key for o in cli.iter_view("new", end_ms=2000)] == want
            assert [o.key for o in server.iter_view("new", end_ms=2000)] == want
        finally:
            cli.close()
            server.close()


def test_write_on_the_same_thread_while_a_view_is_being_iterated():
    """iter_view keeps a read transaction open on the thread's connection until the iterator
    is exhausted or closed; a write on that thread meanwhile fails with a raw
    sqlite3.OperationalError ("cannot start a transaction within a transaction")."""
    etag = '"' + "0" * 32 + '"'
    with fresh_index() as idx:
        merge_all(idx, [Op(k, f"v{k}", BASE_MS, False, 1, etag) for k in "abc"], [])
        it = idx.iter_view(BUCKET, end_ms=FAR_FUTURE_MS)
        assert next(it).key == "a"
        idx.append_versions(BUCKET, [VersionEntry("d", "vd", BASE_MS, 1, etag, False)])
        assert [o.key for o in it] == ["b", "c"]
        assert [o.key for o in idx.iter_view(BUCKET, end_ms=FAR_FUTURE_MS)] == list("abcd")
