"""Pipelines and the result cache (issue 22, section 2): DAGs of saved transforms run on the
local executor against moto's S3 server over HTTP, lineage in a real MLflow sqlite store."""

from __future__ import annotations

import json
import time

import pytest

from infinstor_jlab.errors import BadRequest, Conflict, NotFound
from infinstor_jlab.transforms.pipelines import (
    PgPipelineStore,
    Pipeline,
    PipelineRun,
    PipelineStep,
    PipelineStore,
    StepRun,
    cache_key,
    load_pipeline_text,
    open_pipeline_store,
    output_label_name,
    parse_pipeline,
)

COPY = """import os, shutil
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    shutil.copy(filename, os.path.join(output_dir, kwargs.get("tag", "") + os.path.basename(filename)))
"""

FAIL = """
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    raise ValueError("cannot handle " + filename.rsplit("/", 1)[-1])
"""

SLOW = """import time
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    time.sleep(120)
"""


@pytest.fixture
def pipelines(service, tmp_path, monkeypatch, index_url):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)  # MLflow's sqlite store keeps artifacts under ./mlruns
    from infinstor_jlab.transforms.executors import LocalExecutor
    from infinstor_jlab.transforms.pipelines import PipelineService
    from infinstor_jlab.transforms.service import TransformService
    from infinstor_jlab.transforms.store import open_transform_store

    transforms = TransformService(
        service,
        open_transform_store(index_url),
        str(tmp_path / "runs"),
        executors={"local": LocalExecutor(workers=2)},
    )
    svc = PipelineService(transforms, open_pipeline_store(index_url))
    yield svc
    svc.close()
    transforms.close()


@pytest.fixture
def data(s3, bucket, service):
    """A tracked bucket with three inputs under in/ (outputs go to out/ in the same bucket,
    so each step's output can be labelled for the next)."""
    service.track(bucket, enable_versioning_consent=True)
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        s3.put_object(Bucket=bucket, Key=f"in/{name}", Body=name.encode())
    service.sync(bucket)
    return bucket


