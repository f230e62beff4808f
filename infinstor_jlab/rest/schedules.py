"""REST handlers of schedules: thin adapters over
:class:`~infinstor_jlab.transforms.schedules.ScheduleService` (authenticated and authorized,
blocking work in the thread pool, errors as ``{"message": ...}``; ``openapi.yaml``)."""

from __future__ import annotations

from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized

from .base import http_error, route
from .transforms import TransformHandler

SCHEDULES_KEY = "infinstor_schedules"


class ScheduleHandler(TransformHandler):
    @property
    def schedules(self) -> Any:
        value = self.settings.get(SCHEDULES_KEY)
        if value is None:
            self.transforms  # noqa: B018 - the transforms' own 503 when they are missing
            raise http_error(503, "Schedules are unavailable on this server; its log says why.")
        return value


class SchedulesHandler(ScheduleHandler):
    """``GET``/``POST /infinstor/schedules``: list schedules, define one."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        schedules = self.schedules
        self.write_json({"schedules": await self.run(schedules.list)})

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body()
        schedules = self.schedules
        author = self.author()
        doc = await self.run(lambda: schedules.summary(schedules.create(body, author=author)))
        self.set_header("Location", self.api_url("schedules", doc["name"]))
        self.write_json(doc, status=201)


class ScheduleNameHandler(ScheduleHandler):
    """``GET``/``DELETE /infinstor/schedules/{name}``: one schedule with its windows."""

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str):
        limit = self.query_int("windows", 100, 1, 10_000)
        schedules = self.schedules
        self.write_json(await self.run(lambda: schedules.get(name, windows=limit)))

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str):
        schedules = self.schedules
        await self.run(lambda: schedules.delete(name))
        self.no_content()


class ScheduleActionHandler(ScheduleHandler):
    """``POST /infinstor/schedules/{name}/{pause|resume|run}``: ``run`` fires it now (the
    run goes on in the background; the window says how it ended)."""

    @tornado.web.authenticated
    @authorized
    async def post(self, name: str, action: str):
        schedules = self.schedules
        if action not in ("pause", "resume", "run"):
            raise http_error(
                404, f"There is no schedule action {action[:40]!r}: use pause, resume or run."
            )
        if action in ("pause", "resume"):
            doc = await self.run(
                lambda: schedules.summary(schedules.set_paused(name, action == "pause"))
            )
            self.write_json(doc)
            return

        def fire() -> dict[str, Any]:
            schedules.store.get(name)  # 404 for an unknown name
            started = schedules.tick(only=name, force=True)
            return {"windows": [w.to_json() for w in started]}

        self.write_json(await self.run(fire), status=202)


_NAME = r"(?P<name>[^/]+)"

schedule_handlers = [
    (route("schedules"), SchedulesHandler),
    (route("schedules", _NAME), ScheduleNameHandler),
    (route("schedules", _NAME, r"(?P<action>[^/]+)"), ScheduleActionHandler),
]
