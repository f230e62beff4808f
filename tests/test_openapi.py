"""openapi.yaml (shipped in the package) matches the handlers: the same routes and verbs, and
real answers of every route validate against the documented schemas. Then schemathesis fuzzes a
live server started as a subprocess: no 5xx, no undocumented status, no schema violation."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import tornado.web
import yaml
from live_server import LiveServer
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec
from tornado.httpclient import HTTPClientError, HTTPResponse

import infinstor_jlab
from infinstor_jlab import rest

OPENAPI_PATH = Path(infinstor_jlab.__file__).parent / "openapi.yaml"
VERBS = ("get", "post", "put", "patch", "delete")
#: Examples per operation and pass; raise it (INFINSTOR_FUZZ_EXAMPLES=200) for a deeper run.
FUZZ_EXAMPLES = int(os.environ.get("INFINSTOR_FUZZ_EXAMPLES", "6"))


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    with OPENAPI_PATH.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture
def jp_server_config(index_url, s3_endpoint, monkeypatch, tmp_path):
    monkeypatch.setenv("INFINSTOR_INDEX_URL", index_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    # Transform runs record lineage in MLflow; its sqlite store keeps artifacts in ./mlruns.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)
    return {
        "ServerApp": {"jpserver_extensions": {"infinstor_jlab": True}},
        "InfinstorApp": {
            "index_url": index_url,
            "s3_endpoint_url": s3_endpoint,
            "reconcile_interval": 0.0,
            "sqs_wait_seconds": 1,
            "preview_max_bytes": 64,
        },
    }


def handler_routes() -> set[tuple[str, str]]:
    """(OpenAPI path template, verb) for every route and verb of default_handlers."""
    routes = set()
    for pattern, cls in rest.handlers:
        template = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
        assert "(" not in template, f"unnamed group in {pattern}: name it after its parameter"
        for verb in VERBS:
            if getattr(cls, verb) is not getattr(tornado.web.RequestHandler, verb):
                routes.add((template, verb))
    return routes


def documented_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, verb) for path, item in spec["paths"].items() for verb in item if verb in VERBS}


def transform_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, verb)
        for path, verb in documented_routes(spec)
        if "transforms" in spec["paths"][path][verb].get("tags", [])
    }


def endpoint_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, verb)
        for path, verb in documented_routes(spec)
        if "endpoint" in spec["paths"][path][verb].get("tags", [])
    }


def pipeline_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """Exercised by test_pipeline_answers_match_the_document."""
    return {
        (path, verb)
        for path, verb in documented_routes(spec)
        if "pipelines" in spec["paths"][path][verb].get("tags", [])
    }


def restore_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """Exercised, with every answer checked against the document, by test_restore_api.py."""
    return {
        (path, verb)
        for path, verb in documented_routes(spec)
        if "restore" in spec["paths"][path][verb].get("tags", [])
    }


def deref(spec: dict[str, Any], node: Any) -> Any:
    """The node with every local $ref replaced by its target (the document has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return deref(spec, target)
        return {k: deref(spec, v) for k, v in node.items()}
    if isinstance(node, list):
        return [deref(spec, v) for v in node]
    return node


def test_document_is_valid_openapi(spec):
    validate_spec(spec)
    assert spec["openapi"].startswith("3.0")


def test_every_route_is_documented_and_every_documented_route_exists(spec):
    served, documented = handler_routes(), documented_routes(spec)
    assert served - documented == set(), "routes missing from openapi.yaml"
    assert documented - served == set(), "openapi.yaml documents routes no handler serves"


def test_path_parameters_match(spec):
    for template, item in spec["paths"].items():
        names = set(re.findall(r"{(\w+)}", template))
        params = [deref(spec, p) for p in item.get("parameters", [])]
        for verb in VERBS:
            params += [deref(spec, p) for p in item.get(verb, {}).get("parameters", [])]
        assert {p["name"] for p in params if p["in"] == "path"} == names, template


def test_every_operation_documents_auth_and_error_shape(spec):
    for template, item in spec["paths"].items():
        for verb in VERBS:
            if verb not in item:
                continue
            responses = item[verb]["responses"]
            assert "403" in responses, (template, verb)
            for status, response in responses.items():
                response = deref(spec, response)
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema["required"] == ["message"], (template, verb, status)


def test_openapi_ships_in_the_package():
    # hatchling's wheel target takes every file of the package directory that git does not
    # ignore; make sure nothing ignores the document.
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(OPENAPI_PATH)],
        cwd=OPENAPI_PATH.parent,
        check=False,
    )
    assert ignored.returncode == 1, "openapi.yaml is git-ignored, so the wheel would miss it"


