"""Live change tracking: S3 event notifications delivered to SQS, applied to the index.

``enable_events`` creates a queue that only the bucket may send to and adds a queue
configuration to the bucket's notifications, merged with whatever the bucket already has.
``EventPoller.poll_once`` long-polls the queue, applies the events and deletes each message only
after its events are committed. Real S3 events carry ``versionId`` and ``sequencer`` and are
applied directly, in chain order per key; events without a version id (moto, some
S3-compatible stores) make the poller re-list exactly those keys. A periodic reconcile pass
(`sync`) catches whatever events miss.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from ..errors import InfinstorError
from ..index.base import SnapshotIndex
from ..index.models import VersionEntry, sequencer_sort_key
from ..timespec import now_ms, parse_s3_timestamp
from .coordination import Coordination, EventKey
from .s3 import aws_configuration_errors, call_s3, iter_version_pages
from .sync import is_split_listing, order_chains

log = logging.getLogger(__name__)

EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


def notification_id_for(bucket: str) -> str:
    return f"infinstor-jlab-{bucket}"


def queue_name_for(bucket: str) -> str:
    # Queue names allow letters, digits, '-' and '_' (80 at most); bucket names add '.'.
    return ("infinstor-jlab-" + re.sub(r"[^A-Za-z0-9_-]", "-", bucket))[:80]


def make_sqs_client(endpoint_url: str | None = None) -> Any:
    import boto3

    kwargs: dict[str, Any] = {}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    with aws_configuration_errors(endpoint_url):
        session = boto3.session.Session()
        if not session.region_name:
            kwargs["region_name"] = "us-east-1"
        return session.client("sqs", **kwargs)


def _queue_policy(queue_arn: str, bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "infinstor-jlab-s3-events",
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:*:*:{bucket}"}},
                }
            ],
        }
    )


def _notification_config(s3: Any, bucket: str) -> dict[str, Any]:
    current = call_s3(s3.get_bucket_notification_configuration, bucket, Bucket=bucket)
    return {k: v for k, v in current.items() if k != "ResponseMetadata"}


def enable_events(s3: Any, sqs: Any, index: SnapshotIndex, bucket: str) -> dict[str, str]:
    """Create the queue and merge our queue configuration into the bucket's notifications.
    Idempotent: running it again changes nothing."""
    name = queue_name_for(bucket)
    queue_url = call_s3(
        sqs.create_queue,
        bucket,
        QueueName=name,
        Attributes={"MessageRetentionPeriod": "1209600", "MaximumMessageSize": "262144"},
    )["QueueUrl"]
    queue_arn = call_s3(
        sqs.get_queue_attributes, bucket, QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    call_s3(
        sqs.set_queue_attributes,
        bucket,
        QueueUrl=queue_url,
        Attributes={"Policy": _queue_policy(queue_arn, bucket)},
    )
    config = _notification_config(s3, bucket)
    config_id = notification_id_for(bucket)
    queues = [q for q in config.get("QueueConfigurations", []) if q.get("Id") != config_id]
    queues.append({"Id": config_id, "QueueArn": queue_arn, "Events": list(EVENTS)})
    config["QueueConfigurations"] = queues
    call_s3(
        s3.put_bucket_notification_configuration,
        bucket,
        Bucket=bucket,
        NotificationConfiguration=config,
    )
    index.set_event_source(
        bucket, queue_url=queue_url, queue_arn=queue_arn, notification_id=config_id
    )
    return {"queue_url": queue_url, "queue_arn": queue_arn, "notification_id": config_id}


def disable_events(s3: Any, sqs: Any, index: SnapshotIndex, bucket: str) -> None:
    """Remove only what ``enable_events`` added: our queue configuration and our queue."""
    source = index.get_event_source(bucket)
    config_id = source.get("notification_id") or notification_id_for(bucket)
    config = _notification_config(s3, bucket)
    queues = config.get("QueueConfigurations", [])
    kept = [q for q in queues if q.get("Id") != config_id]
    if len(kept) != len(queues):
        if kept:
            config["QueueConfigurations"] = kept
        else:
            config.pop("QueueConfigurations", None)
        call_s3(
            s3.put_bucket_notification_configuration,
            bucket,
            Bucket=bucket,
            NotificationConfiguration=config,
        )
    queue_url = source.get("queue_url")
    if queue_url:
        try:
            call_s3(sqs.delete_queue, bucket, QueueUrl=queue_url)
        except InfinstorError as exc:  # already gone is fine
            log.info("queue %s not deleted: %s", queue_url, exc)
    index.set_event_source(bucket, queue_url=None, queue_arn=None, notification_id=None)


class MalformedEvent(ValueError):
    pass


@dataclass(frozen=True)
class S3Event:
    bucket: str
    key: str
    name: str  # e.g. ObjectCreated:Put, ObjectRemoved:DeleteMarkerCreated
    time_ms: int
    version_id: str | None
    sequencer: str | None
    size: int
    etag: str

    @property
    def is_removal(self) -> bool:
        return self.name.startswith("ObjectRemoved:")

    @property
    def creates_delete_marker(self) -> bool:
        return self.name == "ObjectRemoved:DeleteMarkerCreated"


def parse_message(body: str) -> list[S3Event]:
    """The S3 events in one SQS message body ([] for s3:TestEvent). Raises MalformedEvent."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise MalformedEvent("not a JSON object")
    if doc.get("Event") == "s3:TestEvent":
        return []
    if "Message" in doc and "Records" not in doc:  # delivered through SNS
        return parse_message(doc["Message"])
    records = doc.get("Records")
    if not isinstance(records, list):
        raise MalformedEvent("no Records list")
    events = []
    for rec in records:
        try:
            s3part = rec["s3"]
            obj = s3part["object"]
            name = str(rec["eventName"])
            if not (name.startswith(("ObjectCreated:", "ObjectRemoved:"))):
                continue
            time_ms, _ = parse_s3_timestamp(str(rec["eventTime"]))
            etag = str(obj.get("eTag") or "")
            if etag and not etag.startswith('"'):
                etag = f'"{etag}"'
            events.append(
                S3Event(
                    bucket=str(s3part["bucket"]["name"]),
                    key=unquote_plus(str(obj["key"])),
                    name=name,
                    time_ms=time_ms,
                    version_id=obj.get("versionId") or None,
                    sequencer=obj.get("sequencer") or None,
                    size=int(obj.get("size") or 0),
                    etag=etag,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedEvent(f"bad record: {exc!r}") from exc
    return events


def event_key(e: S3Event) -> EventKey:
    """The event's identity in the ledger: its version (created or permanently removed),
    else (no version id) its name, time, sequencer and ETag."""
    removal = e.is_removal and not e.creates_delete_marker
    kind = "remove" if removal else "create"
    if e.version_id:
        return EventKey(e.key, e.version_id, kind)
    return EventKey(e.key, f"{e.name}@{e.time_ms}:{e.sequencer or ''}:{e.etag}", kind)


def apply_events(
    s3: Any,
    index: SnapshotIndex,
    events: list[S3Event],
    coordination: Coordination | None = None,
) -> int:
    """Apply events to the index; returns how many were applied. Idempotent; with a shared
    index's ``coordination`` each event is applied and counted once however many consumers
    receive it (see services/coordination.py)."""
    applied = 0
    coord = coordination or Coordination()
    by_bucket: dict[str, list[S3Event]] = defaultdict(list)
    for ev in events:
        by_bucket[ev.bucket].append(ev)
    for bucket, evs in by_bucket.items():
        with coord.event_batch(bucket) as batch:
            direct = sorted(
                (e for e in evs if e.version_id),
                key=lambda e: (e.key, sequencer_sort_key(e.sequencer)),
            )
            removed: list[tuple[str, str]] = []
            for e in direct:
                if e.is_removal and not e.creates_delete_marker:
                    assert e.version_id  # direct holds only the events that name a version
                    removed.append((e.key, e.version_id))
            creates = [e for e in direct if not (e.is_removal and not e.creates_delete_marker)]
            # A duplicate of a create that arrives after the version was permanently
            # deleted must not bring the version back.
            gone = batch.removed([event_key(e) for e in creates])
            entries = [
                VersionEntry(
                    key=e.key,
                    version_id=e.version_id or "null",
                    time_ms=e.time_ms,
                    size=0 if e.creates_delete_marker else e.size,
                    etag="" if e.creates_delete_marker else e.etag,
                    is_delete_marker=e.creates_delete_marker,
                    precise=True,
                    sequencer=e.sequencer,
                )
                for e in creates
                if event_key(e) not in gone
            ]
            if entries:
                index.append_versions(bucket, entries)
            if removed:
                index.remove_versions(bucket, removed)
            relist = sorted({e.key for e in evs if not e.version_id})
            if relist:
                relist_keys(s3, index, bucket, relist)
            fresh = batch.record([event_key(e) for e in evs])
            applied += fresh
            index.record_events(bucket, applied=fresh, last_event_ms=max(e.time_ms for e in evs))
    return applied


def _merge_relisted(
    index: SnapshotIndex, bucket: str, ordered: list[VersionEntry], started: int
) -> None:
    """Merge the chains of keys read again from S3 (only those keys: no checkpoint, and
    keys the listing did not reach stay as they are)."""
    index.merge_listing(
        bucket,
        ordered,
        after_key=None,
        through_key=None,
        scan_started_ms=started,
        checkpoint=False,
        keys_only=True,
    )


def relist_keys(s3: Any, index: SnapshotIndex, bucket: str, keys: list[str]) -> None:
    """Re-read the version chains of a few keys from ListObjectVersions and merge them."""
    started = now_ms()
    split = index.get_listing_style(bucket) == "split"
    for key in keys:
        entries: list[VersionEntry] = []
        latest: list[bool] = []
        for page in iter_version_pages(s3, bucket, prefix=key):
            split = split or is_split_listing(page.entries, page.latest)
            for e, is_latest in zip(page.entries, page.latest):
                if e.key == key:
                    entries.append(e)
                    latest.append(is_latest)
            if any(e.key > key for e in page.entries):
                break  # past the key: the rest of the prefix holds other keys
        ordered = order_chains(entries, latest, split_style=split)
        if ordered:
            _merge_relisted(index, bucket, ordered, started)
        else:
            # Every version is gone from S3: prune what the index still has of this key.
            stale = [(v.key, v.version_id) for v in index.history(bucket, key)]
            if stale:
                index.remove_versions(bucket, stale)


class EventPoller:
    """Long-polls one bucket's queue and applies what arrives."""

    def __init__(
        self,
        s3: Any,
        sqs: Any,
        index: SnapshotIndex,
        bucket: str,
        queue_url: str,
        *,
        wait_seconds: int = 20,
        max_messages: int = 10,
        coordination: Coordination | None = None,
    ) -> None:
        self.coordination = coordination
        self.s3 = s3
        self.sqs = sqs
        self.index = index
        self.bucket = bucket
        self.queue_url = queue_url
        self.wait_seconds = wait_seconds
        self.max_messages = max_messages

    def pending_messages(self) -> int | None:
        try:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            return int(attrs.get("ApproximateNumberOfMessages", 0))
        except Exception:  # noqa: BLE001 - a status figure, never fatal
            return None

    def poll_once(self, wait_seconds: int | None = None) -> int:
        """One receive; returns the number of events applied."""
        resp = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.max_messages,
            WaitTimeSeconds=self.wait_seconds if wait_seconds is None else wait_seconds,
        )
        messages = resp.get("Messages", [])
        if not messages:
            return 0
        good: list[tuple[dict[str, Any], list[S3Event]]] = []
        malformed = 0
        for msg in messages:
            try:
                good.append((msg, parse_message(msg.get("Body", ""))))
            except MalformedEvent as exc:
                # Left on the queue: after maxReceiveCount the queue's redrive policy moves it
                # to a dead-letter queue. Counted and logged, never applied.
                malformed += 1
                log.warning(
                    "malformed S3 event message %s on %s: %s",
                    msg.get("MessageId"),
                    self.bucket,
                    exc,
                )
        events = [ev for _, evs in good for ev in evs if ev.bucket == self.bucket]
        applied = apply_events(self.s3, self.index, events, self.coordination) if events else 0
        if malformed:
            self.index.record_events(
                self.bucket, malformed=malformed, error=f"{malformed} malformed event message(s)"
            )
        # Delete only after the events are committed to the index.
        entries = [
            {"Id": str(i), "ReceiptHandle": msg["ReceiptHandle"]} for i, (msg, _) in enumerate(good)
        ]
        for start in range(0, len(entries), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url, Entries=entries[start : start + 10]
            )
        return applied


def relist_prefix(s3: Any, index: SnapshotIndex, bucket: str, prefix: str) -> int:
    """Re-read every version under a prefix (a transform's output folder) and merge it, so
    what was just written is in the index without waiting for events or a reconcile.
    Returns the number of versions read."""
    started = now_ms()
    pages = list(iter_version_pages(s3, bucket, prefix=prefix))
    return merge_listing(index, bucket, pages, started)


def merge_listing(index: SnapshotIndex, bucket: str, pages: list[Any], started: int) -> int:
    """Merge the pages of one ListObjectVersions listing of a prefix (begun at ``started``,
    ms) into the index, as :func:`relist_prefix` does: a caller that lists a prefix for its
    own reasons (a restore's re-check and check) lets the index learn from that listing
    instead of listing again. Returns the number of versions merged."""
    split = index.get_listing_style(bucket) == "split"
    entries: list[VersionEntry] = []
    latest: list[bool] = []
    for page in pages:
        split = split or is_split_listing(page.entries, page.latest)
        entries.extend(page.entries)
        latest.extend(page.latest)
    ordered = order_chains(entries, latest, split_style=split)
    if ordered:
        _merge_relisted(index, bucket, ordered, started)
    return len(entries)
