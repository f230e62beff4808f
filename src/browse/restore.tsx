/**
 * Put a folder back as it was (the restore dialog: the plan first, then the
 * folder's name typed to confirm) and download a folder's view into the
 * Jupyter file tree. Both run as server jobs, polled with a notification.
 */
import {
  Dialog,
  Notification,
  ReactWidget,
  showDialog
} from '@jupyterlab/apputils';
import * as React from 'react';

import { InfinstorClient } from '../api/client';
import { IJob, IRestoreAction, IRestorePlan, IViewParams } from '../api/types';
import { errorMessage } from '../errors';
import { trans } from '../i18n';
import { formatBytes, formatCount } from '../time';

/** Rows of each list shown in the dialog (the counts say how many there are). */
export const PLAN_ROWS = 200;

/**
 * The time spec a restore goes back to, from the sidebar's view: a snapshot
 * time or a snapshot label; null for "now" (nothing to go back to) and slices.
 */
export function restoreTarget(
  view: IViewParams,
  mode: string,
  labelKind?: string | null
): string | null {
  if (mode === 'label' && view.label) {
    return labelKind === 'slice' ? null : `label:/${view.label}`;
  }
  if (mode === 'snapshot' && view.at) {
    return view.at;
  }
  return null;
}

/** One line of the plan: `+ key`, `M key`, `- key`. */
export function planLine(action: IRestoreAction): string {
  const mark =
    action.change === 'bring back'
      ? '+'
      : action.change === 'revert'
        ? 'M'
        : '-';
  return `${mark} ${action.key}`;
}

/** `2 to bring back (8 B), 1 to delete, 3 unchanged, 1 skipped`. */
export function planSummary(plan: IRestorePlan): string {
  return trans.__(
    '%1 to bring back or revert (%2 to copy), %3 to delete (delete markers), %4 unchanged, %5 skipped',
    formatCount(plan.copy.length),
    formatBytes(plan.bytes_to_copy),
    formatCount(plan.delete.length),
    formatCount(plan.unchanged),
    formatCount(plan.skipped.length)
  );
}

/**
 * An input pattern that accepts exactly `name` (spaces around it allowed).
 * Browsers compile a pattern with the `v` flag, where ASCII punctuation may
 * mean something: every ASCII character but letters, digits and `_` is written
 * as `\xHH`.
 */
