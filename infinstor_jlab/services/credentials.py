"""View credentials: access key id / secret pairs that the S3 endpoint accepts for exactly one
view (a bucket, or every indexed bucket, an optional prefix, absolute times).

Storage, and why it is this way
-------------------------------
SigV4 cannot be checked against a hash of the secret: the server must compute the signature
with the secret itself. So no secret is stored at all. Each secret is *derived*:
``secret = base64url(HMAC-SHA256(master_key, "infinstor-endpoint:" + key_id))``, where the
master key is 32 random bytes in a file beside the index (``<index>.endpoint-key``, mode
0600, created on first use). The credentials table (in the index's SQLite file, a table and
schema version of its own) keeps, per key id, the view, the expiry, the revocation time and a
SHA-256 of the secret: the hash is what listing shows as a fingerprint and what the endpoint
compares the derived secret against (so a replaced master key makes every old key fail
cleanly, rather than verify with a different secret).

What follows: a copy of the database alone reveals no secret and lets nobody sign; the
master key file alone names no view. Both together are equivalent to the secrets, as for any
SigV4 server (AWS keeps its secrets too). Removing the key file revokes every credential at
once; a new one is made on next use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest, NotFound
from ..timespec import TimeSpec, format_iso, now_ms

#: Bumped when the table's shape changes; a store of a newer version is refused.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoint_credentials_meta(
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS endpoint_credentials(
    key_id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    view TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    revoked_ms INTEGER,
    description TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
"""

KEY_ID_PREFIX = "INFV"
_KEY_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_KEY_ID_RE = re.compile(r"^INFV[A-Z2-7]{16}$")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
DEFAULT_EXPIRES = "7d"
MAX_EXPIRES_MS = 366 * 86_400_000


def parse_duration_ms(text: str) -> int:
    """``90s``, ``15m``, ``12h``, ``7d``, ``2w`` -> milliseconds."""
    m = _DURATION_RE.match(text or "")
    if not m or int(m.group(1)) <= 0:
        raise BadRequest(
            f"{text!r} is not a duration; write it as a number and a unit: 90s, 15m, 12h, 7d or 2w."
        )
    ms = int(m.group(1)) * _UNITS_MS[m.group(2)]
    if ms > MAX_EXPIRES_MS:
        raise BadRequest("A view credential lasts at most 366 days; give a shorter --expires.")
    return ms


@dataclass(frozen=True)
class ViewGrant:
    """What one credential may read: ``bucket`` (None: every bucket in the index), keys
    under ``prefix``, as of the view's absolute times."""

    bucket: str | None
    prefix: str
    kind: str  # snapshot | slice
    end_ms: int
    start_ms: int | None = None
    spec_text: str = ""  # what the user gave (label:/x, run:/id, tm..., ...)
    label: str | None = None

    @property
    def spec(self) -> TimeSpec:
        return TimeSpec(
            kind="slice" if self.kind == "slice" else "snapshot",
            end_ms=self.end_ms,
            start_ms=self.start_ms,
            text=self.spec_text,
            label=self.label,
        )

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "kind": self.kind,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "spec": self.spec_text,
            "canonical": spec.canonical(),
            "display": spec.display(),
            "label": self.label,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ViewGrant:
        return cls(
            bucket=doc.get("bucket"),
            prefix=doc.get("prefix") or "",
            kind=doc["kind"],
            end_ms=int(doc["end_ms"]),
            start_ms=None if doc.get("start_ms") is None else int(doc["start_ms"]),
            spec_text=doc.get("spec") or "",
            label=doc.get("label"),
        )

    def allows_bucket(self, bucket: str) -> bool:
        return self.bucket is None or self.bucket == bucket


@dataclass(frozen=True)
class Credential:
    key_id: str
    secret_sha256: str
    view: ViewGrant
    created_ms: int
    expires_ms: int | None
    revoked_ms: int | None
    description: str = ""

    def state(self, at_ms: int | None = None) -> str:
        if self.revoked_ms is not None:
            return "revoked"
        if self.expires_ms is not None and (at_ms or now_ms()) >= self.expires_ms:
            return "expired"
        return "active"

    def to_json(self) -> dict[str, Any]:
        return {
            "aws_access_key_id": self.key_id,
            "view": self.view.to_json(),
            "created": format_iso(self.created_ms),
            "created_ms": self.created_ms,
            "expires": format_iso(self.expires_ms) if self.expires_ms is not None else None,
            "expires_ms": self.expires_ms,
            "revoked_ms": self.revoked_ms,
            "state": self.state(),
            "secret_fingerprint": self.secret_sha256[:16],
            "description": self.description,
        }


