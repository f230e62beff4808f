import { ISignal } from '@lumino/signaling';
import React, { useEffect, useState } from 'react';

/**
 * Re-renders the calling component whenever any of `signals` is emitted: one hook instead
 * of a pyramid of nested `UseSignal`s.
 */
export function useModelSignals(
  signals: ReadonlyArray<ISignal<unknown, unknown>>
): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    const bump = (): void => setTick(tick => tick + 1);
    for (const signal of signals) {
      signal.connect(bump);
    }
    return () => {
      for (const signal of signals) {
        signal.disconnect(bump);
      }
    };
    // The signals of one model stay the same for a widget's life.
  }, signals);
}

/** Renders `children()` again whenever one of `signals` is emitted. */
export function OnSignals(props: {
  signals: ReadonlyArray<ISignal<unknown, unknown>>;
  children: () => React.ReactNode;
}): JSX.Element {
  useModelSignals(props.signals);
  return <>{props.children()}</>;
}
