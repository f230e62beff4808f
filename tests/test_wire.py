"""The listing page's directly written JSON is exactly json.dumps of its dict form."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from infinstor_jlab.index.codec import encode_etag, encode_version_id, pack_version
from infinstor_jlab.index.models import ListPage, ObjectVersion
from infinstor_jlab.timespec import format_iso

keys = st.text(min_size=1, max_size=40)
vids = st.one_of(
    st.just("null"),
    st.uuids().map(str),
    st.text(min_size=1, max_size=20),
    st.text(min_size=130, max_size=300),
)  # ids whose encoding passes 127 bytes
etags = st.one_of(
    st.binary(min_size=16, max_size=16).map(lambda b: f'"{b.hex()}"'),
    st.text(max_size=20),
    st.text(min_size=130, max_size=300),
)
times = st.integers(min_value=0, max_value=253402300799999)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(keys, vids, times, st.integers(0, 2**53), etags), max_size=30),
    st.lists(keys, max_size=5),
    st.one_of(st.none(), st.text(max_size=10)),
    st.dictionaries(
        st.text(max_size=8), st.one_of(st.none(), st.text(), st.integers()), max_size=4
    ),
)
def test_page_text_is_json_dumps_of_the_dict(rows, prefixes, token, extra):
    stored = [
        ObjectVersion.from_stored(
            k, pack_version(encode_version_id(v), size, encode_etag(e), False), t, False
        )
        for k, v, t, size, e in rows
    ]
    page = ListPage(objects=stored, prefixes=prefixes, next_token=token)
    extra = {k: v for k, v in extra.items() if k not in ("objects", "prefixes", "next_token")}
    expected = page.to_json()
    expected.update(extra)
    text = page.to_json_text(extra)
    assert text == json.dumps(expected)
    assert json.loads(text) == expected


@given(times)
def test_format_iso_cache_gives_the_same_text(ms):
    first = format_iso(ms)
    assert format_iso(ms) == first
    assert first.endswith("Z") and len(first) == 24
