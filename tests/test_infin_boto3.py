"""Unchanged boto3 code reads the past (moto's server + a real MLflow with a sqlite store)."""

from __future__ import annotations

import os
import threading
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from timing import next_second

from infinstor_jlab.timespec import format_tm


@pytest.fixture
def tt_env(service, index_url, monkeypatch, tmp_path):
    """Time travel enabled, the index found through INFINSTOR_INDEX_URL, MLflow on sqlite."""
    monkeypatch.setenv("INFINSTOR_INDEX_URL", index_url)
    monkeypatch.delenv("INFINSTOR_SNAPSHOT_TIME", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)  # MLflow's sqlite store keeps artifacts under ./mlruns
    from infinstor_jlab import infin_boto3
    from infinstor_jlab.kernel import timetravel

    infin_boto3._travel = timetravel.TimeTravel(index_url)  # a fresh process-wide state
    infin_boto3.enable()
    yield infin_boto3
    infin_boto3.disable()


@pytest.fixture
def history(s3, bucket, service):
    """flowers/ as of t0: a(v1), b; as of t1: a(v2), c, b deleted; the slice ``later``
    holds just what arrived after t0."""
    ids = {
        "a1": s3.put_object(Bucket=bucket, Key="flowers/a.jpg", Body=b"A-one")["VersionId"],
        "b": s3.put_object(Bucket=bucket, Key="flowers/b.jpg", Body=b"B")["VersionId"],
    }
    s3.put_object(Bucket=bucket, Key="flowers/sub/x.jpg", Body=b"X")
    t0 = next_second()
    ids["a2"] = s3.put_object(Bucket=bucket, Key="flowers/a.jpg", Body=b"A-two")["VersionId"]
    ids["c"] = s3.put_object(Bucket=bucket, Key="flowers/c.jpg", Body=b"C")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="flowers/b.jpg")
    t1 = next_second()
    service.sync(bucket)
    return {
        "bucket": bucket,
        "t0": format_tm(t0),
        "t1": format_tm(t1),
        "later": f"{format_tm(t0 + 1)}-{format_tm(t1)}",
        "ids": ids,
    }


def keys(resp):
    return [o["Key"] for o in resp.get("Contents", [])]


def test_documentation_example_with_mlflow_and_rerun(tt_env, history, s3, monkeypatch):
    import mlflow

    bucket = history["bucket"]
    with mlflow.start_run() as run:
        client = boto3.client("s3")
        resp = client.list_objects_v2(Bucket=bucket, Prefix="flowers/", Delimiter="/")
        first_listing = keys(resp)
        first_bytes = client.get_object(Bucket=bucket, Key="flowers/a.jpg")["Body"].read()
    assert first_listing == ["flowers/a.jpg", "flowers/c.jpg"]
    assert first_bytes == b"A-two"
    logged = mlflow.tracking.MlflowClient().get_run(run.info.run_id).data
    snap = int(logged.params["infinstor_snapshot_time"])
    assert abs(snap - run.info.start_time) < 5 and logged.tags["infinstor_buckets"] == bucket

    # Months later the bucket has changed (at least in a later second: listings give whole
    # seconds, so a write in the run's own start second is indistinguishable from before it).
    next_second()
    s3.put_object(Bucket=bucket, Key="flowers/a.jpg", Body=b"A-three")
    s3.delete_object(Bucket=bucket, Key="flowers/c.jpg")
    s3.put_object(Bucket=bucket, Key="flowers/d.jpg", Body=b"D")
    history_service(tt_env).sync(bucket)
    # ...and the same cell, pointed at the old run, reads exactly the same bytes.
    monkeypatch.setenv("INFINSTOR_SNAPSHOT_TIME", f"run:/{run.info.run_id}")
    with mlflow.start_run() as rerun:
        client = boto3.client("s3")
        resp = client.list_objects_v2(Bucket=bucket, Prefix="flowers/", Delimiter="/")
        assert keys(resp) == first_listing
        assert client.get_object(Bucket=bucket, Key="flowers/a.jpg")["Body"].read() == first_bytes
    again = mlflow.tracking.MlflowClient().get_run(rerun.info.run_id).data
    assert int(again.params["infinstor_snapshot_time"]) == snap
    # Without a view, the same code sees the bucket as it is now.
    monkeypatch.delenv("INFINSTOR_SNAPSHOT_TIME")
    live = boto3.client("s3")
    assert keys(live.list_objects_v2(Bucket=bucket, Prefix="flowers/", Delimiter="/")) == [
        "flowers/a.jpg",
        "flowers/d.jpg",
    ]


