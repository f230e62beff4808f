"""Transform inputs: what a run reads, resolved to a manifest before it starts (a label, a
snapshot or slice of a bucket through the one view resolver, an MLflow run's artifacts, or
nothing)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ..errors import BadRequest, Conflict, NotFound
from ..index.models import ObjectVersion
from ..redact import redact
from ..redact import tracking_uri as _default_tracking_uri
from ..services.core import InfinstorService, parse_s3_uri
from ..services.s3 import iter_version_pages
from ..services.views import label_spec
from ..timespec import TimeSpec
from ..tracking import open_client as open_tracking_client
from .manifest import Manifest


def _mlflow_client(tracking_uri: str | None = None) -> Any:
    try:
        return open_tracking_client(tracking_uri)
    except ImportError as exc:
        raise BadRequest("Transforms record their lineage in MLflow: pip install mlflow.") from exc


def view_params(view: TimeSpec | None) -> dict[str, Any]:
    if view is None:
        return {}
    if view.is_slice:
        return {"infinstor_slice_start": view.start_ms, "infinstor_slice_end": view.end_ms}
    return {"infinstor_snapshot_time": view.end_ms}


def _str_field(spec: dict[str, Any], *names: str, default: str = "") -> str:
    for name in names:
        value = spec.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadRequest(f'"{name}" of the input must be a string.')
        return value
    return default


def resolve_input(
    service: InfinstorService, spec: dict[str, Any], *, mlflow_tracking_uri: str | None = None
) -> Manifest | None:
    """The manifest of an input: the original InfinStor dict forms, a label, a view, an
    MLflow run's artifacts, or no input."""
    if not isinstance(spec, dict):
        raise BadRequest('The input must be an object such as {"type": "label", "label": "x"}.')
    kind = spec.get("type")
    svc = service
    if kind is None and spec:
        # {"bucketname": ...} without its type would otherwise run over nothing.
        raise BadRequest(
            'The input has no "type"; use infinsnap, infinslice, label, view, '
            "mlflow-run-artifacts or no-input-data, e.g. "
            '{"type": "infinsnap", "bucketname": "my-bucket", "time_spec": "now"}.'
        )
    if kind in (None, "no-input-data"):
        return None
    if kind == "outputs":
        return outputs_manifest(svc, spec.get("labels"))
    if kind == "label":
        name = _str_field(spec, "label").removeprefix("label:/")
        if not name:
            raise BadRequest('A label input needs "label": the label\'s name.')
        pinned = svc.get_label(name)
        view = label_spec(pinned)
        bucket, prefix = pinned.bucket, pinned.prefix
    elif kind in ("infinsnap", "infinslice", "view"):
        bucket = _str_field(spec, "bucketname", "bucket")
        if not bucket:
            raise BadRequest("The input needs a bucket (bucketname).")
        prefix = _str_field(spec, "prefix")
        text = _str_field(spec, "time_spec", "at", "slice", default="now") or "now"
        if kind == "infinslice":
            view = svc.views.resolve_view(bucket, slice_=text, prefix=prefix).spec
        else:
            view = svc.views.resolve_view(bucket, at=text, prefix=prefix).spec
    elif kind == "mlflow-run-artifacts":
        return mlflow_artifacts_manifest(svc, _str_field(spec, "run_id"), mlflow_tracking_uri)
    else:
        raise BadRequest(
            f"Unknown input type {str(kind)[:40]!r}; use infinsnap, infinslice, label, view, "
            "outputs, mlflow-run-artifacts or no-input-data."
        )
    if kind != "label":
        # A view later than the last sync: the manifest must hold what S3 held then.
        svc.index_through(bucket, prefix, view)
    manifest = Manifest.of(bucket, prefix, view, svc.iter_objects(bucket, spec=view, prefix=prefix))
    label = pinned if kind == "label" else svc.get_label(view.label) if view.label else None
    if label is not None and label.prefix == prefix and manifest.fingerprint != label.fingerprint:
        # The index lost versions the label pins (removed from S3, then pruned by a sync): a
        # run over it would quietly read less than the label promises.
        raise Conflict(
            f"Label {label.name!r} no longer matches the index: its view now holds "
            f"{len(manifest.objects)} objects where the label pinned {label.object_count} "
            "(versions it pins were removed from S3). `infinstor-jlab label verify "
            f"{label.name}` shows which; the run was not started."
        )
    return manifest


#: The files a transform run writes into its output besides the transform's own: a pipeline
#: step reading an earlier step's output does not read them.
RUN_MARKERS = ("_SUCCESS.json", "_FAILED.json", "_CANCELLED.json")


