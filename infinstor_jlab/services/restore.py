"""Restore a prefix to a past time: make the live objects under it equal the snapshot at T.

Nothing is ever permanently deleted. A key whose version at T differs from what is current
gets that old version copied back as a new current version (CopyObject with the source
version id; UploadPartCopy for objects over 5 GiB and for multipart objects, with their
original part layout so the copy keeps the same ETag); a key absent at T gets a delete marker
(DeleteObject without a version id). User metadata, content type and tags are kept.

The plan comes from the index (the snapshot at T against what the index holds as current),
and the live state of the prefix is read with ListObjectVersions right before acting: a key
that S3 shows changed since the index last saw it was written after the last sync, and is
reported and skipped unless ``force``. A plan is computed from the live state each time, so
a rerun after a crash or Ctrl-C does only what is left (keys already restored match T and
count as unchanged). Before changing anything the current state is pinned as a label
(``before-restore-<time>``), so the restore can itself be undone by restoring that label;
afterwards the live prefix is listed again and compared with the view at T.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ..errors import BadRequest, BadTimeSpec, Conflict, InfinstorError, UnknownLabel
from ..index.models import ObjectVersion, VersionEntry
from ..timespec import TimeSpec, format_tm, now_ms, snapshot_spec, wait_past_second
from .catchup import needs_catch_up
from .events import merge_listing
from .s3 import VersionPage, call_s3, get_versioning, iter_version_pages, s3_error_code
from .views import refuse_future

if TYPE_CHECKING:
    from .core import InfinstorService

# CopyObject copies at most 5 GiB; larger objects are copied part by part.
MULTIPART_COPY_THRESHOLD = 5 * 1024**3
# Part size for a multipart copy of an object whose original part layout is not known.
COPY_PART_SIZE = 512 * 1024**2
MAX_PARTS = 10_000
DEFAULT_PARALLEL = 8
# Storage classes whose objects must be restored from the archive before S3 can copy them.
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
_ARCHIVE_ERRORS = frozenset({"InvalidObjectState", "ObjectNotInActiveTierError"})
LABEL_PREFIX = "before-restore-"

Progress = Callable[[int, int], None]


def _etag(value: str) -> str:
    return (value or "").strip().strip('"')


def _multipart_parts(etag: str) -> int:
    """The part count a multipart ETag ("<md5>-N") carries; 0 for a single-part ETag."""
    _, dash, count = _etag(etag).rpartition("-")
    return int(count) if dash and count.isdigit() else 0


@dataclass
class LiveKey:
    """One key as ListObjectVersions shows it now: its current version (None when the key
    is absent: no version, or a delete marker on top) and every version still in S3 with its
    storage class."""

    current: VersionEntry | None = None
    versions: dict[str, tuple[VersionEntry, str]] = field(default_factory=dict)


def list_prefix(client: Any, bucket: str, prefix: str) -> tuple[list[VersionPage], int]:
    """One ListObjectVersions listing of ``prefix``: its pages and when it began (ms)."""
    started = now_ms()
    return list(iter_version_pages(client, bucket, prefix=prefix or None)), started


def read_live(
    client: Any, bucket: str, prefix: str, pages: list[VersionPage] | None = None
) -> dict[str, LiveKey]:
    """The live state of every key under ``prefix``, from ListObjectVersions (or from the
    ``pages`` of a listing already made)."""
    if pages is None:
        pages = list_prefix(client, bucket, prefix)[0]
    out: dict[str, LiveKey] = {}
    newest: dict[str, VersionEntry] = {}
    flagged: set[str] = set()
    for page in pages:
        classes = page.storage_classes or [""] * len(page.entries)
        for entry, is_latest, klass in zip(page.entries, page.latest, classes):
            if prefix and not entry.key.startswith(prefix):
                continue
            live = out.setdefault(entry.key, LiveKey())
            live.versions[entry.version_id] = (entry, klass)
            newest.setdefault(entry.key, entry)  # the XML lists a key's newest entry first
            if is_latest:
                flagged.add(entry.key)
                live.current = None if entry.is_delete_marker else entry
    for key, entry in newest.items():
        if key not in flagged and not entry.is_delete_marker:  # a store without IsLatest
            out[key].current = entry
    return out


def _same_content(target: ObjectVersion | None, live: VersionEntry | None) -> bool:
    """Whether the live current version already is the content of the version at T: the
    same version, or a copy of it (same ETag and size)."""
    if target is None or live is None:
        return target is None and live is None
    if target.version_id == live.version_id:
        return True
    return bool(_etag(target.etag)) and (
        _etag(target.etag) == _etag(live.etag) and target.size == live.size
    )


def _same_version(known: ObjectVersion | None, live: VersionEntry | None) -> bool:
    if known is None or live is None:
        return known is None and live is None
    return known.version_id == live.version_id


@dataclass
class Action:
    """``copy``: bring ``version_id`` back as the current version; ``delete``: add a delete
    marker. ``change`` says what the user sees: bring back (absent now), revert (different
    now), delete (absent at T)."""

    kind: str
    key: str
    change: str
    version_id: str | None = None
    size: int = 0
    etag: str = ""
    storage_class: str = ""
    live_version_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "key": self.key,
            "change": self.change,
            "live_version_id": self.live_version_id,
        }
        if self.kind == "copy":
            doc.update({"version_id": self.version_id, "size": self.size})
        return doc


@dataclass
class RestorePlan:
    bucket: str
    prefix: str
    spec: TimeSpec
    copies: list[Action] = field(default_factory=list)
    deletes: list[Action] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)
    planned_ms: int = 0

    @property
    def actions(self) -> list[Action]:
        return self.copies + self.deletes

    @property
    def bytes_to_copy(self) -> int:
        return sum(a.size for a in self.copies)

    @property
    def fingerprint(self) -> str:
        """A SHA-256 over what the plan would do: a caller that showed a plan passes it back
        so that the restore refuses to run a different one."""
        h = hashlib.sha256()
        for a in sorted(self.actions, key=lambda a: (a.key, a.kind)):
            line = f"{a.kind}\t{a.key}\t{a.version_id or ''}\t{a.live_version_id or ''}\n"
            h.update(line.encode("utf-8", "surrogatepass"))
        return "sha256:" + h.hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "to": self.spec.to_dict(),
            "copy": [a.to_json() for a in self.copies],
            "delete": [a.to_json() for a in self.deletes],
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "forced": self.forced,
            "bytes_to_copy": self.bytes_to_copy,
            "fingerprint": self.fingerprint,
        }


@dataclass
class _Planned:
    """A plan with the listing it was made from (``merged``: already in the index)."""

    plan: RestorePlan
    pages: list[VersionPage]
    listed_ms: int
    merged: bool


@dataclass
class RestoreCheck:
    """The live prefix against the view at T after the restore."""

    keys_checked: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        """The live prefix equals the view at T, key for key."""
        return not self.mismatches

    @property
    def unexpected(self) -> list[dict[str, Any]]:
        """Differences other than the keys the plan skipped (and said why)."""
        return [m for m in self.mismatches if not m.get("skipped")]

    def to_json(self) -> dict[str, Any]:
        return {
            "matches": self.matches,
            "unexpected": len(self.unexpected),
            "keys_checked": self.keys_checked,
            "mismatches": self.mismatches,
        }


@dataclass
class RestoreResult:
    plan: RestorePlan
    dry_run: bool
    label: str | None = None
    copied: int = 0
    deleted: int = 0
    bytes_copied: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    check: RestoreCheck | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Done with nothing failed or skipped, and the live prefix equals the view at T."""
        if self.dry_run:
            return True
        return (
            not self.failed and not self.plan.skipped and (self.check is None or self.check.matches)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_json(),
            "dry_run": self.dry_run,
            "ok": self.ok,
            "label": self.label,
            "copied": self.copied,
            "deleted": self.deleted,
            "bytes_copied": self.bytes_copied,
            "failed": self.failed,
            "check": self.check.to_json() if self.check else None,
            "seconds": round(self.seconds, 3),
        }


