/**
 * What the sidebar does with objects: preview, download, history, insert code.
 * Used by the commands, the context menu and the views.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Clipboard, MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';

import { folderCode, objectCode, versionCode } from './codegen';
import { createHistoryWidget } from './history';
import { IEntry, InfinstorModel, ISyncEnded } from '../model';
import { errorMessage } from '../errors';
import { createLabelDetailsWidget } from '../sections/labeldetails';
import { createDiffListWidget } from '../sections/diff';
import { createPreviewWidget } from './preview';
import { IObjectRequest, IViewParams } from '../api/types';
import { trans } from '../i18n';

/** A key (file or folder) of a bucket, seen through a view or as one version. */
export interface IObjectTarget {
  bucket: string;
  key: string;
  kind: 'file' | 'folder';
  /** The view (at/slice/label); ignored when `versionId` is given. */
  view?: IViewParams;
  versionId?: string;
  /** "as of ..." text for comments. */
  display?: string;
}

/** Numbers the ids of the tabs this module opens. */
let widgetCounter = 0;

export class InfinstorActions {
  constructor(options: InfinstorActions.IOptions) {
    this.app = options.app;
    this.model = options.model;
    this.notebooks = options.notebooks ?? null;
    this.sidebarId = options.sidebarId;
  }

  readonly app: JupyterFrontEnd;
  readonly model: InfinstorModel;
  readonly notebooks: INotebookTracker | null;
  readonly sidebarId: string;

  /** The selected entry (or one given) as a target in the current view. */
  target(entry?: IEntry | null): IObjectTarget | null {
    const e = entry ?? this.model.selected;
    const bucket = this.model.bucket;
    if (!e || !bucket) {
      return null;
    }
    return {
      bucket,
      key: e.key,
      kind: e.kind,
      view: this.model.pinnedViewParams(),
      display: this.model.spec?.display
    };
  }

  /** The current folder as a target. */
  folderTarget(): IObjectTarget | null {
    const bucket = this.model.bucket;
    if (!bucket) {
      return null;
    }
    return {
      bucket,
      key: this.model.prefix,
      kind: 'folder',
      view: this.model.pinnedViewParams(),
      display: this.model.spec?.display
    };
  }

  private _request(target: IObjectTarget): IObjectRequest {
    return target.versionId
      ? { key: target.key, version_id: target.versionId }
      : { key: target.key, ...(target.view ?? {}) };
  }

  /** Open (or bring forward) a preview tab of the target's version. */
  preview(target: IObjectTarget | null): MainAreaWidget | null {
    if (!target || target.kind !== 'file') {
      return null;
    }
    const request = this._request(target);
    const id = `infinstor-preview:${target.bucket}:${JSON.stringify(request)}`;
    const existing = this._previews.get(id);
    if (existing && !existing.isDisposed) {
      this.app.shell.activateById(existing.id);
      return existing;
    }
    const widget = createPreviewWidget({
      client: this.model.client,
      bucket: target.bucket,
      request,
      timeDisplay: this.model.settings.timeDisplay,
      onDownload: () => this.download(target),
      onHistory: () => this.history(target),
      onInsertCode: () => this.insertCode(target)
    });
    widget.id = `infinstor-preview-${++widgetCounter}`;
    this._previews.set(id, widget);
    widget.disposed.connect(() => this._previews.delete(id));
    this.app.shell.add(widget, 'main');
    this.app.shell.activateById(widget.id);
    return widget;
  }

  /**
   * Download exactly the target's version through the browser, by a
   * single-use link (no Jupyter token in the URL). When the version cannot be
   * downloaded (deleted, expired), the server's sentence is shown.
   */
  async download(target: IObjectTarget | null): Promise<void> {
    if (!target || target.kind !== 'file') {
      return;
    }
    let url: string;
    try {
      url = await this.model.client.downloadUrl(
        target.bucket,
        this._request(target)
      );
    } catch (error) {
      Notification.error(
        trans.__(
          'Could not download %1: %2',
          target.key,
          (error as Error).message ?? String(error)
        ),
        { autoClose: false }
      );
      return;
    }
    const anchor = document.createElement('a');
    anchor.href = url;
    anchor.download = target.key.split('/').pop() || 'download';
    anchor.rel = 'noopener';
    anchor.style.display = 'none';
    document.body.appendChild(anchor);
    anchor.click();
    anchor.remove();
  }

