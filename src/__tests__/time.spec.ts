// jest.config.js runs the tests in Asia/Kolkata (UTC+05:30, no DST).
import {
  formatBytes,
  formatClock,
  formatCount,
  formatDuration,
  formatIso,
  formatOffset,
  offsetText,
  formatTime,
  formatTm,
  parseInputValue,
  secondEnd,
  secondStart,
  sliceSpec,
  snapshotSpec,
  toInputValue
} from '../time';

// 2026-11-20T10:00:00Z
const T = Date.UTC(2026, 10, 20, 10, 0, 0);

describe('time formatting', () => {
  it('formats UTC to the second', () => {
    expect(formatTime(T, 'utc')).toBe('2026-11-20 10:00:00 UTC');
    expect(formatTime(T + 59_000, 'utc')).toBe('2026-11-20 10:00:59 UTC');
  });

  it('formats local time with its offset', () => {
    expect(formatOffset(T)).toBe('UTC+05:30');
    expect(formatTime(T, 'local')).toBe('2026-11-20 15:30:00 UTC+05:30');
  });

  it('writes no offset for a zone at UTC (not UTC+00:00)', () => {
    expect(offsetText(0)).toBe('UTC');
    expect(offsetText(330)).toBe('UTC+05:30');
    expect(offsetText(-210)).toBe('UTC-03:30');
  });

  it('hides .000 and .999 (the whole second) but shows other milliseconds', () => {
    expect(formatClock(T + 999, 'utc')).toBe('10:00:00');
    expect(formatClock(T + 250, 'utc')).toBe('10:00:00.250');
    expect(formatTime(T + 7, 'utc')).toBe('2026-11-20 10:00:00.007 UTC');
  });

  it('crosses the date line in local time', () => {
    const lateUtc = Date.UTC(2026, 10, 20, 20, 0, 0);
    expect(formatTime(lateUtc, 'local')).toBe('2026-11-21 01:30:00 UTC+05:30');
  });

  it('formats tm and ISO specs in UTC', () => {
    expect(formatTm(T)).toBe('tm20261120100000');
    expect(formatTm(T + 999)).toBe('tm20261120100000');
    expect(formatIso(T + 5)).toBe('2026-11-20T10:00:00.005Z');
  });
});

describe('date-time picker values', () => {
  it('shows and reads local time, in the one 24-hour form', () => {
    expect(toInputValue(T, 'local')).toBe('2026-11-20 15:30:00');
    expect(parseInputValue('2026-11-20 15:30:00', 'local')).toBe(T);
    expect(parseInputValue('2026-11-20T15:30:00', 'local')).toBe(T);
  });

  it('shows and reads UTC', () => {
    expect(toInputValue(T, 'utc')).toBe('2026-11-20 10:00:00');
    expect(parseInputValue('2026-11-20 10:00:00', 'utc')).toBe(T);
  });

  it('shows the same form as formatTime, without its zone', () => {
    for (const display of ['utc', 'local'] as const) {
      expect(formatTime(T, display).startsWith(toInputValue(T, display))).toBe(
        true
      );
    }
  });

  it('keeps second precision and drops milliseconds', () => {
    expect(toInputValue(T + 42_999, 'utc')).toBe('2026-11-20 10:00:42');
    expect(parseInputValue('2026-11-20T10:00:42', 'utc')).toBe(T + 42_000);
  });

  it('accepts a value without seconds', () => {
    expect(parseInputValue('2026-11-20T10:00', 'utc')).toBe(T);
  });

  it('round-trips every second of a day in both displays', () => {
    for (let s = 0; s < 86_400; s += 997) {
      const ms = T + s * 1000;
      expect(parseInputValue(toInputValue(ms, 'local'), 'local')).toBe(ms);
      expect(parseInputValue(toInputValue(ms, 'utc'), 'utc')).toBe(ms);
    }
  });

  it('rejects invalid values', () => {
    expect(parseInputValue('', 'utc')).toBeNull();
    expect(parseInputValue('2026-02-30T10:00:00', 'utc')).toBeNull();
    expect(parseInputValue('2026-11-20T25:00:00', 'utc')).toBeNull();
    expect(parseInputValue('yesterday', 'local')).toBeNull();
    expect(parseInputValue('11/20/2026, 10:00:00 AM', 'utc')).toBeNull();
  });
});

describe('time specs', () => {
  it('writes a whole-second snapshot as tm and an exact one as ISO', () => {
    expect(secondEnd(T + 123)).toBe(T + 999);
    expect(secondStart(T + 999)).toBe(T);
    expect(snapshotSpec(T + 999)).toBe('tm20261120100000');
    expect(snapshotSpec(T + 250)).toBe('2026-11-20T10:00:00.250Z');
  });

  it('writes a whole-second slice as tmA-tmB and others as an ISO interval', () => {
    expect(sliceSpec(T, T + 60_999)).toBe('tm20261120100000-tm20261120100100');
    expect(sliceSpec(T + 1, T + 60_999)).toBe(
      '2026-11-20T10:00:00.001Z/2026-11-20T10:01:00.999Z'
    );
  });
});

describe('numbers', () => {
  it('formats sizes, durations and counts', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MB');
    expect(formatBytes(-1)).toBe('');
    expect(formatDuration(12_400)).toBe('12 s');
    expect(formatDuration(3 * 60_000)).toBe('3 min');
    expect(formatDuration(125 * 60_000)).toBe('2 h 5 min');
    expect(formatDuration(72 * 3600_000)).toBe('3 d');
    expect(formatCount(1234567)).toBe('1,234,567');
  });
});
