/**
 * Preview of one object version in a main-area tab: text, CSV as a table,
 * JSON pretty-printed, images; always with the time it is "as of".
 */
import { MainAreaWidget, ReactWidget } from '@jupyterlab/apputils';
import {
  codeIcon,
  downloadIcon,
  historyIcon,
  ToolbarButton
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { InfinstorClient } from '../api/client';
import { parseCsv } from './csv';
import { infinstorIcon } from '../icons';
import { IObjectMetadata, IObjectRequest, IPreview } from '../api/types';
import { formatBytes, formatTime, parseIsoTime, TimeDisplay } from '../time';
import { trans } from '../i18n';

/** What to preview and how to act on it. */
export interface IPreviewOptions {
  client: InfinstorClient;
  bucket: string;
  /** The key and the view (at/slice/label) or version id that names the version. */
  request: IObjectRequest;
  timeDisplay: TimeDisplay;
  onDownload: () => void;
  onHistory: () => void;
  onInsertCode: () => void;
}

interface IPreviewData {
  meta: IObjectMetadata;
  preview: IPreview;
  text: string | null;
  url: string | null;
}

const MAX_TABLE_ROWS = 1000;

function kindOf(contentType: string, key: string): string {
  const lower = key.toLowerCase();
  if (contentType.startsWith('image/')) {
    return 'image';
  }
  if (
    contentType === 'text/csv' ||
    lower.endsWith('.csv') ||
    lower.endsWith('.tsv')
  ) {
    return 'csv';
  }
  if (contentType === 'application/x-ndjson' || lower.endsWith('.jsonl')) {
    return 'ndjson';
  }
  if (contentType === 'application/json' || lower.endsWith('.json')) {
    return 'json';
  }
  if (
    contentType.startsWith('text/') ||
    contentType === 'application/xml' ||
    contentType === 'application/javascript'
  ) {
    return 'text';
  }
  return 'binary';
}

function CsvTable(props: { text: string; tsv: boolean; truncated: boolean }) {
  let text = props.text;
  if (props.truncated) {
    // The last line may be cut mid-row.
    const cut = text.lastIndexOf('\n');
    text = cut > 0 ? text.slice(0, cut) : text;
  }
  const table = parseCsv(text, MAX_TABLE_ROWS + 1, props.tsv ? '\t' : ',');
  const [head, ...body] = table.rows;
  const shown = body.slice(0, MAX_TABLE_ROWS);
  const more = table.more || body.length > MAX_TABLE_ROWS;
  return (
    <div className="jp-Infinstor-preview-tableWrap">
      <table className="jp-Infinstor-preview-table">
        <thead>
          <tr>
            <th className="jp-Infinstor-preview-rowNum">#</th>
            {(head ?? []).map((cell, i) => (
              <th key={i}>{cell}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.map((row, r) => (
            <tr key={r}>
              <td className="jp-Infinstor-preview-rowNum">{r + 1}</td>
              {row.map((cell, c) => (
                <td key={c}>{cell}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {more && (
        <div className="jp-Infinstor-note">
          {trans.__('Showing the first %1 rows.', MAX_TABLE_ROWS)}
        </div>
      )}
    </div>
  );
}

function prettyJson(text: string, truncated: boolean, lines: boolean): string {
  if (truncated) {
    return text;
  }
  try {
    if (lines) {
      return text
        .split('\n')
        .filter(l => l.trim())
        .map(l => JSON.stringify(JSON.parse(l), null, 2))
        .join('\n');
    }
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function PreviewBody(props: { data: IPreviewData; keyName: string }) {
  const { data, keyName } = props;
  const kind = kindOf(data.preview.contentType, keyName);
  if (kind === 'image' && data.url) {
    return (
      <div className="jp-Infinstor-preview-image">
        <img src={data.url} alt={keyName} />
      </div>
    );
  }
  if (data.text === null) {
    return (
      <div className="jp-Infinstor-note">
        {trans.__(
          'This object is not text or an image (%1); use Download to get its bytes.',
          data.preview.contentType
        )}
      </div>
    );
  }
  if (kind === 'csv') {
    return (
      <CsvTable
        text={data.text}
        tsv={keyName.toLowerCase().endsWith('.tsv')}
        truncated={data.preview.truncated}
      />
    );
  }
  if (kind === 'json' || kind === 'ndjson') {
    return (
      <pre className="jp-Infinstor-preview-text">
        {prettyJson(data.text, data.preview.truncated, kind === 'ndjson')}
      </pre>
    );
  }
  return <pre className="jp-Infinstor-preview-text">{data.text}</pre>;
}

/**
 * The content of a preview tab.
 */
export class PreviewContent extends ReactWidget {
  constructor(options: IPreviewOptions) {
    super();
    this.options = options;
    this.addClass('jp-Infinstor-preview');
    void this._load();
  }

  readonly options: IPreviewOptions;

  /** Resolves when the preview is loaded (or failed). */
  get ready(): Promise<void> {
    return this._ready;
  }

  dispose(): void {
    if (this._data?.url) {
      URL.revokeObjectURL(this._data.url);
    }
    super.dispose();
  }

  render(): JSX.Element {
    const { bucket, request, timeDisplay } = this.options;
    const data = this._data;
    const meta = data?.meta;
    let asOf = '';
    if (meta?.spec) {
      asOf = meta.spec.display;
    } else if (request.version_id) {
      asOf = trans.__('version %1', request.version_id);
    }
    return (
      <div className="jp-Infinstor-preview-root">
        <div className="jp-Infinstor-preview-header">
          <div
            className="jp-Infinstor-preview-path"
            title={`s3://${bucket}/${request.key}`}
          >
            {`s3://${bucket}/${request.key}`}
          </div>
          {asOf && (
            <div
              className="jp-Infinstor-asof jp-mod-past"
              data-testid="preview-asof"
            >
              {asOf}
            </div>
          )}
          {meta && (
            <div className="jp-Infinstor-preview-meta">
              <span>
                {trans.__(
                  'written %1',
                  formatTime(parseIsoTime(meta.last_modified), timeDisplay)
                )}
              </span>
              <span>{formatBytes(meta.size)}</span>
              <span title={trans.__('S3 version id')}>
                {trans.__('version %1', meta.version_id)}
              </span>
              {meta.is_latest && (
                <span className="jp-Infinstor-badge">{trans.__('latest')}</span>
              )}
            </div>
          )}
          {data?.preview.truncated && (
            <div className="jp-Infinstor-note" data-testid="preview-truncated">
              {trans.__(
                'Only the start of this object is shown (%1 of %2); Download gets all of it.',
                formatBytes(data.preview.blob.size),
                formatBytes(meta?.size ?? 0)
              )}
            </div>
          )}
        </div>
        <div className="jp-Infinstor-preview-body" data-testid="preview-body">
          {this._error ? (
            <div className="jp-Infinstor-error" role="alert">
              {this._error}
            </div>
          ) : data ? (
            <PreviewBody data={data} keyName={request.key} />
          ) : (
            <div className="jp-Infinstor-note">{trans.__('Loading…')}</div>
          )}
        </div>
      </div>
    );
  }

  private async _load(): Promise<void> {
    const { client, bucket, request } = this.options;
    let resolve: () => void = () => undefined;
    this._ready = new Promise<void>(r => (resolve = r));
    try {
      const [meta, preview] = await Promise.all([
        client.objectMetadata(bucket, request),
        client.preview(bucket, request)
      ]);
      const kind = kindOf(preview.contentType, request.key);
      let text: string | null = null;
      let url: string | null = null;
      if (kind === 'image') {
        url = URL.createObjectURL(preview.blob);
      } else if (kind !== 'binary') {
        text = await preview.blob.text();
      }
      if (this.isDisposed) {
        if (url) {
          URL.revokeObjectURL(url);
        }
        return;
      }
      this._data = { meta, preview, text, url };
    } catch (error) {
      this._error = (error as Error).message || String(error);
    }
    this.update();
    resolve();
  }

  private _data: IPreviewData | null = null;
  private _error: string | null = null;
  private _ready: Promise<void> = Promise.resolve();
}

/** A main-area tab previewing one version. */
export function createPreviewWidget(
  options: IPreviewOptions
): MainAreaWidget<PreviewContent> {
  const content = new PreviewContent(options);
  const widget = new MainAreaWidget({ content });
  const base = options.request.key.split('/').filter(Boolean).pop() ?? '';
  widget.title.label = base || options.request.key;
  widget.title.caption = `s3://${options.bucket}/${options.request.key}`;
  widget.title.icon = infinstorIcon;
  widget.title.closable = true;
  widget.addClass('jp-Infinstor-previewPanel');
  widget.toolbar.addItem(
    'download',
    new ToolbarButton({
      icon: downloadIcon,
      label: trans.__('Download'),
      tooltip: trans.__('Download exactly this version'),
      onClick: options.onDownload
    })
  );
  widget.toolbar.addItem(
    'history',
    new ToolbarButton({
      icon: historyIcon,
      label: trans.__('History'),
      tooltip: trans.__('Every version of this key'),
      onClick: options.onHistory
    })
  );
  widget.toolbar.addItem(
    'insert-code',
    new ToolbarButton({
      icon: codeIcon,
      label: trans.__('Insert code'),
      tooltip: trans.__('Add a notebook cell that reads this version'),
      onClick: options.onInsertCode
    })
  );
  return widget;
}
