"""The REST adapter: Tornado handlers of the infinstor_jlab API under ``<base_url>/infinstor/``,
thin adapters over the service layer, one module per resource. ``openapi.yaml`` documents
them (``tests/test_openapi.py`` keeps the two in step)."""

from __future__ import annotations

from .base import InfinstorAPIHandler, route, scrub_uri
from .buckets import (
    BucketsHandler,
    HealthHandler,
    SyncHandler,
    SyncJobHandler,
    TrackHandler,
)
from .downloads import DownloadHandler, DownloadsHandler
from .endpoint import endpoint_handlers
from .labels import LabelHandler, LabelsHandler, LabelVerifyHandler
from .pipelines import pipeline_handlers
from .restore import GetHandler, JobHandler, RestoreHandler, RestorePlanHandler
from .schedules import schedule_handlers
from .transforms import transform_handlers
from .views import (
    DiffHandler,
    HistoryHandler,
    ObjectHandler,
    ObjectsHandler,
    TimelineHandler,
    TimespecHandler,
)

_BUCKET = r"(?P<bucket>[^/]+)"
_LABEL = r"(?P<name>[^/]+)"
_JOB = r"(?P<job_id>[^/]+)"
_TICKET = r"(?P<ticket>[^/]+)"


#: Patterns relative to the server's base_url (ExtensionApp prepends it). Path parameters are
#: named groups; their names are the path parameters of openapi.yaml.
default_handlers = [
    (route("health"), HealthHandler),
    (route("buckets"), BucketsHandler),
    (route("buckets", _BUCKET, "track"), TrackHandler),
    (route("buckets", _BUCKET, "sync"), SyncHandler),
    (route("buckets", _BUCKET, "objects"), ObjectsHandler),
    (route("buckets", _BUCKET, "object"), ObjectHandler),
    (route("buckets", _BUCKET, "history"), HistoryHandler),
    (route("buckets", _BUCKET, "diff"), DiffHandler),
    (route("buckets", _BUCKET, "timeline"), TimelineHandler),
    (route("buckets", _BUCKET, "restore", "plan"), RestorePlanHandler),
    (route("buckets", _BUCKET, "restore"), RestoreHandler),
    (route("buckets", _BUCKET, "get"), GetHandler),
    (route("jobs", _JOB), JobHandler),
    (route("syncs", _JOB), SyncJobHandler),
    (route("labels"), LabelsHandler),
    (route("labels", _LABEL), LabelHandler),
    (route("labels", _LABEL, "verify"), LabelVerifyHandler),
    (route("timespec"), TimespecHandler),
    (route("downloads"), DownloadsHandler),
    (route("downloads", _TICKET), DownloadHandler),
]

#: Every route of the extension.
handlers = (
    default_handlers
    + transform_handlers
    + pipeline_handlers
    + schedule_handlers
    + endpoint_handlers
)

__all__ = [
    "InfinstorAPIHandler",
    "default_handlers",
    "endpoint_handlers",
    "handlers",
    "pipeline_handlers",
    "route",
    "schedule_handlers",
    "scrub_uri",
    "transform_handlers",
]
