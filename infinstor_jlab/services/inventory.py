"""Backfill a bucket's index from an S3 Inventory report that includes all versions.

The report is found (the newest complete one under a configuration's folder, or one given
``manifest.json``), checked (``manifest.checksum``, each data file's MD5, the source bucket,
the fields), read (CSV.gz with URL-encoded keys, Parquet, ORC) and staged row by row in a
temporary SQLite file, so memory stays bounded whatever the report's size. The staged rows
are then merged into the index in key order, a batch of whole keys at a time, each key's
chain newest first: IsLatest first, then by time. Inventory times are whole seconds and say
nothing about the order of two versions of one key in the same second: such keys are listed
with ListObjectVersions (just that key) and take the listing's order.

An inventory is eventually consistent: the index is exact up to the report's
``creationTimestamp`` minus :data:`SAFETY_MARGIN_MS`, and a reconcile listing (parallel
ListObjectVersions) closes the gap since; only then is ``exact_since_ms`` recorded.
"""

from __future__ import annotations

import csv
import datetime as _dt
import gzip
import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from ..errors import AccessDenied, BadRequest, InfinstorError, StorageError
from ..index.base import SnapshotIndex
from ..index.models import VersionEntry
from ..timespec import parse_s3_timestamp
from .s3 import call_s3, iter_version_pages, s3_error_code, s3_error_status
from .sync import (
    INVENTORY_THROUGH_META,
    SyncProgress,
    is_split_listing,
    order_chains,
)

#: How long before a report's creationTimestamp its content may be incomplete (inventories
#: are eventually consistent); the reconcile listing covers from then on.
SAFETY_MARGIN_MS = 2 * 3600 * 1000
BATCH_VERSIONS = 50_000
NEEDED = ("Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size", "LastModifiedDate", "ETag")
# Parquet and ORC name the fields in snake case.
_SNAKE = {
    "Key": "key",
    "VersionId": "version_id",
    "IsLatest": "is_latest",
    "IsDeleteMarker": "is_delete_marker",
    "Size": "size",
    "LastModifiedDate": "last_modified_date",
    "ETag": "e_tag",
}


@dataclass
class InventoryReport:
    bucket: str  # the destination bucket holding the report
    manifest_key: str
    manifest: dict[str, Any]

    @property
    def created_ms(self) -> int:
        return int(self.manifest.get("creationTimestamp") or 0)

    @property
    def file_format(self) -> str:
        return str(self.manifest.get("fileFormat", "")).upper()


@dataclass
class ImportResult:
    report: InventoryReport
    versions: int
    rows_written: int
    tied_keys: int
    exact_through_ms: int


