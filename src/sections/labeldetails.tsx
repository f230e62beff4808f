/**
 * A label's details as a main-area tab: where and when, the exact spec, the
 * full fingerprint, the description and the last verify report (with the
 * versions that drifted). The sidebar keeps a compact card; long content
 * lives here, as jupyterlab-git's history and diffs open as tabs.
 */
import { MainAreaWidget, ReactWidget } from '@jupyterlab/apputils';
import { tagIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { InfinstorModel } from '../model';
import { formatBytes, formatCount, formatTime } from '../time';
import { trans } from '../i18n';
import { OnSignals } from '../signals';
import {
  deleteLabelWithConfirm,
  ILabelActions,
  labelWhen,
  VerifyBadge
} from './labels';

/** How many drifted versions the report lists before saying "and N more". */
const REPORT_ROWS = 200;

export class LabelDetailsContent extends ReactWidget {
  constructor(
    private readonly _model: InfinstorModel,
    private readonly _actions: ILabelActions,
    readonly labelName: string
  ) {
    super();
    this.addClass('jp-Infinstor-labelDetails');
  }

  render(): JSX.Element {
    const model = this._model;
    return (
      <OnSignals
        signals={[
          model.labelsChanged,
          model.settingsChanged,
          model.stateChanged
        ]}
      >
        {() => this._renderLabel()}
      </OnSignals>
    );
  }

  private _renderLabel(): JSX.Element {
    const model = this._model;
    const name = this.labelName;
    const label = model.labels.find(l => l.name === name);
    if (!label) {
      return (
        <div className="jp-Infinstor-note" data-testid="label-details-gone">
          {trans.__('Label %1 does not exist (any more).', name)}
        </div>
      );
    }
    const display = model.settings.timeDisplay;
    const report = model.verifyState(name)?.report ?? null;
    const rows: [string, React.ReactNode][] = [
      [trans.__('Where'), `s3://${label.bucket}/${label.prefix}`],
      [
        label.kind === 'slice' ? trans.__('Arrivals') : trans.__('As of'),
        labelWhen(label, display)
      ],
      [
        trans.__('Spec'),
        <code className="jp-Infinstor-mono">{label.spec}</code>
      ],
      [
        trans.__('Use as'),
        <code className="jp-Infinstor-mono">{`label:/${label.name}`}</code>
      ],
      [trans.__('Objects'), formatCount(label.object_count)],
      [trans.__('Size'), formatBytes(label.total_bytes)],
      [
        trans.__('Fingerprint'),
        <code
          className="jp-Infinstor-fingerprint"
          data-testid="details-fingerprint"
        >
          {label.fingerprint}
        </code>
      ],
      [trans.__('Created'), formatTime(label.created_ms, display)]
    ];
    const drift = report
      ? [
          ...report.s3_missing.map(m => ({
            key: m.key,
            version: m.version_id,
            what: trans.__('missing in S3: %1', m.error)
          })),
          ...report.s3_changed.map(c => ({
            key: c.key,
            version: c.version_id,
            what: trans.__('ETag %1, S3 has %2', c.etag, c.s3_etag)
          }))
        ]
      : [];
    return (
      <div
        className="jp-Infinstor-labelDetails-body"
        data-testid="label-details"
      >
        <h2>
          {label.name} <span className="jp-Infinstor-badge">{label.kind}</span>
        </h2>
        {label.description && <p>{label.description}</p>}
        <table className="jp-Infinstor-detailsTable">
          <tbody>
            {rows.map(([key, value]) => (
              <tr key={key}>
                <th scope="row">{key}</th>
                <td>{value}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <div className="jp-Infinstor-buttons">
          <button
            className="jp-mod-styled jp-mod-accept jp-Infinstor-smallButton"
            onClick={() => model.useLabel(label)}
          >
            {trans.__('Use in the sidebar')}
          </button>
          <button
            className="jp-mod-styled jp-Infinstor-smallButton"
            onClick={() => void this._actions.verifyLabel(name)}
          >
            {trans.__('Verify')}
          </button>
          <button
            className="jp-mod-styled jp-mod-warn jp-Infinstor-smallButton"
            onClick={() => void deleteLabelWithConfirm(model, name)}
          >
            {trans.__('Delete…')}
          </button>
        </div>
        <VerifyBadge model={model} name={name} />
        {report && !report.index_matches && (
          <p>
            {trans.__(
              'The index now resolves the label to %1 objects with fingerprint %2.',
              formatCount(report.index_object_count),
              report.index_fingerprint
            )}
          </p>
        )}
        {drift.length > 0 && (
          <table className="jp-Infinstor-detailsTable">
            <thead>
              <tr>
                <th>{trans.__('Key')}</th>
                <th>{trans.__('Version')}</th>
                <th>{trans.__('Problem')}</th>
              </tr>
            </thead>
            <tbody>
              {drift.slice(0, REPORT_ROWS).map(d => (
                <tr key={`${d.key}\u0000${d.version}`}>
                  <td className="jp-Infinstor-mono">{d.key}</td>
                  <td className="jp-Infinstor-mono">{d.version}</td>
                  <td>{d.what}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {drift.length > REPORT_ROWS && (
          <p>
            {trans.__('…and %1 more.', formatCount(drift.length - REPORT_ROWS))}
          </p>
        )}
      </div>
    );
  }
}

export function createLabelDetailsWidget(
  model: InfinstorModel,
  actions: ILabelActions,
  name: string
): MainAreaWidget<LabelDetailsContent> {
  const content = new LabelDetailsContent(model, actions, name);
  const widget = new MainAreaWidget({ content });
  widget.title.label = trans.__('Label: %1', name);
  widget.title.caption = trans.__('Label %1: spec, fingerprint, verify', name);
  widget.title.icon = tagIcon;
  widget.title.closable = true;
  return widget;
}
