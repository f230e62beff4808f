"""Write S3 Inventory reports in AWS's documented layout into a (moto) bucket, as S3 would:
``DEST-PREFIX/SOURCE-BUCKET/CONFIG-ID/YYYY-MM-DDTHH-MMZ/manifest.json`` (+ manifest.checksum),
data files under ``.../CONFIG-ID/data/``; CSV (gzip, no header, quoted, URL-encoded keys,
fields in fileSchema order), Parquet and ORC (snake_case columns). moto writes none."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import random
import uuid
from urllib.parse import quote_plus

FIELDS = [
    "Bucket",
    "Key",
    "VersionId",
    "IsLatest",
    "IsDeleteMarker",
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
]
SNAKE = {
    "Bucket": "bucket",
    "Key": "key",
    "VersionId": "version_id",
    "IsLatest": "is_latest",
    "IsDeleteMarker": "is_delete_marker",
    "Size": "size",
    "LastModifiedDate": "last_modified_date",
    "ETag": "e_tag",
    "StorageClass": "storage_class",
}
PARQUET_TYPES = {
    "bucket": "required binary bucket (STRING)",
    "key": "required binary key (STRING)",
    "version_id": "optional binary version_id (STRING)",
    "is_latest": "optional boolean is_latest",
    "is_delete_marker": "optional boolean is_delete_marker",
    "size": "optional int64 size",
    "last_modified_date": "optional int64 last_modified_date (TIMESTAMP(MILLIS,true))",
    "e_tag": "optional binary e_tag (STRING)",
    "storage_class": "optional binary storage_class (STRING)",
}
ORC_TYPES = {
    "bucket": "string",
    "key": "string",
    "version_id": "string",
    "is_latest": "boolean",
    "is_delete_marker": "boolean",
    "size": "bigint",
    "last_modified_date": "timestamp",
    "e_tag": "string",
    "storage_class": "string",
}


def current_rows(s3, bucket: str) -> list[dict]:
    """Every version and delete marker of the bucket now, as inventory rows (no order)."""
    rows = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            rows.append(
                {
                    "Bucket": bucket,
                    "Key": v["Key"],
                    "VersionId": v["VersionId"],
                    "IsLatest": v["IsLatest"],
                    "IsDeleteMarker": False,
                    "Size": v["Size"],
                    "LastModifiedDate": v["LastModified"].replace(microsecond=0),
                    "ETag": v["ETag"].strip('"'),
                    "StorageClass": "STANDARD",
                }
            )
        for d in page.get("DeleteMarkers", []):
            rows.append(
                {
                    "Bucket": bucket,
                    "Key": d["Key"],
                    "VersionId": d["VersionId"],
                    "IsLatest": d["IsLatest"],
                    "IsDeleteMarker": True,
                    "Size": None,
                    "LastModifiedDate": d["LastModified"].replace(microsecond=0),
                    "ETag": None,
                    "StorageClass": None,
                }
            )
    return rows


def _csv_bytes(rows: list[dict], fields: list[str]) -> bytes:
    def cell(field: str, value) -> str:
        if value is None:
            return ""
        if field == "Key":
            return quote_plus(value, safe="/")
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return str(value)

    lines = [
        ",".join('"' + cell(f, r.get(f)).replace('"', '""') + '"' for f in fields) for r in rows
    ]
    return gzip.compress(("\n".join(lines) + "\n").encode())


def _arrow_table(rows: list[dict], fields: list[str]):
    import pyarrow as pa

    cols = {}
    for f in fields:
        values = [r.get(f) for r in rows]
        if f == "LastModifiedDate":
            cols[SNAKE[f]] = pa.array(values, type=pa.timestamp("ms", tz="UTC"))
        elif f == "Size":
            cols[SNAKE[f]] = pa.array(values, type=pa.int64())
        elif f in ("IsLatest", "IsDeleteMarker"):
            cols[SNAKE[f]] = pa.array(values, type=pa.bool_())
        else:
            cols[SNAKE[f]] = pa.array(values, type=pa.string())
    return pa.table(cols)


def write_report(
    s3,
    dest: str,
    source: str,
    rows: list[dict],
    *,
    fmt: str = "CSV",
    prefix: str = "inv",
    config: str = "all-versions",
    created: dt.datetime | None = None,
    fields: list[str] | None = None,
    files: int = 2,
    complete: bool = True,
    source_in_manifest: str | None = None,
    seed: int = 0,
) -> str:
    """Write one report; returns the configuration folder's s3:// URI."""
    fields = fields or FIELDS
    created = created or dt.datetime.now(dt.UTC)
    folder = f"{prefix}/{source}/{config}/"
    stamp = created.strftime("%Y-%m-%dT%H-%MZ")
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)  # an inventory has no order
    entries = []
    ext = {"CSV": "csv.gz", "PARQUET": "parquet", "ORC": "orc"}[fmt]
    for i in range(files):
        part = shuffled[i::files]
        if fmt == "CSV":
            body = _csv_bytes(part, fields)
        else:
            table = _arrow_table(part, fields)
            buf = io.BytesIO()
            if fmt == "PARQUET":
                import pyarrow.parquet as pq

                pq.write_table(table, buf)
            else:
                from pyarrow import orc

                orc.write_table(table, buf)
            body = buf.getvalue()
        key = f"{folder}data/{uuid.uuid4()}.{ext}"
        s3.put_object(Bucket=dest, Key=key, Body=body)
        entries.append(
            {"key": key, "size": len(body), "MD5checksum": hashlib.md5(body).hexdigest()}
        )
    if fmt == "CSV":
        schema = ", ".join(fields)
    elif fmt == "PARQUET":
        schema = (
            "message s3.inventory { " + "; ".join(PARQUET_TYPES[SNAKE[f]] for f in fields) + ";}"
        )
    else:
        schema = "struct<" + ",".join(f"{SNAKE[f]}:{ORC_TYPES[SNAKE[f]]}" for f in fields) + ">"
    manifest = {
        "sourceBucket": source_in_manifest or source,
        "destinationBucket": f"arn:aws:s3:::{dest}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(created.timestamp() * 1000)),
        "fileFormat": fmt,
        "fileSchema": schema,
        "files": entries,
    }
    raw = json.dumps(manifest, indent=2).encode()
    s3.put_object(Bucket=dest, Key=f"{folder}{stamp}/manifest.json", Body=raw)
    if complete:
        s3.put_object(
            Bucket=dest,
            Key=f"{folder}{stamp}/manifest.checksum",
            Body=hashlib.md5(raw).hexdigest().encode(),
        )
    return f"s3://{dest}/{folder}"