def history_service(tt_env):
    from infinstor_jlab.services import InfinstorService

    return InfinstorService(tt_env._tt().index, s3_endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def test_a_run_after_the_last_sync_reads_what_s3_held_at_its_start(
    tt_env, history, s3, monkeypatch
):
    """Objects written after the last sync are in a run that starts after them (the prefix is
    read again from S3 first), and a re-run of that run, after later writes and a sync, reads
    exactly the same versions."""
    import mlflow

    bucket = history["bucket"]
    late = s3.put_object(Bucket=bucket, Key="flowers/late.jpg", Body=b"L")["VersionId"]
    s3.put_object(Bucket=bucket, Key="other/new.csv", Body=b"N")
    next_second()
    with mlflow.start_run() as run:
        client = boto3.client("s3")
        listed = client.list_objects_v2(Bucket=bucket, Prefix="flowers/")
        got = client.get_object(Bucket=bucket, Key="other/new.csv")["Body"].read()
    assert keys(listed) == [
        "flowers/a.jpg",
        "flowers/c.jpg",
        "flowers/late.jpg",
        "flowers/sub/x.jpg",
    ]
    assert got == b"N"
    next_second()
    s3.put_object(Bucket=bucket, Key="flowers/later.jpg", Body=b"Z")
    s3.put_object(Bucket=bucket, Key="flowers/late.jpg", Body=b"L2")
    from infinstor_jlab.kernel import timetravel

    tt_env._travel = timetravel.TimeTravel(os.environ["INFINSTOR_INDEX_URL"])  # a new kernel
    monkeypatch.setenv("INFINSTOR_SNAPSHOT_TIME", f"run:/{run.info.run_id}")
    again = boto3.client("s3")
    relisted = again.list_objects_v2(Bucket=bucket, Prefix="flowers/")
    assert [(o["Key"], o["ETag"]) for o in relisted["Contents"]] == [
        (o["Key"], o["ETag"]) for o in listed["Contents"]
    ]
    assert again.head_object(Bucket=bucket, Key="flowers/late.jpg")["VersionId"] == late


def test_a_prefix_too_large_to_read_again_warns_and_reads_the_index(
    tt_env, history, s3, monkeypatch
):
    from infinstor_jlab.kernel import timetravel

    monkeypatch.setattr(timetravel, "CATCH_UP_MAX_VERSIONS", 2)
    bucket = history["bucket"]
    s3.put_object(Bucket=bucket, Key="flowers/late.jpg", Body=b"L")
    s3.put_object(Bucket=bucket, Key="flowers/late.jpg.bak", Body=b"LB")
    s3.put_object(Bucket=bucket, Key="flowers/unread.jpg", Body=b"U")
    next_second()
    client = tt_env.client(at="now")
    # One object of a large folder: that key alone is read again (not the folder) ...
    assert client.get_object(Bucket=bucket, Key="flowers/late.jpg")["Body"].read() == b"L"
    # ... and only that key: one that merely starts with it is read again in its turn.
    assert client.get_object(Bucket=bucket, Key="flowers/late.jpg.bak")["Body"].read() == b"LB"
    # The folder is too large to read again from here: the index as it is, with a warning.
    with pytest.warns(UserWarning, match=r"infinstor-jlab sync"):
        listed = client.list_objects_v2(Bucket=bucket, Prefix="flowers/")
    assert "flowers/late.jpg.bak" in keys(listed) and "flowers/unread.jpg" not in keys(listed)


def test_original_keyword_snapshot_and_slice(tt_env, history):
    bucket, t0 = history["bucket"], history["t0"]
    snap = boto3.client("s3", infinstor_time_spec=t0)
    resp = snap.list_objects_v2(Bucket=bucket, Prefix="flowers/", Delimiter="/")
    assert keys(resp) == ["flowers/a.jpg", "flowers/b.jpg"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["flowers/sub/"]
    assert resp["KeyCount"] == 3 and resp["IsTruncated"] is False
    assert snap.get_object(Bucket=bucket, Key="flowers/a.jpg")["Body"].read() == b"A-one"
    sliced = boto3.client("s3", infinstor_time_spec=history["later"])
    assert keys(sliced.list_objects_v2(Bucket=bucket, Prefix="flowers/")) == [
        "flowers/a.jpg",
        "flowers/c.jpg",
    ]
    with pytest.raises(ClientError) as err:  # existed, but did not arrive in the window
        sliced.get_object(Bucket=bucket, Key="flowers/sub/x.jpg")
    assert err.value.response["Error"]["Code"] == "NoSuchKey"
    explicit = tt_env.client(at=t0)
    assert explicit.get_object(Bucket=bucket, Key="flowers/b.jpg")["Body"].read() == b"B"
    # A caller that names a version gets exactly that version.
    v2 = history["ids"]["a2"]
    assert (
        snap.get_object(Bucket=bucket, Key="flowers/a.jpg", VersionId=v2)["Body"].read() == b"A-two"
    )


def test_absent_keys_give_s3s_errors(tt_env, history):
    snap = boto3.client("s3", infinstor_time_spec=history["t0"])
    with pytest.raises(snap.exceptions.NoSuchKey):
        snap.get_object(Bucket=history["bucket"], Key="flowers/c.jpg")
    with pytest.raises(ClientError) as err:
        snap.head_object(Bucket=history["bucket"], Key="flowers/c.jpg")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert err.value.response["Error"]["Code"] == "404"
    head = snap.head_object(Bucket=history["bucket"], Key="flowers/a.jpg")
    assert head["VersionId"] == history["ids"]["a1"] and head["ContentLength"] == 5
    # A continuation token the view did not issue: S3's 400 InvalidArgument, not a crash.
    with pytest.raises(ClientError) as err:
        snap.list_objects_v2(Bucket=history["bucket"], ContinuationToken="not-a-token")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
    assert "continuation token" in err.value.response["Error"]["Message"]


def test_paginators_span_pages(tt_env, history, s3):
    bucket = history["bucket"]
    for i in range(25):
        s3.put_object(Bucket=bucket, Key=f"many/k{i:03d}", Body=b"x")
        s3.put_object(Bucket=bucket, Key=f"many/d{i:02d}/inner", Body=b"x")
    history_service(tt_env).sync(bucket)
    client = tt_env.client(at="now")
    v2 = client.get_paginator("list_objects_v2")
    pages = list(
        v2.paginate(Bucket=bucket, Prefix="many/", Delimiter="/", PaginationConfig={"PageSize": 7})
    )
    assert len(pages) == 8
    got = [k for p in pages for k in keys(p)]
    got_prefixes = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
    assert got == [f"many/k{i:03d}" for i in range(25)]
    assert got_prefixes == [f"many/d{i:02d}/" for i in range(25)]
    v1 = client.get_paginator("list_objects")
    pages = list(
        v1.paginate(Bucket=bucket, Prefix="many/", Delimiter="/", PaginationConfig={"PageSize": 6})
    )
    assert [k for p in pages for k in keys(p)] == got
    assert [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])] == got_prefixes
    start = client.list_objects_v2(Bucket=bucket, Prefix="many/", StartAfter="many/k020")
    assert keys(start)[:2] == ["many/k021", "many/k022"]
    capped = client.list_objects_v2(Bucket=bucket, Prefix="many/", MaxKeys=5000)
    assert capped["MaxKeys"] == 1000 and len(keys(capped)) == 50


