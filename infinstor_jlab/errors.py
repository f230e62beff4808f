"""Errors a user can meet. Each message is a sentence that says what to do.

Adapters map these to their medium: the CLI prints the message to stderr and exits non-zero,
REST handlers turn them into ``HTTPError(status, message)``.
"""

from __future__ import annotations


class InfinstorError(Exception):
    """Base class; ``status`` is the HTTP status a REST adapter should answer with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadTimeSpec(InfinstorError):
    status = 400


class BadRequest(InfinstorError):
    status = 400


class NotFound(InfinstorError):
    status = 404


class UnknownBucket(NotFound):
    pass


class UnknownLabel(NotFound):
    pass


class Conflict(InfinstorError):
    status = 409


class VersioningDisabled(InfinstorError):
    status = 409


class AccessDenied(InfinstorError):
    status = 403


class IndexUnavailable(InfinstorError):
    """The snapshot index file cannot be opened (not a database, corrupt, no permission)."""

    status = 503


class StorageError(InfinstorError):
    """The object store failed in a way the user must act on (credentials, endpoint)."""

    status = 502


class TrackingUnavailable(InfinstorError):
    """MLflow cannot use the configured tracking store (it refuses it, or cannot reach it)."""

    status = 503
