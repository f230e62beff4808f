"""Tornado handlers of the infinstor_jlab REST API: thin adapters over the service layer.

Every route lives under ``<base_url>/infinstor/``; ``openapi.yaml`` next to this file documents
them (and ``tests/test_openapi.py`` keeps the two in step). A handler parses its input, runs
the service call in the extension's thread pool (the event loop never waits on S3 or SQL), and
answers JSON. A user's mistake comes back as ``{"message": "<a sentence that says what to
do>"}`` with 400 (bad input), 404 (unknown name), 409 (conflict), 403 or 502 (the object store
refused or failed); 500 is kept for our own bugs, which are logged with their traceback.

Object keys and prefixes are data handed to the service; they never touch the filesystem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import Executor
from http.client import responses
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import tornado.log
import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError

try:
    from jupyter_server.auth.decorator import allow_unauthenticated
except ImportError:  # jupyter_server < 2.13 refuses no unauthenticated request by itself

    def allow_unauthenticated(method):  # type: ignore[no-redef]
        return method


from . import __version__
from .download_tickets import DownloadTickets
from .errors import InfinstorError
from .timespec import accepted_forms_message

#: Resource name checked by the server's Authorizer for every infinstor_jlab endpoint.
AUTH_RESOURCE = "infinstor"

#: Keys of the Tornado settings that ``InfinstorApp.initialize_settings`` fills (the same
#: values as ``app.SERVICE_KEY`` etc.; repeated here because app.py imports this module).
SERVICE_KEY = "infinstor_service"
EXECUTOR_KEY = "infinstor_executor"
QUERY_EXECUTOR_KEY = "infinstor_query_executor"
CONFIG_KEY = "infinstor_config"

#: Bytes read from S3 per step of a download (each read runs in the thread pool).
DOWNLOAD_CHUNK_BYTES = 1 << 20
MAX_KEYS_LIMIT = 1000
MAX_TIMELINE_BINS = 10_000
DEFAULT_PREVIEW_MAX_BYTES = 1_048_576
#: S3's limit on a key, in UTF-8 bytes; a longer key, prefix or start_after names nothing.
MAX_KEY_BYTES = 1024
#: Query parameters that hold a key or a key prefix.
KEY_PARAMS = ("key", "prefix", "start_after")
#: The longest request target (path and query) we read: several keys at their 1024-byte
#: limit, percent-encoded, and a page token fit with room to spare. Tornado is set to read
#: request heads up to ``app.MAX_HEADER_BYTES``, so a longer one is answered by us (a 400),
#: not dropped.
MAX_URI_BYTES = 32 * 1024
_ASCII_INT = re.compile(r"-?[0-9]{1,18}")

INTERNAL_ERROR_MESSAGE = (
    "infinstor_jlab failed unexpectedly while handling this request; the Jupyter server log "
    "has the details."
)
NOT_STARTED_MESSAGE = (
    "The infinstor_jlab server extension did not start (its settings are missing); the "
    "Jupyter server log says why."
)
BAD_BODY_MESSAGE = "The request body must be a JSON object."
DOWNLOAD_TICKET_INVALID_MESSAGE = (
    "This download link has expired or was already used (a link works once, for a minute); "
    "start the download again from the InfinStor sidebar."
)
DOWNLOAD_TICKET_OTHER_USER_MESSAGE = (
    "This download link was made for another Jupyter user; start the download from your own "
    "InfinStor sidebar."
)
DOWNLOAD_TICKETS_KEY = "infinstor_download_tickets"

T = TypeVar("T")

#: Query parameters whose values never reach a log line: any parameter whose name contains one
#: of these (the list jupyter_server's access log scrubs, ``jupyter_server.log``), plus the
#: server's ``extra_log_scrub_param_keys``.
SCRUB_PARAM_KEYS = frozenset({"token", "auth", "key", "code", "state", "xsrf"})


def scrub_uri(uri: str, extra_keys: Any = ()) -> str:
    """``uri`` with the value of every sensitive query parameter replaced by ``[secret]``, as
    jupyter_server's access log writes it (``?token=abc&x=1`` -> ``?token=[secret]&x=1``)."""
    keys = SCRUB_PARAM_KEYS.union(extra_keys or ())
    parts = urlsplit(uri)
    if not parts.query:
        return uri
    params = parts.query.split("&")
    for i, param in enumerate(params):
        name, sep, _value = param.partition("=")
        if any(k in name.lower() for k in keys):
            params[i] = f"{name}{sep}[secret]"
    return urlunsplit(parts._replace(query="&".join(params)))