class RestoreService:
    """Restores over one :class:`InfinstorService` (its index, views and S3 clients)."""

    def __init__(self, service: InfinstorService) -> None:
        self.service = service

    # -- the plan ---------------------------------------------------------------------------
    def _check_target(self, bucket: str, prefix: str, spec: TimeSpec) -> None:
        if spec.is_slice:
            raise BadTimeSpec(
                f"A restore puts s3://{bucket}/{prefix} back as it was at one time; "
                f"{spec.display()} is a slice. Give a single time (or a snapshot label)."
            )
        if spec.label_bucket and spec.label_bucket != bucket:
            raise BadRequest(
                f"Label {spec.label!r} is a view of bucket {spec.label_bucket!r}, not "
                f"{bucket!r}; restore s3://{spec.label_bucket}/{spec.label_prefix or ''}."
            )
        refuse_future(spec)
        status = get_versioning(self.service.s3(), bucket)
        if status != "Enabled":
            raise BadRequest(
                f"Versioning is {'suspended' if status else 'off'} on bucket {bucket!r}: a "
                "restore there would overwrite and delete objects for good. Enable "
                f"versioning (`infinstor-jlab track {bucket}`) first."
            )

    def plan(
        self,
        bucket: str,
        prefix: str,
        spec: TimeSpec,
        *,
        force: bool = False,
        on_catch_up: Callable[[str], None] | None = None,
    ) -> RestorePlan:
        """What a restore of ``prefix`` to ``spec`` would do now. The live state is read
        from S3; keys it shows changed since the index last saw them are skipped (listed in
        ``skipped``) unless ``force``."""
        return self._plan(bucket, prefix, spec, force=force, on_catch_up=on_catch_up).plan

    def _plan(
        self,
        bucket: str,
        prefix: str,
        spec: TimeSpec,
        *,
        force: bool = False,
        on_catch_up: Callable[[str], None] | None = None,
        list_after_ms: int | None = None,
    ) -> _Planned:
        """The plan and the one listing of the prefix it was made from. That listing is
        also what brings the index up to ``spec`` when the index holds the prefix only up to
        an earlier time (it is merged into the index then), and it begins only once the
        second of ``list_after_ms`` is over (so that a label of that time can be pinned from
        it, exactly, with no listing of its own)."""
        svc = self.service
        record = svc.index.get_bucket(bucket)  # unknown bucket -> friendly 404
        self._check_target(bucket, prefix, spec)
        planned = now_ms()
        catch_up = needs_catch_up(record, spec)
        if catch_up and not prefix:
            # The whole bucket: a fresh sync pass (see InfinstorService.index_through).
            svc.index_through(bucket, prefix, spec, record=record, on_catch_up=on_catch_up)
            catch_up = False
        elif catch_up and on_catch_up is not None:
            on_catch_up(
                f"Reading s3://{bucket}/{prefix} again from S3 first: the index holds "
                f"it up to {record.synced_through()}, before {spec.display()}."
            )
        if catch_up or list_after_ms is not None:
            wait_past_second(max(spec.end_ms if catch_up else 0, list_after_ms or 0))
        # What the index holds as current, before this listing tells it anything.
        known = {
            o.key: o for o in svc.iter_objects(bucket, spec=svc.parse_spec("now"), prefix=prefix)
        }
        pages, listed_ms = list_prefix(svc.s3(), bucket, prefix)
        if catch_up:
            # As a label of a time after the last sync does: the listing brings the index up
            # to the time, and the plan is made from what it then holds.
            merge_listing(svc.index, bucket, pages, listed_ms)
            known = {
                o.key: o
                for o in svc.iter_objects(bucket, spec=svc.parse_spec("now"), prefix=prefix)
            }
        target = {o.key: o for o in svc.iter_objects(bucket, spec=spec, prefix=prefix)}
        live = read_live(svc.s3(), bucket, prefix, pages)
        plan = RestorePlan(bucket=bucket, prefix=prefix, spec=spec, planned_ms=planned)
        out = _Planned(plan=plan, pages=pages, listed_ms=listed_ms, merged=catch_up)
        for key in sorted(set(target) | set(known) | set(live)):
            want = target.get(key)
            state = live.get(key, LiveKey())
            now = state.current
            if _same_content(want, now):
                plan.unchanged += 1
                continue
            if not _same_version(known.get(key), now):
                if not force:
                    plan.skipped.append(
                        {
                            "key": key,
                            "reason": "changed",
                            "message": (
                                "changed in S3 since the index last saw it (written after "
                                "the last sync); not overwritten. Review the plan again "
                                "(--dry-run; a sync brings the change into the index), or "
                                "restore with --force."
                            ),
                        }
                    )
                    continue
                plan.forced.append(key)
            live_id = now.version_id if now is not None else None
            if want is None:
                plan.deletes.append(Action("delete", key, "delete", live_version_id=live_id))
                continue
            found = state.versions.get(want.version_id)
            if found is None or found[0].is_delete_marker:
                plan.skipped.append(
                    {
                        "key": key,
                        "reason": "gone",
                        "message": (
                            f"version {want.version_id} is no longer in S3 (removed by a "
                            "lifecycle rule or a permanent delete); it cannot be brought back."
                        ),
                    }
                )
                continue
            entry, klass = found
            if klass in ARCHIVE_CLASSES:
                plan.skipped.append(_archived(key, want.version_id, klass))
                continue
            plan.copies.append(
                Action(
                    "copy",
                    key,
                    "bring back" if now is None else "revert",
                    version_id=want.version_id,
                    size=entry.size,
                    etag=entry.etag,
                    storage_class=klass,
                    live_version_id=live_id,
                )
            )
        return out

    # -- running it -------------------------------------------------------------------------
    def restore(
        self,
        bucket: str,
        prefix: str,
        spec: TimeSpec,
        *,
        dry_run: bool = False,
        force: bool = False,
        parallel: int = DEFAULT_PARALLEL,
        expect: str | None = None,
        on_progress: Progress | None = None,
        on_catch_up: Callable[[str], None] | None = None,
    ) -> RestoreResult:
        """Plan, pin the current state as a label, act, and check. ``expect`` (a plan's
        fingerprint) refuses to act when the plan computed now differs from the one shown."""
        if not 1 <= parallel <= 64:
            raise BadRequest("parallel must be between 1 and 64.")
        started = time.monotonic()
        # The state before, pinned as a label if anything is to change: the time it is
        # pinned at, which the re-check's listing below begins after (the second over).
        before_ms = now_ms()
        planned = self._plan(
            bucket,
            prefix,
            spec,
            force=force,
            on_catch_up=on_catch_up,
            list_after_ms=None if dry_run else before_ms,
        )
        plan = planned.plan
        result = RestoreResult(plan=plan, dry_run=dry_run)
        if expect and expect != plan.fingerprint:
            raise Conflict(
                f"s3://{bucket}/{prefix} changed since the restore plan was shown; review the "
                "new plan and confirm again."
            )
        if dry_run:
            result.seconds = time.monotonic() - started
            return result
        written: dict[str, str] = {}
        pages = planned.pages
        if plan.actions:
            svc = self.service
            # The re-check's listing is the state before: the index holds it (every version
            # up to ``before_ms``), so the label needs no listing of its own.
            if not planned.merged:
                merge_listing(svc.index, bucket, pages, planned.listed_ms)
            result.label = self._pin_before(bucket, prefix, spec, before_ms)
            self._act(plan, result, written, parallel, on_progress)
            # One listing for both the check and the index, which learns the new versions
            # now, not at the next sync.
            pages, listed_ms = list_prefix(svc.s3(), bucket, prefix)
            merge_listing(svc.index, bucket, pages, listed_ms)
        skipped = {s["key"] for s in plan.skipped} | {f["key"] for f in result.failed}
        result.check = self.check(
            bucket, prefix, spec, written=written, skipped=skipped, pages=pages
        )
        result.seconds = time.monotonic() - started
        return result

    def _pin_before(self, bucket: str, prefix: str, spec: TimeSpec, at_ms: int) -> str:
        """Pin the prefix as of ``at_ms`` (which the index holds: the caller has just
        merged a listing that began after that second) as ``before-restore-<time>``."""
        svc = self.service
        stamp = format_tm(at_ms)[2:]
        now = snapshot_spec(at_ms)
        for n in range(1, 100):
            name = f"{LABEL_PREFIX}{stamp}" + (f"-{n}" if n > 1 else "")
            try:
                svc.index.get_label(name)
            except UnknownLabel:
                svc.create_label(
                    name,
                    bucket,
                    prefix,
                    now,
                    description=(
                        f"s3://{bucket}/{prefix} before it was restored to {spec.canonical()}; "
                        "restore this label to undo that restore."
                    ),
                    indexed=True,
                )
                return name
        raise BadRequest("Too many restores in one second; try again.")  # pragma: no cover

    def _act(
        self,
        plan: RestorePlan,
        result: RestoreResult,
        written: dict[str, str],
        parallel: int,
        on_progress: Progress | None,
    ) -> None:
        total = len(plan.actions)
        done = 0
        # Big copies first: they take longest, and the small ones fill in around them.
        actions = sorted(plan.actions, key=lambda a: -a.size)
        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="infinstor-restore")
        pending: dict[Future[str | None], Action] = {}
        queue = iter(actions)
        # Shared by the threads (boto3 clients are thread-safe) while its connection pool
        # (botocore's default: 10) holds them all; past that each thread makes its own.
        client = self.service.s3() if parallel <= 10 else None
        try:
            # At most ``parallel`` actions in flight: an interruption leaves little running.
            for action in itertools.islice(queue, parallel):
                pending[pool.submit(self._do, client, plan.bucket, action)] = action
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    action = pending.pop(fut)
                    try:
                        new_id = fut.result()
                    except _Archived as exc:
                        plan.skipped.append(_archived(action.key, action.version_id, exc.klass))
                    except InfinstorError as exc:
                        result.failed.append({"key": action.key, "error": exc.message})
                    else:
                        if action.kind == "copy":
                            result.copied += 1
                            result.bytes_copied += action.size
                            if new_id:
                                written[action.key] = new_id
                        else:
                            result.deleted += 1
                    done += 1
                    if on_progress is not None:
                        on_progress(done, total)
                    for action in itertools.islice(queue, 1):
                        pending[pool.submit(self._do, client, plan.bucket, action)] = action
        finally:
            # Ctrl-C (or a callback that raised): what is running finishes, the rest is not
            # started, and a rerun plans what is left.
            pool.shutdown(wait=True, cancel_futures=True)

    def _do(self, client: Any, bucket: str, action: Action) -> str | None:
        client = client or self.service.s3()
        if action.kind == "delete":
            # No VersionId: S3 adds a delete marker; the key's versions all stay.
            resp = call_s3(client.delete_object, bucket, Bucket=bucket, Key=action.key)
            version = resp.get("VersionId")
            return str(version) if version is not None else None
        try:
            if action.size > MULTIPART_COPY_THRESHOLD or _multipart_parts(action.etag) > 1:
                return _multipart_copy(client, bucket, action)
            params: dict[str, Any] = {
                "Bucket": bucket,
                "Key": action.key,
                "CopySource": {
                    "Bucket": bucket,
                    "Key": action.key,
                    "VersionId": action.version_id,
                },
                "MetadataDirective": "COPY",
                "TaggingDirective": "COPY",
            }
            if action.storage_class and action.storage_class != "STANDARD":
                params["StorageClass"] = action.storage_class
            resp = call_s3(client.copy_object, bucket, **params)
            version = resp.get("VersionId")
            return str(version) if version is not None else None
        except InfinstorError as exc:
            if s3_error_code(exc) in _ARCHIVE_ERRORS:
                raise _Archived(action.storage_class or "archive") from exc
            raise

    # -- the check --------------------------------------------------------------------------
    def check(
        self,
        bucket: str,
        prefix: str,
        spec: TimeSpec,
        *,
        written: dict[str, str] | None = None,
        skipped: set[str] | None = None,
        pages: list[VersionPage] | None = None,
    ) -> RestoreCheck:
        """Compare the live prefix (ListObjectVersions now, or the ``pages`` of a listing
        made after the last change) with the view at ``spec``: the same keys, each with the
        content (version, or a copy of it: same ETag and size)."""
        svc = self.service
        written = written or {}
        target = {o.key: o for o in svc.iter_objects(bucket, spec=spec, prefix=prefix)}
        live = read_live(svc.s3(), bucket, prefix, pages)
        report = RestoreCheck()
        for key in sorted(set(target) | {k for k, v in live.items() if v.current is not None}):
            report.keys_checked += 1
            want = target.get(key)
            now = live[key].current if key in live else None
            if _same_content(want, now) or (now is not None and written.get(key) == now.version_id):
                continue
            if want is None:
                problem = "extra"
            elif now is None:
                problem = "missing"
            else:
                problem = "different"
            report.mismatches.append(
                {
                    "key": key,
                    "problem": problem,
                    "expected_version_id": want.version_id if want else None,
                    "live_version_id": now.version_id if now else None,
                    "skipped": key in (skipped or ()),
                }
            )
        return report


