"""Compact version-id and ETag encodings: lossless for any text, compact for the common forms."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from infinstor_jlab.index.codec import (
    decode_etag,
    decode_version_id,
    encode_etag,
    encode_version_id,
    pack_version,
    pack_versions,
    unpack_version,
    version_id_of_packed,
    version_id_prefix,
)

PROPS = settings(max_examples=300, deadline=None, database=None)

AWS_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"
HEX = "0123456789abcdef"

aws_ids = st.text(alphabet=AWS_ALPHABET, min_size=1, max_size=64)
uuid_ids = st.uuids().map(str)
version_ids = st.one_of(
    st.text(),
    aws_ids,
    st.text(alphabet=AWS_ALPHABET, min_size=8, max_size=8).map(lambda s: s * 4),  # 32 chars
    uuid_ids,
    uuid_ids.map(str.upper),
    uuid_ids.map(lambda s: s.replace("-", "")),
    st.just("null"),
    st.just(""),
)
md5_hex = st.text(alphabet=HEX, min_size=32, max_size=32)
etags = st.one_of(
    st.text(),
    md5_hex.map(lambda h: f'"{h}"'),
    st.tuples(md5_hex, st.integers(0, 100_000)).map(lambda t: f'"{t[0]}-{t[1]}"'),
    st.tuples(md5_hex, st.text(alphabet="0123456789", min_size=1, max_size=7)).map(
        lambda t: f'"{t[0]}-{t[1]}"'  # leading zeros too
    ),
    md5_hex.map(lambda h: f'"{h.upper()}"'),
    md5_hex,  # unquoted
    md5_hex.map(lambda h: f'W/"{h}"'),
    st.text(min_size=13, max_size=16),  # around the 16-byte "plain MD5" length
    st.binary(min_size=16, max_size=16).map(lambda b: b.decode("latin-1")),
)


@PROPS
@given(vid=version_ids)
def test_version_id_round_trips(vid):
    raw = encode_version_id(vid)
    assert isinstance(raw, bytes)
    assert decode_version_id(raw) == vid


@PROPS
@given(a=version_ids, b=version_ids)
def test_version_id_encoding_is_injective(a, b):
    if a != b:
        assert encode_version_id(a) != encode_version_id(b)


@PROPS
@given(etag=etags)
def test_etag_round_trips(etag):
    raw = encode_etag(etag)
    assert isinstance(raw, bytes)
    assert decode_etag(raw) == etag


@PROPS
@given(a=etags, b=etags)
def test_etag_encoding_is_injective(a, b):
    if a != b:
        assert encode_etag(a) != encode_etag(b)


@PROPS
@given(h=md5_hex, parts=st.integers(1, 10_000))
def test_common_forms_are_compact(h, parts):
    assert len(encode_etag(f'"{h}"')) == 16
    assert len(encode_etag(f'"{h}-{parts}"')) == 17 + len(str(parts))
    vid = str(uuid.UUID(h))
    assert len(encode_version_id(vid)) == 17
    assert decode_version_id(encode_version_id(vid)) == vid


@PROPS
@given(vid=st.text(alphabet=AWS_ALPHABET, min_size=8, max_size=8).map(lambda s: s * 4))
def test_aws_style_ids_pack_to_three_quarters(vid):
    assert len(encode_version_id(vid)) == 1 + 24
    assert decode_version_id(encode_version_id(vid)) == vid


def test_null_and_missing_values():
    assert encode_version_id("null") == b""
    assert encode_version_id(None) == b""
    assert decode_version_id(b"") == "null"
    assert decode_version_id(encode_version_id("")) == ""
    assert decode_etag(encode_etag("")) == ""
    assert decode_etag(encode_etag(None)) == ""


# -- one stored version in one value (codec.pack_version) -----------------------------------
long_text = st.text(min_size=100, max_size=400)  # ids/ETags whose encodings pass 127 bytes


@PROPS
@given(
    st.lists(
        st.tuples(
            st.one_of(version_ids, long_text),
            st.integers(0, 2**63),
            st.one_of(etags, long_text),
            st.booleans(),
        ),
        max_size=8,
    )
)
def test_a_packed_version_unpacks_to_what_was_packed(rows):
    vids = [encode_version_id(v) for v, _, _, _ in rows]
    etag_raws = [encode_etag(e) for _, _, e, _ in rows]
    sizes = [s for _, s, _, _ in rows]
    deletes = [d for _, _, _, d in rows]
    packed = pack_versions(vids, sizes, etag_raws, deletes)
    assert packed == [pack_version(*row) for row in zip(vids, sizes, etag_raws, deletes)]
    for p, (v, s, _e, d), vb, eb in zip(packed, rows, vids, etag_raws):
        assert unpack_version(p) == (vb, s, eb, d)
        assert decode_version_id(unpack_version(p)[0]) == v
        assert version_id_of_packed(p) == v  # the listings' shortcut
        # the delete-marker flag is the last byte's low bit: listings read only that
        assert bool(p[-1] & 1) == d
        # the id prefix that SQL matches on is the packed value's own start
        assert p.startswith(version_id_prefix(vb))


@PROPS
@given(version_ids, version_ids, st.integers(0, 2**40), etags)
def test_no_version_id_prefix_matches_another_ids_packed_version(a, b, size, etag):
    """``substr(packed, 1, len(prefix)) = prefix`` finds exactly the versions with that id."""
    pa, pb = encode_version_id(a), encode_version_id(b)
    packed_b = pack_version(pb, size, encode_etag(etag), False)
    assert packed_b.startswith(version_id_prefix(pa)) == (pa == pb)
