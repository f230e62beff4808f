"""The listing scan's statements: one ordered segment of the ``versions`` table."""

from __future__ import annotations

# The scan statements' texts by (bucket id, inclusive start, bounded end, grouped).
_SEGMENT_SQL: dict[tuple[int, bool, bool, bool], str] = {}


def segment_sql(b: int, inclusive: bool, bounded: bool, grouped: bool = False) -> str:
    """Rows (key, t, packed) in key order, newest first within a key; or, ``grouped``,
    only each key's newest row as of the end time, with t and r in one integer
    (``t_r >> 20`` is t): SQLite takes the bare column from the row with the max."""
    sql = _SEGMENT_SQL.get((b, inclusive, bounded, grouped))
    if sql is None:
        cols = "key, max(t * 1048576 + r + 524288), packed" if grouped else "key, t, packed"
        sql = _SEGMENT_SQL[(b, inclusive, bounded, grouped)] = (
            f"SELECT {cols} FROM versions WHERE b={int(b)} AND key "
            + (">= ?" if inclusive else "> ?")
            + (" AND key < ?" if bounded else "")
            + " AND t <= ?"
            + (" GROUP BY key ORDER BY key" if grouped else " ORDER BY key, t DESC, r DESC")
        )
    return sql
