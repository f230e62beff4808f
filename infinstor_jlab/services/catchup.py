"""Catching the index up before a view after the last sync is read or pinned: the one core
that labels and transform inputs (``InfinstorService.index_through``, which raise when it
fails) and kernel-side time travel (``TimeTravel.ensure_indexed``, which warns and reads on)
share, each with its own policy around it."""

from __future__ import annotations

from typing import Any

from ..index.base import SnapshotIndex
from ..index.models import BucketRecord
from ..timespec import TimeSpec, now_ms, wait_past_second
from .events import relist_keys, relist_prefix
from .views import refuse_future


def needs_catch_up(record: BucketRecord, spec: TimeSpec) -> bool:
    """Whether the view ends after what the bucket's last full pass covers (everything
    created before that pass began is in the index). A view in the future is refused: what
    S3 will hold then is not known, and waiting for it would hold the caller until then."""
    if record.covers(spec.end_ms):
        return False
    refuse_future(spec)
    return True


def read_again(
    s3: Any,
    index: SnapshotIndex,
    bucket: str,
    spec: TimeSpec,
    *,
    prefix: str = "",
    keys: list[str] | None = None,
) -> int:
    """Read ``prefix`` (or just ``keys``) again from S3 into the index, once the view's last
    second is over: S3 lists whole seconds, so a version written later in that second would
    be listed with a time inside the view. Returns when the listing began (ms): the index
    then holds everything S3 held before it."""
    wait_past_second(spec.end_ms)
    started = now_ms()
    if keys is not None:
        relist_keys(s3, index, bucket, keys)
    else:
        relist_prefix(s3, index, bucket, prefix)
    return started