# -- real answers validate against the document ------------------------------------------------
class Recorder:
    """Calls routes through jp_fetch and validates each answer against openapi.yaml."""

    def __init__(self, spec: dict[str, Any], jp_fetch: Any) -> None:
        self.spec = spec
        self.jp_fetch = jp_fetch
        self.seen: set[tuple[str, str]] = set()
        self.statuses: set[tuple[str, str, int]] = set()

    async def __call__(
        self,
        method: str,
        template: str,
        *,
        expect: int,
        path: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        url = template
        for name, value in (path or {}).items():
            url = url.replace("{" + name + "}", value)
        kwargs: dict[str, Any] = {"method": method, "params": params or {}}
        if headers is not None:
            kwargs["headers"] = headers
        if body is not None:
            kwargs["body"] = json.dumps(body)
        elif method == "POST":
            kwargs["body"] = b""
        try:
            response: HTTPResponse = await self.jp_fetch(*url.strip("/").split("/"), **kwargs)
        except HTTPClientError as exc:
            assert exc.response is not None
            response = exc.response
        assert response.code == expect, (method, url, params, response.code, response.body)
        self.seen.add((template, method.lower()))
        self.statuses.add((template, method.lower(), response.code))
        return self.validate(method, template, response)

    def validate(self, method: str, template: str, response: HTTPResponse) -> Any:
        operation = self.spec["paths"][template][method.lower()]
        documented = operation["responses"]
        status = str(response.code)
        assert status in documented, f"{method} {template} answered undocumented {status}"
        doc = deref(self.spec, documented[status])
        content = doc.get("content")
        if not content:
            assert not response.body, f"{method} {template} {status} should have no body"
            return None
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype == "application/json":
            assert "application/json" in content, (method, template, status, ctype)
            payload = json.loads(response.body)
            schema = deref(self.spec, content["application/json"]["schema"])
            errors = sorted(OAS30Validator(schema).iter_errors(payload), key=str)
            assert not errors, f"{method} {template} {status}: {errors[0]}\n{payload}"
            return payload
        assert "*/*" in content or ctype in content, (method, template, status, ctype)
        return response


def seconds_boundary() -> int:
    now = time.time()
    boundary = int(now) + 1
    time.sleep(boundary - now + 0.02)
    return boundary * 1000 - 1


async def wait_job(api: Recorder, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        job = await api("GET", "/infinstor/syncs/{job_id}", path={"job_id": job_id}, expect=200)
        if job["done"]:
            return job
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_real_answers_match_the_document(spec, jp_fetch, s3, bucket):
    api = Recorder(spec, jp_fetch)
    b = {"bucket": bucket}
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"one")
    s3.put_object(Bucket=bucket, Key="d/b.bin", Body=bytes(range(200)))
    t1 = seconds_boundary()
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"two")
    s3.delete_object(Bucket=bucket, Key="d/b.bin")
    plain = f"plain-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=plain)
    missing = f"missing-{uuid.uuid4().hex[:8]}"

    await api("GET", "/infinstor/health", expect=200)
    await api("GET", "/infinstor/health", expect=403, headers={"Authorization": ""})
    await api("POST", "/infinstor/buckets/{bucket}/track", path={"bucket": plain}, expect=400)
    await api(
        "POST",
        "/infinstor/buckets/{bucket}/track",
        path={"bucket": missing},
        body={"enable_versioning": True},
        expect=404,
    )
    tracked = await api(
        "POST", "/infinstor/buckets/{bucket}/track", path=b, body={"events": True}, expect=200
    )
    await wait_job(api, tracked["sync_job"])
    await api("GET", "/infinstor/buckets", expect=200)
    await api("GET", "/infinstor/syncs/{job_id}", path={"job_id": "nope"}, expect=404)
    job = await api(
        "POST", "/infinstor/buckets/{bucket}/sync", path=b, body={"full": True}, expect=202
    )
    await wait_job(api, job["id"])
    await api("POST", "/infinstor/buckets/{bucket}/sync", path={"bucket": missing}, expect=404)
    await api("POST", "/infinstor/buckets/{bucket}/sync", path=b, body={"full": 1}, expect=400)

    objects = "/infinstor/buckets/{bucket}/objects"
    await api("GET", objects, path=b, expect=200)
    await api("GET", objects, path=b, params={"at": str(t1), "delimiter": ""}, expect=200)
    await api("GET", objects, path=b, params={"slice": f"0/{t1}", "max_keys": "1"}, expect=200)
    await api("GET", objects, path=b, params={"max_keys": "0"}, expect=400)
    await api("GET", objects, path={"bucket": missing}, expect=404)

    obj = "/infinstor/buckets/{bucket}/object"
    await api("GET", obj, path=b, params={"key": "a.txt"}, expect=200)
    meta = await api("GET", obj, path=b, params={"key": "d/b.bin", "at": str(t1)}, expect=200)
    await api(
        "GET", obj, path=b, params={"key": "a.txt", "version_id": meta["version_id"]}, expect=404
    )
    await api(
        "GET", obj, path=b, params={"key": "d/b.bin", "version_id": meta["version_id"]}, expect=200
    )
    download = await api(
        "GET", obj, path=b, params={"key": "d/b.bin", "at": str(t1), "download": "1"}, expect=200
    )
    assert download.body == bytes(range(200))
    preview = await api(
        "GET", obj, path=b, params={"key": "d/b.bin", "at": str(t1), "preview": "1"}, expect=200
    )
    assert preview.body == bytes(range(64))
    assert preview.headers["X-Infinstor-Truncated"] == "true"
    await api("GET", obj, path=b, expect=400)
    await api("GET", obj, path=b, params={"key": "d/b.bin"}, expect=404)

    ticket = await api(
        "POST",
        "/infinstor/downloads",
        body={"bucket": bucket, "key": "d/b.bin", "at": str(t1)},
        expect=201,
    )
    link = "/infinstor/downloads/{ticket}"
    download = await api(
        "GET", link, path={"ticket": ticket["ticket"]}, expect=200, headers={"Authorization": ""}
    )
    assert download.body == bytes(range(200))
    await api("GET", link, path={"ticket": ticket["ticket"]}, expect=403)
    await api("POST", "/infinstor/downloads", body={"bucket": bucket}, expect=400)
    await api("POST", "/infinstor/downloads", body={"bucket": bucket, "key": "d/b.bin"}, expect=404)

    history = "/infinstor/buckets/{bucket}/history"
    await api("GET", history, path=b, params={"key": "d/b.bin"}, expect=200)
    await api("GET", history, path=b, expect=400)
    await api("GET", history, path=b, params={"key": "nope"}, expect=404)

    diff = "/infinstor/buckets/{bucket}/diff"
    result = await api("GET", diff, path=b, params={"from": str(t1), "to": "now"}, expect=200)
    assert result["counts"] == {"added": 0, "deleted": 1, "modified": 1}
    await api("GET", diff, path=b, params={"from": str(t1)}, expect=400)
    await api("GET", diff, path={"bucket": missing}, params={"from": "0", "to": "now"}, expect=404)

    timeline = "/infinstor/buckets/{bucket}/timeline"
    await api("GET", timeline, path=b, params={"bins": "5"}, expect=200)
    await api("GET", timeline, path=b, params={"bins": "0"}, expect=400)
    await api("GET", timeline, path={"bucket": missing}, expect=404)

    name = f"lbl-{uuid.uuid4().hex[:8]}"
    label = {"name": name}
    created = await api(
        "POST",
        "/infinstor/labels",
        body={"name": name, "bucket": bucket, "at": str(t1)},
        expect=201,
    )
    assert created["object_count"] == 2
    await api("POST", "/infinstor/labels", body={"name": name, "bucket": bucket}, expect=409)
    await api("POST", "/infinstor/labels", body={"name": "x y", "bucket": bucket}, expect=400)
    await api("POST", "/infinstor/labels", body={"name": name + "2", "bucket": missing}, expect=404)
    await api("GET", "/infinstor/labels", expect=200)
    await api("GET", "/infinstor/labels", params={"bucket": bucket}, expect=200)
    await api("GET", "/infinstor/labels/{name}", path=label, expect=200)
    await api("POST", "/infinstor/labels/{name}/verify", path=label, expect=200)
    await api(
        "POST", "/infinstor/labels/{name}/verify", path=label, body={"check_s3": "no"}, expect=400
    )
    await api("GET", objects, path=b, params={"label": name}, expect=200)
    await api("DELETE", "/infinstor/labels/{name}", path=label, expect=204)
    await api("GET", "/infinstor/labels/{name}", path=label, expect=404)
    await api("DELETE", "/infinstor/labels/{name}", path=label, expect=404)
    await api("POST", "/infinstor/labels/{name}/verify", path=label, expect=404)

    await api("GET", "/infinstor/timespec", params={"spec": "tm20261120100000"}, expect=200)
    await api("GET", "/infinstor/timespec", params={"spec": "A/B"}, expect=400)
    await api("GET", "/infinstor/timespec", params={"spec": "label:/nope"}, expect=404)

    await api(
        "DELETE",
        "/infinstor/buckets/{bucket}/track",
        path=b,
        params={"forget": "maybe"},
        expect=400,
    )
    await api("DELETE", "/infinstor/buckets/{bucket}/track", path=b, expect=204)
    await api("DELETE", "/infinstor/buckets/{bucket}/track", path={"bucket": missing}, expect=404)

    assert api.seen == (
        documented_routes(spec)
        - transform_routes(spec)
        - pipeline_routes(spec)
        - schedule_routes(spec)
        - endpoint_routes(spec)
        - restore_routes(spec)
    ), "some routes were not exercised"


