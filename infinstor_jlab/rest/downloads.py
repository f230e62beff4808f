"""Single-use download tickets: a link that carries no Jupyter token."""

from __future__ import annotations

import tornado.web
from jupyter_server.auth.decorator import authorized

from .base import (
    DOWNLOAD_TICKET_INVALID_MESSAGE,
    DOWNLOAD_TICKET_OTHER_USER_MESSAGE,
    InfinstorAPIHandler,
    _resolve_object,
    allow_unauthenticated,
    download_tickets,
    http_error,
)
from .views import ObjectHandler


class DownloadsHandler(InfinstorAPIHandler):
    """``POST /infinstor/downloads``: a single-use link that downloads the version a view (or
    a version id) names, so that the browser's download URL carries no Jupyter token (see
    :mod:`infinstor_jlab.rest.download_tickets`). Needs only read access: it reads."""

    @tornado.web.authenticated
    @authorized("read")
    async def post(self):
        body = self.json_body()
        bucket = self.body_str(body, "bucket", required=True)
        key = self.body_str(body, "key", required=True)
        version_id, at, slice_, label = (
            (self.body_str(body, name) or "").strip() or None
            for name in ("version_id", "at", "slice", "label")
        )
        if not bucket or not key:
            raise http_error(400, 'The request body needs a non-empty "bucket" and "key".')
        service = self.service
        obj, _ = await self.run(
            lambda: _resolve_object(service, bucket, key, version_id, at, slice_, label),
            query=True,
        )
        ticket = download_tickets(self.settings).issue(self.current_user, bucket, obj)
        url = self.api_url("downloads", ticket.id)
        self.set_header("Location", url)
        self.set_header("Cache-Control", "no-store")
        self.write_json(
            {
                "ticket": ticket.id,
                "url": url,
                "expires_ms": ticket.expires_ms,
                "bucket": bucket,
                "key": obj.key,
                "version_id": obj.version_id,
                "size": obj.size,
            },
            status=201,
        )


class DownloadHandler(ObjectHandler):
    """``GET /infinstor/downloads/{ticket}``: stream the version a ticket names (what
    ``ObjectHandler`` streams for ``download=1``). The ticket is the credential: it is spent
    before anything else happens, and the request runs as the user it was issued to (a
    request signed in as someone else is refused). Authentication and authorization then
    check that user as for every route."""

    async def prepare(self) -> None:  # type: ignore[override]
        ticket_id = self.path_kwargs.get("ticket", "")
        ticket = download_tickets(self.settings).redeem(ticket_id)
        await super().prepare()
        if ticket is None:
            raise http_error(403, DOWNLOAD_TICKET_INVALID_MESSAGE)
        user = self.current_user
        if user is not None and getattr(user, "username", None) != getattr(
            ticket.user, "username", None
        ):
            raise http_error(403, DOWNLOAD_TICKET_OTHER_USER_MESSAGE)
        self.current_user = self._jupyter_current_user = ticket.user
        self._ticket = ticket

    @allow_unauthenticated
    @tornado.web.authenticated
    @authorized("read")
    async def get(self, ticket: str):
        await self._download(self._ticket.bucket, self._ticket.obj)
