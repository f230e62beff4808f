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
export function showOutput(model: InfinstorModel, run: IRun): boolean {
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
