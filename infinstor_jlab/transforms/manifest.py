"""Manifests: the resolved content of a view as JSON lines, with its fingerprint.

The first line is a header (format version, bucket, prefix, the view's times, object count,
fingerprint); each further line is one object: bucket, key, version id, size, etag. A job run
from a manifest reads exactly the versions the user saw, with no access to the index.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

from ..fingerprint import fingerprint
from ..index.models import ObjectVersion
from ..timespec import TimeSpec

MANIFEST_VERSION = 1


@dataclass
class Manifest:
    bucket: str
    prefix: str
    spec: TimeSpec | None
    objects: list[ObjectVersion]
    fingerprint: str
    #: Set when the objects are files on this machine (an MLflow run's local artifacts): keys
    #: are paths relative to it, and version ids are "sha256:<hex>" of their bytes.
    local_root: str | None = None

    @classmethod
    def of(
        cls,
        bucket: str,
        prefix: str,
        spec: TimeSpec | None,
        objects: Iterable[ObjectVersion],
        *,
        local_root: str | None = None,
    ) -> Manifest:
        items = list(objects)
        return cls(
            bucket=bucket,
            prefix=prefix,
            spec=spec,
            objects=items,
            fingerprint=fingerprint(((o.key, o.version_id) for o in items), presorted=True),
            local_root=local_root,
        )

    @property
    def total_bytes(self) -> int:
        return sum(o.size for o in self.objects)

    def header(self) -> dict[str, object]:
        return {
            "manifest_version": MANIFEST_VERSION,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "kind": self.spec.kind if self.spec else None,
            "start_ms": self.spec.start_ms if self.spec else None,
            "end_ms": self.spec.end_ms if self.spec else None,
            "spec": self.spec.canonical() if self.spec else None,
            "count": len(self.objects),
            "total_bytes": self.total_bytes,
            "fingerprint": self.fingerprint,
            "local_root": self.local_root,
        }

    def to_jsonl(self) -> str:
        lines = [json.dumps(self.header(), ensure_ascii=False)]
        for o in self.objects:
            line = {
                "bucket": self.bucket,
                "key": o.key,
                "version_id": o.version_id,
                "size": o.size,
                "etag": o.etag,
            }
            if self.local_root is not None:
                line["path"] = os.path.join(self.local_root, *o.key.split("/"))
            lines.append(json.dumps(line, ensure_ascii=False))
        return "\n".join(lines) + "\n"
