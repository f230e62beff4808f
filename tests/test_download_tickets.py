"""Sidebar downloads without the Jupyter token in the URL: ``POST /infinstor/downloads`` (an
authenticated request) answers a single-use link that works for a minute, for the user who
asked for it, and streams exactly the version the view named."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from jupyter_server.auth import IdentityProvider, User
from test_api import call, track
from timing import next_second

from infinstor_jlab.rest import base as rest_base

BOB_TOKEN = "bob-" + uuid.uuid4().hex


class TwoUsers(IdentityProvider):
    """The server token signs in alice, ``BOB_TOKEN`` signs in bob, nothing else signs in."""

    def get_user(self, handler: Any) -> User | None:
        header = handler.request.headers.get("Authorization", "")
        user = {f"token {self.token}": "alice", f"token {BOB_TOKEN}": "bob"}.get(header)
        if user is None:
            return None
        handler._token_authenticated = True
        return User(username=user)


@pytest.fixture
def jp_server_config(index_url, s3_endpoint, monkeypatch):
    monkeypatch.setenv("INFINSTOR_INDEX_URL", index_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    return {
        "ServerApp": {
            "jpserver_extensions": {"infinstor_jlab": True},
            "identity_provider_class": TwoUsers,
        },
        "InfinstorApp": {
            "index_url": index_url,
            "s3_endpoint_url": s3_endpoint,
            "reconcile_interval": 0.0,
            "sqs_wait_seconds": 1,
        },
    }


ANONYMOUS = {"Authorization": ""}  # a browser navigation without a login cookie
BOB = {"Authorization": f"token {BOB_TOKEN}"}


async def ticket_for(jp_fetch, expect: int = 201, **body: Any) -> dict[str, Any]:
    response = await call(jp_fetch, "POST", "downloads", body=body, expect=expect)
    return json.loads(response.body)


def link_parts(doc: dict[str, Any]) -> list[str]:
    """The link's path under ``<base_url>/infinstor/``."""
    assert doc["url"].endswith(f"/infinstor/downloads/{doc['ticket']}")
    return ["downloads", doc["ticket"]]


async def test_a_ticket_downloads_the_views_version_once_without_the_token(
    jp_fetch, jp_serverapp, s3, bucket
):
    token = jp_serverapp.identity_provider.token
    v1 = s3.put_object(Bucket=bucket, Key="dir/a.txt", Body=b"alpha v1")["VersionId"]
    t1 = next_second()
    s3.put_object(Bucket=bucket, Key="dir/a.txt", Body=b"alpha v2")
    await track(jp_fetch, bucket)

    doc = await ticket_for(jp_fetch, bucket=bucket, key="dir/a.txt", at=str(t1))
    assert doc["version_id"] == v1 and doc["size"] == len(b"alpha v1")
    assert token not in doc["url"] and "token" not in doc["url"]
    # The link works without any credential (a navigation sends no Authorization header)...
    response = await call(jp_fetch, "GET", *link_parts(doc), headers=ANONYMOUS)
    assert response.body == b"alpha v1"
    assert response.headers["X-Infinstor-Version-Id"] == v1
    assert "filename*=UTF-8''a.txt" in response.headers["Content-Disposition"]
    # ...once.
    again = await call(jp_fetch, "GET", *link_parts(doc), headers=ANONYMOUS, expect=403)
    assert "already used" in json.loads(again.body)["message"]

    # Signed in as the same user works too; an explicit version id names the version.
    doc = await ticket_for(jp_fetch, bucket=bucket, key="dir/a.txt")
    response = await call(jp_fetch, "GET", *link_parts(doc))
    assert response.body == b"alpha v2"
    doc = await ticket_for(jp_fetch, bucket=bucket, key="dir/a.txt", version_id=v1)
    assert (await call(jp_fetch, "GET", *link_parts(doc))).body == b"alpha v1"


async def test_a_ticket_expires(jp_fetch, jp_serverapp, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    await track(jp_fetch, bucket)
    doc = await ticket_for(jp_fetch, bucket=bucket, key="a.txt")
    tickets = rest_base.download_tickets(jp_serverapp.web_app.settings)
    real_clock = tickets.clock
    tickets.clock = lambda: real_clock() + tickets.ttl_s + 1
    try:
        response = await call(jp_fetch, "GET", *link_parts(doc), headers=ANONYMOUS, expect=403)
    finally:
        tickets.clock = real_clock
    assert "expired" in json.loads(response.body)["message"]


async def test_a_ticket_is_refused_to_another_user_and_is_spent(jp_fetch, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    await track(jp_fetch, bucket)
    doc = await ticket_for(jp_fetch, bucket=bucket, key="a.txt")  # alice's
    response = await call(jp_fetch, "GET", *link_parts(doc), headers=BOB, expect=403)
    assert "another Jupyter user" in json.loads(response.body)["message"]
    await call(jp_fetch, "GET", *link_parts(doc), expect=403)  # spent, even for alice
    await call(jp_fetch, "GET", "downloads", "not-a-ticket", headers=BOB, expect=403)


async def test_a_ticket_request_names_one_object_of_a_view(jp_fetch, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    await track(jp_fetch, bucket)
    await ticket_for(jp_fetch, bucket=bucket, key="gone.txt", expect=404)
    await ticket_for(
        jp_fetch, bucket="no-such-bucket-" + uuid.uuid4().hex[:6], key="a.txt", expect=404
    )
    await ticket_for(jp_fetch, bucket=bucket, expect=400)
    await ticket_for(jp_fetch, bucket=bucket, key="a.txt", version_id="v", at="now", expect=400)
    await ticket_for(jp_fetch, bucket=bucket, key="a.txt", at="not a time", expect=400)
    await call(
        jp_fetch,
        "POST",
        "downloads",
        body={"bucket": bucket, "key": "a.txt"},
        headers=ANONYMOUS,
        expect=403,
    )