def s3_files(s3, bucket, prefix):
    """{name under prefix: bytes} of the transform's own files (no run markers)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    out = {}
    for page in pages:
        for o in page.get("Contents", []):
            rel = o["Key"][len(prefix) :]
            if rel in ("_SUCCESS.json", "_FAILED.json", "_CANCELLED.json"):
                continue
            out[rel] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def three_steps(bucket, *, a_tag="a-", b_tag="b-", merge="copy"):
    view = {"type": "view", "bucket": bucket, "prefix": "in/"}
    out = f"s3://{bucket}/out/"
    return {
        "name": "fanin",
        "steps": [
            {"name": "a", "transform": "copy", "kwargs": {"tag": a_tag}, "input": view,
             "output_uri": out},
            {"name": "b", "transform": "copy", "kwargs": {"tag": b_tag}, "input": view,
             "output_uri": out},
            {"name": "c", "transform": merge, "input": {"type": "step", "steps": ["a", "b"]},
             "output_uri": out},
        ],
    }  # fmt: skip


def outputs(s3, bucket, run):
    return {
        name: s3_files(s3, bucket, run.steps[name].output_uri.split("/", 3)[3])
        for name in ("a", "b", "c")
    }


def test_three_step_pipeline_runs_then_is_cached_and_no_cache_runs_again(pipelines, s3, data):
    import mlflow

    transforms = pipelines.transforms
    transforms.save_revision("copy", COPY)
    pipelines.save(three_steps(data))
    run = pipelines.start_run("fanin")
    done = pipelines.wait(run.id, timeout=240)
    assert done.state == "succeeded", (done.error, done.to_json())
    assert [done.steps[s].state for s in "abc"] == ["succeeded"] * 3
    got = outputs(s3, data, done)
    assert got["a"] == {"a-a.txt": b"a.txt", "a-b.txt": b"b.txt", "a-c.txt": b"sub/c.txt"}
    assert set(got["b"]) == {"b-a.txt", "b-b.txt", "b-c.txt"}
    # The third step read exactly the two outputs: one file per file they wrote, same bytes.
    assert got["c"] == {**got["a"], **got["b"]}
    a, b, c = (done.steps[s] for s in "abc")
    assert a.started_ms < b.finished_ms and b.started_ms < a.finished_ms  # in parallel
    assert c.started_ms >= max(a.finished_ms, b.finished_ms)
    assert a.output_label == output_label_name(run.id, "a")
    label = pipelines.transforms.service.get_label(a.output_label)
    assert label.prefix == f"out/{a.run_id}/"
    # MLflow: one parent run, a child run per step.
    client = mlflow.tracking.MlflowClient()
    parent = client.get_run(run.id)
    assert parent.info.status == "FINISHED" and parent.data.tags["infinstor.pipeline"] == "fanin"
    for step in (a, b, c):
        child = client.get_run(step.run_id)
        assert child.data.tags["mlflow.parentRunId"] == run.id
        assert child.data.tags["infinstor.cache_key"] == step.cache_key
        assert child.info.experiment_id == parent.info.experiment_id
    executed = len(transforms.store.runs())
    assert executed == 3

    again = pipelines.wait(pipelines.start_run("fanin").id, timeout=120)
    assert again.state == "succeeded", again.error
    assert [again.steps[s].state for s in "abc"] == ["cached"] * 3
    assert [again.steps[s].cached_from for s in "abc"] == [a.run_id, b.run_id, c.run_id]
    assert len(transforms.store.runs()) == executed  # nothing ran
    assert outputs(s3, data, again) == got
    child = client.get_run(again.steps["c"].run_id)
    assert child.data.tags["infinstor.cached_from"] == c.run_id
    assert child.data.tags["mlflow.parentRunId"] == again.id
    shown = pipelines.get_run_json(again.id)
    assert [s["state"] for s in shown["steps"]] == ["cached"] * 3

    fresh = pipelines.wait(pipelines.start_run("fanin", cache=False).id, timeout=240)
    assert [fresh.steps[s].state for s in "abc"] == ["succeeded"] * 3
    assert len(transforms.store.runs()) == executed + 3
    assert {fresh.steps[s].run_id for s in "abc"}.isdisjoint({a.run_id, b.run_id, c.run_id})
    assert outputs(s3, data, fresh) == got


def test_a_change_in_kwargs_or_code_invalidates_only_the_affected_steps(pipelines, s3, data):
    transforms = pipelines.transforms
    transforms.save_revision("copy", COPY)
    transforms.save_revision("gather", COPY)
    pipelines.save(three_steps(data, merge="gather"))
    first = pipelines.wait(pipelines.start_run("fanin").id, timeout=240)
    assert first.state == "succeeded", first.error

    pipelines.save(three_steps(data, b_tag="bb-", merge="gather"))  # b's kwargs change
    second = pipelines.wait(pipelines.start_run("fanin").id, timeout=240)
    assert second.state == "succeeded", second.error
    assert [second.steps[s].state for s in "abc"] == ["cached", "succeeded", "succeeded"]
    assert set(outputs(s3, data, second)["c"]) == {
        "a-a.txt", "a-b.txt", "a-c.txt", "bb-a.txt", "bb-b.txt", "bb-c.txt",
    }  # fmt: skip

    transforms.save_revision("gather", COPY.replace("shutil.copy(", "shutil.copyfile("))
    third = pipelines.wait(pipelines.start_run("fanin").id, timeout=240)
    assert third.state == "succeeded", third.error
    assert [third.steps[s].state for s in "abc"] == ["cached", "cached", "succeeded"]
    assert third.steps["b"].cached_from == second.steps["b"].run_id
    assert outputs(s3, data, third)["c"] == outputs(s3, data, second)["c"]


def test_a_failing_step_skips_its_descendants_and_fails_the_pipeline(pipelines, s3, data):
    import mlflow

    transforms = pipelines.transforms
    transforms.save_revision("copy", COPY)
    transforms.save_revision("flaky", FAIL)
    view = {"type": "view", "bucket": data, "prefix": "in/"}
    out = f"s3://{data}/out/"
    pipelines.save(
        {
            "name": "breaks",
            "steps": [
                {"name": "bad", "transform": "flaky", "input": view, "output_uri": out},
                {"name": "ok", "transform": "copy", "input": view, "output_uri": out},
                {
                    "name": "after",
                    "transform": "copy",
                    "input": {"type": "step", "step": "bad"},
                    "output_uri": out,
                },
                {
                    "name": "last",
                    "transform": "copy",
                    "input": [{"type": "step", "step": "after"}, {"type": "step", "step": "ok"}],
                    "output_uri": out,
                },
            ],
        }
    )
    done = pipelines.wait(pipelines.start_run("breaks").id, timeout=240)
    assert done.state == "failed"
    assert done.error.startswith("step 'bad' failed: 3 of 3 objects failed"), done.error
    assert done.steps["ok"].state == "succeeded"
    assert done.steps["after"].state == "skipped"
    assert done.steps["after"].error.startswith("step 'bad' failed: ")
    assert (done.steps["last"].state, done.steps["last"].error) == (
        "skipped",
        "step 'after' was skipped",
    )
    assert done.steps["after"].run_id is None  # never started
    assert mlflow.tracking.MlflowClient().get_run(done.id).info.status == "FAILED"


def test_cancel_stops_every_running_step(pipelines, data):
    import mlflow

    transforms = pipelines.transforms
    transforms.save_revision("slow", SLOW)
    transforms.save_revision("copy", COPY)
    view = {"type": "view", "bucket": data, "prefix": "in/"}
    out = f"s3://{data}/out/"
    pipelines.save(
        {
            "name": "slow",
            "steps": [
                {"name": "x", "transform": "slow", "input": view, "output_uri": out},
                {"name": "y", "transform": "slow", "input": view, "output_uri": out},
                {
                    "name": "z",
                    "transform": "copy",
                    "input": {"type": "step", "steps": ["x", "y"]},
                    "output_uri": out,
                },
            ],
        }
    )
    run = pipelines.start_run("slow")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = pipelines.store.get_run(run.id)
        if all(now.steps[s].state == "running" for s in "xy"):
            break
        time.sleep(0.2)
    pipelines.cancel(run.id)
    done = pipelines.wait(run.id, timeout=60)
    assert done.state == "cancelled"
    assert [done.steps[s].state for s in "xyz"] == ["cancelled", "cancelled", "skipped"]
    for s in "xy":
        assert transforms.store.get_run(done.steps[s].run_id).state == "cancelled"
    assert mlflow.tracking.MlflowClient().get_run(done.id).info.status == "KILLED"
    with pytest.raises(Conflict, match="already cancelled"):
        pipelines.cancel(run.id)


def _doc(*steps):
    return {"name": "p", "steps": list(steps)}


def _step(name, inp=None, **more):
    doc = {"name": name, "transform": "copy", **more}
    if inp is not None:
        doc["input"] = inp
    return doc


VIEW = {"type": "label", "label": "x"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            _doc(
                _step("a", {"type": "step", "step": "c"}),
                _step("b", {"type": "step", "step": "a"}),
                _step("c", {"type": "step", "step": "b"}),
            ),
            "has a cycle: a -> b -> c -> a",
        ),
        (_doc(_step("a", {"type": "step", "step": "a"})), "has a cycle: a -> a"),
        (_doc(_step("a", VIEW), _step("a", VIEW)), "two steps named 'a'"),
        (_doc(_step("a", {"type": "step", "step": "zz"})), "reads step 'zz', which"),
        (_doc(_step("a")), "Step 'a' has no input"),
        (_doc(), "has no steps"),
        (_doc(_step("a b", VIEW)), "not a valid step name"),
        (_doc(_step("a", VIEW, kwargs="[1]")), "Step 'a': The keyword arguments"),
        (_doc(_step("a", {"bucket": "b"})), 'the input has no "type"'),
        (_doc(_step("a", {"type": "ftp"})), "unknown input type"),
        (_doc(_step("a", VIEW, kwargs=5)), '"kwargs" must be a JSON object'),
        ({"name": "p", "steps": {"a": [1]}}, "Each step of pipeline 'p' is an object"),
    ],
)
def test_invalid_pipelines_are_refused_with_a_sentence(doc, message):
    with pytest.raises(BadRequest, match=message.replace("(", r"\(")):
        parse_pipeline(doc)


def test_unknown_transforms_and_executors_are_refused(pipelines):
    with pytest.raises(BadRequest, match="Step 'a': There is no transform named 'copy'"):
        pipelines.save(_doc(_step("a", VIEW)))
    pipelines.transforms.save_revision("copy", COPY)
    with pytest.raises(BadRequest, match="Transform 'copy' has no revision 7"):
        pipelines.save(_doc(_step("a", VIEW, revision=7)))
    with pytest.raises(BadRequest, match="unknown executor 'mainframe'"):
        pipelines.save(_doc(_step("a", VIEW, executor="mainframe")))
    _saved, created = pipelines.save(_doc(_step("a", VIEW)))
    assert created and pipelines.save(_doc(_step("a", VIEW)))[1] is False
    assert [p["name"] for p in pipelines.list_pipelines()] == ["p"]
    with pytest.raises(NotFound):
        pipelines.start_run("nope")


def test_yaml_pipeline_files():
    text = """
