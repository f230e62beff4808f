"""The REST API end to end: HTTP through the Jupyter server (pytest-jupyter) to the services,
moto's S3/SQS server and a temp SQLite index."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest
import tornado.web
from timing import next_second
from tornado.httpclient import HTTPClientError, HTTPResponse

from infinstor_jlab import app as extension_app
from infinstor_jlab import rest
from infinstor_jlab.rest import base as rest_base
from infinstor_jlab.timespec import format_tm

PREVIEW_MAX_BYTES = 4096
VERBS = ("get", "post", "put", "patch", "delete")
#: Sample values for the path parameters of default_handlers' patterns.
PATH_SAMPLES = {
    "bucket": "some-bucket",
    "name": "some-label",
    "job_id": "0123abcd",
    "run_id": "0123abcd",
    "ticket": "not-a-ticket",
    "key_id": "IJNOTAKEY0000000",
    "action": "pause",
}
ALL_HANDLERS = rest.handlers


@pytest.fixture
def jp_server_config(index_url, s3_endpoint, monkeypatch):
    # The extension exports these for kernels; monkeypatch restores the test process's values.
    monkeypatch.setenv("INFINSTOR_INDEX_URL", index_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    return {
        "ServerApp": {"jpserver_extensions": {"infinstor_jlab": True}},
        "InfinstorApp": {
            "index_url": index_url,
            "s3_endpoint_url": s3_endpoint,
            "reconcile_interval": 0.0,
            "sqs_wait_seconds": 1,
            "preview_max_bytes": PREVIEW_MAX_BYTES,
        },
    }


# -- helpers ---------------------------------------------------------------------------------
async def call(
    jp_fetch,
    method: str,
    *parts: str,
    body: Any = None,
    params: dict[str, Any] | None = None,
    expect: int | None = 200,
    headers: dict[str, str] | None = None,
) -> HTTPResponse:
    """One request to ``<base_url>/infinstor/<parts>``; asserts the status code."""
    kwargs: dict[str, Any] = {"method": method, "params": params or {}}
    if headers is not None:
        kwargs["headers"] = headers
    if body is not None:
        kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
    elif method in ("POST", "PUT", "PATCH"):
        kwargs["body"] = b""
    try:
        response = await jp_fetch("infinstor", *parts, **kwargs)
    except HTTPClientError as exc:
        response = exc.response
        assert response is not None, exc
    if expect is not None:
        assert response.code == expect, (method, parts, params, response.code, response.body)
    return response


async def get_json(jp_fetch, *parts: str, expect: int = 200, **params: Any) -> Any:
    response = await call(jp_fetch, "GET", *parts, params=params, expect=expect)
    return json.loads(response.body)


async def post_json(jp_fetch, *parts: str, body: Any = None, expect: int = 200) -> Any:
    response = await call(jp_fetch, "POST", *parts, body=body, expect=expect)
    return json.loads(response.body) if response.body else None


async def error_message(
    jp_fetch, method: str, *parts: str, expect: int, body: Any = None, **params: Any
) -> str:
    """The ``message`` of an error answer (which must be JSON ``{"message": ...}``)."""
    response = await call(jp_fetch, method, *parts, body=body, params=params, expect=expect)
    doc = json.loads(response.body)
    assert isinstance(doc["message"], str) and doc["message"]
    assert "Traceback" not in doc["message"]
    return doc["message"]


async def wait_job(jp_fetch, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = await get_json(jp_fetch, "syncs", job_id)
        if job["done"]:
            return job
        assert time.monotonic() < deadline, f"sync job {job_id} did not finish: {job}"
        await asyncio.sleep(0.05)


async def track(jp_fetch, bucket: str, **body: Any) -> dict[str, Any]:
    doc = await post_json(jp_fetch, "buckets", bucket, "track", body=body)
    job = await wait_job(jp_fetch, doc["sync_job"])
    assert job["state"] == "done", job
    return doc


def keys(page: dict[str, Any]) -> list[str]:
    return [o["key"] for o in page["objects"]]


def service_of(jp_serverapp) -> Any:
    return jp_serverapp.web_app.settings[rest_base.SERVICE_KEY]


# -- configuration and auth ------------------------------------------------------------------
async def test_config_section_is_applied(jp_fetch, jp_serverapp, index_url, s3_endpoint):
    ext = jp_serverapp.extension_manager.extensions["infinstor_jlab"]
    (point,) = ext.extension_points.values()
    app = point.app
    assert isinstance(app, extension_app.InfinstorApp)
    assert app.index_url == index_url
    assert app.s3_endpoint_url == s3_endpoint
    assert app.preview_max_bytes == PREVIEW_MAX_BYTES
    settings = jp_serverapp.web_app.settings
    assert settings[extension_app.CONFIG_KEY]["preview_max_bytes"] == PREVIEW_MAX_BYTES
    # rest_base.py repeats app.py's settings keys (app.py imports rest_base.py).
    assert (
        rest_base.SERVICE_KEY,
        rest_base.EXECUTOR_KEY,
        rest_base.QUERY_EXECUTOR_KEY,
        rest_base.CONFIG_KEY,
    ) == (
        extension_app.SERVICE_KEY,
        extension_app.EXECUTOR_KEY,
        extension_app.QUERY_EXECUTOR_KEY,
        extension_app.CONFIG_KEY,
    )
    health = await get_json(jp_fetch, "health")
    assert health["index_schema_version"] >= 1


def _verbs(cls: type) -> list[str]:
    return [v for v in VERBS if getattr(cls, v) is not getattr(tornado.web.RequestHandler, v)]


def _sample_path(pattern: str) -> str:
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: PATH_SAMPLES[m.group(1)], pattern)


def test_every_verb_is_authenticated_then_authorized():
    for pattern, cls in ALL_HANDLERS:
        assert cls.auth_resource == "infinstor", pattern
        verbs = _verbs(cls)
        assert verbs, pattern
        for verb in verbs:
            outer = getattr(cls, verb)
            if getattr(outer, "__allow_unauthenticated", False):
                # Only a download link: its ticket signs the request in (see DownloadHandler).
                assert cls is rest.DownloadHandler, (pattern, verb)
                outer = outer.__wrapped__
            inner = getattr(outer, "__wrapped__", None)
            assert outer.__code__.co_filename.endswith("tornado/web.py"), (pattern, verb)
            assert inner is not None and inner.__code__.co_filename.endswith(
                "jupyter_server/auth/decorator.py"
            ), (pattern, verb)


async def test_every_route_refuses_anonymous_requests(jp_fetch):
    # A matching XSRF cookie/header pair gets POST/DELETE past the XSRF check, so the 403 comes
    # from the handler's own @authenticated, as for GET.
    anonymous = {"Authorization": "", "Cookie": "_xsrf=anon", "X-XSRFToken": "anon"}
    wrong = {"Authorization": "token not-the-token", "Cookie": "_xsrf=anon", "X-XSRFToken": "anon"}
    seen = 0
    for pattern, cls in ALL_HANDLERS:
        parts = _sample_path(pattern).strip("/").split("/")[1:]
        for verb in _verbs(cls):
            for headers in (anonymous, wrong):
                body = "{}" if verb in ("post", "put", "patch") else None
                await call(jp_fetch, verb.upper(), *parts, body=body, headers=headers, expect=403)
            seen += 1
    assert seen >= 28


# -- tracking and sync -----------------------------------------------------------------------
async def test_track_needs_consent_to_enable_versioning(jp_fetch, s3):
    name = f"plain-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k.txt", Body=b"k")

    message = await error_message(
        jp_fetch, "POST", "buckets", name, "track", expect=400, body={"events": False}
    )
    assert "versioning" in message and name in message
    message = await error_message(
        jp_fetch, "POST", "buckets", name, "track", expect=400, body={"enable_versioning": False}
    )
    assert "versioning" in message
    assert "Status" not in s3.get_bucket_versioning(Bucket=name)  # nothing changed

    doc = await post_json(
        jp_fetch, "buckets", name, "track", body={"enable_versioning": True, "events": False}
    )
    assert doc["name"] == name and doc["tracked"] is True
    assert doc["versioning_before"] == "Disabled"
    assert doc["events"] is False
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    job = await wait_job(jp_fetch, doc["sync_job"])
    assert job["state"] == "done" and job["bucket"] == name and job["error"] is None

    listing = await get_json(jp_fetch, "buckets")
    mine = [b for b in listing["buckets"] if b["name"] == name]
    assert mine and mine[0]["tracked"] is True and mine[0]["version_count"] >= 1
    page = await get_json(jp_fetch, "buckets", name, "objects")
    assert keys(page) == ["k.txt"]

    # Untrack keeps history unless asked to forget it, and says it is no longer kept current.
    await call(jp_fetch, "DELETE", "buckets", name, "track", expect=204)
    assert keys(await get_json(jp_fetch, "buckets", name, "objects")) == ["k.txt"]
    mine = [b for b in (await get_json(jp_fetch, "buckets"))["buckets"] if b["name"] == name]
    assert mine[0]["tracked"] is False and mine[0]["version_count"] >= 1
    # Tracking it again keeps it current again.
    doc = await post_json(jp_fetch, "buckets", name, "track", body={"enable_versioning": True})
    assert doc["tracked"] is True
    await wait_job(jp_fetch, doc["sync_job"])
    await call(jp_fetch, "DELETE", "buckets", name, "track", expect=204)
    await call(jp_fetch, "DELETE", "buckets", name, "track", params={"forget": "1"}, expect=204)
    await get_json(jp_fetch, "buckets", name, "objects", expect=404)
    await call(jp_fetch, "DELETE", "buckets", name, "track", expect=404)


async def test_second_sync_joins_the_running_one_and_resync_writes_nothing(
    jp_fetch, jp_serverapp, s3, bucket, monkeypatch
):
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"f{i}.txt", Body=b"x" * i)
    tracked = await track(jp_fetch, bucket)
    assert tracked["versioning_before"] == "Enabled"

    service = service_of(jp_serverapp)
    gate = threading.Event()
    real_sync = service.sync

    def held_sync(*args: Any, **kwargs: Any) -> Any:
        gate.wait(15)
        return real_sync(*args, **kwargs)

    monkeypatch.setattr(service, "sync", held_sync)
    try:
        first = await post_json(jp_fetch, "buckets", bucket, "sync", expect=202)
        assert first["state"] == "running" and first["done"] is False
        second = await post_json(
            jp_fetch, "buckets", bucket, "sync", body={"full": True}, expect=202
        )
        assert second["id"] == first["id"]
        status = next(
            b for b in (await get_json(jp_fetch, "buckets"))["buckets"] if b["name"] == bucket
        )
        assert status["sync_job"] == first["id"]
    finally:
        gate.set()
    job = await wait_job(jp_fetch, first["id"])
    assert job["state"] == "done", job
    assert job["versions_written"] == 0  # everything was indexed by the first sync

    again = await post_json(jp_fetch, "buckets", bucket, "sync", body={"full": True}, expect=202)
    assert again["id"] != first["id"]
    job = await wait_job(jp_fetch, again["id"])
    assert job["state"] == "done" and job["full"] is True
    assert job["versions_written"] == 0

    s3.put_object(Bucket=bucket, Key="late.txt", Body=b"late")
    job = await wait_job(
        jp_fetch, (await post_json(jp_fetch, "buckets", bucket, "sync", expect=202))["id"]
    )
    assert job["versions_written"] == 1
    assert "late.txt" in keys(await get_json(jp_fetch, "buckets", bucket, "objects"))


async def test_listings_answer_while_slow_s3_work_fills_the_general_pool(
    jp_fetch, jp_serverapp, s3, bucket
):
    """Index queries have their own small pool: downloads, previews or syncs stuck on a slow
    object store never hold up the sidebar's listings."""
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    await track(jp_fetch, bucket)
    settings = jp_serverapp.web_app.settings
    general = settings[rest_base.EXECUTOR_KEY]
    assert settings[rest_base.QUERY_EXECUTOR_KEY] is not general
    gate = threading.Event()
    stuck = [general.submit(gate.wait, 30) for _ in range(general._max_workers)]
    try:
        started = time.monotonic()
        page = await asyncio.wait_for(get_json(jp_fetch, "buckets", bucket, "objects"), 10)
        assert keys(page) == ["a.txt"]
        history = await asyncio.wait_for(
            get_json(jp_fetch, "buckets", bucket, "history", key="a.txt"), 10
        )
        assert len(history["versions"]) == 1
        assert time.monotonic() - started < 10
        assert not any(f.done() for f in stuck)  # the general pool was busy throughout
    finally:
        gate.set()


