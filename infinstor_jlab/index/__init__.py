"""The snapshot index: every known version of every tracked key, queryable as of any time."""

from __future__ import annotations

import os
import sqlite3

from ..errors import BadRequest, IndexUnavailable
from ..redact import safe_uri
from .base import MAX_KEYS_LIMIT, SnapshotIndex
from .models import (
    BucketRecord,
    DiffResult,
    LabelRecord,
    ListPage,
    ModifiedEntry,
    ObjectVersion,
    SyncCheckpoint,
    Timeline,
    VersionEntry,
)
from .sqlite import SCHEMA_VERSION, SqliteSnapshotIndex, prefix_end

INDEX_URL_ENV = "INFINSTOR_INDEX_URL"

__all__ = [
    "INDEX_URL_ENV",
    "MAX_KEYS_LIMIT",
    "SCHEMA_VERSION",
    "BucketRecord",
    "DiffResult",
    "LabelRecord",
    "ListPage",
    "ModifiedEntry",
    "ObjectVersion",
    "SnapshotIndex",
    "SqliteSnapshotIndex",
    "SyncCheckpoint",
    "Timeline",
    "VersionEntry",
    "default_index_url",
    "is_postgres_url",
    "open_index",
    "prefix_end",
    "resolve_index_url",
]


def default_index_url() -> str:
    """A file under the user's Jupyter data directory."""
    from jupyter_core.paths import jupyter_data_dir

    return "sqlite:///" + os.path.join(jupyter_data_dir(), "infinstor", "index.sqlite")


def resolve_index_url(explicit: str | None = None) -> str:
    """``--index`` beats ``INFINSTOR_INDEX_URL`` beats the default location."""
    return explicit or os.environ.get(INDEX_URL_ENV) or default_index_url()


def sqlite_path(url: str) -> str:
    """``sqlite:///relative/path`` or ``sqlite:////absolute/path`` (SQLAlchemy's form);
    a plain filesystem path is accepted too."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :] or ":memory:"
    if "://" in url:
        raise BadRequest(
            f"Unsupported index URL {safe_uri(url)!r}: use sqlite:///path/to/index.sqlite "
            "or postgresql://user@host/database."
        )
    return url


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_index(url: str | None = None) -> SnapshotIndex:
    resolved = resolve_index_url(url)
    if is_postgres_url(resolved):
        # Imported here: psycopg is an optional dependency (the ``postgres`` extra).
        try:
            from .postgres import PostgresSnapshotIndex
        except ImportError as exc:
            raise IndexUnavailable(
                f"The index URL {safe_uri(resolved)} needs PostgreSQL support: "
                "pip install 'infinstor_jlab[postgres]'."
            ) from exc
        return PostgresSnapshotIndex(resolved)
    path = sqlite_path(resolved)
    try:
        return SqliteSnapshotIndex(path)
    except (sqlite3.DatabaseError, OSError) as exc:
        # Not a database, a damaged one, or a place this user cannot write: one sentence
        # that names the file and what to do, not a traceback.
        raise IndexUnavailable(
            f"Cannot open the index at {path} ({exc}). Point --index or {INDEX_URL_ENV} at "
            "an infinstor_jlab index, or at a new file to start one."
        ) from exc