name: fanin
steps:
  a:
    transform: copy
    kwargs: {tag: a-}
    input: {type: view, bucket: bk, prefix: in/}
  c:
    transform: copy
    input: {type: step, steps: [a]}
"""
    pipeline = parse_pipeline(load_pipeline_text(text))
    assert [s.name for s in pipeline.steps] == ["a", "c"]
    assert pipeline.steps[1].upstream() == ["a"]
    assert pipeline.steps[0].kwargs == {"tag": "a-"}


def test_cache_key_depends_on_each_part():
    base = ("c" * 64, "infin_transform_one_object", {"k": 1}, "f" * 64, ["pillow"])
    key = cache_key(*base)
    assert key == cache_key("c" * 64, "infin_transform_one_object", {"k": 1}, "f" * 64, ["pillow"])
    for i, other in enumerate(("d" * 64, "script", {"k": 2}, "e" * 64, ["pandas"])):
        changed = list(base)
        changed[i] = other
        assert cache_key(*changed) != key


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path) -> str:
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "index.sqlite")
    return request.getfixturevalue("pg_url")


def test_pipeline_store_on_both_backends(location):
    store = open_pipeline_store(location)
    assert isinstance(store, PgPipelineStore) == location.startswith("postgresql")
    assert isinstance(store, PipelineStore)
    step = PipelineStep(name="a", transform="copy", input={"type": "no-input-data"})
    store.save(Pipeline(name="p2", steps=[step], created_ms=1))
    store.save(Pipeline(name="p1", steps=[step], created_ms=2))
    store.save(Pipeline(name="p1", steps=[step, step], created_ms=3))  # replaced
    again = open_pipeline_store(location)  # another server on the same index
    assert [p.name for p in again.pipelines()] == ["p1", "p2"]
    assert len(again.get("p1").steps) == 2
    definition = Pipeline(name="p1", steps=[step]).to_json()
    for i in range(2):
        again.save_run(
            PipelineRun(
                id=f"r{i}",
                pipeline="p1",
                definition=definition,
                created_ms=10 + i,
                steps={"a": StepRun(step="a", state="cached", cached_from="x")},
            )
        )
    assert [r.id for r in store.runs("p1")] == ["r1", "r0"]
    assert store.runs("p2") == []
    assert store.get_run("r0").steps["a"].cached_from == "x"
    assert not store.cancel_requested("r0")
    again.request_cancel("r0")
    again.request_cancel("r0")
    assert store.cancel_requested("r0")
    assert store.cache_get("k") is None
    again.cache_put("k", {"run_id": "r0"})
    assert store.cache_get("k") == {"run_id": "r0"}
    store.delete("p2")
    with pytest.raises(NotFound):
        again.get("p2")
    with pytest.raises(NotFound):
        again.get_run("nope")
    assert json.loads(json.dumps(store.get_run("r1").to_json()))["steps"][0]["step"] == "a"


PIPELINE_YAML = """
name: fanin
description: two copies, gathered
steps:
  - name: a
    transform: copy
    kwargs: {{tag: a-}}
    input: {{type: view, bucket: {bucket}, prefix: in/}}
    output_uri: s3://{bucket}/out/
  - name: b
    transform: copy
    kwargs: {{tag: b-}}
    input: {{type: view, bucket: {bucket}, prefix: in/}}
    output_uri: s3://{bucket}/out/
  - name: c
    transform: copy
    input: {{type: step, steps: [a, b]}}
    output_uri: s3://{bucket}/out/