async def test_upload_becomes_visible_through_events(jp_fetch, s3, bucket):
    s3.put_object(Bucket=bucket, Key="before.txt", Body=b"b")
    doc = await track(jp_fetch, bucket, events=True)
    assert doc["events"] is True
    assert keys(await get_json(jp_fetch, "buckets", bucket, "objects")) == ["before.txt"]

    s3.put_object(Bucket=bucket, Key="arrived via event.txt", Body=b"e")
    deadline = time.monotonic() + 15
    while True:
        page = await get_json(jp_fetch, "buckets", bucket, "objects")
        if "arrived via event.txt" in keys(page):
            break
        assert time.monotonic() < deadline, f"the event never reached the index: {page}"
        await asyncio.sleep(0.2)
    status = next(
        b for b in (await get_json(jp_fetch, "buckets"))["buckets"] if b["name"] == bucket
    )
    assert status["events_applied"] >= 1
    await call(jp_fetch, "DELETE", "buckets", bucket, "track", expect=204)


# -- views through time ----------------------------------------------------------------------
async def test_snapshots_slices_objects_history_diff_timeline(jp_fetch, s3, bucket):
    v1 = s3.put_object(Bucket=bucket, Key="a.txt", Body=b"alpha v1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="dir/b.csv", Body=b"x,y\n1,2\n")
    t1 = next_second()
    v2 = s3.put_object(Bucket=bucket, Key="a.txt", Body=b"alpha v2, longer")["VersionId"]
    s3.put_object(Bucket=bucket, Key="c.json", Body=b'{"c": 1}')
    s3.delete_object(Bucket=bucket, Key="dir/b.csv")
    big = bytes(range(256)) * (10 * 1024 + 7)  # ~2.5 MiB: several download chunks
    big_key = "data/big file é.bin"
    s3.put_object(Bucket=bucket, Key=big_key, Body=big)
    t2 = next_second()
    await track(jp_fetch, bucket)

    # Snapshots at two times show different files.
    old = await get_json(jp_fetch, "buckets", bucket, "objects", at=str(t1))
    assert keys(old) == ["a.txt"] and old["prefixes"] == ["dir/"]
    assert old["objects"][0]["version_id"] == v1
    assert old["spec"]["kind"] == "snapshot" and old["spec"]["end_ms"] == t1
    assert old["next_token"] is None and old["delimiter"] == "/"
    same = await get_json(jp_fetch, "buckets", bucket, "objects", at=format_tm(t1))
    assert keys(same) == ["a.txt"] and same["spec"]["end_ms"] == t1
    now = await get_json(jp_fetch, "buckets", bucket, "objects")
    assert keys(now) == ["a.txt", "c.json"] and now["prefixes"] == ["data/"]
    assert now["objects"][0]["version_id"] == v2
    assert now["spec"]["future"] is False and old["spec"]["future"] is False
    # A time that has not come is the bucket now, marked so (the sidebar shows it as live).
    future = await get_json(jp_fetch, "buckets", bucket, "objects", at="tm20991231000000")
    assert keys(future) == keys(now) and future["spec"]["future"] is True
    recursive = await get_json(jp_fetch, "buckets", bucket, "objects", delimiter="")
    assert keys(recursive) == ["a.txt", "c.json", big_key] and recursive["prefixes"] == []
    under = await get_json(jp_fetch, "buckets", bucket, "objects", at=str(t1), prefix="dir/")
    assert keys(under) == ["dir/b.csv"]

    # Pagination.
    first = await get_json(jp_fetch, "buckets", bucket, "objects", delimiter="", max_keys=2)
    assert keys(first) == ["a.txt", "c.json"] and first["next_token"]
    rest = await get_json(
        jp_fetch,
        "buckets",
        bucket,
        "objects",
        delimiter="",
        max_keys=2,
        page_token=first["next_token"],
    )
    assert keys(rest) == [big_key] and rest["next_token"] is None

    # A slice shows only what arrived in the window (the deleted key is absent).
    window = await get_json(
        jp_fetch, "buckets", bucket, "objects", delimiter="", slice=f"{t1 + 1}/{t2}"
    )
    assert keys(window) == ["a.txt", "c.json", big_key]
    assert window["spec"]["kind"] == "slice" and window["spec"]["start_ms"] == t1 + 1
    early = await get_json(jp_fetch, "buckets", bucket, "objects", delimiter="", slice=f"0/{t1}")
    assert keys(early) == ["a.txt", "dir/b.csv"]
    msg = await error_message(
        jp_fetch, "GET", "buckets", bucket, "objects", expect=400, slice=str(t1)
    )
    assert "slice" in msg
    msg = await error_message(
        jp_fetch, "GET", "buckets", bucket, "objects", expect=400, at=str(t1), slice=f"0/{t1}"
    )
    assert "only one" in msg

    # Object metadata, as of a time or by version id.
    meta = await get_json(jp_fetch, "buckets", bucket, "object", key="a.txt", at=str(t1))
    assert meta["version_id"] == v1 and meta["size"] == len(b"alpha v1")
    assert meta["content_type"] == "text/plain" and meta["bucket"] == bucket
    assert meta["is_delete_marker"] is False and meta["spec"]["end_ms"] == t1
    meta = await get_json(jp_fetch, "buckets", bucket, "object", key="a.txt", version_id=v2)
    assert meta["version_id"] == v2 and meta["is_latest"] is True and "spec" not in meta
    await get_json(jp_fetch, "buckets", bucket, "object", key="c.json", at=str(t1), expect=404)
    await get_json(jp_fetch, "buckets", bucket, "object", key="dir/b.csv", expect=404)
    await get_json(jp_fetch, "buckets", bucket, "object", expect=400)
    await get_json(
        jp_fetch, "buckets", bucket, "object", key="a.txt", version_id="nope", expect=404
    )
    await get_json(
        jp_fetch, "buckets", bucket, "object", key="a.txt", version_id=v1, at=str(t1), expect=400
    )

    # Download: the exact bytes of the old version, streamed.
    response = await call(
        jp_fetch,
        "GET",
        "buckets",
        bucket,
        "object",
        params={"key": "a.txt", "at": str(t1), "download": "1"},
    )
    assert response.body == b"alpha v1"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["Content-Length"] == str(len(b"alpha v1"))
    assert "attachment" in response.headers["Content-Disposition"]
    assert "filename*=UTF-8''a.txt" in response.headers["Content-Disposition"]
    assert response.headers["X-Infinstor-Version-Id"] == v1
    response = await call(
        jp_fetch, "GET", "buckets", bucket, "object", params={"key": big_key, "download": "true"}
    )
    assert response.body == big
    assert response.headers["Content-Length"] == str(len(big))
    assert (
        f"filename*=UTF-8''{quote('big file é.bin', safe='')}"
        in response.headers["Content-Disposition"]
    )

    # Preview: at most preview_max_bytes, with the truncated flag.
    response = await call(
        jp_fetch, "GET", "buckets", bucket, "object", params={"key": big_key, "preview": "1"}
    )
    assert response.body == big[:PREVIEW_MAX_BYTES]
    assert response.headers["X-Infinstor-Truncated"] == "true"
    assert response.headers["Content-Type"] == "application/octet-stream"
    response = await call(
        jp_fetch, "GET", "buckets", bucket, "object", params={"key": "c.json", "preview": "1"}
    )
    assert response.body == b'{"c": 1}'
    assert response.headers["X-Infinstor-Truncated"] == "false"
    assert response.headers["Content-Type"] == "application/json"
    response = await call(
        jp_fetch,
        "GET",
        "buckets",
        bucket,
        "object",
        params={"key": "a.txt", "preview": "1", "version_id": v1},
    )
    assert response.body == b"alpha v1"
    assert response.headers["X-Infinstor-Version-Id"] == v1
    await call(
        jp_fetch,
        "GET",
        "buckets",
        bucket,
        "object",
        params={"key": "a.txt", "preview": "1", "download": "1"},
        expect=400,
    )

    # History: newest first, delete markers included.
    history = await get_json(jp_fetch, "buckets", bucket, "history", key="a.txt")
    assert history["bucket"] == bucket and history["key"] == "a.txt"
    assert [v["version_id"] for v in history["versions"]] == [v2, v1]
    assert history["versions"][0]["is_latest"] is True
    deleted = await get_json(jp_fetch, "buckets", bucket, "history", key="dir/b.csv")
    assert [v["is_delete_marker"] for v in deleted["versions"]] == [True, False]
    await get_json(jp_fetch, "buckets", bucket, "history", key="never.txt", expect=404)
    await get_json(jp_fetch, "buckets", bucket, "history", expect=400)

    # Diff between the two snapshots.
    diff = await get_json(jp_fetch, "buckets", bucket, "diff", **{"from": str(t1), "to": str(t2)})
    assert diff["counts"] == {"added": 2, "deleted": 1, "modified": 1}
    assert sorted(d["key"] for d in diff["added"]) == ["c.json", big_key]
    assert diff["deleted"][0]["key"] == "dir/b.csv"
    assert diff["modified"] == [{"key": "a.txt", "from_version_id": v1, "to_version_id": v2}]
    assert diff["from"]["end_ms"] == t1 and diff["to"]["end_ms"] == t2
    only_dir = await get_json(
        jp_fetch, "buckets", bucket, "diff", prefix="dir/", **{"from": str(t1), "to": "now"}
    )
    assert only_dir["counts"] == {"added": 0, "deleted": 1, "modified": 0}
    msg = await error_message(
        jp_fetch, "GET", "buckets", bucket, "diff", expect=400, **{"from": str(t1)}
    )
    assert "from" in msg and "to" in msg
    await get_json(
        jp_fetch, "buckets", bucket, "diff", expect=400, **{"from": f"0/{t1}", "to": "now"}
    )

    # Timeline: per-bin counts sum to the versions and delete markers in the range.
    timeline = await get_json(jp_fetch, "buckets", bucket, "timeline", bins=10)
    assert sum(timeline["created"]) == 5 and sum(timeline["deleted"]) == 1
    assert len(timeline["created"]) <= 10
    later = await get_json(
        jp_fetch, "buckets", bucket, "timeline", bins=3, **{"from": f"{t1 + 1}/{t2}", "to": str(t2)}
    )
    assert later["start_ms"] == t1 + 1 and later["end_ms"] == t2
    assert sum(later["created"]) == 3 and sum(later["deleted"]) == 1
    # A whole-second time as "from" starts at that second's first millisecond: what was
    # written in the second after t1 counts.
    same_second = await get_json(
        jp_fetch, "buckets", bucket, "timeline", **{"from": format_tm(t1 + 1), "to": str(t2)}
    )
    assert same_second["start_ms"] == t1 + 1
    assert sum(same_second["created"]) == 3 and sum(same_second["deleted"]) == 1
    earlier = await get_json(jp_fetch, "buckets", bucket, "timeline", to=str(t1))
    assert sum(earlier["created"]) == 2 and sum(earlier["deleted"]) == 0
    data_only = await get_json(jp_fetch, "buckets", bucket, "timeline", prefix="data/")
    assert sum(data_only["created"]) == 1
    for bins in ("0", "10001", "x"):
        await get_json(jp_fetch, "buckets", bucket, "timeline", bins=bins, expect=400)

    # Bucket content is served from the Jupyter origin: scripts in it must not run.
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"<script>alert(1)</script>")
    await call(jp_fetch, "POST", "buckets", bucket, "sync", expect=202)
    deadline = time.monotonic() + 10
    while True:
        response = await call(
            jp_fetch,
            "GET",
            "buckets",
            bucket,
            "object",
            params={"key": "page.html", "preview": "1"},
            expect=None,
        )
        if response.code == 200:
            break
        assert response.code == 404 and time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith("inline")