  /** Open the version history of the target's key. */
  history(target: IObjectTarget | null): MainAreaWidget | null {
    if (!target || target.kind !== 'file') {
      return null;
    }
    const id = `infinstor-history:${target.bucket}:${target.key}`;
    const existing = this._histories.get(id);
    if (existing && !existing.isDisposed) {
      this.app.shell.activateById(existing.id);
      return existing;
    }
    const widget = createHistoryWidget({
      model: this.model,
      bucket: target.bucket,
      key: target.key,
      onPreview: version =>
        this.preview({
          bucket: target.bucket,
          key: target.key,
          kind: 'file',
          versionId: version.version_id
        }),
      onPicked: () => {
        this.app.shell.activateById(this.sidebarId);
      }
    });
    widget.id = `infinstor-history-${++widgetCounter}`;
    this._histories.set(id, widget);
    widget.disposed.connect(() => this._histories.delete(id));
    this.app.shell.add(widget, 'main');
    this.app.shell.activateById(widget.id);
    return widget;
  }

  /** Python that reads the target (object or folder) as the view shows it. */
  code(target: IObjectTarget): string {
    const view: IViewParams = target.versionId ? {} : (target.view ?? {});
    if (target.kind === 'folder') {
      return folderCode(target.bucket, target.key, view, target.display);
    }
    if (target.versionId) {
      return versionCode(target.bucket, target.key, target.versionId);
    }
    return objectCode(target.bucket, target.key, view, target.display);
  }

  /**
   * Add a code cell reading the target to the current notebook (below the
   * active cell, or into it when it is empty). Without a notebook the code
   * goes to the clipboard.
   */
  insertCode(target: IObjectTarget | null): boolean {
    if (!target) {
      return false;
    }
    return this.insertText(this.code(target));
  }

  /**
   * Add a code cell holding `code` to the current notebook (below the active
   * cell, or into it when it is empty); without a notebook, copy it.
   */
  insertText(code: string): boolean {
    const panel = this.notebooks?.currentWidget ?? null;
    if (!panel) {
      Clipboard.copyToSystem(code);
      Notification.info(
        trans.__(
          'Open a notebook to insert the code there; it was copied to the clipboard.'
        ),
        { autoClose: 5000 }
      );
      return false;
    }
    const notebook = panel.content;
    const active = notebook.activeCell;
    if (
      !active ||
      active.model.type !== 'code' ||
      active.model.sharedModel.getSource().trim() !== ''
    ) {
      NotebookActions.insertBelow(notebook);
    }
    const cell = notebook.activeCell;
    if (cell) {
      cell.model.sharedModel.setSource(code);
    }
    this.app.shell.activateById(panel.id);
    return true;
  }

  /** Copy the target's s3:// URI. */
  copyUri(target: IObjectTarget | null): void {
    if (target) {
      Clipboard.copyToSystem(`s3://${target.bucket}/${target.key}`);
    }
  }

  /** Open (or bring forward) the tab listing the last diff's changes. */
  diffResults(): MainAreaWidget {
    if (this._diffTab && !this._diffTab.isDisposed) {
      this.app.shell.activateById(this._diffTab.id);
      return this._diffTab;
    }
    const widget = createDiffListWidget(this.model, this);
    widget.id = `infinstor-diff-${++widgetCounter}`;
    this._diffTab = widget;
    this.app.shell.add(widget, 'main');
    this.app.shell.activateById(widget.id);
    return widget;
  }

  /** Open (or bring forward) a label's details tab. */
  labelDetails(name: string): MainAreaWidget | null {
    const existing = this._labelTabs.get(name);
    if (existing && !existing.isDisposed) {
      this.app.shell.activateById(existing.id);
      return existing;
    }
    const widget = createLabelDetailsWidget(this.model, this, name);
    widget.id = `infinstor-label-${++widgetCounter}`;
    this._labelTabs.set(name, widget);
    widget.disposed.connect(() => this._labelTabs.delete(name));
    this.app.shell.add(widget, 'main');
    this.app.shell.activateById(widget.id);
    return widget;
  }

