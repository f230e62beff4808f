"""The S3-compatible, read-only endpoint that serves any view (snapshot, slice, label,
``run:/``) with unchanged bucket names and keys: server, SigV4 verification, S3's XML."""

from .server import Endpoint, EndpointServer

__all__ = ["Endpoint", "EndpointServer"]