"""


def test_cli_saves_runs_caches_and_follows_a_pipeline(pipelines, data, tmp_path, index_url, capsys):
    """The CLI over the same stores: save a YAML file, run it here (--wait), run it again in
    the background (a process of its own drives it; all cached), follow it with status."""
    from infinstor_jlab.cli import main

    pipelines.transforms.save_revision("copy", COPY)
    path = tmp_path / "fanin.yaml"
    path.write_text(PIPELINE_YAML.format(bucket=data))
    assert main(["pipeline", "save", str(path), "--index", index_url]) == 0
    assert "Saved pipeline fanin (3 steps: a, b, c)." in capsys.readouterr().out
    assert main(["pipeline", "run", "fanin", "--wait", "--json", "--index", index_url]) == 0
    first = json.loads(capsys.readouterr().out)
    assert [s["state"] for s in first["steps"]] == ["succeeded"] * 3
    assert main(["pipeline", "run", "fanin", "--index", index_url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Started pipeline run ")
    run_id = out.split()[3]
    deadline = time.monotonic() + 120
    while True:
        assert main(["pipeline", "status", run_id, "--json", "--index", index_url]) == 0
        doc = json.loads(capsys.readouterr().out)
        if doc["state"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert doc["state"] == "succeeded", doc
    assert [s["cached_from"] for s in doc["steps"]] == [s["run_id"] for s in first["steps"]]
    assert main(["pipeline", "status", run_id, "--index", index_url]) == 0
    shown = capsys.readouterr().out
    assert f"Pipeline run {run_id} of fanin: succeeded" in shown
    assert f"cached  reused run {first['steps'][2]['run_id']}" in shown
    assert main(["pipeline", "list", "--index", index_url]) == 0
    assert capsys.readouterr().out.startswith(f"fanin  3 steps  last run {run_id} succeeded")
    assert main(["pipeline", "cancel", run_id, "--index", index_url]) == 1
    assert "has already succeeded" in capsys.readouterr().err
    path.write_text(PIPELINE_YAML.format(bucket=data).replace("steps: [a, b]", "steps: [a, c]"))
    assert main(["pipeline", "save", str(path), "--index", index_url]) == 1
    assert "has a cycle: c -> c" in capsys.readouterr().err


def _spark_available() -> bool:
    import shutil
    import sys
    from pathlib import Path

    return bool(
        shutil.which("spark-submit") or (Path(sys.executable).parent / "spark-submit").exists()
    ) and bool(shutil.which("java"))


@pytest.mark.skipif(not _spark_available(), reason="pyspark and java are needed")
def test_a_pipeline_step_on_spark_and_its_cached_rerun(service, s3, data, tmp_path, monkeypatch):
    """Two local steps feed a third run by spark-submit --master local[2]; the re-run is
    fully cached (no Spark job at all) with the same outputs."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)
    from infinstor_jlab.transforms.executors import LocalExecutor, SparkExecutor
    from infinstor_jlab.transforms.pipelines import PipelineService
    from infinstor_jlab.transforms.service import TransformService
    from infinstor_jlab.transforms.store import TransformStore

    transforms = TransformService(
        service,
        TransformStore(str(tmp_path / "t.sqlite")),
        str(tmp_path / "runs"),
        executors={"local": LocalExecutor(workers=2), "spark": SparkExecutor(master="local[2]")},
    )
    svc = PipelineService(transforms, PipelineStore(str(tmp_path / "t.sqlite")))
    try:
        transforms.save_revision("copy", COPY)
        doc = three_steps(data)
        doc["steps"][2]["executor"] = "spark"
        svc.save(doc)
        done = svc.wait(svc.start_run("fanin").id, timeout=300)
        assert done.state == "succeeded", (done.error, transforms.log(done.steps["c"].run_id))
        assert transforms.store.get_run(done.steps["c"].run_id).executor == "spark"
        got = outputs(s3, data, done)
        assert got["c"] == {**got["a"], **got["b"]} and len(got["c"]) == 6
        again = svc.wait(svc.start_run("fanin").id, timeout=120)
        assert [again.steps[s].state for s in "abc"] == ["cached"] * 3
        assert outputs(s3, data, again) == got
    finally:
        svc.close()
        transforms.close()


