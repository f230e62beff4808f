"""The S3 endpoint: any S3 client reads a view with unchanged bucket names and keys.

Real parts only: moto's server behind the endpoint over HTTP, the endpoint on a loopback
port, and real clients (boto3 with its default config, the AWS CLI, pyarrow, Polars, DuckDB
with httpfs from its PyPI wheel, s3fs + pandas), each reading a view at an earlier time.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from timing import next_second

from infinstor_jlab.timespec import format_tm


@pytest.fixture
def history(s3, bucket, service):
    """tables/ as of t0: a(v1), b, sub/x; after t0: a(v2), c, b deleted."""
    ids = {
        "a1": s3.put_object(Bucket=bucket, Key="tables/a.csv", Body=b"x\n1\n")["VersionId"],
        "b": s3.put_object(Bucket=bucket, Key="tables/b.csv", Body=b"x\n2\n")["VersionId"],
        "x": s3.put_object(
            Bucket=bucket, Key="tables/sub/x.csv", Body=b"x\n3\n", ContentType="text/csv"
        )["VersionId"],
        "o": s3.put_object(Bucket=bucket, Key="other/o.txt", Body=b"outside")["VersionId"],
    }
    t0 = next_second()
    ids["a2"] = s3.put_object(Bucket=bucket, Key="tables/a.csv", Body=b"x\n10\n")["VersionId"]
    ids["c"] = s3.put_object(Bucket=bucket, Key="tables/c.csv", Body=b"x\n4\n")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="tables/b.csv")
    next_second()
    service.sync(bucket)
    return {"bucket": bucket, "t0": format_tm(t0), "ids": ids}


@pytest.fixture
def creds(service):
    from infinstor_jlab.services.credentials import CredentialService

    return CredentialService.for_service(service)


@pytest.fixture
def endpoint(service):
    from infinstor_jlab.endpoint import EndpointServer
    from infinstor_jlab.services.credentials import CredentialStore

    server = EndpointServer(service, CredentialStore(service.index.path), port=0)
    url = server.start()
    yield url
    server.stop()


def issue(creds, view, **kw):
    cred, secret = creds.issue(view, **kw)
    return cred.key_id, secret


def client(endpoint, key_id, secret, **config):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(**config) if config else None,
    )


def keys(resp):
    return [o["Key"] for o in resp.get("Contents", [])]


# -- boto3, default config ------------------------------------------------------------------
def test_boto3_reads_the_view_at_an_earlier_time(history, creds, endpoint, s3):
    bucket = history["bucket"]
    c = client(endpoint, *issue(creds, history["t0"], bucket=bucket))
    assert [b["Name"] for b in c.list_buckets()["Buckets"]] == [bucket]
    c.head_bucket(Bucket=bucket)
    page = c.list_objects_v2(Bucket=bucket, Prefix="tables/", Delimiter="/")
    assert keys(page) == ["tables/a.csv", "tables/b.csv"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["tables/sub/"]
    assert c.get_object(Bucket=bucket, Key="tables/a.csv")["Body"].read() == b"x\n1\n"
    assert c.get_object(Bucket=bucket, Key="tables/b.csv")["Body"].read() == b"x\n2\n"
    with pytest.raises(ClientError) as err:
        c.get_object(Bucket=bucket, Key="tables/c.csv")  # written after t0
    assert err.value.response["Error"]["Code"] == "NoSuchKey"
    # ETag, Last-Modified, Content-Length and Content-Type: the same in list, head and get,
    # and S3's own for that version.
    listed = {o["Key"]: o for o in c.list_objects_v2(Bucket=bucket, Prefix="tables/")["Contents"]}
    head = c.head_object(Bucket=bucket, Key="tables/sub/x.csv")
    got = c.get_object(Bucket=bucket, Key="tables/sub/x.csv")
    direct = s3.head_object(Bucket=bucket, Key="tables/sub/x.csv", VersionId=history["ids"]["x"])
    for answer in (head, got):
        assert answer["ETag"] == listed["tables/sub/x.csv"]["ETag"] == direct["ETag"]
        assert answer["ContentLength"] == listed["tables/sub/x.csv"]["Size"] == 4
        assert answer["ContentType"] == direct["ContentType"] == "text/csv"
        assert answer["LastModified"] == direct["LastModified"]
        assert answer["VersionId"] == history["ids"]["x"]
    assert listed["tables/sub/x.csv"]["LastModified"] == direct["LastModified"]


def test_paging_and_v1_listing(history, creds, endpoint):
    bucket = history["bucket"]
    c = client(endpoint, *issue(creds, history["t0"], bucket=bucket))
    seen = []
    for page in c.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 1}
    ):
        seen += keys(page)
    assert seen == ["other/o.txt", "tables/a.csv", "tables/b.csv", "tables/sub/x.csv"]
    v1 = []
    for page in c.get_paginator("list_objects").paginate(
        Bucket=bucket, Delimiter="/", Prefix="tables/", PaginationConfig={"PageSize": 1}
    ):
        v1 += keys(page) + [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert v1 == ["tables/a.csv", "tables/b.csv", "tables/sub/"]
    after = c.list_objects_v2(Bucket=bucket, StartAfter="tables/a.csv")
    assert keys(after) == ["tables/b.csv", "tables/sub/x.csv"]
    enc = c.list_objects_v2(Bucket=bucket, Prefix="tables/", EncodingType="url", FetchOwner=True)
    assert keys(enc)[0] == "tables/a.csv" and "Owner" in enc["Contents"][0]
    assert c.list_objects_v2(Bucket=bucket, MaxKeys=0).get("KeyCount") == 0


def test_range_conditionals_and_version_ids(history, creds, endpoint):
    bucket = history["bucket"]
    c = client(endpoint, *issue(creds, history["t0"], bucket=bucket))
    part = c.get_object(Bucket=bucket, Key="tables/a.csv", Range="bytes=2-2")
    assert part["Body"].read() == b"1"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == "bytes 2-2/4"
    with pytest.raises(ClientError) as err:
        c.get_object(Bucket=bucket, Key="tables/a.csv", Range="bytes=100-200")
    assert err.value.response["Error"]["Code"] == "InvalidRange"
    etag = c.head_object(Bucket=bucket, Key="tables/a.csv")["ETag"]
    with pytest.raises(ClientError) as err:
        c.get_object(Bucket=bucket, Key="tables/a.csv", IfNoneMatch=etag)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as err:
        c.get_object(Bucket=bucket, Key="tables/a.csv", IfMatch='"0000"')
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
    long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ClientError) as err:
        c.get_object(Bucket=bucket, Key="tables/a.csv", IfUnmodifiedSince=long_ago)
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
    assert c.get_object(Bucket=bucket, Key="tables/a.csv", IfModifiedSince=long_ago)["Body"].read()
    # The view's own version id is served; another version of the key is not in the view.
    ok = c.get_object(Bucket=bucket, Key="tables/a.csv", VersionId=history["ids"]["a1"])
    assert ok["Body"].read() == b"x\n1\n"
    with pytest.raises(ClientError) as err:
        c.get_object(Bucket=bucket, Key="tables/a.csv", VersionId=history["ids"]["a2"])
    assert err.value.response["Error"]["Code"] == "NoSuchVersion"
    over = c.get_object(Bucket=bucket, Key="tables/a.csv", ResponseContentType="application/x-test")
    assert over["ContentType"] == "application/x-test"


_CHECKSUM_FIELDS = ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256")


def _checksums(resp) -> dict[str, str]:
    return {k: resp[k] for k in _CHECKSUM_FIELDS if resp.get(k)}


def test_flexible_checksums_are_the_views_own(s3, s3_endpoint, bucket, service, creds, endpoint):
    """boto3's default flexible checksums (it asks for them on every GetObject and checks
    the body against them) work through the endpoint: the checksums are S3's own for the
    view's version, not the live one's; none for an object stored without any, none for a
    range and none unless asked, as S3 answers."""
    no_checksum = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    big_then = os.urandom(1 << 20) * 3 + b"tail"  # more than one of the endpoint's chunks
    old = {
        "crc32.bin": s3.put_object(Bucket=bucket, Key="crc32.bin", Body=b"then")["VersionId"],
        "sha.bin": s3.put_object(
            Bucket=bucket, Key="sha.bin", Body=b"then", ChecksumAlgorithm="SHA256"
        )["VersionId"],
        "none.bin": no_checksum.put_object(Bucket=bucket, Key="none.bin", Body=b"then")[
            "VersionId"
        ],
        "big.bin": s3.put_object(Bucket=bucket, Key="big.bin", Body=big_then)["VersionId"],
    }
    t0 = next_second()
    for key in old:
        s3.put_object(Bucket=bucket, Key=key, Body=b"now, other bytes", ChecksumAlgorithm="SHA1")
    next_second()
    service.sync(bucket)
    direct = {
        k: s3.head_object(Bucket=bucket, Key=k, VersionId=v, ChecksumMode="ENABLED")
        for k, v in old.items()
    }
    assert _checksums(direct["crc32.bin"]).keys() == {"ChecksumCRC32"}  # boto3's default
    assert _checksums(direct["sha.bin"]).keys() == {"ChecksumSHA256"}
    assert _checksums(direct["none.bin"]) == {}

    c = client(endpoint, *issue(creds, format_tm(t0), bucket=bucket))  # default config
    for key in old:
        got = c.get_object(Bucket=bucket, Key=key)  # boto3 asks and validates by default
        assert got["Body"].read() == (big_then if key == "big.bin" else b"then")
        assert _checksums(got) == _checksums(direct[key]), key
        head = c.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert _checksums(head) == _checksums(direct[key]), key
        assert _checksums(c.get_object(Bucket=bucket, Key=key, Range="bytes=0-1")) == {}
    quiet = client(endpoint, *issue(creds, format_tm(t0), bucket=bucket),
                   response_checksum_validation="when_required")  # fmt: skip
    assert _checksums(quiet.get_object(Bucket=bucket, Key="sha.bin")) == {}
    assert _checksums(quiet.head_object(Bucket=bucket, Key="sha.bin")) == {}


@pytest.mark.parametrize("signature_version", [None, "s3v4"])
def test_presigned_urls(history, creds, endpoint, signature_version):
    """boto3's default presigned URLs (Signature Version 2) and SigV4 ones."""
    bucket = history["bucket"]
    config = {"signature_version": signature_version} if signature_version else {}
    c = client(endpoint, *issue(creds, history["t0"], bucket=bucket), **config)
    url = c.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "tables/a.csv"}, ExpiresIn=60
    )
    assert ("X-Amz-Signature" in url) == (signature_version == "s3v4")
    assert requests.get(url, timeout=10).content == b"x\n1\n"
    tampered = url.replace("tables/a.csv", "tables/b.csv")
    bad = requests.get(tampered, timeout=10)
    assert bad.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in bad.content
    expired = c.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "tables/a.csv"}, ExpiresIn=1
    )
    time.sleep(2.1)
    gone = requests.get(expired, timeout=10)
    assert gone.status_code == 403 and b"Request has expired" in gone.content


