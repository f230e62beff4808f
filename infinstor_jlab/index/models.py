"""Typed records the index returns. ``to_json`` gives the CLI/REST wire shapes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _encode_json_string
from typing import NamedTuple, TypedDict

from ..timespec import format_human, format_iso
from .codec import decode_etag, decode_version_id, unpack_version, version_id_of_packed


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


class ObjectVersion:
    """One version of one key. Version id, ETag and size are decoded from the index's packed
    form (``codec.pack_version``) only when read: a listing page creates thousands of these
    and most consumers need only some fields."""

    __slots__ = (
        "_etag",
        "_packed",
        "_size",
        "_vid",
        "is_delete_marker",
        "is_latest",
        "key",
        "last_modified_ms",
    )

    def __init__(
        self,
        key: str,
        version_id: str,
        last_modified_ms: int,
        size: int,
        etag: str,
        is_delete_marker: bool = False,
        is_latest: bool = False,
    ) -> None:
        self.key = key
        self._packed = b""
        self._vid: str | None = version_id
        self.last_modified_ms = last_modified_ms
        self._size: int | None = size
        self._etag: str | None = etag
        self.is_delete_marker = is_delete_marker
        self.is_latest = is_latest

    @classmethod
    def from_stored(
        cls, key: str, packed: bytes, t: int, is_delete_marker: bool, is_latest: bool = False
    ) -> ObjectVersion:
        obj = cls.__new__(cls)
        obj.key = key
        obj._packed = packed
        obj._vid = obj._etag = obj._size = None
        obj.last_modified_ms = t
        obj.is_delete_marker = is_delete_marker
        obj.is_latest = is_latest
        return obj

    def _unpack(self) -> tuple[str, int]:
        vid, size, etag_raw, _ = unpack_version(self._packed)
        if self._vid is None:
            self._vid = decode_version_id(vid)
        self._size = size
        etag = self._etag = decode_etag(etag_raw)
        return etag, size

    @property
    def version_id(self) -> str:
        vid = self._vid
        if vid is None:
            # Only the id: many callers read only keys and version ids.
            vid = self._vid = version_id_of_packed(self._packed)
        return vid

    @property
    def etag(self) -> str:
        etag = self._etag
        if etag is None:
            etag = self._unpack_etag_and_size()[0]
        return etag

    @property
    def size(self) -> int:
        size = self._size
        if size is None:
            size = self._unpack_etag_and_size()[1]
        return size

    def _unpack_etag_and_size(self) -> tuple[str, int]:
        """Both without the version id when both lengths take one byte (below 128: see
        codec.pack_version); otherwise the whole value is unpacked. Returns (etag, size)."""
        p = self._packed
        i = p[0] + 1
        if i > 0x80 or p[i] & 0x80:
            return self._unpack()
        end = i + 1 + p[i]
        etag = self._etag = decode_etag(p[i + 1 : end])
        size = self._size = int.from_bytes(p[end:], "big") >> 1
        return etag, size

    def _fields(self) -> tuple[str, str, int, int, str, bool, bool]:
        return (
            self.key,
            self.version_id,
            self.last_modified_ms,
            self.size,
            self.etag,
            self.is_delete_marker,
            self.is_latest,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectVersion):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"ObjectVersion(key={self.key!r}, version_id={self.version_id!r}, "
            f"last_modified_ms={self.last_modified_ms}, size={self.size}, "
            f"etag={self.etag!r}, is_delete_marker={self.is_delete_marker}, "
            f"is_latest={self.is_latest})"
        )

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

    def to_json(self) -> dict[str, object]:
        return {
            "objects": [o.to_json() for o in self.objects],
            "prefixes": list(self.prefixes),
            "next_token": self.next_token,
        }

    def to_json_text(self, extra: dict[str, object] | None = None) -> str:
        """``json.dumps(self.to_json() | extra)``, written directly: a listing page is the
        most frequent answer of the server and this costs a third of building and encoding
        1000 dicts (every string still goes through json's own C escaper)."""
        enc = _encode_json_string
        iso = format_iso
        objects = ", ".join(
            [
                f'{{"key": {enc(o.key)}, "version_id": {enc(o.version_id)}, "size": {o.size}, '
                f'"etag": {enc(o.etag)}, "last_modified": "{iso(o.last_modified_ms)}"}}'
                for o in self.objects
            ]
        )
        rest = json.dumps(
            {"prefixes": self.prefixes, "next_token": self.next_token, **(extra or {})}
        )
        return f'{{"objects": [{objects}], {rest[1:]}'


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
                {
                    "key": m.key,
                    "from_version_id": m.from_version_id,
                    "to_version_id": m.to_version_id,
                }
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


class EventSource(TypedDict):
    """A bucket's S3 event source: the queue its events go to, and what was applied."""

    queue_url: str | None
    queue_arn: str | None
    notification_id: str | None
    last_event_ms: int | None
    events_applied: int
    malformed_events: int
    last_error: str | None


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

    def covers(self, ms: int) -> bool:
        """Whether the index holds every version up to ``ms``: the last full sync pass
        began after it (a view at or after that may miss what was written since)."""
        return self.last_sync_ms is not None and ms < self.last_sync_ms

    def synced_through(self) -> str:
        """How far the index goes, for messages: 'its last sync at ...'."""
        if self.last_sync_ms is None:
            return "a sync that has not finished"
        return f"its last sync at {format_human(self.last_sync_ms)}"

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
    #: Who made it: the Jupyter user (on a hub, the hub user) or the OS user of a CLI.
    created_by: str = ""

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
            "created_by": self.created_by,
        }
