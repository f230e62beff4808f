/**
 * The status-bar item: the number of active runs (transform runs and pipeline
 * runs; a pipeline's step runs count as its one run), hidden when none is;
 * clicking it opens the *Transform Runs* tab.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import { ISignal, Signal } from '@lumino/signaling';
import * as React from 'react';

import { trans } from './i18n';
import { PipelinesModel } from './pipelines/model';
import { TransformsModel } from './transforms/model';
import { isActive } from './transforms/model';

/** Active transform runs (outside pipelines) and active pipeline runs. */
export function activeRunCounts(
  transforms: TransformsModel,
  pipelines: PipelinesModel
): { transforms: number; pipelines: number } {
  const steps = pipelines.activeStepRunIds();
  const own = transforms.runs.filter(
    r => isActive(r.state) && !steps.has(r.id)
  ).length;
  return { transforms: own, pipelines: pipelines.activeCount };
}

export class ActiveRunsStatus extends ReactWidget {
  constructor(
    private readonly _transforms: TransformsModel,
    private readonly _pipelines: PipelinesModel,
    private readonly _open: () => void
  ) {
    super();
    this.addClass('jp-Infinstor-activeRuns');
    this._transforms.changed.connect(this._onChange, this);
    this._pipelines.changed.connect(this._onChange, this);
    this._count = this.count;
  }

  /** Transform runs plus pipeline runs that are active. */
  get count(): number {
    const c = activeRunCounts(this._transforms, this._pipelines);
    return c.transforms + c.pipelines;
  }

  /** Emitted when the item should show or hide (the count went to or from 0). */
  get activeStateChanged(): ISignal<this, void> {
    return this._activeStateChanged;
  }

  dispose(): void {
    this._transforms.changed.disconnect(this._onChange, this);
    this._pipelines.changed.disconnect(this._onChange, this);
    super.dispose();
  }

  render(): JSX.Element | null {
    const c = activeRunCounts(this._transforms, this._pipelines);
    const total = c.transforms + c.pipelines;
    if (!total) {
      return null;
    }
    return (
      <button
        className="jp-Infinstor-activeRuns-button"
        data-testid="active-runs"
        title={trans.__(
          '%1 transform runs and %2 pipeline runs active: open Transform Runs',
          c.transforms,
          c.pipelines
        )}
        onClick={this._open}
      >
        {trans._n('%1 run active', '%1 runs active', total, total)}
      </button>
    );
  }

  private _onChange(): void {
    const next = this.count;
    if ((next === 0) !== (this._count === 0)) {
      this._activeStateChanged.emit();
    }
    this._count = next;
    this.update();
  }

  private _count: number;
  private _activeStateChanged = new Signal<this, void>(this);
}