async def test_endpoint_answers_match_the_document(spec, jp_fetch, s3, bucket, service):
    """The S3 endpoint's REST side: where it runs, issue a view credential (which then reads
    the view through the endpoint with boto3), list, revoke; every answer validates."""
    import boto3
    from botocore.exceptions import ClientError

    api = Recorder(spec, jp_fetch)
    s3.put_object(Bucket=bucket, Key="d/a.txt", Body=b"old")
    t0 = seconds_boundary()
    s3.put_object(Bucket=bucket, Key="d/a.txt", Body=b"new")
    service.track(bucket, enable_versioning_consent=True)
    service.sync(bucket)

    state = await api("GET", "/infinstor/endpoint", expect=200)
    assert state["running"] and state["url"].startswith("http://127.0.0.1:")
    issued = await api(
        "POST",
        "/infinstor/endpoint/credentials",
        body={"view": str(t0), "bucket": bucket, "prefix": "d/", "expires": "1h"},
        expect=201,
    )
    assert issued["endpoint_url"] == state["url"]
    client = boto3.client(
        "s3",
        endpoint_url=issued["endpoint_url"],
        aws_access_key_id=issued["aws_access_key_id"],
        aws_secret_access_key=issued["aws_secret_access_key"],
        region_name="us-east-1",
    )
    assert client.get_object(Bucket=bucket, Key="d/a.txt")["Body"].read() == b"old"
    for body in (
        {"view": "not a time"},
        {"view": "now", "prefix": "d/"},
        {"view": "now", "bucket": bucket, "expires": "forever"},
        {},
    ):
        await api("POST", "/infinstor/endpoint/credentials", body=body, expect=400)
    await api(
        "POST",
        "/infinstor/endpoint/credentials",
        body={"view": "now", "bucket": "no-such-bucket-here"},
        expect=404,
    )
    listed = await api("GET", "/infinstor/endpoint/credentials", expect=200)
    assert [c["aws_access_key_id"] for c in listed["credentials"]] == [issued["aws_access_key_id"]]
    key = {"key_id": issued["aws_access_key_id"]}
    revoked = await api("DELETE", "/infinstor/endpoint/credentials/{key_id}", path=key, expect=200)
    assert revoked["state"] == "revoked"
    with pytest.raises(ClientError):
        client.get_object(Bucket=bucket, Key="d/a.txt")
    await api(
        "DELETE",
        "/infinstor/endpoint/credentials/{key_id}",
        path={"key_id": "INFVNOSUCHKEY2345678"},
        expect=404,
    )
    assert api.seen == endpoint_routes(spec), "some endpoint routes were not exercised"


