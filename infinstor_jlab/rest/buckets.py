"""Buckets: health, the bucket list, tracking, syncs and their jobs."""

from __future__ import annotations

import json
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized

from .. import __version__
from ..services.backfill import DEFAULT_PARALLEL
from .base import (
    InfinstorAPIHandler,
    _index_schema_version,
)


def _listing_streams(body: dict[str, Any], default: int) -> int:
    """A request's ``parallel``: how many partitions a sync lists at once."""
    parallel = body.get("parallel", default)
    if isinstance(parallel, bool) or not isinstance(parallel, int) or not 1 <= parallel <= 256:
        raise tornado.web.HTTPError(
            400, "parallel must be a whole number of listing streams from 1 to 256."
        )
    return parallel


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
        parallel = _listing_streams(body, DEFAULT_PARALLEL)
        service = self.service

        def work() -> dict[str, Any]:
            before = service.track(bucket, enable_versioning_consent=consent, events=events)
            # A first sync lists the bucket's partitions in parallel (services/backfill.py).
            job = service.start_sync_job(bucket, parallel=parallel)
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
        body = self.json_body()
        full = self.body_bool(body, "full", False)
        parallel = _listing_streams(body, 1)
        service = self.service
        job = await self.run(lambda: service.start_sync_job(bucket, full=full, parallel=parallel))
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
