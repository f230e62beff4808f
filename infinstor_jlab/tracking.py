"""MLflow's tracking store as infinstor_jlab uses it: one way to open a client, so that a store
MLflow refuses (MLflow 3 refuses a ``file:`` store unless ``MLFLOW_ALLOW_FILE_STORE=true``, an
unknown scheme, ...) is our :class:`~infinstor_jlab.errors.TrackingUnavailable` with MLflow's
own explanation, and a check of the store for the health answer (``GET executors``)."""

from __future__ import annotations

import os
import threading
from typing import Any

from .errors import TrackingUnavailable
from .redact import local_store_path, redact, safe_uri, tracking_uri

_usable: set[str] = set()  # stores that opened once in this process
_lock = threading.Lock()


def _resolved(uri: str | None) -> str:
    return uri or tracking_uri()


def setup_message(uri: str | None, exc: BaseException) -> str:
    """The sentence for a store MLflow cannot use: which store (without secrets), MLflow's
    explanation, and where the setting lives."""
    store = _resolved(uri)
    why = redact(exc, [store]).strip() or type(exc).__name__
    if not why.endswith((".", "!", "?")):
        why += "."
    return (
        f"MLflow cannot use the tracking store {safe_uri(store) or '(MLflow default)'}: "
        f"{why} Change it as MLflow says (MLFLOW_TRACKING_URI, or "
        "InfinstorApp.mlflow_tracking_uri on a Jupyter server; environment variables are "
        "read when the server starts), then try again."
    )


def open_client(uri: str | None = None) -> Any:
    """An ``MlflowClient`` for ``uri`` (None: MLflow's own choice). MLflow opens the store
    here, so a store it refuses raises :class:`TrackingUnavailable`. Without MLflow installed,
    ImportError (callers say what needs it)."""
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=uri or None)
    except Exception as exc:  # MlflowException and whatever a store's constructor raises
        raise TrackingUnavailable(setup_message(uri, exc)) from exc
    with _lock:
        _usable.add(_resolved(uri))
    return client


def status(uri: str | None = None) -> dict[str, Any]:
    """``{"available", "store", "detail"}`` for the health answer. The store is opened as a run
    would open it, except a sqlite database that does not exist yet (opening it would create
    it; the first run does); a store that opened once is not opened again."""
    store = _resolved(uri)
    shown = safe_uri(store)
    path = local_store_path(store) if store.startswith("sqlite:") else None
    if store in _usable or (path and path != ":memory:" and not os.path.exists(path)):
        return {"available": True, "store": shown, "detail": None}
    try:
        open_client(uri)
    except ImportError:
        return {
            "available": False,
            "store": shown,
            "detail": "MLflow is not installed on this server: pip install mlflow.",
        }
    except TrackingUnavailable as exc:
        return {"available": False, "store": shown, "detail": exc.message}
    return {"available": True, "store": shown, "detail": None}