def http_error(status: int, message: str) -> tornado.web.HTTPError:
    """An HTTPError that :meth:`InfinstorHandlerMixin.write_error` renders as
    ``{"message": message, "reason": <standard phrase>}`` (the shape jupyter_server's
    ``APIHandler.write_error`` gives). The reason phrase (the HTTP status line) stays the
    standard one, since Tornado refuses arbitrary text there.
    """
    return tornado.web.HTTPError(
        status, log_message=message, reason=responses.get(status, "Unknown")
    )


def download_tickets(settings: dict[str, Any]) -> DownloadTickets:
    """The download tickets of this server (made on first use)."""
    tickets = settings.get(DOWNLOAD_TICKETS_KEY)
    if tickets is None:
        tickets = settings.setdefault(DOWNLOAD_TICKETS_KEY, DownloadTickets())
    return tickets


def _index_schema_version() -> int:
    from .index import SCHEMA_VERSION

    return int(SCHEMA_VERSION)


def _content_disposition(kind: str, key: str) -> str:
    """``attachment; filename="ascii"; filename*=UTF-8''<percent-encoded basename>``."""
    basename = key.rstrip("/").rsplit("/", 1)[-1] or "download"
    fallback = re.sub(r'[^A-Za-z0-9._ -]', "_", basename)[:200] or "download"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(basename, safe='')}"


