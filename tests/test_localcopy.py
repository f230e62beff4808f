"""Taking a view home: `get` downloads exactly a view's versions (atomically, resumably, never
outside the folder) with a manifest; `verify` finds missing, extra and changed files."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from test_cli import run
from timing import next_second

from infinstor_jlab.index import VersionEntry
from infinstor_jlab.services.localcopy import (
    MANIFEST_NAME,
    TMP_MARK,
    LocalCopyService,
    local_path,
    verify_directory,
)
from infinstor_jlab.timespec import format_tm, snapshot_spec


def files_under(root) -> dict[str, bytes]:
    out = {}
    for here, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(here, name)
            out[os.path.relpath(path, root).replace(os.sep, "/")] = Path(path).read_bytes()
    out.pop(MANIFEST_NAME, None)
    return out


@pytest.fixture
def tables(s3, bucket, service):
    """tables/ at T (three files, one nested), then overwritten after T."""
    service.track(bucket, enable_versioning_consent=True)
    ids = {}
    for key, body in (
        ("tables/a.csv", b"a,1\n"),
        ("tables/sub/b.csv", b"b" * 3000),
        ("tables/c d+e.json", b'{"x": 1}'),
    ):
        ids[key] = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    s3.put_object(Bucket=bucket, Key="other/x", Body=b"not in the view")
    at = next_second()
    s3.put_object(Bucket=bucket, Key="tables/a.csv", Body=b"a,LATER\n")
    next_second()
    service.sync(bucket)
    service.create_label("tables-t", bucket, "tables/", snapshot_spec(at))
    return {"bucket": bucket, "at": at, "ids": ids}


EXPECTED = {"a.csv": b"a,1\n", "sub/b.csv": b"b" * 3000, "c d+e.json": b'{"x": 1}'}


def test_get_writes_the_views_versions_and_a_manifest(service, tables, tmp_path):
    dest = str(tmp_path / "copy")
    local = LocalCopyService(service)
    result = local.get(service.views.label_view("tables-t"), dest)
    assert result.ok and result.fetched == 3 and result.kept == 0
    assert files_under(dest) == EXPECTED
    manifest = json.loads(Path(dest, MANIFEST_NAME).read_text())
    assert manifest["view"]["label"] == "tables-t" and manifest["complete"]
    assert manifest["fingerprint"] == service.get_label("tables-t").fingerprint
    by_key = {f["key"]: f for f in manifest["files"]}
    a = by_key["tables/a.csv"]
    assert a["version_id"] == tables["ids"]["tables/a.csv"] and a["size"] == 4
    assert a["sha256"] == hashlib.sha256(b"a,1\n").hexdigest() and a["path"] == "a.csv"
    assert verify_directory(dest).ok


def test_a_rerun_fetches_only_what_is_missing_or_changed(service, tables, tmp_path):
    dest = tmp_path / "copy"
    local = LocalCopyService(service)
    view = service.views.label_view("tables-t")
    local.get(view, str(dest))
    again = local.get(view, str(dest))
    assert again.fetched == 0 and again.kept == 3
    (dest / "a.csv").unlink()
    (dest / "sub" / "b.csv").write_bytes(b"damaged")
    (dest / "c d+e.json").touch()  # a new time, the same content: kept after hashing
    third = local.get(view, str(dest))
    assert third.fetched == 2 and third.kept == 1 and third.bytes_fetched == 4 + 3000
    assert files_under(dest) == EXPECTED


def test_an_interrupted_get_leaves_only_whole_files_and_a_rerun_finishes(service, tables, tmp_path):
    dest = tmp_path / "copy"
    local = LocalCopyService(service)
    view = service.views.label_view("tables-t")

    def stop(done: int, total: int, fetched: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        local.get(view, str(dest), parallel=1, on_progress=stop)
    got = files_under(dest)
    assert got and all(EXPECTED[path] == body for path, body in got.items())
    assert not [p for p in got if TMP_MARK in p]
    manifest = json.loads((dest / MANIFEST_NAME).read_text())
    assert manifest["complete"] is False
    assert not verify_directory(str(dest)).ok  # incomplete
    done = local.get(view, str(dest))
    assert done.ok and done.kept == len(manifest["files"])
    assert files_under(dest) == EXPECTED and verify_directory(str(dest)).ok


def test_keys_that_would_escape_the_folder_are_refused(s3, bucket, service, tmp_path):
    service.track(bucket, enable_versioning_consent=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "copy"
    dest.mkdir()
    (dest / "link").symlink_to(outside, target_is_directory=True)
    bad = [
        "p/../escaped",
        "p/a/../../escaped2",
        "p//double",
        "p/./dot",
        "p/link/through-symlink",
        f"p/{MANIFEST_NAME}",
    ]
    # moto's HTTP server normalizes '..' and '.' out of a request path (S3 does not), so
    # those keys reach the index as a listing would bring them.
    dotted = [k for k in bad if "/." in k]
    for key in [
        *(k for k in bad if k not in dotted),
        "p/fine.txt",
        "p/tab\there",
        "p/back\\slash",
        "p/folder/",
    ]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"" if key.endswith("/") else b"x")
    next_second()
    service.sync(bucket)
    service.index.append_versions(
        bucket, [VersionEntry(k, f"v{i}", 1_000, 1, '"x"', False) for i, k in enumerate(dotted)]
    )
    view = service.views.resolve_view(bucket, at="now", prefix="p/")
    result = LocalCopyService(service).get(view, str(dest))
    assert sorted(r["key"] for r in result.refused) == sorted(bad)
    assert not result.ok
    assert list(outside.iterdir()) == [] and not (tmp_path / "escaped").exists()
    assert files_under(dest) == {"fine.txt": b"x", "tab%09here": b"x", "back%5Cslash": b"x"}
    assert (dest / "folder").is_dir()
    manifest = json.loads((dest / MANIFEST_NAME).read_text())
    assert sorted(r["key"] for r in manifest["refused"]) == sorted(bad)


def test_local_path_mapping():
    assert local_path("tables/2026/a.csv", "tables/") == "2026/a.csv"
    assert local_path("tables/a\\b\tc", "tables/") == "tables/a%5Cb%09c".removeprefix("tables/")
    assert local_path("tables/x/", "tables/") == "x/"
    for key in ("tables/../x", "tables/a//b", "/etc/passwd", "tables/."):
        with pytest.raises(Exception, match="cannot be written"):
            local_path(key, "tables/" if key.startswith("tables/") else "")


def test_verify_reports_missing_extra_and_changed(service, tables, tmp_path):
    dest = tmp_path / "copy"
    LocalCopyService(service).get(service.views.label_view("tables-t"), str(dest))
    (dest / "a.csv").unlink()
    (dest / "sub" / "b.csv").write_bytes(b"b" * 2999 + b"X")
    (dest / "stray.txt").write_bytes(b"?")
    report = verify_directory(str(dest))
    assert report.missing == ["a.csv"] and report.changed == ["sub/b.csv"]
    assert report.extra == ["stray.txt"] and not report.ok


def test_cli_get_and_verify(capsys, s3, service, index_url, tables, tmp_path):
    bucket, at = tables["bucket"], format_tm(tables["at"])
    dest = str(tmp_path / "copy")
    code, out, err = run(capsys, "get", at, dest, "--index", index_url)
    assert code == 1 and "give the bucket too" in err
    code, out, err = run(capsys, "get", at, f"s3://{bucket}/tables/", dest, "--index", index_url)
    assert code == 0, err
    assert "3 files (3 fetched" in out and files_under(dest) == EXPECTED
    code, out, err = run(capsys, "verify", dest, "--index", index_url)
    assert code == 0 and "matches its manifest: 3 files" in out
    # Against a view: the copy is of T, so "now" (a.csv overwritten) differs.
    code, out, err = run(capsys, "verify", dest, "now", "--index", index_url)
    assert code == 1 and "OTHER VERSION tables/a.csv" in out
    code, out, err = run(capsys, "verify", dest, "label:/tables-t", "--index", index_url)
    assert code == 0, out
    code, out, err = run(
        capsys, "get", "label:/tables-t", str(tmp_path / "c2"), "--index", index_url, "--json"
    )
    doc = json.loads(out)
    assert code == 0 and doc["fetched"] == 3 and doc["view"]["label"] == "tables-t"
    os.remove(os.path.join(dest, "a.csv"))
    code, out, err = run(capsys, "verify", dest, "--index", index_url)
    assert code == 1 and "MISSING a.csv" in out
