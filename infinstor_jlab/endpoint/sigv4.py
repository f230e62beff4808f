"""AWS Signature Version 4 verification, for requests signed in headers (``Authorization:
AWS4-HMAC-SHA256 ...``) and presigned URLs (``X-Amz-Algorithm=...`` in the query); and
Signature Version 2, which boto3 still uses for ``generate_presigned_url`` unless told
``signature_version="s3v4"``.

The canonical request is rebuilt from what arrived; S3 does not normalize paths, so the path
is used as sent, and, should the client have encoded it differently from AWS's rules (some
SDKs leave characters such as ``!`` or ``*`` as they are), as AWS's rules encode it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: S3 refuses requests whose time is further than this from its own clock.
MAX_SKEW_S = 15 * 60
MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600

_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,"
    r"\s*Signature=([0-9a-fA-F]+)\s*$"
)


class AuthError(Exception):
    """A request S3 would refuse: ``code`` is S3's error code, ``message`` its sentence."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class SignedRequest:
    key_id: str
    date: str  # YYYYMMDD of the scope
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    amz_date: str  # YYYYMMDDTHHMMSSZ
    payload_hash: str
    presigned: bool
    expires_s: int | None = None


def _uri_encode(text: str, safe: str) -> str:
    return quote(text, safe=safe)


def _split_query(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        name, _, value = part.partition("=")
        # Values are compared decoded and re-encoded by AWS's rules ('+' is a space).
        pairs.append((unquote(name.replace("+", " ")), unquote(value.replace("+", " "))))
    return pairs


def canonical_query(pairs: list[tuple[str, str]], *, skip_signature: bool) -> str:
    encoded = sorted(
        (_uri_encode(k, "-_.~"), _uri_encode(v, "-_.~"))
        for k, v in pairs
        if not (skip_signature and k == "X-Amz-Signature")
    )
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_headers(headers: Mapping[str, str], names: list[str], host: str) -> str:
    lines = []
    for name in names:
        if name == "host":
            value = headers.get("host", host)
        else:
            value = headers.get(name)
        if value is None:
            raise AuthError(
                "AccessDenied",
                f"There were headers present in the request which were not signed: the "
                f"signed header {name!r} is missing.",
            )
        lines.append(f"{name}:{' '.join(value.strip().split())}\n")
    return "".join(lines)


def parse_request(
    method: str, headers: Mapping[str, str], query: list[tuple[str, str]]
) -> SignedRequest | None:
    """The SigV4 parts of a request, or None when it carries no signature at all."""
    auth = headers.get("authorization")
    params = dict(query)
    if auth:
        if auth.startswith("AWS "):
            return None  # Signature Version 2: see authenticate_v2
        m = _AUTH_RE.match(auth.strip())
        if not m:
            raise AuthError(
                "AuthorizationHeaderMalformed",
                "The authorization header is malformed; sign the request with AWS "
                "Signature Version 4.",
                400,
            )
        credential, signed, signature = m.groups()
        amz_date = headers.get("x-amz-date") or ""
        if not amz_date:
            raise AuthError(
                "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
            )
        payload = headers.get("x-amz-content-sha256") or EMPTY_SHA256
        presigned = False
        expires = None
    elif "X-Amz-Algorithm" in params or "X-Amz-Credential" in params:
        if params.get("X-Amz-Algorithm") != ALGORITHM:
            raise AuthError(
                "AuthorizationQueryParametersError",
                "X-Amz-Algorithm only supports 'AWS4-HMAC-SHA256'",
                400,
            )
        try:
            credential = params["X-Amz-Credential"]
            signed = params["X-Amz-SignedHeaders"]
            signature = params["X-Amz-Signature"]
            amz_date = params["X-Amz-Date"]
            expires = int(params["X-Amz-Expires"])
        except (KeyError, ValueError):
            raise AuthError(
                "AuthorizationQueryParametersError",
                "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
                "X-Amz-Expires parameters.",
                400,
            ) from None
        if not 1 <= expires <= MAX_PRESIGN_EXPIRES_S:
            raise AuthError(
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be between 1 and 604800 seconds.",
                400,
            )
        payload = UNSIGNED
        presigned = True
    else:
        return None
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise AuthError(
            "AuthorizationHeaderMalformed",
            f"The credential scope {'/'.join(scope[1:])!r} is malformed; expecting "
            "'<YYYYMMDD>/<region>/s3/aws4_request'.",
            400,
        )
    key_id, date, region, service, _ = scope
    if service != "s3":
        raise AuthError(
            "AuthorizationHeaderMalformed",
            f"The credential scope names service {service!r}; expecting 's3'.",
            400,
        )
    return SignedRequest(
        key_id=key_id,
        date=date,
        region=region,
        service=service,
        signed_headers=[h.strip().lower() for h in signed.split(";") if h.strip()],
        signature=signature.lower(),
        amz_date=amz_date,
        payload_hash=payload,
        presigned=presigned,
        expires_s=expires,
    )


def _parse_amz_date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise AuthError(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        ) from None


def check_time(req: SignedRequest, now: datetime) -> None:
    when = _parse_amz_date(req.amz_date)
    if when.strftime("%Y%m%d") != req.date:
        raise AuthError(
            "SignatureDoesNotMatch",
            "The date of the credential scope does not match the request's date.",
        )
    delta = (now - when).total_seconds()
    if req.presigned:
        assert req.expires_s is not None
        if delta > req.expires_s:
            raise AuthError("AccessDenied", "Request has expired")
        if delta < -MAX_SKEW_S:
            raise AuthError(
                "AccessDenied", "The presigned URL is dated in the future; check the clock."
            )
    elif abs(delta) > MAX_SKEW_S:
        raise AuthError(
            "RequestTimeTooSkewed",
            "The difference between the request time and the server's time is too large.",
        )


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    k = hmac.new(k, region.encode(), hashlib.sha256).digest()
    k = hmac.new(k, service.encode(), hashlib.sha256).digest()
    return hmac.new(k, b"aws4_request", hashlib.sha256).digest()


def _string_to_sign(req: SignedRequest, canonical_request: str) -> str:
    scope = f"{req.date}/{req.region}/{req.service}/aws4_request"
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ALGORITHM}\n{req.amz_date}\n{scope}\n{digest}"


