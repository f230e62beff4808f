"""Labels: list, create, get, delete, verify."""

from __future__ import annotations

from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized

from .base import (
    InfinstorAPIHandler,
)


class LabelsHandler(InfinstorAPIHandler):
    """``GET``/``POST /infinstor/labels``: list labels, create one."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        bucket = self.query_value("bucket")
        service = self.service
        labels = await self.run(lambda: service.list_labels(bucket), query=True)
        self.write_json({"labels": [label.to_json() for label in labels]})

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body()
        name = self.body_str(body, "name", required=True)
        bucket = self.body_str(body, "bucket", required=True)
        prefix = self.body_str(body, "prefix", "")
        at = self.body_str(body, "at")
        slice_ = self.body_str(body, "slice")
        description = self.body_str(body, "description", "")
        self.check_key_length("prefix", prefix or "")
        service = self.service
        user = self.current_user
        who = getattr(user, "username", None) or getattr(user, "name", None)

        def work() -> Any:
            # "at" absent or empty: now.
            view = service.views.resolve_pin(bucket, prefix, at=at, slice_=slice_)
            return service.create_label(
                name,
                bucket,
                view.prefix,
                view.spec,
                description=description,
                created_by=str(who) if who else None,
            )

        label = await self.run(work)
        self.set_header("Location", self.api_url("labels", label.name))
        self.write_json(label.to_json(), status=201)


class LabelHandler(InfinstorAPIHandler):
    """``GET``/``DELETE /infinstor/labels/{name}``."""

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str):
        service = self.service
        label = await self.run(lambda: service.get_label(name), query=True)
        self.write_json(label.to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str):
        service = self.service
        await self.run(lambda: service.delete_label(name))
        self.no_content()


class LabelVerifyHandler(InfinstorAPIHandler):
    """``POST /infinstor/labels/{name}/verify``: does the label still resolve to its bytes?"""

    @tornado.web.authenticated
    @authorized
    async def post(self, name: str):
        check_s3 = self.body_bool(self.json_body(), "check_s3", True)
        service = self.service
        report = await self.run(lambda: service.verify_label(name, check_s3=check_s3))
        self.write_json(report.to_json())