def test_a_run_whose_driver_is_gone_is_ended_at_the_next_start(pipelines, data):
    """A run left running by a process that exited (on this machine), or whose heartbeat
    stopped a minute ago, is ended as failed by recover(); one still driven is left alone."""
    import socket
    import subprocess
    import sys

    import mlflow

    from infinstor_jlab.timespec import now_ms

    pipelines.transforms.save_revision("copy", COPY)
    pipelines.save(_doc(_step("a", {"type": "no-input-data"}, output_uri=f"s3://{data}/o/")))
    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    host = socket.gethostname()
    runs = {}
    for why, driver, beat in (
        ("exited", f"{host}:{exited.stdout.strip()}", now_ms()),
        ("silent", "elsewhere:1", now_ms() - 120_000),
        ("alive", "elsewhere:1", now_ms()),
    ):
        run = pipelines.create_run("p")
        run.driver, run.heartbeat_ms = driver, beat
        pipelines.store.save_run(run)
        runs[why] = run.id
    pipelines.recover()
    for why in ("exited", "silent"):
        ended = pipelines.store.get_run(runs[why])
        assert ended.state == "failed" and "stopped" in ended.error, why
        assert ended.steps["a"].state == "skipped"
        assert mlflow.tracking.MlflowClient().get_run(ended.id).info.status == "FAILED"
    assert pipelines.store.get_run(runs["alive"]).state == "running"
