"""The S3-compatible, read-only endpoint: any S3 client reads a view with its own bucket
names and keys; only the endpoint URL and the credentials change.

A thin adapter: the view a credential names comes from the credential store
(:mod:`infinstor_jlab.services.credentials`, views resolved by the one view resolver when the
credential was issued), listings from :meth:`InfinstorService.list_objects` (through the
kernel side's S3-shaped answers, :func:`~infinstor_jlab.kernel.timetravel.listing_response`),
objects from :meth:`InfinstorService.resolve_object` and S3 itself at the view's exact
version ids. It reads S3 with the server's own credentials, so every request is checked
against its credential's bucket and prefix: it is never an open proxy.

Bytes stream with back-pressure through two buffers per download: S3's socket is read
straight into one (in a worker thread) while the other is sent to the client, and a buffer
is read into again only once the client has taken it, so memory per download stays at two
chunks; a client that goes away closes the upstream response.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timezone
from typing import Any
from urllib.parse import unquote

import tornado.httpserver
import tornado.iostream
import tornado.netutil
import tornado.web

from ..errors import AccessDenied, BadRequest, InfinstorError, NotFound, UnknownBucket
from ..index.models import ListPage, ObjectVersion
from ..kernel.timetravel import listing_response
from ..services.credentials import Credential, CredentialStore, ViewGrant
from . import s3xml
from .sigv4 import AuthError, authenticate, split_query

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
DEFAULT_REGION = "us-east-1"

#: Query parameters that select another operation than the plain GET/HEAD of a bucket or
#: an object. The read operations served are location and versioning (buckets); every
#: other one is answered NotImplemented (a read) or AccessDenied (a write), never as a
#: plain listing or object.
_SUBRESOURCES = {
    "accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption",
    "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location", "logging",
    "metadataTable", "metrics", "notification", "object-lock", "ownershipControls",
    "partNumber", "policy", "policyStatus", "publicAccessBlock", "replication",
    "requestPayment", "restore", "retention", "select", "select-type", "session", "tagging",
    "torrent", "uploadId", "uploads", "versioning", "versions", "website",
}  # fmt: skip

_PASS_HEADERS = (
    "content-type",
    "content-length",
    "content-range",
    "etag",
    "last-modified",
    "accept-ranges",
    "content-encoding",
    "content-language",
    "content-disposition",
    "cache-control",
    "expires",
    "x-amz-version-id",
    "x-amz-storage-class",
    "x-amz-server-side-encryption",
    "x-amz-mp-parts-count",
    "x-amz-website-redirect-location",
)
#: S3's checksum headers: sent back (as S3 sends them) only to a client that asked with
#: ``x-amz-checksum-mode: ENABLED`` and only for the whole object (S3 gives none for a
#: range), with the stored version's own values from S3 itself, or none when it has none.
_CHECKSUM_HEADERS = (
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-type",
)
_RESPONSE_OVERRIDES = {
    "response-content-type": "ResponseContentType",
    "response-content-language": "ResponseContentLanguage",
    "response-expires": "ResponseExpires",
    "response-cache-control": "ResponseCacheControl",
    "response-content-disposition": "ResponseContentDisposition",
    "response-content-encoding": "ResponseContentEncoding",
}


class S3Error(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def _denied(message: str) -> S3Error:
    return S3Error(403, "AccessDenied", message)


@dataclass
class Route:
    bucket: str
    key: str
    virtual: bool = False


class Endpoint:
    """The endpoint's state, shared by its request handlers: the service, the credential
    store, a pool of worker threads for blocking work (index and S3 calls)."""

    def __init__(
        self,
        service: Any,
        store: CredentialStore,
        *,
        region: str = DEFAULT_REGION,
        workers: int = 64,
        chunk_size: int = CHUNK,
        virtual_host_bases: tuple[str, ...] = ("localhost",),
    ) -> None:
        self.service = service
        self.store = store
        self.region = region
        self.chunk_size = chunk_size
        self.virtual_host_bases = tuple(b.lower() for b in virtual_host_bases if b)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="infinstor-s3ep")
        self._owners: dict[str, dict[str, str] | None] = {}
        self._s3: Any = None
        self._s3_lock = threading.Lock()

    def s3(self) -> Any:
        """One S3 client for every worker thread (boto3 clients are thread-safe; making one
        per thread costs tens of milliseconds each, under the GIL), with a connection pool
        as large as the worker pool. The service's own client factory when it has one."""
        if self._s3 is None:
            with self._s3_lock:
                if self._s3 is None:
                    service = self.service
                    if getattr(service, "_factory", None) is not None:
                        self._s3 = service.s3()
                    else:
                        from ..services.s3 import make_s3_client

                        self._s3 = make_s3_client(
                            getattr(service, "_endpoint", None),
                            max_pool_connections=self.pool._max_workers,
                        )
        return self._s3

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def make_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/.*", S3Handler, {"endpoint": self})])

    # -- blocking helpers, run in the pool --------------------------------------------------
    def credential_secret(self, key_id: str) -> tuple[Credential, str]:
        cred = self.store.find(key_id)
        if cred is None:
            raise AuthError(
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        state = cred.state()
        if state == "revoked":
            raise AuthError("InvalidAccessKeyId", "This view credential has been revoked.")
        if state == "expired":
            raise AuthError(
                "ExpiredToken",
                "This view credential has expired; issue a new one with "
                "`infinstor-jlab endpoint credentials VIEW`.",
                400,
            )
        secret = self.store.verify_secret(cred)
        if secret is None:
            raise AuthError(
                "InvalidAccessKeyId",
                "This view credential was issued under another master key; issue a new one.",
            )
        return cred, secret

    def bucket_owner(self, bucket: str) -> dict[str, str] | None:
        if bucket not in self._owners:
            try:
                owner = self.s3().get_bucket_acl(Bucket=bucket).get("Owner")
            except Exception:  # noqa: BLE001 - a cosmetic field must not fail a listing
                owner = None
            self._owners[bucket] = dict(owner) if owner else None
        return self._owners[bucket]


def _http_date(ms: int) -> str:
    return email.utils.formatdate(ms / 1000.0, usegmt=True)


def _parse_http_date(text: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _etag_matches(header: str, etag: str) -> bool:
    wanted = [t.strip() for t in header.split(",")]
    bare = etag.strip('"')
    return any(t == "*" or t.strip('"') == bare for t in wanted)


def check_conditions(headers: dict[str, str], version: ObjectVersion) -> int | None:
    """S3's order of the four conditional headers: 412 or 304, or None to go on."""
    last_s = version.last_modified_ms // 1000
    if_match = headers.get("if-match")
    if_none = headers.get("if-none-match")
    if if_match is not None and not _etag_matches(if_match, version.etag):
        return 412
    ius = headers.get("if-unmodified-since")
    if ius and if_match is None:
        t = _parse_http_date(ius)
        if t is not None and last_s > t:
            return 412
    if if_none is not None and _etag_matches(if_none, version.etag):
        return 304
    ims = headers.get("if-modified-since")
    if ims and if_none is None:
        t = _parse_http_date(ims)
        if t is not None and last_s <= t:
            return 304
    return None


class S3Handler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS")

    def initialize(self, endpoint: Endpoint) -> None:
        self.ep = endpoint
        self.request_id = uuid.uuid4().hex[:16].upper()
        self._gone = False

    def set_default_headers(self) -> None:
        self.clear_header("Content-Type")
        self.set_header("Server", "InfinStor")
        self.set_header("x-amz-request-id", getattr(self, "request_id", ""))
        self.set_header("x-amz-id-2", getattr(self, "request_id", ""))

    def compute_etag(self) -> None:  # type: ignore[override]
        return None

    def check_xsrf_cookie(self) -> None:
        return None

    def on_connection_close(self) -> None:
        self._gone = True

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:  # quieter than Tornado's
        if isinstance(value, tornado.iostream.StreamClosedError):
            return
        super().log_exception(typ, value, tb)

    # -- plumbing ---------------------------------------------------------------------------
    def _request_headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.request.headers.get_all():
            lname = name.lower()
            out[lname] = f"{out[lname]},{value}" if lname in out else value
        return out

    def _route(self) -> Route:
        raw = self.request.path
        host = (self.request.host or "").lower()
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        for base in self.ep.virtual_host_bases:
            if hostname.endswith("." + base):
                bucket = hostname[: -len(base) - 1]
                return Route(
                    bucket, unquote(raw[1:]) if raw.startswith("/") else unquote(raw), True
                )
        path = raw.removeprefix("/")
        bucket, _, key = path.partition("/")
        return Route(unquote(bucket), unquote(key))

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.ep.pool, fn, *args)

    def _send_error(self, err: S3Error, route: Route | None) -> None:
        self.clear()
        self.set_default_headers()
        self.set_status(err.status)
        if self.request.method == "HEAD" or err.status == 304:
            self.finish()
            return
        resource = self.request.path
        extra = dict(err.extra)
        if route is not None:
            if route.bucket and "BucketName" not in extra and err.code == "NoSuchBucket":
                extra["BucketName"] = route.bucket
            if route.key and err.code in ("NoSuchKey", "NoSuchVersion"):
                extra.setdefault("Key", route.key)
        body = s3xml.error(
            err.code, err.message, request_id=self.request_id, resource=resource, **extra
        )
        self.set_header("Content-Type", "application/xml")
        self.finish(body)

    def _xml(self, body: bytes, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/xml")
        if self.request.method == "HEAD":
            self.set_header("Content-Length", str(len(body)))
            self.finish()
        else:
            self.finish(body)

    # -- verbs ------------------------------------------------------------------------------
    async def get(self) -> None:
        await self._handle()

    async def head(self) -> None:
        await self._handle()

    async def put(self) -> None:
        await self._handle()

    async def post(self) -> None:
        await self._handle()

    async def delete(self) -> None:
        await self._handle()

    async def patch(self) -> None:
        await self._handle()

    async def options(self) -> None:
        await self._handle()

    async def _handle(self) -> None:
        route: Route | None = None
        try:
            route = self._route()
            headers = self._request_headers()
            method = self.request.method or "GET"
            query = split_query(self.request.query)
            cred = await self._run(self._authenticate, method, headers, route)
            await self._dispatch(method, route, dict(query), headers, cred)
        except S3Error as err:
            self._send_error(err, route)
        except AuthError as err:
            self._send_error(S3Error(err.status, err.code, err.message), route)
        except tornado.iostream.StreamClosedError:
            return
        except Exception:
            log.exception("S3 endpoint request failed")
            if not self._headers_written:
                self._send_error(
                    S3Error(500, "InternalError", "We encountered an internal error."), route
                )

    def _authenticate(self, method: str, headers: dict[str, str], route: Route) -> Credential:
        found: dict[str, Credential] = {}

        def lookup(key_id: str) -> str:
            cred, secret = self.ep.credential_secret(key_id)
            found["cred"] = cred
            return secret

        authenticate(
            method=method,
            raw_path=self.request.path,
            raw_query=self.request.query,
            headers=headers,
            host=self.request.host or "",
            lookup_secret=lookup,
            bucket_in_host=route.bucket if route.virtual else None,
        )
        return found["cred"]

    async def _dispatch(
        self,
        method: str,
        route: Route,
        params: dict[str, str],
        headers: dict[str, str],
        cred: Credential,
    ) -> None:
        grant = cred.view
        sub = sorted(k for k in params if k in _SUBRESOURCES)
        if method not in ("GET", "HEAD"):
            raise _denied(
                "This endpoint serves read-only views of the past: writes and deletes are "
                "refused (write to the bucket itself)."
            )
        if not route.bucket:
            if method == "HEAD":
                raise S3Error(405, "MethodNotAllowed", "HEAD is not allowed on the service.")
            body = await self._run(self._list_buckets, grant)
            self._xml(body)
            return
        if not route.key:
            await self._bucket_op(method, route, params, sub, grant)
            return
        if sub:
            raise S3Error(
                501,
                "NotImplemented",
                f"The {sub[0]!r} operation on objects is not served by this read-only view "
                "endpoint; GetObject and HeadObject are.",
            )
        await self._object(method, route, params, headers, grant)

    # -- buckets ----------------------------------------------------------------------------
    def _check_bucket(self, grant: ViewGrant, bucket: str) -> Any:
        if not grant.allows_bucket(bucket):
            raise _denied(
                f"This view credential reads bucket {grant.bucket!r} only, not {bucket!r}."
            )
        try:
            # A view credential from a shared index may name a bucket this endpoint's own
            # AWS credentials cannot read: the index does not answer for it then.
            self.ep.service.require_access(bucket)
        except AccessDenied as exc:
            raise _denied(exc.message) from None
        try:
            return self.ep.service.index.get_bucket(bucket)
        except UnknownBucket:
            raise S3Error(
                404,
                "NoSuchBucket",
                f"The specified bucket does not exist in this view (bucket {bucket!r} is not "
                "in the snapshot index; `infinstor-jlab track` it first).",
            ) from None

    def _list_buckets(self, grant: ViewGrant) -> bytes:
        records = self.ep.service.index.list_buckets()
        items = [
            (r.name, r.first_ms or r.tracked_ms or 0)
            for r in records
            if grant.allows_bucket(r.name) and self.ep.service.access.readable(r.name)
        ]
        owner = {"ID": "infinstor", "DisplayName": "infinstor"}
        return s3xml.list_buckets(items, owner)

    async def _bucket_op(
        self,
        method: str,
        route: Route,
        params: dict[str, str],
        sub: list[str],
        grant: ViewGrant,
    ) -> None:
        record = await self._run(self._check_bucket, grant, route.bucket)
        if method == "HEAD":
            if sub:
                raise S3Error(405, "MethodNotAllowed", "HEAD is not allowed on this resource.")
            self.set_header("x-amz-bucket-region", self.ep.region)
            self.set_status(200)
            self.finish()
            return
        if sub == ["location"]:
            self._xml(s3xml.location(self.ep.region))
            return
        if sub == ["versioning"]:
            self._xml(s3xml.versioning(record.versioning))
            return
        if sub:
            what = "ListObjectVersions" if "versions" in sub else f"the {sub[0]!r} operation"
            raise S3Error(
                501,
                "NotImplemented",
                f"{what} is not served by this view endpoint: a view holds one version per "
                "key. Use ListObjectsV2 (or the infinstor-jlab CLI's history command).",
            )
        body = await self._run(self._list_objects, route.bucket, params, grant)
        self.set_header("x-amz-bucket-region", self.ep.region)
        self._xml(body)

    def _list_objects(self, bucket: str, params: dict[str, str], grant: ViewGrant) -> bytes:
        v2 = params.get("list-type") == "2"
        if "list-type" in params and not v2:
            raise S3Error(400, "InvalidArgument", "Invalid list-type: use 2 or leave it out.")
        enc = params.get("encoding-type")
        if enc is not None and enc != "url":
            raise S3Error(400, "InvalidArgument", "Invalid Encoding Method specified in Request")
        try:
            max_keys = int(params.get("max-keys", "1000"))
        except ValueError:
            raise S3Error(
                400, "InvalidArgument", "Provided max-keys not an integer or within integer range"
            ) from None
        if max_keys < 0:
            raise S3Error(
                400,
                "InvalidArgument",
                "Argument maxKeys must be an integer between 0 and 2147483647",
            )
        botocore_params: dict[str, Any] = {
            "Bucket": bucket,
            "Prefix": params.get("prefix", ""),
            "Delimiter": params.get("delimiter", ""),
            "MaxKeys": max_keys,
        }
        if enc:
            botocore_params["EncodingType"] = enc
        for qname, pname in (
            ("continuation-token", "ContinuationToken"),
            ("start-after", "StartAfter"),
            ("marker", "Marker"),
        ):
            if qname in params:
                botocore_params[pname] = params[qname]
        fetch_owner = (not v2) or params.get("fetch-owner", "").lower() == "true"
        service = self.ep.service
        spec = grant.spec
        within = grant.prefix or None

        def page(
            prefix: str,
            delimiter: str | None,
            max_keys: int,
            token: str | None,
            start_after: str | None,
        ) -> ListPage:
            if max_keys == 0:
                return ListPage(objects=[], prefixes=[], next_token=None)
            if within and not prefix.startswith(within) and not within.startswith(prefix):
                raise _denied(
                    f"This view credential reads s3://{bucket}/{within} only; list that "
                    "prefix or one under it."
                )
            try:
                return service.list_objects(
                    bucket,
                    spec=spec,
                    prefix=prefix,
                    delimiter=delimiter,
                    max_keys=max_keys,
                    token=token,
                    start_after=start_after,
                    within=within,
                )
            except BadRequest as exc:
                if token:
                    raise S3Error(
                        400,
                        "InvalidArgument",
                        "The continuation token provided is incorrect",
                        ArgumentName="continuation-token",
                    ) from exc
                raise S3Error(400, "InvalidArgument", exc.message) from exc

        owner = self.ep.bucket_owner(bucket) if fetch_owner else None
        resp = listing_response(
            service.index,
            botocore_params,
            spec,
            v2=v2,
            owner=owner,
            list_page=page,
            time_value=s3xml.listing_time,
        )
        return s3xml.list_objects(resp, v2=v2)

    # -- objects ----------------------------------------------------------------------------
    def _resolve(self, route: Route, params: dict[str, str], grant: ViewGrant) -> ObjectVersion:
        self._check_bucket(grant, route.bucket)
        if grant.prefix and grant.prefix.startswith(route.key):
            # A folder above the credential's prefix ('tables' for 'tables/'): the view holds
            # no such object. Clients that probe a path before listing it (pyarrow's
            # get_file_info, s3fs's info) need S3's 404 here, not AccessDenied.
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.")
        if grant.prefix and not route.key.startswith(grant.prefix):
            raise _denied(
                f"This view credential reads s3://{route.bucket}/{grant.prefix} only; "
                f"{route.key!r} is outside it."
            )
        try:
            version = self.ep.service.resolve_object(
                route.bucket, route.key, spec=grant.spec, within=grant.prefix or None
            )
        except NotFound:
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.") from None
        wanted = params.get("versionId")
        if wanted is not None and wanted != version.version_id:
            raise S3Error(
                404,
                "NoSuchVersion",
                "The specified version does not exist in this view: the view holds one "
                "version of each key, and this is not it.",
                VersionId=wanted,
            )
        return version

    def _open(
        self,
        route: Route,
        version: ObjectVersion,
        method: str,
        params: dict[str, str],
        rng: str | None,
        checksums: bool = False,
    ) -> Any:
        client = self.ep.s3()
        kwargs: dict[str, Any] = {
            "Bucket": route.bucket,
            "Key": version.key,
            "VersionId": version.version_id,
        }
        if rng:
            kwargs["Range"] = rng
        if checksums:
            kwargs["ChecksumMode"] = "ENABLED"
        if method == "GET":
            for qname, pname in _RESPONSE_OVERRIDES.items():
                if qname in params:
                    kwargs[pname] = params[qname]
        from botocore.exceptions import ClientError

        try:
            if method == "HEAD":
                return client.head_object(**kwargs)
            return client.get_object(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
            if code == "InvalidRange" or status == 416:
                raise S3Error(
                    416,
                    "InvalidRange",
                    "The requested range is not satisfiable",
                    RangeRequested=rng or "",
                    ActualObjectSize=str(version.size),
                ) from None
            if code in ("NoSuchVersion", "NoSuchKey", "404", "NotFound") or status in (404, 400):
                raise S3Error(
                    404,
                    "NoSuchVersion",
                    f"Version {version.version_id} of s3://{route.bucket}/{version.key} is no "
                    "longer in S3 (removed by a lifecycle rule or a permanent delete).",
                    VersionId=version.version_id,
                ) from None
            log.warning("S3 endpoint: upstream %s of %s failed: %s", method, route.bucket, code)
            raise S3Error(
                502 if status >= 500 else 403,
                "ServiceUnavailable" if status >= 500 else "AccessDenied",
                f"The object store refused or failed the read ({code or status}).",
            ) from None
        except InfinstorError as exc:
            raise S3Error(502, "ServiceUnavailable", exc.message) from None

    async def _object(
        self,
        method: str,
        route: Route,
        params: dict[str, str],
        headers: dict[str, str],
        grant: ViewGrant,
    ) -> None:
        version = await self._run(self._resolve, route, params, grant)
        cond = check_conditions(headers, version)
        if cond is not None:
            self.set_header("ETag", version.etag)
            self.set_header("Last-Modified", _http_date(version.last_modified_ms))
            if cond == 304:
                self.set_status(304)
                self.finish()
                return
            raise S3Error(
                412,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                Condition="If-Match",
            )
        rng = headers.get("range")
        checksums = headers.get("x-amz-checksum-mode", "").strip().upper() == "ENABLED"
        resp = await self._run(self._open, route, version, method, params, rng, checksums)
        meta = resp.get("ResponseMetadata", {})
        upstream = {k.lower(): v for k, v in meta.get("HTTPHeaders", {}).items()}
        status = int(meta.get("HTTPStatusCode") or 200)
        self.set_status(status)
        for name in _PASS_HEADERS:
            if name in upstream:
                self.set_header(name, upstream[name])
        if checksums and status == 200 and "content-range" not in upstream:
            for name in _CHECKSUM_HEADERS:
                if name in upstream:
                    self.set_header(name, upstream[name])
        for name, value in upstream.items():
            if name.startswith("x-amz-meta-"):
                self.set_header(name, value)
        if "last-modified" not in upstream:
            self.set_header("Last-Modified", _http_date(version.last_modified_ms))
        if "content-type" not in upstream:
            self.set_header("Content-Type", "binary/octet-stream")
        if method == "HEAD":
            self.finish()
            return
        length = upstream.get("content-length")
        await self._stream(resp["Body"], int(length) if length and length.isdigit() else None)

    async def _stream(self, body: Any, length: int | None) -> None:
        readinto = _raw_readinto(body)
        if readinto is None:
            await self._stream_chunks(body)
            return
        # Two buffers made once per download: S3's bytes land in one (read straight from
        # the socket into it, in a worker thread) while the other is written to the client
        # (Tornado sends a memoryview of it without copying); a buffer is read into again
        # only once the client has taken all of it. No per-chunk allocations (a fresh 1 MiB
        # bytes object costs ~250 page faults), no copies in Python.
        size = self.ep.chunk_size if length is None else max(1, min(self.ep.chunk_size, length))
        bufs = (memoryview(bytearray(size)), memoryview(bytearray(size)))
        conn = self.request.connection
        assert conn is not None
        pending: asyncio.Future[Any] | None = None
        try:
            await self.flush()  # the status line and headers
            pending = asyncio.ensure_future(self._run(readinto, bufs[0]))
            n = await pending
            i = 0
            while n:
                if self._gone:
                    return
                written = conn.write(bufs[i][:n])
                i ^= 1
                pending = asyncio.ensure_future(self._run(readinto, bufs[i]))
                await written  # back-pressure: the client has taken the previous buffer
                n = await pending
            pending = None
            _release(body)
            self.finish()
        finally:
            if pending is not None and not pending.done():
                # Close once the read under way returns (never under a reading thread).
                pending.add_done_callback(lambda _f: _close_quietly(body))
            else:
                _close_quietly(body)

    async def _stream_chunks(self, body: Any) -> None:
        """The portable path (a body without an http.client response underneath)."""
        size = self.ep.chunk_size
        try:
            pending = asyncio.ensure_future(self._run(body.read, size))
            while True:
                chunk = await pending
                if not chunk:
                    break
                if self._gone:
                    return
                pending = asyncio.ensure_future(self._run(body.read, size))
                self.write(chunk)
                await self.flush()  # back-pressure: waits for the client to take it
            self.finish()
        finally:
            _close_quietly(body)


def _raw_readinto(body: Any) -> Callable[[memoryview], int] | None:
    """``readinto`` of the http.client response under botocore's StreamingBody (through
    urllib3), reading the socket straight into a buffer; None when the body is another
    kind. The bytes are S3's as sent (botocore asks urllib3 not to decode them); a
    checksum the client asked for is checked by the client against S3's own header."""
    raw = getattr(body, "_raw_stream", None)
    fp = getattr(raw, "_fp", None)
    readinto = getattr(fp, "readinto", None)
    if readinto is None or not callable(getattr(raw, "read", None)):
        return None
    return readinto  # type: ignore[no-any-return]


def _release(body: Any) -> None:
    """After the last byte the http.client response has closed itself: hand its connection
    back to urllib3's pool (as urllib3 does when it reads to the end itself)."""
    with contextlib.suppress(Exception):
        raw = body._raw_stream
        if raw._fp.isclosed():
            raw.release_conn()


def _close_quietly(body: Any) -> None:
    with contextlib.suppress(Exception):
        body.close()  # releases the upstream connection (a partial read drops it)


# -- running it ---------------------------------------------------------------------------
class EndpointServer:
    """The endpoint on a port of its own, on an IO loop in a thread of its own (the Jupyter
    server starts one beside its own loop; the CLI runs one in the foreground)."""

    def __init__(
        self,
        service: Any,
        store: CredentialStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = DEFAULT_REGION,
        public_url: str | None = None,
    ) -> None:
        bases = (
            ("localhost",)
            if host in ("127.0.0.1", "::1", "0.0.0.0", "localhost")
            else (
                host,
                "localhost",
            )
        )
        self.endpoint = Endpoint(service, store, region=region, virtual_host_bases=bases)
        self.host = host
        self.port = port
        self._public_url = public_url
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        if self._public_url:
            return self._public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def _bind(self) -> None:
        sockets = tornado.netutil.bind_sockets(self.port, self.host)
        self.port = sockets[0].getsockname()[1]
        self._server = tornado.httpserver.HTTPServer(
            self.endpoint.make_app(), max_buffer_size=64 * 1024 * 1024, idle_connection_timeout=300
        )
        self._server.add_sockets(sockets)

    def start(self) -> str:
        """Start in a daemon thread; returns the URL once the port is bound."""

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._bind()
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="infinstor-s3-endpoint", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        self.endpoint.store.record_endpoint(self.url)
        return self.url

    def serve_forever(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Run in this thread until interrupted."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._bind()
        self.endpoint.store.record_endpoint(self.url)
        if on_ready is not None:
            on_ready(self.url)
        try:
            loop.run_forever()
        finally:
            self.endpoint.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        def shutdown() -> None:
            if self._server is not None:
                self._server.stop()
            loop.stop()

        try:
            loop.call_soon_threadsafe(shutdown)
        except RuntimeError:
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.endpoint.close()


__all__ = ["Endpoint", "EndpointServer", "S3Handler", "check_conditions"]