class InfinstorHandlerMixin:
    """What every infinstor_jlab handler shares: the service, the thread pool, input parsing
    and the mapping of service errors to HTTP answers. Mixed into :class:`APIHandler`."""

    auth_resource = AUTH_RESOURCE

    # -- the extension's shared objects ------------------------------------------------------
    def _setting(self, key: str) -> Any:
        value = self.settings.get(key)  # type: ignore[attr-defined]
        if value is None:
            raise http_error(503, NOT_STARTED_MESSAGE)
        return value

    @property
    def service(self) -> Any:
        """The :class:`~infinstor_jlab.services.InfinstorService` of this server."""
        return self._setting(SERVICE_KEY)

    @property
    def executor(self) -> Executor:
        """The thread pool that runs every blocking call."""
        return self._setting(EXECUTOR_KEY)

    @property
    def query_executor(self) -> Executor:
        """The small thread pool that answers index queries (the general one when absent)."""
        return self.settings.get(QUERY_EXECUTOR_KEY) or self.executor  # type: ignore[attr-defined]

    @property
    def preview_max_bytes(self) -> int:
        config = self.settings.get(CONFIG_KEY) or {}  # type: ignore[attr-defined]
        return int(config.get("preview_max_bytes", DEFAULT_PREVIEW_MAX_BYTES))

    async def run(self, fn: Callable[[], T], *, query: bool = False) -> T:
        """Run a blocking callable in the thread pool; a service error becomes the HTTP error
        it names, anything else is logged as our bug and answered with 500.

        ``query``: work that only reads the index (CPU in Python and SQLite, no S3) runs in
        the query pool, which has about as many threads as cores: more threads would only
        take turns on the GIL and make every answer slower, and a slow S3 call in the
        general pool never holds up a listing."""
        executor = self.query_executor if query else self.executor
        try:
            return await IOLoop.current().run_in_executor(executor, fn)
        except InfinstorError as exc:
            raise http_error(exc.status, exc.message) from exc
        except tornado.web.HTTPError:
            raise
        except Exception as exc:
            self.log.exception(  # type: ignore[attr-defined]
                "infinstor_jlab: %s %s failed",
                self.request.method,  # type: ignore[attr-defined]
                self.request.path,  # type: ignore[attr-defined]
            )
            raise http_error(500, INTERNAL_ERROR_MESSAGE) from exc

    # -- input ------------------------------------------------------------------------------
    async def prepare(self) -> None:
        """Refuse an over-long request target with a sentence (after the server's own checks,
        such as authentication)."""
        result = super().prepare()  # type: ignore[misc]
        if result is not None:
            await result
        uri = self.request.uri or ""  # type: ignore[attr-defined]
        if len(uri) > MAX_URI_BYTES:
            raise http_error(
                400,
                f"The request URL is {len(uri)} bytes long; infinstor_jlab reads at most "
                f"{MAX_URI_BYTES} (an S3 key or prefix is at most {MAX_KEY_BYTES} bytes). "
                "Send a shorter key, prefix or page token.",
            )

    def query(self, name: str) -> str | None:
        """A query parameter exactly as sent (keys and prefixes may start or end with spaces
        and hold control characters, which Tornado's get_query_argument turns into spaces),
        or None when absent; the last one when repeated. A key or prefix parameter longer
        than S3's 1024-byte limit is a 400."""
        values = self.request.query_arguments.get(name)  # type: ignore[attr-defined]
        if not values:
            return None
        try:
            value = values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise http_error(400, f"The {name} query parameter is not valid UTF-8.") from None
        if name in KEY_PARAMS:
            self.check_key_length(name, value)
        return value

    @staticmethod
    def check_key_length(name: str, value: str) -> None:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_KEY_BYTES:
            raise http_error(
                400,
                f"The {name} is {size} bytes long; S3 keys are at most {MAX_KEY_BYTES} bytes "
                "(UTF-8), so no object has it. Send a shorter one.",
            )

    def query_value(self, name: str) -> str | None:
        """A parameter that must not be empty when given: None when absent, 400 when empty
        (an empty value is a mistake, not a request for the default)."""
        value = self.query(name)
        if value is not None and not value.strip():
            raise http_error(
                400, f"The {name} query parameter is empty; give it a value or leave it out."
            )
        return value

    def query_spec(self, name: str) -> str | None:
        """A time-spec parameter: None when absent, 400 when empty."""
        value = self.query(name)
        if value is not None and not value.strip():
            raise http_error(
                400,
                accepted_forms_message(
                    f"The {name} query parameter is empty; give a time spec or leave it out."
                ),
            )
        return value

    def query_bool(self, name: str, default: bool = False) -> bool:
        value = self.query_value(name)
        if value is None:
            return default
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise http_error(400, f"The {name} query parameter must be 1 or 0 (true or false).")

    def query_int(self, name: str, default: int, low: int, high: int) -> int:
        """A whole number in ASCII digits (int() would also read '５' or '١'); absent means
        the default, empty is a 400."""
        value = self.query_value(name)
        if value is None:
            return default
        number = int(value, 10) if _ASCII_INT.fullmatch(value) else None
        if number is None or not low <= number <= high:
            raise http_error(
                400,
                f"{name} must be a whole number between {low} and {high}; got {value[:40]!r}.",
            )
        return number

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object; an empty body is ``{}``."""
        raw = self.request.body  # type: ignore[attr-defined]
        if not raw or not raw.strip():
            return {}
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            doc = None
        if not isinstance(doc, dict):
            raise http_error(400, BAD_BODY_MESSAGE)
        return doc

    @staticmethod
    def body_bool(doc: dict[str, Any], name: str, default: bool) -> bool:
        value = doc.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise http_error(400, f'"{name}" in the request body must be true or false.')
        return value

    @staticmethod
    def body_str(doc: dict[str, Any], name: str, default: str | None = None, *,
                 required: bool = False) -> str | None:
        value = doc.get(name)
        if value is None:
            if required:
                raise http_error(400, f'The request body needs "{name}" (a string).')
            return default
        if not isinstance(value, str):
            raise http_error(400, f'"{name}" in the request body must be a string.')
        return value

    # -- logging ----------------------------------------------------------------------------
    def _request_summary(self) -> str:
        """What Tornado's warning for a 4xx and error for a 5xx name the request by (``GET
        <uri> (<ip>)``): the URI without the Jupyter token (a download link or a script may
        carry ``?token=``), scrubbed as jupyter_server's own access log does."""
        request = self.request  # type: ignore[attr-defined]
        extra = self.settings.get("extra_log_scrub_param_keys", [])  # type: ignore[attr-defined]
        return f"{request.method} {scrub_uri(request.uri, extra)} ({request.remote_ip})"

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Tornado's, except that an uncaught exception is logged with the scrubbed summary
        instead of ``repr(self.request)`` (which holds the URI with its token)."""
        if isinstance(value, tornado.web.HTTPError):
            super().log_exception(typ, value, tb)  # type: ignore[misc]
            return
        tornado.log.app_log.error(
            "Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb)
        )

    # -- output -----------------------------------------------------------------------------
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """``{"message": <the sentence>, "reason": <phrase>}``, as ``APIHandler.write_error``
        writes it, except that the message is exactly the sentence: Tornado's
        ``HTTPError.log_message`` doubles every '%' of a message without format arguments."""
        exc_info = kwargs.get("exc_info") or (None, None, None)
        exc = exc_info[1]
        reason = None
        if isinstance(exc, tornado.web.HTTPError):
            get_message = getattr(exc, "get_message", None)
            if get_message is not None:
                message = get_message()
            else:
                message = exc.log_message % exc.args if exc.args else exc.log_message
            reason = exc.reason
        elif exc is not None:
            message = INTERNAL_ERROR_MESSAGE
        else:
            message = None
        message = message or responses.get(status_code, "Unknown HTTP Error")
        self.set_header("Content-Type", "application/json")  # type: ignore[attr-defined]
        self.finish(json.dumps({"message": message, "reason": reason}))  # type: ignore[attr-defined]

    def write_json(self, doc: Any, status: int = 200) -> None:
        self.set_status(status)  # type: ignore[attr-defined]
        self.finish(json.dumps(doc))  # type: ignore[attr-defined]

    def write_json_text(self, text: str, status: int = 200) -> None:
        """Answer JSON already encoded (in the thread pool)."""
        self.set_status(status)  # type: ignore[attr-defined]
        self.set_header("Content-Type", "application/json")  # type: ignore[attr-defined]
        self.finish(text)  # type: ignore[attr-defined]

    def no_content(self) -> None:
        self.set_status(204)  # type: ignore[attr-defined]
        self.finish()  # type: ignore[attr-defined]

    def api_url(self, *parts: str) -> str:
        base = self.base_url  # type: ignore[attr-defined]
        return url_path_join(base, "infinstor", *(quote(p, safe="") for p in parts))


class InfinstorAPIHandler(InfinstorHandlerMixin, APIHandler):
    """Base class of the handlers below."""


def _resolve_object(service: Any, bucket: str, key: str, version_id: str | None,
                    at: str | None, slice_: str | None, label: str | None) -> tuple[Any, Any]:
    """The version of ``key`` that an explicit version id or a view names, and the view's
    spec (None for a version id)."""
    if version_id:
        return service.resolve_object(bucket, key, version_id=version_id), None
    view = service.views.resolve_view(bucket, at=at, slice_=slice_, label=label)
    return service.resolve_object(bucket, key, spec=view.spec, within=view.within), view.spec


class HealthHandler(InfinstorAPIHandler):
    """``GET /infinstor/health``: the extension's version and its index schema version."""

    @tornado.web.authenticated
    @authorized
    def get(self):
        self.finish(
            json.dumps({"version": __version__, "index_schema_version": _index_schema_version()})
        )


