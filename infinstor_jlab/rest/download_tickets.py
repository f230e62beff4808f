"""Single-use, short-lived download tickets: how the browser downloads one object version
without the Jupyter token in the URL.

A browser navigation (an ``<a download>`` click) sends cookies but no ``Authorization``
header, so a download link used to carry ``?token=``, and every failed download wrote the
token to the server log. Instead the sidebar asks for a ticket with an authenticated request
(``POST /infinstor/downloads``), which resolves the view to one version and answers a link
``/infinstor/downloads/<ticket>``; following it streams that version. A ticket:

- is 256 random bits, kept only in this server's memory;
- works once (it is spent when a request for it arrives, whatever the outcome) and for
  :data:`TICKET_TTL_S` seconds;
- names exactly one (bucket, key, version) and stands for the user who asked for it: the
  download runs as that user (who must still be authorized), and a request signed in as
  another user is refused.

Streaming keeps large objects out of the browser's memory (a fetch-and-save-a-Blob download
would hold the whole object there).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Seconds a ticket stays valid: long enough for the browser to follow the link.
TICKET_TTL_S = 60.0
#: Tickets kept at most (the oldest are dropped first); bounds the memory a client can use.
MAX_TICKETS = 1000


@dataclass(frozen=True)
class DownloadTicket:
    id: str
    #: The Jupyter user (``jupyter_server.auth.User``) who asked for the ticket.
    user: Any
    bucket: str
    #: The resolved version (what ``InfinstorService.resolve_object`` returns).
    obj: Any
    #: ``clock()`` value after which the ticket is refused.
    deadline: float
    #: The same moment as UTC epoch milliseconds (for the answer).
    expires_ms: int


class DownloadTickets:
    """The tickets of one server, in memory (thread-safe)."""

    def __init__(
        self,
        ttl_s: float = TICKET_TTL_S,
        max_tickets: int = MAX_TICKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_tickets = max_tickets
        self.clock = clock
        self._tickets: OrderedDict[str, DownloadTicket] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, user: Any, bucket: str, obj: Any) -> DownloadTicket:
        now = self.clock()
        ticket = DownloadTicket(
            id=secrets.token_urlsafe(32),
            user=user,
            bucket=bucket,
            obj=obj,
            deadline=now + self.ttl_s,
            expires_ms=int((time.time() + self.ttl_s) * 1000),
        )
        with self._lock:
            self._purge(now)
            while len(self._tickets) >= self.max_tickets:
                self._tickets.popitem(last=False)
            self._tickets[ticket.id] = ticket
        return ticket

    def redeem(self, ticket_id: str) -> DownloadTicket | None:
        """The ticket, removed (it works once), or None when unknown, spent or expired."""
        with self._lock:
            ticket = self._tickets.pop(ticket_id, None)
        if ticket is None or self.clock() > ticket.deadline:
            return None
        return ticket

    def __len__(self) -> int:
        with self._lock:
            return len(self._tickets)

    def _purge(self, now: float) -> None:
        for ticket_id in [t.id for t in self._tickets.values() if now > t.deadline]:
            del self._tickets[ticket_id]