COPY_CELL = """%reset -f
import os, shutil
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    shutil.copy(filename, os.path.join(output_dir, kwargs.get("tag", "") +
                                       os.path.basename(filename)))
test_infin_transform({"type": "no-input-data"})  # infinstor
"""
SLOW_CELL = """import time
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    time.sleep(60)
"""


async def wait_run(api: Recorder, run_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = await api("GET", "/infinstor/runs/{run_id}", path={"run_id": run_id}, expect=200)
        if run["state"] in ("succeeded", "failed", "cancelled"):
            return run
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.2)


async def test_transform_answers_match_the_document(spec, jp_fetch, s3, bucket, service):
    """The transforms API end to end: check a cell, store revisions, run one locally over a
    view with its output labelled and indexed, read its log, cancel another; every answer
    validates against openapi.yaml."""
    import mlflow

    api = Recorder(spec, jp_fetch)
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        s3.put_object(Bucket=bucket, Key=f"in/{name}", Body=name.encode())
    service.track(bucket, enable_versioning_consent=True)
    service.sync(bucket)

    info = await api("GET", "/infinstor/executors", expect=200)
    assert [e["name"] for e in info["executors"]] == ["local", "spark", "emr", "emr-serverless"]
    assert info["executors"][0]["available"] is True
    # Unconfigured, EMR Serverless is offered as unavailable, saying what to set.
    assert "application_id" in info["executors"][3]["detail"]

    checked = await api(
        "POST", "/infinstor/transforms/check", body={"source": COPY_CELL}, expect=200
    )
    assert checked["entry_point"] == "infin_transform_one_object"
    assert "%reset" not in checked["code"] and "test_infin_transform" not in checked["code"]
    bad = await api(
        "POST", "/infinstor/transforms/check", body={"source": "def f(:\n  pass"}, expect=400
    )
    assert "line 1" in bad["message"]
    await api("POST", "/infinstor/transforms/check", body={}, expect=400)
    typo = COPY_CELL.replace("infin_transform_one_object", "infin_transform_one_obj")
    for route in ("/infinstor/transforms/check", "/infinstor/transforms"):
        refused = await api("POST", route, body={"name": "typo", "source": typo}, expect=400)
        assert "did you mean infin_transform_one_object" in refused["message"]

    t = "copy-" + uuid.uuid4().hex[:6]
    rev = await api(
        "POST", "/infinstor/transforms", body={"name": t, "source": COPY_CELL}, expect=201
    )
    assert rev["revision"] == 1 and rev["sha256"] == checked["sha256"]
    assert rev["author"]  # the authenticated Jupyter user
    again = await api(
        "POST", "/infinstor/transforms", body={"name": t, "source": COPY_CELL}, expect=200
    )
    assert again["revision"] == 1
    rev2 = await api(
        "POST",
        "/infinstor/transforms",
        body={"name": t, "source": COPY_CELL + "\nX = 1\n"},
        expect=201,
    )
    assert rev2["revision"] == 2
    await api(
        "POST", "/infinstor/transforms", body={"name": "bad name", "source": "x = 1"}, expect=400
    )
    await api("POST", "/infinstor/transforms", body={"name": "ok", "source": "x ="}, expect=400)
    listed = await api("GET", "/infinstor/transforms", expect=200)
    mine = next(x for x in listed["transforms"] if x["name"] == t)
    assert [r["revision"] for r in mine["revisions"]] == [2, 1] and "code" not in mine["latest"]
    got = await api("GET", "/infinstor/transforms/{name}", path={"name": t}, expect=200)
    assert got["revisions"][1]["code"] == checked["code"]
    await api("GET", "/infinstor/transforms/{name}", path={"name": "nope"}, expect=404)

    out_label = "out-" + uuid.uuid4().hex[:6]
    run = await api(
        "POST",
        "/infinstor/runs",
        body={
            "transform": t,
            "revision": 1,
            "executor": "local",
            "input": {"type": "view", "bucket": bucket, "prefix": "in/", "at": "now"},
            "output_uri": f"s3://{bucket}/out/",
            "kwargs": {"tag": "x-"},
            "label_output": out_label,
        },
        expect=201,
    )
    assert run["state"] in ("queued", "running") and run["total"] == 3
    done = await wait_run(api, run["id"])
    assert done["state"] == "succeeded", done
    assert done["done"] == done["total"] == 3
    assert done["output_uri"] == f"s3://{bucket}/out/{run['id']}/"
    assert done["output_label"] == out_label and done["label_error"] is None
    # The output is in the index (browsable at once) and its label pins it.
    page = json.loads(
        (
            await jp_fetch(
                "infinstor", "buckets", bucket, "objects", params={"prefix": f"out/{run['id']}/"}
            )
        ).body
    )
    names = sorted(o["key"].rsplit("/", 1)[1] for o in page["objects"])
    assert names == ["_SUCCESS.json", "x-a.txt", "x-b.txt", "x-c.txt"]
    label = json.loads((await jp_fetch("infinstor", "labels", out_label)).body)
    assert label["object_count"] == 4 and run["id"] in label["description"]
    params = mlflow.tracking.MlflowClient().get_run(run["id"]).data.params
    assert params["transform_name"] == t and params["transform_revision"] == "1"
    log = await api(
        "GET",
        "/infinstor/runs/{run_id}/log",
        path={"run_id": run["id"]},
        params={"lines": "50"},
        expect=200,
    )
    assert "_SUCCESS.json" in log["log"] or "succeeded" in log["log"].lower() or log["log"]
    await api(
        "GET",
        "/infinstor/runs/{run_id}/log",
        path={"run_id": run["id"]},
        params={"lines": "0"},
        expect=400,
    )
    await api("POST", "/infinstor/runs/{run_id}/cancel", path={"run_id": run["id"]}, expect=409)

    for body, status in [
        ({"transform": t, "executor": "mainframe", "output_uri": f"s3://{bucket}/o/"}, 400),
        ({"transform": t, "output_uri": f"s3://{bucket}/o/", "kwargs": "[1]"}, 400),
        ({"transform": t, "output_uri": f"s3://{bucket}/o/", "requirements": ["-r x"]}, 400),
        ({"transform": t, "output_uri": "not-s3"}, 400),
        ({"transform": t, "output_uri": f"s3://{bucket}/o/", "revision": 9}, 404),
        ({"transform": "nope", "output_uri": f"s3://{bucket}/o/"}, 404),
        (
            {
                "transform": t,
                "output_uri": f"s3://{bucket}/o/",
                "input": {"type": "label", "label": "no-such-label"},
            },
            404,
        ),
        ({"transform": t, "output_uri": f"s3://{bucket}/o/", "label_output": out_label}, 409),
        ({"transform": t, "output_uri": f"s3://{bucket}/o/", "input": "label"}, 400),
    ]:
        await api("POST", "/infinstor/runs", body=body, expect=status)

    slow = "slow-" + uuid.uuid4().hex[:6]
    await api("POST", "/infinstor/transforms", body={"name": slow, "source": SLOW_CELL}, expect=201)
    started = await api(
        "POST",
        "/infinstor/runs",
        body={
            "transform": slow,
            "input": {"type": "label", "label": out_label},
            "output_uri": f"s3://{bucket}/slow/",
        },
        expect=201,
    )
    await api("POST", "/infinstor/runs/{run_id}/cancel", path={"run_id": started["id"]}, expect=200)
    cancelled = await wait_run(api, started["id"], timeout=30)
    assert cancelled["state"] == "cancelled"
    assert mlflow.tracking.MlflowClient().get_run(started["id"]).info.status == "KILLED"

    runs = await api("GET", "/infinstor/runs", params={"transform": t}, expect=200)
    assert [r["id"] for r in runs["runs"]] == [run["id"]]
    newest = await api("GET", "/infinstor/runs", params={"limit": "1"}, expect=200)
    assert [r["id"] for r in newest["runs"]] == [started["id"]]
    active = await api("GET", "/infinstor/runs", params={"active": "1"}, expect=200)
    assert active["runs"] == []
    await api("GET", "/infinstor/runs", params={"limit": "0"}, expect=400)
    await api("GET", "/infinstor/runs/{run_id}", path={"run_id": "nope"}, expect=404)
    await api("POST", "/infinstor/runs/{run_id}/cancel", path={"run_id": "nope"}, expect=404)
    await api("GET", "/infinstor/runs/{run_id}/log", path={"run_id": "nope"}, expect=404)
    await api("DELETE", "/infinstor/transforms/{name}", path={"name": t}, expect=204)
    await api("DELETE", "/infinstor/transforms/{name}", path={"name": t}, expect=404)
    assert (await api("GET", "/infinstor/runs/{run_id}", path={"run_id": run["id"]}, expect=200))[
        "state"
    ] == "succeeded"  # runs outlive their transform

    assert api.seen == transform_routes(spec), "some transform routes were not exercised"


