"""Take a view home: download exactly a view's versions into a directory, and verify a copy.

``get`` writes every object of the view (the exact version the index resolves) under DIR, in
parallel, each file atomically (a temp name in the same folder, then a rename), and a manifest
``infinstor-manifest.json`` in DIR: the view, its fingerprint, and per file the key, version
id, size, ETag and SHA-256. A rerun fetches only what is missing or differs (a file whose size
and modification time are those the manifest recorded is taken as is; otherwise it is hashed
again, and fetched again if its SHA-256 differs).

Keys map to local paths relative to the view's prefix, up to its last ``/``: the key
``tables/2026/a.csv`` of ``s3://b/tables/`` becomes ``DIR/2026/a.csv``. Each ``/`` starts a
folder. Control characters and ``\\`` in a key are written as ``%XX``. A key that cannot be a
file under DIR is refused, listed in the manifest and reported: a ``..`` or ``.`` component,
an empty component (``//``, a leading ``/``), a path that leaves DIR through a symbolic link,
a key that maps to the same path as another, a file where another key needs a folder, and the
manifest's own name. A key ending in ``/`` with no content is a folder marker: it becomes a
folder.

``verify`` compares DIR with its manifest (missing, extra and changed files) and, given a
view, the manifest with the view in the index (missing, extra and changed versions).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import BadRequest, InfinstorError, NotFound
from ..fingerprint import fingerprint
from ..index.models import ObjectVersion
from .views import View, refuse_future

if TYPE_CHECKING:
    from .core import InfinstorService

MANIFEST_NAME = "infinstor-manifest.json"
MANIFEST_FORMAT = 1
TMP_MARK = ".infinstor-part-"
CHUNK = 1024 * 1024
DEFAULT_PARALLEL = 8
POOL_CONNECTIONS = 10  # botocore's default max_pool_connections

Progress = Callable[[int, int, int], None]  # files done, files in all, bytes fetched


def _encode_component(text: str) -> str:
    return "".join(f"%{ord(c):02X}" if ord(c) < 0x20 or c in "\\\x7f" else c for c in text)


def base_of(prefix: str) -> str:
    """The part of every key that the local paths leave out: the prefix up to its last /."""
    return prefix[: prefix.rfind("/") + 1]


def local_path(key: str, base: str) -> str:
    """The path (relative, with /) a key maps to under DIR; BadRequest when it cannot be one.
    Folder markers map to their folder with a trailing /."""
    rel = key.removeprefix(base)
    folder = rel.endswith("/")
    parts = (rel[:-1] if folder else rel).split("/")
    for part in parts:
        if part in ("", ".", ".."):
            why = "would leave the folder" if part == ".." else "has an empty or '.' component"
            raise BadRequest(f"{key!r} {why}; it cannot be written under the folder.")
    path = "/".join(_encode_component(p) for p in parts)
    if path == MANIFEST_NAME:
        raise BadRequest(f"{key!r} has the name of the manifest file; it is not written.")
    return path + ("/" if folder else "")


@dataclass
class FileRecord:
    key: str
    version_id: str
    size: int
    etag: str
    sha256: str
    path: str
    mtime_ns: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "version_id": self.version_id,
            "size": self.size,
            "etag": self.etag,
            "sha256": self.sha256,
            "path": self.path,
            "mtime_ns": self.mtime_ns,
        }


@dataclass
class GetResult:
    directory: str
    view: dict[str, Any]
    fingerprint: str
    files: int = 0
    fetched: int = 0
    kept: int = 0
    bytes_fetched: int = 0
    removed: int = 0
    folders: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.refused and not self.failed

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "view": self.view,
            "fingerprint": self.fingerprint,
            "ok": self.ok,
            "files": self.files,
            "fetched": self.fetched,
            "kept": self.kept,
            "bytes_fetched": self.bytes_fetched,
            "removed": self.removed,
            "folders": self.folders,
            "refused": self.refused,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class VerifyResult:
    directory: str
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    view_missing: list[str] = field(default_factory=list)
    view_extra: list[str] = field(default_factory=list)
    view_changed: list[str] = field(default_factory=list)
    checked: int = 0
    complete: bool = True

    @property
    def ok(self) -> bool:
        return self.complete and not (
            self.missing
            or self.extra
            or self.changed
            or self.view_missing
            or self.view_extra
            or self.view_changed
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "ok": self.ok,
            "complete": self.complete,
            "checked": self.checked,
            "missing": self.missing,
            "extra": self.extra,
            "changed": self.changed,
            "view_missing": self.view_missing,
            "view_extra": self.view_extra,
            "view_changed": self.view_changed,
        }


def _view_doc(view: View) -> dict[str, Any]:
    spec = view.spec
    return {
        "bucket": view.bucket,
        "prefix": view.prefix,
        "within": view.within,
        "kind": spec.kind,
        "start_ms": spec.start_ms,
        "end_ms": spec.end_ms,
        "spec": spec.canonical(),
        "label": spec.label,
    }


def read_manifest(directory: str) -> dict[str, Any] | None:
    path = os.path.join(directory, MANIFEST_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BadRequest(
            f"The manifest {path} cannot be read ({exc}); remove it to download the view "
            "again from scratch."
        ) from exc
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise BadRequest(f"{path} is not an infinstor-jlab manifest (format {MANIFEST_FORMAT}).")
    return doc


def _write_json_atomically(path: str, doc: dict[str, Any]) -> None:
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=TMP_MARK, dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _inside(root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


class LocalCopyService:
    """``get`` and ``verify`` over one :class:`InfinstorService`."""

    def __init__(self, service: InfinstorService) -> None:
        self.service = service

    def _objects(self, view: View) -> list[ObjectVersion]:
        # A label's view holds only keys under the label's prefix, however broad the prefix.
        prefix = view.prefix
        if view.within and not prefix.startswith(view.within):
            prefix = view.within
        return list(self.service.iter_objects(view.bucket, spec=view.spec, prefix=prefix))

    def get(
        self,
        view: View,
        directory: str,
        *,
        parallel: int = DEFAULT_PARALLEL,
        on_progress: Progress | None = None,
        on_catch_up: Callable[[str], None] | None = None,
    ) -> GetResult:
        if not 1 <= parallel <= 64:
            raise BadRequest("parallel must be between 1 and 64.")
        started = time.monotonic()
        svc = self.service
        svc.index.get_bucket(view.bucket)
        refuse_future(view.spec)
        if not view.spec.label:  # a label's versions were indexed when it was pinned
            svc.index_through(view.bucket, view.prefix, view.spec, on_catch_up=on_catch_up)
        objects = self._objects(view)
        os.makedirs(directory, exist_ok=True)
        root = os.path.realpath(directory)
        old = read_manifest(directory)
        if old is not None and old.get("view", {}).get("bucket") not in (None, view.bucket):
            raise BadRequest(
                f"{directory} holds a copy of bucket {old['view']['bucket']!r}; download "
                f"s3://{view.bucket} into another folder."
            )
        previous = {(f["key"], f["version_id"]): f for f in (old or {}).get("files", [])}
        result = GetResult(
            directory=directory,
            view=_view_doc(view),
            fingerprint=fingerprint(((o.key, o.version_id) for o in objects), presorted=True),
        )
        base = base_of(view.prefix)
        # Map every key first: refusals and collisions are known before anything is written.
        todo: list[tuple[ObjectVersion, str]] = []
        files: set[str] = set()
        folders: set[str] = set()
        for obj in objects:
            try:
                rel = local_path(obj.key, base)
            except BadRequest as exc:
                result.refused.append({"key": obj.key, "reason": exc.message})
                continue
            if rel.endswith("/"):
                if obj.size:
                    result.refused.append(
                        {"key": obj.key, "reason": "ends in '/' but has content; not written."}
                    )
                    continue
                rel = rel[:-1]
                if rel in files:
                    result.refused.append({"key": obj.key, "reason": f"{rel} is a file."})
                    continue
                folders.add(rel)
                result.folders += 1
                continue
            parents = {rel[:i] for i in range(len(rel)) if rel[i] == "/"}
            if rel in files or rel in folders or parents & files:
                result.refused.append(
                    {
                        "key": obj.key,
                        "reason": f"maps to {rel}, which another key of the view already uses.",
                    }
                )
                continue
            files.add(rel)
            folders |= parents
            todo.append((obj, rel))
        for rel in sorted(folders):
            target = os.path.join(directory, *rel.split("/"))
            if not _inside(root, target):
                continue  # through a symbolic link: each key under it is refused below
            with contextlib.suppress(FileExistsError):
                os.makedirs(target, exist_ok=True)
        result.files = len(todo)
        records: list[FileRecord] = []
        done = [0]
        # One client for every download thread (boto3 clients are thread-safe; making one per
        # thread costs more CPU than a small file's download), while its connection pool
        # holds them all; past that, each thread makes its own.
        # Made on the first download: a rerun with nothing to fetch needs no client.
        shared: list[Any] = []
        lock = threading.Lock()

        def client() -> Any:
            if parallel > POOL_CONNECTIONS:
                return svc.s3()
            with lock:
                if not shared:
                    shared.append(svc.s3())
                return shared[0]

        def one(item: tuple[ObjectVersion, str]) -> tuple[FileRecord | None, bool, str, str]:
            """(record, fetched?, why refused, error)."""
            obj, rel = item
            path = os.path.join(directory, *rel.split("/"))
            if not _inside(root, path):
                return None, False, "leaves the folder through a symbolic link; not written.", ""
            kept = self._existing(path, obj, previous.get((obj.key, obj.version_id)))
            if kept is not None:
                return kept, False, "", ""
            try:
                return self._fetch(view.bucket, obj, path, rel, client()), True, "", ""
            except InfinstorError as exc:
                return None, False, "", exc.message
            except OSError as exc:
                return None, False, "", f"cannot write {path}: {exc.strerror or exc}"

        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="infinstor-get")
        try:
            for (obj, _rel), (record, fetched, why, error) in zip(todo, pool.map(one, todo)):
                if why:
                    result.refused.append({"key": obj.key, "reason": why})
                elif record is None:
                    result.failed.append({"key": obj.key, "error": error})
                else:
                    records.append(record)
                    if fetched:
                        result.fetched += 1
                        result.bytes_fetched += record.size
                    else:
                        result.kept += 1
                done[0] += 1
                if on_progress is not None:
                    on_progress(done[0], len(todo), result.bytes_fetched)
            result.removed = self._remove_stale(directory, root, previous, records)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            complete = done[0] == len(todo)
            _write_json_atomically(
                os.path.join(directory, MANIFEST_NAME),
                {
                    "format": MANIFEST_FORMAT,
                    "view": result.view,
                    "fingerprint": result.fingerprint,
                    "complete": complete and not result.failed,
                    "object_count": len(objects),
                    "files": [r.to_json() for r in sorted(records, key=lambda r: r.key)],
                    "folders": sorted(folders),
                    "refused": result.refused,
                },
            )
        result.seconds = time.monotonic() - started
        return result

    @staticmethod
    def _existing(path: str, obj: ObjectVersion, known: dict[str, Any] | None) -> FileRecord | None:
        """The record of a file already in place with the right content, else None."""
        if known is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        if st.st_size != obj.size:
            return None
        record = FileRecord(
            key=obj.key,
            version_id=obj.version_id,
            size=obj.size,
            etag=obj.etag,
            sha256=known["sha256"],
            path=known["path"],
            mtime_ns=st.st_mtime_ns,
        )
        if st.st_mtime_ns == known.get("mtime_ns"):
            return record
        return record if _sha256_of(path) == known["sha256"] else None

    def _fetch(
        self, bucket: str, obj: ObjectVersion, path: str, rel: str, client: Any
    ) -> FileRecord:
        resp = self.service.open_object(obj, bucket, client=client)
        body = resp["Body"]
        sha = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(prefix=TMP_MARK, dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "wb") as f:
                while chunk := body.read(CHUNK):
                    f.write(chunk)
                    sha.update(chunk)
                    size += len(chunk)
            if size != obj.size:
                raise InfinstorError(
                    f"s3://{bucket}/{obj.key} ({obj.version_id}) arrived with {size:,} of its "
                    f"{obj.size:,} bytes; run get again."
                )
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        finally:
            body.close()
        return FileRecord(
            key=obj.key,
            version_id=obj.version_id,
            size=size,
            etag=obj.etag,
            sha256=sha.hexdigest(),
            path=rel,
            mtime_ns=os.stat(path).st_mtime_ns,
        )

    @staticmethod
    def _remove_stale(
        directory: str, root: str, previous: dict[Any, dict[str, Any]], records: list[FileRecord]
    ) -> int:
        """Files an earlier get wrote for a version no longer in the view, still as written."""
        now = {r.path for r in records}
        removed = 0
        for rec in previous.values():
            if rec["path"] in now:
                continue
            path = os.path.join(directory, *rec["path"].split("/"))
            try:
                st = os.stat(path)
            except OSError:
                continue
            if (
                _inside(root, path)
                and st.st_size == rec["size"]
                and st.st_mtime_ns == rec.get("mtime_ns")
            ):
                os.unlink(path)
                removed += 1
        return removed

    # -- verify -----------------------------------------------------------------------------
    def verify(self, directory: str, view: View | None = None) -> VerifyResult:
        """The folder against its manifest and, given a view, the manifest against the
        view as the index resolves it now."""
        result = verify_directory(directory)
        if view is None:
            return result
        doc = read_manifest(directory) or {}
        wanted = {
            o.key: o.version_id
            for o in self._objects(view)
            if not (o.key.endswith("/") and o.size == 0)  # folder markers: folders
        }
        have = {f["key"]: f["version_id"] for f in doc.get("files", [])}
        for key, vid in wanted.items():
            if key not in have:
                result.view_missing.append(key)
            elif have[key] != vid:
                result.view_changed.append(key)
        result.view_extra = sorted(k for k in have if k not in wanted)
        return result


def verify_directory(directory: str) -> VerifyResult:
    """Missing, extra and changed files of a folder written by ``get``, by its manifest (no
    index or S3 needed)."""
    doc = read_manifest(directory)
    if doc is None:
        raise NotFound(
            f"{directory} has no {MANIFEST_NAME}; it was not written by `infinstor-jlab get` "
            "(or the manifest was removed)."
        )
    result = VerifyResult(directory=directory, complete=bool(doc.get("complete")))
    root = os.path.realpath(directory)
    listed = {f["path"]: f for f in doc.get("files", [])}
    for rel, rec in sorted(listed.items()):
        path = os.path.join(directory, *rel.split("/"))
        result.checked += 1
        if not _inside(root, path) or not os.path.isfile(path):
            result.missing.append(rel)
        elif os.path.getsize(path) != rec["size"] or _sha256_of(path) != rec["sha256"]:
            result.changed.append(rel)
    folders = set(doc.get("folders", []))
    parents = {rel[:i] for rel in listed for i in range(len(rel)) if rel[i] == "/"}
    for here, dirs, names in os.walk(directory):
        rel_dir = os.path.relpath(here, directory)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        for name in names:
            rel = rel_dir + name
            if rel == MANIFEST_NAME or name.startswith(TMP_MARK) or rel in listed:
                continue
            result.extra.append(rel)
        for name in dirs:
            rel = rel_dir + name
            if rel not in folders and rel not in parents:
                result.extra.append(rel + "/")
    result.extra.sort()
    return result
