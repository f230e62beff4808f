"""The CLI surface is a contract: JSON shapes, paging, errors on stderr with non-zero exit."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest
from timing import next_second

from infinstor_jlab.cli import main
from infinstor_jlab.timespec import format_tm


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def seeded(s3, bucket, index_url, capsys):
    """Two seconds of history, synced through the CLI."""
    ids = {
        "a": s3.put_object(Bucket=bucket, Key="ds/a.csv", Body=b"1")["VersionId"],
        "b": s3.put_object(Bucket=bucket, Key="ds/b.csv", Body=b"22")["VersionId"],
        "img": s3.put_object(Bucket=bucket, Key="ds/img/x.png", Body=b"333")["VersionId"],
    }
    t0 = next_second()
    ids["a2"] = s3.put_object(Bucket=bucket, Key="ds/a.csv", Body=b"4444")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="ds/b.csv")
    t1 = next_second()
    code, out, err = run(capsys, "sync", bucket, "--index", index_url)
    assert code == 0, err
    assert "versions listed" in out
    return {
        "bucket": bucket,
        "index": index_url,
        "t0": format_tm(t0),
        "t1": format_tm(t1),
        "later": f"{format_tm(t0 + 1)}-{format_tm(t1)}",
        "ids": ids,
    }


def test_ls_json_shape_and_time_travel(capsys, seeded):
    b, ix = seeded["bucket"], seeded["index"]
    doc = run_json(capsys, "ls", f"s3://{b}/ds/", "--at", seeded["t0"], "--index", ix)
    assert set(doc) == {"objects", "prefixes", "next_token"}
    assert [(o["key"], o["version_id"]) for o in doc["objects"]] == [
        ("ds/a.csv", seeded["ids"]["a"]),
        ("ds/b.csv", seeded["ids"]["b"]),
    ]
    assert doc["prefixes"] == ["ds/img/"] and doc["next_token"] is None
    obj = doc["objects"][0]
    assert set(obj) == {"key", "version_id", "size", "etag", "last_modified"}
    assert obj["size"] == 1 and obj["etag"].startswith('"')
    now = run_json(capsys, "ls", f"s3://{b}/ds/", "--index", ix, "--recursive")
    assert [(o["key"], o["version_id"]) for o in now["objects"]] == [
        ("ds/a.csv", seeded["ids"]["a2"]),
        ("ds/img/x.png", seeded["ids"]["img"]),
    ]
    sliced = run_json(
        capsys, "ls", f"s3://{b}", "--slice", seeded["later"], "--recursive", "--index", ix
    )
    assert [o["key"] for o in sliced["objects"]] == ["ds/a.csv"]


def test_ls_of_a_time_after_the_last_sync_says_what_the_index_lacks(capsys, seeded, monkeypatch):
    b, ix = seeded["bucket"], seeded["index"]
    # Right after a sync the note would be noise: none.
    code, out, _ = run(capsys, "ls", f"s3://{b}/ds/", "--index", ix)
    assert code == 0 and "last sync" not in out
    # Once the view is well past the last sync (here: any time past it), it says so.
    from infinstor_jlab import cli

    monkeypatch.setattr(cli, "STALE_HINT_AFTER_MS", 0)
    code, out, _ = run(capsys, "ls", f"s3://{b}/ds/", "--index", ix)
    assert code == 0 and f"the index has s3://{b} up to its last sync at" in out
    assert f"infinstor-jlab sync {b}" in out
    code, out, _ = run(capsys, "ls", f"s3://{b}/ds/", "--at", seeded["t0"], "--index", ix)
    assert code == 0 and "last sync" not in out  # the sync covers that time
    doc = run_json(capsys, "ls", f"s3://{b}/ds/", "--index", ix)  # JSON stays the contract
    assert set(doc) == {"objects", "prefixes", "next_token"}


def test_index_and_endpoint_options_work_before_or_after_the_command(capsys, seeded, s3):
    b, ix = seeded["bucket"], seeded["index"]
    after = run_json(capsys, "ls", f"s3://{b}", "--recursive", "--index", ix)
    assert len(after["objects"]) == 2
    before = run_json(capsys, "--index", ix, "ls", f"s3://{b}", "--recursive")
    assert before == after
    endpoint = s3.meta.endpoint_url
    both = run_json(
        capsys,
        "--index",
        ix,
        "--endpoint-url",
        endpoint,
        "label",
        "create",
        "front",
        f"s3://{b}/ds/",
        "--at",
        "now",
    )
    assert both["object_count"] == 2
    assert run_json(capsys, "label", "list", "--index", ix)["labels"][0]["name"] == "front"
    # the option after the command wins, as with any repeated option
    code, _, err = run(
        capsys,
        "--index",
        ix,
        "ls",
        f"s3://{b}",
        "--index",
        ix.replace("index.sqlite", "other.sqlite"),
    )
    assert code == 1 and "not in the index" in err


def test_ls_paging_with_max_keys_and_token(capsys, seeded):
    b, ix = seeded["bucket"], seeded["index"]
    seen, token = [], None
    while True:
        extra = ["--token", token] if token else []
        doc = run_json(
            capsys,
            "ls",
            f"s3://{b}/",
            "--recursive",
            "--at",
            seeded["t0"],
            "--max-keys",
            "1",
            "--index",
            ix,
            *extra,
        )
        assert len(doc["objects"]) + len(doc["prefixes"]) <= 1
        seen += [o["key"] for o in doc["objects"]]
        token = doc["next_token"]
        if token is None:
            break
    assert seen == ["ds/a.csv", "ds/b.csv", "ds/img/x.png"]


def test_diff_and_history_json(capsys, seeded):
    b, ix, ids = seeded["bucket"], seeded["index"], seeded["ids"]
    doc = run_json(
        capsys, "diff", f"s3://{b}/ds/", "--from", seeded["t0"], "--to", seeded["t1"], "--index", ix
    )
    assert doc == {
        "added": [],
        "deleted": [{"key": "ds/b.csv", "version_id": ids["b"]}],
        "modified": [{"key": "ds/a.csv", "from_version_id": ids["a"], "to_version_id": ids["a2"]}],
    }
    hist = run_json(capsys, "history", f"s3://{b}/ds/a.csv", "--index", ix)
    assert [v["version_id"] for v in hist["versions"]] == [ids["a2"], ids["a"]]


def test_labels_lifecycle(capsys, seeded, s3):
    b, ix, ids = seeded["bucket"], seeded["index"], seeded["ids"]
    made = run_json(
        capsys,
        "label",
        "create",
        "ds-v1",
        f"s3://{b}/ds/",
        "--at",
        seeded["t0"],
        "--description",
        "first cut",
        "--index",
        ix,
    )
    assert made["object_count"] == 3 and made["fingerprint"].startswith("sha256:")
    code, _, err = run(
        capsys, "label", "create", "ds-v1", f"s3://{b}/ds/", "--at", "now", "--index", ix
    )
    assert code != 0 and "already exists" in err
    listed = run_json(capsys, "label", "list", "--index", ix)
    assert [x["name"] for x in listed["labels"]] == ["ds-v1"]
    via_label = run_json(
        capsys, "ls", f"s3://{b}", "--label", "ds-v1", "--recursive", "--index", ix
    )
    assert [o["version_id"] for o in via_label["objects"]] == [ids["a"], ids["b"], ids["img"]]
    via_spec = run_json(
        capsys, "ls", f"s3://{b}/ds/", "--at", "label:/ds-v1", "--recursive", "--index", ix
    )
    assert via_spec["objects"] == via_label["objects"]
    ok = run_json(capsys, "label", "verify", "ds-v1", "--index", ix)
    assert ok["ok"] and ok["s3_checked"] == 3
    # A version removed from S3 is drift that verify reports (and exits non-zero).
    s3.delete_object(Bucket=b, Key="ds/b.csv", VersionId=ids["b"])
    code, out, _ = run(capsys, "label", "verify", "ds-v1", "--index", ix, "--json")
    report = json.loads(out)
    assert code != 0 and not report["ok"]
    assert [m["key"] for m in report["s3_missing"]] == ["ds/b.csv"]
    # ...saying that the version is gone (the bucket is there)
    assert "version" in report["s3_missing"][0]["error"]
    assert "Bucket" not in report["s3_missing"][0]["error"]
    assert run_json(capsys, "label", "delete", "ds-v1", "--index", ix) == {"deleted": "ds-v1"}
    code, _, err = run(capsys, "label", "show", "ds-v1", "--index", ix)
    assert code != 0 and "no label named 'ds-v1'" in err


def test_ls_through_a_label_shows_only_what_the_label_holds(capsys, s3, bucket, index_url):
    """A label pins the keys under its prefix: a broader prefix lists only the label's part
    (never a neighbour such as ds.csv or dsx/), a narrower one lists inside it, and a prefix
    beside it is an error that says which prefix the label holds."""
    for key in ("ds.csv", "ds/a.csv", "ds/img/x.png", "dsx/y.csv", "other/z.csv"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    code, _, err = run(capsys, "sync", bucket, "--index", index_url)
    assert code == 0, err
    run_json(
        capsys,
        "label",
        "create",
        "ds-now",
        f"s3://{bucket}/ds/",
        "--at",
        "now",
        "--index",
        index_url,
    )

    def ls(uri: str, *extra: str) -> dict:
        return run_json(capsys, "ls", uri, "--label", "ds-now", "--index", index_url, *extra)

    everything = ["ds/a.csv", "ds/img/x.png"]
    assert [o["key"] for o in ls(f"s3://{bucket}", "--recursive")["objects"]] == everything
    assert [o["key"] for o in ls(f"s3://{bucket}/d", "--recursive")["objects"]] == everything
    # Not given a prefix: the label's own folder, as documented.
    page = ls(f"s3://{bucket}")
    assert page["prefixes"] == ["ds/img/"] and [o["key"] for o in page["objects"]] == ["ds/a.csv"]
    # A broader prefix given explicitly: the one folder of it that the label holds.
    for uri in (f"s3://{bucket}/d", f"s3://{bucket}/ds"):
        page = ls(uri)
        assert page == {"objects": [], "prefixes": ["ds/"], "next_token": None}, uri
    page = ls(f"s3://{bucket}/ds/img/")
    assert [o["key"] for o in page["objects"]] == ["ds/img/x.png"]
    code, out, err = run(
        capsys, "ls", f"s3://{bucket}/other/", "--label", "ds-now", "--index", index_url, "--json"
    )
    assert code != 0 and out == ""
    assert "outside label 'ds-now'" in err and f"s3://{bucket}/ds/" in err


def test_a_label_after_the_last_sync_pins_what_s3_holds_then(capsys, seeded, s3):
    """An object written after the last sync is in a label made "now" (the index reads the
    label's prefix again first), so a later sync is not reported as drift; a label of a
    future time is refused."""
    b, ix = seeded["bucket"], seeded["index"]
    late = s3.put_object(Bucket=b, Key="ds/late.csv", Body=b"5")["VersionId"]
    s3.put_object(Bucket=b, Key="elsewhere.csv", Body=b"6")
    made = run_json(
        capsys, "label", "create", "ds-now", f"s3://{b}/ds/", "--at", "now", "--index", ix
    )
    assert made["object_count"] == 3  # ds/a.csv (second version), ds/img/x.png, ds/late.csv
    pinned = run_json(capsys, "ls", f"s3://{b}", "--label", "ds-now", "--recursive", "--index", ix)
    assert ("ds/late.csv", late) in [(o["key"], o["version_id"]) for o in pinned["objects"]]
    code, _, err = run(capsys, "sync", b, "--index", ix)
    assert code == 0, err
    report = run_json(capsys, "label", "verify", "ds-now", "--index", ix)
    assert report["ok"] and report["index_matches"], report
    code, out, err = run(
        capsys,
        "label",
        "create",
        "tomorrow",
        f"s3://{b}/ds/",
        "--at",
        str(int(time.time() * 1000) + 86_400_000),
        "--index",
        ix,
        "--json",
    )
    assert code != 0 and out == "" and "in the future" in err


def test_a_label_says_when_it_reads_s3_again_first(service, s3, bucket):
    """Why a label takes a moment: the service says so (the CLI prints it on a terminal)."""
    s3.put_object(Bucket=bucket, Key="p/a.csv", Body=b"1")
    service.sync(bucket)
    said: list[str] = []
    service.create_label(
        "before",
        bucket,
        "p/",
        service.parse_spec(str(service.index.get_bucket(bucket).last_sync_ms - 1)),
        on_catch_up=said.append,
    )
    assert said == []  # covered by the last sync: no S3
    service.create_label("now", bucket, "p/", service.parse_spec("now"), on_catch_up=said.append)
    assert len(said) == 1 and f"s3://{bucket}/p/ again from S3" in said[0]


def test_a_label_after_the_last_sync_needs_s3_and_says_so(capsys, seeded):
    b, ix = seeded["bucket"], seeded["index"]
    code, _, err = run(
        capsys,
        "--endpoint-url",
        "http://127.0.0.1:9",
        "label",
        "create",
        "offline",
        f"s3://{b}/ds/",
        "--at",
        "now",
        "--index",
        ix,
    )
    assert code != 0 and "last sync" in err and "does not answer" in err, err
    code, _, err = run(capsys, "label", "show", "offline", "--index", ix)
    assert code != 0  # nothing half-made
    # A time the last sync covers needs no S3 at all.
    made = run_json(
        capsys,
        "--endpoint-url",
        "http://127.0.0.1:9",
        "label",
        "create",
        "offline",
        f"s3://{b}/ds/",
        "--at",
        seeded["t1"],
        "--index",
        ix,
    )
    assert made["object_count"] == 2


def test_label_verify_without_s3_is_an_error_not_drift(capsys, seeded):
    """An unreachable endpoint says so; it does not report every object as missing."""
    b, ix = seeded["bucket"], seeded["index"]
    run_json(
        capsys, "label", "create", "ds-v2", f"s3://{b}/ds/", "--at", seeded["t0"], "--index", ix
    )
    code, out, err = run(
        capsys,
        "label",
        "verify",
        "ds-v2",
        "--index",
        ix,
        "--json",
        "--endpoint-url",
        "http://127.0.0.1:9",
    )
    assert code != 0 and out == ""
    assert "Cannot check label 'ds-v2' against S3" in err and "does not answer" in err
    assert "MISSING" not in err and "Traceback" not in err
    # The same label verifies once S3 is reachable.
    code, out, err = run(capsys, "label", "verify", "ds-v2", "--index", ix)
    assert code == 0 and "verified" in out


def test_untrack_keeps_history_browsable(capsys, seeded):
    b, ix = seeded["bucket"], seeded["index"]
    before = run_json(capsys, "ls", f"s3://{b}", "--recursive", "--index", ix)
    code, out, err = run(capsys, "untrack", b, "--index", ix)
    assert code == 0 and "history stays in the index" in out
    assert run_json(capsys, "ls", f"s3://{b}", "--recursive", "--index", ix) == before
    code, _, err = run(capsys, "watch", b, "--index", ix)
    assert code != 0 and "no longer tracked" in err and f"infinstor-jlab track {b}" in err


def test_errors_are_one_sentence_on_stderr(capsys, seeded):
    b, ix = seeded["bucket"], seeded["index"]
    code, out, err = run(
        capsys, "ls", f"s3://{b}/", "--at", "yesterday-ish", "--index", ix, "--json"
    )
    assert code != 0 and out == ""
    assert "Accepted time specs" in err and "tmYYYYMMDDHHMMSS" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "ls", "s3://not-indexed-bucket/", "--index", ix)
    assert code != 0 and "infinstor-jlab track not-indexed-bucket" in err
    code, _, err = run(
        capsys, "ls", f"s3://{b}/", "--token", "garbage!", "--max-keys", "5", "--index", ix
    )
    assert code != 0 and "page token is not valid" in err
    code, _, err = run(
        capsys,
        "diff",
        f"s3://{b}/",
        "--from",
        "now",
        "--to",
        "tm20260101000000-tm20260102000000",
        "--index",
        ix,
    )
    assert code != 0 and "two single times" in err


def test_an_index_file_that_cannot_be_opened_is_one_sentence(tmp_path, capsys):
    not_an_index = tmp_path / "notes.txt"
    not_an_index.write_bytes(b"my notes, not a database\n" * 100)
    code, out, err = run(capsys, "ls", "s3://some-bucket/", "--index", str(not_an_index), "--json")
    assert code == 1 and out == ""
    assert f"Cannot open the index at {not_an_index}" in err and "Traceback" not in err
    assert not_an_index.read_bytes() == b"my notes, not a database\n" * 100  # untouched
    under_a_file = not_an_index / "index.sqlite"
    code, out, err = run(capsys, "sync", "some-bucket", "--index", f"sqlite:///{under_a_file}")
    assert code == 1 and out == "" and f"Cannot open the index at {under_a_file}" in err


def test_a_damaged_index_is_one_sentence(capsys, seeded, tmp_path):
    b, ix = seeded["bucket"], seeded["index"]
    path = ix[len("sqlite:///") :]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='versions'").fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:  # the versions table's root page, zeroed: a damaged file
        f.seek((root - 1) * page_size)
        f.write(b"\0" * page_size)
    code, out, err = run(capsys, "ls", f"s3://{b}/", "--recursive", "--index", ix, "--json")
    assert code == 1 and out == ""
    assert f"The index at {ix} could not be used" in err and "malformed" in err
    assert "Traceback" not in err


def test_track_asks_before_enabling_versioning(s3, index_url, capsys):
    name = f"unversioned-{uuid.uuid4().hex[:8]}"  # unique: the endpoint may be shared
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"1")
    proc = subprocess.run(
        [sys.executable, "-m", "infinstor_jlab.cli", "track", name, "--index", index_url],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0 and "--yes" in proc.stderr
    assert "Status" not in s3.get_bucket_versioning(Bucket=name)
    code, _out, err = run(capsys, "track", name, "--yes", "--index", index_url)
    assert code == 0, err
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    doc = run_json(capsys, "ls", f"s3://{name}", "--index", index_url)
    assert [(o["key"], o["version_id"]) for o in doc["objects"]] == [("k", "null")]


def test_demo_starts_this_environments_jupyterlab_even_off_path(tmp_path):
    """`~/venv/bin/infinstor-jlab demo` (the environment's bin directory not on PATH) starts
    the JupyterLab installed next to it, with the extension loaded, and Ctrl-C ends it."""
    import re
    import signal
    import socket
    import threading
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "AWS_"))}
    env.update(
        PATH="/usr/bin:/bin",
        JUPYTER_PORT=str(port),
        BROWSER="true",
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "infinstor_jlab.cli", "demo", "--workdir", str(tmp_path / "w")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that nothing it started outlives the test
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 150
        url = None
        assert proc.stdout is not None
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(rf"http://(?:127\.0\.0\.1|localhost):{port}/lab\?token=(\w+)", line)
            if m:
                url = f"http://localhost:{port}/infinstor/health?token={m.group(1)}"
        assert url is not None, "".join(lines)[-3000:]
        assert "JupyterLab is not installed" not in "".join(lines)
        # Keep reading what the server logs, so that a full pipe never blocks it.
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
        health = None
        while health is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=30) as resp:
                    health = json.load(resp)
            except OSError:
                assert proc.poll() is None, "".join(lines)[-3000:]
                time.sleep(0.5)
        assert health["version"], health
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        # JupyterLab ended with it: nothing is left listening on the port.
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def test_timespec_command(capsys, index_url):
    doc = run_json(capsys, "timespec", "2026-11-20T10:00:00Z", "--index", index_url)
    assert doc["kind"] == "snapshot" and doc["canonical"] == "tm20261120100000"
    assert doc["end_ms"] == 1795168800999  # the whole second 10:00:00


def test_timespec_command_reads_only_ascii_digits(capsys, index_url):
    for text in ("tm2026010100000\u0661", "\uff11\uff17\uff19\uff15"):
        code, out, err = run(capsys, "timespec", text, "--index", index_url, "--json")
        assert code != 0 and out == "", text
        assert "Accepted time specs" in err and "epoch milliseconds" in err, err


def test_run_spec_without_a_tracking_store_says_so_and_creates_none(
    capsys, index_url, tmp_path, monkeypatch
):
    """With no MLFLOW_TRACKING_URI, MLflow would create an empty store in the working
    directory to look the run up; instead the error says which setting is missing."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cwd = tmp_path / "notebooks"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    code, out, err = run(capsys, "timespec", "run:/0123456789abcdef", "--index", index_url)
    assert code != 0 and out == ""
    assert "MLFLOW_TRACKING_URI" in err and "run:/0123456789abcdef" in err
    assert list(cwd.iterdir()) == []
    # A store that exists is used as before: the run is simply not in it.
    store = tmp_path / "runs.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    import mlflow

    mlflow.set_tracking_uri(None)  # re-read the environment
    mlflow.MlflowClient().search_experiments()  # creates the store
    code, _, err = run(capsys, "timespec", "run:/0123456789abcdef", "--index", index_url)
    assert code != 0 and "MLflow has no run '0123456789abcdef'" in err


def test_demo_no_lab(tmp_path):
    """The newcomer's demo: a local S3 with history, indexed and labelled, without AWS."""
    work = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "infinstor_jlab.cli", "demo", "--no-lab", "--workdir", str(work)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Created label flowers-v1 (3 objects" in proc.stdout
    index = "sqlite:///" + str(work / "index.sqlite")
    times = proc.stdout.split("Times of the four steps: ")[1].split("\n")[0].split(", ")
    first = subprocess.run(
        [
            sys.executable,
            "-m",
            "infinstor_jlab.cli",
            "ls",
            "s3://infinstor-demo/",
            "--recursive",
            "--at",
            times[0],
            "--json",
            "--index",
            index,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    last = subprocess.run(
        [
            sys.executable,
            "-m",
            "infinstor_jlab.cli",
            "ls",
            "s3://infinstor-demo/",
            "--recursive",
            "--at",
            times[3],
            "--json",
            "--index",
            index,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    keys0 = [o["key"] for o in json.loads(first.stdout)["objects"]]
    keys3 = [o["key"] for o in json.loads(last.stdout)["objects"]]
    assert "flowers/daisy/daisy_002.png" in keys0 and "flowers/daisy/daisy_002.png" not in keys3
    assert "README.txt" in keys0 and "README.txt" not in keys3
    assert "flowers/tulip/tulip_001.png" in keys3 and "flowers/tulip/tulip_001.png" not in keys0

    # Another shell with only what the tour exports: the index answers; S3 work says that
    # the demo's endpoint stopped (with --no-lab it ends with the command), not "no
    # credentials".
    import shlex

    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith("export "))
    exported = dict(w.split("=", 1) for w in shlex.split(line.strip())[1:])
    assert {"INFINSTOR_INDEX_URL", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"} <= set(exported)
    shell = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **exported}
    listed = subprocess.run(
        [sys.executable, "-m", "infinstor_jlab.cli", "ls", "s3://infinstor-demo/", "--json"],
        capture_output=True,
        text=True,
        env=shell,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    verify = subprocess.run(
        [sys.executable, "-m", "infinstor_jlab.cli", "label", "verify", "flowers-v1"],
        capture_output=True,
        text=True,
        env=shell,
        check=False,
    )
    assert verify.returncode != 0
    assert f"The S3 endpoint {exported['AWS_ENDPOINT_URL']} does not answer" in verify.stderr


def test_an_empty_time_spec_is_an_error_not_now(capsys, seeded):
    """`--at "$T"` with T unset must not quietly list the present (nor --slice a snapshot)."""
    b, ix = seeded["bucket"], seeded["index"]
    for argv in (
        ("ls", f"s3://{b}/ds/", "--at", ""),
        ("ls", f"s3://{b}/ds/", "--slice", " "),
        ("diff", f"s3://{b}/ds/", "--from", "", "--to", "now"),
    ):
        code, out, err = run(capsys, *argv, "--index", ix, "--json")
        assert code != 0 and out == "", argv
        assert "empty time spec" in err and "Accepted time specs" in err, err


@pytest.mark.parametrize(
    ("env", "argv", "says"),
    [
        ({"AWS_PROFILE": "no-such-profile"}, (), "AWS profile 'no-such-profile'"),
        ({"AWS_DEFAULT_REGION": "bad region!"}, (), "not a valid AWS region"),
        ({}, ("--endpoint-url", "not a url"), "not a valid S3 endpoint URL"),
    ],
)
def test_a_broken_aws_configuration_is_one_sentence(
    capsys, monkeypatch, bucket, index_url, env, argv, says
):
    """boto3's own configuration errors (a missing profile, a malformed region or endpoint)
    are one sentence on stderr that says what to fix, not a traceback."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run(capsys, "sync", bucket, "--index", index_url, *argv)
    assert code != 0 and out == ""
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_rejected_credentials_are_not_reported_as_missing_permissions():
    """S3 answers a wrong key with 403 InvalidAccessKeyId: the error says the credentials were
    rejected; a plain 403 AccessDenied names the permissions needed."""
    from botocore.exceptions import ClientError

    from infinstor_jlab.services.s3 import translate_client_error

    def error(code: str, status: int = 403) -> ClientError:
        return ClientError(
            {
                "Error": {"Code": code, "Message": "m"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            "ListObjectVersions",
        )

    for code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
        assert "rejected the credentials" in str(translate_client_error(error(code), "b"))
    assert "s3:ListBucketVersions" in str(translate_client_error(error("AccessDenied"), "b"))
    # a HEAD answer has no body: either cause is possible, and the sentence says both
    head = str(translate_client_error(error("403"), "b"))
    assert "not valid" in head and "s3:ListBucketVersions" in head


def test_a_label_description_is_a_note_not_a_document(capsys, seeded):
    """Every label listing carries each description: a very long one is refused, nothing
    is stored, and the message says the limit."""
    b, ix = seeded["bucket"], seeded["index"]
    code, out, err = run(
        capsys,
        "label",
        "create",
        "big",
        f"s3://{b}/ds/",
        "--at",
        seeded["t0"],
        "--description",
        "x" * 10_001,
        "--index",
        ix,
    )
    assert code != 0 and out == "" and "at most 10,000" in err
    assert run_json(capsys, "label", "list", "--index", ix)["labels"] == []
    made = run_json(
        capsys,
        "label",
        "create",
        "big",
        f"s3://{b}/ds/",
        "--at",
        seeded["t0"],
        "--description",
        "y" * 10_000,
        "--index",
        ix,
    )
    assert made["description"] == "y" * 10_000


def test_missing_credentials_say_whether_the_endpoint_answers(
    capsys, tmp_path, monkeypatch, s3_endpoint
):
    """botocore reports "no credentials" before it connects: a stopped demo endpoint, a
    running store without credentials and a shell with no endpoint at all each get their own
    sentence (all three said "No AWS credentials were found")."""
    import socket

    ix = "sqlite:///" + str(tmp_path / "index.sqlite")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    # Nothing else may be asked for credentials (no instance metadata, no files).
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        stopped = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", stopped)
    code, _, err = run(capsys, "track", "some-bucket", "--index", ix)
    assert code != 0 and f"The S3 endpoint {stopped} does not answer" in err

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    code, _, err = run(capsys, "track", "some-bucket", "--index", ix)
    assert code != 0 and f"No AWS credentials were found for the S3 endpoint {s3_endpoint}" in err

    monkeypatch.delenv("AWS_ENDPOINT_URL")
    code, _, err = run(capsys, "track", "some-bucket", "--index", ix)
    assert code != 0 and "no S3 endpoint is set" in err and "AWS_ENDPOINT_URL" in err


def test_ls_of_a_future_time_is_the_live_view_with_a_note(capsys, seeded):
    """A time that has not come is the bucket as it is now, and the listing says so instead
    of heading it "as of 2099"; a date-only spec for today (it ends tonight) too."""
    b, ix = seeded["bucket"], seeded["index"]
    live = run_json(capsys, "ls", f"s3://{b}/ds/", "--recursive", "--index", ix)
    future = run_json(
        capsys, "ls", f"s3://{b}/ds/", "--recursive", "--at", "tm20991231000000", "--index", ix
    )
    assert future["objects"] == live["objects"]
    code, out, err = run(capsys, "ls", f"s3://{b}/ds/", "--at", "tm20991231000000", "--index", ix)
    assert code == 0, err
    head = out.splitlines()[:2]
    assert head[0] == f"# s3://{b}/ds/ live (as it is now)", out
    assert "2099-12-31 00:00:00 UTC is in the future" in head[1] and "as it is now" in head[1]
    assert "as of 2099" not in out and "last sync" not in out
    today = time.strftime("%Y-%m-%d", time.gmtime())
    code, out, _ = run(capsys, "ls", f"s3://{b}/ds/", "--at", today, "--index", ix)
    assert code == 0 and "is in the future; this is the bucket as it is now" in out
    # A past time gets no note.
    code, out, _ = run(capsys, "ls", f"s3://{b}/ds/", "--at", seeded["t0"], "--index", ix)
    assert code == 0 and "note" not in out and "as of" in out.splitlines()[0]
    code, out, _ = run(capsys, "timespec", "tm20991231000000", "--index", ix)
    assert code == 0 and "note: 2099-12-31 00:00:00 UTC is in the future" in out
    assert run_json(capsys, "timespec", "tm20991231000000", "--index", ix)["future"] is True
    assert run_json(capsys, "timespec", seeded["t0"], "--index", ix)["future"] is False


def test_a_pre_1970_time_is_out_of_range(capsys, index_url):
    for text in ("1969-12-31T23:59:59Z", "tm19691231000000", "1960-01-01"):
        code, out, err = run(capsys, "timespec", text, "--index", index_url)
        assert code != 0 and out == ""
        assert "is out of range" in err and "1970-01-01T00:00:00Z" in err, err
        assert "not a time spec I understand" not in err


def test_timeline_labels_whole_second_bins_to_the_second_with_a_legend(capsys, seeded):
    b, ix, t0, t1 = seeded["bucket"], seeded["index"], seeded["t0"], seeded["t1"]
    seconds = int(t1[2:]) - int(t0[2:]) + 1 if t1[:-2] == t0[:-2] else None
    if seconds is None:  # the two seconds straddle a minute: count them from the parsed times
        doc = run_json(capsys, "timeline", f"s3://{b}", "--from", t0, "--to", t1, "--index", ix)
        seconds = (doc["end_ms"] - doc["start_ms"] + 1) // 1000
    code, out, err = run(
        capsys, "timeline", f"s3://{b}", "--from", t0, "--to", t1, "--bins", str(seconds),
        "--index", ix,
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"# s3://{b}/: versions per 1 s bin from "), out
    assert lines[1].startswith("# columns: bin start (UTC), +versions written, -deletes")
    rows = [line for line in lines if not line.startswith("#")]
    assert rows, out
    for row in rows:
        stamp = row.split(" +")[0]
        assert len(stamp) == len("2026-11-20 10:00:00Z") and stamp.endswith("Z"), row
    # Bins narrower than a second keep their milliseconds: they say something there.
    code, out, _ = run(capsys, "timeline", f"s3://{b}", "--index", ix, "--bins", "50")
    rows = [line for line in out.splitlines() if not line.startswith("#")]
    assert code == 0 and rows and all(row.split(" +")[0][-5] == "." for row in rows), out
