"""REST handlers of pipelines and their runs: thin adapters over
:class:`~infinstor_jlab.transforms.pipelines.PipelineService` (the conventions of
``rest/base.py``). ``openapi.yaml`` documents them."""

from __future__ import annotations

from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized

from .base import http_error, route
from .transforms import TransformHandler

PIPELINES_KEY = "infinstor_pipelines"
PIPELINES_MISSING_MESSAGE = (
    "Pipelines are unavailable on this server (they run transforms, which need MLflow: pip "
    "install mlflow); the Jupyter server log says why."
)


class PipelineHandler(TransformHandler):
    """Base of the handlers below: the pipeline service of this server."""

    @property
    def pipelines(self) -> Any:
        value = self.settings.get(PIPELINES_KEY)
        if value is None:
            raise http_error(503, PIPELINES_MISSING_MESSAGE)
        return value


class PipelinesHandler(PipelineHandler):
    """``GET``/``POST /infinstor/pipelines``: list pipelines, save one (a new name or a
    replacement)."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        pipelines = self.pipelines
        self.write_json({"pipelines": await self.run(pipelines.list_pipelines)})

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body()
        if isinstance(body, dict) and set(body) == {"text"}:
            # A pasted pipeline file (YAML or JSON), read as the CLI reads it.
            from ..transforms.pipelines import load_pipeline_text

            if not isinstance(body["text"], str):
                raise http_error(400, '"text" must be the pipeline file\'s text (YAML or JSON).')
            text = body["text"]
            body = await self.run(lambda: load_pipeline_text(text))
        pipelines = self.pipelines
        author = self.author()
        pipeline, created = await self.run(lambda: pipelines.save(body, author=author))
        self.set_header("Location", self.api_url("pipelines", pipeline.name))
        self.write_json(pipeline.to_json(), status=201 if created else 200)


class PipelineNameHandler(PipelineHandler):
    """``GET``/``DELETE /infinstor/pipelines/{name}``."""

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str):
        pipelines = self.pipelines
        self.write_json(await self.run(lambda: pipelines.get(name)))

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str):
        pipelines = self.pipelines
        await self.run(lambda: pipelines.delete(name))
        self.no_content()


class PipelineRunsHandler(PipelineHandler):
    """``GET``/``POST /infinstor/pipelines/{name}/runs``: a pipeline's runs, start one."""

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str):
        limit = self.query_int("limit", 100, 1, 10_000)
        pipelines = self.pipelines
        self.write_json({"runs": await self.run(lambda: pipelines.list_runs(name, limit))})

    @tornado.web.authenticated
    @authorized
    async def post(self, name: str):
        body = self.json_body()
        cache = self.body_bool(body, "cache", True)
        executor = body.get("executor") if isinstance(body, dict) else None
        if executor is not None and (not isinstance(executor, str) or not executor):
            raise http_error(400, '"executor" must be an executor name such as "local".')
        pipelines = self.pipelines
        author = self.author()

        def work() -> dict[str, Any]:
            run = pipelines.start_run(name, cache=cache, author=author, executor=executor)
            return pipelines.run_json(run)

        doc = await self.run(work)
        self.set_header("Location", self.api_url("pipelines", name, "runs", doc["id"]))
        self.write_json(doc, status=201)


class PipelineRunHandler(PipelineHandler):
    """``GET /infinstor/pipelines/{name}/runs/{run_id}``: a run with each step's state;
    ``DELETE``: cancel it (every running step is stopped, waiting ones are skipped)."""

    def _run_of(self, name: str, run_id: str) -> Any:
        pipelines = self.pipelines

        def get() -> dict[str, Any]:
            doc: dict[str, Any] = pipelines.get_run_json(run_id)
            if doc["pipeline"] != name:
                from ..errors import NotFound

                raise NotFound(f"Pipeline {name!r} has no run {run_id!r}.")
            return doc

        return get

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str, run_id: str):
        self.write_json(await self.run(self._run_of(name, run_id)))

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str, run_id: str):
        pipelines = self.pipelines
        get = self._run_of(name, run_id)

        def work() -> dict[str, Any]:
            get()
            pipelines.cancel(run_id)
            return get()

        self.write_json(await self.run(work), status=202)


_NAME = r"(?P<name>[^/]+)"
_RUN = r"(?P<run_id>[^/]+)"

pipeline_handlers = [
    (route("pipelines"), PipelinesHandler),
    (route("pipelines", _NAME), PipelineNameHandler),
    (route("pipelines", _NAME, "runs"), PipelineRunsHandler),
    (route("pipelines", _NAME, "runs", _RUN), PipelineRunHandler),
]
