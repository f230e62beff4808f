"""Transforms, runs and endpoint credentials on both backends: the SQLite file beside the
index, and the team's PostgreSQL database (a real server, tests/pg_server.py). Same
semantics; on PostgreSQL a second server sees what the first stored, at once."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from infinstor_jlab.errors import NotFound
from infinstor_jlab.services.credentials import (
    CredentialStore,
    PgCredentialStore,
    ViewGrant,
    open_credential_store,
)
from infinstor_jlab.transforms.store import (
    PgTransformStore,
    TransformRevision,
    TransformRun,
    TransformStore,
    open_transform_store,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path) -> str:
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "index.sqlite")
    return request.getfixturevalue("pg_url")


@dataclass
class FakeIndexLocation:
    """Where an index lives, as an index object says it (``path`` for SQLite, ``url``)."""

    path: str | None = None
    url: str | None = None


def _index_at(location: str) -> FakeIndexLocation:
    if location.startswith("sqlite:///"):
        return FakeIndexLocation(path=location[len("sqlite:///") :])
    return FakeIndexLocation(url=location)


def _rev(name: str, code: str = "print(1)") -> TransformRevision:
    return TransformRevision(name, 0, code, "sha", "script", "alice", "d", 1)


def test_transform_store_semantics(location):
    store = open_transform_store(location)
    assert isinstance(store, PgTransformStore) == location.startswith("postgresql")
    assert store.add_revision(_rev("clean")).revision == 1
    assert store.add_revision(_rev("clean", "print(2)")).revision == 2
    assert store.add_revision(_rev("agg")).revision == 1
    assert store.names() == ["agg", "clean"]
    assert [r.revision for r in store.revisions("clean")] == [2, 1]
    assert store.revision("clean").code == "print(2)"
    assert store.revision("clean", 1).code == "print(1)"
    with pytest.raises(NotFound):
        store.revision("clean", 9)
    for i, name in enumerate(["clean", "agg", "clean"]):
        run = TransformRun(
            id=f"r{i}",
            transform=name,
            revision=1,
            executor="local",
            input_spec={"type": "label", "label": "x"},
            output_uri="s3://o/",
            kwargs={"k": i},
            created_ms=100 + i,
        )
        store.save_run(run)
    run = store.get_run("r0")
    run.state = "succeeded"
    run.details = {"files": 3}
    store.save_run(run)  # an update, not a second run
    again = open_transform_store(location)  # another server on the same database
    assert again.get_run("r0").state == "succeeded"
    assert again.get_run("r0").details == {"files": 3}
    assert [r.id for r in again.runs()] == ["r2", "r1", "r0"]
    assert [r.id for r in again.runs("clean")] == ["r2", "r0"]
    with pytest.raises(NotFound):
        again.get_run("nope")
    again.delete("agg")
    assert store.names() == ["clean"]
    with pytest.raises(NotFound):
        store.delete("agg")


def test_concurrent_saves_number_revisions_once(pg_url):
    """Two servers saving revisions of one transform at once: numbers 1..N, none twice."""
    stores = [PgTransformStore(pg_url), PgTransformStore(pg_url)]
    got: list[int] = []
    lock = threading.Lock()

    def save(store: TransformStore) -> None:
        for _ in range(10):
            rev = store.add_revision(_rev("shared"))
            with lock:
                got.append(rev.revision)

    threads = [threading.Thread(target=save, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 21))


def test_credential_store_semantics(location):
    store = open_credential_store(_index_at(location))
    assert isinstance(store, PgCredentialStore) == location.startswith("postgresql")
    grant = ViewGrant(bucket="b", prefix="p/", kind="snapshot", end_ms=1000, spec_text="tm")
    cred, secret = store.issue(grant, expires_ms=None, description="for duckdb")
    assert cred.key_id.startswith("INFV") and len(secret) == 40
    # Secrets are derived, only their hash is kept: nothing stored holds the secret.
    assert secret not in repr(store.list())
    other = open_credential_store(_index_at(location))  # a second endpoint of the team
    found = other.find(cred.key_id)
    assert found is not None and found.view == grant and found.description == "for duckdb"
    assert other.verify_secret(found) == secret
    assert other.find("INFVAAAAAAAAAAAAAAAA") is None
    assert other.find("not a key") is None
    assert store.revoke(cred.key_id).state() == "revoked"
    assert other.get(cred.key_id).state() == "revoked"
    with pytest.raises(NotFound):
        other.revoke("INFVAAAAAAAAAAAAAAAA")
    store.record_endpoint("http://127.0.0.1:9999")
    store.record_endpoint("http://127.0.0.1:9000")
    assert other.recorded_endpoint() == "http://127.0.0.1:9000"
    assert [c.key_id for c in other.list()] == [cred.key_id]


def test_pg_master_key_is_one_for_the_team_or_a_file(pg_url, tmp_path, monkeypatch):
    first = PgCredentialStore(pg_url)
    second = PgCredentialStore(pg_url)
    assert first.secret_for("INFVABCDEFGHIJKLMNOP") == second.secret_for("INFVABCDEFGHIJKLMNOP")
    # An admin who keeps the key out of the database names a file instead.
    monkeypatch.setenv("INFINSTOR_ENDPOINT_KEY_FILE", str(tmp_path / "team.key"))
    from_file = PgCredentialStore(pg_url)
    key_id = "INFVABCDEFGHIJKLMNOP"
    assert from_file.secret_for(key_id) != first.secret_for(key_id)
    assert (tmp_path / "team.key").stat().st_mode & 0o077 == 0
    cred, _ = first.issue(
        ViewGrant(bucket=None, prefix="", kind="snapshot", end_ms=1), expires_ms=None
    )
    # Issued under the database's key: an endpoint on another key refuses it cleanly.
    assert from_file.verify_secret(from_file.get(cred.key_id)) is None


def test_sqlite_store_is_unchanged_on_a_path(tmp_path):
    path = str(tmp_path / "index.sqlite")
    assert type(open_transform_store(path)) is TransformStore
    assert type(open_credential_store(FakeIndexLocation(path=path))) is CredentialStore
