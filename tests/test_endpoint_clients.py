"""Real S3 clients read a view at an earlier time through the endpoint and get that time's
keys and bytes, not today's: the AWS CLI (against `infinstor-jlab endpoint serve`, with a
credential from `infinstor-jlab endpoint credentials`), pyarrow's S3FileSystem + dataset on
a partitioned Parquet folder, Polars, DuckDB with httpfs from its PyPI wheel (loaded from the
wheel's file: nothing is downloaded at run time) and s3fs + pandas."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from timing import next_second

from infinstor_jlab.timespec import format_tm


def _parquet(rows: dict[str, list]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(rows), buf)
    return buf.getvalue()


@pytest.fixture
def lake(s3, bucket, service):
    """tables/ (hive-partitioned Parquet) and csv/: what t0 held, then changes after it."""
    s3.put_object(
        Bucket=bucket, Key="tables/year=2025/part-0.parquet", Body=_parquet({"v": [1, 2]})
    )
    s3.put_object(Bucket=bucket, Key="tables/year=2026/part-0.parquet", Body=_parquet({"v": [3]}))
    s3.put_object(Bucket=bucket, Key="csv/data.csv", Body=b"a,b\n1,2\n")
    t0 = next_second()
    s3.put_object(
        Bucket=bucket, Key="tables/year=2026/part-0.parquet", Body=_parquet({"v": [30, 31]})
    )
    s3.put_object(Bucket=bucket, Key="tables/year=2027/part-0.parquet", Body=_parquet({"v": [9]}))
    s3.put_object(Bucket=bucket, Key="csv/data.csv", Body=b"a,b\n100,200\n300,400\n")
    next_second()
    service.sync(bucket)
    return {"bucket": bucket, "t0": format_tm(t0)}


@pytest.fixture
def endpoint(service):
    from infinstor_jlab.endpoint import EndpointServer
    from infinstor_jlab.services.credentials import CredentialStore

    server = EndpointServer(service, CredentialStore(service.index.path), port=0)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def cred(lake, service, endpoint):
    from infinstor_jlab.services.credentials import CredentialService

    c, secret = CredentialService.for_service(service).issue(lake["t0"], bucket=lake["bucket"])
    return {"endpoint": endpoint, "key": c.key_id, "secret": secret, "bucket": lake["bucket"]}


def _cli(index_url: str, *args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return subprocess.Popen(
        [sys.executable, "-m", "infinstor_jlab.cli", "--index", index_url, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _aws_bin() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "aws")
    if not os.path.exists(exe):
        exe = shutil.which("aws") or ""
    if not exe:
        pytest.skip("the AWS CLI (pip install awscli) is not installed")
    return exe


def test_aws_cli_reads_the_past_through_endpoint_serve(lake, index_url, tmp_path):
    bucket = lake["bucket"]
    serve = _cli(index_url, "endpoint", "serve", "--port", "0")
    try:
        line = ""
        deadline = time.time() + 30
        while "http://" not in line and time.time() < deadline:
            line = serve.stderr.readline()
            assert line or serve.poll() is None, serve.stderr.read()
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        issued = _cli(
            index_url, "endpoint", "credentials", lake["t0"], "--bucket", bucket, "--json"
        )
        out, err = issued.communicate(timeout=60)
        assert issued.returncode == 0, err
        doc = json.loads(out)
        assert doc["endpoint_url"] == url  # the endpoint last started on this index
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
            "AWS_ACCESS_KEY_ID": doc["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": doc["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        }
        aws = [_aws_bin(), "--endpoint-url", url]

        def run(*args: str) -> str:
            done = subprocess.run(
                [*aws, *args], check=False, env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        top = run("s3", "ls", f"s3://{bucket}/tables/")
        assert "PRE year=2025/" in top and "PRE year=2026/" in top and "year=2027" not in top
        listing = run("s3", "ls", "--recursive", f"s3://{bucket}/")
        assert sorted(line.split()[-1] for line in listing.splitlines()) == [
            "csv/data.csv",
            "tables/year=2025/part-0.parquet",
            "tables/year=2026/part-0.parquet",
        ]
        run("s3", "cp", "--recursive", f"s3://{bucket}/", str(tmp_path / "copy"))
        assert (tmp_path / "copy" / "csv" / "data.csv").read_bytes() == b"a,b\n1,2\n"
        got = pq.read_table(tmp_path / "copy" / "tables" / "year=2026" / "part-0.parquet")
        assert got.column("v").to_pylist() == [3]
        assert not (tmp_path / "copy" / "tables" / "year=2027").exists()
        meta = json.loads(
            run(
                "s3api",
                "get-object",
                "--bucket",
                bucket,
                "--key",
                "csv/data.csv",
                "--range",
                "bytes=4-6",
                str(tmp_path / "part"),
            )
        )
        assert (tmp_path / "part").read_bytes() == b"1,2"
        assert meta["ContentRange"] == "bytes 4-6/8"
        # revoked from the CLI: refused at once by the running endpoint
        revoke = _cli(index_url, "endpoint", "credentials", "--revoke", doc["aws_access_key_id"])
        assert revoke.wait(timeout=60) == 0
        done = subprocess.run(
            [*aws, "s3", "ls", f"s3://{bucket}/"],
            check=False,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode != 0 and "InvalidAccessKeyId" in done.stderr
    finally:
        serve.terminate()
        serve.wait(timeout=30)


def test_pyarrow_dataset_reads_the_partitioned_folder_as_it_was(cred):
    import pyarrow.dataset as ds
    from pyarrow import fs

    s3fs_ = fs.S3FileSystem(
        access_key=cred["key"],
        secret_key=cred["secret"],
        endpoint_override=cred["endpoint"],
        region="us-east-1",
        scheme="http",
        allow_bucket_creation=False,
    )
    infos = s3fs_.get_file_info(fs.FileSelector(f"{cred['bucket']}/tables", recursive=True))
    assert sorted(i.path for i in infos if i.type == fs.FileType.File) == [
        f"{cred['bucket']}/tables/year=2025/part-0.parquet",
        f"{cred['bucket']}/tables/year=2026/part-0.parquet",
    ]
    table = ds.dataset(
        f"{cred['bucket']}/tables", filesystem=s3fs_, format="parquet", partitioning="hive"
    ).to_table()
    rows = sorted(zip(table.column("year").to_pylist(), table.column("v").to_pylist()))
    assert rows == [(2025, 1), (2025, 2), (2026, 3)]


def test_pyarrow_reads_through_a_folder_credential_as_the_sidebar_issues_it(
    lake, service, endpoint
):
    """The sidebar's credential reaches one folder (tables/). pyarrow first asks for the
    object 'tables' (HeadObject) before listing 'tables/': the endpoint must answer S3's
    404 there (the view holds no such object), not AccessDenied, or the dataset fails."""
    import pyarrow.dataset as ds
    from pyarrow import fs

    from infinstor_jlab.services.credentials import CredentialService

    bucket = lake["bucket"]
    c, secret = CredentialService.for_service(service).issue(
        lake["t0"], bucket=bucket, prefix="tables/"
    )
    s3 = fs.S3FileSystem(
        access_key=c.key_id,
        secret_key=secret,
        endpoint_override=endpoint,
        region="us-east-1",
        scheme="http",
    )
    assert s3.get_file_info(f"{bucket}/tables").type == fs.FileType.Directory
    table = ds.dataset(
        f"{bucket}/tables", filesystem=s3, format="parquet", partitioning="hive"
    ).to_table()
    rows = sorted(zip(table.column("year").to_pylist(), table.column("v").to_pylist()))
    assert rows == [(2025, 1), (2025, 2), (2026, 3)]
    with pytest.raises(OSError, match="ACCESS_DENIED|AccessDenied"):
        s3.open_input_file(f"{bucket}/csv/data.csv").read()


def test_polars_reads_the_past(cred):
    pl = pytest.importorskip("polars")
    options = {
        "aws_access_key_id": cred["key"],
        "aws_secret_access_key": cred["secret"],
        "aws_endpoint_url": cred["endpoint"],
        "aws_region": "us-east-1",
        "aws_allow_http": "true",
    }
    path = f"s3://{cred['bucket']}/tables/**/*.parquet"
    eager = pl.read_parquet(path, storage_options=options, hive_partitioning=True)
    assert sorted(zip(eager["year"].to_list(), eager["v"].to_list())) == [
        (2025, 1),
        (2025, 2),
        (2026, 3),
    ]
    lazy = pl.scan_parquet(path, storage_options=options, hive_partitioning=True)
    assert lazy.select(pl.col("v").sum()).collect().item() == 6
    csv = pl.read_csv(f"s3://{cred['bucket']}/csv/data.csv", storage_options=options)
    assert csv.to_dicts() == [{"a": 1, "b": 2}]


def test_duckdb_httpfs_from_its_wheel_reads_the_past(cred):
    duckdb = pytest.importorskip("duckdb")
    httpfs = pytest.importorskip("duckdb_extension_httpfs")
    root = os.path.join(os.path.dirname(httpfs.__file__), "extensions")
    files = [
        os.path.join(d, f)
        for d, _, fs_ in os.walk(root)
        for f in fs_
        if f.endswith(".duckdb_extension")
    ]
    assert files, "the duckdb-extension-httpfs wheel holds no extension file"
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    con.execute(f"LOAD '{files[0]}'")
    host = cred["endpoint"].removeprefix("http://")
    con.execute(
        f"""CREATE SECRET view_at_t0 (TYPE s3, KEY_ID '{cred["key"]}',
        SECRET '{cred["secret"]}', ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false,
        REGION 'us-east-1')"""
    )
    b = cred["bucket"]
    rows = con.execute(
        f"select year, v from read_parquet('s3://{b}/tables/*/*.parquet', hive_partitioning=true)"
        " order by year, v"
    ).fetchall()
    assert rows == [(2025, 1), (2025, 2), (2026, 3)]
    assert con.execute(f"select count(*) from read_csv('s3://{b}/csv/data.csv')").fetchone() == (1,)


def test_s3fs_and_pandas_read_the_past(cred):
    pytest.importorskip("s3fs", reason="s3fs is in the test extra (pip install -e '.[test]')")
    import pandas as pd

    options = {
        "key": cred["key"],
        "secret": cred["secret"],
        "client_kwargs": {"endpoint_url": cred["endpoint"], "region_name": "us-east-1"},
    }
    df = pd.read_csv(f"s3://{cred['bucket']}/csv/data.csv", storage_options=options)
    assert df.to_dict("records") == [{"a": 1, "b": 2}]
    parquet = pd.read_parquet(f"s3://{cred['bucket']}/tables/", storage_options=options)
    assert sorted(parquet["v"].tolist()) == [1, 2, 3]
    # s3fs itself: t0's keys (year=2027 came later), and t0's bytes.
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    b = cred["bucket"]
    assert fs.find(f"{b}/tables/") == [
        f"{b}/tables/year=2025/part-0.parquet",
        f"{b}/tables/year=2026/part-0.parquet",
    ]
    assert fs.cat_file(f"{b}/csv/data.csv") == b"a,b\n1,2\n"