def master_key_path(index_path: str) -> str:
    return index_path + ".endpoint-key"


def _load_or_create_master_key(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            key = fh.read()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replace a key another process made meanwhile
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    with open(path, "rb") as fh:
        return fh.read()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _credential_row(cred: Credential) -> tuple[Any, ...]:
    """A new credential's row of ``endpoint_credentials``, in column order (both stores)."""
    return (
        cred.key_id,
        cred.secret_sha256,
        json.dumps(cred.view.to_json()),
        cred.created_ms,
        cred.expires_ms,
        cred.revoked_ms,
        cred.description,
    )


class CredentialStore:
    """The credentials table, on the index's SQLite file (its own table and schema
    version, like the transform store), and the master key beside it."""

    def __init__(self, index_path: str) -> None:
        if not index_path or index_path == ":memory:":
            raise BadRequest(
                "View credentials need an index file (sqlite:///path), not an in-memory index."
            )
        self.path = index_path
        self.key_path = master_key_path(index_path)
        self._master: bytes | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        conn = self._conn()
        with self._lock:
            conn.executescript(_SCHEMA)
            row = conn.execute(
                "SELECT value FROM endpoint_credentials_meta WHERE name='schema_version'"
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT OR IGNORE INTO endpoint_credentials_meta VALUES('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise BadRequest(
                    f"The view credentials in {index_path} were written by a newer "
                    f"infinstor_jlab (schema {row[0]}); upgrade infinstor_jlab to use them."
                )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def _master_key(self) -> bytes:
        if self._master is None:
            self._master = _load_or_create_master_key(self.key_path)
        return self._master

    def secret_for(self, key_id: str) -> str:
        mac = hmac.new(self._master_key(), f"infinstor-endpoint:{key_id}".encode(), "sha256")
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")[:40]

    # -- writes -----------------------------------------------------------------------------
    def issue(
        self, view: ViewGrant, *, expires_ms: int | None, description: str = ""
    ) -> tuple[Credential, str]:
        """A new credential and its secret (shown once; it is never stored)."""
        key_id = KEY_ID_PREFIX + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
        secret = self.secret_for(key_id)
        cred = Credential(
            key_id=key_id,
            secret_sha256=_hash(secret),
            view=view,
            created_ms=now_ms(),
            expires_ms=expires_ms,
            revoked_ms=None,
            description=description,
        )
        self._conn().execute(
            "INSERT INTO endpoint_credentials VALUES(?,?,?,?,?,?,?)",
            _credential_row(cred),
        )
        return cred, secret

    def revoke(self, key_id: str) -> Credential:
        cur = self._conn().execute(
            "UPDATE endpoint_credentials SET revoked_ms=? WHERE key_id=? AND revoked_ms IS NULL",
            (now_ms(), key_id),
        )
        if cur.rowcount == 0:
            self.get(key_id)  # unknown -> NotFound
        return self.get(key_id)

    # -- reads ------------------------------------------------------------------------------
    @staticmethod
    def _row(row: tuple[Any, ...]) -> Credential:
        return Credential(
            key_id=row[0],
            secret_sha256=row[1],
            view=ViewGrant.from_json(json.loads(row[2])),
            created_ms=row[3],
            expires_ms=row[4],
            revoked_ms=row[5],
            description=row[6],
        )

    def find(self, key_id: str) -> Credential | None:
        if not _KEY_ID_RE.match(key_id or ""):
            return None
        row = (
            self._conn()
            .execute("SELECT * FROM endpoint_credentials WHERE key_id=?", (key_id,))
            .fetchone()
        )
        return None if row is None else self._row(row)

    def get(self, key_id: str) -> Credential:
        cred = self.find(key_id)
        if cred is None:
            raise NotFound(
                f"There is no view credential {key_id!r}; `infinstor-jlab endpoint credentials "
                "--list` lists them."
            )
        return cred

    def list(self) -> list[Credential]:
        rows = (
            self._conn()
            .execute("SELECT * FROM endpoint_credentials ORDER BY created_ms DESC")
            .fetchall()
        )
        return [self._row(r) for r in rows]

    def verify_secret(self, cred: Credential) -> str | None:
        """The credential's secret, if the master key still derives the one issued."""
        secret = self.secret_for(cred.key_id)
        return secret if hmac.compare_digest(_hash(secret), cred.secret_sha256) else None

    # -- where the endpoint runs --------------------------------------------------------------
    def record_endpoint(self, url: str) -> None:
        """The URL of the endpoint last started on this index (credentials name it)."""
        self._conn().execute(
            "INSERT OR REPLACE INTO endpoint_credentials_meta VALUES('endpoint_url', ?)", (url,)
        )

    def recorded_endpoint(self) -> str | None:
        row = (
            self._conn()
            .execute("SELECT value FROM endpoint_credentials_meta WHERE name='endpoint_url'")
            .fetchone()
        )
        return row[0] if row else None


_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoint_credentials_meta(
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoint_credentials(
    key_id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    view TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT,
    revoked_ms BIGINT,
    description TEXT NOT NULL DEFAULT ''
);
"""

#: Where a team's servers read the endpoint master key from, when the admin keeps it out of
#: the shared database (a file mounted into every single-user server).
MASTER_KEY_FILE_ENV = "INFINSTOR_ENDPOINT_KEY_FILE"


class PgCredentialStore(CredentialStore):
    """The credentials table on a shared PostgreSQL index database: a credential issued by
    one user's server is accepted by every endpoint of the team.

    Secrets stay derived and only their SHA-256 is stored, as on SQLite. Every endpoint must
    derive the same secret, so the master key is shared too: the file named by
    ``$INFINSTOR_ENDPOINT_KEY_FILE`` when the admin provides one (then a copy of the database
    alone still lets nobody sign), else 32 random bytes kept in the database itself (made
    once, by whichever server comes first; then whoever can read the database can derive
    the secrets, as whoever can read the SQLite file and its key file can)."""

    def __init__(self, url: str) -> None:  # its own: no SQLite file, no sqlite3 connection
        from ..pg import connection

        self.path = url
        self.url = url
        self.key_path = os.environ.get(MASTER_KEY_FILE_ENV) or ""
        self._master = None
        self._lock = threading.Lock()
        with connection(url) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('infinstor:credential-schema'))")
            conn.execute(_PG_SCHEMA)
            row = conn.execute(
                "SELECT value FROM endpoint_credentials_meta WHERE name='schema_version'"
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO endpoint_credentials_meta VALUES('schema_version', %s)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise BadRequest(
                    "The view credentials in this PostgreSQL index were written by a newer "
                    f"infinstor_jlab (schema {row[0]}); upgrade infinstor_jlab to use them."
                )

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        from ..pg import connection, qmarks

        with connection(self.url) as conn:
            cur = conn.execute(qmarks(sql), params)
            rows = cur.fetchall() if cur.description is not None else []
            return rows, cur.rowcount

    def _master_key(self) -> bytes:
        if self._master is None:
            if self.key_path:
                self._master = _load_or_create_master_key(self.key_path)
            else:
                fresh = base64.b64encode(secrets.token_bytes(32)).decode()
                # Whoever comes first makes it; everyone reads the one that won.
                self._exec(
                    "INSERT INTO endpoint_credentials_meta VALUES('master_key', ?) "
                    "ON CONFLICT(name) DO NOTHING",
                    (fresh,),
                )
                rows, _ = self._exec(
                    "SELECT value FROM endpoint_credentials_meta WHERE name='master_key'"
                )
                self._master = base64.b64decode(rows[0][0])
        return self._master

    def issue(
        self, view: ViewGrant, *, expires_ms: int | None, description: str = ""
    ) -> tuple[Credential, str]:
        key_id = KEY_ID_PREFIX + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
        secret = self.secret_for(key_id)
        cred = Credential(
            key_id=key_id,
            secret_sha256=_hash(secret),
            view=view,
            created_ms=now_ms(),
            expires_ms=expires_ms,
            revoked_ms=None,
            description=description,
        )
        self._exec(
            "INSERT INTO endpoint_credentials VALUES(?,?,?,?,?,?,?)",
            _credential_row(cred),
        )
        return cred, secret

    def revoke(self, key_id: str) -> Credential:
        _, count = self._exec(
            "UPDATE endpoint_credentials SET revoked_ms=? WHERE key_id=? AND revoked_ms IS NULL",
            (now_ms(), key_id),
        )
        if count == 0:
            self.get(key_id)
        return self.get(key_id)

    _COLUMNS = "key_id, secret_sha256, view, created_ms, expires_ms, revoked_ms, description"

    def find(self, key_id: str) -> Credential | None:
        if not _KEY_ID_RE.match(key_id or ""):
            return None
        rows, _ = self._exec(
            f"SELECT {self._COLUMNS} FROM endpoint_credentials WHERE key_id=?", (key_id,)
        )
        return self._row(rows[0]) if rows else None

    def list(self) -> list[Credential]:
        rows, _ = self._exec(
            f"SELECT {self._COLUMNS} FROM endpoint_credentials ORDER BY created_ms DESC"
        )
        return [self._row(r) for r in rows]

    def record_endpoint(self, url: str) -> None:
        self._exec(
            "INSERT INTO endpoint_credentials_meta VALUES('endpoint_url', ?) "
            "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
            (url,),
        )

    def recorded_endpoint(self) -> str | None:
        rows, _ = self._exec(
            "SELECT value FROM endpoint_credentials_meta WHERE name='endpoint_url'"
        )
        return rows[0][0] if rows else None


def open_credential_store(index: Any) -> CredentialStore:
    """The credential store of an index: its PostgreSQL database (a backend with a
    ``postgresql://`` ``url``), else its SQLite file."""
    from ..pg import is_postgres_url

    url = getattr(index, "url", None)
    if isinstance(url, str) and is_postgres_url(url):
        return PgCredentialStore(url)
    path = getattr(index, "path", None)
    if not isinstance(path, str):
        raise BadRequest("View credentials need an index file (sqlite:///path) or PostgreSQL.")
    if is_postgres_url(path):
        return PgCredentialStore(path)
    return CredentialStore(path)


class CredentialService:
    """Issues view credentials for views named any way the view resolver understands."""

    def __init__(self, service: Any, store: CredentialStore) -> None:
        self.service = service
        self.store = store

    @classmethod
    def for_service(cls, service: Any) -> CredentialService:
        return cls(service, open_credential_store(service.index))

    def resolve_grant(
        self, view: str, *, bucket: str | None = None, prefix: str | None = None
    ) -> ViewGrant:
        """A view text (any time-spec form, ``label:/x``, ``run:/id``) with an optional
        bucket and prefix -> absolute times over one bucket (or all), checked now."""
        from .core import check_bucket_name
        from .views import LABEL_SCHEME, refuse_future

        text = (view or "").strip()
        if not text:
            raise BadRequest(
                "Name the view: a time spec (tm20261101000000, an ISO time, now), a slice "
                "(A/B), label:/NAME or run:/RUN_ID."
            )
        views = self.service.views
        if text.startswith(LABEL_SCHEME):
            v = views.label_view(text)
            if bucket and bucket != v.bucket:
                raise BadRequest(
                    f"Label {v.spec.label!r} is a view of bucket {v.bucket!r}, not {bucket!r}."
                )
            label_prefix = v.within or ""
            if prefix and not prefix.startswith(label_prefix):
                raise BadRequest(
                    f"Label {v.spec.label!r} holds only s3://{v.bucket}/{label_prefix}; give a "
                    "--prefix under it (or none)."
                )
            return ViewGrant(
                bucket=v.bucket,
                prefix=prefix or label_prefix,
                kind=v.spec.kind,
                end_ms=v.spec.end_ms,
                start_ms=v.spec.start_ms,
                spec_text=text,
                label=v.spec.label,
            )
        spec = views.parse_spec(text, default_now=False)
        refuse_future(spec)
        if bucket:
            check_bucket_name(bucket)
            self.service.require_access(bucket)
            self.service.index.get_bucket(bucket)  # unknown bucket -> a sentence, 404
            # A view after the last full sync: read the prefix again first, as a label does,
            # so the credential pins what S3 held then (not what the index happened to hold).
            self.service.index_through(bucket, prefix or "", spec)
        else:
            for record in self.service.index.list_buckets():
                if not self.service.access.readable(record.name):
                    continue  # the endpoint refuses it to these credentials anyway
                self.service.index_through(record.name, prefix or "", spec, record=record)
        return ViewGrant(
            bucket=bucket or None,
            prefix=prefix or "",
            kind=spec.kind,
            end_ms=spec.end_ms,
            start_ms=spec.start_ms,
            spec_text=text,
            label=spec.label,
        )

    def issue(
        self,
        view: str,
        *,
        bucket: str | None = None,
        prefix: str | None = None,
        expires: str | None = DEFAULT_EXPIRES,
        description: str = "",
    ) -> tuple[Credential, str]:
        grant = self.resolve_grant(view, bucket=bucket, prefix=prefix)
        expires_ms = now_ms() + parse_duration_ms(expires) if expires else None
        return self.store.issue(grant, expires_ms=expires_ms, description=description)

    def list(self) -> list[Credential]:
        return self.store.list()

    def revoke(self, key_id: str) -> Credential:
        return self.store.revoke(key_id)


def credential_document(cred: Credential, secret: str, endpoint_url: str) -> dict[str, Any]:
    """The JSON a client is configured from."""
    return {
        "endpoint_url": endpoint_url,
        "aws_access_key_id": cred.key_id,
        "aws_secret_access_key": secret,
        "region": "us-east-1",
        "view": cred.view.to_json(),
        "expires": format_iso(cred.expires_ms) if cred.expires_ms is not None else None,
    }