async def wait_pipeline_run(api: Recorder, name: str, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    path = {"name": name, "run_id": run_id}
    while True:
        run = await api("GET", "/infinstor/pipelines/{name}/runs/{run_id}", path=path, expect=200)
        if run["state"] != "running":
            return run
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.2)


async def test_pipeline_answers_match_the_document(spec, jp_fetch, s3, bucket, service):
    """The pipelines API end to end: refused definitions (400s naming the problem), save,
    run (two steps feeding a third), a cached re-run, a cancel; every answer validates."""
    api = Recorder(spec, jp_fetch)
    for name in ("a.txt", "b.txt"):
        s3.put_object(Bucket=bucket, Key=f"in/{name}", Body=name.encode())
    service.track(bucket, enable_versioning_consent=True)
    service.sync(bucket)
    await api("POST", "/infinstor/transforms", body={"name": "cp", "source": COPY_CELL}, expect=201)
    await api(
        "POST", "/infinstor/transforms", body={"name": "nap", "source": SLOW_CELL}, expect=201
    )
    view = {"type": "view", "bucket": bucket, "prefix": "in/"}
    out = f"s3://{bucket}/out/"

    def step(name: str, inp: Any, transform: str = "cp", **more: Any) -> dict[str, Any]:
        return {"name": name, "transform": transform, "input": inp, "output_uri": out, **more}

    pipeline = {
        "name": "fan",
        "steps": [
            step("a", view, kwargs={"tag": "a-"}),
            step("b", view, kwargs={"tag": "b-"}),
            step("c", {"type": "step", "steps": ["a", "b"]}),
        ],
    }
    for bad, message in (
        ({**pipeline, "steps": [step("a", {"type": "step", "step": "a"})]}, "cycle: a -> a"),
        ({**pipeline, "steps": [step("a", view, transform="nope")]}, "no transform named"),
        ({**pipeline, "steps": [step("a", view), step("a", view)]}, "two steps named 'a'"),
        ({**pipeline, "steps": [step("a", {"type": "step", "step": "x"})]}, "reads step 'x'"),
        ({**pipeline, "steps": [{"name": "a", "transform": "cp"}]}, "has no input"),
    ):
        refused = await api("POST", "/infinstor/pipelines", body=bad, expect=400)
        assert message in refused["message"], refused
    saved = await api("POST", "/infinstor/pipelines", body=pipeline, expect=201)
    assert [s["name"] for s in saved["steps"]] == ["a", "b", "c"]
    await api("POST", "/infinstor/pipelines", body=pipeline, expect=200)
    fan = {"name": "fan"}
    await api("GET", "/infinstor/pipelines/{name}", path=fan, expect=200)
    await api("GET", "/infinstor/pipelines/{name}", path={"name": "nope"}, expect=404)
    runs = "/infinstor/pipelines/{name}/runs"
    run = await api("POST", runs, path=fan, expect=201)
    assert [s["state"] for s in run["steps"]] == ["waiting"] * 3
    done = await wait_pipeline_run(api, "fan", run["id"])
    assert [s["state"] for s in done["steps"]] == ["succeeded"] * 3, done
    again = await api("POST", runs, path=fan, body={"cache": True}, expect=201)
    cached = await wait_pipeline_run(api, "fan", again["id"])
    assert [s["state"] for s in cached["steps"]] == ["cached"] * 3
    assert [s["cached_from"] for s in cached["steps"]] == [s["run_id"] for s in done["steps"]]
    await api("POST", runs, path=fan, body={"cache": "no"}, expect=400)
    unknown = await api("POST", runs, path=fan, body={"executor": "nope"}, expect=400)
    assert "Unknown executor 'nope'" in unknown["message"], unknown
    local = await api("POST", runs, path=fan, body={"executor": "local"}, expect=201)
    assert {s["executor"] for s in local["definition"]["steps"]} == {"local"}
    await wait_pipeline_run(api, "fan", local["id"])
    text = "name: fan\nsteps:\n" + "".join(
        f"  - name: {n}\n    transform: cp\n    output_uri: {out}\n"
        f"    input: {{type: view, bucket: {bucket}, prefix: in/}}\n"
        for n in ("a", "b")
    )
    pasted = await api("POST", "/infinstor/pipelines", body={"text": text}, expect=200)
    assert [s["name"] for s in pasted["steps"]] == ["a", "b"]
    bad_text = await api("POST", "/infinstor/pipelines", body={"text": "name: [x"}, expect=400)
    assert "neither JSON nor valid YAML" in bad_text["message"], bad_text
    await api("POST", "/infinstor/pipelines", body=pipeline, expect=200)
    await api("POST", runs, path={"name": "nope"}, expect=404)
    listed = await api("GET", runs, path=fan, expect=200)
    assert [r["id"] for r in listed["runs"]] == [local["id"], again["id"], run["id"]]
    await api("GET", runs, path=fan, params={"limit": "0"}, expect=400)
    await api("GET", runs, path={"name": "nope"}, expect=404)
    one = "/infinstor/pipelines/{name}/runs/{run_id}"
    await api("DELETE", one, path={**fan, "run_id": run["id"]}, expect=409)
    await api("GET", one, path={**fan, "run_id": "nope"}, expect=404)

    slow = {"name": "slow", "steps": [step("x", view, transform="nap"), step("y", view, "nap")]}
    slow["steps"][1]["transform"] = "nap"
    slow["steps"].append(step("z", {"type": "step", "steps": ["x", "y"]}))
    await api("POST", "/infinstor/pipelines", body=slow, expect=201)
    started = await api("POST", runs, path={"name": "slow"}, expect=201)
    await api("GET", one, path={**fan, "run_id": started["id"]}, expect=404)  # not fan's
    deadline = time.monotonic() + 60
    path = {"name": "slow", "run_id": started["id"]}
    while True:
        now = await api("GET", one, path=path, expect=200)
        if all(s["state"] == "running" for s in now["steps"][:2]):
            break
        assert time.monotonic() < deadline, now
        await asyncio.sleep(0.2)
    cancelling = await api("DELETE", one, path=path, expect=202)
    assert cancelling["cancel_requested"] is True
    ended = await wait_pipeline_run(api, "slow", started["id"])
    assert ended["state"] == "cancelled"
    assert [s["state"] for s in ended["steps"]] == ["cancelled", "cancelled", "skipped"]

    listed = await api("GET", "/infinstor/pipelines", expect=200)
    assert [(p["name"], p["last_run"]["id"]) for p in listed["pipelines"]] == [
        ("fan", local["id"]),
        ("slow", started["id"]),
    ]
    await api("DELETE", "/infinstor/pipelines/{name}", path=fan, expect=204)
    await api("DELETE", "/infinstor/pipelines/{name}", path=fan, expect=404)
    assert api.seen - {("/infinstor/transforms", "post")} == pipeline_routes(spec), (
        "some pipeline routes were not exercised"
    )


