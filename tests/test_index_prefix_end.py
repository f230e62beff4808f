"""prefix_end: the smallest string above every string that starts with the prefix."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from infinstor_jlab.index import prefix_end

EDGES = [0, 0x2F, 0x7F, 0xD7FE, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFE, 0x10FFFF]
chars = st.one_of(
    st.characters(blacklist_categories=("Cs",)),
    st.sampled_from([chr(c) for c in EDGES]),
)


def reference(prefix: str) -> str | None:
    """The definition, spelled out: bump the last character that can be bumped (skipping
    the surrogates, which cannot be stored), dropping maximal ones after it."""
    chars_ = list(prefix)
    while chars_:
        c = ord(chars_[-1])
        if c < 0x10FFFF:
            c += 1
            if 0xD800 <= c <= 0xDFFF:
                c = 0xE000
            chars_[-1] = chr(c)
            return "".join(chars_)
        chars_.pop()
    return None


@settings(max_examples=2000, deadline=None, database=None)
@given(st.lists(chars, max_size=5).map("".join), st.lists(chars, max_size=3).map("".join))
def test_prefix_end(prefix, rest):
    end = prefix_end(prefix)
    assert end == reference(prefix)
    if end is not None:
        assert prefix + rest < end
        assert end.encode("utf-8") > (prefix + rest).encode("utf-8")