def test_resource_api_and_downloads(tt_env, history, tmp_path):
    bucket, t0 = history["bucket"], history["t0"]
    res = boto3.resource("s3", infinstor_time_spec=t0)
    assert [o.key for o in res.Bucket(bucket).objects.filter(Prefix="flowers/")] == [
        "flowers/a.jpg",
        "flowers/b.jpg",
        "flowers/sub/x.jpg",
    ]
    assert res.Object(bucket, "flowers/a.jpg").get()["Body"].read() == b"A-one"
    target = tmp_path / "a.jpg"
    res.Bucket(bucket).download_file("flowers/a.jpg", str(target))
    assert target.read_bytes() == b"A-one"
    client = boto3.client("s3", infinstor_time_spec=t0)
    import io

    buf = io.BytesIO()
    client.download_fileobj(bucket, "flowers/b.jpg", buf)
    assert buf.getvalue() == b"B"
    ranged = client.get_object(Bucket=bucket, Key="flowers/a.jpg", Range="bytes=2-4")
    assert ranged["Body"].read() == b"one"
    session_client = boto3.Session().client("s3", infinstor_time_spec=t0)
    assert keys(session_client.list_objects_v2(Bucket=bucket, Prefix="flowers/b")) == [
        "flowers/b.jpg"
    ]


