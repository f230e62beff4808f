/**
 * The diff section: what was added, modified and deleted under the current
 * folder between two times (or across the slice window).
 */
import { MainAreaWidget, ReactWidget } from '@jupyterlab/apputils';
import * as React from 'react';

import { InfinstorActions } from '../browse/actions';
import { InfinstorModel } from '../model';
import { formatCount, secondEnd, snapshotSpec } from '../time';
import { TimePicker } from './timecontrol';
import { trans } from '../i18n';
import { OnSignals } from '../signals';

/** Default times of a diff for the current view: [from, to] (to null = now). */
export function defaultDiffTimes(
  model: InfinstorModel
): [number | null, number | null] {
  if (
    model.mode === 'slice' &&
    model.sliceStartMs !== null &&
    model.sliceEndMs !== null
  ) {
    // The snapshot just before the window, and its end: the window's changes.
    return [model.sliceStartMs - 1, model.sliceEndMs];
  }
  if (model.mode === 'snapshot' && model.atMs !== null) {
    return [model.atMs, null];
  }
  const spec = model.spec;
  if (model.mode === 'label' && spec) {
    if (spec.kind === 'slice' && spec.start_ms !== null) {
      return [spec.start_ms - 1, spec.end_ms];
    }
    return [spec.end_ms, null];
  }
  const t = model.timeline;
  return [t ? t.start_ms - 1 : null, null];
}

function DiffView(props: {
  model: InfinstorModel;
  actions: InfinstorActions;
}): JSX.Element {
  const { model, actions } = props;
  const display = model.settings.timeDisplay;
  const [from, setFrom] = React.useState<number | null>(null);
  const [to, setTo] = React.useState<number | null>(null);
  const [toNow, setToNow] = React.useState(true);
  const [touched, setTouched] = React.useState(false);

  // Follow the view until the user edits the times.
  const [defFrom, defTo] = defaultDiffTimes(model);
  const shownFrom = touched ? from : defFrom;
  const shownTo = touched ? to : defTo;
  const shownNow = touched ? toNow : defTo === null;

  const compare = () => {
    if (shownFrom === null) {
      return;
    }
    const fromSpec = snapshotSpec(shownFrom);
    const toSpec = shownNow || shownTo === null ? 'now' : snapshotSpec(shownTo);
    // The list of changes can be long: it opens in the main area, the
    // sidebar keeps the counts.
    void model.computeDiff(fromSpec, toSpec).then(() => {
      if (model.diff && !model.diffError) {
        actions.diffResults();
      }
    });
  };

  const diff = model.diff;
  const bucket = model.bucket;

  return (
    <div className="jp-Infinstor-diff" data-testid="diff">
      <TimePicker
        label={trans.__('From')}
        value={shownFrom}
        display={display}
        testId="diff-from"
        onChange={ms => {
          setTouched(true);
          setFrom(secondEnd(ms));
          setTo(shownTo);
          setToNow(shownNow);
        }}
      />
      <div className="jp-Infinstor-diff-to">
        {shownNow ? (
          <div className="jp-Infinstor-picker">
            <label>{trans.__('To')}</label>
            <span className="jp-Infinstor-note">{trans.__('now')}</span>
          </div>
        ) : (
          <TimePicker
            label={trans.__('To')}
            value={shownTo}
            display={display}
            testId="diff-to"
            onChange={ms => {
              setTouched(true);
              setFrom(shownFrom);
              setTo(secondEnd(ms));
              setToNow(false);
            }}
          />
        )}
        <label className="jp-Infinstor-checkbox">
          <input
            type="checkbox"
            checked={shownNow}
            onChange={e => {
              setTouched(true);
              setFrom(shownFrom);
              setToNow(e.currentTarget.checked);
              setTo(shownTo ?? secondEnd(Date.now()));
            }}
          />{' '}
          {trans.__('now')}
        </label>
      </div>
      <div className="jp-Infinstor-buttons">
        <button
          className="jp-mod-styled jp-mod-accept jp-Infinstor-smallButton"
          disabled={!bucket || shownFrom === null || model.diffLoading}
          onClick={compare}
          data-testid="diff-compare"
        >
          {trans.__('Compare')}
        </button>
        {touched && (
          <button
            className="jp-mod-styled jp-Infinstor-smallButton"
            onClick={() => setTouched(false)}
            title={trans.__(
              'Take the times from the view (the slice window, or the snapshot to now)'
            )}
          >
            {trans.__('From view')}
          </button>
        )}
      </div>
      {model.diffLoading && (
        <div className="jp-Infinstor-note">{trans.__('Comparing…')}</div>
      )}
      {model.diffError && (
        <div className="jp-Infinstor-error" role="alert">
          {model.diffError}
        </div>
      )}
      {diff && (
        <div className="jp-Infinstor-diff-result" data-testid="diff-result">
          <div
            className="jp-Infinstor-note jp-Infinstor-oneLine"
            title={trans.__(
              's3://%1/%2: %3 → %4',
              diff.bucket,
              diff.prefix,
              diff.from.display,
              diff.to.display
            )}
          >
            {trans.__(
              's3://%1/%2: %3 → %4',
              diff.bucket,
              diff.prefix,
              diff.from.display,
              diff.to.display
            )}
          </div>
          <div className="jp-Infinstor-diff-counts">
            <span
              className="jp-Infinstor-badge jp-mod-ok"
              data-testid="diff-added"
            >
              {trans.__('+%1 added', formatCount(diff.counts.added))}
            </span>
            <span
              className="jp-Infinstor-badge jp-mod-warn"
              data-testid="diff-modified"
            >
              {trans.__('~%1 modified', formatCount(diff.counts.modified))}
            </span>
            <span
              className="jp-Infinstor-badge jp-mod-error"
              data-testid="diff-deleted"
            >
              {trans.__('−%1 deleted', formatCount(diff.counts.deleted))}
            </span>
          </div>
          <button
            className="jp-mod-styled jp-Infinstor-smallButton"
            data-testid="diff-open"
            title={trans.__(
              'The changed keys, each opening its version, in a tab'
            )}
            onClick={() => actions.diffResults()}
          >
            {trans.__('Open the list')}
          </button>
          {diff.counts.added + diff.counts.modified + diff.counts.deleted ===
            0 && (
            <div className="jp-Infinstor-note">
              {trans.__('No differences.')}
            </div>
          )}
        </div>
      )}
    </div>
  );
}

