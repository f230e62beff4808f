"""The server extension loads and serves GET /infinstor/health to authenticated users only."""

import json

import pytest
from tornado.httpclient import HTTPClientError

import infinstor_jlab


@pytest.fixture
def jp_server_config(jp_server_config):
    return {"ServerApp": {"jpserver_extensions": {"infinstor_jlab": True}}}


async def test_health_returns_version(jp_fetch):
    response = await jp_fetch("infinstor", "health")

    assert response.code == 200
    payload = json.loads(response.body)
    assert payload["version"] == infinstor_jlab.__version__
    assert isinstance(payload["index_schema_version"], int)
    assert payload["index_schema_version"] >= 1


async def test_health_without_token_is_forbidden(jp_fetch, jp_serverapp):
    # pytest-jupyter leaves ServerApp.allow_unauthenticated_access at its default (True);
    # the handler's own @tornado.web.authenticated must still refuse an anonymous call.
    assert jp_serverapp.identity_provider.token

    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("infinstor", "health", headers={"Authorization": ""})

    assert excinfo.value.code == 403


async def test_health_with_wrong_token_is_forbidden(jp_fetch):
    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("infinstor", "health", headers={"Authorization": "token not-the-token"})

    assert excinfo.value.code == 403


def test_help_all_lists_every_setting():
    """`jupyter infinstor-jlab --help-all` (the app's launcher) documents the extension's
    settings and its executors' next to the server's."""
    import os
    import shutil
    import subprocess
    import sys

    launcher = shutil.which("jupyter-infinstor-jlab", path=os.path.dirname(sys.executable))
    cmd = [launcher] if launcher else [sys.executable, "-m", "infinstor_jlab.app"]
    out = subprocess.run(
        [*cmd, "--help-all"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    for name in (
        "index_url",
        "s3_endpoint_url",
        "sqs_wait_seconds",
        "reconcile_interval",
        "track_buckets",
        "watch_buckets",
        "preview_max_bytes",
        "thread_pool_size",
        "query_thread_pool_size",
        "transform_output_uri",
        "local_executor_class",
    ):
        assert f"--InfinstorApp.{name}=" in out, name
    for option in (
        "--LocalExecutor.workers=",
        "--SparkExecutor.master=",
        "--EmrExecutor.cluster_id=",
        "--ServerApp.port=",
    ):
        assert option in out, option