def verify(
    req: SignedRequest,
    secret: str,
    *,
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    host: str,
) -> None:
    """Raise SignatureDoesNotMatch unless ``req`` is signed with ``secret``."""
    if "host" not in req.signed_headers:
        raise AuthError("AccessDenied", "The host header must be signed.")
    canonical_hdrs = _canonical_headers(headers, req.signed_headers, host)
    signed_names = ";".join(req.signed_headers)
    cquery = canonical_query(query, skip_signature=req.presigned)
    key = signing_key(secret, req.date, req.region, req.service)
    paths = [raw_path]
    reencoded = _uri_encode(unquote(raw_path), "/-_.~")
    if reencoded != raw_path:
        paths.append(reencoded)
    for path in paths:
        canonical = (
            f"{method}\n{path}\n{cquery}\n{canonical_hdrs}\n{signed_names}\n{req.payload_hash}"
        )
        expected = hmac.new(
            key, _string_to_sign(req, canonical).encode(), hashlib.sha256
        ).hexdigest()
        if hmac.compare_digest(expected, req.signature):
            return
    raise AuthError(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    )


def authenticate(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    host: str,
    lookup_secret: Callable[[str], str],
    now: datetime | None = None,
    bucket_in_host: str | None = None,
) -> str:
    """Check a request; returns the access key id that signed it (whose view it reads).

    ``lookup_secret`` raises AuthError for unknown, expired and revoked keys."""
    query = _split_query(raw_query)
    now = now or datetime.now(timezone.utc)
    auth = headers.get("authorization") or ""
    params = dict(query)
    if auth.startswith("AWS ") or (not auth and "AWSAccessKeyId" in params):
        return authenticate_v2(
            method=method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            lookup_secret=lookup_secret,
            now=now,
            bucket_in_host=bucket_in_host,
        )
    req = parse_request(method, headers, query)
    if req is None:
        raise AuthError(
            "AccessDenied",
            "Anonymous access is not allowed: sign requests with a view credential "
            "(`infinstor-jlab endpoint credentials VIEW`).",
        )
    secret = lookup_secret(req.key_id)
    check_time(req, now)
    verify(
        req,
        secret,
        method=method,
        raw_path=raw_path,
        query=query,
        headers=headers,
        host=host,
    )
    return req.key_id