/** The changed keys of the last diff, each opening its version. */
function DiffList(props: {
  model: InfinstorModel;
  actions: InfinstorActions;
}): JSX.Element {
  const { model, actions } = props;
  const diff = model.diff;
  if (!diff) {
    return (
      <div className="jp-Infinstor-note">
        {model.diffLoading
          ? trans.__('Comparing…')
          : (model.diffError ??
            trans.__('No diff yet: Compare in the sidebar.'))}
      </div>
    );
  }
  const bucket = diff.bucket;
  const open = (key: string, versionId: string) =>
    actions.preview({ bucket, key, kind: 'file', versionId });
  return (
    <div className="jp-Infinstor-diffTab-body" data-testid="diff-tab">
      <h2>
        {trans.__(
          's3://%1/%2: %3 → %4',
          diff.bucket,
          diff.prefix,
          diff.from.display,
          diff.to.display
        )}
      </h2>
      <p>
        {trans.__(
          '+%1 added, ~%2 modified, −%3 deleted',
          formatCount(diff.counts.added),
          formatCount(diff.counts.modified),
          formatCount(diff.counts.deleted)
        )}
      </p>
      <ul className="jp-Infinstor-diff-list">
        {diff.added.map(e => (
          <li key={`a-${e.key}`} className="jp-mod-added">
            <span className="jp-Infinstor-diff-mark">+</span>
            <button
              className="jp-Infinstor-linkButton"
              title={trans.__('Preview the added version')}
              onClick={() => open(e.key, e.version_id)}
            >
              {e.key}
            </button>
          </li>
        ))}
        {diff.modified.map(e => (
          <li key={`m-${e.key}`} className="jp-mod-modified">
            <span className="jp-Infinstor-diff-mark">~</span>
            <button
              className="jp-Infinstor-linkButton"
              title={trans.__('Preview the new version')}
              onClick={() => open(e.key, e.to_version_id)}
            >
              {e.key}
            </button>
            <button
              className="jp-Infinstor-linkButton jp-Infinstor-diff-before"
              title={trans.__('Preview the old version')}
              onClick={() => open(e.key, e.from_version_id)}
            >
              {trans.__('before')}
            </button>
          </li>
        ))}
        {diff.deleted.map(e => (
          <li key={`d-${e.key}`} className="jp-mod-deleted">
            <span className="jp-Infinstor-diff-mark">−</span>
            <button
              className="jp-Infinstor-linkButton"
              title={trans.__('Preview the deleted version')}
              onClick={() => open(e.key, e.version_id)}
            >
              {e.key}
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

class DiffListContent extends ReactWidget {
  constructor(
    private readonly _model: InfinstorModel,
    private readonly _actions: InfinstorActions
  ) {
    super();
    this.addClass('jp-Infinstor-diffTab');
  }

  render(): JSX.Element {
    const model = this._model;
    return (
      <OnSignals signals={[model.diffChanged, model.settingsChanged]}>
        {() => <DiffList model={model} actions={this._actions} />}
      </OnSignals>
    );
  }
}

/** The diff's list of changes as a main-area tab (it follows the last diff). */
export function createDiffListWidget(
  model: InfinstorModel,
  actions: InfinstorActions
): MainAreaWidget {
  const widget = new MainAreaWidget({
    content: new DiffListContent(model, actions)
  });
  widget.title.label = trans.__('S3 Diff');
  widget.title.caption = trans.__('What changed between two times');
  widget.title.closable = true;
  return widget;
}

export class DiffWidget extends ReactWidget {
  constructor(
    private readonly _model: InfinstorModel,
    private readonly _actions: InfinstorActions
  ) {
    super();
    this.addClass('jp-Infinstor-sectionBody');
  }

  render(): JSX.Element {
    const model = this._model;
    return (
      <OnSignals
        signals={[model.diffChanged, model.stateChanged, model.settingsChanged]}
      >
        {() => <DiffView model={model} actions={this._actions} />}
      </OnSignals>
    );
  }
}
