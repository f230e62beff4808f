"""EMR made operable (issue 22, section 4): against moto's EMR through its HTTP server."""

from __future__ import annotations

import os

import test_transforms

view = test_transforms.view


def test_a_transient_cluster_logs_under_the_staging_prefix_by_default(
    service, view, tmp_path, monkeypatch
) -> None:
    """No log_uri configured: the cluster still gets a LogUri (the run's staging prefix +
    emr-logs/), and the run's details say where its step logs appear."""
    import boto3

    svc = test_transforms._emr_service(service, tmp_path, monkeypatch)
    svc.save_revision("copy", test_transforms.COPY_ONE)
    run = svc.start_run(
        "copy",
        input_spec={"type": "view", "bucket": view, "prefix": "in/"},
        output_uri=f"s3://{view}/emr-out/",
        executor="emr",
    )
    details = svc.store.get_run(run.id).details
    expected = f"s3://{view}/emr-out/_infinstor_staging/{run.id}/emr-logs/"
    emr = boto3.client("emr", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    cluster = emr.describe_cluster(ClusterId=details["cluster_id"])["Cluster"]
    assert cluster["LogUri"] == expected
    assert details["log_location"] == (
        f"{expected}{details['cluster_id']}/steps/{details['step_id']}/"
    )
    svc.cancel(run.id)
    svc.wait(run.id, timeout=30)
    svc.close()
