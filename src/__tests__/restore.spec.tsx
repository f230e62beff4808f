import {
  confirmPattern,
  defaultDownloadPath,
  planLine,
  planSummary,
  restoreTarget
} from '../browse/restore';
import { IRestorePlan } from '../api/types';

describe('restore helpers', () => {
  it('goes back only to a past snapshot or a snapshot label', () => {
    expect(restoreTarget({ at: 'tm20261120100000' }, 'snapshot')).toBe(
      'tm20261120100000'
    );
    expect(restoreTarget({ label: 'good' }, 'label')).toBe('label:/good');
    expect(restoreTarget({ label: 'win' }, 'label', 'slice')).toBeNull();
    expect(restoreTarget({ at: 'tm20261120100000' }, 'now')).toBeNull();
    expect(restoreTarget({ slice: 'tmA-tmB' }, 'slice')).toBeNull();
  });

  it('accepts exactly the folder name as the confirmation', () => {
    // As a browser compiles an input's pattern: the whole value, `v` flag.
    const accepts = (name: string, value: string) =>
      new RegExp(`^(?:${confirmPattern(name)})$`, 'v').test(value);
    expect(accepts('tables', 'tables')).toBe(true);
    expect(accepts('tables', ' tables ')).toBe(true);
    expect(accepts('tables', 'table')).toBe(false);
    expect(accepts('tables', 'tables2')).toBe(false);
    expect(accepts('tables', '')).toBe(false);
    for (const odd of [
      'a.b',
      'x-(1)',
      'c++ [v2] {a|b}',
      'ü/ß$^',
      'a&b!#%,:;<=>@`~'
    ]) {
      expect(accepts(odd, odd)).toBe(true);
      expect(accepts(odd, `${odd}x`)).toBe(false);
    }
    expect(accepts('a.b', 'aXb')).toBe(false);
  });

  it('marks each change as the CLI does', () => {
    expect(
      planLine({ key: 'a', change: 'bring back', live_version_id: null })
    ).toBe('+ a');
    expect(planLine({ key: 'b', change: 'revert', live_version_id: 'v' })).toBe(
      'M b'
    );
    expect(planLine({ key: 'c', change: 'delete', live_version_id: 'v' })).toBe(
      '- c'
    );
  });

  it('sums the plan up', () => {
    const plan: IRestorePlan = {
      bucket: 'b',
      prefix: 'tables/',
      to: {
        kind: 'snapshot',
        start_ms: null,
        end_ms: 1,
        canonical: 'tm1',
        display: 'as of then',
        label: null
      },
      copy: [
        { key: 'tables/a', change: 'revert', live_version_id: 'x', size: 8 }
      ],
      delete: [{ key: 'tables/c', change: 'delete', live_version_id: 'y' }],
      unchanged: 3,
      skipped: [],
      forced: [],
      bytes_to_copy: 8,
      fingerprint: 'sha256:0'
    };
    const text = planSummary(plan);
    expect(text).toContain('1 to bring back or revert');
    expect(text).toContain('1 to delete');
    expect(text).toContain('3 unchanged');
  });

  it('downloads into s3/<bucket>/<prefix> by default, without dot parts', () => {
    expect(defaultDownloadPath('b', 'tables/2026/')).toBe('s3/b/tables/2026');
    expect(defaultDownloadPath('b', '../x/./y')).toBe('s3/b/x/y');
    expect(defaultDownloadPath('b', '')).toBe('s3/b');
  });
});