  /**
   * Verify a label, followed in a notification (pending, then ok or drift
   * with *Details*), so the outcome reaches a user looking elsewhere.
   */
  async verifyLabel(name: string): Promise<void> {
    const id = Notification.emit(
      trans.__('Verifying label %1…', name),
      'in-progress',
      { autoClose: false }
    );
    const report = await this.model.verifyLabel(name);
    const details = {
      label: trans.__('Details'),
      caption: trans.__("Open the label's details and verify report"),
      callback: () => void this.labelDetails(name)
    };
    if (!report) {
      Notification.update({
        id,
        message: trans.__(
          'Could not verify label %1: %2',
          name,
          this.model.verifyState(name)?.error ?? ''
        ),
        type: 'error',
        autoClose: false,
        actions: [details]
      });
    } else if (report.ok) {
      Notification.update({
        id,
        message: trans.__(
          'Label %1 verified: the same %2 versions, all still in S3.',
          name,
          report.s3_checked.toLocaleString('en-US')
        ),
        type: 'success',
        autoClose: 5000,
        actions: [details]
      });
    } else {
      Notification.update({
        id,
        message: trans.__(
          'Label %1 has drifted: %2 versions missing, %3 changed in S3%4.',
          name,
          report.s3_missing.length,
          report.s3_changed.length,
          report.index_matches
            ? ''
            : trans.__('; the index resolves it differently')
        ),
        type: 'error',
        autoClose: false,
        actions: [details]
      });
    }
  }

  /**
   * Sync a tracked bucket, followed in a notification until the job ends
   * (versions listed, or the error), with *Browse* to show the bucket.
   */
  async syncBucket(bucket: string, full = false): Promise<void> {
    const id = Notification.emit(
      trans.__('Syncing s3://%1…', bucket),
      'in-progress',
      { autoClose: false }
    );
    const ended = this._whenSyncEnds(bucket);
    try {
      await this.model.sync(bucket, full);
    } catch (e) {
      ended.cancel();
      Notification.update({
        id,
        message: trans.__(
          'Could not sync s3://%1: %2',
          bucket,
          errorMessage(e)
        ),
        type: 'error',
        autoClose: false
      });
      return;
    }
    await this._reportSync(id, bucket, ended.promise);
  }

  /**
   * Track a bucket the user consented to track; its first sync is followed
   * in a notification like *Sync now*'s. Errors of the track request itself
   * are thrown (the consent dialog's caller shows them).
   */
  async trackBucket(
    bucket: string,
    options: { events: boolean }
  ): Promise<void> {
    const ended = this._whenSyncEnds(bucket);
    let watching = false;
    try {
      watching = await this.model.track(bucket, options);
    } finally {
      if (!watching) {
        ended.cancel();
      }
    }
    if (!watching) {
      return;
    }
    const id = Notification.emit(
      trans.__('Tracking s3://%1: first sync…', bucket),
      'in-progress',
      { autoClose: false }
    );
    await this._reportSync(id, bucket, ended.promise);
  }

  /** The next end of a watched sync of `bucket` (cancel: stop listening). */
  private _whenSyncEnds(bucket: string): {
    promise: Promise<ISyncEnded>;
    cancel: () => void;
  } {
    let on: (_: InfinstorModel, event: ISyncEnded) => void = () => undefined;
    const promise = new Promise<ISyncEnded>(resolve => {
      on = (_: InfinstorModel, event: ISyncEnded) => {
        if (event.bucket === bucket) {
          this.model.syncEnded.disconnect(on);
          resolve(event);
        }
      };
      this.model.syncEnded.connect(on);
    });
    return { promise, cancel: () => this.model.syncEnded.disconnect(on) };
  }

  /** Update a sync's pending notification with how it ended. */
  private async _reportSync(
    id: string,
    bucket: string,
    ended: Promise<ISyncEnded>
  ): Promise<void> {
    const { job, error } = await ended;
    const browse = {
      label: trans.__('Browse'),
      caption: trans.__('Show s3://%1 in the browser', bucket),
      callback: () => {
        this.model.setBucket(bucket);
        this.app.shell.activateById(this.sidebarId);
      }
    };
    if (job && job.state === 'done' && !error) {
      Notification.update({
        id,
        message: trans.__(
          'Synced s3://%1: %2 versions listed, %3 new in the index.',
          bucket,
          job.versions_seen.toLocaleString('en-US'),
          job.versions_written.toLocaleString('en-US')
        ),
        type: job.warnings.length ? 'warning' : 'success',
        autoClose: job.warnings.length ? false : 5000,
        actions: [browse]
      });
    } else {
      Notification.update({
        id,
        message: trans.__(
          'The sync of s3://%1 failed: %2',
          bucket,
          error ?? job?.error ?? ''
        ),
        type: 'error',
        autoClose: false
      });
    }
  }

  private _previews = new Map<string, MainAreaWidget>();
  private _histories = new Map<string, MainAreaWidget>();
  private _labelTabs = new Map<string, MainAreaWidget>();
  private _diffTab: MainAreaWidget | null = null;
}

export namespace InfinstorActions {
  export interface IOptions {
    app: JupyterFrontEnd;
    model: InfinstorModel;
    notebooks?: INotebookTracker | null;
    sidebarId: string;
  }
}
