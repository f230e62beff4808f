"""One view resolver under every adapter: REST, the CLI, transform inputs and kernel-side time
travel refuse the same view requests with the same sentence, and agree on what a label means.

Each adapter is driven the way a user drives it (HTTP through the Jupyter server, the CLI's
``main``, ``infin_boto3.client``, a transform input), over one index."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from infinstor_jlab.cli import main
from infinstor_jlab.errors import BadRequest
from infinstor_jlab.kernel import timetravel
from infinstor_jlab.services.views import ViewChoiceError


@pytest.fixture
def jp_server_config(index_url, s3_endpoint, monkeypatch):
    monkeypatch.setenv("INFINSTOR_INDEX_URL", index_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    return {
        "ServerApp": {"jpserver_extensions": {"infinstor_jlab": True}},
        "InfinstorApp": {
            "index_url": index_url,
            "s3_endpoint_url": s3_endpoint,
            "reconcile_interval": 0.0,
        },
    }


@pytest.fixture
def two_buckets(s3, service):
    """Bucket ``a`` with a label over ``data/``, and a second tracked bucket ``b``."""
    names = []
    for _ in range(2):
        name = f"bkt-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=name, Key="data/x.csv", Body=b"x")
        s3.put_object(Bucket=name, Key="other.txt", Body=b"o")
        service.track(name, enable_versioning_consent=True)
        service.sync(name)
        names.append(name)
    label = f"lbl-{uuid.uuid4().hex[:6]}"
    service.create_label(label, names[0], "data/", service.parse_spec("now"))
    return names[0], names[1], label


async def rest_error(
    jp_fetch, *parts: str, method: str = "GET", body: Any = None, **params: str
) -> str:
    kwargs: dict[str, Any] = {"method": method, "params": params}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("infinstor", *parts, **kwargs)
    assert info.value.code == 400, info.value.response.body
    return json.loads(info.value.response.body)["message"]


def cli_error(capsys, *argv: str) -> str:
    code = main(list(argv))
    _out, err = capsys.readouterr()
    assert code != 0, err
    return err.strip().removeprefix("error: ").strip()


def kernel_error(index_url: str, **view: Any) -> Exception:
    from infinstor_jlab import infin_boto3

    infin_boto3._travel = timetravel.TimeTravel(index_url)
    with pytest.raises(Exception) as info:
        infin_boto3.client("s3", **view)
    return info.value


async def test_every_adapter_refuses_the_same_views_in_the_same_words(
    jp_fetch, capsys, service, index_url, two_buckets
):
    a, _b, label = two_buckets

    # Two of at/slice/label.
    rest = await rest_error(jp_fetch, "buckets", a, "objects", at="now", label=label)
    cli = cli_error(
        capsys, "ls", f"s3://{a}/", "--at", "now", "--label", label, "--index", index_url
    )
    kernel = kernel_error(index_url, at="now", label=label)
    assert isinstance(kernel, ValueError) and isinstance(kernel, BadRequest)
    assert "Give only one of at, slice and label" in rest
    assert rest in cli and str(kernel) == rest

    # A single time where a slice (a window) is needed.
    rest = await rest_error(jp_fetch, "buckets", a, "objects", slice="now")
    cli = cli_error(capsys, "ls", f"s3://{a}/", "--slice", "now", "--index", index_url)
    kernel = kernel_error(index_url, slice="now")
    with pytest.raises(ViewChoiceError) as transform:
        from infinstor_jlab.transforms.inputs import resolve_input

        resolve_input(service, {"type": "infinslice", "bucketname": a, "time_spec": "now"})
    assert "is a single time; a slice needs a window" in rest
    assert rest in cli and str(kernel) == rest and str(transform.value) == rest


async def test_a_label_on_another_bucket_is_refused_by_every_adapter(
    jp_fetch, capsys, service, index_url, two_buckets
):
    a, b, label = two_buckets
    expected = f"Label {label!r} is a view of bucket {a!r}, not {b!r}; use it with s3://{a}/data/."
    messages = [
        await rest_error(jp_fetch, "buckets", b, "objects", label=label),
        await rest_error(jp_fetch, "buckets", b, "objects", at=f"label:/{label}"),
        await rest_error(jp_fetch, "buckets", b, "object", key="data/x.csv", label=label),
        await rest_error(
            jp_fetch,
            "labels",
            method="POST",
            body={"name": "copy", "bucket": b, "at": f"label:/{label}"},
        ),
        cli_error(capsys, "ls", f"s3://{b}/", "--label", label, "--index", index_url),
        # The label's time given as --at on another bucket was listed before, silently.
        cli_error(capsys, "ls", f"s3://{b}/", "--at", f"label:/{label}", "--index", index_url),
        cli_error(
            capsys,
            "label",
            "create",
            "copy",
            f"s3://{b}/",
            "--at",
            f"label:/{label}",
            "--index",
            index_url,
        ),
    ]
    from infinstor_jlab.transforms.inputs import resolve_input

    with pytest.raises(BadRequest) as transform:
        resolve_input(service, {"type": "view", "bucket": b, "at": f"label:/{label}"})
    messages.append(str(transform.value))
    for message in messages:
        assert expected in message


async def test_cli_and_rest_agree_on_a_label_and_a_window_for_at(
    jp_fetch, capsys, service, index_url, two_buckets
):
    a, _b, label = two_buckets
    # A label's time over no prefix lists the label's folder, in both.
    code = main(["ls", f"s3://{a}", "--at", f"label:/{label}", "--index", index_url, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    response = await jp_fetch(
        "infinstor", "buckets", a, "objects", params={"at": f"label:/{label}"}
    )
    rest = json.loads(response.body)
    assert (
        [o["key"] for o in json.loads(out)["objects"]]
        == [o["key"] for o in rest["objects"]]
        == ["data/x.csv"]
    )

    # A window given as a label's single time: refused by both (the CLI made a slice label).
    window = "tm20260101000000-tm20260102000000"
    rest_msg = await rest_error(
        jp_fetch, "labels", method="POST", body={"name": "w", "bucket": a, "at": window}
    )
    cli_msg = cli_error(
        capsys, "label", "create", "w", f"s3://{a}/", "--at", window, "--index", index_url
    )
    assert "is a window" in rest_msg and rest_msg in cli_msg
    assert [x.name for x in service.list_labels(a)] == [label]
