"""``test_infin_transform``: try a transform on a view inside the notebook, as InfinStor did.

It calls the entry point the notebook defined (the live function, so breakpoints and prints
work), on the exact versions of the view's objects downloaded to a temporary input directory,
inside an MLflow run that records the same lineage params as a real run.
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
import traceback
from typing import Any

from ..errors import BadRequest
from ..transforms.capture import ENTRY_POINTS


def _input_dict(spec: Any) -> dict[str, Any]:
    """The original dict forms, or 's3://bucket/prefix' with an optional ' @ <time spec>'."""
    if isinstance(spec, dict):
        return dict(spec)
    if isinstance(spec, str) and spec.startswith("s3://"):
        uri, _, when = spec.partition("@")
        bucket, _, prefix = uri.strip()[5:].partition("/")
        return {
            "type": "infinsnap",
            "bucketname": bucket,
            "prefix": prefix,
            "time_spec": when.strip() or "now",
        }
    if isinstance(spec, str) and spec.startswith("label:/"):
        return {"type": "label", "label": spec}
    raise BadRequest(
        "input_data_spec must be a dict such as {'type': 'infinsnap', "
        "'bucketname': 'b', 'prefix': 'p/', 'time_spec': 'tm20261120100000'}, "
        "a label:/<name>, or 's3://bucket/prefix @ <time spec>'."
    )


def _service() -> Any:
    from ..index import open_index
    from ..services import InfinstorService

    return InfinstorService(open_index())


def run_local_test(
    namespace: dict[str, Any], input_data_spec: Any, *, output_dir: str | None = None, **kwargs: Any
) -> str:
    """Run the entry point defined in ``namespace`` over the view; returns the output dir."""
    entry = next((name for name in ENTRY_POINTS if callable(namespace.get(name))), None)
    if entry is None:
        raise BadRequest(
            "Define one of " + ", ".join(ENTRY_POINTS) + " in the notebook "
            "first (run its cell), then call test_infin_transform."
        )
    spec = _input_dict(input_data_spec)
    svc = _service()
    from ..transforms.inputs import resolve_input, view_params

    manifest = resolve_input(svc, spec)
    work = tempfile.mkdtemp(prefix="infinstor-test-")
    input_dir = os.path.join(work, "input")
    out = output_dir or os.path.join(work, "output")
    os.makedirs(input_dir, exist_ok=True)
    os.makedirs(out, exist_ok=True)
    s3 = svc.s3()
    local: list[tuple[str, str]] = []
    from ..transforms.driver import relative_key

    if manifest is not None:
        for obj in manifest.objects:
            path = os.path.join(input_dir, *relative_key(obj.key, manifest.prefix).split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            s3.download_file(
                manifest.bucket, obj.key, path, ExtraArgs={"VersionId": obj.version_id}
            )
            local.append((obj.key, path))
    import mlflow

    from ..tracking import open_client

    open_client()  # a store MLflow refuses is our error, with MLflow's explanation
    fn = namespace[entry]
    failures: list[str] = []
    with mlflow.start_run(run_name=f"test {entry}"):
        mlflow.log_params(
            {
                "entry_point": entry,
                "input_spec": str(spec)[:500],
                "object_count": len(local),
                "executor": "notebook",
            }
        )
        if manifest is not None:
            mlflow.log_params(
                {"manifest_fingerprint": manifest.fingerprint, **view_params(manifest.spec)}
            )
        if entry == "infin_transform_one_object":
            for key, path in local:
                try:
                    fn(path, out, os.path.dirname(path), **kwargs)
                except Exception:  # noqa: BLE001 - reported below, like a real run
                    failures.append(f"{key}:\n{traceback.format_exc()}")
        elif entry == "infin_transform_dir_by_dir":
            for d in sorted({os.path.dirname(p) for _, p in local}) or [input_dir]:
                fn(input_dir, out, d, **kwargs)
        elif entry == "infin_transform_all_objects":
            fn(input_dir, out, **kwargs)
        else:
            import pandas as pd

            frames = [pd.read_csv(p) for k, p in local if k.lower().endswith(".csv")]
            df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
            result = fn(df, **kwargs)
            if result is not None and hasattr(result, "to_csv"):
                result.to_csv(os.path.join(out, "output.csv"), index=False)
        mlflow.log_artifacts(out, "output")
        if failures:
            mlflow.set_tag("infinstor.state", "failed")
            raise RuntimeError(f"{len(failures)} object(s) failed:\n" + "\n".join(failures))
    shutil.rmtree(input_dir, ignore_errors=True)
    return out


def test_infin_transform(input_data_spec: Any, **kwargs: Any) -> str:
    """Run the transform this notebook defines over a view, locally, in an MLflow run.

    ``input_data_spec``: ``{"type": "infinsnap", "bucketname", "prefix", "time_spec"}``,
    ``{"type": "infinslice", ...}``, ``{"type": "label", "label"}``,
    ``{"type": "no-input-data"}``, ``"label:/<name>"`` or ``"s3://bucket/prefix @ <spec>"``.
    Returns the directory the transform wrote to.
    """
    caller = inspect.currentframe()
    namespace = caller.f_back.f_globals if caller and caller.f_back else {}
    return run_local_test(namespace, input_data_spec, **kwargs)


test_infin_transform.__test__ = False  # not a pytest test, despite its historical name
__all__ = ["run_local_test", "test_infin_transform"]
