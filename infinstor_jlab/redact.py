"""Keeping secrets out of what a user or the log sees.

A tracking URI (or an S3/HTTP URL in an error from a library) may carry credentials: userinfo
(``http://user:password@host``), secret query values (``?token=``, ``X-Amz-Signature=``,
``sig=``), and a local store's path says where the server keeps its files. Every message that
names a URI, or passes on a library's error text, goes through :func:`redact` (or names the
URI with :func:`safe_uri`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

MASK = "***"

#: ``scheme://userinfo@``: the userinfo goes (a password may itself hold an unescaped "@").
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s'\"<>]*@")
#: A query or fragment parameter whose name says it is a secret (X-Amz-Signature,
#: X-Amz-Security-Token, X-Amz-Credential, sig, access_token, password, api_key, ...).
_SECRET_PARAM = re.compile(
    r"(?i)([?&;#][^=&#;\s'\"<>]*(?:pass|pwd|token|secret|sig|credential|auth|session|"
    r"api[-_]?key|access[-_]?key|private)[^=&#;\s'\"<>]*=)[^&#;\s'\"<>]*"
)
#: Environment variables whose values never appear in a message.
SECRET_ENV = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "DATABRICKS_TOKEN")


def local_store_path(uri: str) -> str | None:
    """The local path of a ``sqlite:``, ``file:`` or plain-path tracking store, else None."""
    text = uri.strip()
    if text.startswith("sqlite:"):
        path = text[len("sqlite:") :]
        if path.startswith("////"):
            return "/" + path.lstrip("/")
        return path[3:] if path.startswith("///") else (path.lstrip("/") or None)
    if text.startswith("file:"):
        return unquote(urlsplit(text).path) or None
    if text and "://" not in text and text not in ("databricks", "databricks-uc", "uc"):
        return text
    return None


def safe_uri(uri: str | None) -> str:
    """A URI as a message may show it: no userinfo (``***@``), no secret query values, and for
    a local store only its file name (``sqlite:///.../mlflow.db``), not where it lives."""
    if not uri:
        return ""
    text = uri.strip()
    path = local_store_path(text)
    if path is not None and path != ":memory:":
        name = os.path.basename(path.rstrip("/\\")) or path
        head = (
            "sqlite:///"
            if text.startswith("sqlite:")
            else "file:///"
            if text.startswith("file:")
            else ""
        )
        return f"{head}.../{name}"
    return _scrub(text)


def _scrub(text: str) -> str:
    text = _USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
    return _SECRET_PARAM.sub(lambda m: m.group(1) + MASK, text)


def redact(text: object, uris: Iterable[str | None] = ()) -> str:
    """``text`` (a message, or a library's exception) without credentials: each of ``uris``
    (and its local path) is replaced by its :func:`safe_uri`, any URL's userinfo and secret
    query values are masked, and so are the values of :data:`SECRET_ENV`."""
    out = str(text)
    for uri in uris:
        if not uri:
            continue
        shown = safe_uri(uri)
        out = out.replace(uri, shown)
        path = local_store_path(uri)
        if path and path != ":memory:" and len(path) > 1:
            absolute = os.path.abspath(path)
            name = os.path.basename(path.rstrip("/\\"))
            for variant in sorted({absolute, path}, key=len, reverse=True):
                if len(variant) > len(name) + 1:
                    out = out.replace(variant, ".../" + name)
    out = _scrub(out)
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 8:
            out = out.replace(value, MASK)
    return out


def tracking_uri() -> str:
    """MLflow's tracking URI as MLflow resolves it ($MLFLOW_TRACKING_URI, else its default),
    or "" without MLflow."""
    try:
        import mlflow
    except ImportError:
        return os.environ.get("MLFLOW_TRACKING_URI", "")
    try:
        return str(mlflow.get_tracking_uri())
    except Exception:  # noqa: BLE001 - a message must still be written
        return os.environ.get("MLFLOW_TRACKING_URI", "")
