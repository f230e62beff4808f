"""A small cache of encoded listing pages, dropped whenever anything commits to the index.

The sidebar's live view and several users browsing the same folder ask for the same page
again and again; between two commits the answer cannot change. Whether something committed
(in this process or another one, such as a CLI sync) is read from SQLite's
``PRAGMA data_version`` on a connection of this cache that never writes: its value changes
exactly when another connection commits.

Entries are tagged with the generation read *before* the page was computed, so a page
computed from the index as it was before a commit is never served after that commit was
seen.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable


class PageCache:
    def __init__(
        self, db_path: str, *, max_entries: int = 64, max_bytes: int = 32 * 1024 * 1024
    ) -> None:
        self.db_path = db_path
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._lock = threading.Lock()
        self._generation = 0
        self._entries: OrderedDict[Hashable, tuple[int, str]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # Never written through, so its data_version moves with every commit.
            conn = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
            self._local.conn = conn
            self._local.seen = None
        return conn

    def generation(self) -> int:
        """The current generation, after noticing any commit since this thread last looked."""
        version = self._conn().execute("PRAGMA data_version").fetchone()[0]
        with self._lock:
            if version != self._local.seen:
                self._local.seen = version
                self._generation += 1
                self._entries.clear()
                self._bytes = 0
            return self._generation

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._bytes = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], str]) -> str:
        generation = self.generation()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == generation:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[1]
            self.misses += 1
        text = compute()
        with self._lock:
            if generation == self._generation and len(text) <= self.max_bytes // 4:
                old = self._entries.pop(key, None)
                if old is not None:
                    self._bytes -= len(old[1])
                self._entries[key] = (generation, text)
                self._bytes += len(text)
                while self._entries and (
                    len(self._entries) > self.max_entries or self._bytes > self.max_bytes
                ):
                    _, (_, dropped) = self._entries.popitem(last=False)
                    self._bytes -= len(dropped)
        return text

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