def test_refusals_are_s3_errors(history, creds, endpoint):
    bucket = history["bucket"]
    key_id, secret = issue(creds, history["t0"], bucket=bucket, prefix="tables/")
    c = client(endpoint, key_id, secret)
    # unsigned
    anon = requests.get(f"{endpoint}/{bucket}/tables/a.csv", timeout=10)
    assert anon.status_code == 403 and b"<Code>AccessDenied</Code>" in anon.content
    # wrong secret, unknown key
    for kid, sec, code in (
        (key_id, "x" * 40, "SignatureDoesNotMatch"),
        ("INFVAAAAAAAAAAAAAAAA", secret, "InvalidAccessKeyId"),
    ):
        with pytest.raises(ClientError) as err:
            client(endpoint, kid, sec).list_objects_v2(Bucket=bucket, Prefix="tables/")
        assert err.value.response["Error"]["Code"] == code
    # writes
    for call in (
        lambda: c.put_object(Bucket=bucket, Key="tables/new.csv", Body=b"n"),
        lambda: c.delete_object(Bucket=bucket, Key="tables/a.csv"),
        lambda: c.create_bucket(Bucket="another-bucket"),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "AccessDenied"
    # other reads: NotImplemented, never a plain listing
    for call in (
        lambda: c.list_object_versions(Bucket=bucket),
        lambda: c.get_object_tagging(Bucket=bucket, Key="tables/a.csv"),
        lambda: c.get_bucket_policy(Bucket=bucket),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "NotImplemented"
    # outside the credential's bucket and prefix: never an open proxy
    with pytest.raises(ClientError) as err:
        c.get_object(Bucket=bucket, Key="other/o.txt")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as err:
        c.list_objects_v2(Bucket=bucket, Prefix="other/")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as err:
        c.list_objects_v2(Bucket="some-other-bucket")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    # a listing of the whole bucket shows only the credential's prefix
    assert [
        p["Prefix"] for p in c.list_objects_v2(Bucket=bucket, Delimiter="/")["CommonPrefixes"]
    ] == ["tables/"]
    # revoked: refused at once
    creds.revoke(key_id)
    with pytest.raises(ClientError) as err:
        c.get_object(Bucket=bucket, Key="tables/a.csv")
    assert err.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_expired_credential_is_refused(history, creds, endpoint):
    bucket = history["bucket"]
    c = client(endpoint, *issue(creds, history["t0"], bucket=bucket, expires="1s"))
    time.sleep(1.2)
    with pytest.raises(ClientError) as err:
        c.list_objects_v2(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "ExpiredToken"


def test_label_and_slice_views(history, creds, endpoint, service):
    bucket = history["bucket"]
    spec = service.parse_spec(history["t0"])
    service.create_label("before", bucket, "tables/", spec)
    c = client(endpoint, *issue(creds, "label:/before"))
    assert [b["Name"] for b in c.list_buckets()["Buckets"]] == [bucket]
    assert keys(c.list_objects_v2(Bucket=bucket)) == [
        "tables/a.csv",
        "tables/b.csv",
        "tables/sub/x.csv",
    ]
    later = f"{format_tm(spec.end_ms + 1)}-now"
    s = client(
        endpoint,
        *issue(
            creds, later.replace("now", format_tm(int(time.time() * 1000) - 1000)), bucket=bucket
        ),
    )
    assert keys(s.list_objects_v2(Bucket=bucket)) == ["tables/a.csv", "tables/c.csv"]
    assert s.get_object(Bucket=bucket, Key="tables/a.csv")["Body"].read() == b"x\n10\n"


def test_virtual_hosted_style(history, creds, endpoint):
    """bucket.localhost:PORT addressing (sent to the loopback address with that Host)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    bucket = history["bucket"]
    key_id, secret = issue(creds, history["t0"], bucket=bucket)
    port = endpoint.rsplit(":", 1)[1]
    req = AWSRequest(method="GET", url=f"http://{bucket}.localhost:{port}/tables/a.csv")
    S3SigV4Auth(Credentials(key_id, secret), "s3", "us-east-1").add_auth(req)
    headers = dict(req.headers.items())
    headers["Host"] = f"{bucket}.localhost:{port}"
    resp = requests.get(f"{endpoint}/tables/a.csv", headers=headers, timeout=10)
    assert resp.status_code == 200, resp.content
    assert resp.content == b"x\n1\n"


def test_cli_credentials_issue_list_revoke(history, index_url, capsys, endpoint):
    from infinstor_jlab import cli

    bucket = history["bucket"]
    assert (
        cli.main(
            ["--index", index_url, "endpoint", "credentials", history["t0"], "--bucket", bucket]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"export AWS_ENDPOINT_URL={endpoint}" in out  # the endpoint last started
    assert "[profile infinstor-tm" in out and "aws_secret_access_key = " in out
    key_id = out.split("export AWS_ACCESS_KEY_ID=", 1)[1].split()[0]
    secret = out.split("export AWS_SECRET_ACCESS_KEY=", 1)[1].split()[0]
    c = client(endpoint, key_id, secret)
    assert keys(c.list_objects_v2(Bucket=bucket, Prefix="tables/b")) == ["tables/b.csv"]

    assert cli.main(["--index", index_url, "endpoint", "credentials", "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["aws_access_key_id"] for d in listed] == [key_id]
    assert listed[0]["state"] == "active" and "aws_secret_access_key" not in listed[0]
    assert listed[0]["view"]["bucket"] == bucket

    assert cli.main(["--index", index_url, "endpoint", "credentials", "--revoke", key_id]) == 0
    capsys.readouterr()
    assert cli.main(["--index", index_url, "endpoint", "credentials", "--list"]) == 0
    assert "revoked" in capsys.readouterr().out
    with pytest.raises(ClientError):
        c.list_objects_v2(Bucket=bucket)

    # mistakes a user can make, as sentences
    for args, words in (
        (["--expires", "soon", "now", "--bucket", bucket], "not a duration"),
        (["label:/no-such-label"], "no-such-label"),
        (["tm20991231000000", "--bucket", bucket], "in the future"),
        (["--revoke", "INFVAAAAAAAAAAAAAAAA"], "no view credential"),
        ([], "Name the view"),
    ):
        assert cli.main(["--index", index_url, "endpoint", "credentials", *args]) == 1
        assert words in capsys.readouterr().err


def test_secrets_are_not_stored(history, creds, service):
    """The database holds no secret: only a hash, and the master key is a 0600 file."""
    import sqlite3
    import stat

    cred, secret = creds.issue(history["t0"], bucket=history["bucket"])
    dump = "\n".join(sqlite3.connect(service.index.path).iterdump())
    assert secret not in dump and cred.key_id in dump
    mode = os.stat(creds.store.key_path).st_mode
    assert stat.S_IMODE(mode) == 0o600