# -- labels ----------------------------------------------------------------------------------
async def test_label_lifecycle(jp_fetch, s3, bucket):
    s3.put_object(Bucket=bucket, Key="train/1.jpg", Body=b"one")
    s3.put_object(Bucket=bucket, Key="train/2.jpg", Body=b"two")
    s3.put_object(Bucket=bucket, Key="other.txt", Body=b"other")
    t1 = next_second()
    s3.put_object(Bucket=bucket, Key="train/3.jpg", Body=b"three")
    await track(jp_fetch, bucket)
    name = f"flowers-{uuid.uuid4().hex[:6]}"

    created = await post_json(
        jp_fetch,
        "labels",
        expect=201,
        body={
            "name": name,
            "bucket": bucket,
            "prefix": "train/",
            "at": str(t1),
            "description": "first two",
        },
    )
    assert created["name"] == name and created["kind"] == "snapshot"
    assert created["object_count"] == 2 and created["total_bytes"] == 6
    assert created["end_ms"] == t1 and created["description"] == "first two"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", created["fingerprint"])

    msg = await error_message(
        jp_fetch, "POST", "labels", expect=409, body={"name": name, "bucket": bucket}
    )
    assert name in msg
    assert (await get_json(jp_fetch, "labels", name)) == created
    listed = await get_json(jp_fetch, "labels")
    assert created in listed["labels"]
    assert (await get_json(jp_fetch, "labels", bucket=bucket))["labels"] == [created]
    assert (await get_json(jp_fetch, "labels", bucket="not-this-one"))["labels"] == []

    # Listing by label: its time and, with no prefix given, its prefix.
    page = await get_json(jp_fetch, "buckets", bucket, "objects", label=name)
    assert keys(page) == ["train/1.jpg", "train/2.jpg"]
    assert page["prefix"] == "train/" and page["spec"]["label"] == name
    page = await get_json(jp_fetch, "buckets", bucket, "objects", at=f"label:/{name}", prefix="")
    assert keys(page) == ["other.txt"] and page["prefixes"] == ["train/"]
    # label= is the label's view: at the bucket's root only the folder it holds, never the
    # files beside it; a prefix beside it is refused with the prefix it does hold.
    page = await get_json(jp_fetch, "buckets", bucket, "objects", label=name, prefix="")
    assert keys(page) == [] and page["prefixes"] == ["train/"]
    msg = await error_message(
        jp_fetch, "GET", "buckets", bucket, "objects", expect=400, label=name, prefix="other"
    )
    assert name in msg and f"s3://{bucket}/train/" in msg
    # "train/" + "/..." would group under "train//" from the root but not from "train/":
    # that listing is refused rather than answered wrongly.
    msg = await error_message(
        jp_fetch,
        "GET",
        "buckets",
        bucket,
        "objects",
        expect=400,
        label=name,
        prefix="",
        delimiter="//",
    )
    assert "train/" in msg
    meta = await get_json(jp_fetch, "buckets", bucket, "object", key="train/2.jpg", label=name)
    assert meta["size"] == 3
    await get_json(jp_fetch, "buckets", bucket, "object", key="train/3.jpg", label=name, expect=404)
    # other.txt existed at the label's time, but beside its prefix: not in the label.
    msg = await error_message(
        jp_fetch, "GET", "buckets", bucket, "object", expect=404, key="other.txt", label=name
    )
    assert f"s3://{bucket}/train/" in msg
    meta = await get_json(
        jp_fetch, "buckets", bucket, "object", key="other.txt", at=f"label:/{name}"
    )
    assert meta["size"] == 5
    msg = await error_message(
        jp_fetch, "GET", "buckets", "another-bucket", "objects", expect=400, label=name
    )
    assert bucket in msg

    report = await post_json(jp_fetch, "labels", name, "verify")
    assert report["ok"] is True and report["index_matches"] is True
    assert report["s3_checked"] == 2 and report["s3_missing"] == []
    report = await post_json(jp_fetch, "labels", name, "verify", body={"check_s3": False})
    assert report["ok"] is True and report["s3_checked"] == 0

    sliced = await post_json(
        jp_fetch,
        "labels",
        expect=201,
        body={"name": f"{name}-new", "bucket": bucket, "slice": f"{t1 + 1}/now"},
    )
    assert sliced["kind"] == "slice" and sliced["object_count"] == 1

    # Bad input.
    await error_message(
        jp_fetch,
        "POST",
        "labels",
        expect=404,
        body={"name": f"{name}-x", "bucket": "no-such-bucket-here"},
    )
    await error_message(
        jp_fetch, "POST", "labels", expect=400, body={"name": "bad name!", "bucket": bucket}
    )
    msg = await error_message(
        jp_fetch,
        "POST",
        "labels",
        expect=400,
        body={"name": f"{name}-y", "bucket": bucket, "at": "yesterday"},
    )
    assert "Accepted time specs" in msg
    await error_message(
        jp_fetch,
        "POST",
        "labels",
        expect=400,
        body={"name": f"{name}-z", "bucket": bucket, "at": str(t1), "slice": f"0/{t1}"},
    )
    await error_message(
        jp_fetch,
        "POST",
        "labels",
        expect=400,
        body={"name": f"{name}-w", "bucket": bucket, "at": f"0/{t1}"},
    )
    await error_message(jp_fetch, "POST", "labels", expect=400, body={"bucket": bucket})
    await error_message(jp_fetch, "POST", "labels", expect=400, body={"name": 3, "bucket": bucket})

    await call(jp_fetch, "DELETE", "labels", name, expect=204)
    await get_json(jp_fetch, "labels", name, expect=404)
    await call(jp_fetch, "DELETE", "labels", name, expect=404)
    await post_json(jp_fetch, "labels", name, "verify", expect=404)
    await get_json(jp_fetch, "buckets", bucket, "objects", label=name, expect=404)


