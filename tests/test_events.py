"""Live tracking: S3 event notifications -> SQS -> index, on moto's server."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from infinstor_jlab.services.events import EventPoller, notification_id_for
from infinstor_jlab.services.watcher import BucketWatcher
from infinstor_jlab.timespec import format_iso, now_ms, parse_time_spec


def keys_now(service, bucket):
    return [
        (o.key, o.version_id) for o in service.iter_objects(bucket, spec=parse_time_spec("now"))
    ]


def poller_for(service, bucket) -> EventPoller:
    source = service.index.get_event_source(bucket)
    return EventPoller(
        service.s3(), service.sqs(), service.index, bucket, str(source["queue_url"]), wait_seconds=1
    )


def drain(poller: EventPoller, rounds: int = 5) -> int:
    total = 0
    for _ in range(rounds):
        got = poller.poll_once(wait_seconds=1)
        total += got
        if got == 0 and total:
            break
    return total


def s3_record(
    bucket,
    key,
    name,
    *,
    version_id=None,
    sequencer=None,
    t_ms=None,
    size=1,
    etag="0cc175b9c0f1b6a831c399e269772661",
):
    obj = {"key": key, "size": size, "eTag": etag}
    if version_id:
        obj["versionId"] = version_id
    if sequencer:
        obj["sequencer"] = sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": format_iso(t_ms or now_ms()),
        "eventName": name,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket}, "object": obj},
    }


def test_upload_becomes_visible_through_events(service, s3, bucket):
    service.track(bucket, enable_versioning_consent=True, events=True)
    poller = poller_for(service, bucket)
    drain(poller)  # the s3:TestEvent moto sends on configuration
    vid = s3.put_object(Bucket=bucket, Key="new file+1.txt", Body=b"hello")["VersionId"]
    assert drain(poller) >= 1
    assert keys_now(service, bucket) == [("new file+1.txt", vid)]
    status = service.bucket_status(bucket)
    assert status["events"] and status["events_applied"] >= 1 and status["last_event_ms"]


def test_notifications_are_merged_and_untrack_removes_only_ours(service, s3, bucket):
    sqs = boto3.client("sqs", endpoint_url=service._endpoint)
    other = sqs.create_queue(QueueName=f"other-{bucket}")["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    theirs = {"Id": "someone-elses", "QueueArn": other_arn, "Events": ["s3:ObjectCreated:Put"]}
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [theirs]}
    )
    service.track(bucket, enable_versioning_consent=True, events=True)
    ids = {
        q["Id"]
        for q in s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    }
    assert ids == {"someone-elses", notification_id_for(bucket)}
    # Tracking twice changes nothing.
    service.track(bucket, enable_versioning_consent=True, events=True)
    again = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert len(again) == 2
    queue_url = service.index.get_event_source(bucket)["queue_url"]
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])["Attributes"][
            "Policy"
        ]
    )
    assert policy["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"].endswith(f":{bucket}")
    service.untrack(bucket)
    left = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert [q["Id"] for q in left] == ["someone-elses"]
    assert queue_url not in sqs.list_queues().get("QueueUrls", [])
    assert other in sqs.list_queues()["QueueUrls"]


def test_real_s3_events_apply_in_sequencer_order_idempotently(service, s3, bucket):
    """Events with versionId and sequencer (as real S3 sends them), out of order and
    duplicated, give the same chain as the truth."""
    service.track(bucket, enable_versioning_consent=True, events=True)
    poller = poller_for(service, bucket)
    drain(poller)
    sqs = service.sqs()
    queue_url = poller.queue_url
    t = (now_ms() // 1000) * 1000 + 123  # all in one millisecond
    records = [
        s3_record(
            bucket,
            "k",
            "ObjectCreated:Put",
            version_id="v-1",
            sequencer="0055AED6DCD90281E5",
            t_ms=t,
        ),
        s3_record(
            bucket,
            "k",
            "ObjectCreated:Put",
            version_id="v-2",
            sequencer="0055AED6DCD90281E6",
            t_ms=t,
        ),
        s3_record(
            bucket,
            "k",
            "ObjectRemoved:DeleteMarkerCreated",
            version_id="dm-3",
            sequencer="0055AED6DCD90281F0",
            t_ms=t,
        ),
        s3_record(
            bucket, "k", "ObjectCreated:Put", version_id="v-4", sequencer="0055AED6DCD90282", t_ms=t
        ),
    ]
    # Out of order, and one message delivered twice.
    for rec in [records[3], records[1], records[0], records[2], records[1]]:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [rec]}))
    sqs.send_message(
        QueueUrl=queue_url, MessageBody=json.dumps({"Records": [records[2], records[0]]})
    )
    drain(poller)
    history = service.history(bucket, "k")
    assert [v.version_id for v in history] == ["v-4", "dm-3", "v-2", "v-1"]
    assert history[1].is_delete_marker and all(v.last_modified_ms == t for v in history)
    # Precise (ms) times: the snapshot 1 ms before shows nothing, at t the newest.
    assert service.index.get_version_at(bucket, "k", end_ms=t - 1) is None
    assert service.index.get_version_at(bucket, "k", end_ms=t).version_id == "v-4"
    # A permanent delete of a version removes it.
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(
            {
                "Records": [
                    s3_record(
                        bucket,
                        "k",
                        "ObjectRemoved:Delete",
                        version_id="v-4",
                        sequencer="0055AED6DCD9028300",
                        t_ms=t + 5,
                    )
                ]
            }
        ),
    )
    drain(poller)
    assert [v.version_id for v in service.history(bucket, "k")] == ["dm-3", "v-2", "v-1"]


def test_malformed_message_is_counted_left_and_others_applied(service, s3, bucket):
    service.track(bucket, enable_versioning_consent=True, events=True)
    poller = poller_for(service, bucket)
    drain(poller)
    sqs = service.sqs()
    sqs.send_message(QueueUrl=poller.queue_url, MessageBody="{this is not json")
    sqs.send_message(
        QueueUrl=poller.queue_url,
        MessageBody=json.dumps(
            {
                "Records": [
                    s3_record(
                        bucket, "ok.txt", "ObjectCreated:Put", version_id="v-ok", sequencer="01"
                    )
                ]
            }
        ),
    )
    sqs.send_message(
        QueueUrl=poller.queue_url,
        MessageBody=json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
    )
    drain(poller)
    assert [k for k, _ in keys_now(service, bucket)] == ["ok.txt"]
    status = service.bucket_status(bucket)
    assert status["malformed_events"] >= 1 and "malformed" in (status["last_error"] or "")
    # The malformed message was not deleted: it is left for the queue's redrive policy.
    time.sleep(0.1)
    attrs = sqs.get_queue_attributes(
        QueueUrl=poller.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert (
        int(attrs["ApproximateNumberOfMessages"])
        + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        == 1
    )


def test_deletes_reach_the_index_through_reconcile(service, s3, bucket):
    """moto sends no delete events; the periodic ListObjectVersions pass catches them."""
    service.track(bucket, enable_versioning_consent=True, events=True)
    s3.put_object(Bucket=bucket, Key="a", Body=b"1")
    s3.put_object(Bucket=bucket, Key="b", Body=b"2")
    service.sync(bucket)
    s3.delete_object(Bucket=bucket, Key="a")
    watcher = BucketWatcher(service, wait_seconds=1, reconcile_interval=0.5)
    service.watcher = watcher
    watcher.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and [k for k, _ in keys_now(service, bucket)] != ["b"]:
            time.sleep(0.2)
        assert [k for k, _ in keys_now(service, bucket)] == ["b"]
        vid = s3.put_object(Bucket=bucket, Key="c", Body=b"3")["VersionId"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and ("c", vid) not in keys_now(service, bucket):
            time.sleep(0.1)
        assert ("c", vid) in keys_now(service, bucket)
    finally:
        watcher.stop()
    assert watcher.stopped


def test_reconcile_leaves_an_untracked_bucket_as_it_was(service, s3, bucket):
    """Untracking without forgetting keeps the history browsable and stops keeping it
    current: reconcile passes skip the bucket until it is tracked again."""
    service.track(bucket, enable_versioning_consent=True)
    s3.put_object(Bucket=bucket, Key="a", Body=b"1")
    service.sync(bucket)
    service.untrack(bucket)
    assert service.bucket_status(bucket)["tracked"] is False
    s3.put_object(Bucket=bucket, Key="b", Body=b"2")
    watcher = BucketWatcher(service, wait_seconds=1, reconcile_interval=0.2)
    service.watcher = watcher
    watcher.start()
    try:
        time.sleep(1.5)  # several reconcile passes
        assert [k for k, _ in keys_now(service, bucket)] == ["a"]
        service.track(bucket, enable_versioning_consent=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(keys_now(service, bucket)) < 2:
            time.sleep(0.1)
        assert [k for k, _ in keys_now(service, bucket)] == ["a", "b"]
    finally:
        watcher.stop()


@pytest.mark.parametrize("body", ["[]", '{"Records": [{"s3": {}}]}', '"text"'])
def test_parse_message_rejects_malformed(body):
    from infinstor_jlab.services.events import MalformedEvent, parse_message

    with pytest.raises(MalformedEvent):
        parse_message(body)


def test_watch_command_keeps_an_index_current(service, s3, bucket, index_url):
    import os
    import signal
    import subprocess
    import sys

    service.track(bucket, enable_versioning_consent=True, events=True)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infinstor_jlab.cli",
            "watch",
            bucket,
            "--wait",
            "1",
            "--reconcile",
            "0",
            "--index",
            index_url,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)
        vid = s3.put_object(Bucket=bucket, Key="watched.txt", Body=b"w")["VersionId"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and ("watched.txt", vid) not in keys_now(service, bucket):
            time.sleep(0.2)
        assert ("watched.txt", vid) in keys_now(service, bucket)
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Watching" in err