class _Archived(InfinstorError):
    def __init__(self, klass: str) -> None:
        super().__init__(f"in storage class {klass}")
        self.klass = klass


def _archived(key: str, version_id: str | None, klass: str) -> dict[str, str]:
    return {
        "key": key,
        "reason": "archived",
        "message": (
            f"version {version_id} is in the {klass} storage class; S3 cannot copy it until "
            "it is restored from the archive (S3 RestoreObject). Restore it from the archive, "
            "then run this restore again."
        ),
    }


def _part_ranges(client: Any, bucket: str, action: Action) -> list[tuple[int, int]]:
    """Byte ranges (inclusive) of the parts to copy: the source's own part layout when it
    is a multipart object (so the copy gets the same ETag), else parts of COPY_PART_SIZE."""
    size = action.size
    count = _multipart_parts(action.etag)
    sizes: list[int] = []
    if count > 1:
        head = call_s3(
            client.head_object,
            bucket,
            Bucket=bucket,
            Key=action.key,
            VersionId=action.version_id,
            PartNumber=1,
        )
        first = int(head.get("ContentLength") or 0)
        count = int(head.get("PartsCount") or count)
        if first and first * (count - 1) < size <= first * count:
            sizes = [first] * (count - 1) + [size - first * (count - 1)]
        elif first:
            sizes = [first]
            for n in range(2, count + 1):
                part = call_s3(
                    client.head_object,
                    bucket,
                    Bucket=bucket,
                    Key=action.key,
                    VersionId=action.version_id,
                    PartNumber=n,
                )
                sizes.append(int(part.get("ContentLength") or 0))
            if sum(sizes) != size:
                sizes = []
    if not sizes:
        part = max(COPY_PART_SIZE, -(-size // MAX_PARTS))
        sizes = [min(part, size - at) for at in range(0, size, part)] or [0]
    ranges = []
    at = 0
    for n in sizes:
        ranges.append((at, at + n - 1))
        at += n
    return ranges


_HEAD_TO_CREATE = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
    "WebsiteRedirectLocation",
)


def _multipart_copy(client: Any, bucket: str, action: Action) -> str | None:
    """Copy one version part by part (UploadPartCopy), keeping its metadata and tags."""
    source = {"Bucket": bucket, "Key": action.key, "VersionId": action.version_id}
    head = call_s3(
        client.head_object, bucket, Bucket=bucket, Key=action.key, VersionId=action.version_id
    )
    tags = call_s3(
        client.get_object_tagging,
        bucket,
        Bucket=bucket,
        Key=action.key,
        VersionId=action.version_id,
    ).get("TagSet", [])
    create: dict[str, Any] = {"Bucket": bucket, "Key": action.key}
    for name in _HEAD_TO_CREATE:
        if head.get(name):
            create[name] = head[name]
    if head.get("Metadata"):
        create["Metadata"] = head["Metadata"]
    if tags:
        create["Tagging"] = urlencode([(t["Key"], t["Value"]) for t in tags])
    if action.storage_class and action.storage_class != "STANDARD":
        create["StorageClass"] = action.storage_class
    ranges = _part_ranges(client, bucket, action)
    upload = call_s3(client.create_multipart_upload, bucket, **create)["UploadId"]
    try:
        parts = []
        for number, (first, last) in enumerate(ranges, start=1):
            extra = {"CopySourceRange": f"bytes={first}-{last}"} if last >= first else {}
            resp = call_s3(
                client.upload_part_copy,
                bucket,
                Bucket=bucket,
                Key=action.key,
                UploadId=upload,
                PartNumber=number,
                CopySource=source,
                **extra,
            )
            parts.append({"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]})
        done = call_s3(
            client.complete_multipart_upload,
            bucket,
            Bucket=bucket,
            Key=action.key,
            UploadId=upload,
            MultipartUpload={"Parts": parts},
        )
    except BaseException:
        # The first error is the one to report; an abort that fails leaves an upload that
        # a lifecycle rule for incomplete uploads removes.
        with contextlib.suppress(Exception):
            client.abort_multipart_upload(Bucket=bucket, Key=action.key, UploadId=upload)
        raise
    version = done.get("VersionId")
    return str(version) if version is not None else None