# -- time specs and bad input ----------------------------------------------------------------
async def test_timespec(jp_fetch):
    doc = await get_json(jp_fetch, "timespec", spec="tm20261120100000")
    assert doc["kind"] == "snapshot" and doc["start_ms"] is None
    assert doc["end_ms"] == 1795168800999 and doc["canonical"] == "tm20261120100000"
    doc = await get_json(jp_fetch, "timespec", spec="2026-11-20T10:00:00Z/2026-11-21T00:00:00Z")
    assert doc["kind"] == "slice" and doc["start_ms"] == 1795168800000
    doc = await get_json(jp_fetch, "timespec", spec="1795168800123")
    assert doc["end_ms"] == 1795168800123
    for bad in (
        "yesterday",
        "tm2026",
        "tm20261301000000",
    ):
        msg = await error_message(jp_fetch, "GET", "timespec", expect=400, spec=bad)
        assert "Accepted time specs" in msg and "tmYYYYMMDDHHMMSS" in msg
    # Well-formed times S3 cannot hold are out of range, not misunderstood.
    for bad in ("9999999999999999", "9999-12-31T23:59:59-01:00", "1969-07-20T20:17:40Z"):
        msg = await error_message(jp_fetch, "GET", "timespec", expect=400, spec=bad)
        assert "is out of range" in msg and "1970-01-01T00:00:00Z" in msg, msg
    msg = await error_message(jp_fetch, "GET", "timespec", expect=400)
    assert "Accepted time specs" in msg
    await error_message(jp_fetch, "GET", "timespec", expect=404, spec="label:/no-such-label")


