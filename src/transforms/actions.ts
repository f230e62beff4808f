/**
 * What the transform commands and the Transforms section do with the sidebar:
 * open the run dialog with the sidebar's view as an input, show a run's output
 * in the browser, follow finished runs.
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';

import { trans } from '../i18n';
import { InfinstorModel } from '../model';
import { IRerun, IViewContext, parseS3Uri } from './runform';
import { IExecutors, IRun } from '../api/types';
import { TransformsModel } from './model';

/** The sidebar's view as the run dialog offers it. */
export function viewContext(model: InfinstorModel): IViewContext {
  return {
    bucket: model.bucket,
    prefix: model.prefix,
    params: model.bucket ? model.pinnedViewParams() : {},
    display:
      model.spec?.display ??
      (model.mode === 'now' ? trans.__('now') : model.specText())
  };
}

/**
 * Open the run dialog (capture `source`, or run `rerun` again). Resolves with
 * the started run, or null when cancelled or when transforms are unavailable.
 */
export async function openRunDialog(options: {
  model: InfinstorModel;
  transforms: TransformsModel;
  source?: string;
  rerun?: IRerun | null;
}): Promise<IRun | null> {
  const { model, transforms } = options;
  let executors: IExecutors;
  try {
    [executors] = await Promise.all([
      transforms.loadExecutors(true),
      transforms.refreshTransforms(),
      model.refreshLabels()
    ]);
  } catch (error) {
    await showDialog({
      title: trans.__('Transforms are unavailable'),
      body:
        (error as Error)?.message ||
        trans.__('The server did not answer: %1', String(error)),
      buttons: [Dialog.okButton()]
    });
    return null;
  }
  const { showRunDialog } = await import('./dialog');
  return showRunDialog({
    transforms,
    view: viewContext(model),
    labels: model.labels,
    trackedBuckets: model.buckets.filter(b => b.tracked).map(b => b.name),
    executors,
    existing: transforms.transforms,
    source: options.source,
    rerun: options.rerun ?? null
  });
}

/**
 * Show a run's output folder in the sidebar browser (as it is now). Returns
 * false, with a notification, when its bucket is not tracked.
 */
export function showOutput(
  model: InfinstorModel,
  run: Pick<IRun, 'output_uri'>
): boolean {
  const target = parseS3Uri(run.output_uri);
  if (!target) {
    return false;
  }
  const tracked = model.buckets.some(
    b => b.tracked && b.name === target.bucket
  );
  if (!tracked) {
    Notification.warning(
      trans.__(
        'Bucket %1 is not tracked, so the sidebar cannot browse %2. Track it in the Buckets section.',
        target.bucket,
        run.output_uri
      ),
      { autoClose: 8000 }
    );
    return false;
  }
  model.setNow();
  model.setBucket(target.bucket);
  model.setPrefix(target.prefix);
  return true;
}

/**
 * When a run ends: its output was indexed (tracked output bucket) and maybe
 * labelled, so the buckets, the listing and the labels are reloaded.
 */
export async function afterRunFinished(
  model: InfinstorModel,
  run: IRun
): Promise<void> {
  if (run.state !== 'succeeded') {
    return;
  }
  const target = parseS3Uri(run.output_uri);
  const work: Promise<void>[] = [model.refreshBuckets()];
  if (target && target.bucket === model.bucket) {
    work.push(model.refresh(), model.refreshTimeline());
  }
  if (run.label_output || run.output_label) {
    work.push(model.refreshLabels());
  }
  await Promise.all(work);
}

/**
 * Runs the user started, followed in notifications: pending while the run
 * goes, then success (with *Open output*, *MLflow*) or the error, so the
 * outcome reaches a user who is looking elsewhere. Runs not started here
 * (another session's) get none.
 */
export class RunNotifications {
  constructor(
    private readonly _handlers: {
      showRun: (run: IRun) => void;
      openOutput: (run: IRun) => void;
    }
  ) {}

  /** A run just started: a pending notification with *Show run*. */
  follow(run: IRun): void {
    const id = Notification.emit(
      trans.__(
        'Running %1 (revision %2) on %3…',
        run.transform,
        run.revision,
        run.executor
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
  finished(run: IRun): void {
    const id = this._ids.get(run.id);
    if (id === undefined) {
      return;
    }
    this._ids.delete(run.id);
    const ok = run.state === 'succeeded';
    const actions: Notification.IAction[] = [];
    if (ok) {
      actions.push({
        label: trans.__('Open output'),
        caption: run.output_uri,
        callback: () => this._handlers.openOutput(run)
      });
    }
    if (run.mlflow_url) {
      const url = run.mlflow_url;
      actions.push({
        label: trans.__('MLflow'),
        caption: trans.__('Open the run in the MLflow UI'),
        callback: () => void window.open(url, '_blank', 'noopener')
      });
    }
    actions.push({
      label: trans.__('Show run'),
      callback: () => this._handlers.showRun(run)
    });
    Notification.update({
      id,
      message: ok
        ? trans.__(
            '%1 finished: %2 objects done, output in %3',
            run.transform,
            run.done.toLocaleString('en-US'),
            run.output_uri
          )
        : trans.__(
            '%1 %2: %3',
            run.transform,
            run.state,
            run.error ?? trans.__('see the run for details')
          ),
      type: ok ? 'success' : run.state === 'cancelled' ? 'warning' : 'error',
      autoClose: ok ? 8000 : false,
      actions
    });
  }

  private _ids = new Map<string, string>();
}
