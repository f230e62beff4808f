"""The one time-spec parser: every accepted form of DESIGN.md, exact resolution, errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infinstor_jlab.errors import BadTimeSpec
from infinstor_jlab.timespec import (
    TimeSpec,
    format_iso,
    format_tm,
    parse_time_spec,
    slice_spec,
    snapshot_spec,
)

PROPS = settings(max_examples=100, deadline=None, database=None)

# 2026-11-20T10:00:00Z
S = int(datetime(2026, 11, 20, 10, 0, 0, tzinfo=timezone.utc).timestamp())
S_MS = S * 1000
NOW = 1_763_632_800_123
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant ISO 8601 can write


def parse(text, **kw):
    return parse_time_spec(text, now=NOW, **kw)


def times(spec: TimeSpec) -> tuple:
    return (spec.kind, spec.start_ms, spec.end_ms)


# -- tm forms: whole seconds ---------------------------------------------------------------------
def test_tm_snapshot_covers_the_whole_second():
    spec = parse("tm20261120100000")
    assert times(spec) == ("snapshot", None, S_MS + 999)
    assert spec.at_ms == S_MS + 999 and not spec.is_slice
    assert spec.text == "tm20261120100000"


def test_tm_slice_is_first_ms_of_a_to_last_ms_of_b():
    spec = parse("tm20261120100000-tm20261121000000")
    assert times(spec) == ("slice", S_MS, S_MS + 14 * 3600 * 1000 + 999)
    assert spec.is_slice


def test_tm_slice_of_one_second():
    assert times(parse("tm20261120100000-tm20261120100000")) == ("slice", S_MS, S_MS + 999)


@pytest.mark.parametrize(
    "bad",
    [
        "tm20261320100000",
        "tm20261120250000",
        "tm20260230100000",
        "tm2026112010000",
        "tm202611201000000",
        "tm00001120100000",
    ],
)
def test_tm_with_impossible_date_is_bad(bad):
    with pytest.raises(BadTimeSpec):
        parse(bad)


# -- ISO 8601 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20T10:00:00Z",
        "2026-11-20T10:00:00z",
        "2026-11-20T12:00:00+02:00",
        "2026-11-20T12:00:00+0200",
        "2026-11-20T04:30:00-05:30",
        "2026-11-20 10:00:00",
        "2026-11-20T10:00:00",
    ],
)
def test_iso_instant_without_fraction_is_the_whole_second(text):
    assert times(parse(text)) == ("snapshot", None, S_MS + 999)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-11-20T10:00:00.123Z", 123),
        ("2026-11-20T10:00:00.000Z", 0),
        ("2026-11-20T10:00:00.5Z", 500),
        ("2026-11-20T10:00:00,25Z", 250),
        ("2026-11-20T10:00:00.123999Z", 123),
        ("2026-11-20T12:00:00.007+02:00", 7),
        ("2026-11-20T10:00:00.999Z", 999),
    ],
)
def test_iso_instant_with_fraction_is_exact(text, ms):
    assert times(parse(text)) == ("snapshot", None, S_MS + ms)


def test_iso_minute_and_day_precision_cover_the_minute_and_day():
    assert parse("2026-11-20T10:00Z").end_ms == S_MS + 60_000 - 1
    day = int(datetime(2026, 11, 20, tzinfo=timezone.utc).timestamp()) * 1000
    assert parse("2026-11-20").end_ms == day + 86_400_000 - 1
    assert times(parse("2026-11-20/2026-11-20")) == ("slice", day, day + 86_400_000 - 1)


def test_iso_interval_is_a_slice():
    spec = parse("2026-11-20T10:00:00Z/2026-11-21T00:00:00Z")
    assert times(spec) == ("slice", S_MS, S_MS + 14 * 3600 * 1000 + 999)
    exact = parse("2026-11-20T10:00:00.250Z/2026-11-20T10:00:01.750Z")
    assert times(exact) == ("slice", S_MS + 250, S_MS + 1750)
    mixed = parse("2026-11-20T12:00:00+02:00 / 1795168805000")
    assert times(mixed) == ("slice", S_MS, S_MS + 5000)


# -- epoch ms, now -------------------------------------------------------------------------------
def test_epoch_milliseconds_are_exact():
    assert times(parse("1795168800123")) == ("snapshot", None, S_MS + 123)
    assert times(parse(1795168800123)) == ("snapshot", None, S_MS + 123)
    assert times(parse("0")) == ("snapshot", None, 0)
    assert times(parse("1000/2000")) == ("slice", 1000, 2000)


def test_now():
    assert times(parse("now")) == ("snapshot", None, NOW)
    assert times(parse("  now  ")) == ("snapshot", None, NOW)
    assert times(parse("1000/now")) == ("slice", 1000, NOW)
    assert times(parse("tm20250101000000/now")) == (
        "slice",
        int(datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()) * 1000,
        NOW,
    )


# -- label:/ and run:/ through a resolver ------------------------------------------------------
class Resolver:
    def __init__(self):
        self.labels: list[str] = []
        self.runs: list[str] = []

    def resolve_label(self, name: str) -> TimeSpec:
        self.labels.append(name)
        return TimeSpec(
            kind="slice",
            start_ms=1000,
            end_ms=2000,
            text="ignored",
            label=name,
            label_bucket="bkt",
            label_prefix="data/",
        )

    def resolve_run(self, run_id: str) -> TimeSpec:
        self.runs.append(run_id)
        return snapshot_spec(S_MS + 999)


def test_label_resolves_through_the_resolver():
    r = Resolver()
    spec = parse("label:/flowers-2026-11", resolver=r)
    assert r.labels == ["flowers-2026-11"]
    assert times(spec) == ("slice", 1000, 2000)
    assert (spec.label, spec.label_bucket, spec.label_prefix) == ("flowers-2026-11", "bkt", "data/")
    assert spec.text == "label:/flowers-2026-11"
    assert parse("label://x", resolver=r).label == "x"


def test_run_resolves_through_the_resolver():
    r = Resolver()
    spec = parse("run:/0a1b2c3d4e", resolver=r)
    assert r.runs == ["0a1b2c3d4e"]
    assert times(spec) == ("snapshot", None, S_MS + 999)
    assert spec.text == "run:/0a1b2c3d4e"


@pytest.mark.parametrize("text", ["label:/", "label:/x", "run:/", "run:/abc"])
def test_label_and_run_without_name_or_resolver_are_bad(text):
    with pytest.raises(BadTimeSpec):
        parse(text)
    if text.endswith("/"):
        with pytest.raises(BadTimeSpec):
            parse(text, resolver=Resolver())


# -- errors --------------------------------------------------------------------------------------
FORM_WORDS = [
    "tmYYYYMMDDHHMMSS",
    "ISO 8601",
    "A/B",
    "epoch milliseconds",
    "now",
    "run:/",
    "label:/",
]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "yesterday",
        "tm2026",
        "2026-13-01",
        "2026-11-20T10:61:00Z",
        "2026-11-20T10:00:00Q",
        "12345678901234567",
        "-5",
        "1.5",
        "tm20261120100000-",
        "-tm20261120100000",
        "now-now",
        "nowish",
        "2026-11-20T10:00:00Z/",
        "/now",
        "a/b/c",
        "tm20261120100000-tm2026112010000",
    ],
)
def test_bad_spec_message_lists_the_accepted_forms(bad):
    with pytest.raises(BadTimeSpec) as info:
        parse(bad)
    message = str(info.value)
    for word in FORM_WORDS:
        assert word in message, (bad, word, message)


def _non_ascii_variants(text: str) -> list[str]:
    """``text`` with its last ASCII digit, then all of them, in Arabic-Indic and fullwidth
    digits: Python's int() and re's \\d read both as numbers."""
    out = []
    for zero in ("\u0660", "\uff10"):  # ARABIC-INDIC DIGIT ZERO, FULLWIDTH DIGIT ZERO

        def swap(c: str, zero: str = zero) -> str:
            return chr(ord(zero) + int(c)) if c in "0123456789" else c

        last = max(i for i, c in enumerate(text) if c in "0123456789")
        out.append(text[:last] + swap(text[last]) + text[last + 1 :])
        out.append("".join(swap(c) for c in text))
    return out


@pytest.mark.parametrize(
    "bad",
    ["tm2026010100000\u0661"]
    + [
        variant
        for good in (
            "tm20261120100000",
            "tm20261120100000-tm20261121000000",
            "1763632800000",
            "2026-11-20T10:00:00Z",
            "2026-11-20T10:00:00.123+01:30",
            "2026-11-20",
            "2026-11-20T10:00Z/2026-11-21T00:00Z",
            "1000/2000",
        )
        for variant in _non_ascii_variants(good)
    ],
)
def test_non_ascii_digits_are_not_numbers(bad):
    """Only ASCII 0-9 are digits, in every numeric form: a spec with another script's digit
    is a bad spec, not that number."""
    with pytest.raises(BadTimeSpec) as info:
        parse(bad)
    message = str(info.value)
    for word in FORM_WORDS:
        assert word in message, (bad, word, message)


@pytest.mark.parametrize("bad", [True, False])
def test_booleans_are_not_epoch_milliseconds(bad):
    with pytest.raises(BadTimeSpec):
        parse(bad)


@pytest.mark.parametrize(
    "reversed_slice",
    [
        "tm20261121000000-tm20261120100000",
        "2026-11-21T00:00:00Z/2026-11-20T10:00:00Z",
        "2000/1000",
        "2026-11-20T10:00:00.500Z/2026-11-20T10:00:00.499Z",
        "now/1000",
    ],
)
def test_reversed_slice_is_rejected(reversed_slice):
    with pytest.raises(BadTimeSpec, match="ends before it starts"):
        parse(reversed_slice)


def test_slice_spec_rejects_reversed_bounds():
    assert times(slice_spec(5, 5)) == ("slice", 5, 5)
    with pytest.raises(BadTimeSpec):
        slice_spec(6, 5)


# -- properties ----------------------------------------------------------------------------------
ms_st = st.integers(0, MAX_MS)
offset_st = st.integers(-14 * 60, 14 * 60)  # minutes; real offsets are within +-14:00


def _offset_text(minutes: int, colon: bool) -> str:
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}" if colon else f"{sign}{h:02d}{m:02d}"


def _iso_at(ms: int, offset_min: int, *, fraction: bool, colon: bool = True) -> str | None:
    try:
        dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc) + timedelta(minutes=offset_min)
    except OverflowError:
        return None  # the local time would fall outside years 1..9999
    text = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt:%H:%M:%S}"
    if fraction:
        text += f".{ms % 1000:03d}"
    return text + _offset_text(offset_min, colon)


@PROPS
@given(ms=ms_st)
def test_tm_form_of_any_second_is_that_whole_second(ms):
    sec = ms // 1000 * 1000
    assert times(parse(format_tm(ms))) == ("snapshot", None, sec + 999)


@PROPS
@given(a=ms_st, b=ms_st)
def test_tm_slice_of_any_two_seconds(a, b):
    lo, hi = sorted((a, b))
    text = f"{format_tm(lo)}-{format_tm(hi)}"
    assert times(parse(text)) == ("slice", lo // 1000 * 1000, hi // 1000 * 1000 + 999)
    if lo // 1000 != hi // 1000:
        with pytest.raises(BadTimeSpec):
            parse(f"{format_tm(hi)}-{format_tm(lo)}")


@PROPS
@given(ms=ms_st, offset=offset_st, colon=st.booleans())
def test_iso_with_any_offset_denotes_the_same_instant(ms, offset, colon):
    exact = _iso_at(ms, offset, fraction=True, colon=colon)
    whole = _iso_at(ms, offset, fraction=False, colon=colon)
    if exact is None:
        return
    assert parse(exact).end_ms == ms
    assert parse(whole).end_ms == ms // 1000 * 1000 + 999
    assert parse(f"{whole}/{whole}").start_ms == ms // 1000 * 1000


@PROPS
@given(ms=ms_st)
def test_epoch_ms_and_iso_fraction_are_exact(ms):
    assert parse(str(ms)).end_ms == ms
    assert parse(format_iso(ms)).end_ms == ms


@PROPS
@given(end=ms_st)
def test_canonical_round_trips_for_snapshots(end):
    for spec in (snapshot_spec(end), parse(str(end)), parse(format_iso(end))):
        again = parse(spec.canonical())
        assert times(again) == times(spec) == ("snapshot", None, end)
        assert again.canonical() == spec.canonical()


@PROPS
@given(a=ms_st, b=ms_st)
def test_canonical_round_trips_for_slices(a, b):
    lo, hi = sorted((a, b))
    for spec in (
        slice_spec(lo, hi),
        parse(f"{lo}/{hi}"),
        parse(f"{format_tm(lo)}-{format_tm(hi)}"),
    ):
        again = parse(spec.canonical())
        assert times(again) == times(spec)
        assert again.kind == "slice"
        assert spec.to_dict()["canonical"] == spec.canonical()


@PROPS
@given(text=st.text(max_size=40))
def test_any_text_parses_or_raises_bad_time_spec(text):
    """Arbitrary input never escapes as another exception (which a REST handler would turn
    into a 500); whatever parses has a canonical form that parses back to the same times."""
    try:
        spec = parse(text, resolver=Resolver())
    except BadTimeSpec:
        return
    assert times(parse(spec.canonical(), resolver=Resolver())) == times(spec)


# -- edges found by the properties above ---------------------------------------------------------
@pytest.mark.parametrize("text", ["9999999999999999", "253402300800000"])
def test_epoch_ms_past_year_9999_is_rejected_or_formattable(text):
    """The epoch form accepts up to 16 digits, but canonical()/to_dict() can only write years
    up to 9999: an accepted spec must not crash when it is shown back."""
    try:
        spec = parse(text)
    except BadTimeSpec:
        return
    assert times(parse(spec.canonical())) == times(spec)
    spec.to_dict()


@pytest.mark.parametrize("text", ["0999-01-01T00:00:00Z", "0001-06-01T12:00:00.500Z"])
def test_iso_before_year_1000_is_rejected_or_round_trips(text):
    """ISO accepts years 0001-0999, but format_tm/format_iso write them without zero padding
    (strftime %Y), so canonical() gives text the parser rejects."""
    try:
        spec = parse(text)
    except BadTimeSpec:
        return
    assert times(parse(spec.canonical())) == times(spec)


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2026-11-20T10:00:00+99:99",
        "2026-11-20T10:00:00+24:00",
        "2026-11-20T10:00:00+05:60",
    ],
)
def test_out_of_range_offsets_are_bad_time_specs(text):
    with pytest.raises(BadTimeSpec):
        parse(text)


def test_window_start_is_the_first_millisecond_the_spec_denotes():
    from infinstor_jlab.timespec import window_start_ms

    second = 1_795_168_800_000  # 2026-11-20T10:00:00Z
    assert window_start_ms(parse_time_spec("tm20261120100000")) == second
    assert window_start_ms(parse_time_spec("2026-11-20T10:00:00Z")) == second
    assert window_start_ms(parse_time_spec("2026-11-20T12:00:00+02:00")) == second
    assert window_start_ms(parse_time_spec("2026-11-20T10:00:00.250Z")) == second + 250
    assert window_start_ms(parse_time_spec(str(second + 999))) == second + 999
    assert window_start_ms(parse_time_spec("tm20261120100000-tm20261120110000")) == second
    now = parse_time_spec("now")
    assert window_start_ms(now) == now.end_ms


# -- out of range, and the future ----------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "1969-12-31T23:59:59Z",
        "1969-12-31T23:59:59.999Z",
        "1969-12-31",
        "tm19691231235959",
        "0001-01-01T00:00:00+01:00",
        "99999999999999999"[:16],
        "1969-12-31T00:00:00Z/2026-11-20T10:00:00Z",
    ],
)
def test_a_well_formed_time_outside_1970_to_9999_is_out_of_range(text):
    with pytest.raises(BadTimeSpec) as info:
        parse(text)
    message = str(info.value)
    assert "is out of range" in message and "1970-01-01T00:00:00Z" in message, message
    assert "not a time" not in message


def test_future_note_says_a_future_view_is_the_bucket_now():
    from infinstor_jlab.timespec import future_note

    assert future_note(parse("tm20261120100000"), now=S_MS + 5000) is None
    note = future_note(parse("tm20261120100000"), now=S_MS - 60_000)
    assert (
        note == "2026-11-20 10:00:00 UTC is in the future; this is the bucket as it is now (live)."
    )
    # A date-only spec ends at the day's last millisecond: later that day it is still future.
    assert future_note(parse("2026-11-20"), now=S_MS) is not None
    window = parse("tm20261120090000-tm20261120110000")
    assert "ends in the future" in (future_note(window, now=S_MS) or "")
    assert "starts in the future" in (future_note(window, now=S_MS - 7_200_000) or "")
    assert parse("tm20991231000000").to_dict()["future"] is True
    assert parse("tm20261120100000").to_dict()["future"] is False
