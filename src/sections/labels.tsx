/**
 * Labels: name the current view, list labels, use, verify and delete them.
 */
import {
  Dialog,
  Notification,
  ReactWidget,
  showDialog
} from '@jupyterlab/apputils';
import * as React from 'react';

import { InfinstorModel } from '../model';
import { ILabel } from '../api/types';
import { deleteIcon } from '@jupyterlab/ui-components';
import { formatBytes, formatCount, formatTime, TimeDisplay } from '../time';
import { trans } from '../i18n';
import { errorMessage } from '../errors';
import { deleteWithConfirm } from '../dialogs';
import { OnSignals } from '../signals';

interface ILabelForm {
  name: string;
  description: string;
}

/** Body of the "New label" dialog. */
class LabelDialogBody
  extends ReactWidget
  implements Dialog.IBodyWidget<ILabelForm>
{
  constructor(
    private readonly _summary: string,
    private _form: ILabelForm,
    private readonly _error: string | null
  ) {
    super();
    this.addClass('jp-Infinstor-dialog');
  }

  getValue(): ILabelForm {
    return { ...this._form };
  }

  render(): JSX.Element {
    return (
      <div className="jp-Infinstor-labelForm">
        <p>
          {trans.__(
            'A label pins this view with a fingerprint of its exact versions:'
          )}
          <br />
          <b>{this._summary}</b>
        </p>
        {this._error && (
          <div
            className="jp-Infinstor-error"
            role="alert"
            data-testid="label-error"
          >
            {this._error}
          </div>
        )}
        <label>
          {trans.__('Name')}
          <input
            className="jp-mod-styled"
            name="label-name"
            defaultValue={this._form.name}
            placeholder={trans.__('e.g. flowers-2026-11')}
            onChange={e => {
              this._form.name = e.currentTarget.value;
            }}
          />
        </label>
        <label>
          {trans.__('Description')}
          <textarea
            className="jp-mod-styled"
            name="label-description"
            rows={3}
            defaultValue={this._form.description}
            onChange={e => {
              this._form.description = e.currentTarget.value;
            }}
          />
        </label>
      </div>
    );
  }
}

/**
 * Ask for a name and description, create the label from the current view, and
 * show its fingerprint. A server error (name taken, unknown bucket) is shown
 * in the dialog, which opens again with what was typed.
 */