# -- Signature Version 2 (boto3 presigns with it by default) ---------------------------------
#: Query parameters that are part of a V2 string to sign (botocore's list, S3's rules).
V2_SUBRESOURCES = frozenset(
    [
        "accelerate",
        "acl",
        "cors",
        "defaultObjectAcl",
        "location",
        "logging",
        "partNumber",
        "policy",
        "requestPayment",
        "torrent",
        "versioning",
        "versionId",
        "versions",
        "website",
        "uploads",
        "uploadId",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "delete",
        "lifecycle",
        "tagging",
        "restore",
        "storageClass",
        "notification",
        "replication",
        "analytics",
        "metrics",
        "inventory",
        "select",
        "select-type",
        "object-lock",
    ]
)


def _v2_string_to_sign(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    date_line: str,
    bucket_in_host: str | None,
) -> str:
    amz = sorted(
        (k, ",".join(v.strip() for v in headers[k].split(",")))
        for k in headers
        if k.startswith("x-amz-")
    )
    resource = (f"/{bucket_in_host}" if bucket_in_host else "") + raw_path
    sub = []
    for part in raw_query.split("&") if raw_query else []:
        name, eq, value = part.partition("=")
        if name in V2_SUBRESOURCES:
            sub.append((name, f"{name}={unquote(value)}" if eq else name))
    if sub:
        resource += "?" + "&".join(text for _, text in sorted(sub, key=lambda x: x[0]))
    lines = [method, headers.get("content-md5", ""), headers.get("content-type", ""), date_line]
    lines += [f"{k}:{v}" for k, v in amz]
    return "\n".join(lines) + "\n" + resource


def authenticate_v2(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    lookup_secret: Callable[[str], str],
    now: datetime,
    bucket_in_host: str | None = None,
) -> str:
    auth = headers.get("authorization") or ""
    params = dict(_split_query(raw_query))
    if auth:
        key_id, _, signature = auth[4:].strip().rpartition(":")
        date = headers.get("date", "")
        when_text = headers.get("x-amz-date") or date
        try:
            when = parsedate_to_datetime(when_text)
        except (TypeError, ValueError):
            raise AuthError(
                "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        if abs((now - when).total_seconds()) > MAX_SKEW_S:
            raise AuthError(
                "RequestTimeTooSkewed",
                "The difference between the request time and the server's time is too large.",
            )
        date_line = date
    else:
        key_id = params.get("AWSAccessKeyId", "")
        signature = params.get("Signature", "")
        try:
            expires = int(params.get("Expires", ""))
        except ValueError:
            raise AuthError(
                "AccessDenied",
                "Query-string authentication requires the Signature, Expires "
                "and AWSAccessKeyId parameters",
            ) from None
        if now.timestamp() > expires:
            raise AuthError("AccessDenied", "Request has expired")
        date_line = str(expires)
    secret = lookup_secret(key_id)
    to_sign = _v2_string_to_sign(method, raw_path, raw_query, headers, date_line, bucket_in_host)
    expected = base64.b64encode(
        hmac.new(secret.encode(), to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    if not hmac.compare_digest(expected, signature):
        raise AuthError(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )
    return key_id


def split_query(raw_query: str) -> list[tuple[str, str]]:
    return _split_query(raw_query)