def schedule_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, verb)
        for path, verb in documented_routes(spec)
        if "schedules" in spec["paths"][path][verb].get("tags", [])
    }


async def test_schedule_answers_match_the_document(spec, jp_fetch, s3, bucket, service):
    """Every schedule route, with its success and error answers checked against the
    document; a fired window runs and is recorded."""
    api = Recorder(spec, jp_fetch)
    s3.put_object(Bucket=bucket, Key="in/a.txt", Body=b"a")
    service.track(bucket, enable_versioning_consent=True)
    service.sync(bucket)
    await api("POST", "/infinstor/transforms", body={"name": "cp", "source": COPY_CELL}, expect=201)
    body = {
        "name": "every-5",
        "transform": "cp",
        "bucket": bucket,
        "prefix": "in/",
        "every_minutes": 5,
        "settle_s": 0,
        "start": "2020-01-01T00:00:00Z",
        "output_uri": f"s3://{bucket}/out/",
    }
    created = await api("POST", "/infinstor/schedules", body=body, expect=201)
    assert created["trigger"] == "every 5 min" and created["last_window"] is None
    assert created["created_by"]  # the authenticated Jupyter user
    await api("POST", "/infinstor/schedules", body=body, expect=409)
    refused = await api(
        "POST", "/infinstor/schedules", body={**body, "name": "x", "cron": "* *"}, expect=400
    )
    assert "Say when it runs" in refused["message"]
    await api(
        "POST", "/infinstor/schedules", body={**body, "name": "y", "transform": "no"}, expect=404
    )
    listed = await api("GET", "/infinstor/schedules", expect=200)
    assert [s["name"] for s in listed["schedules"]] == ["every-5"]
    path = {"name": "every-5"}
    paused = await api(
        "POST", "/infinstor/schedules/{name}/{action}", path={**path, "action": "pause"}, expect=200
    )
    assert paused["paused"] is True
    resumed = await api(
        "POST",
        "/infinstor/schedules/{name}/{action}",
        path={**path, "action": "resume"},
        expect=200,
    )
    assert resumed["paused"] is False
    # S3 times are whole seconds: a window ends before the current one.
    await asyncio.sleep(1.1)
    fired = await api(
        "POST", "/infinstor/schedules/{name}/{action}", path={**path, "action": "run"}, expect=202
    )
    (win,) = fired["windows"]
    assert win["state"] == "running" and win["objects"] == 1 and win["run_id"]
    for _ in range(300):
        run = await api(
            "GET", "/infinstor/runs/{run_id}", path={"run_id": win["run_id"]}, expect=200
        )
        if run["state"] in ("succeeded", "failed", "cancelled"):
            break
        await asyncio.sleep(0.2)
    assert run["state"] == "succeeded"
    detail = await api("GET", "/infinstor/schedules/{name}", path=path, expect=200)
    assert [w["run_id"] for w in detail["windows"]] == [win["run_id"]]
    await api("GET", "/infinstor/schedules/{name}", path={"name": "nope"}, expect=404)
    await api(
        "POST",
        "/infinstor/schedules/{name}/{action}",
        path={"name": "nope", "action": "run"},
        expect=404,
    )
    await api("DELETE", "/infinstor/schedules/{name}", path=path, expect=204)
    await api("DELETE", "/infinstor/schedules/{name}", path=path, expect=404)
    assert schedule_routes(spec) <= api.seen, "some schedule routes were not exercised"


