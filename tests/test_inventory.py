"""Backfill from S3 Inventory reports (services/inventory.py), written by the tests in AWS's
layout into moto's real HTTP server: the index equals the single stream's, refusals say
what to change, and the gap since the report is closed by a listing."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inventory_reports import FIELDS, current_rows, write_report

from infinstor_jlab.errors import BadRequest, StorageError
from infinstor_jlab.index import open_index
from infinstor_jlab.services.backfill import sync_bucket_parallel
from infinstor_jlab.services.inventory import SAFETY_MARGIN_MS, import_inventory
from infinstor_jlab.services.s3 import make_s3_client
from infinstor_jlab.services.sync import exact_since, sync_bucket

KEYS = ["a/1", "a/2", "b/3", "b c+d.txt", "c", "d/é"]


def _bucket(s3, versioned: bool = True) -> str:
    name = f"inv-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _apply(s3, bucket: str, ops) -> None:
    for i, (key, delete) in enumerate(ops):
        if delete:
            s3.delete_object(Bucket=bucket, Key=key)
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=b"y" * (i % 4))


def _dump(index, bucket: str) -> dict[str, list[tuple]]:
    return {
        key: [
            (v.version_id, v.last_modified_ms, v.is_delete_marker, v.size, v.etag)
            for v in index.history(bucket, key)
        ]
        for key in KEYS
    }


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(st.tuples(st.sampled_from(KEYS), st.booleans()), min_size=1, max_size=25),
    fmt=st.sampled_from(["CSV", "PARQUET", "ORC"]),
    batch=st.integers(min_value=1, max_value=6),
)
def test_an_imported_report_gives_the_single_streams_index(s3_endpoint, s3, ops, fmt, batch):
    # Writes faster than a second apart: the report cannot order same-second versions.
    bucket, dest = _bucket(s3), _bucket(s3, versioned=False)
    _apply(s3, bucket, ops)
    where = write_report(s3, dest, bucket, current_rows(s3, bucket), fmt=fmt, files=2)
    tmp = tempfile.mkdtemp()
    try:
        client = make_s3_client(s3_endpoint)
        single = open_index("sqlite:///" + os.path.join(tmp, "s.sqlite"))
        sync_bucket(client, single, bucket)
        imported = open_index("sqlite:///" + os.path.join(tmp, "i.sqlite"))
        result = import_inventory(client, imported, bucket, where, batch_versions=batch)
        assert result.versions == sum(len(c) for c in _dump(single, bucket).values())
        assert _dump(imported, bucket) == _dump(single, bucket)
        single.close()
        imported.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_gap_since_the_report_is_closed_and_exact_since_recorded(s3_endpoint, s3, tmp_path):
    bucket, dest = _bucket(s3), _bucket(s3, versioned=False)
    _apply(s3, bucket, [("a/1", False), ("a/2", False), ("a/1", False), ("b/3", False)])
    created = dt.datetime.now(dt.UTC)
    where = write_report(s3, dest, bucket, current_rows(s3, bucket), fmt="PARQUET", created=created)
    # After the report: the reconcile listing must bring these.
    _apply(s3, bucket, [("a/1", True), ("c", False), ("b/3", False)])
    client = make_s3_client(s3_endpoint)
    index = open_index("sqlite:///" + str(tmp_path / "i.sqlite"))
    result = import_inventory(client, index, bucket, where)
    assert exact_since(index, bucket) is None  # not before the gap is closed
    sync_bucket_parallel(client, index, bucket, parallel=4, page_size=2)
    single = open_index("sqlite:///" + str(tmp_path / "s.sqlite"))
    sync_bucket(client, single, bucket)
    assert _dump(index, bucket) == _dump(single, bucket)
    since = exact_since(index, bucket)
    assert since == result.exact_through_ms
    assert since == int(created.timestamp() * 1000) - SAFETY_MARGIN_MS


def test_the_newest_complete_report_is_taken(s3_endpoint, s3, tmp_path):
    bucket, dest = _bucket(s3), _bucket(s3, versioned=False)
    _apply(s3, bucket, [("a/1", False)])
    old = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    where = write_report(s3, dest, bucket, current_rows(s3, bucket), created=old)
    _apply(s3, bucket, [("a/2", False)])
    write_report(s3, dest, bucket, current_rows(s3, bucket), created=old + dt.timedelta(days=1))
    newest = old + dt.timedelta(days=2)
    write_report(s3, dest, bucket, current_rows(s3, bucket), created=newest, complete=False)
    index = open_index("sqlite:///" + str(tmp_path / "i.sqlite"))
    result = import_inventory(make_s3_client(s3_endpoint), index, bucket, where)
    assert result.report.manifest_key.endswith("2026-01-02T00-00Z/manifest.json")
    assert result.versions == 2
    # One report's manifest.json can be named too.
    one = where.rstrip("/") + "/2026-01-01T00-00Z/manifest.json"
    again = import_inventory(make_s3_client(s3_endpoint), index, bucket, one)
    assert again.versions == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"fields": ["Bucket", "Key", "Size", "LastModifiedDate", "ETag"]},
            "IncludedObjectVersions to All",
        ),
        (
            {"fields": ["Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size"]},
            "lacks the fields LastModifiedDate, ETag",
        ),
        ({"source_in_manifest": "some-other-bucket"}, "is for bucket 'some-other-bucket'"),
        ({"complete": False}, "lack manifest.checksum"),
    ],
)
def test_a_report_that_cannot_be_used_is_refused_with_what_to_change(
    s3_endpoint, s3, tmp_path, change, message
):
    bucket, dest = _bucket(s3), _bucket(s3, versioned=False)
    _apply(s3, bucket, [("a/1", False)])
    where = write_report(s3, dest, bucket, current_rows(s3, bucket), **change)
    index = open_index("sqlite:///" + str(tmp_path / "i.sqlite"))
    with pytest.raises(BadRequest, match=message):
        import_inventory(make_s3_client(s3_endpoint), index, bucket, where)


def test_a_damaged_data_file_is_refused(s3_endpoint, s3, tmp_path):
    bucket, dest = _bucket(s3), _bucket(s3, versioned=False)
    _apply(s3, bucket, [("a/1", False)])
    where = write_report(s3, dest, bucket, current_rows(s3, bucket), files=1)
    listed = s3.list_objects_v2(Bucket=dest, Prefix=where.split(dest + "/")[1] + "data/")
    s3.put_object(Bucket=dest, Key=listed["Contents"][0]["Key"], Body=b"not the file")
    index = open_index("sqlite:///" + str(tmp_path / "i.sqlite"))
    with pytest.raises(StorageError, match="does not match the MD5"):
        import_inventory(make_s3_client(s3_endpoint), index, bucket, where)


def test_track_with_inventory_imports_closes_the_gap_and_status_shows_exact_since(
    s3_endpoint, s3, tmp_path
):
    bucket, dest = _bucket(s3), _bucket(s3, versioned=False)
    _apply(s3, bucket, [("a/1", False), ("a/1", False), ("b/3", True)])
    rows = current_rows(s3, bucket)
    where = write_report(s3, dest, bucket, rows, fmt="CSV")
    _apply(s3, bucket, [("c", False)])
    env = dict(os.environ, AWS_ENDPOINT_URL=s3_endpoint)
    cmd = [
        sys.executable,
        "-m",
        "infinstor_jlab.cli",
        "--index",
        "sqlite:///" + str(tmp_path / "c.sqlite"),
    ]
    out = subprocess.run(
        [*cmd, "track", bucket, "--yes", "--inventory", where, "--parallel", "4"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert f"Imported {len(rows)} versions" in out.stdout and "Synced" in out.stdout
    status = subprocess.run(
        [*cmd, "status", bucket, "--json"], check=False, env=env, capture_output=True, text=True
    )
    doc = json.loads(status.stdout)
    assert doc["exact_since_ms"] is not None and doc["version_count"] == len(rows) + 1
    human = subprocess.run(
        [*cmd, "status", bucket], check=False, env=env, capture_output=True, text=True
    )
    assert "exact since:" in human.stdout
    bad = subprocess.run(
        [*cmd, "track", bucket, "--yes", "--inventory", "not-a-uri"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "is not an inventory location" in bad.stderr
    assert FIELDS  # the documented field list the reports use