def test_untracked_buckets_and_writes_pass_through(tt_env, history, s3):
    untracked = f"untracked-{uuid.uuid4().hex[:8]}"  # unique: the endpoint may be shared
    s3.create_bucket(Bucket=untracked)
    s3.put_object(Bucket=untracked, Key="k", Body=b"live")
    snap = boto3.client("s3", infinstor_time_spec=history["t0"])
    with pytest.warns(UserWarning, match="not in the snapshot index"):
        resp = snap.list_objects_v2(Bucket=untracked)
    assert keys(resp) == ["k"]
    # Writes go to live S3, and the live object is there.
    snap.put_object(Bucket=history["bucket"], Key="outputs/model.bin", Body=b"weights")
    assert (
        s3.get_object(Bucket=history["bucket"], Key="outputs/model.bin")["Body"].read()
        == b"weights"
    )


def test_removed_version_says_so(tt_env, history, s3):
    bucket = history["bucket"]
    s3.delete_object(Bucket=bucket, Key="flowers/b.jpg", VersionId=history["ids"]["b"])
    snap = boto3.client("s3", infinstor_time_spec=history["t0"])
    with pytest.raises(ClientError) as err:
        snap.get_object(Bucket=bucket, Key="flowers/b.jpg")
    assert "no longer in S3" in err.value.response["Error"]["Message"]


def test_clients_from_several_threads(tt_env, history):
    bucket, t0, t1 = history["bucket"], history["t0"], history["t1"]
    errors: list[BaseException] = []
    results: dict[str, set] = {t0: set(), t1: set()}

    def work(spec: str) -> None:
        try:
            client = boto3.session.Session().client("s3", infinstor_time_spec=spec)
            for _ in range(10):
                listing = tuple(
                    keys(client.list_objects_v2(Bucket=bucket, Prefix="flowers/", Delimiter="/"))
                )
                body = client.get_object(Bucket=bucket, Key="flowers/a.jpg")["Body"].read()
                results[spec].add((listing, body))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t0 if i % 2 else t1,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results[t0] == {(("flowers/a.jpg", "flowers/b.jpg"), b"A-one")}
    assert results[t1] == {(("flowers/a.jpg", "flowers/c.jpg"), b"A-two")}


def test_bad_snapshot_env_is_a_clear_error(tt_env, history, monkeypatch):
    from infinstor_jlab.errors import BadTimeSpec

    monkeypatch.setenv("INFINSTOR_SNAPSHOT_TIME", "last tuesday")
    with pytest.raises(BadTimeSpec, match="Accepted time specs"):
        boto3.client("s3").list_objects_v2(Bucket=history["bucket"])
    # A time in the future is an error at once (not a read that waits until then).
    monkeypatch.setenv("INFINSTOR_SNAPSHOT_TIME", "tm20990101000000")
    with pytest.raises(BadTimeSpec, match="in the future"):
        boto3.client("s3").list_objects_v2(Bucket=history["bucket"])


def test_service_clients_never_time_travel(tt_env, history, service, monkeypatch):
    """In a kernel with infin_boto3 imported and a view in force, infinstor_jlab's own
    clients still read the live bucket (they always name exact versions themselves)."""
    monkeypatch.setenv("INFINSTOR_SNAPSHOT_TIME", history["t0"])
    from infinstor_jlab.services.s3 import make_s3_client

    internal = make_s3_client()
    live_keys = [
        o["Key"]
        for o in internal.list_objects_v2(Bucket=history["bucket"], Prefix="flowers/").get(
            "Contents", []
        )
    ]
    assert "flowers/c.jpg" in live_keys  # created after t0: the live view
    travelling = boto3.client("s3")
    assert "flowers/c.jpg" not in keys(
        travelling.list_objects_v2(Bucket=history["bucket"], Prefix="flowers/")
    )


ODD_KEYS = [
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
    "日本/データ.csv",
    "z-1",
    "z-2",
    "z-3/q",
    "zz",
]


def _v2_pages(client, bucket, params):
    """Every page of a ListObjectsV2 walk, reduced to what S3 defines (the continuation
    tokens are opaque; moto echoes StartAfter on the first page only)."""
    pages, p = [], dict(params)
    for i in range(60):
        r = client.list_objects_v2(Bucket=bucket, **p)
        page = {
            k: r.get(k)
            for k in ("IsTruncated", "KeyCount", "Prefix", "Delimiter", "MaxKeys", "EncodingType")
        }
        if i == 0:
            page["StartAfter"] = r.get("StartAfter")
        page["Contents"] = [(o["Key"], o["Size"], o["ETag"]) for o in r.get("Contents", [])]
        page["CommonPrefixes"] = [c["Prefix"] for c in r.get("CommonPrefixes", [])]
        pages.append(page)
        if not r["IsTruncated"]:
            return pages
        p["ContinuationToken"] = r["NextContinuationToken"]
    raise AssertionError("the listing did not end")


