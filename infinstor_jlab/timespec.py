"""The one time-spec parser and formatter (CLI, REST API, boto3 hooks and UI all use it).

Times are UTC epoch milliseconds. A spec names either a *snapshot* (one instant T: every key's
newest version with time <= T) or a *slice* (a window [T1, T2], both ends inclusive).

A point given with whole-second precision (``tm...`` forms, ISO without a fraction) denotes the
whole second: as a snapshot time or a slice end it means the last millisecond of that second, as a
slice start the first. That is what "one-second resolution" means: AWS listings only give whole
seconds, so a version listed at 10:00:00 must be visible in the snapshot at ``tm...100000``.
Epoch milliseconds and ISO instants with a fraction are exact.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Literal, Protocol

from .errors import BadTimeSpec

ACCEPTED_FORMS = (
    "tmYYYYMMDDHHMMSS (UTC snapshot, e.g. tm20261120100000)",
    "tmYYYYMMDDHHMMSS-tmYYYYMMDDHHMMSS (slice)",
    "an ISO 8601 instant (2026-11-20T10:00:00Z, offsets and fractions allowed)",
    "an ISO 8601 interval A/B (slice, e.g. 2026-11-20T10:00:00Z/2026-11-21T00:00:00Z)",
    "epoch milliseconds (e.g. 1763632800000)",
    "now",
    "run:/<mlflow run id>",
    "label:/<label name>",
)

SpecKind = Literal["snapshot", "slice"]

# Digits are ASCII [0-9], never \d: Python's \d and int() also take other scripts' digits
# (Arabic-Indic, fullwidth), which no one means in a time spec.

_TM_RE = re.compile(r"^tm([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})\Z")
_TM_SLICE_RE = re.compile(r"^(tm[0-9]{14})-(tm[0-9]{14})\Z")
_EPOCH_RE = re.compile(r"^[0-9]{1,16}\Z")
_ISO_RE = re.compile(
    r"^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ](?P<h>[0-9]{2}):(?P<m>[0-9]{2})"
    r"(?::(?P<s>[0-9]{2})(?:[.,](?P<frac>[0-9]{1,9}))?)?)?"
    r"(?P<tz>Z|z|[+-][0-9]{2}:?[0-9]{2})?\Z"
)


# Times a spec may name: S3 did not exist before 1970, and formatting stops at year 9999.
MIN_MS = 0
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def second_end_ms(ms: int) -> int:
    """The first millisecond after the whole second that holds ``ms``."""
    return (ms // 1000 + 1) * 1000


def is_future(ms: int) -> bool:
    """``ms`` is at least a second from now: a view there cannot be pinned or read yet (and
    waiting for its second to be over, as ``wait_past_second`` would, could take forever)."""
    return ms >= now_ms() + 1000


def wait_past_second(ms: int) -> None:
    """Sleep until the second that holds ``ms`` is over: S3 lists whole seconds, so only
    then does a listing show every version that will ever be listed inside it."""
    wait_ms = second_end_ms(ms) - now_ms()
    if wait_ms > 0:
        time.sleep(wait_ms / 1000)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


RANGE_TEXT = "1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z"


def _out_of_range(text: str) -> BadTimeSpec:
    # A well-formed time outside what S3 can hold is a different mistake from a typo: say so,
    # instead of listing forms the user already wrote correctly.
    return BadTimeSpec(
        f"{text!r} is out of range: times run from {RANGE_TEXT} (S3 keeps nothing older than "
        "1970); give a time in that range."
    )


def future_note(spec: TimeSpec, *, now: int | None = None) -> str | None:
    """What a view that ends in the future shows, for people; ``None`` when it does not.

    Browsing a future time is not an error (a date-only spec for today ends tonight): the
    view is the bucket as it is now, and the note says so instead of heading it "as of" a
    time that has not come."""
    current = now_ms() if now is None else now
    if spec.end_ms < current + 1000:
        return None
    if spec.kind == "snapshot":
        return (
            f"{format_human(spec.end_ms)} is in the future; this is the bucket as it is now (live)."
        )
    assert spec.start_ms is not None
    if spec.start_ms >= current + 1000:
        return (
            f"the slice starts in the future ({format_human(spec.start_ms)}); nothing has "
            "arrived in it yet."
        )
    return (
        f"the slice ends in the future ({format_human(spec.end_ms)}); it shows what arrived "
        "up to now."
    )


def accepted_forms_message(prefix: str) -> str:
    return f"{prefix} Accepted time specs: " + "; ".join(ACCEPTED_FORMS) + "."


@dataclass(frozen=True)
class TimeSpec:
    """A parsed spec resolved to absolute times.

    ``end_ms`` is the snapshot time (or the slice's inclusive upper bound); ``start_ms`` is the
    slice's inclusive lower bound and ``None`` for snapshots. ``label`` names the label a
    ``label:/`` spec came from, with that label's bucket and prefix.
    """

    kind: SpecKind
    end_ms: int
    start_ms: int | None = None
    text: str = ""
    label: str | None = None
    label_bucket: str | None = None
    label_prefix: str | None = None

    @property
    def at_ms(self) -> int:
        return self.end_ms

    @property
    def is_slice(self) -> bool:
        return self.kind == "slice"

    def canonical(self) -> str:
        """A spec string that parses back to exactly these times."""
        if self.kind == "snapshot":
            return format_point(self.end_ms, upper=True)
        assert self.start_ms is not None
        if self.start_ms % 1000 == 0 and self.end_ms % 1000 == 999:
            return f"{format_tm(self.start_ms)}-{format_tm(self.end_ms)}"
        return f"{format_iso(self.start_ms)}/{format_iso(self.end_ms)}"

    def display(self) -> str:
        if self.kind == "snapshot":
            return f"as of {format_human(self.end_ms)}"
        assert self.start_ms is not None
        return f"arrivals from {format_human(self.start_ms)} to {format_human(self.end_ms)}"

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "canonical": self.canonical(),
            "display": self.display(),
            "label": self.label,
            # Computed when the answer is written: the server's clock decides, not the browser's.
            "future": is_future(self.end_ms),
        }


class SpecResolver(Protocol):
    """Resolves the ``label:/`` and ``run:/`` forms; services supply one."""

    def resolve_label(self, name: str) -> TimeSpec: ...

    def resolve_run(self, run_id: str) -> TimeSpec: ...


@dataclass(frozen=True)
class _Point:
    lower: int  # first millisecond the text denotes
    upper: int  # last millisecond the text denotes


_OUT_OF_RANGE = _Point(-1, -1)  # a well-formed time S3 cannot hold (see _parse_iso)


def _parse_point(text: str, now: int) -> _Point | None:
    if text == "now":
        return _Point(now, now)
    m = _TM_RE.match(text)
    if m:
        try:
            year, month, day, hour, minute, second = (int(g) for g in m.groups())
            dt = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
        except ValueError:
            return None
        ms = int(dt.timestamp()) * 1000
        if ms < MIN_MS:
            raise _out_of_range(text)
        return _Point(ms, ms + 999)
    if _EPOCH_RE.match(text):
        ms = int(text)
        if ms > MAX_MS:
            raise _out_of_range(text)
        return _Point(ms, ms)
    m = _ISO_RE.match(text)
    if m:
        point = _parse_iso(m)
        if point is _OUT_OF_RANGE:
            raise _out_of_range(text)
        return point
    return None


def _parse_iso(m: re.Match[str]) -> _Point | None:
    """The point an ISO match denotes; ``None`` for an impossible date or offset, and
    ``_OUT_OF_RANGE`` for a real time before 1970 or after 9999."""
    try:
        year, month, day = (int(x) for x in m["date"].split("-"))
        hour = int(m["h"] or 0)
        minute = int(m["m"] or 0)
        second = int(m["s"] or 0)
        dt = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        return None
    tz = m["tz"]
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            return None
        try:
            dt = dt - sign * timedelta(hours=hours, minutes=minutes)
        except OverflowError:
            return _OUT_OF_RANGE
    base = int(dt.timestamp()) * 1000
    frac = m["frac"]
    if frac is not None:
        ms = base + int((frac + "000")[:3])
        # Sub-millisecond digits round down: times are kept in whole milliseconds.
        if ms < MIN_MS or ms > MAX_MS:
            return _OUT_OF_RANGE
        return _Point(ms, ms)
    if m["s"] is not None:
        span = 1000
    elif m["h"] is not None:
        span = 60_000
    else:
        span = 86_400_000
    if base < MIN_MS or base + span - 1 > MAX_MS:
        return _OUT_OF_RANGE
    return _Point(base, base + span - 1)


def parse_time_spec(
    text: str | int,
    *,
    resolver: SpecResolver | None = None,
    now: int | None = None,
) -> TimeSpec:
    """Parse any accepted form; raise :class:`BadTimeSpec` listing the forms otherwise."""
    if isinstance(text, bool):
        raise BadTimeSpec(accepted_forms_message(f"{text!r} is not a time spec."))
    if isinstance(text, int):
        text = str(text)
    raw = text
    text = text.strip()
    if not text:
        raise BadTimeSpec(accepted_forms_message("The time spec is empty."))
    current = now_ms() if now is None else now

    if text.startswith("label:/"):
        name = text[len("label:/") :].lstrip("/")
        if not name:
            raise BadTimeSpec("label:/ needs a label name, e.g. label:/flowers-2026-11.")
        if resolver is None:
            raise BadTimeSpec(f"Cannot resolve {text!r} here: no label store is configured.")
        return replace(resolver.resolve_label(name), text=raw)
    if text.startswith("run:/"):
        run_id = text[len("run:/") :].lstrip("/")
        if not run_id:
            raise BadTimeSpec("run:/ needs an MLflow run id, e.g. run:/0a1b2c3d4e.")
        if resolver is None:
            raise BadTimeSpec(f"Cannot resolve {text!r} here: MLflow run lookup is not available.")
        return replace(resolver.resolve_run(run_id), text=raw)

    m = _TM_SLICE_RE.match(text)
    if m:
        return _make_slice(raw, m.group(1), m.group(2), current)
    if "/" in text:
        left, _, right = text.partition("/")
        return _make_slice(raw, left.strip(), right.strip(), current)

    point = _parse_point(text, current)
    if point is None:
        raise BadTimeSpec(accepted_forms_message(f"{raw!r} is not a time spec I understand."))
    return TimeSpec(kind="snapshot", end_ms=point.upper, text=raw)


def _make_slice(raw: str, left: str, right: str, now: int) -> TimeSpec:
    start = _parse_point(left, now)
    end = _parse_point(right, now)
    if start is None or end is None:
        bad = left if start is None else right
        raise BadTimeSpec(
            accepted_forms_message(f"{bad!r} in slice {raw!r} is not a time I understand.")
        )
    if start.lower > end.upper:
        raise BadTimeSpec(
            f"Slice {raw!r} ends before it starts; put the earlier time first (A/B or tmA-tmB)."
        )
    return TimeSpec(kind="slice", start_ms=start.lower, end_ms=end.upper, text=raw)


def window_start_ms(spec: TimeSpec) -> int:
    """The first millisecond of ``spec`` taken as the start of a time range (a timeline's
    ``from``): a slice's start; a single time written to the second (``tm...``, ISO without
    a fraction) means that whole second, so its first millisecond; any other single time
    (epoch ms, a fraction, ``now``, a label's or run's time) exactly."""
    if spec.start_ms is not None:
        return spec.start_ms
    point = _parse_point(spec.text.strip(), now_ms()) if spec.text.strip() else None
    if point is not None and point.upper == spec.end_ms:
        return point.lower
    return spec.end_ms


def snapshot_spec(at_ms: int) -> TimeSpec:
    return TimeSpec(kind="snapshot", end_ms=at_ms, text=str(at_ms))


def slice_spec(start_ms: int, end_ms: int) -> TimeSpec:
    if start_ms > end_ms:
        raise BadTimeSpec("A slice must start before it ends.")
    return TimeSpec(kind="slice", start_ms=start_ms, end_ms=end_ms, text=f"{start_ms}/{end_ms}")


_DAY_MS = 86_400_000


@functools.lru_cache(maxsize=4096)
def _iso_day(day: int) -> str:
    dt = datetime.fromtimestamp(day * 86_400, tz=timezone.utc)
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"


def format_iso(ms: int) -> str:
    """``2026-11-20T10:00:00.123Z``: the form S3 listings use, with milliseconds.

    Called for every object of every listing page, so answers are cached (listings of nearby
    times show mostly the same objects), the date part per day, and the time of day is plain
    arithmetic."""
    text = _ISO_CACHE.get(ms)
    if text is None:
        day, rest = divmod(ms, _DAY_MS)
        seconds, millis = divmod(rest, 1000)
        hours, seconds = divmod(seconds, 3600)
        minutes, seconds = divmod(seconds, 60)
        text = f"{_iso_day(day)}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"
        if len(_ISO_CACHE) >= _ISO_CACHE_MAX:
            _ISO_CACHE.clear()  # bounded; refills with what the next pages need
        _ISO_CACHE[ms] = text
    return text


_ISO_CACHE: dict[int, str] = {}
_ISO_CACHE_MAX = 200_000


def format_tm(ms: int) -> str:
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return f"tm{dt.year:04d}" + dt.strftime("%m%d%H%M%S")


def format_point(ms: int, *, upper: bool) -> str:
    """Shortest spec for one instant, as a snapshot time (upper) or slice start (lower)."""
    if (upper and ms % 1000 == 999) or (not upper and ms % 1000 == 0):
        return format_tm(ms)
    return format_iso(ms)


def format_human(ms: int) -> str:
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    frac = ms % 1000
    text = f"{dt.year:04d}-" + dt.strftime("%m-%d %H:%M:%S")
    if frac not in (0, 999):
        text += f".{frac:03d}"
    return text + " UTC"


def parse_s3_timestamp(value: str) -> tuple[int, bool]:
    """Parse an S3 ``LastModified`` (``2026-11-20T10:00:00.000Z``) into (ms, precise).

    ``precise`` is true when the source carried non-zero milliseconds (S3 events, Ceph RGW);
    AWS listings truncate to whole seconds and give ``.000``.
    """
    m = _ISO_RE.match(value.strip())
    if not m:
        raise ValueError(f"unrecognised S3 timestamp {value!r}")
    point = _parse_iso(m)
    if point is None or point is _OUT_OF_RANGE:
        raise ValueError(f"unrecognised S3 timestamp {value!r}")
    frac = m["frac"]
    precise = frac is not None and int(frac) != 0
    return point.lower, precise
