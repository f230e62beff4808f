"""Views of a bucket: listings, one object (metadata, preview, download), history, diff,
timeline and the time-spec parser, each resolved through ``services.views``."""

from __future__ import annotations

from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from tornado.iostream import StreamClosedError

from ..timespec import accepted_forms_message
from .base import (
    DOWNLOAD_CHUNK_BYTES,
    MAX_KEYS_LIMIT,
    MAX_TIMELINE_BINS,
    InfinstorAPIHandler,
    _content_disposition,
    _resolve_object,
    http_error,
)


class ObjectsHandler(InfinstorAPIHandler):
    """``GET /infinstor/buckets/{bucket}/objects``: one page of a snapshot or slice."""

    @tornado.web.authenticated
    @authorized
    async def get(self, bucket: str):
        prefix = self.query("prefix")
        delimiter_arg = self.query("delimiter")
        delimiter = "/" if delimiter_arg is None else (delimiter_arg or None)
        max_keys = self.query_int("max_keys", MAX_KEYS_LIMIT, 1, MAX_KEYS_LIMIT)
        # Not "token": Jupyter reads ?token= as its own auth token (and refuses a wrong one).
        token = self.query_value("page_token")
        start_after = self.query("start_after") or None
        at, slice_, label = (self.query_spec(n) for n in ("at", "slice", "label"))
        service = self.service

        def work() -> str:
            view = service.views.resolve_view(
                bucket, at=at, slice_=slice_, label=label, prefix=prefix
            )
            # Encoded in the pool (the event loop only sends the text), and cached until
            # the next commit to the index.
            return service.list_objects_json(
                bucket,
                spec=view.spec,
                prefix=view.prefix,
                delimiter=delimiter,
                max_keys=max_keys,
                token=token,
                start_after=start_after,
                within=view.within,
                extra={
                    "bucket": bucket,
                    "prefix": view.prefix,
                    "delimiter": delimiter,
                    "spec": view.spec.to_dict(),
                },
            )

        self.write_json_text(await self.run(work, query=True))


class ObjectHandler(InfinstorAPIHandler):
    """``GET /infinstor/buckets/{bucket}/object?key=``: metadata, download or preview of the
    version of one key that a view (or an explicit version id) names."""

    @tornado.web.authenticated
    @authorized
    async def get(self, bucket: str):
        key = self.query("key")
        if not key:
            raise http_error(400, "The key query parameter is required (the object's full key).")
        version_id = self.query_value("version_id")
        at, slice_, label = (self.query_spec(n) for n in ("at", "slice", "label"))
        download = self.query_bool("download")
        preview = self.query_bool("preview")
        if download and preview:
            raise http_error(400, "Ask for either download=1 or preview=1, not both.")
        service = self.service
        obj, spec = await self.run(
            lambda: _resolve_object(service, bucket, key, version_id, at, slice_, label),
            query=True,
        )
        if preview:
            await self._preview(bucket, obj)
        elif download:
            await self._download(bucket, obj)
        else:
            doc = obj.to_history_json()
            doc.update({"bucket": bucket, "content_type": service.content_type_for(obj.key)})
            if spec is not None:  # resolved through a view, not an explicit version id
                doc["spec"] = spec.to_dict()
            self.write_json(doc)

    async def _preview(self, bucket: str, obj: Any) -> None:
        service = self.service
        max_bytes = self.preview_max_bytes
        data, ctype, truncated = await self.run(
            lambda: service.preview_object(obj, bucket, max_bytes=max_bytes)
        )
        self.set_header("X-Infinstor-Truncated", "true" if truncated else "false")
        self.set_header("X-Infinstor-Version-Id", obj.version_id)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Disposition", _content_disposition("inline", obj.key))
        self.finish(data, set_content_type=ctype)

    async def _download(self, bucket: str, obj: Any) -> None:
        """Stream exactly that version: each read runs in the pool, each write is flushed
        before the next read, so at most one chunk is held in memory."""
        service = self.service
        resp = await self.run(lambda: service.open_object(obj, bucket))
        body = resp["Body"]
        ctype = service.content_type_for(obj.key)
        length = resp.get("ContentLength")
        self.set_header("Content-Type", ctype)
        self.set_header("Content-Length", str(length if length is not None else obj.size))
        self.set_header("Content-Disposition", _content_disposition("attachment", obj.key))
        self.set_header("X-Infinstor-Version-Id", obj.version_id)
        self.set_header("X-Content-Type-Options", "nosniff")
        try:
            while True:
                chunk = await self.run(lambda: body.read(DOWNLOAD_CHUNK_BYTES))
                if not chunk:
                    break
                self.write(chunk)
                await self.flush()
        except StreamClosedError:
            self.log.debug("infinstor_jlab: client left during the download of %r", obj.key)
            return
        finally:
            body.close()
        self.finish(set_content_type=ctype)


class HistoryHandler(InfinstorAPIHandler):
    """``GET /infinstor/buckets/{bucket}/history?key=``: every known version, newest first."""

    @tornado.web.authenticated
    @authorized
    async def get(self, bucket: str):
        key = self.query("key")
        if not key:
            raise http_error(400, "The key query parameter is required (the object's full key).")
        service = self.service
        versions = await self.run(lambda: service.history(bucket, key), query=True)
        self.write_json(
            {
                "bucket": bucket,
                "key": key,
                "versions": [v.to_history_json() for v in versions],
            }
        )


class DiffHandler(InfinstorAPIHandler):
    """``GET /infinstor/buckets/{bucket}/diff?from=&to=``: what changed between two times."""

    @tornado.web.authenticated
    @authorized
    async def get(self, bucket: str):
        prefix = self.query("prefix") or ""
        from_text, to_text = self.query_spec("from"), self.query_spec("to")
        service = self.service

        def work() -> dict[str, Any]:
            from_spec, to_spec = service.views.resolve_diff(from_text, to_text)
            result = service.diff(bucket, prefix=prefix, from_spec=from_spec, to_spec=to_spec)
            doc = result.to_json()
            doc.update(
                {
                    "bucket": bucket,
                    "prefix": prefix,
                    "from": from_spec.to_dict(),
                    "to": to_spec.to_dict(),
                    "counts": {
                        "added": len(result.added),
                        "deleted": len(result.deleted),
                        "modified": len(result.modified),
                    },
                }
            )
            return doc

        self.write_json(await self.run(work, query=True))


class TimelineHandler(InfinstorAPIHandler):
    """``GET /infinstor/buckets/{bucket}/timeline``: versions created/deleted per time bin."""

    @tornado.web.authenticated
    @authorized
    async def get(self, bucket: str):
        prefix = self.query("prefix") or ""
        from_text, to_text = self.query_spec("from"), self.query_spec("to")
        bins = self.query_int("bins", 100, 1, MAX_TIMELINE_BINS)
        service = self.service

        def work() -> dict[str, Any]:
            from_ms, to_ms = service.views.time_window(from_text, to_text)
            timeline = service.timeline(
                bucket, prefix=prefix, from_ms=from_ms, to_ms=to_ms, bins=bins
            )
            return timeline.to_json()

        self.write_json(await self.run(work, query=True))


class TimespecHandler(InfinstorAPIHandler):
    """``GET /infinstor/timespec?spec=``: parse a time spec the way every other route does."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        text = self.query_spec("spec")
        if text is None:
            raise http_error(400, accepted_forms_message("The spec query parameter is required."))
        service = self.service
        spec = await self.run(lambda: service.views.parse_spec(text, default_now=False), query=True)
        self.write_json(spec.to_dict())