def _split_s3_uri(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise BadRequest(
            f"{uri!r} is not an inventory location; give s3://DEST-BUCKET/PREFIX/SOURCE-BUCKET/"
            "CONFIG-ID/ (the configuration's folder) or the s3:// URI of one report's "
            "manifest.json."
        )
    return parts.netloc, parts.path.lstrip("/")


def _get(client: Any, bucket: str, key: str) -> bytes:
    try:
        body: bytes = call_s3(client.get_object, bucket, Bucket=bucket, Key=key)["Body"].read()
        return body
    except AccessDenied as exc:
        raise _kms_or_access(exc, bucket, key) from exc


def _kms_or_access(exc: InfinstorError, bucket: str, key: str) -> InfinstorError:
    code = s3_error_code(exc)
    if "KMS" in code or "kms" in str(exc.message).lower() or code == "AccessDenied":
        return AccessDenied(
            f"Reading s3://{bucket}/{key} was denied. If the inventory is encrypted with "
            "SSE-KMS, the credentials in use need kms:Decrypt on its key (and s3:GetObject "
            "on the destination bucket); grant them or use a report written with SSE-S3."
        )
    return exc


def find_report(client: Any, location: str) -> InventoryReport:
    """The report at ``location``: a manifest.json, or the newest complete report (one with
    manifest.checksum) under a configuration's folder."""
    dest, key = _split_s3_uri(location)
    if key.endswith("manifest.json"):
        folder = key[: -len("manifest.json")]
        candidates = [folder]
    else:
        prefix = key if key.endswith("/") or not key else key + "/"
        found: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": dest, "Prefix": prefix, "Delimiter": "/"}
            if token:
                params["ContinuationToken"] = token
            resp = call_s3(client.list_objects_v2, dest, **params)
            found += [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
            token = resp.get("NextContinuationToken")
            if not token:
                break
        # Report folders are named YYYY-MM-DDTHH-MMZ/: newest last in key order.
        candidates = sorted((p for p in found if not p.endswith("hive/")), reverse=True)
        if not candidates:
            raise BadRequest(
                f"No inventory report under s3://{dest}/{prefix}; give the configuration's "
                "folder (DEST-PREFIX/SOURCE-BUCKET/CONFIG-ID/) or a manifest.json, and wait "
                "for the first report (up to 48 hours after setting the inventory up)."
            )
    incomplete = []
    for folder in candidates:
        try:
            checksum = _get(client, dest, folder + "manifest.checksum").decode().strip()
        except InfinstorError as exc:
            if s3_error_status(exc) != 404:
                raise  # denied (or worse): not a report still being written
            incomplete.append(folder)
            continue
        raw = _get(client, dest, folder + "manifest.json")
        if hashlib.md5(raw).hexdigest() != checksum.split()[0].lower():
            raise BadRequest(
                f"s3://{dest}/{folder}manifest.json does not match its manifest.checksum (a "
                "report being rewritten?); try again later or name another report."
            )
        return InventoryReport(dest, folder + "manifest.json", json.loads(raw))
    raise BadRequest(
        f"No complete inventory report at s3://{dest}/{key}: "
        f"{', '.join(incomplete[:3])} lack manifest.checksum (still being written); wait for "
        "it to appear or name an older report's manifest.json."
    )


def fields_of(report: InventoryReport) -> list[str]:
    """The report's field names in CamelCase, in file order."""
    schema = str(report.manifest.get("fileSchema", ""))
    fmt = report.file_format
    if fmt == "CSV":
        return [f.strip() for f in schema.split(",") if f.strip()]
    back = {v: k for k, v in _SNAKE.items()}
    names: list[str] = []
    if fmt == "PARQUET":  # message s3.inventory { required binary bucket (UTF8); ... }
        body = schema[schema.find("{") + 1 : schema.rfind("}")]
        for decl in body.split(";"):
            words = decl.replace("(", " (").split()
            if len(words) >= 3:
                names.append(back.get(words[2], words[2]))
    elif fmt == "ORC":  # struct<bucket:string,key:string,...>
        body = schema[schema.find("<") + 1 : schema.rfind(">")]
        for decl in body.split(","):
            name = decl.split(":")[0].strip()
            if name:
                names.append(back.get(name, name))
    return names


def check_report(report: InventoryReport, bucket: str) -> list[str]:
    source = report.manifest.get("sourceBucket")
    if source != bucket:
        raise BadRequest(
            f"The inventory report s3://{report.bucket}/{report.manifest_key} is for bucket "
            f"{source!r}, not {bucket!r}; give the report of {bucket}'s inventory "
            f"configuration (its folder is DEST-PREFIX/{bucket}/CONFIG-ID/)."
        )
    if report.file_format not in ("CSV", "PARQUET", "ORC"):
        raise BadRequest(
            f"The inventory report's format {report.file_format!r} is not CSV, Parquet or ORC."
        )
    fields = fields_of(report)
    if "VersionId" not in fields or "IsLatest" not in fields:
        raise BadRequest(
            "The inventory report lists current versions only; set the inventory "
            'configuration\'s IncludedObjectVersions to All ("Include all versions" in the '
            "console) and import its next report."
        )
    missing = [f for f in NEEDED if f not in fields]
    if missing:
        raise BadRequest(
            f"The inventory report lacks the fields {', '.join(missing)}; add them to the "
            "inventory configuration's OptionalFields (Size, LastModifiedDate, ETag, "
            "IsDeleteMarker... see the README) and import its next report."
        )
    return fields


def _download(client: Any, dest: str, file: dict[str, Any], into: str) -> str:
    """One data file into a temp file, its MD5 checked against the manifest's."""
    key = str(file["key"])
    path = os.path.join(into, hashlib.sha1(key.encode()).hexdigest())
    try:
        resp = call_s3(client.get_object, dest, Bucket=dest, Key=key)
    except AccessDenied as exc:
        raise _kms_or_access(exc, dest, key) from exc
    md5 = hashlib.md5()
    with open(path, "wb") as out:
        for chunk in iter(lambda: resp["Body"].read(1 << 20), b""):
            md5.update(chunk)
            out.write(chunk)
    want = str(file.get("MD5checksum", "")).lower()
    if want and md5.hexdigest() != want:
        raise StorageError(
            f"The inventory file s3://{dest}/{key} does not match the MD5 in its manifest "
            "(damaged or replaced); import the report again, or a newer one."
        )
    return path


Row = tuple[str, str, int, int, int, int, str]  # key, vid, latest, dm, size, t, etag


def _bool(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    return 1 if str(v).strip().lower() == "true" else 0


def _csv_time_ms(text: str) -> int:
    """An inventory CSV time (``2026-12-01T10:00:00.000Z``) as epoch milliseconds."""
    try:  # the C parser, about 20x the general one; anything unusual goes to the latter
        return int(_dt.datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        return parse_s3_timestamp(text)[0]


def _rows_csv(path: str, fields: list[str]) -> Iterator[Row]:
    at = {f: i for i, f in enumerate(fields)}
    ik, iv, il, idm = at["Key"], at["VersionId"], at["IsLatest"], at["IsDeleteMarker"]
    isz, it, ie = at["Size"], at["LastModifiedDate"], at["ETag"]
    width = len(fields)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        for rec in csv.reader(fh):
            if len(rec) < width:
                continue
            key = rec[ik]
            if "%" in key or "+" in key:  # keys are URL-encoded (a space as '+')
                key = unquote_plus(key)
            etag = rec[ie]
            yield (
                key,
                rec[iv] or "null",
                1 if rec[il].lower() == "true" else 0,
                1 if rec[idm].lower() == "true" else 0,
                int(rec[isz] or 0),
                _csv_time_ms(rec[it]),
                etag if not etag or etag[0] == '"' else f'"{etag}"',
            )


def _etag(v: Any) -> str:
    s = "" if v is None else str(v)
    return s if not s or s.startswith('"') else f'"{s}"'


def _rows_arrow(path: str, fmt: str) -> Iterator[Row]:
    cols = [_SNAKE[f] for f in NEEDED]
    if fmt == "PARQUET":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        batches: Iterator[Any] = pq.ParquetFile(path).iter_batches(batch_size=65_536, columns=cols)
    else:
        from pyarrow import orc

        f = orc.ORCFile(path)
        batches = (f.read_stripe(i, columns=cols) for i in range(f.nstripes))
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    for batch in batches:
        t = batch.column(cols.index("last_modified_date"))
        if pa.types.is_timestamp(t.type):
            t = pc.cast(pc.cast(t, pa.timestamp("ms", tz=t.type.tz)), pa.int64())
        keys = batch.column(0).to_pylist()
        vids = batch.column(1).to_pylist()
        latest = batch.column(2).to_pylist()
        dms = batch.column(3).to_pylist()
        sizes = batch.column(4).to_pylist()
        times = t.to_pylist()
        etags = batch.column(6).to_pylist()
        for i in range(len(keys)):
            yield (
                keys[i],
                vids[i] or "null",
                int(bool(latest[i])),
                int(bool(dms[i])),
                int(sizes[i] or 0),
                int(times[i] or 0),
                _etag(etags[i]),
            )


def _tie_orders(
    client: Any, bucket: str, keys: list[str], split_style: bool
) -> dict[str, list[str]]:
    """Per key, its version ids in chain order, from ListObjectVersions of just that key."""

    def one(key: str) -> tuple[str, list[str]]:
        entries: list[VersionEntry] = []
        latest: list[bool] = []
        split = split_style
        for page in iter_version_pages(client, bucket, prefix=key):
            for e, f in zip(page.entries, page.latest):
                if e.key == key:
                    entries.append(e)
                    latest.append(f)
            if page.entries and page.entries[-1].key > key:
                break
        split = split or is_split_listing(entries, latest)
        return key, [e.version_id for e in order_chains(entries, latest, split_style=split)]

    with ThreadPoolExecutor(max_workers=min(16, max(1, len(keys)))) as pool:
        return dict(pool.map(one, keys))


def import_inventory(
    client: Any,
    index: SnapshotIndex,
    bucket: str,
    location: str,
    *,
    on_progress: Callable[[SyncProgress], None] | None = None,
    batch_versions: int = BATCH_VERSIONS,
) -> ImportResult:
    """Import the report at ``location`` into the index (the bucket is registered first).
    Merging is idempotent: an import stopped anywhere can be run again."""
    report = find_report(client, location)
    fields = check_report(report, bucket)
    index.register_bucket(bucket)
    exact_through = report.created_ms - SAFETY_MARGIN_MS
    split_style = index.get_listing_style(bucket) == "split"
    progress = SyncProgress(bucket=bucket)
    files = list(report.manifest.get("files", []))
    progress.partitions_total = len(files)
    written = 0
    tied = 0
    with tempfile.TemporaryDirectory(prefix="infinstor-inventory-") as tmp:
        stage = sqlite3.connect(os.path.join(tmp, "stage.sqlite"))
        stage.execute("PRAGMA journal_mode=OFF")
        stage.execute("PRAGMA synchronous=OFF")
        stage.execute(
            "CREATE TABLE s(key TEXT, vid TEXT, latest INT, dm INT, size INT, t INT, etag TEXT)"
        )
        for file in files:
            path = _download(client, report.bucket, file, tmp)
            rows = (
                _rows_csv(path, fields)
                if report.file_format == "CSV"
                else _rows_arrow(path, report.file_format)
            )
            batch: list[Row] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= 100_000:
                    stage.executemany("INSERT INTO s VALUES(?,?,?,?,?,?,?)", batch)
                    progress.versions_seen += len(batch)
                    batch = []
            if batch:
                stage.executemany("INSERT INTO s VALUES(?,?,?,?,?,?,?)", batch)
                progress.versions_seen += len(batch)
            stage.commit()
            os.remove(path)
            progress.partitions_done += 1
            if on_progress is not None:
                on_progress(progress)
        # Whole keys in key order, each chain IsLatest first then newest first; equal
        # seconds are resolved below.
        cursor = stage.execute(
            "SELECT key, vid, latest, dm, size, t, etag FROM s "
            "ORDER BY key, latest DESC, t DESC, dm"
        )
        after: str | None = None
        pending: list[Row] = []

        def flush(rows: list[Row], through: str | None) -> None:
            nonlocal written, tied, after
            entries: list[VersionEntry] = []
            ties: list[str] = []
            i = 0
            while i < len(rows):
                j = i + 1
                while j < len(rows) and rows[j][0] == rows[i][0]:
                    j += 1
                if len({r[5] for r in rows[i:j]}) != j - i:
                    ties.append(rows[i][0])  # two versions in one second: order unknown
                i = j
            order = _tie_orders(client, bucket, ties, split_style) if ties else {}
            tied += len(ties)
            append = entries.append
            make = VersionEntry._make
            i = 0
            n = len(rows)
            while i < n:
                key = rows[i][0]
                j = i + 1
                while j < n and rows[j][0] == key:
                    j += 1
                chain = rows[i:j]
                if key in order:
                    place = {v: k for k, v in enumerate(order[key])}
                    chain.sort(key=lambda r: (place.get(r[1], len(place)), -r[5]))
                if j - i > 1 and len({r[1] for r in chain}) != j - i:
                    seen: set[str] = set()  # a version listed in two data files: once
                    unique = []
                    for r in chain:
                        if r[1] not in seen:
                            seen.add(r[1])
                            unique.append(r)
                    chain = unique
                for r in chain:
                    append(make((r[0], r[1], r[5], r[4], r[6], bool(r[3]), False, None)))
                i = j
            written += index.merge_listing(
                bucket,
                entries,
                after_key=after,
                through_key=through,
                scan_started_ms=exact_through,
                checkpoint=False,
            )
            after = through
            progress.versions_written = written
            if on_progress is not None:
                on_progress(progress)

        while True:
            chunk = cursor.fetchmany(10_000)
            if not chunk:
                break
            pending.extend(chunk)
            if len(pending) >= batch_versions:
                last = pending[-1][0]
                cut = len(pending)
                while cut > 0 and pending[cut - 1][0] == last:
                    cut -= 1
                if cut > 0:  # the last key may go on in the next chunk: keep it
                    flush(pending[:cut], pending[cut - 1][0])
                    pending = pending[cut:]
        flush(pending, None)
        stage.close()
    # A pass that completes from now on (the reconcile) makes the index exact from here.
    index.set_bucket_meta(bucket, INVENTORY_THROUGH_META, str(exact_through))
    progress.done = True
    if on_progress is not None:
        on_progress(progress)
    return ImportResult(
        report=report,
        versions=progress.versions_seen,
        rows_written=written,
        tied_keys=tied,
        exact_through_ms=exact_through,
    )


__all__ = [
    "ImportResult",
    "InventoryReport",
    "find_report",
    "import_inventory",
]