def test_list_objects_v2_as_of_now_answers_like_the_live_bucket(tt_env, s3, bucket, service):
    """The index answers ListObjectsV2 for the present exactly as the store does: keys with
    spaces, '+', '%', '//', unicode and trailing '/', several delimiters, StartAfter inside
    and outside folders, small pages, EncodingType=url."""
    for key in ODD_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="gone")
    service.sync(bucket)
    live = boto3.client("s3")
    travel = tt_env.client(at="now")
    checked = 0
    for prefix in ("", "a", "a/", "a/b", "x/", "é"):
        for delimiter in (None, "/", "//", "b"):
            for max_keys in (1, 2, 1000):
                for start_after in (None, "a/b", "a/", "z"):
                    params: dict = {"Prefix": prefix, "MaxKeys": max_keys}
                    if delimiter:
                        params["Delimiter"] = delimiter
                    if start_after:
                        params["StartAfter"] = start_after
                    if checked % 3 == 0:
                        params["EncodingType"] = "url"
                    assert _v2_pages(travel, bucket, params) == _v2_pages(live, bucket, params), (
                        params
                    )
                    checked += 1
    assert checked == 288


def test_list_objects_v1_marker_is_a_start_after_unless_it_is_a_folder_of_the_listing(
    tt_env, s3, bucket, service
):
    """ListObjects (V1) lists what sorts after Marker, as V2 does after StartAfter: a marker
    that ends with the delimiter but is a key inside an earlier folder ('a//', whose folder
    'a/' sorts before it) must not bring that folder back; a marker that is a folder of the
    listing ('a/', as NextMarker gives) continues after everything under it."""
    for key in ("a/b", "a//b", "a.b", "b", "big/k0a", "big/k01000", "big/k01001", "big/k1"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    service.sync(bucket)
    travel = tt_env.client(at="now")
    for prefix, delimiter, marker in [
        ("", "/", "a//"),
        ("", "/", "a/"),
        ("", "/", "a/b"),
        ("big/", "0", "big/k01000"),
        ("big/", "0", "big/k0"),
        ("", "//", "a//"),
    ]:
        v1 = travel.list_objects(Bucket=bucket, Prefix=prefix, Delimiter=delimiter, Marker=marker)
        v2 = travel.list_objects_v2(
            Bucket=bucket, Prefix=prefix, Delimiter=delimiter, StartAfter=marker
        )
        got = (keys(v1), [p["Prefix"] for p in v1.get("CommonPrefixes", [])])
        assert got == (keys(v2), [p["Prefix"] for p in v2.get("CommonPrefixes", [])]), marker
        assert all(k > marker for k in got[0] + got[1]), (marker, got)
    v1 = travel.list_objects(Bucket=bucket, Delimiter="/", Marker="a//")
    assert keys(v1) == ["b"] and [p["Prefix"] for p in v1["CommonPrefixes"]] == ["big/"]


def test_listing_owner_and_delete_marker_headers_as_s3_gives_them(tt_env, s3, bucket, service):
    """Code written against S3 finds what S3 puts there: each object's Owner in ListObjects
    (V1) and in ListObjectsV2 with FetchOwner; and a HEAD of a key whose current version is a
    delete marker answers 404 with x-amz-delete-marker and the marker's version id."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    marker = s3.delete_object(Bucket=bucket, Key="gone")["VersionId"]
    service.sync(bucket)
    live = boto3.client("s3")
    travel = tt_env.client(at="now")
    owner = live.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"][0]["Owner"]
    assert travel.list_objects(Bucket=bucket)["Contents"][0]["Owner"] == owner
    assert travel.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"][0]["Owner"] == owner
    assert "Owner" not in travel.list_objects_v2(Bucket=bucket)["Contents"][0]
    with pytest.raises(ClientError) as err:
        travel.head_object(Bucket=bucket, Key="gone")
    headers = err.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert headers.get("x-amz-delete-marker") == "true"
    assert headers.get("x-amz-version-id") == marker
    with pytest.raises(ClientError) as err:
        travel.head_object(Bucket=bucket, Key="never")
    assert "x-amz-delete-marker" not in err.value.response["ResponseMetadata"]["HTTPHeaders"]
