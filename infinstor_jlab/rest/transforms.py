"""REST handlers of transforms and their runs: thin adapters over
:class:`~infinstor_jlab.transforms.service.TransformService`, with the same conventions as
``rest/base.py`` (authenticated and authorized, blocking work in the thread pool, errors as
``{"message": ...}``). ``openapi.yaml`` documents them."""

from __future__ import annotations

from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized

from .base import InfinstorAPIHandler, http_error, route

TRANSFORMS_KEY = "infinstor_transforms"
TRANSFORMS_MISSING_MESSAGE = (
    "Transforms are unavailable on this server (they need MLflow: pip install mlflow); the "
    "Jupyter server log says why."
)
MAX_LOG_LINES = 10_000


class TransformHandler(InfinstorAPIHandler):
    """Base of the handlers below: the transform service of this server."""

    @property
    def transforms(self) -> Any:
        value = self.settings.get(TRANSFORMS_KEY)
        if value is None:
            raise http_error(503, TRANSFORMS_MISSING_MESSAGE)
        return value

    def author(self) -> str:
        user = self.current_user
        return str(getattr(user, "username", None) or getattr(user, "name", None) or "")


class ExecutorsHandler(TransformHandler):
    """``GET /infinstor/executors``: where runs can go, and the run dialog's defaults."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        transforms = self.transforms
        self.write_json(await self.run(transforms.executors_info))


class TransformsHandler(TransformHandler):
    """``GET``/``POST /infinstor/transforms``: list transforms, store a new revision."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        transforms = self.transforms
        self.write_json({"transforms": await self.run(transforms.list_transforms)})

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body()
        name = self.body_str(body, "name", required=True)
        source = self.body_str(body, "source", required=True)
        description = self.body_str(body, "description", "")
        transforms = self.transforms
        author = self.author()
        rev, created = await self.run(
            lambda: transforms.save_revision_reporting(
                name, source, author=author, description=description
            )
        )
        self.set_header("Location", self.api_url("transforms", rev.name))
        self.write_json(rev.to_json(), status=201 if created else 200)


class TransformCheckHandler(TransformHandler):
    """``POST /infinstor/transforms/check``: clean and check a cell, store nothing."""

    @tornado.web.authenticated
    @authorized
    async def post(self):
        source = self.body_str(self.json_body(), "source", required=True)
        transforms = self.transforms
        captured = await self.run(lambda: transforms.check(source))
        self.write_json(captured.to_json())


class TransformNameHandler(TransformHandler):
    """``GET``/``DELETE /infinstor/transforms/{name}``."""

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str):
        transforms = self.transforms
        self.write_json(await self.run(lambda: transforms.get_transform(name)))

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str):
        transforms = self.transforms
        await self.run(lambda: transforms.delete_transform(name))
        self.no_content()


class RunsHandler(TransformHandler):
    """``GET``/``POST /infinstor/runs``: list runs, start one."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        name = self.query("transform") or None
        limit = self.query_int("limit", 100, 1, 10_000)
        active = self.query_bool("active", False)
        transforms = self.transforms

        runs = await self.run(lambda: transforms.list_runs(name, active=active, limit=limit))
        self.write_json({"runs": runs})

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body()
        name = self.body_str(body, "transform", required=True)
        executor = self.body_str(body, "executor", "local")
        output_uri = self.body_str(body, "output_uri") or None
        label_output = self.body_str(body, "label_output") or None
        revision = body.get("revision")
        if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)):
            raise http_error(400, '"revision" must be a whole number (omit it for the latest).')
        input_spec = body.get("input", {"type": "no-input-data"})
        if not isinstance(input_spec, dict):
            raise http_error(
                400, '"input" must be an object such as {"type": "label", "label": "my-label"}.'
            )
        kwargs = body.get("kwargs")
        if kwargs is not None and not isinstance(kwargs, (dict, str)):
            raise http_error(400, '"kwargs" must be a JSON object (or its text).')
        requirements = body.get("requirements")
        transforms = self.transforms

        def work() -> dict[str, Any]:
            run = transforms.start_run(
                name,
                input_spec=input_spec,
                output_uri=output_uri,
                executor=executor,
                revision=revision,
                kwargs=kwargs,
                requirements=requirements,
                label_output=label_output,
            )
            return transforms.run_json(run)

        doc = await self.run(work)
        self.set_header("Location", self.api_url("runs", doc["id"]))
        self.write_json(doc, status=201)


class RunHandler(TransformHandler):
    """``GET /infinstor/runs/{run_id}``: a run with its progress."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str):
        transforms = self.transforms
        self.write_json(await self.run(lambda: transforms.get_run_json(run_id)))


class RunCancelHandler(TransformHandler):
    """``POST /infinstor/runs/{run_id}/cancel``."""

    @tornado.web.authenticated
    @authorized
    async def post(self, run_id: str):
        transforms = self.transforms
        self.write_json(await self.run(lambda: transforms.run_json(transforms.cancel(run_id))))


class RunLogHandler(TransformHandler):
    """``GET /infinstor/runs/{run_id}/log?lines=``: the tail of the driver's log."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str):
        lines = self.query_int("lines", 200, 1, MAX_LOG_LINES)
        transforms = self.transforms
        self.write_json({"log": await self.run(lambda: transforms.log(run_id, lines))})


_NAME = r"(?P<name>[^/]+)"
_RUN = r"(?P<run_id>[^/]+)"

#: Patterns relative to the server's base_url, like ``handlers.default_handlers``.
transform_handlers = [
    (route("executors"), ExecutorsHandler),
    (route("transforms"), TransformsHandler),
    (route("transforms", "check"), TransformCheckHandler),
    (route("transforms", _NAME), TransformNameHandler),
    (route("runs"), RunsHandler),
    (route("runs", _RUN), RunHandler),
    (route("runs", _RUN, "cancel"), RunCancelHandler),
    (route("runs", _RUN, "log"), RunLogHandler),
]
