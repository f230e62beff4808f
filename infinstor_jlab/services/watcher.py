"""Keeps tracked buckets current: one thread per queue long-polls S3 events, one thread runs the
periodic ListObjectVersions reconcile. Used by the Jupyter server and by
``infinstor-jlab watch``."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..errors import InfinstorError, UnknownBucket
from ..index.models import BucketRecord
from ..timespec import now_ms
from .coordination import SyncBusy
from .events import EventPoller

log = logging.getLogger(__name__)


class BucketWatcher:
    def __init__(
        self,
        service: Any,
        *,
        wait_seconds: int = 10,
        reconcile_interval: float = 300.0,
        buckets: list[str] | None = None,
    ) -> None:
        self.service = service
        self.wait_seconds = wait_seconds
        self.reconcile_interval = reconcile_interval
        self.only = set(buckets) if buckets else None
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._pollers: dict[str, EventPoller] = {}
        self._lock = threading.Lock()
        self._reconciler: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        for record in self.service.index.list_buckets():
            if self._watches(record):
                self.ensure(record.name)
        if self.reconcile_interval > 0:
            self._reconciler = threading.Thread(
                target=self._reconcile_loop, name="infinstor-reconcile", daemon=True
            )
            self._reconciler.start()

    def _watches(self, record: BucketRecord) -> bool:
        """Tracked (an untracked bucket's history stays as it is), if the watcher was given
        buckets one of them, and (with access checks) one this server's credentials may
        read: on a shared index, another user's bucket is kept current by that user's
        server, never by failing passes that would write errors into its shared record."""
        if record.tracked_ms is None or (self.only is not None and record.name not in self.only):
            return False
        return bool(self.service.access.readable(record.name))

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in [*self._threads.values(), self._reconciler]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def ensure(self, bucket: str) -> bool:
        """Start polling a bucket's queue if it has one and no poller runs. True if polling."""
        with self._lock:
            thread = self._threads.get(bucket)
            if thread is not None and thread.is_alive():
                return True
            try:
                source = self.service.index.get_event_source(bucket)
            except UnknownBucket:
                return False
            queue_url = source.get("queue_url")
            if not queue_url:
                return False
            poller = EventPoller(
                self.service.s3(),
                self.service.sqs(),
                self.service.index,
                bucket,
                str(queue_url),
                wait_seconds=self.wait_seconds,
                coordination=self.service.coordination,
            )
            self._pollers[bucket] = poller
            thread = threading.Thread(
                target=self._poll_loop,
                args=(poller,),
                name=f"infinstor-events-{bucket}",
                daemon=True,
            )
            self._threads[bucket] = thread
            thread.start()
            return True

    def forget(self, bucket: str) -> None:
        with self._lock:
            self._pollers.pop(bucket, None)

    def pending(self, bucket: str) -> int | None:
        poller = self._pollers.get(bucket)
        return poller.pending_messages() if poller else None

    def polling(self, bucket: str) -> bool:
        thread = self._threads.get(bucket)
        return bool(thread and thread.is_alive() and bucket in self._pollers)

    # -- loops ------------------------------------------------------------------------------
    def _poll_loop(self, poller: EventPoller) -> None:
        backoff = 1.0
        while not self._stop.is_set() and self._pollers.get(poller.bucket) is poller:
            try:
                poller.poll_once()
                backoff = 1.0
            except Exception as exc:  # noqa: BLE001 - keep polling; report the error
                message = str(exc) if isinstance(exc, InfinstorError) else repr(exc)
                log.warning("event polling for %s failed: %s", poller.bucket, message)
                try:
                    self.service.index.record_events(poller.bucket, error=message)
                except Exception:  # noqa: BLE001 - the index itself is failing; logged above
                    log.debug("could not record the error for %s", poller.bucket)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 60.0)

    def _reconcile_loop(self) -> None:
        while not self._stop.wait(self.reconcile_interval):
            for record in self.service.index.list_buckets():
                if self._stop.is_set():
                    return
                if not self._watches(record):
                    continue
                coordination = self.service.coordination
                if (
                    coordination.shared
                    and record.last_sync_ms is not None
                    and now_ms() - record.last_sync_ms < self.reconcile_interval * 1000
                ):
                    continue  # another server of the team reconciled it just now
                try:
                    self.service.sync(record.name)
                except SyncBusy:
                    continue  # another server is reconciling it
                except Exception as exc:  # noqa: BLE001
                    log.warning("reconcile of %s failed: %s", record.name, exc)
                    try:
                        self.service.index.record_events(record.name, error=str(exc))
                    except Exception:  # noqa: BLE001 - the index itself is failing
                        log.debug("could not record the error for %s", record.name)
