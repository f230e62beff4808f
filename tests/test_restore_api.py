"""The REST side of restore and get: the plan, the typed confirmation, the jobs, a download
into the Jupyter file tree; every answer validated against openapi.yaml."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from test_openapi import Recorder, jp_server_config, spec  # noqa: F401 - fixtures
from timing import next_second

from infinstor_jlab.timespec import format_tm


@pytest.fixture
def jp_root_dir(tmp_path):
    root = tmp_path / "jupyter-root"
    root.mkdir()
    return root


async def wait_job(api: Recorder, job_id: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        job = await api("GET", "/infinstor/jobs/{job_id}", path={"job_id": job_id}, expect=200)
        if job["finished"]:
            return job
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_restore_plan_confirm_and_job(spec, jp_fetch, s3, bucket, jp_root_dir):  # noqa: F811
    api = Recorder(spec, jp_fetch)
    b = {"bucket": bucket}
    s3.put_object(Bucket=bucket, Key="tables/a.csv", Body=b"good")
    at = format_tm(next_second())
    s3.put_object(Bucket=bucket, Key="tables/a.csv", Body=b"BAD")
    s3.put_object(Bucket=bucket, Key="tables/new.csv", Body=b"new")
    next_second()
    track = await api("POST", "/infinstor/buckets/{bucket}/track", path=b, body={}, expect=200)
    deadline = time.monotonic() + 20
    while not (
        await api(
            "GET", "/infinstor/syncs/{job_id}", path={"job_id": track["sync_job"]}, expect=200
        )
    )["done"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)

    plan_url = "/infinstor/buckets/{bucket}/restore/plan"
    plan = await api("POST", plan_url, path=b, body={"prefix": "tables/", "to": at}, expect=200)
    assert [a["key"] for a in plan["copy"]] == ["tables/a.csv"]
    assert [a["key"] for a in plan["delete"]] == ["tables/new.csv"]
    assert plan["confirm"] == "tables"
    await api("POST", plan_url, path=b, body={"prefix": "tables/", "to": "bogus"}, expect=400)
    await api("POST", plan_url, path=b, body={"prefix": "tables/"}, expect=400)
    await api(
        "POST",
        plan_url,
        path={"bucket": "no-such-bucket"},
        body={"prefix": "", "to": at},
        expect=404,
    )

    restore_url = "/infinstor/buckets/{bucket}/restore"
    wrong = {"prefix": "tables/", "to": at, "confirm": "table", "expect": plan["fingerprint"]}
    await api("POST", restore_url, path=b, body=wrong, expect=400)
    assert s3.get_object(Bucket=bucket, Key="tables/a.csv")["Body"].read() == b"BAD"
    job = await api("POST", restore_url, path=b, body={**wrong, "confirm": "tables"}, expect=202)
    done = await wait_job(api, job["id"])
    assert done["state"] == "done", done
    result = done["result"]
    assert result["ok"] and result["copied"] == 1 and result["deleted"] == 1
    assert result["label"].startswith("before-restore-") and result["check"]["matches"]
    assert s3.get_object(Bucket=bucket, Key="tables/a.csv")["Body"].read() == b"good"
    # The same plan again is not the plan now: refused in the job, nothing changed.
    again = await api("POST", restore_url, path=b, body={**wrong, "confirm": "tables"}, expect=202)
    failed = await wait_job(api, again["id"])
    assert (
        failed["state"] == "error" and "changed since the restore plan was shown" in failed["error"]
    )
    await api("GET", "/infinstor/jobs/{job_id}", path={"job_id": "nope"}, expect=404)

    get_url = "/infinstor/buckets/{bucket}/get"
    for bad in ("../out", "/abs", "a/./b", ""):
        await api("POST", get_url, path=b, body={"path": bad, "prefix": "tables/"}, expect=400)
    job = await api(
        "POST", get_url, path=b, body={"path": "data/t", "prefix": "tables/", "at": at}, expect=202
    )
    done = await wait_job(api, job["id"])
    assert done["state"] == "done", done
    assert done["result"]["directory"] == "data/t" and done["result"]["fetched"] == 1
    assert (Path(jp_root_dir) / "data" / "t" / "a.csv").read_bytes() == b"good"
    assert (Path(jp_root_dir) / "data" / "t" / "infinstor-manifest.json").exists()
    from test_openapi import restore_routes

    # The restore, get and job routes are checked here rather than in test_openapi.
    assert {r for r in api.seen if r in restore_routes(spec)} == restore_routes(spec)