# -- schemathesis against a live server --------------------------------------------------------
@pytest.fixture
def live_server(tmp_path, index_url, s3_endpoint):
    """``jupyter server`` as a real subprocess with the extension, on moto and a temp index
    (tests/live_server.py)."""
    server = LiveServer(
        tmp_path,
        index_url=index_url,
        s3_endpoint=s3_endpoint,
        args=["--InfinstorApp.sqs_wait_seconds=1", "--InfinstorApp.reconcile_interval=0"],
    )
    with server:
        yield server.base, server.token, server.session


def test_schemathesis_finds_no_server_errors_or_schema_violations(live_server, s3, bucket):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    base, _token, session = live_server
    s3.put_object(Bucket=bucket, Key="x/1.txt", Body=b"1")
    s3.put_object(Bucket=bucket, Key="x/2.csv", Body=b"a,b\n1,2\n")
    resp = session.post(f"{base}/infinstor/buckets/{bucket}/track", json={}, timeout=10)
    assert resp.status_code == 200, resp.text
    job_id = resp.json()["sync_job"]
    deadline = time.monotonic() + 20
    while not session.get(f"{base}/infinstor/syncs/{job_id}", timeout=10).json()["done"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    label = f"fuzz-{uuid.uuid4().hex[:6]}"
    resp = session.post(
        f"{base}/infinstor/labels", json={"name": label, "bucket": bucket}, timeout=10
    )
    assert resp.status_code == 201, resp.text

    schema = schemathesis.openapi.from_path(OPENAPI_PATH)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    # Destructive verbs last, so the others still meet the tracked bucket and its label.
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    fixed = {"bucket": bucket, "name": label}
    started = time.monotonic()
    ran = 0
    statuses: dict[str, set[int]] = {}
    # Valid and then invalid input (negative mode: wrong types, missing required fields);
    # each with generated path parameters (mostly unknown names), then with the real
    # bucket/label and generated query parameters and bodies.
    passes = [
        (mode, use_fixed)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for use_fixed in (False, True)
    ]
    for mode, use_fixed in passes:
        for operation in operations:
            names = [p.name for p in operation.path_parameters]
            path_parameters = {n: fixed[n] for n in names if n in fixed} if use_fixed else None
            if use_fixed and not path_parameters:
                continue

            @settings(
                max_examples=FUZZ_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(mode, path_parameters=path_parameters))
            def fuzz(case):
                response = case.call_and_validate(
                    base_url=base, session=session, checks=checks, timeout=15
                )
                statuses.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)

            fuzz()
            ran += 1
    assert ran >= 20
    print(json.dumps({k: sorted(v) for k, v in sorted(statuses.items())}, indent=1))
    # The fuzzing reached the handlers' happy paths, not only their refusals.
    ok = {label for label, codes in statuses.items() if codes & {200, 201, 202, 204}}
    assert {
        "GET /infinstor/buckets/{bucket}/objects",
        "GET /infinstor/labels/{name}",
        "POST /infinstor/labels/{name}/verify",
        "GET /infinstor/buckets/{bucket}/timeline",
        "POST /infinstor/buckets/{bucket}/sync",
    } <= ok, statuses
    if FUZZ_EXAMPLES <= 10:
        assert time.monotonic() - started < 60
