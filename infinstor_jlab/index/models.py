"""Typed records the index returns. ``to_json`` gives the CLI/REST wire shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ..timespec import format_iso


class VersionEntry(NamedTuple):
    """One version or delete marker as a listing or an event reports it.

    ``precise`` is true when ``time_ms`` carries real milliseconds (events, Ceph) rather than a
    time truncated to whole seconds (AWS listings).
    """

    key: str
    version_id: str
    time_ms: int
    size: int
    etag: str
    is_delete_marker: bool
    precise: bool = False
    sequencer: str | None = None


def sequencer_sort_key(seq: str | None) -> str:
    """Order of S3 event ``sequencer`` values for one key: a greater hex value is later;
    values of different lengths compare after padding the shorter with trailing zeros."""
    return (seq or "").upper().ljust(64, "0")


@dataclass(slots=True)
class ObjectVersion:
    key: str
    version_id: str
    last_modified_ms: int
    size: int
    etag: str
    is_delete_marker: bool = False
    is_latest: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "version_id": self.version_id,
            "size": self.size,
            "etag": self.etag,
            "last_modified": format_iso(self.last_modified_ms),
        }

    def to_history_json(self) -> dict[str, object]:
        out = self.to_json()
        out["is_delete_marker"] = self.is_delete_marker
        out["is_latest"] = self.is_latest
        return out


@dataclass(slots=True)
class ListPage:
    objects: list[ObjectVersion]
    prefixes: list[str]
    next_token: str | None

    @property
    def is_truncated(self) -> bool:
        return self.next_token is not None

    def to_json(self) -> dict[str, object]:
        return {
            "objects": [o.to_json() for o in self.objects],
            "prefixes": list(self.prefixes),
            "next_token": self.next_token,
        }


@dataclass(slots=True)
class ModifiedEntry:
    key: str
    from_version_id: str
    to_version_id: str


@dataclass(slots=True)
class DiffResult:
    added: list[ObjectVersion] = field(default_factory=list)
    deleted: list[ObjectVersion] = field(default_factory=list)
    modified: list[ModifiedEntry] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "added": [{"key": o.key, "version_id": o.version_id} for o in self.added],
            "deleted": [{"key": o.key, "version_id": o.version_id} for o in self.deleted],
            "modified": [
                {"key": m.key, "from_version_id": m.from_version_id, "to_version_id": m.to_version_id}
                for m in self.modified
            ],
        }


@dataclass(slots=True)
class Timeline:
    start_ms: int
    end_ms: int
    bin_ms: int
    created: list[int]
    deleted: list[int]

    def to_json(self) -> dict[str, object]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "bin_ms": self.bin_ms,
            "created": self.created,
            "deleted": self.deleted,
        }


@dataclass(slots=True)
class BucketRecord:
    name: str
    tracked_ms: int | None
    versioning: str | None
    last_sync_ms: int | None
    version_count: int
    first_ms: int | None
    last_ms: int | None
    sync_in_progress: bool

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "tracked_ms": self.tracked_ms,
            "versioning": self.versioning,
            "last_sync_ms": self.last_sync_ms,
            "version_count": self.version_count,
            "first_ms": self.first_ms,
            "last_ms": self.last_ms,
            "sync_in_progress": self.sync_in_progress,
        }


@dataclass(slots=True)
class SyncCheckpoint:
    """Where an interrupted scan resumes: after ``key_marker`` (every key up to and including
    it is committed). ``started_ms`` is when the scan began."""

    key_marker: str | None
    started_ms: int


@dataclass(slots=True)
class LabelRecord:
    name: str
    bucket: str
    prefix: str
    kind: str
    start_ms: int | None
    end_ms: int
    spec: str
    fingerprint: str
    object_count: int
    total_bytes: int
    description: str
    created_ms: int

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "kind": self.kind,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "spec": self.spec,
            "fingerprint": self.fingerprint,
            "object_count": self.object_count,
            "total_bytes": self.total_bytes,
            "description": self.description,
            "created_ms": self.created_ms,
            "created": format_iso(self.created_ms),
        }