async def test_tracking_credentials_and_paths_stay_out_of_answers_and_the_log(
    jp_fetch, monkeypatch, caplog, tmp_path
):
    """A run:/ spec that MLflow cannot look up: the answer names the tracking store, but
    neither its userinfo nor a sqlite store's local path reaches the user or the server log."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:secret@127.0.0.1:1")
    msg = await error_message(jp_fetch, "GET", "timespec", expect=400, spec="run:/0a1b2c3d4e")
    assert "0a1b2c3d4e" in msg and "127.0.0.1:1" in msg and "reachable" in msg
    assert "secret" not in msg and "user:" not in msg
    assert "0a1b2c3d4e" in caplog.text  # the failure is logged ...
    assert "secret" not in caplog.text and "user:" not in caplog.text  # ... without them

    where = tmp_path / "private-dir" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{where}")
    msg = await error_message(jp_fetch, "GET", "timespec", expect=400, spec="run:/0a1b2c3d4e")
    assert "mlflow.db" in msg and "MLFLOW_TRACKING_URI" in msg
    assert "private-dir" not in msg and str(tmp_path) not in msg
    assert "private-dir" not in caplog.text


def test_redaction_masks_userinfo_query_secrets_and_local_paths():
    from infinstor_jlab.redact import redact, safe_uri

    assert (
        safe_uri("https://bob:pw@mlflow.example:5000/x?token=abc&page=2")
        == "https://***@mlflow.example:5000/x?token=***&page=2"
    )
    text = redact(
        "GET https://b.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Credential=AK%2F1"
        "&sig=zz&password=p failed"
    )
    assert "abc" not in text and "AK%2F1" not in text and "zz" not in text and "=p " not in text
    assert safe_uri("sqlite:////srv/private/mlflow.db") == "sqlite:///.../mlflow.db"
    assert (
        redact("cannot open /srv/private/mlflow.db", ["sqlite:////srv/private/mlflow.db"])
        == "cannot open .../mlflow.db"
    )


async def test_a_tracking_store_mlflow_refuses_is_a_503_with_mlflows_hint(
    jp_fetch, s3, bucket, monkeypatch, tmp_path
):
    """MLflow 3 refuses a file: store unless MLFLOW_ALLOW_FILE_STORE=true: starting a run says
    so (not a bare 500), and the executors answer shows the tracking store as unusable."""
    import mlflow

    if int(mlflow.__version__.split(".")[0]) < 3:
        pytest.skip("MLflow 2 accepts file: stores")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    info = await get_json(jp_fetch, "executors")
    assert info["tracking"]["available"] is False
    assert "MLFLOW_ALLOW_FILE_STORE" in info["tracking"]["detail"]
    assert "sqlite:///" in info["tracking"]["detail"]
    assert str(tmp_path) not in json.dumps(info)
    assert info["executors"][0]["name"] == "local" and info["default_executor"] == "local"
    await post_json(jp_fetch, "transforms", body={"name": "noop", "source": "x = 1\n"}, expect=201)
    msg = await error_message(
        jp_fetch,
        "POST",
        "runs",
        expect=503,
        body={"transform": "noop", "output_uri": f"s3://{bucket}/out/"},
    )
    assert msg == info["tracking"]["detail"]
    assert "MLFLOW_ALLOW_FILE_STORE=true" in msg and "MLFLOW_TRACKING_URI" in msg

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)  # MLflow's sqlite store keeps artifacts under ./mlruns
    await post_json(
        jp_fetch,
        "runs",
        expect=201,
        body={"transform": "noop", "output_uri": f"s3://{bucket}/out/"},
    )
    tracking = (await get_json(jp_fetch, "executors"))["tracking"]
    assert tracking == {"available": True, "store": "sqlite:///.../mlflow.db", "detail": None}


async def test_bad_input_is_a_sentence(jp_fetch, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    await track(jp_fetch, bucket)
    for value in ("0", "1001", "ten", "-1"):
        msg = await error_message(
            jp_fetch, "GET", "buckets", bucket, "objects", expect=400, max_keys=value
        )
        assert "max_keys" in msg
    assert keys(await get_json(jp_fetch, "buckets", bucket, "objects", max_keys="1000")) == ["a"]
    await error_message(jp_fetch, "GET", "buckets", bucket, "objects", expect=400, at="not a time")
    await error_message(
        jp_fetch, "GET", "buckets", bucket, "objects", expect=400, page_token="garbage-token"
    )

    missing = f"missing-{uuid.uuid4().hex[:8]}"
    msg = await error_message(jp_fetch, "GET", "buckets", missing, "objects", expect=404)
    assert missing in msg
    # '%' in a message (here from the key) must reach the user intact.
    msg = await error_message(
        jp_fetch, "GET", "buckets", bucket, "history", expect=404, key="100%s %d.txt"
    )
    assert "100%s %d.txt" in msg
    for route in ("history", "object"):
        await error_message(jp_fetch, "GET", "buckets", missing, route, expect=404, key="a")
    await error_message(jp_fetch, "GET", "buckets", missing, "timeline", expect=404)
    await error_message(
        jp_fetch, "GET", "buckets", missing, "diff", expect=404, **{"from": "0", "to": "now"}
    )
    await error_message(jp_fetch, "POST", "buckets", missing, "sync", expect=404)
    await error_message(
        jp_fetch, "POST", "buckets", missing, "track", expect=404, body={"enable_versioning": True}
    )
    await error_message(jp_fetch, "POST", "buckets", "Not_A_Bucket", "track", expect=400)
    await error_message(jp_fetch, "GET", "syncs", "no-such-job", expect=404)

    for body in ("{not json", "[1, 2]", '"text"', "null"):
        msg = await error_message(
            jp_fetch, "POST", "buckets", bucket, "sync", expect=400, body=body
        )
        assert msg == rest_base.BAD_BODY_MESSAGE
    msg = await error_message(
        jp_fetch, "POST", "buckets", bucket, "sync", expect=400, body={"full": "yes"}
    )
    assert "full" in msg
    await error_message(
        jp_fetch, "POST", "buckets", bucket, "track", expect=400, body={"events": 1}
    )
    await error_message(jp_fetch, "DELETE", "buckets", bucket, "track", expect=400, forget="maybe")


async def test_numbers_are_ascii_digits(jp_fetch, s3, bucket):
    """int() reads '５' (fullwidth) and '١' (Arabic-Indic) as 5 and 1; the API does not."""
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    await track(jp_fetch, bucket)
    for value in ("\uff15", "\u0661", "1\u0660"):
        msg = await error_message(
            jp_fetch, "GET", "buckets", bucket, "objects", expect=400, max_keys=value
        )
        assert "max_keys" in msg and "whole number" in msg
        await error_message(jp_fetch, "GET", "buckets", bucket, "timeline", expect=400, bins=value)
    msg = await error_message(
        jp_fetch, "GET", "buckets", bucket, "objects", expect=400, at="tm2026010100000\u0661"
    )
    assert "tmYYYYMMDDHHMMSS" in msg and "epoch milliseconds" in msg
    await error_message(jp_fetch, "GET", "timespec", expect=400, spec="\uff11\uff10\uff10\uff10")


async def test_empty_values_are_bad_requests_not_defaults(jp_fetch, s3, bucket):
    """``?forget=`` is not ``forget=0``: an empty value where the API needs one is a 400,
    and nothing is done."""
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    await track(jp_fetch, bucket)
    msg = await error_message(jp_fetch, "DELETE", "buckets", bucket, "track", expect=400, forget="")
    assert "forget" in msg and "empty" in msg
    mine = [b for b in (await get_json(jp_fetch, "buckets"))["buckets"] if b["name"] == bucket]
    assert mine[0]["tracked"] is True
    for name in ("max_keys", "page_token", "at", "slice", "label"):
        msg = await error_message(
            jp_fetch, "GET", "buckets", bucket, "objects", expect=400, **{name: ""}
        )
        assert name in msg and "empty" in msg
    for name in ("version_id", "download", "preview"):
        await error_message(
            jp_fetch, "GET", "buckets", bucket, "object", expect=400, key="a", **{name: ""}
        )
    await error_message(jp_fetch, "GET", "labels", expect=400, bucket="")
    # An empty prefix is a prefix (the root), as the front end sends it.
    assert keys(await get_json(jp_fetch, "buckets", bucket, "objects", prefix="")) == ["a"]


async def test_page_tokens_are_signed_by_the_index(jp_fetch, s3, bucket, index_url):
    """A page token resumes only where a listing of this index left off: a forged one
    (valid base64 JSON, as real tokens look) or a changed one is a 400 that says to start
    from the first page; a real one works, also for another opening of the same index."""
    import base64

    from infinstor_jlab.index import open_index

    for name in ("a.txt", "b.txt", "c.txt"):
        s3.put_object(Bucket=bucket, Key=name, Body=b"x")
    await track(jp_fetch, bucket)
    first = await get_json(jp_fetch, "buckets", bucket, "objects", max_keys="1")
    token = first["next_token"]
    assert keys(first) == ["a.txt"] and token
    rest = await get_json(jp_fetch, "buckets", bucket, "objects", page_token=token)
    assert keys(rest) == ["b.txt", "c.txt"]

    def b64(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()

    changed = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    forged = [
        b64({"p": None}),
        b64({"p": None, "i": True}),
        b64({"p": "b.txt", "i": False}),
        b64({"p": "b.txt", "i": False}) + "." + token.rpartition(".")[2],
        changed,
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        token + "x",
    ]
    for bad in forged:
        msg = await error_message(
            jp_fetch, "GET", "buckets", bucket, "objects", expect=400, page_token=bad
        )
        assert "page token is not valid" in msg and "first page" in msg, (bad, msg)

    # Another opening of the same file (as after a server restart) accepts the token.
    index = open_index(index_url)
    try:
        page = index.list_view(bucket, end_ms=10**14, token=token)
        assert [o.key for o in page.objects] == ["b.txt", "c.txt"]
    finally:
        index.close()


async def test_over_long_keys_and_urls_are_a_json_400(jp_fetch, s3, bucket):
    """S3 keys are at most 1024 bytes: a longer key, prefix or start_after names nothing and
    is refused with the limit; a URL longer than Tornado's 64 KiB default gets our JSON 400
    instead of a dropped connection."""
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    await track(jp_fetch, bucket)
    long_key = "k" * 2000
    for route in ("history", "object"):
        msg = await error_message(
            jp_fetch, "GET", "buckets", bucket, route, expect=400, key=long_key
        )
        assert "1024 bytes" in msg
    # Bytes, not characters: 600 two-byte characters are 1200 bytes.
    msg = await error_message(
        jp_fetch, "GET", "buckets", bucket, "objects", expect=400, prefix="\u00e9" * 600
    )
    assert "1024 bytes" in msg and "prefix" in msg
    msg = await error_message(
        jp_fetch, "GET", "buckets", bucket, "objects", expect=400, start_after=long_key
    )
    assert "1024 bytes" in msg
    # A key at the limit is a key.
    await error_message(jp_fetch, "GET", "buckets", bucket, "history", expect=404, key="k" * 1024)
    msg = await error_message(
        jp_fetch,
        "POST",
        "labels",
        expect=400,
        body={"name": "long", "bucket": bucket, "prefix": long_key},
    )
    assert "1024 bytes" in msg
    for params in ({"prefix": "p" * 70 * 1024}, {"page_token": "t" * 70 * 1024}):
        msg = await error_message(
            jp_fetch, "GET", "buckets", bucket, "objects", expect=400, **params
        )
        assert "bytes" in msg
    await error_message(jp_fetch, "GET", "timespec", expect=400, spec="now", junk="j" * 70 * 1024)


async def test_keys_with_control_characters_reach_the_index_unchanged(jp_fetch, bucket, index_url):
    """S3 keys may hold control characters (listings carry them url-encoded). A key or prefix
    sent as a query parameter arrives as sent: Tornado's own reading would turn \\x07 into a
    space and answer for another key."""
    from infinstor_jlab.index import VersionEntry, open_index

    key = "bell\x07key.txt"
    etag = '"' + "0" * 32 + '"'
    index = open_index(index_url)
    index.register_bucket(bucket, versioning="Enabled")
    index.merge_listing(
        bucket,
        [
            VersionEntry(key, "v1", 1_763_632_800_000, 3, etag, False, False),
            VersionEntry("bell key.txt", "v2", 1_763_632_800_000, 4, etag, False, False),
        ],
        after_key=None,
        through_key=None,
        scan_started_ms=10**13,
    )
    history = await get_json(jp_fetch, "buckets", bucket, "history", key=key)
    assert [(v["key"], v["version_id"]) for v in history["versions"]] == [(key, "v1")]
    page = await get_json(
        jp_fetch, "buckets", bucket, "objects", prefix="bell\x07", at="1763632801000"
    )
    assert page["prefix"] == "bell\x07"
    assert [o["key"] for o in page["objects"]] == [key]
    msg = await error_message(
        jp_fetch, "GET", "buckets", bucket, "history", expect=400, key=b"\xff\xfe"
    )
    assert "UTF-8" in msg


async def test_the_run_dialog_hears_that_mlflow_is_missing_as_it_opens(jp_fetch, monkeypatch):
    """Without MLflow no run can start: `GET executors`, which the run dialog asks before
    showing its form, answers 503 with what to install, instead of the form failing only at
    *Run*. Stored transforms can still be listed."""
    import sys

    for name in ("mlflow", "mlflow.tracking"):
        monkeypatch.setitem(sys.modules, name, None)  # `import mlflow` fails, as uninstalled
    msg = await error_message(jp_fetch, "GET", "executors", expect=503)
    assert "MLflow" in msg and "pip install mlflow" in msg
    assert (await get_json(jp_fetch, "transforms"))["transforms"] == []
