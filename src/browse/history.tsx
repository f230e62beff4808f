/**
 * The version history of one key in a main-area tab. A click on a version
 * moves the sidebar's time control to the moment it was written.
 */
import { MainAreaWidget, ReactWidget } from '@jupyterlab/apputils';
import {
  historyIcon,
  refreshIcon,
  ToolbarButton
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { InfinstorModel } from '../model';
import { IHistory, IObjectVersion } from '../api/types';
import { formatBytes, formatTime, parseIsoTime, secondEnd } from '../time';
import { trans } from '../i18n';
import { OnSignals } from '../signals';

export interface IHistoryOptions {
  model: InfinstorModel;
  bucket: string;
  key: string;
  /** Open a preview of one version (by version id). */
  onPreview: (version: IObjectVersion) => void;
  /** Called after a version's time was picked (e.g. to reveal the sidebar). */
  onPicked?: (version: IObjectVersion) => void;
}

/**
 * The snapshot time that shows `version`: its write time, as the whole second
 * when the time has no milliseconds (listings give whole seconds).
 */
export function versionSnapshotTime(version: IObjectVersion): number {
  const t = parseIsoTime(version.last_modified);
  return t % 1000 === 0 ? secondEnd(t) : t;
}

export class HistoryContent extends ReactWidget {
  constructor(options: IHistoryOptions) {
    super();
    this.options = options;
    this.addClass('jp-Infinstor-history');
    void this.reload();
  }

  readonly options: IHistoryOptions;

  async reload(): Promise<void> {
    const { model, bucket, key } = this.options;
    this._error = null;
    try {
      this._history = await model.client.history(bucket, key);
    } catch (error) {
      this._history = null;
      this._error = (error as Error).message || String(error);
    }
    this.update();
  }

  render(): JSX.Element {
    const { model } = this.options;
    return (
      <OnSignals signals={[model.stateChanged, model.settingsChanged]}>
        {() => this._renderTable()}
      </OnSignals>
    );
  }

  private _renderTable(): JSX.Element {
    const { model, bucket, key, onPreview, onPicked } = this.options;
    const display = model.settings.timeDisplay;
    const versions = this._history?.versions ?? [];
    // Which version the sidebar's snapshot shows (versions are newest first).
    let shownIndex = -1;
    if (
      model.bucket === bucket &&
      model.mode === 'snapshot' &&
      model.atMs !== null
    ) {
      const at = model.atMs;
      shownIndex = versions.findIndex(v => parseIsoTime(v.last_modified) <= at);
    }
    return (
      <div className="jp-Infinstor-history-root">
        <div className="jp-Infinstor-preview-header">
          <div className="jp-Infinstor-preview-path">{`s3://${bucket}/${key}`}</div>
          <div className="jp-Infinstor-note">
            {trans.__(
              'Every version the index knows, newest first. Click a version to see the bucket as of the second it was written.'
            )}
          </div>
        </div>
        {this._error && (
          <div className="jp-Infinstor-error" role="alert">
            {this._error}
          </div>
        )}
        {!this._history && !this._error && (
          <div className="jp-Infinstor-note">{trans.__('Loading…')}</div>
        )}
        {versions.length > 0 && (
          <table className="jp-Infinstor-table" data-testid="history-table">
            <thead>
              <tr>
                <th>{trans.__('Written')}</th>
                <th>{trans.__('Size')}</th>
                <th>{trans.__('Version id')}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {versions.map((v, i) => (
                <tr
                  key={`${v.version_id}-${i}`}
                  className={`jp-Infinstor-history-row ${
                    i === shownIndex ? 'jp-mod-selected' : ''
                  } ${v.is_delete_marker ? 'jp-mod-deleted' : ''}`}
                  data-version-id={v.version_id}
                  tabIndex={0}
                  title={trans.__('Show the bucket as of this version')}
                  onClick={() => {
                    model.setSnapshot(versionSnapshotTime(v));
                    onPicked?.(v);
                  }}
                  onKeyDown={event => {
                    if (event.key === 'Enter') {
                      model.setSnapshot(versionSnapshotTime(v));
                      onPicked?.(v);
                    }
                  }}
                >
                  <td className="jp-Infinstor-history-time">
                    {formatTime(parseIsoTime(v.last_modified), display)}
                  </td>
                  <td>{v.is_delete_marker ? '—' : formatBytes(v.size)}</td>
                  <td className="jp-Infinstor-mono">{v.version_id}</td>
                  <td className="jp-Infinstor-history-flags">
                    {v.is_delete_marker && (
                      <span className="jp-Infinstor-badge jp-mod-error">
                        {trans.__('deleted')}
                      </span>
                    )}
                    {v.is_latest && (
                      <span className="jp-Infinstor-badge">
                        {trans.__('latest')}
                      </span>
                    )}
                    {i === shownIndex && (
                      <span className="jp-Infinstor-badge jp-mod-accent">
                        {trans.__('shown')}
                      </span>
                    )}
                    {!v.is_delete_marker && (
                      <button
                        className="jp-Infinstor-linkButton"
                        onClick={event => {
                          event.stopPropagation();
                          onPreview(v);
                        }}
                      >
                        {trans.__('Preview')}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    );
  }

  private _history: IHistory | null = null;
  private _error: string | null = null;
}

export function createHistoryWidget(
  options: IHistoryOptions
): MainAreaWidget<HistoryContent> {
  const content = new HistoryContent(options);
  const widget = new MainAreaWidget({ content });
  const base = options.key.split('/').filter(Boolean).pop() ?? options.key;
  widget.title.label = trans.__('History: %1', base);
  widget.title.caption = trans.__(
    'Versions of s3://%1/%2',
    options.bucket,
    options.key
  );
  widget.title.icon = historyIcon;
  widget.title.closable = true;
  widget.toolbar.addItem(
    'refresh',
    new ToolbarButton({
      icon: refreshIcon,
      tooltip: trans.__('Reload the history'),
      onClick: () => void content.reload()
    })
  );
  return widget;
}