export async function createLabelWithDialog(
  model: InfinstorModel
): Promise<ILabel | null> {
  if (!model.bucket) {
    await showDialog({
      title: trans.__('No view to label'),
      body: trans.__(
        'Choose a bucket first: a label names a view of one bucket.'
      ),
      buttons: [Dialog.okButton()]
    });
    return null;
  }
  const summary = `s3://${model.bucket}/${model.labelPrefix()} ${
    model.spec?.display ?? model.specText()
  }`;
  let form: ILabelForm = { name: '', description: '' };
  let error: string | null = null;
  for (;;) {
    const result = await showDialog({
      title: trans.__('New label'),
      body: new LabelDialogBody(summary, { ...form }, error),
      buttons: [
        Dialog.cancelButton(),
        Dialog.okButton({ label: trans.__('Create') })
      ],
      focusNodeSelector: 'input[name="label-name"]'
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    form = result.value;
    // A view after the bucket's last sync is read again from S3 first: that can
    // take a while on a large folder, so say what is going on.
    const pending = Notification.emit(
      trans.__('Creating label %1…', form.name.trim()),
      'in-progress',
      { autoClose: false }
    );
    try {
      const label = await model
        .createLabel(form.name.trim(), form.description)
        .finally(() => Notification.dismiss(pending));
      await showDialog({
        title: trans.__('Label %1 created', label.name),
        body: (
          <div
            className="jp-Infinstor-labelCreated"
            data-testid="label-created"
          >
            <p>
              {trans.__(
                '%1 objects, %2, s3://%3/%4 at %5.',
                formatCount(label.object_count),
                formatBytes(label.total_bytes),
                label.bucket,
                label.prefix,
                label.spec
              )}
            </p>
            <p>
              {trans.__(
                'Fingerprint (anyone can check that the label still resolves to these bytes):'
              )}
            </p>
            <code
              className="jp-Infinstor-fingerprint"
              data-testid="fingerprint"
            >
              {label.fingerprint}
            </code>
          </div>
        ),
        buttons: [Dialog.okButton()]
      });
      return label;
    } catch (e) {
      error = errorMessage(e);
    }
  }
}

export function VerifyBadge(props: { model: InfinstorModel; name: string }) {
  const state = props.model.verifyState(props.name);
  if (!state) {
    return null;
  }
  if (state.running) {
    return <span className="jp-Infinstor-badge">{trans.__('verifying…')}</span>;
  }
  if (state.error) {
    return (
      <div className="jp-Infinstor-error" role="alert">
        {state.error}
      </div>
    );
  }
  const r = state.report;
  if (!r) {
    return null;
  }
  if (r.ok) {
    return (
      <span
        className="jp-Infinstor-badge jp-mod-ok"
        data-testid="verify-ok"
        title={trans.__(
          'Index fingerprint matches; %1 versions checked in S3',
          formatCount(r.s3_checked)
        )}
      >
        {trans.__('ok: %1 versions verified', formatCount(r.s3_checked))}
      </span>
    );
  }
  const problems: string[] = [];
  if (!r.index_matches) {
    problems.push(
      trans.__(
        'the index now resolves to %1 objects with a different fingerprint',
        formatCount(r.index_object_count)
      )
    );
  }
  if (r.s3_missing.length) {
    problems.push(
      trans.__('%1 versions missing in S3', formatCount(r.s3_missing.length))
    );
  }
  if (r.s3_changed.length) {
    problems.push(
      trans.__('%1 versions changed in S3', formatCount(r.s3_changed.length))
    );
  }
  return (
    <span
      className="jp-Infinstor-badge jp-mod-error"
      data-testid="verify-drift"
    >
      {trans.__('drift: %1', problems.join('; '))}
    </span>
  );
}

/** The label's time, in the Time display setting: `A → B` for a slice. */
export function labelWhen(label: ILabel, display: TimeDisplay): string {
  return label.kind === 'slice' && label.start_ms !== null
    ? `${formatTime(label.start_ms, display)} → ${formatTime(label.end_ms, display)}`
    : formatTime(label.end_ms, display);
}

/**
 * A label as a compact card: name, where and when, size, and Use / Verify /
 * Details. Everything else (spec, fingerprint, description, the verify
 * report) is in the label's main-area panel. Deleting is a trash icon (and a
 * context-menu item) that asks first, naming the label, as JupyterLab does.
 */
function LabelItem(props: {
  model: InfinstorModel;
  actions: ILabelActions;
  label: ILabel;
}) {
  const { model, actions, label } = props;
  const inUse = model.mode === 'label' && model.label === label.name;
  const display = model.settings.timeDisplay;
  const when = labelWhen(label, display);
  const where = `s3://${label.bucket}/${label.prefix}`;
  const size = trans.__(
    '%1 objects · %2',
    formatCount(label.object_count),
    formatBytes(label.total_bytes)
  );
  return (
    <li
      className={`jp-Infinstor-label ${inUse ? 'jp-mod-selected' : ''}`}
      data-label={label.name}
    >
      <div className="jp-Infinstor-label-head">
        <span className="jp-Infinstor-label-name" title={label.name}>
          {label.name}
        </span>
        <span className="jp-Infinstor-badge">{label.kind}</span>
        {inUse && (
          <span className="jp-Infinstor-badge jp-mod-accent">
            {trans.__('in use')}
          </span>
        )}
        <span className="jp-Infinstor-spacer" />
        <button
          className="jp-Infinstor-iconButton jp-Infinstor-label-delete"
          title={trans.__('Delete label %1…', label.name)}
          aria-label={trans.__('Delete label %1', label.name)}
          onClick={() => void deleteLabelWithConfirm(model, label.name)}
        >
          <deleteIcon.react tag="span" className="jp-Infinstor-icon" />
        </button>
      </div>
      <div
        className="jp-Infinstor-label-meta"
        title={`${where}\n${when}\n${label.spec}`}
      >
        {`${where} · ${when}`}
        {label.created_by ? ` · ${trans.__('by %1', label.created_by)}` : ''}
      </div>
      <div className="jp-Infinstor-label-meta" title={size}>
        {size}
      </div>
      <div className="jp-Infinstor-buttons">
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          onClick={() => model.useLabel(label)}
          title={trans.__("Browse this label's view")}
        >
          {trans.__('Use')}
        </button>
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          onClick={() => void actions.verifyLabel(label.name)}
          title={trans.__(
            'Check that the label still resolves to the same versions, and that S3 still has them'
          )}
        >
          {trans.__('Verify')}
        </button>
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          onClick={() => actions.labelDetails(label.name)}
          title={trans.__(
            "The label's spec, fingerprint and verify report, in a tab"
          )}
        >
          {trans.__('Details')}
        </button>
      </div>
      <VerifyBadge model={model} name={label.name} />
    </li>
  );
}

/** What the labels view asks of the sidebar's actions. */
export interface ILabelActions {
  /** Verify a label, with a notification that reports the outcome. */
  verifyLabel(name: string): Promise<void>;
  /** Open (or bring forward) the label's details tab. */
  labelDetails(name: string): void;
}

export async function deleteLabelWithConfirm(
  model: InfinstorModel,
  name: string
): Promise<boolean> {
  return deleteWithConfirm({
    title: trans.__('Delete label %1?', name),
    body: trans.__(
      'The label goes; the objects it names stay in S3. Anyone using label:/%1 will get an error.',
      name
    ),
    name,
    remove: () => model.deleteLabel(name)
  });
}

export function LabelsView(props: {
  model: InfinstorModel;
  actions: ILabelActions;
}): JSX.Element {
  const { model, actions } = props;
  return (
    <div className="jp-Infinstor-labels" data-testid="labels">
      {model.labelsError && (
        <div className="jp-Infinstor-error" role="alert">
          {model.labelsError}
        </div>
      )}
      {model.labels.length === 0 && !model.labelsError && (
        <div className="jp-Infinstor-note">
          {trans.__(
            'No labels yet. “New label” names the view the browser shows.'
          )}
        </div>
      )}
      <ul className="jp-Infinstor-labelList">
        {model.labels.map(l => (
          <LabelItem key={l.name} model={model} actions={actions} label={l} />
        ))}
      </ul>
    </div>
  );
}

export class LabelsWidget extends ReactWidget {
  constructor(
    private readonly _model: InfinstorModel,
    private readonly _actions: ILabelActions
  ) {
    super();
    this.addClass('jp-Infinstor-sectionBody');
  }

  render(): JSX.Element {
    const model = this._model;
    return (
      <OnSignals
        signals={[
          model.labelsChanged,
          model.stateChanged,
          model.settingsChanged
        ]}
      >
        {() => <LabelsView model={model} actions={this._actions} />}
      </OnSignals>
    );
  }
}
