"""The REST adapter's base: one handler class that every route's handler extends.

The REST API: thin adapters over the service layer.

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
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import tornado.log
import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop

try:
    from jupyter_server.auth.decorator import allow_unauthenticated
except ImportError:  # jupyter_server < 2.13 refuses no unauthenticated request by itself

    def allow_unauthenticated(method):  # type: ignore[no-redef]
        return method


from ..errors import BadRequest, InfinstorError
from ..timespec import accepted_forms_message
from .download_tickets import DownloadTickets

if TYPE_CHECKING:
    from ..services import InfinstorService

#: Resource name checked by the server's Authorizer for every infinstor_jlab endpoint.
AUTH_RESOURCE = "infinstor"

#: Keys of the Tornado settings that ``InfinstorApp.initialize_settings`` fills.
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
    from ..index import SCHEMA_VERSION

    return int(SCHEMA_VERSION)


def _content_disposition(kind: str, key: str) -> str:
    """``attachment; filename="ascii"; filename*=UTF-8''<percent-encoded basename>``."""
    basename = key.rstrip("/").rsplit("/", 1)[-1] or "download"
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", basename)[:200] or "download"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(basename, safe='')}"


class InfinstorAPIHandler(APIHandler):
    """Base of every infinstor_jlab handler: the service (typed), the thread pools, input
    parsing and the mapping of service errors to HTTP answers."""

    auth_resource = AUTH_RESOURCE

    # -- the extension's shared objects ------------------------------------------------------
    def _setting(self, key: str) -> Any:
        value = self.settings.get(key)
        if value is None:
            raise http_error(503, NOT_STARTED_MESSAGE)
        return value

    @property
    def service(self) -> InfinstorService:
        """The service layer of this server."""
        return self._setting(SERVICE_KEY)

    @property
    def executor(self) -> Executor:
        """The thread pool that runs every blocking call."""
        return self._setting(EXECUTOR_KEY)

    @property
    def query_executor(self) -> Executor:
        """The small thread pool that answers index queries (the general one when absent)."""
        return self.settings.get(QUERY_EXECUTOR_KEY) or self.executor

    @property
    def preview_max_bytes(self) -> int:
        config = self.settings.get(CONFIG_KEY) or {}
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
            self.log.exception(
                "infinstor_jlab: %s %s failed",
                self.request.method,
                self.request.path,
            )
            raise http_error(500, INTERNAL_ERROR_MESSAGE) from exc

    # -- input ------------------------------------------------------------------------------
    async def prepare(self) -> None:
        """Refuse an over-long request target with a sentence (after the server's own checks,
        such as authentication)."""
        result = super().prepare()  # type: ignore[misc]
        if result is not None:
            await result
        uri = self.request.uri or ""
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
        values = self.request.query_arguments.get(name)
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
        raw = self.request.body
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
    def body_str(
        doc: dict[str, Any], name: str, default: str | None = None, *, required: bool = False
    ) -> str | None:
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
        request = self.request
        extra = self.settings.get("extra_log_scrub_param_keys", [])
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
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message, "reason": reason}))

    def write_json(self, doc: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(doc))

    def write_json_text(self, text: str, status: int = 200) -> None:
        """Answer JSON already encoded (in the thread pool)."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(text)

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()

    def api_url(self, *parts: str) -> str:
        base = self.base_url
        return url_path_join(base, "infinstor", *(quote(p, safe="") for p in parts))


def _resolve_object(
    service: Any,
    bucket: str,
    key: str,
    version_id: str | None,
    at: str | None,
    slice_: str | None,
    label: str | None,
) -> tuple[Any, Any]:
    """The version of ``key`` that an explicit version id or a view names, and the view's
    spec (None for a version id)."""
    if version_id and (at or slice_ or label):
        raise BadRequest("Give either version_id or a view (at, slice or label), not both.")
    if version_id:
        return service.resolve_object(bucket, key, version_id=version_id), None
    view = service.views.resolve_view(bucket, at=at, slice_=slice_, label=label)
    return service.resolve_object(bucket, key, spec=view.spec, within=view.within), view.spec


def route(*parts: str) -> str:
    """A route pattern under ``/infinstor`` (relative to the server's base_url)."""
    return url_path_join("/infinstor", *parts)