def outputs_manifest(service: InfinstorService, labels: Any) -> Manifest:
    """The outputs of earlier transform runs, named by their output labels (a pipeline
    step's input): each label's pinned objects without the run markers at the top of its
    prefix, merged under the labels' common prefix (one input: the run's output folder;
    several: one folder per run, named by its run id)."""
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(x, str) and x for x in labels)
    ):
        raise BadRequest('An outputs input needs "labels": a list of output label names.')
    pinned = [service.get_label(name.removeprefix("label:/")) for name in labels]
    buckets = sorted({p.bucket for p in pinned})
    if len(buckets) > 1:
        raise BadRequest(
            "The outputs read together must be in one bucket; these are in "
            + ", ".join(buckets)
            + ". Give the steps one output bucket."
        )
    prefixes = [p.prefix for p in pinned]
    common = os.path.commonprefix(prefixes) if len(prefixes) > 1 else prefixes[0]
    if len(prefixes) > 1:
        common = common[: common.rfind("/") + 1] if "/" in common else ""
    objects: list[ObjectVersion] = []
    for label in pinned:
        items = list(
            service.iter_objects(label.bucket, spec=label_spec(label), prefix=label.prefix)
        )
        got = Manifest.of(label.bucket, label.prefix, None, items)
        if got.fingerprint != label.fingerprint:
            raise Conflict(
                f"Label {label.name!r} no longer matches the index (versions it pins were "
                f"removed from S3); `infinstor-jlab label verify {label.name}` shows which."
            )
        top = label.prefix
        objects.extend(o for o in items if o.key[len(top) :] not in RUN_MARKERS)
    objects.sort(key=lambda o: o.key.encode("utf-8"))
    return Manifest.of(buckets[0], common, None, objects)


def mlflow_artifacts_manifest(
    service: InfinstorService, run_id: str, tracking_uri: str | None
) -> Manifest:
    """The artifacts of an MLflow run as they are now: in S3, the current version of each
    object under the run's artifact URI; on this machine's filesystem, the files with
    "sha256:<hex>" of their bytes as version ids (so the fingerprint still pins bytes)."""
    if not run_id:
        raise BadRequest('An mlflow-run-artifacts input needs "run_id".')
    client = _mlflow_client(tracking_uri)
    try:
        artifact_uri = client.get_run(run_id).info.artifact_uri
    except Exception as exc:  # MLflow raises its own exception types
        why = redact(exc, [tracking_uri or _default_tracking_uri()])[:200]
        raise NotFound(f"MLflow has no run {run_id!r} ({why}).") from exc
    spec = service.parse_spec("now")
    if artifact_uri.startswith("s3://"):
        bucket, prefix = parse_s3_uri(artifact_uri)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        return Manifest.of(bucket, prefix, spec, _current_versions(service, bucket, prefix))
    from urllib.parse import unquote, urlparse

    parsed = urlparse(artifact_uri)
    if parsed.scheme not in ("", "file"):
        raise BadRequest(
            f"The artifacts of run {run_id} are at {redact(artifact_uri)}; "
            "transforms read artifacts stored in S3 or on this machine's filesystem."
        )
    root = unquote(parsed.path) if parsed.scheme == "file" else artifact_uri
    objects: list[ObjectVersion] = []
    for dirpath, _dirs, files in os.walk(root):
        for fname in files:
            path = os.path.join(dirpath, fname)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(chunk)
            stat = os.stat(path)
            objects.append(
                ObjectVersion(
                    rel,
                    "sha256:" + digest.hexdigest(),
                    int(stat.st_mtime * 1000),
                    stat.st_size,
                    digest.hexdigest()[:32],
                )
            )
    objects.sort(key=lambda o: o.key.encode("utf-8"))
    return Manifest.of("", "", spec, objects, local_root=root)


def _current_versions(service: InfinstorService, bucket: str, prefix: str) -> list[ObjectVersion]:
    """The current version of every object under a prefix, straight from S3."""
    out: list[ObjectVersion] = []
    for page in iter_version_pages(service.s3(), bucket, prefix=prefix):
        for entry, latest in zip(page.entries, page.latest):
            if latest and not entry.is_delete_marker:
                out.append(
                    ObjectVersion(
                        entry.key, entry.version_id, entry.time_ms, entry.size, entry.etag
                    )
                )
    out.sort(key=lambda o: o.key.encode("utf-8"))
    return out
