"""Restore a prefix to a past time, against moto over HTTP: after a restore to T the live
listing equals the snapshot at T (on random histories with same-second versions and delete
markers), nothing is deleted for good, a rerun after an interruption finishes the job, and a
write made since the last sync is not overwritten blindly."""

from __future__ import annotations

import hashlib
import json
import os
import random
import uuid
from unittest import mock

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from test_cli import run
from timing import next_second

from infinstor_jlab.errors import BadRequest, BadTimeSpec
from infinstor_jlab.services import restore as restore_mod
from infinstor_jlab.services.restore import RestoreService
from infinstor_jlab.timespec import format_tm, snapshot_spec

PREFIX = "tables/"
KEYS = ["tables/a.csv", "tables/b c.csv", "tables/sub/d+e.parquet", "tables/ü.json"]
OUTSIDE = "other/keep.csv"


def live(s3, bucket: str, prefix: str = PREFIX) -> dict[str, bytes]:
    """What a user sees now: every current key under the prefix with its content."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def version_count(s3, bucket: str) -> int:
    resp = s3.list_object_versions(Bucket=bucket)
    return len(resp.get("Versions", [])) + len(resp.get("DeleteMarkers", []))


def new_bucket(s3, service) -> str:
    name = f"bkt-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    service.track(name, enable_versioning_consent=True)
    return name


# -- the property ---------------------------------------------------------------------------
def ambiguous(steps) -> bool:
    """Whether a key got both a version and a delete marker in one second. moto lists a
    bucket's versions and its delete markers apart (not interleaved as S3 does), so the order
    of a same-second version and delete marker that are both no longer the latest cannot be
    known from its listing; the index then picks one, and the model may disagree."""
    return any(
        {kind for k, kind, _ in step if k == key} == {"put", "delete"}
        for step in steps
        for key in {k for k, _, _ in step}
    )


op = st.tuples(st.sampled_from(KEYS), st.sampled_from(["put", "put", "delete"]), st.integers(0, 3))
# Each step is one second of writes: several writes of one key in a step share a second.
history = st.lists(st.lists(op, min_size=1, max_size=5), min_size=1, max_size=3)


@settings(
    max_examples=int(os.environ.get("RESTORE_EXAMPLES", "5")),
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=history, order=st.randoms(use_true_random=False))
@example(
    # Same-second overwrites and a delete-then-recreate inside one second, then a delete.
    steps=[
        [("tables/a.csv", "put", 0), ("tables/a.csv", "put", 1), ("tables/b c.csv", "put", 2)],
        [
            ("tables/a.csv", "delete", 0),
            ("tables/a.csv", "put", 3),
            ("tables/b c.csv", "delete", 0),
        ],
    ],
    order=random.Random(1),
)
def test_after_a_restore_to_t_the_live_listing_is_the_snapshot_at_t(s3, service, steps, order):
    bucket = new_bucket(s3, service)
    s3.put_object(Bucket=bucket, Key=OUTSIDE, Body=b"untouched")
    model: dict[str, bytes] = {}
    states = [(next_second(), dict(model))]  # before any write under the prefix
    for step in steps:
        for key, kind, n in step:
            if kind == "put":
                body = f"{key}:{n}:{uuid.uuid4().hex[:6]}".encode()
                s3.put_object(Bucket=bucket, Key=key, Body=body)
                model[key] = body
            else:
                s3.delete_object(Bucket=bucket, Key=key)
                model.pop(key, None)
        states.append((next_second(), dict(model)))
    service.sync(bucket)
    restorer = RestoreService(service)
    order.shuffle(states)
    for at, expected in states:
        # The snapshot at T as the index answers it: the versions a user saw in the sidebar.
        snapshot = {
            o.key: s3.get_object(Bucket=bucket, Key=o.key, VersionId=o.version_id)["Body"].read()
            for o in service.iter_objects(bucket, spec=snapshot_spec(at), prefix=PREFIX)
        }
        if not ambiguous(steps):
            assert snapshot == expected
        before = version_count(s3, bucket)
        result = restorer.restore(bucket, PREFIX, snapshot_spec(at), parallel=4)
        assert live(s3, bucket) == snapshot, f"restore to {format_tm(at)} after {steps}"
        assert result.ok and result.check.matches and not result.plan.skipped
        # Nothing was deleted for good: every restore only adds versions or delete markers.
        assert version_count(s3, bucket) == before + len(result.plan.actions)
        # Idempotent: the same restore again finds nothing to do.
        again = restorer.plan(bucket, PREFIX, snapshot_spec(at))
        assert not again.actions and not again.skipped
    assert live(s3, bucket, "other/") == {OUTSIDE: b"untouched"}


# -- the parts of a restore -----------------------------------------------------------------
@pytest.fixture
def changed(s3, service):
    """tables/ at T (a, b, g, big) and after it: a overwritten, b deleted, c added."""
    bucket = new_bucket(s3, service)
    s3.put_object(
        Bucket=bucket,
        Key="tables/a.csv",
        Body=b"a,1\n",
        ContentType="text/csv",
        Metadata={"owner": "team-x"},
        Tagging="stage=raw&pii=no",
        CacheControl="max-age=60",
    )
    s3.put_object(Bucket=bucket, Key="tables/b.csv", Body=b"b,1\n")
    at = next_second()
    s3.put_object(Bucket=bucket, Key="tables/a.csv", Body=b"a,BAD\n", ContentType="text/plain")
    s3.delete_object(Bucket=bucket, Key="tables/b.csv")
    s3.put_object(Bucket=bucket, Key="tables/c.csv", Body=b"c,1\n")
    next_second()
    service.sync(bucket)
    return {"bucket": bucket, "at": at}


def test_restore_copies_old_versions_back_with_their_metadata_and_tags(s3, service, changed):
    bucket, at = changed["bucket"], changed["at"]
    restorer = RestoreService(service)
    plan = restorer.plan(bucket, PREFIX, snapshot_spec(at))
    assert [(a.key, a.change) for a in plan.copies] == [
        ("tables/a.csv", "revert"),
        ("tables/b.csv", "bring back"),
    ]
    assert [a.key for a in plan.deletes] == ["tables/c.csv"]
    assert plan.bytes_to_copy == 8 and plan.unchanged == 0
    result = restorer.restore(bucket, PREFIX, snapshot_spec(at))
    assert live(s3, bucket) == {"tables/a.csv": b"a,1\n", "tables/b.csv": b"b,1\n"}
    head = s3.head_object(Bucket=bucket, Key="tables/a.csv")
    assert head["ContentType"] == "text/csv" and head["Metadata"] == {"owner": "team-x"}
    assert head["CacheControl"] == "max-age=60"
    tags = s3.get_object_tagging(Bucket=bucket, Key="tables/a.csv")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("pii", "no"), ("stage", "raw")]
    # c got a delete marker; its content is still there as a version.
    versions = s3.list_object_versions(Bucket=bucket, Prefix="tables/c.csv")
    assert len(versions["Versions"]) == 1 and versions["DeleteMarkers"][0]["IsLatest"]
    # The state before is a label, and restoring it undoes the restore.
    label = service.get_label(result.label)
    assert result.label.startswith("before-restore-") and label.prefix == PREFIX
    assert label.object_count == 2  # a (BAD) and c
    undo = restorer.restore(bucket, PREFIX, service.views.resolve_label(result.label))
    assert undo.ok
    assert live(s3, bucket) == {"tables/a.csv": b"a,BAD\n", "tables/c.csv": b"c,1\n"}
    # The index learned the restore's versions: a listing now shows the undone state.
    now = service.parse_spec("now")
    assert [o.key for o in service.iter_objects(bucket, spec=now, prefix=PREFIX)] == [
        "tables/a.csv",
        "tables/c.csv",
    ]


def test_a_restore_lists_the_prefix_once_before_acting_and_once_to_check(s3, service, changed):
    bucket, at = changed["bucket"], changed["at"]
    listings: list[int] = []
    service.s3().meta.events.register(
        "before-call.s3.ListObjectVersions", lambda **kw: listings.append(1)
    )
    restorer = RestoreService(service)
    shown = restorer.plan(bucket, PREFIX, snapshot_spec(at))
    assert len(listings) == 1
    listings.clear()
    result = restorer.restore(bucket, PREFIX, snapshot_spec(at), expect=shown.fingerprint)
    # The re-check right before acting (which also pins the label and catches the index
    # up), and the check afterwards (which also tells the index the new versions).
    assert result.ok and len(result.plan.actions) == 3 and len(listings) == 2
    assert service.get_label(result.label).object_count == 2
    listings.clear()
    again = restorer.restore(bucket, PREFIX, snapshot_spec(at))
    assert not again.plan.actions and again.check.matches and again.label is None
    assert len(listings) == 1  # nothing to do: the re-check's listing is the check


def test_a_rerun_after_an_interruption_does_only_what_is_left(s3, service, changed):
    bucket, at = changed["bucket"], changed["at"]
    restorer = RestoreService(service)

    def stop_after_one(done: int, total: int) -> None:
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        restorer.restore(bucket, PREFIX, snapshot_spec(at), parallel=1, on_progress=stop_after_one)
    assert live(s3, bucket) != {"tables/a.csv": b"a,1\n", "tables/b.csv": b"b,1\n"}
    # The interrupted run left S3 half done and the index behind it: the rerun must not
    # take its own earlier copies for writes made by someone else.
    result = restorer.restore(bucket, PREFIX, snapshot_spec(at), parallel=1)
    assert result.ok and not result.plan.skipped
    assert len(result.plan.actions) == 2 and result.plan.unchanged == 1  # one was done
    assert live(s3, bucket) == {"tables/a.csv": b"a,1\n", "tables/b.csv": b"b,1\n"}


def test_a_write_since_the_last_sync_is_skipped_unless_forced(s3, service, changed):
    bucket, at = changed["bucket"], changed["at"]
    restorer = RestoreService(service)
    # Written after the sync: the index does not know these.
    s3.put_object(Bucket=bucket, Key="tables/a.csv", Body=b"a,NEWER\n")
    s3.put_object(Bucket=bucket, Key="tables/new.csv", Body=b"n\n")
    result = restorer.restore(bucket, PREFIX, snapshot_spec(at))
    assert sorted(s["key"] for s in result.plan.skipped) == ["tables/a.csv", "tables/new.csv"]
    assert all(s["reason"] == "changed" for s in result.plan.skipped)
    assert not result.ok and result.check.unexpected == []
    assert live(s3, bucket) == {
        "tables/a.csv": b"a,NEWER\n",
        "tables/b.csv": b"b,1\n",
        "tables/new.csv": b"n\n",
    }
    # The restore read the prefix into the index afterwards; another write since then is
    # again one the index has not seen, and --force restores over it.
    s3.put_object(Bucket=bucket, Key="tables/a.csv", Body=b"a,NEWEST\n")
    forced = restorer.restore(bucket, PREFIX, snapshot_spec(at), force=True)
    assert forced.ok and forced.plan.forced == ["tables/a.csv"]
    assert live(s3, bucket) == {"tables/a.csv": b"a,1\n", "tables/b.csv": b"b,1\n"}


def test_a_plan_that_changed_since_it_was_shown_is_refused(s3, service, changed):
    from infinstor_jlab.errors import Conflict

    bucket, at = changed["bucket"], changed["at"]
    restorer = RestoreService(service)
    shown = restorer.plan(bucket, PREFIX, snapshot_spec(at))
    s3.put_object(Bucket=bucket, Key="tables/late.csv", Body=b"x")
    service.sync(bucket)
    with pytest.raises(Conflict, match="changed since the restore plan was shown"):
        restorer.restore(bucket, PREFIX, snapshot_spec(at), expect=shown.fingerprint)
    assert "tables/late.csv" in live(s3, bucket)


def test_archived_versions_are_listed_and_skipped(s3, service):
    bucket = new_bucket(s3, service)
    s3.put_object(Bucket=bucket, Key="tables/cold.bin", Body=b"old", StorageClass="GLACIER")
    s3.put_object(Bucket=bucket, Key="tables/warm.bin", Body=b"old")
    at = next_second()
    s3.put_object(Bucket=bucket, Key="tables/cold.bin", Body=b"new")
    s3.put_object(Bucket=bucket, Key="tables/warm.bin", Body=b"new")
    next_second()
    service.sync(bucket)
    result = RestoreService(service).restore(bucket, PREFIX, snapshot_spec(at))
    [skipped] = result.plan.skipped
    assert skipped["key"] == "tables/cold.bin" and skipped["reason"] == "archived"
    assert "GLACIER" in skipped["message"] and "restored from the archive" in skipped["message"]
    assert live(s3, bucket) == {"tables/cold.bin": b"new", "tables/warm.bin": b"old"}
    assert not result.ok and result.check.unexpected == []


MIB = 1024 * 1024


def test_multipart_objects_are_copied_part_by_part_keeping_their_etag(s3, service):
    bucket = new_bucket(s3, service)
    parts = [bytes([65 + i]) * (5 * MIB) for i in range(2)] + [b"tail"]
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="tables/big.bin", ContentType="application/x-big", Metadata={"k": "v"}
    )["UploadId"]
    etags = [
        s3.upload_part(
            Bucket=bucket, Key="tables/big.bin", UploadId=upload, PartNumber=n, Body=body
        )["ETag"]
        for n, body in enumerate(parts, start=1)
    ]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="tables/big.bin",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    original = s3.head_object(Bucket=bucket, Key="tables/big.bin")["ETag"]
    s3.put_object(Bucket=bucket, Key="tables/single.bin", Body=b"s" * (6 * MIB))
    at = next_second()
    s3.put_object(Bucket=bucket, Key="tables/big.bin", Body=b"overwritten")
    s3.put_object(Bucket=bucket, Key="tables/single.bin", Body=b"overwritten")
    next_second()
    service.sync(bucket)
    # A single-part object over the CopyObject limit goes part by part too (the limit is
    # 5 GiB; lowered here so that a small object crosses it).
    with (
        mock.patch.object(restore_mod, "MULTIPART_COPY_THRESHOLD", 1 * MIB),
        mock.patch.object(restore_mod, "COPY_PART_SIZE", 5 * MIB),
    ):
        result = RestoreService(service).restore(bucket, PREFIX, snapshot_spec(at))
    assert result.ok, result.to_json()
    head = s3.head_object(Bucket=bucket, Key="tables/big.bin")
    assert head["ETag"] == original and head["ContentType"] == "application/x-big"
    assert head["Metadata"] == {"k": "v"}
    body = s3.get_object(Bucket=bucket, Key="tables/big.bin")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(b"".join(parts)).digest()
    single = s3.get_object(Bucket=bucket, Key="tables/single.bin")
    assert single["Body"].read() == b"s" * (6 * MIB) and single["ContentLength"] == 6 * MIB


def test_restore_refuses_slices_futures_and_unversioned_buckets(s3, service, changed):
    bucket, at = changed["bucket"], changed["at"]
    restorer = RestoreService(service)
    with pytest.raises(BadTimeSpec, match="slice"):
        restorer.plan(bucket, PREFIX, service.parse_spec(f"{format_tm(at)}-{format_tm(at)}"))
    with pytest.raises(BadTimeSpec, match="future"):
        restorer.plan(bucket, PREFIX, snapshot_spec(at + 10**9))
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    with pytest.raises(BadRequest, match="overwrite and delete objects for good"):
        restorer.plan(bucket, PREFIX, snapshot_spec(at))


# -- the CLI --------------------------------------------------------------------------------
def test_cli_restore_dry_run_then_yes(capsys, s3, service, index_url, changed):
    bucket, at = changed["bucket"], format_tm(changed["at"])
    uri = f"s3://{bucket}/{PREFIX}"
    code, out, err = run(capsys, "restore", uri, "--to", at, "--dry-run", "--index", index_url)
    assert code == 0, err
    assert "M tables/a.csv" in out and "+ tables/b.csv" in out and "- tables/c.csv" in out
    assert "2 to bring back (8 bytes to copy), 1 to delete" in out and "dry run" in out
    assert live(s3, bucket)["tables/a.csv"] == b"a,BAD\n"
    # No terminal to ask on: --yes is needed.
    code, out, err = run(capsys, "restore", uri, "--to", at, "--index", index_url)
    assert code == 1 and "re-run with --yes" in err
    assert live(s3, bucket)["tables/a.csv"] == b"a,BAD\n"
    code, out, err = run(capsys, "restore", uri, "--to", at, "--yes", "--index", index_url)
    assert code == 0, err
    assert "Restored" in out and "to undo: infinstor-jlab restore" in out
    assert "the live prefix equals the view (2 keys)" in out
    assert live(s3, bucket) == {"tables/a.csv": b"a,1\n", "tables/b.csv": b"b,1\n"}
    code, out, err = run(
        capsys, "restore", uri, "--to", at, "--yes", "--index", index_url, "--json"
    )
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["plan"]["copy"] == [] and doc["label"] is None


def test_cli_restore_exits_non_zero_when_keys_are_skipped(capsys, s3, service, index_url, changed):
    bucket, at = changed["bucket"], format_tm(changed["at"])
    s3.put_object(Bucket=bucket, Key="tables/a.csv", Body=b"a,NEWER\n")
    code, out, _err = run(
        capsys, "restore", f"s3://{bucket}/{PREFIX}", "--to", at, "--yes", "--index", index_url
    )
    assert code == 1
    assert "SKIPPED tables/a.csv: changed in S3 since the index last saw it" in out
    assert "--force" in out
