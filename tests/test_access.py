"""Who may see what: a shared index answers for a bucket only when the reader's own AWS
credentials may list it.

Two users with different IAM credentials share one index. moto enforces IAM policies once
``INITIAL_NO_AUTH_ACTION_COUNT`` requests have been served (it reads the setting at import),
so this module runs its own ``moto_server`` process with it set, apart from the session's
(which never authenticates): the first three requests make an admin user, everything after
is signed and authorized as in AWS.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from infinstor_jlab.errors import AccessDenied
from infinstor_jlab.index import open_index
from infinstor_jlab.services import InfinstorService
from infinstor_jlab.services.access import access_checks_enabled

ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def _one_bucket_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            },
            {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
        ],
    }


@dataclass
class IamWorld:
    endpoint: str
    admin: dict[str, str]
    alice: dict[str, str]
    open_bucket: str  # alice may read it
    closed_bucket: str  # alice may not

    def client(self, who: dict[str, str], service: str = "s3") -> Any:
        if service == "s3":  # as the service makes its clients, with these credentials
            from infinstor_jlab.services.s3 import make_s3_client

            session = boto3.session.Session(
                aws_access_key_id=who["AccessKeyId"],
                aws_secret_access_key=who["SecretAccessKey"],
                region_name="us-east-1",
            )
            return make_s3_client(self.endpoint, session=session)
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=who["AccessKeyId"],
            aws_secret_access_key=who["SecretAccessKey"],
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _user(iam: Any, name: str, policy: dict[str, Any]) -> dict[str, str]:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


@pytest.fixture(scope="module")
def iam_world() -> Iterator[IamWorld]:
    port = _free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    proc = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "moto_server"),
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        unauth = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        admin = _user(unauth, "admin", ADMIN_POLICY)  # the three unauthenticated requests
        world = IamWorld(
            endpoint, admin, {}, f"open-{uuid.uuid4().hex[:8]}", f"closed-{uuid.uuid4().hex[:8]}"
        )
        s3 = world.client(admin)
        for name in (world.open_bucket, world.closed_bucket):
            s3.create_bucket(Bucket=name)
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            s3.put_object(Bucket=name, Key="data/a.csv", Body=b"1")
            s3.put_object(Bucket=name, Key="data/a.csv", Body=b"22")
        world.alice = _user(
            world.client(admin, "iam"), "alice", _one_bucket_policy(world.open_bucket)
        )
        yield world
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_index(request, tmp_path, iam_world: IamWorld) -> str:
    """An index that the admin filled with both buckets: the team's PostgreSQL database, or
    an SQLite file that several users share."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    else:
        url = "sqlite:///" + str(tmp_path / "shared.sqlite")
    index = open_index(url)
    admin = InfinstorService(
        index, s3_client_factory=lambda: iam_world.client(iam_world.admin), access_checks="on"
    )
    for name in (iam_world.open_bucket, iam_world.closed_bucket):
        admin.track(name, enable_versioning_consent=False)
        admin.sync(name)
    assert {b["name"] for b in admin.list_buckets() if b.get("tracked")} == {
        iam_world.open_bucket,
        iam_world.closed_bucket,
    }
    index.close()
    return url


def _alice_service(url: str, world: IamWorld, calls: list[str] | None = None) -> InfinstorService:
    def factory() -> Any:
        client = world.client(world.alice)
        if calls is not None:
            client.meta.events.register(
                "before-call.s3.ListObjectVersions", lambda **_: calls.append("lov")
            )
        return client

    return InfinstorService(open_index(url), s3_client_factory=factory, access_checks="on")


def test_a_bucket_the_credentials_cannot_list_is_hidden_and_refused(shared_index, iam_world):
    calls: list[str] = []
    alice = _alice_service(shared_index, iam_world, calls)
    try:
        listed = {b["name"]: b for b in alice.list_buckets()}
        # The index's history of the closed one is not shown: no status, no counts.
        assert listed[iam_world.open_bucket]["tracked"] is True
        assert listed[iam_world.open_bucket]["version_count"] == 2
        closed = listed.get(iam_world.closed_bucket, {"tracked": False})
        assert closed["tracked"] is False and "version_count" not in closed

        view = alice.views.resolve_view(iam_world.open_bucket, at="now")
        page = alice.list_objects(iam_world.open_bucket, spec=view.spec, prefix="data/")
        assert [o.key for o in page.objects] == ["data/a.csv"]

        with pytest.raises(AccessDenied) as denied:
            alice.views.resolve_view(iam_world.closed_bucket, at="now")
        assert denied.value.status == 403
        assert "cannot list bucket" in denied.value.message
        assert iam_world.closed_bucket in denied.value.message
        for attempt in (
            lambda: alice.history(iam_world.closed_bucket, "data/a.csv"),
            lambda: alice.timeline(iam_world.closed_bucket),
            lambda: alice.list_objects(iam_world.closed_bucket, spec=view.spec, prefix="data/"),
            lambda: alice.resolve_object(iam_world.closed_bucket, "data/a.csv", spec=view.spec),
            lambda: alice.bucket_status(iam_world.closed_bucket),
            lambda: alice.untrack(iam_world.closed_bucket, forget_history=True),
        ):
            with pytest.raises(AccessDenied):
                attempt()
        # Nothing she was refused changed the shared index.
        assert alice.index.get_bucket(iam_world.closed_bucket).version_count == 2
        # One question to S3 per bucket, then cached answers.
        assert calls.count("lov") == 2
    finally:
        alice.index.close()