class BucketsHandler(InfinstorAPIHandler):
    """``GET /infinstor/buckets``: buckets the credentials see plus every tracked bucket."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        service = self.service
        buckets = await self.run(service.list_buckets)
        self.write_json({"buckets": buckets})


class TrackHandler(InfinstorAPIHandler):
    """``POST``/``DELETE /infinstor/buckets/{bucket}/track``."""

    @tornado.web.authenticated
    @authorized
    async def post(self, bucket: str):
        body = self.json_body()
        events = self.body_bool(body, "events", False)
        consent = self.body_bool(body, "enable_versioning", False)
        service = self.service

        def work() -> dict[str, Any]:
            before = service.track(bucket, enable_versioning_consent=consent, events=events)
            job = service.start_sync_job(bucket)
            doc = service.bucket_status(bucket)
            doc["versioning_before"] = before
            doc["sync_job"] = job.id
            return doc

        self.write_json(await self.run(work))

    @tornado.web.authenticated
    @authorized
    async def delete(self, bucket: str):
        forget = self.query_bool("forget")
        service = self.service
        await self.run(lambda: service.untrack(bucket, forget_history=forget))
        self.no_content()


class SyncHandler(InfinstorAPIHandler):
    """``POST /infinstor/buckets/{bucket}/sync``: start (or join) a background sync."""

    @tornado.web.authenticated
    @authorized
    async def post(self, bucket: str):
        full = self.body_bool(self.json_body(), "full", False)
        service = self.service
        job = await self.run(lambda: service.start_sync_job(bucket, full=full))
        self.set_header("Location", self.api_url("syncs", job.id))
        self.write_json({"id": job.id, **job.to_json()}, status=202)


class SyncJobHandler(InfinstorAPIHandler):
    """``GET /infinstor/syncs/{job_id}``: progress of a sync job."""

    @tornado.web.authenticated
    @authorized
    async def get(self, job_id: str):
        service = self.service
        job = await self.run(lambda: service.get_sync_job(job_id))
        self.write_json(job.to_json())


class ObjectsHandler(InfinstorAPIHandler):
    """``GET /infinstor/buckets/{bucket}/objects``: one page of a snapshot or slice."""

    @tornado.web.authenticated
    @authorized
    async def get(self, bucket: str):
        prefix = self.query("prefix")
        delimiter_arg = self.query("delimiter")
        delimiter = "/" if delimiter_arg is None else (delimiter_arg or None)
        max_keys = self.query_int("max_keys", MAX_KEYS_LIMIT, 1, MAX_KEYS_LIMIT)
        # Not "token": Jupyter reads ?token= as its own auth token (and refuses a wrong one).
        token = self.query_value("page_token")
        start_after = self.query("start_after") or None
        at, slice_, label = (self.query_spec(n) for n in ("at", "slice", "label"))
        service = self.service

        def work() -> str:
            view = service.views.resolve_view(bucket, at=at, slice_=slice_, label=label,
                                              prefix=prefix)
            # Encoded in the pool (the event loop only sends the text), and cached until
            # the next commit to the index.
            return service.list_objects_json(
                bucket,
                spec=view.spec,
                prefix=view.prefix,
                delimiter=delimiter,
                max_keys=max_keys,
                token=token,
                start_after=start_after,
                within=view.within,
                extra={
                    "bucket": bucket,
                    "prefix": view.prefix,
                    "delimiter": delimiter,
                    "spec": view.spec.to_dict(),
                },
            )

        self.write_json_text(await self.run(work, query=True))


class ObjectHandler(InfinstorAPIHandler):
    """``GET /infinstor/buckets/{bucket}/object?key=``: metadata, download or preview of the
    version of one key that a view (or an explicit version id) names."""

    @tornado.web.authenticated
    @authorized
    async def get(self, bucket: str):
        key = self.query("key")
        if not key:
            raise http_error(400, "The key query parameter is required (the object's full key).")
        version_id = self.query_value("version_id")
        at, slice_, label = (self.query_spec(n) for n in ("at", "slice", "label"))
        download = self.query_bool("download")
        preview = self.query_bool("preview")
        if download and preview:
            raise http_error(400, "Ask for either download=1 or preview=1, not both.")
        if version_id and (at or slice_ or label):
            raise http_error(
                400, "Give either version_id or a view (at, slice or label), not both."
            )
        service = self.service
        obj, spec = await self.run(
            lambda: _resolve_object(service, bucket, key, version_id, at, slice_, label),
            query=True,
        )
        if preview:
            await self._preview(bucket, obj)
        elif download:
            await self._download(bucket, obj)
        else:
            doc = obj.to_history_json()
            doc.update({"bucket": bucket, "content_type": service.content_type_for(obj.key)})
            if spec is not None:  # resolved through a view, not an explicit version id
                doc["spec"] = spec.to_dict()
            self.write_json(doc)

    async def _preview(self, bucket: str, obj: Any) -> None:
        service = self.service
        max_bytes = self.preview_max_bytes
        data, ctype, truncated = await self.run(
            lambda: service.preview_object(obj, bucket, max_bytes=max_bytes)
        )
        self.set_header("X-Infinstor-Truncated", "true" if truncated else "false")
        self.set_header("X-Infinstor-Version-Id", obj.version_id)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Disposition", _content_disposition("inline", obj.key))
        self.finish(data, set_content_type=ctype)

    async def _download(self, bucket: str, obj: Any) -> None:
        """Stream exactly that version: each read runs in the pool, each write is flushed
        before the next read, so at most one chunk is held in memory."""
        service = self.service
        resp = await self.run(lambda: service.open_object(obj, bucket))
        body = resp["Body"]
        ctype = service.content_type_for(obj.key)
        length = resp.get("ContentLength")
        self.set_header("Content-Type", ctype)
        self.set_header("Content-Length", str(length if length is not None else obj.size))
        self.set_header("Content-Disposition", _content_disposition("attachment", obj.key))
        self.set_header("X-Infinstor-Version-Id", obj.version_id)
        self.set_header("X-Content-Type-Options", "nosniff")
        try:
            while True:
                chunk = await self.run(lambda: body.read(DOWNLOAD_CHUNK_BYTES))
                if not chunk:
                    break
                self.write(chunk)
                await self.flush()
        except StreamClosedError:
            self.log.debug("infinstor_jlab: client left during the download of %r", obj.key)
            return
        finally:
            body.close()
        self.finish(set_content_type=ctype)


class DownloadsHandler(InfinstorAPIHandler):
    """``POST /infinstor/downloads``: a single-use link that downloads the version a view (or
    a version id) names, so that the browser's download URL carries no Jupyter token (see
    :mod:`infinstor_jlab.download_tickets`). Needs only read access: it reads."""

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
        if version_id and (at or slice_ or label):
            raise http_error(
                400, "Give either version_id or a view (at, slice or label), not both."
            )
        service = self.service
        obj, _ = await self.run(
            lambda: _resolve_object(service, bucket, key, version_id, at, slice_, label),
            query=True,
        )
        ticket = download_tickets(self.settings).issue(self.current_user, bucket, obj)
        url = self.api_url("downloads", ticket.id)
        self.set_header("Location", url)
        self.set_header("Cache-Control", "no-store")
        self.write_json({
            "ticket": ticket.id,
            "url": url,
            "expires_ms": ticket.expires_ms,
            "bucket": bucket,
            "key": obj.key,
            "version_id": obj.version_id,
            "size": obj.size,
        }, status=201)


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


class HistoryHandler(InfinstorAPIHandler):
    """``GET /infinstor/buckets/{bucket}/history?key=``: every known version, newest first."""

    @tornado.web.authenticated
    @authorized
    async def get(self, bucket: str):
        key = self.query("key")
        if not key:
            raise http_error(400, "The key query parameter is required (the object's full key).")
        service = self.service
        versions = await self.run(lambda: service.history(bucket, key), query=True)
        self.write_json({
            "bucket": bucket,
            "key": key,
            "versions": [v.to_history_json() for v in versions],
        })


class DiffHandler(InfinstorAPIHandler):
    """``GET /infinstor/buckets/{bucket}/diff?from=&to=``: what changed between two times."""

    @tornado.web.authenticated
    @authorized
    async def get(self, bucket: str):
        prefix = self.query("prefix") or ""
        from_text, to_text = self.query_spec("from"), self.query_spec("to")
        service = self.service

        def work() -> dict[str, Any]:
            from_spec, to_spec = service.views.resolve_diff(from_text, to_text)
            result = service.diff(bucket, prefix=prefix, from_spec=from_spec, to_spec=to_spec)
            doc = result.to_json()
            doc.update({
                "bucket": bucket,
                "prefix": prefix,
                "from": from_spec.to_dict(),
                "to": to_spec.to_dict(),
                "counts": {
                    "added": len(result.added),
                    "deleted": len(result.deleted),
                    "modified": len(result.modified),
                },
            })
            return doc

        self.write_json(await self.run(work, query=True))


class TimelineHandler(InfinstorAPIHandler):
    """``GET /infinstor/buckets/{bucket}/timeline``: versions created/deleted per time bin."""

    @tornado.web.authenticated
    @authorized
    async def get(self, bucket: str):
        prefix = self.query("prefix") or ""
        from_text, to_text = self.query_spec("from"), self.query_spec("to")
        bins = self.query_int("bins", 100, 1, MAX_TIMELINE_BINS)
        service = self.service

        def work() -> dict[str, Any]:
            from_ms, to_ms = service.views.time_window(from_text, to_text)
            timeline = service.timeline(bucket, prefix=prefix, from_ms=from_ms, to_ms=to_ms,
                                        bins=bins)
            return timeline.to_json()

        self.write_json(await self.run(work, query=True))


class LabelsHandler(InfinstorAPIHandler):
    """``GET``/``POST /infinstor/labels``: list labels, create one."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        bucket = self.query_value("bucket")
        service = self.service
        labels = await self.run(lambda: service.list_labels(bucket), query=True)
        self.write_json({"labels": [label.to_json() for label in labels]})

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body()
        name = self.body_str(body, "name", required=True)
        bucket = self.body_str(body, "bucket", required=True)
        prefix = self.body_str(body, "prefix", "")
        at = self.body_str(body, "at")
        slice_ = self.body_str(body, "slice")
        description = self.body_str(body, "description", "")
        self.check_key_length("prefix", prefix or "")
        service = self.service

        def work() -> Any:
            # "at" absent or empty: now.
            view = service.views.resolve_pin(bucket, prefix, at=at, slice_=slice_)
            return service.create_label(name, bucket, view.prefix, view.spec,
                                        description=description)

        label = await self.run(work)
        self.set_header("Location", self.api_url("labels", label.name))
        self.write_json(label.to_json(), status=201)


