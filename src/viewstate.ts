/**
 * The sidebar's view state (bucket, folder and time kind) and the pure functions that
 * turn it into the API's view parameters and into one time spec. `InfinstorModel` holds
 * the state; these read it and nothing else.
 */

import { ITimeSpec, IViewParams } from './api/types';
import { secondEnd, sliceSpec, snapshotSpec } from './time';

/** Which kind of view the browser shows. */
export type TimeMode = 'now' | 'snapshot' | 'slice' | 'label';

/** What is saved across reloads (IStateDB). */
export interface IViewState {
  bucket: string | null;
  prefix: string;
  mode: TimeMode;
  /** Snapshot time (inclusive; ms 999 means the whole second). */
  atMs: number | null;
  /** Inclusive slice window. */
  sliceStartMs: number | null;
  sliceEndMs: number | null;
  label: string | null;
}

/** The view as API query parameters (`at`, `slice` or `label`; none for "now"). */
export function viewParams(s: IViewState): IViewParams {
  switch (s.mode) {
    case 'snapshot':
      return s.atMs === null ? {} : { at: snapshotSpec(s.atMs) };
    case 'slice':
      return s.sliceStartMs === null || s.sliceEndMs === null
        ? {}
        : { slice: sliceSpec(s.sliceStartMs, s.sliceEndMs) };
    case 'label':
      return s.label ? { label: s.label } : {};
    default:
      return {};
  }
}

/**
 * The view pinned to absolute times: like `viewParams`, but "now" becomes the
 * time the listing was answered at (`spec`, what the user saw), or the current
 * second when there is no listing yet. For code and labels.
 */
export function pinnedViewParams(
  s: IViewState,
  spec: ITimeSpec | null
): IViewParams {
  if (s.mode === 'now') {
    return {
      at: spec ? spec.canonical : snapshotSpec(secondEnd(Date.now()))
    };
  }
  return viewParams(s);
}

/** The view as one time spec (the text field shows it). */
export function specText(s: IViewState): string {
  switch (s.mode) {
    case 'snapshot':
      return s.atMs === null ? '' : snapshotSpec(s.atMs);
    case 'slice':
      return s.sliceStartMs === null || s.sliceEndMs === null
        ? ''
        : sliceSpec(s.sliceStartMs, s.sliceEndMs);
    case 'label':
      return s.label ? `label:/${s.label}` : '';
    default:
      return 'now';
  }
}
