"""The Jupyter token never reaches the server log through the extension's requests: a request
that carries ``?token=`` (as the sidebar's download links did) and fails writes the URI with
the token scrubbed, as jupyter_server's own access log does."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from test_api import call, jp_server_config, service_of, track  # noqa: F401 (fixture)

from infinstor_jlab.rest import scrub_uri

LOGGERS = (
    "",
    "tornado",
    "tornado.general",
    "tornado.access",
    "tornado.application",
    "ServerApp",
    "InfinstorApp",
)


@pytest.fixture
def log_lines(jp_serverapp) -> Iterator[list[str]]:
    """Every line (with its traceback) logged while the test runs, at any level."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    keep = Keep(level=logging.DEBUG)
    keep.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = {logging.getLogger(name) for name in LOGGERS} | {jp_serverapp.log}
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.addHandler(keep)
        logger.setLevel(logging.DEBUG)
    yield lines
    for logger in loggers:
        logger.removeHandler(keep)
        logger.setLevel(levels[logger])


def test_scrub_uri_hides_the_values_jupyter_hides():
    assert scrub_uri("/infinstor/x?key=a%2Fb&token=abc&download=1&_xsrf=q") == (
        "/infinstor/x?key=[secret]&token=[secret]&download=1&_xsrf=[secret]"
    )
    assert (
        scrub_uri("/infinstor/x?at=now&page_token=t") == "/infinstor/x?at=now&page_token=[secret]"
    )
    assert scrub_uri("/infinstor/x?Token=abc") == "/infinstor/x?Token=[secret]"
    assert scrub_uri("/infinstor/x?mine=abc", ["mine"]) == "/infinstor/x?mine=[secret]"
    assert scrub_uri("/infinstor/x") == "/infinstor/x"


async def test_a_failed_download_with_the_token_in_the_url_does_not_log_it(
    jp_fetch, jp_serverapp, s3, bucket, log_lines
):
    token = jp_serverapp.identity_provider.token
    assert token
    version = s3.put_object(Bucket=bucket, Key="expired.txt", Body=b"x")["VersionId"]
    s3.put_object(Bucket=bucket, Key="expired.txt", Body=b"y")
    await track(jp_fetch, bucket)
    # The version's bytes are gone from S3 while the index still knows the version.
    s3.delete_object(Bucket=bucket, Key="expired.txt", VersionId=version)
    # A download link as the sidebar made it: the token in the URL, no Authorization header.
    link = {"Authorization": ""}
    del log_lines[:]
    await call(
        jp_fetch,
        "GET",
        "buckets",
        bucket,
        "object",
        headers=link,
        expect=404,
        params={"key": "deleted.txt", "download": "1", "token": token},
    )
    await call(
        jp_fetch,
        "GET",
        "buckets",
        bucket,
        "object",
        headers=link,
        expect=404,
        params={"key": "expired.txt", "version_id": version, "download": "1", "token": token},
    )
    assert [line for line in log_lines if "404 GET /" in line], log_lines  # logged...
    assert [line for line in log_lines if "token=[secret]" in line], log_lines
    leaked = [line for line in log_lines if token in line]
    assert leaked == []  # ...without the token


async def test_our_own_failure_with_the_token_in_the_url_does_not_log_it(
    jp_fetch, jp_serverapp, bucket, monkeypatch, log_lines
):
    token = jp_serverapp.identity_provider.token
    service = service_of(jp_serverapp)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(service, "resolve_object", broken)
    del log_lines[:]
    await call(
        jp_fetch,
        "GET",
        "buckets",
        bucket,
        "object",
        headers={"Authorization": ""},
        params={"key": "k", "download": "1", "token": token},
        expect=500,
    )
    assert [line for line in log_lines if "a bug of ours" in line], log_lines
    assert [line for line in log_lines if token in line] == []
