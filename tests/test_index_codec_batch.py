"""The batch encoders give exactly what the one-at-a-time encoders give, for any batch."""

from __future__ import annotations

import base64
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from infinstor_jlab.index.codec import (
    encode_etag,
    encode_etags,
    encode_version_id,
    encode_version_ids,
)

PROPS = settings(max_examples=400, deadline=None, database=None)
AWS_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"
HEX = "0123456789abcdef"

aws32 = st.text(alphabet=AWS_ALPHABET, min_size=32, max_size=32)
vids = st.one_of(
    aws32,
    aws32,
    st.text(alphabet=AWS_ALPHABET + "+/=", min_size=32, max_size=32),
    st.text(min_size=31, max_size=33),
    st.uuids().map(str),
    st.just("null"),
)
md5 = st.text(alphabet=HEX, min_size=32, max_size=32).map(lambda h: f'"{h}"')
etags = st.one_of(
    md5,
    md5,
    st.just(""),
    md5.map(str.upper),
    st.text(alphabet=HEX + '"', min_size=34, max_size=34),
    st.text(min_size=33, max_size=35),
    st.tuples(md5, st.integers(1, 99)).map(lambda t: t[0][:-1] + f'-{t[1]}"'),
)


@PROPS
@given(st.lists(vids, max_size=20))
def test_encode_version_ids_is_encode_version_id_per_item(batch):
    assert encode_version_ids(batch) == [encode_version_id(v) for v in batch]


@PROPS
@given(st.lists(etags, max_size=20))
def test_encode_etags_is_encode_etag_per_item(batch):
    assert encode_etags(batch) == [encode_etag(e) for e in batch]


def test_large_aws_batches():
    ids = [
        base64.b64encode(os.urandom(24)).decode().replace("+", ".").replace("/", "_")
        for _ in range(5000)
    ]
    assert encode_version_ids(ids) == [encode_version_id(v) for v in ids]
    tags = [f'"{os.urandom(16).hex()}"' if i % 7 else "" for i in range(5000)]
    assert encode_etags(tags) == [encode_etag(e) for e in tags]
    tags = [f'"{os.urandom(16).hex()}"' for i in range(5000)]
    assert encode_etags(tags) == [encode_etag(e) for e in tags]
