"""PostgreSQL plumbing shared by the stores that live on a shared index database: which URLs
are PostgreSQL's, one connection pool per URL and process, and errors as sentences.

The URL is a libpq URL (``postgresql://user@host/db?sslmode=require``); a password comes
from ``PGPASSWORD`` or ``~/.pgpass`` as libpq reads them, and is never logged or shown (every
message names the URL through :func:`safe_url`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import IndexUnavailable

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
#: Connections per pool: enough for a server's query threads, few enough that a hub of
#: many users stays under PostgreSQL's max_connections (100 by default).
POOL_MAX_SIZE = 8
CONNECT_TIMEOUT_S = 10.0

_pools: dict[str, Any] = {}
_pools_lock = threading.Lock()


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(POSTGRES_SCHEMES)


def safe_url(url: str) -> str:
    """The URL without its password (user, host, port, database and options stay)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}@{host}" if parts.username else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _unavailable(url: str, exc: BaseException) -> IndexUnavailable:
    why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return IndexUnavailable(
        f"Cannot reach the PostgreSQL index at {safe_url(url)} ({why}). Check that the server "
        "runs, the URL (INFINSTOR_INDEX_URL or --index) and the password (PGPASSWORD or "
        "~/.pgpass)."
    )


def _require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise IndexUnavailable(
            "A PostgreSQL index needs psycopg 3: pip install 'infinstor_jlab[postgres]'."
        ) from exc


def pool_for(url: str) -> Any:
    """The process's connection pool for ``url`` (autocommit connections: a store opens its
    own transaction where it needs one), opened on first use."""
    _require_psycopg()
    from psycopg_pool import ConnectionPool

    with _pools_lock:
        pool = _pools.get(url)
        if pool is not None and not pool.closed:
            return pool
        pool = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX_SIZE,
            kwargs={"autocommit": True},
            open=False,
            name="infinstor",
        )
        try:
            pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - any failure to connect is one sentence
            pool.close()
            raise _unavailable(url, exc) from None
        _pools[url] = pool
        return pool


@contextmanager
def connection(url: str) -> Iterator[Any]:
    """A pooled connection (autocommit) for the block."""
    pool = pool_for(url)
    try:
        with pool.connection(timeout=CONNECT_TIMEOUT_S * 3) as conn:
            yield conn
    except Exception as exc:
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            raise _unavailable(url, exc) from exc
        raise


def connect(url: str) -> Any:
    """A connection of its own, outside the pool (held for a long time: an advisory lock
    that lives as long as its session)."""
    _require_psycopg()
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_S))
    except psycopg.OperationalError as exc:
        raise _unavailable(url, exc) from None


def close_pools() -> None:
    """Close every pool of this process (tests; the end of a CLI command)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def qmarks(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s``: the stores keep one text of each
    statement (none of them holds a literal ``?`` or ``%``)."""
    return sql.replace("?", "%s")
