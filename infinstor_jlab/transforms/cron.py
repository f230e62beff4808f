"""Five-field cron expressions (minute hour day-of-month month day-of-week), in UTC.

Fields take ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, lists ``a,b``, and
month and weekday names (``jan``, ``mon``); ``@hourly``, ``@daily``, ``@weekly``,
``@monthly`` and ``@yearly`` are shorthands. As in Vixie cron, when both day-of-month and
day-of-week are restricted a day matching either one fires."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..errors import BadRequest

_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


def _bad(expr: str, why: str) -> BadRequest:
    return BadRequest(
        f"{expr!r} is not a cron expression I understand ({why}); write five fields, "
        "minute hour day-of-month month day-of-week, in UTC, e.g. '0 2 * * *' (daily at "
        "02:00) or '*/15 * * * *', or @hourly/@daily/@weekly/@monthly."
    )


def _value(text: str, lo: int, names: list[str] | None, expr: str, field: str) -> int:
    if names and text.lower() in names:
        return names.index(text.lower()) + (1 if lo == 1 else 0)
    if not text.isdigit():
        raise _bad(expr, f"{field} {text!r} is not a number")
    return int(text)


def _field(text: str, spec: tuple[str, int, int, list[str] | None], expr: str) -> frozenset[int]:
    field, lo, hi, names = spec
    out: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise _bad(expr, f"{field} step {step_text!r} must be a positive number")
            step = int(step_text)
        if body == "*":
            start, end = lo, hi
        elif "-" in body:
            a, _, b = body.partition("-")
            start = _value(a, lo, names, expr, field)
            end = _value(b, lo, names, expr, field)
        else:
            start = _value(body, lo, names, expr, field)
            end = hi if step_text else start
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise _bad(expr, f"{field} {body!r} is outside {lo}-{hi}")
        out.update(range(start, end + 1, step))
    if field == "day of week" and 7 in out:  # 7 is Sunday too
        out.discard(7)
        out.add(0)
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        expr = (text or "").strip()
        fields = _ALIASES.get(expr.lower(), expr).split()
        if len(fields) != 5:
            raise _bad(expr, f"it has {len(fields)} field(s), not 5")
        sets = [_field(f, spec, expr) for f, spec in zip(fields, _FIELDS, strict=True)]
        return cls(
            expr,
            *sets,
            any_day=fields[2] == "*",
            any_weekday=fields[4] == "*",
        )

    def _day_matches(self, day: dt.date) -> bool:
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow

    def next_after(self, ms: int) -> int:
        """The first firing time strictly after ``ms`` (epoch milliseconds, UTC)."""
        t = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).replace(second=0, microsecond=0)
        t += dt.timedelta(minutes=1)
        limit = t + dt.timedelta(days=366 * 5)
        while t < limit:
            if t.month not in self.months or not self._day_matches(t.date()):
                t = (t + dt.timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in self.hours:
                t = (t + dt.timedelta(hours=1)).replace(minute=0)
                continue
            if t.minute not in self.minutes:
                t += dt.timedelta(minutes=1)
                continue
            return int(t.timestamp() * 1000)
        raise _bad(self.text, "it never fires")