def test_labels_of_a_hidden_bucket_are_not_listed_or_shown(shared_index, iam_world):
    index = open_index(shared_index)
    admin = InfinstorService(
        index, s3_client_factory=lambda: iam_world.client(iam_world.admin), access_checks="on"
    )
    spec = admin.parse_spec("now")
    admin.create_label("open-one", iam_world.open_bucket, "data/", spec)
    admin.create_label("closed-one", iam_world.closed_bucket, "data/", spec)
    index.close()
    alice = _alice_service(shared_index, iam_world)
    try:
        assert [x.name for x in alice.list_labels()] == ["open-one"]
        assert alice.get_label("open-one").object_count == 1
        with pytest.raises(AccessDenied):
            alice.get_label("closed-one")
        with pytest.raises(AccessDenied):
            alice.views.label_view("closed-one")
        with pytest.raises(AccessDenied):
            alice.delete_label("closed-one")
        assert alice.index.get_label("closed-one").name == "closed-one"
    finally:
        alice.index.close()


def test_cli_refuses_with_the_sentence(shared_index, iam_world, monkeypatch, capsys):
    from infinstor_jlab.cli import main

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", iam_world.alice["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", iam_world.alice["SecretAccessKey"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", iam_world.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("INFINSTOR_ACCESS_CHECKS", "on")
    code = main(["ls", f"s3://{iam_world.open_bucket}/data/", "--index", shared_index, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [o["key"] for o in json.loads(out)["objects"]] == ["data/a.csv"]
    code = main(["ls", f"s3://{iam_world.closed_bucket}/data/", "--index", shared_index])
    out, err = capsys.readouterr()
    assert code != 0
    assert "Your AWS credentials cannot list bucket" in err
    assert "a.csv" not in out


def test_kernel_time_travel_answers_access_denied(shared_index, iam_world, monkeypatch):

    from infinstor_jlab import infin_boto3
    from infinstor_jlab.kernel import infin_boto3 as hooks

    monkeypatch.setenv("INFINSTOR_INDEX_URL", shared_index)
    monkeypatch.setenv("INFINSTOR_ACCESS_CHECKS", "on")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", iam_world.alice["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", iam_world.alice["SecretAccessKey"])
    monkeypatch.setattr(hooks, "_travel", None)
    # Time travel is on from import, but another test module's fixture may have turned it
    # off in this process (test_infin_boto3 enables and disables it around each test).
    was_enabled = hooks._enabled
    hooks.enable()
    try:
        _kernel_denied(infin_boto3, iam_world)
    finally:
        if not was_enabled:
            hooks.disable()


def _kernel_denied(infin_boto3, iam_world) -> None:
    from botocore.exceptions import ClientError

    client = infin_boto3.client(
        "s3",
        at="now",
        endpoint_url=iam_world.endpoint,
        region_name="us-east-1",
        aws_access_key_id=iam_world.alice["AccessKeyId"],
        aws_secret_access_key=iam_world.alice["SecretAccessKey"],
    )
    listed = client.list_objects_v2(Bucket=iam_world.open_bucket, Prefix="data/")
    assert [o["Key"] for o in listed["Contents"]] == ["data/a.csv"]
    with pytest.raises(ClientError) as denied:
        client.list_objects_v2(Bucket=iam_world.closed_bucket, Prefix="data/")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "cannot list bucket" in denied.value.response["Error"]["Message"]


def test_endpoint_refuses_a_view_credential_of_a_bucket_its_credentials_cannot_read(
    shared_index, iam_world
):
    from infinstor_jlab.endpoint.server import EndpointServer
    from infinstor_jlab.services.credentials import CredentialService, open_credential_store

    index = open_index(shared_index)
    admin = InfinstorService(
        index, s3_client_factory=lambda: iam_world.client(iam_world.admin), access_checks="on"
    )
    issued = {
        name: CredentialService.for_service(admin).issue("now", bucket=name)
        for name in (iam_world.open_bucket, iam_world.closed_bucket)
    }
    index.close()
    alice = _alice_service(shared_index, iam_world)
    server = EndpointServer(alice, open_credential_store(alice.index), port=0)
    url = server.start()
    try:
        for name, (cred, secret) in issued.items():
            reader = boto3.client(
                "s3",
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id=cred.key_id,
                aws_secret_access_key=secret,
            )
            if name == iam_world.open_bucket:
                keys = [o["Key"] for o in reader.list_objects_v2(Bucket=name)["Contents"]]
                assert keys == ["data/a.csv"]
            else:
                from botocore.exceptions import ClientError

                with pytest.raises(ClientError) as denied:
                    reader.list_objects_v2(Bucket=name)
                assert denied.value.response["Error"]["Code"] == "AccessDenied"
                with pytest.raises(ClientError):
                    reader.get_object(Bucket=name, Key="data/a.csv")
    finally:
        server.stop()
        alice.index.close()


def test_checks_are_on_by_default_only_for_a_shared_index(tmp_path, monkeypatch, pg_url):
    monkeypatch.delenv("INFINSTOR_ACCESS_CHECKS", raising=False)
    shared = open_index(pg_url)
    try:
        assert InfinstorService(shared).access.enabled is True
        assert InfinstorService(shared, access_checks="off").access.enabled is False
    finally:
        shared.close()
    index = open_index("sqlite:///" + str(tmp_path / "own.sqlite"))
    try:
        assert access_checks_enabled(index) is False
        assert access_checks_enabled(index, "on") is True

        class Shared:
            shared = True

        assert access_checks_enabled(Shared()) is True
        assert access_checks_enabled(Shared(), "off") is False
        monkeypatch.setenv("INFINSTOR_ACCESS_CHECKS", "on")
        assert access_checks_enabled(index) is True
        monkeypatch.setenv("INFINSTOR_ACCESS_CHECKS", "sometimes")
        with pytest.raises(Exception, match="on, off or auto"):
            access_checks_enabled(index)
    finally:
        index.close()


def test_rest_hides_and_refuses_with_403(shared_index, iam_world, tmp_path):
    """A real Jupyter server running as alice (her AWS credentials in its environment)."""
    from live_server import LiveServer

    server = LiveServer(
        tmp_path / "alice",
        index_url=shared_index,
        s3_endpoint=iam_world.endpoint,
        args=["--InfinstorApp.watch_buckets=0", "--InfinstorApp.access_checks=on"],
        env={
            "AWS_ACCESS_KEY_ID": iam_world.alice["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": iam_world.alice["SecretAccessKey"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "INFINSTOR_ACCESS_CHECKS": None,
        },
    )
    with server:
        buckets = {b["name"]: b for b in server.api("GET", "buckets")["buckets"]}
        assert buckets[iam_world.open_bucket]["tracked"] is True
        assert buckets.get(iam_world.closed_bucket, {"tracked": False})["tracked"] is False
        page = server.api(
            "GET", f"buckets/{iam_world.open_bucket}/objects", params={"prefix": "data/"}
        )
        assert [o["key"] for o in page["objects"]] == ["data/a.csv"]
        for path in (
            f"buckets/{iam_world.closed_bucket}/objects?prefix=data",
            f"buckets/{iam_world.closed_bucket}/history?key=data/a.csv",
            f"buckets/{iam_world.closed_bucket}/timeline",
        ):
            refused = server.api("GET", path, expect=403)
            assert "Your AWS credentials cannot list bucket" in refused["message"]


def test_a_watcher_keeps_only_readable_buckets_current(shared_index, iam_world):
    """Alice's background reconcile never runs (and fails, and writes errors into the shared
    record of) the bucket she may not read."""
    from infinstor_jlab.services.watcher import BucketWatcher

    alice = _alice_service(shared_index, iam_world)
    try:
        watcher = BucketWatcher(alice, wait_seconds=1, reconcile_interval=0)
        records = {r.name: r for r in alice.index.list_buckets()}
        assert watcher._watches(records[iam_world.open_bucket]) is True
        assert watcher._watches(records[iam_world.closed_bucket]) is False
        assert alice.index.get_event_source(iam_world.closed_bucket).get("last_error") is None
    finally:
        alice.index.close()
