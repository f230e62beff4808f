"""The service layer; adapters (CLI, REST handlers, boto3 hooks) call only into here."""

from .core import InfinstorService, VerifyReport, parse_s3_uri

__all__ = ["InfinstorService", "VerifyReport", "parse_s3_uri"]