export function confirmPattern(name: string): string {
  const literal = Array.from(name, c =>
    /[A-Za-z0-9_]/.test(c) || c.charCodeAt(0) > 0x7f
      ? c
      : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`
  ).join('');
  return `\\s*${literal}\\s*`;
}

/** Body of the restore dialog: the plan, and the name to type. */
export class RestoreDialogBody
  extends ReactWidget
  implements Dialog.IBodyWidget<string>
{
  constructor(
    private readonly _plan: IRestorePlan,
    private readonly _confirm: string,
    private readonly _error: string | null,
    private readonly _onOpen: (action: IRestoreAction) => void
  ) {
    super();
    this.addClass('jp-Infinstor-dialog');
    this.addClass('jp-Infinstor-restoreDialog');
  }

  getValue(): string {
    return this._typed;
  }

  render(): JSX.Element {
    const plan = this._plan;
    const actions = [...plan.copy, ...plan.delete];
    return (
      <div className="jp-Infinstor-restorePlan" data-testid="restore-plan">
        <p>
          {trans.__(
            'Restore s3://%1/%2 (%3). Old versions are copied back as new current versions and keys absent then get delete markers: nothing is deleted for good, and the state now is pinned as a label first.',
            plan.bucket,
            plan.prefix,
            plan.to.display
          )}
        </p>
        <p data-testid="restore-summary">
          <b>{planSummary(plan)}</b>
        </p>
        <ul className="jp-Infinstor-restoreList" data-testid="restore-actions">
          {actions.slice(0, PLAN_ROWS).map(action => (
            <li key={`${action.change}:${action.key}`}>
              {action.change === 'delete' ? (
                <span>{planLine(action)}</span>
              ) : (
                <a
                  href="#"
                  title={trans.__('Preview the version this brings back')}
                  onClick={e => {
                    e.preventDefault();
                    this._onOpen(action);
                  }}
                >
                  {planLine(action)}
                </a>
              )}
            </li>
          ))}
          {actions.length > PLAN_ROWS && (
            <li>
              {trans.__(
                '… and %1 more',
                formatCount(actions.length - PLAN_ROWS)
              )}
            </li>
          )}
        </ul>
        {plan.skipped.length > 0 && (
          <ul
            className="jp-Infinstor-restoreSkipped"
            data-testid="restore-skipped"
          >
            {plan.skipped.slice(0, PLAN_ROWS).map(skip => (
              <li key={skip.key}>
                {trans.__('Skipped %1: %2', skip.key, skip.message)}
              </li>
            ))}
          </ul>
        )}
        {this._error && (
          <div
            className="jp-Infinstor-error"
            role="alert"
            data-testid="restore-error"
          >
            {this._error}
          </div>
        )}
        <label>
          {trans.__('Type %1 to confirm', this._confirm)}{' '}
          <input
            className="jp-mod-styled"
            name="restore-confirm"
            autoComplete="off"
            required
            pattern={confirmPattern(this._confirm)}
            ref={input => {
              // The dialog disables its Restore button while an input is
              // invalid (here: until the name matches the pattern), from the
              // first keystroke on; before it, so does this.
              const accept = input
                ?.closest('.jp-Dialog-content')
                ?.querySelector<HTMLButtonElement>(
                  '.jp-Dialog-button.jp-mod-accept'
                );
              if (accept) {
                accept.disabled = !input?.validity.valid;
              }
            }}
            onChange={e => {
              this._typed = e.currentTarget.value;
            }}
          />
        </label>
      </div>
    );
  }

  private _typed = '';
}

/** Poll a job until it ends, updating a notification with its progress. */
export async function followJob(
  client: InfinstorClient,
  job: IJob,
  describe: (job: IJob) => string,
  intervalMs = 500
): Promise<IJob> {
  const id = Notification.emit(describe(job), 'in-progress', {
    autoClose: false
  });
  try {
    while (!job.finished) {
      await new Promise(resolve => setTimeout(resolve, intervalMs));
      job = await client.job(job.id);
      Notification.update({ id, message: describe(job) });
    }
    return job;
  } finally {
    Notification.dismiss(id);
  }
}

export interface IRestoreOptions {
  client: InfinstorClient;
  bucket: string;
  prefix: string;
  /** The time spec to go back to (see `restoreTarget`). */
  to: string;
  /** Preview the version an action brings back. */
  onOpen: (action: IRestoreAction) => void;
  /** Called when the restore has finished (e.g. to refresh the listing). */
  onDone?: () => void;
}

/**
 * Show the plan, ask for the folder's name, run the restore and say how it
 * ended. Resolves to the finished job (null when cancelled or nothing to do).
 */
export async function restoreWithDialog(
  options: IRestoreOptions
): Promise<IJob | null> {
  const { client, bucket, prefix, to } = options;
  let plan: IRestorePlan;
  const pending = Notification.emit(
    trans.__('Planning the restore of s3://%1/%2…', bucket, prefix),
    'in-progress',
    { autoClose: false }
  );
  try {
    plan = await client.restorePlan(bucket, { prefix, to });
  } catch (e) {
    await showDialog({
      title: trans.__('Cannot restore s3://%1/%2', bucket, prefix),
      body: errorMessage(e),
      buttons: [Dialog.okButton()]
    });
    return null;
  } finally {
    Notification.dismiss(pending);
  }
  const confirm =
    plan.confirm ?? (prefix.split('/').filter(Boolean).pop() || bucket);
  if (plan.copy.length + plan.delete.length === 0) {
    await showDialog({
      title: trans.__('Nothing to restore'),
      body: trans.__(
        's3://%1/%2 already is as it was %3 (%4).',
        bucket,
        prefix,
        plan.to.display,
        planSummary(plan)
      ),
      buttons: [Dialog.okButton()]
    });
    return null;
  }
  let error: string | null = null;
  for (;;) {
    const result = await showDialog({
      title: trans.__('Restore this folder to this time?'),
      body: new RestoreDialogBody(plan, confirm, error, options.onOpen),
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: trans.__('Restore') })
      ],
      focusNodeSelector: 'input[name="restore-confirm"]'
    });
    if (!result.button.accept) {
      return null;
    }
    if ((result.value ?? '').trim() === confirm) {
      break;
    }
    error = trans.__('Type %1 exactly to restore.', confirm);
  }
  let job: IJob;
  try {
    job = await client.startRestore(bucket, {
      prefix,
      to,
      confirm,
      expect: plan.fingerprint
    });
    job = await followJob(client, job, j =>
      trans.__(
        'Restoring s3://%1/%2: %3 of %4',
        bucket,
        prefix,
        formatCount(j.done),
        formatCount(j.total || plan.copy.length + plan.delete.length)
      )
    );
  } catch (e) {
    Notification.error(errorMessage(e), { autoClose: false });
    return null;
  }
  options.onDone?.();
  const r = job.result;
  if (job.state === 'error' || !r) {
    Notification.error(
      trans.__(
        'The restore of s3://%1/%2 failed: %3',
        bucket,
        prefix,
        job.error ?? ''
      ),
      { autoClose: false }
    );
  } else if (r.ok) {
    Notification.success(
      trans.__(
        // Toasts show 140 characters: the label (to undo it) comes first.
        'Restored s3://%1/%2 to that view (before it: label %3): %4 brought back, %5 delete markers.',
        bucket,
        prefix,
        r.label ?? '',
        formatCount(r.copied),
        formatCount(r.deleted)
      ),
      { autoClose: false }
    );
  } else {
    Notification.warning(
      trans.__(
        'Restored s3://%1/%2 with differences: %3 brought back, %4 delete markers, %5 skipped, %6 failed. The state before is label %7.',
        bucket,
        prefix,
        formatCount(r.copied),
        formatCount(r.deleted),
        formatCount(r.plan?.skipped?.length ?? 0),
        formatCount(r.failed?.length ?? 0),
        r.label ?? ''
      ),
      { autoClose: false }
    );
  }
  return job;
}

/** Where a folder's download goes by default: `s3/<bucket>/<prefix>`. */
export function defaultDownloadPath(bucket: string, prefix: string): string {
  const parts = prefix.split('/').filter(p => p && p !== '.' && p !== '..');
  return ['s3', bucket, ...parts].join('/');
}

/**
 * Ask where (a folder of the Jupyter file tree), download the view there, and
 * say how it ended.
 */
export async function downloadFolderWithDialog(options: {
  client: InfinstorClient;
  bucket: string;
  prefix: string;
  view: IViewParams;
}): Promise<IJob | null> {
  const { client, bucket, prefix, view } = options;
  const asked = await showDialog({
    title: trans.__('Download s3://%1/%2', bucket, prefix),
    body: new PathDialogBody(defaultDownloadPath(bucket, prefix)),
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: trans.__('Download') })
    ],
    focusNodeSelector: 'input[name="download-path"]'
  });
  if (!asked.button.accept || !asked.value) {
    return null;
  }
  const path = asked.value.trim();
  try {
    let job = await client.startGet(bucket, { path, prefix, ...view });
    job = await followJob(client, job, j =>
      trans.__(
        'Downloading s3://%1/%2 into %3: %4 of %5 files, %6',
        bucket,
        prefix,
        path,
        formatCount(j.done),
        formatCount(j.total),
        formatBytes(j.bytes)
      )
    );
    const r = job.result;
    if (job.state === 'error' || !r) {
      Notification.error(job.error ?? '', { autoClose: false });
    } else {
      const message = trans.__(
        'Downloaded s3://%1/%2 into %3: %4 files (%5 fetched, %6 already there), %7 refused, with infinstor-manifest.json.',
        bucket,
        prefix,
        path,
        formatCount(r.files),
        formatCount(r.fetched),
        formatCount(r.kept),
        formatCount(r.refused?.length ?? 0)
      );
      if (r.ok) {
        Notification.success(message, { autoClose: 8000 });
      } else {
        Notification.warning(message, { autoClose: false });
      }
    }
    return job;
  } catch (e) {
    Notification.error(errorMessage(e), { autoClose: false });
    return null;
  }
}

class PathDialogBody extends ReactWidget implements Dialog.IBodyWidget<string> {
  constructor(private _path: string) {
    super();
    this.addClass('jp-Infinstor-dialog');
  }

  getValue(): string {
    return this._path;
  }

  render(): JSX.Element {
    return (
      <label>
        {trans.__(
          'Folder in the Jupyter file tree (a rerun fetches only what is missing or differs):'
        )}
        <input
          className="jp-mod-styled"
          name="download-path"
          defaultValue={this._path}
          onChange={e => {
            this._path = e.currentTarget.value;
          }}
        />
      </label>
    );
  }
}
