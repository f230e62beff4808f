"""PostgreSQL snapshot index (psycopg 3, a connection pool): one index shared by a team.

Same answers as the SQLite index (the chain logic is shared); the queries are PostgreSQL's
own: a listing page is one recursive loose index scan, bulk writes go through COPY. See
:mod:`infinstor_jlab.index.postgres.schema` for the layout.
"""

from __future__ import annotations

from .schema import SCHEMA_VERSION
from .store import PostgresSnapshotIndex

__all__ = ["SCHEMA_VERSION", "PostgresSnapshotIndex"]
