"""Unchanged boto3 code reads the past.

    from infinstor_jlab import infin_boto3

turns on time travel for S3 clients and resources created afterwards in the process
(``boto3.client('s3')``, ``boto3.resource('s3')``, ``boto3.Session().client('s3')``). It works
through botocore's event system: a ``creating-client-class.s3`` handler, registered on every
session, adds a small mixin whose instances register per-client handlers:

* ``before-parameter-build`` decides the view of the call (a view later than the bucket's
  last sync first has the prefix read again from S3, once: ``TimeTravel.ensure_indexed``)
  and, for GetObject/HeadObject, pins the exact ``VersionId`` the view shows;
* ``before-call`` answers ListObjects/ListObjectsV2 from the snapshot index (and gives S3's own
  404 errors for keys absent at that time) without a request to S3;
* ``after-call`` turns S3's NoSuchVersion for a pinned version into a sentence that says the
  version was removed since.

Which view a read sees: the client's explicit one (``boto3.client('s3',
infinstor_time_spec='tm20261120100000')`` or ``infin_boto3.client(at=..., slice=...,
label=...)``), else ``$INFINSTOR_SNAPSHOT_TIME`` (any time spec, e.g. ``run:/<id>``), else the
start time of the active MLflow run (or ``$MLFLOW_RUN_ID``); with none of these, reads go to live
S3. Inside a run the param ``infinstor_snapshot_time`` is logged once and the tag
``infinstor_buckets`` names the buckets read. Writes and all other operations pass through.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from ..errors import BadRequest
from ..timespec import TimeSpec
from .timetravel import SNAPSHOT_ENV, TimeTravel

__all__ = ["SNAPSHOT_ENV", "client", "disable", "enable", "resource", "set_view", "view_of"]

_READS = ("ListObjectsV2", "ListObjects", "GetObject", "HeadObject")
_CONTEXT_KEY = "infinstor_response"
_state_lock = threading.Lock()
_travel: TimeTravel | None = None
_enabled = False
_orig_session_client = boto3.session.Session.client
_orig_session_resource = boto3.session.Session.resource


def _tt() -> TimeTravel:
    global _travel
    if _travel is None:
        with _state_lock:
            if _travel is None:
                _travel = TimeTravel()
    return _travel


class _FakeRaw:
    def stream(self, *_: Any, **__: Any):
        return iter(())


def _response(
    status: int, parsed: dict[str, Any], extra_headers: dict[str, str] | None = None
) -> tuple[AWSResponse, dict[str, Any]]:
    request_id = uuid.uuid4().hex.upper()[:16]
    headers = HTTPHeaders()
    headers["x-amz-request-id"] = request_id
    headers["x-infinstor-time-travel"] = "1"
    for name, value in (extra_headers or {}).items():
        headers[name] = value
    parsed["ResponseMetadata"] = {
        "RequestId": request_id,
        "HTTPStatusCode": status,
        "HTTPHeaders": dict(headers.items()),
        "RetryAttempts": 0,
    }
    return AWSResponse("https://infinstor.invalid/", status, headers, _FakeRaw()), parsed


class TimeTravelClientMixin:
    """Mixed into S3 client classes; each client carries its own explicit view."""

    _infinstor_view: TimeSpec | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        events = self.meta.events  # type: ignore[attr-defined]
        for op in _READS:
            events.register(
                f"before-parameter-build.s3.{op}",
                self._infinstor_params,
                unique_id=f"infinstor-params-{op}",
            )
            events.register(
                f"before-call.s3.{op}", _short_circuit, unique_id=f"infinstor-call-{op}"
            )
        events.register(
            "after-call.s3.GetObject",
            _explain_missing_version,
            unique_id="infinstor-after-GetObject",
        )
        events.register(
            "after-call.s3.HeadObject",
            _explain_missing_version,
            unique_id="infinstor-after-HeadObject",
        )

    def _infinstor_params(
        self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        if not _enabled or getattr(self, "_infinstor_internal", False):
            return
        tt = _tt()
        view = self._infinstor_view
        run_id = None
        if view is None:
            view, run_id = tt.implicit_view()
        if view is None:
            return
        bucket = params.get("Bucket")
        if not bucket or not tt.tracked(bucket):
            return
        refusal = tt.access_refusal(bucket, self)
        if refusal is not None:
            # A shared index holds buckets these credentials may not read: answer as S3
            # does for a bucket one may not read, never from the index.
            context[_CONTEXT_KEY] = _response(
                403, {"Error": {"Code": "AccessDenied", "Message": refusal}}
            )
            return
        op = model.name
        is_object = op in ("GetObject", "HeadObject")
        if not (is_object and params.get("VersionId")):
            tt.ensure_indexed(
                bucket,
                params.get("Key", "") if is_object else params.get("Prefix") or "",
                view,
                endpoint_url=self.meta.endpoint_url,
                key=is_object,
            )  # type: ignore[attr-defined]
        if op in ("GetObject", "HeadObject"):
            if params.get("VersionId"):
                return  # the caller named a version: that is already exact
            version_id = tt.version_for_read(bucket, params.get("Key", ""), view)
            if version_id is None:
                if op == "GetObject":
                    parsed = {
                        "Error": {
                            "Code": "NoSuchKey",
                            "Message": "The specified key does not exist.",
                            "Key": params.get("Key", ""),
                        }
                    }
                else:
                    parsed = {"Error": {"Code": "404", "Message": "Not Found"}}
                # As S3 does when the key's current version is a delete marker.
                marker = tt.delete_marker_at(bucket, params.get("Key", ""), view)
                headers = (
                    {"x-amz-delete-marker": "true", "x-amz-version-id": marker} if marker else None
                )
                context[_CONTEXT_KEY] = _response(404, parsed, headers)
            else:
                params["VersionId"] = version_id
                context["infinstor_pinned"] = (bucket, params.get("Key", ""), version_id, view)
        else:
            try:
                v2 = op == "ListObjectsV2"
                owner = (
                    tt.bucket_owner(bucket, self.meta.endpoint_url)  # type: ignore[attr-defined]
                    if not v2 or params.get("FetchOwner")
                    else None
                )
                listing = tt.list_objects(params, view, v2=v2, owner=owner)
            except BadRequest as exc:
                # What S3 answers for a continuation token it did not issue: code that
                # handles S3's errors handles this one.
                context[_CONTEXT_KEY] = _response(
                    400,
                    {
                        "Error": {
                            "Code": "InvalidArgument",
                            "Message": f"The continuation token provided is incorrect. {exc}",
                            "ArgumentName": "continuation-token",
                        }
                    },
                )
            else:
                context[_CONTEXT_KEY] = _response(200, listing)
        if run_id is not None:
            tt.note_run_read(run_id, view, bucket)


def _short_circuit(context: dict[str, Any], **_: Any) -> Any:
    return context.pop(_CONTEXT_KEY, None)


def _explain_missing_version(
    http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
) -> None:
    pinned = context.get("infinstor_pinned")
    if not pinned or getattr(http_response, "status_code", 200) < 300:
        return
    error = parsed.get("Error", {})
    if error.get("Code") in ("NoSuchVersion", "404", "NoSuchKey"):
        bucket, key, version_id, view = pinned
        error["Message"] = (
            f"Version {version_id} of s3://{bucket}/{key}, which the view {view.display()} "
            "shows, is no longer in S3 (removed by a lifecycle rule or a permanent delete)."
        )
        parsed["Error"] = error


def _add_mixin(base_classes: list[type], **_: Any) -> None:
    if TimeTravelClientMixin not in base_classes:
        base_classes.insert(0, TimeTravelClientMixin)


_HANDLER = ("creating-client-class.s3", _add_mixin)


def set_view(s3_client: Any, spec: str | int | TimeSpec | None) -> Any:
    """Give a client an explicit view (None: back to the implicit one)."""
    if not isinstance(s3_client, TimeTravelClientMixin):
        raise TypeError("time travel needs an S3 client created after importing infin_boto3")
    s3_client._infinstor_view = None if spec is None else _tt().parse(spec)
    return s3_client


def view_of(s3_client: Any) -> TimeSpec | None:
    return getattr(s3_client, "_infinstor_view", None)


def _session_client(self: Any, *args: Any, infinstor_time_spec: Any = None, **kwargs: Any) -> Any:
    made = _orig_session_client(self, *args, **kwargs)
    if infinstor_time_spec is not None:
        set_view(made, infinstor_time_spec)
    return made


def _session_resource(self: Any, *args: Any, infinstor_time_spec: Any = None, **kwargs: Any) -> Any:
    made = _orig_session_resource(self, *args, **kwargs)
    if infinstor_time_spec is not None:
        set_view(made.meta.client, infinstor_time_spec)
    return made


def enable() -> None:
    """Turn time travel on (done on import). Idempotent."""
    global _enabled
    with _state_lock:
        if _HANDLER not in botocore.handlers.BUILTIN_HANDLERS:
            # Every botocore session registers the builtin handlers when it is created.
            botocore.handlers.BUILTIN_HANDLERS.append(_HANDLER)
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.register(
                "creating-client-class.s3", _add_mixin, unique_id="infinstor-mixin"
            )
        # The original InfinStor keyword: boto3.client('s3', infinstor_time_spec=...).
        boto3.session.Session.client = _session_client  # type: ignore[method-assign]
        boto3.session.Session.resource = _session_resource  # type: ignore[method-assign]
        _enabled = True


def disable() -> None:
    """Turn time travel off: clients made afterwards, and existing ones, read live S3."""
    global _enabled
    with _state_lock:
        _enabled = False
        if _HANDLER in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.remove(_HANDLER)
        boto3.session.Session.client = _orig_session_client  # type: ignore[method-assign]
        boto3.session.Session.resource = _orig_session_resource  # type: ignore[method-assign]


def client(
    *args: Any, at: Any = None, slice: Any = None, label: str | None = None, **kwargs: Any
) -> Any:
    """``boto3.client('s3', ...)`` with an explicit view: ``at`` (snapshot), ``slice`` (window)
    or ``label``, each accepting every time-spec form."""
    spec = _explicit(at, slice, label)
    if not args and "service_name" not in kwargs:
        args = ("s3",)
    made = boto3.client(*args, **kwargs)
    if spec is not None:
        set_view(made, spec)
    return made


def resource(
    *args: Any, at: Any = None, slice: Any = None, label: str | None = None, **kwargs: Any
) -> Any:
    spec = _explicit(at, slice, label)
    if not args and "service_name" not in kwargs:
        args = ("s3",)
    made = boto3.resource(*args, **kwargs)
    if spec is not None:
        set_view(made.meta.client, spec)
    return made


def _explicit(at: Any, slice_: Any, label: str | None) -> TimeSpec | None:
    if at is None and slice_ is None and label is None:
        return None
    # Errors about the choice itself are ViewChoiceError, a ValueError.
    return _tt().views.resolve_spec(at=at, slice_=slice_, label=label, default_now=False)


enable()