class LabelHandler(InfinstorAPIHandler):
    """``GET``/``DELETE /infinstor/labels/{name}``."""

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str):
        service = self.service
        label = await self.run(lambda: service.get_label(name), query=True)
        self.write_json(label.to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str):
        service = self.service
        await self.run(lambda: service.delete_label(name))
        self.no_content()


class LabelVerifyHandler(InfinstorAPIHandler):
    """``POST /infinstor/labels/{name}/verify``: does the label still resolve to its bytes?"""

    @tornado.web.authenticated
    @authorized
    async def post(self, name: str):
        check_s3 = self.body_bool(self.json_body(), "check_s3", True)
        service = self.service
        report = await self.run(lambda: service.verify_label(name, check_s3=check_s3))
        self.write_json(report.to_json())


class TimespecHandler(InfinstorAPIHandler):
    """``GET /infinstor/timespec?spec=``: parse a time spec the way every other route does."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        text = self.query_spec("spec")
        if text is None:
            raise http_error(400, accepted_forms_message("The spec query parameter is required."))
        service = self.service
        spec = await self.run(lambda: service.views.parse_spec(text, default_now=False),
                              query=True)
        self.write_json(spec.to_dict())


_BUCKET = r"(?P<bucket>[^/]+)"
_LABEL = r"(?P<name>[^/]+)"
_JOB = r"(?P<job_id>[^/]+)"
_TICKET = r"(?P<ticket>[^/]+)"


def _route(*parts: str) -> str:
    return url_path_join("/infinstor", *parts)


#: Patterns relative to the server's base_url (ExtensionApp prepends it). Path parameters are
#: named groups; their names are the path parameters of openapi.yaml.
default_handlers = [
    (_route("health"), HealthHandler),
    (_route("buckets"), BucketsHandler),
    (_route("buckets", _BUCKET, "track"), TrackHandler),
    (_route("buckets", _BUCKET, "sync"), SyncHandler),
    (_route("buckets", _BUCKET, "objects"), ObjectsHandler),
    (_route("buckets", _BUCKET, "object"), ObjectHandler),
    (_route("buckets", _BUCKET, "history"), HistoryHandler),
    (_route("buckets", _BUCKET, "diff"), DiffHandler),
    (_route("buckets", _BUCKET, "timeline"), TimelineHandler),
    (_route("syncs", _JOB), SyncJobHandler),
    (_route("labels"), LabelsHandler),
    (_route("labels", _LABEL), LabelHandler),
    (_route("labels", _LABEL, "verify"), LabelVerifyHandler),
    (_route("timespec"), TimespecHandler),
    (_route("downloads"), DownloadsHandler),
    (_route("downloads", _TICKET), DownloadHandler),
]
