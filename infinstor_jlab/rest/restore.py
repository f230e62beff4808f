"""Restore a folder to a time, download a view into the Jupyter file tree, and the jobs that
run them: thin adapters over services/restore.py, services/localcopy.py and services/jobs.py."""

from __future__ import annotations

import os
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized

from ..errors import BadRequest
from ..services.localcopy import LocalCopyService
from ..services.restore import RestoreService
from .base import InfinstorAPIHandler, http_error


def confirm_name(bucket: str, prefix: str) -> str:
    """What the user types to confirm a restore: the folder's name (the bucket's for the
    whole bucket)."""
    return prefix.rstrip("/").rsplit("/", 1)[-1] or bucket


class _RestoreBase(InfinstorAPIHandler):
    def restore_args(self, bucket: str) -> tuple[dict[str, Any], str, str, bool]:
        body = self.json_body()
        prefix = self.body_str(body, "prefix", required=True) or ""
        to = self.body_str(body, "to", required=True) or ""
        if not to.strip():
            raise http_error(400, 'The request body needs "to": the time to restore to.')
        self.check_key_length("prefix", prefix)
        return body, prefix, to, self.body_bool(body, "force", False)


class RestorePlanHandler(_RestoreBase):
    """``POST /infinstor/buckets/{bucket}/restore/plan``: what a restore would do now."""

    @tornado.web.authenticated
    @authorized
    async def post(self, bucket: str):
        _body, prefix, to, force = self.restore_args(bucket)
        service = self.service

        def work() -> dict[str, Any]:
            view = service.views.resolve_view(bucket, at=to, prefix=prefix, default_now=False)
            plan = RestoreService(service).plan(bucket, view.prefix, view.spec, force=force)
            doc = plan.to_json()
            doc["confirm"] = confirm_name(bucket, view.prefix)
            return doc

        self.write_json(await self.run(work))


class RestoreHandler(_RestoreBase):
    """``POST /infinstor/buckets/{bucket}/restore``: start a restore (a job)."""

    @tornado.web.authenticated
    @authorized
    async def post(self, bucket: str):
        body, prefix, to, force = self.restore_args(bucket)
        confirm = self.body_str(body, "confirm", required=True)
        expect = self.body_str(body, "expect")
        parallel = body.get("parallel", 8)
        if not isinstance(parallel, int) or isinstance(parallel, bool) or not 1 <= parallel <= 64:
            raise http_error(400, '"parallel" must be a whole number between 1 and 64.')
        service = self.service

        def start() -> Any:
            view = service.views.resolve_view(bucket, at=to, prefix=prefix, default_now=False)
            name = confirm_name(bucket, view.prefix)
            if confirm != name:
                raise BadRequest(
                    f"Type the folder's name, {name!r}, as confirm to restore "
                    f"s3://{bucket}/{view.prefix}."
                )
            restorer = RestoreService(service)

            def work(job: Any) -> dict[str, Any]:
                return restorer.restore(
                    bucket,
                    view.prefix,
                    view.spec,
                    force=force,
                    parallel=parallel,
                    expect=expect,
                    on_progress=job.progress,
                ).to_json()

            return service.jobs.start("restore", work)

        job = await self.run(start)
        self.set_header("Location", self.api_url("jobs", job.id))
        self.write_json(job.to_json(), status=202)


class GetHandler(InfinstorAPIHandler):
    """``POST /infinstor/buckets/{bucket}/get``: download a view into a folder of the Jupyter
    file tree (a job)."""

    def jupyter_root(self) -> str:
        root = self.settings.get("server_root_dir") or getattr(
            self.settings.get("contents_manager"), "root_dir", None
        )
        return os.path.realpath(os.path.expanduser(root or os.getcwd()))

    @tornado.web.authenticated
    @authorized
    async def post(self, bucket: str):
        body = self.json_body()
        prefix = self.body_str(body, "prefix")
        at = self.body_str(body, "at")
        slice_ = self.body_str(body, "slice")
        label = self.body_str(body, "label")
        path = self.body_str(body, "path", required=True) or ""
        self.check_key_length("prefix", prefix or "")
        root = self.jupyter_root()
        parts = path.replace("\\", "/").strip("/").split("/")
        if not path.strip() or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise http_error(
                400,
                f'"path" must be a folder inside the Jupyter file tree, such as data/tables, '
                f"with no '..' or '.' parts; got {path[:200]!r}.",
            )
        target = os.path.join(root, *parts)
        real = os.path.realpath(target)
        if not (real == root or real.startswith(root + os.sep)):
            raise http_error(400, f"{path!r} leaves the Jupyter file tree (a symbolic link).")
        service = self.service

        def start() -> Any:
            view = service.views.resolve_view(
                bucket, at=at, slice_=slice_, label=label, prefix=prefix
            )
            local = LocalCopyService(service)

            def work(job: Any) -> dict[str, Any]:
                doc = local.get(view, target, on_progress=job.progress).to_json()
                doc["directory"] = "/".join(parts)  # relative to the Jupyter root
                return doc

            return service.jobs.start("get", work)

        job = await self.run(start)
        self.set_header("Location", self.api_url("jobs", job.id))
        self.write_json(job.to_json(), status=202)


class JobHandler(InfinstorAPIHandler):
    """``GET /infinstor/jobs/{job_id}``: a restore's or a download's progress and result."""

    @tornado.web.authenticated
    @authorized
    async def get(self, job_id: str):
        service = self.service
        job = await self.run(lambda: service.jobs.get(job_id), query=True)
        self.write_json(job.to_json())
