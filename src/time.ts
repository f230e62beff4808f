/**
 * Time formatting and time-spec building for the sidebar.
 *
 * Times are UTC epoch milliseconds everywhere. The server's convention is kept
 * exactly: a snapshot time (or slice end) whose milliseconds are 999 means "the
 * whole second" and is written as `tmYYYYMMDDHHMMSS`; a slice start whose
 * milliseconds are 0 likewise. Other times are exact and written as ISO 8601
 * with milliseconds. So a spec built here parses back to the same milliseconds.
 */

/** How times are shown: in the browser's time zone or in UTC. */
export type TimeDisplay = 'local' | 'utc';

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}

interface IParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

function parts(ms: number, display: TimeDisplay): IParts {
  const d = new Date(ms);
  if (display === 'utc') {
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      second: d.getUTCSeconds(),
      ms: d.getUTCMilliseconds()
    };
  }
  return {
    year: d.getFullYear(),
    month: d.getMonth() + 1,
    day: d.getDate(),
    hour: d.getHours(),
    minute: d.getMinutes(),
    second: d.getSeconds(),
    ms: d.getMilliseconds()
  };
}

/**
 * `UTC+05:30` for an offset east of UTC in minutes; plain `UTC` for none
 * (`UTC+00:00` would say the same thing twice).
 */
export function offsetText(minutes: number): string {
  if (minutes === 0) {
    return 'UTC';
  }
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** `UTC+05:30` for the browser's offset at that instant (`UTC` when none). */
export function formatOffset(ms: number): string {
  return offsetText(-new Date(ms).getTimezoneOffset());
}

/** `2026-11-20` in the chosen display. */
export function formatDate(ms: number, display: TimeDisplay): string {
  const p = parts(ms, display);
  return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}`;
}

/** `10:00:00` (and `.250` when the time has a fraction other than .000/.999). */
export function formatClock(ms: number, display: TimeDisplay): string {
  const p = parts(ms, display);
  const frac = ((ms % 1000) + 1000) % 1000;
  const base = `${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}`;
  return frac === 0 || frac === 999 ? base : `${base}.${pad(frac, 3)}`;
}

/**
 * A time for people, to the second: `2026-11-20 10:00:00 UTC` or, in local
 * display, `2026-11-20 11:00:00 UTC+01:00`. Milliseconds show only when they
 * matter (not .000, and not .999, which means "the whole second").
 */
export function formatTime(ms: number, display: TimeDisplay): string {
  const zone = display === 'utc' ? 'UTC' : formatOffset(ms);
  return `${formatDate(ms, display)} ${formatClock(ms, display)} ${zone}`;
}

/**
 * The time picker's text, `2026-11-20 10:00:00`: the same form as every other
 * time the sidebar shows (the browser's own date-time input would show its
 * locale's form, e.g. 12-hour, beside our 24-hour times).
 */
export function toInputValue(ms: number, display: TimeDisplay): string {
  const p = parts(ms, display);
  return (
    `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}` +
    ` ${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}`
  );
}

const INPUT_RE =
  /^(\d{4,})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/;

/**
 * The first millisecond of the second a picker's text names (`2026-11-20
 * 10:00:00`, or with a `T`), read in the chosen display (local time or UTC);
 * null when invalid.
 */
export function parseInputValue(
  value: string,
  display: TimeDisplay
): number | null {
  const m = INPUT_RE.exec(value.trim());
  if (!m) {
    return null;
  }
  const [year, month, day, hour, minute] = m.slice(1, 6).map(Number);
  const second = m[6] ? Number(m[6]) : 0;
  if (
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > 31 ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    return null;
  }
  let ms: number;
  if (display === 'utc') {
    ms = Date.UTC(year, month - 1, day, hour, minute, second);
  } else {
    ms = new Date(year, month - 1, day, hour, minute, second).getTime();
  }
  if (!Number.isFinite(ms)) {
    return null;
  }
  // Reject dates that rolled over (Feb 30 -> Mar 2).
  const back = parts(ms, display);
  if (back.day !== day || back.month !== month) {
    return null;
  }
  return ms;
}

/** First millisecond of the second holding `ms`. */
export function secondStart(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

/** Last millisecond of the second holding `ms`: "the whole second" as a snapshot time. */
export function secondEnd(ms: number): number {
  return secondStart(ms) + 999;
}

/** `tm20261120100000` (UTC, the second holding `ms`). */
export function formatTm(ms: number): string {
  const p = parts(ms, 'utc');
  return (
    `tm${pad(p.year, 4)}${pad(p.month)}${pad(p.day)}` +
    `${pad(p.hour)}${pad(p.minute)}${pad(p.second)}`
  );
}

/** `2026-11-20T10:00:00.123Z`. */
export function formatIso(ms: number): string {
  const p = parts(ms, 'utc');
  return (
    `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}` +
    `T${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}.${pad(p.ms, 3)}Z`
  );
}

/**
 * The spec of a snapshot at `atMs` (inclusive): `tm...` when it is the last
 * millisecond of a second (the whole second), else the exact ISO instant.
 */
export function snapshotSpec(atMs: number): string {
  return atMs % 1000 === 999 ? formatTm(atMs) : formatIso(atMs);
}

/** The spec of the slice [startMs, endMs] (both inclusive), as the server writes it. */
export function sliceSpec(startMs: number, endMs: number): string {
  if (startMs % 1000 === 0 && endMs % 1000 === 999) {
    return `${formatTm(startMs)}-${formatTm(endMs)}`;
  }
  return `${formatIso(startMs)}/${formatIso(endMs)}`;
}

/** Epoch ms of an S3 `LastModified` / ISO string; NaN when unreadable. */
export function parseIsoTime(text: string): number {
  return Date.parse(text);
}

const BYTE_UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** `1.5 KB`, `12 MB`, `999 B` (powers of 1024, as the file browser shows them). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) {
    return '';
  }
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) {
    return `${bytes} B`;
  }
  const text = value >= 10 ? value.toFixed(0) : value.toFixed(1);
  return `${text} ${BYTE_UNITS[unit]}`;
}

/** `12 s`, `3 min`, `2 h 5 min`, `4 d` for a duration in ms. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) {
    return `${s} s`;
  }
  const min = Math.floor(s / 60);
  if (min < 60) {
    return `${min} min`;
  }
  const h = Math.floor(min / 60);
  if (h < 48) {
    return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  }
  return `${Math.floor(h / 24)} d`;
}

/** `12,345`. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
