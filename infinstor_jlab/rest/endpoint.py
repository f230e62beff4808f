"""The S3 endpoint, seen from the UI: where it runs, and view credentials for it."""

from __future__ import annotations

from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized

from ..errors import BadRequest
from .base import InfinstorAPIHandler, http_error, route

#: Tornado settings keys that ``InfinstorApp.initialize_settings`` fills.
ENDPOINT_KEY = "infinstor_endpoint"  # the EndpointServer, when it runs
ENDPOINT_STATE_KEY = "infinstor_endpoint_state"  # {"enabled", "error"}
CREDENTIALS_KEY = "infinstor_credentials"  # the CredentialService

_NOT_RUNNING = (
    "The S3 endpoint is not running in this Jupyter server (InfinstorApp.endpoint_enabled is "
    "off, or it did not start: the server log says why); run `infinstor-jlab endpoint serve` "
    "and pass its URL as endpoint_url."
)


class _EndpointBase(InfinstorAPIHandler):
    @property
    def endpoint_server(self) -> Any:
        return self.settings.get(ENDPOINT_KEY)

    @property
    def credentials(self) -> Any:
        creds = self.settings.get(CREDENTIALS_KEY)
        if creds is None:
            state = self.settings.get(ENDPOINT_STATE_KEY) or {}
            raise http_error(
                503,
                "View credentials are unavailable in this server"
                + (f": {state['error']}" if state.get("error") else "."),
            )
        return creds

    def endpoint_url(self, given: str | None = None) -> str | None:
        server = self.endpoint_server
        if given:
            return given
        if server is not None:
            return server.url
        creds = self.settings.get(CREDENTIALS_KEY)
        return creds.store.recorded_endpoint() if creds is not None else None


class EndpointHandler(_EndpointBase):
    """``GET /infinstor/endpoint``: where the S3 endpoint of this server listens."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        server = self.endpoint_server
        state = self.settings.get(ENDPOINT_STATE_KEY) or {}
        self.write_json(
            {
                "running": server is not None,
                "enabled": bool(state.get("enabled", False)),
                "url": server.url if server is not None else None,
                "region": server.endpoint.region if server is not None else None,
                "error": state.get("error"),
            }
        )


class CredentialsHandler(_EndpointBase):
    """``GET``/``POST /infinstor/endpoint/credentials``: list, issue."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        creds = self.credentials
        items = await self.run(creds.list, query=True)
        self.write_json({"credentials": [c.to_json() for c in items]})

    @tornado.web.authenticated
    @authorized
    async def post(self):
        from ..services.credentials import DEFAULT_EXPIRES, credential_document

        body = self.json_body()
        view = self.body_str(body, "view", required=True)
        bucket = self.body_str(body, "bucket") or None
        prefix = self.body_str(body, "prefix") or None
        expires = self.body_str(body, "expires", DEFAULT_EXPIRES)
        description = self.body_str(body, "description", "") or ""
        if prefix:
            self.check_key_length("prefix", prefix)
        url = self.endpoint_url()
        if url is None:
            raise http_error(409, _NOT_RUNNING)
        creds = self.credentials

        def work() -> Any:
            if prefix and not bucket and not (view or "").startswith("label:/"):
                raise BadRequest("A prefix needs a bucket: give both (or neither).")
            return creds.issue(
                view or "", bucket=bucket, prefix=prefix, expires=expires, description=description
            )

        cred, secret = await self.run(work)
        doc = credential_document(cred, secret, url)
        doc["credential"] = cred.to_json()
        self.set_header("Cache-Control", "no-store")  # the secret is in it
        self.write_json(doc, status=201)


class CredentialHandler(_EndpointBase):
    """``DELETE /infinstor/endpoint/credentials/{key_id}``: revoke at once."""

    @tornado.web.authenticated
    @authorized
    async def delete(self, key_id: str):
        creds = self.credentials
        cred = await self.run(lambda: creds.revoke(key_id))
        self.write_json(cred.to_json())


endpoint_handlers = [
    (route("endpoint"), EndpointHandler),
    (route("endpoint", "credentials"), CredentialsHandler),
    (route("endpoint", "credentials", r"(?P<key_id>[^/]+)"), CredentialHandler),
]
