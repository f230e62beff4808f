/**
 * Pipeline runs the user started from this UI, followed in notifications:
 * pending while the run goes, then success (with *Show run*, *Open output*,
 * *MLflow*) or the reason it failed, as `RunNotifications` does for
 * transform runs.
 */
import { Notification } from '@jupyterlab/apputils';

import { trans } from '../i18n';
import { IPipelineRun } from '../api/types';

/** The output to open for a finished run: its last step's (the DAG's end). */
export function finalOutput(run: IPipelineRun): string | null {
  const read = new Set<string>();
  for (const step of run.definition.steps) {
    const input = step.input as { type?: string; steps?: string[] };
    if (input.type === 'step') {
      (input.steps ?? []).forEach(s => read.add(s));
    }
  }
  const ends = run.steps.filter(s => !read.has(s.step) && s.output_uri);
  const last = ends[ends.length - 1] ?? null;
  return last ? last.output_uri : null;
}

/** "3 steps: 2 succeeded, 1 cached". */
export function stepCounts(run: IPipelineRun): string {
  const counts = new Map<string, number>();
  for (const step of run.steps) {
    counts.set(step.state, (counts.get(step.state) ?? 0) + 1);
  }
  const parts = [...counts.entries()].map(([state, n]) => `${n} ${state}`);
  const n = run.steps.length;
  return trans.__(
    '%1: %2',
    trans._n('%1 step', '%1 steps', n, n),
    parts.join(', ')
  );
}

export class PipelineNotifications {
  constructor(
    private readonly _handlers: {
      showRun: (run: IPipelineRun) => void;
      openOutput: (uri: string) => void;
    }
  ) {}

  /** Whether a run is followed (started here, not ended yet). */
  isFollowed(id: string): boolean {
    return this._ids.has(id);
  }

  /** A run just started: a pending notification with *Show run*. */
  follow(run: IPipelineRun): void {
    if (this._ids.has(run.id)) {
      return;
    }
    const id = Notification.emit(
      trans.__(
        'Running pipeline %1 (%2)…',
        run.pipeline,
        trans._n('%1 step', '%1 steps', run.steps.length, run.steps.length)
      ),
      'in-progress',
      {
        autoClose: false,
        actions: [
          {
            label: trans.__('Show run'),
            callback: () => this._handlers.showRun(run)
          }
        ]
      }
    );
    this._ids.set(run.id, id);
  }

  /** A run ended: its notification says how, with what to open next. */
  finished(run: IPipelineRun): void {
    const id = this._ids.get(run.id);
    if (id === undefined) {
      return;
    }
    this._ids.delete(run.id);
    const ok = run.state === 'succeeded';
    const actions: Notification.IAction[] = [
      {
        label: trans.__('Show run'),
        callback: () => this._handlers.showRun(run)
      }
    ];
    const output = finalOutput(run);
    if (ok && output) {
      actions.push({
        label: trans.__('Open output'),
        caption: output,
        callback: () => this._handlers.openOutput(output)
      });
    }
    if (run.mlflow_url) {
      const url = run.mlflow_url;
      actions.push({
        label: trans.__('MLflow'),
        caption: trans.__('Open the parent run in the MLflow UI'),
        callback: () => void window.open(url, '_blank', 'noopener')
      });
    }
    Notification.update({
      id,
      message: ok
        ? trans.__('Pipeline %1 finished (%2)', run.pipeline, stepCounts(run))
        : trans.__(
            'Pipeline %1 %2: %3',
            run.pipeline,
            run.state,
            run.error ?? stepCounts(run)
          ),
      type: ok ? 'success' : run.state === 'cancelled' ? 'warning' : 'error',
      autoClose: ok ? 8000 : false,
      actions
    });
  }

  private _ids = new Map<string, string>();
}
