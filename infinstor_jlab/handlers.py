"""Tornado handlers of the infinstor_jlab REST API (thin adapters over the services)."""

import json

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from . import __version__

#: Resource name checked by the server's Authorizer for every infinstor_jlab endpoint.
AUTH_RESOURCE = "infinstor"


def _index_schema_version() -> int:
    try:
        from .index import SCHEMA_VERSION
    except ImportError:
        return 1
    return int(SCHEMA_VERSION)


class HealthHandler(APIHandler):
    """``GET /infinstor/health``: the extension's version and its index schema version."""

    auth_resource = AUTH_RESOURCE

    @tornado.web.authenticated
    @authorized
    def get(self):
        self.finish(
            json.dumps({"version": __version__, "index_schema_version": _index_schema_version()})
        )


#: Patterns relative to the server's base_url (ExtensionApp prepends it).
default_handlers = [
    (url_path_join("/infinstor", "health"), HealthHandler),
]
