/**
 * Transform runs. The sidebar's Transforms section is a compact summary (the
 * last few runs, counts, *Open runs*); the full list (runs with their live
 * status, progress, EMR step state, log, MLflow run and output; transforms with
 * their revisions) is the *Transform Runs* main-area panel, as JupyterLab keeps
 * long lists (jupyter-scheduler's jobs, jupyterlab-git's history).
 */
import {
  Dialog,
  MainAreaWidget,
  ReactWidget,
  showDialog
} from '@jupyterlab/apputils';
import { runIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { trans } from '../i18n';
import { InfinstorModel } from '../model';
import { describeInput } from './runform';
import { formatCount, formatDuration, formatTime } from '../time';
import { IRun, ITransformSummary } from '../api/types';
import { isActive, TransformsModel } from './model';
import { errorMessage } from '../errors';
import { runCredentialRequest } from '../browse/othertools';
import { deleteWithConfirm } from '../dialogs';
import { OnSignals } from '../signals';

/** What the section does outside itself (dialogs, the browser). */
export interface ITransformsActions {
  /** Open the run dialog for the same revision and settings, on another input. */
  runAgain(run: IRun): void;
  /** Show a run's output folder in the sidebar browser. */
  openOutput(run: IRun): void;
  /**
   * A credential for the S3 endpoint over the run's own input view
   * (`run:/<MLflow run id>`), with client snippets. Absent: no button.
   */
  useFromOtherTools?(run: IRun): void;
}

const STATE_CLASS: { [state: string]: string } = {
  queued: '',
  running: 'jp-mod-accent',
  succeeded: 'jp-mod-ok',
  failed: 'jp-mod-error',
  cancelled: 'jp-mod-warn'
};

function stateText(state: string): string {
  switch (state) {
    case 'queued':
      return trans.__('queued');
    case 'running':
      return trans.__('running');
    case 'succeeded':
      return trans.__('succeeded');
    case 'failed':
      return trans.__('failed');
    case 'cancelled':
      return trans.__('cancelled');
    default:
      return state;
  }
}

// -- log ---------------------------------------------------------------------------------

/** The tail of a run's log; reloads every 2 s while the run is active. */
class RunLogBody extends ReactWidget {
  constructor(
    private readonly _transforms: TransformsModel,
    private readonly _runId: string
  ) {
    super();
    this.addClass('jp-Infinstor-runLog');
    void this.reload();
    this._timer = window.setInterval(() => {
      const run = this._transforms.runs.find(r => r.id === this._runId);
      if (run && isActive(run.state)) {
        void this.reload();
      }
    }, 2000);
  }

  async reload(): Promise<void> {
    this._loading = true;
    this.update();
    try {
      this._log = await this._transforms.runLog(this._runId, 400);
      this._error = null;
    } catch (error) {
      this._error = errorMessage(error);
    }
    this._loading = false;
    if (!this.isDisposed) {
      this.update();
    }
  }

  dispose(): void {
    window.clearInterval(this._timer);
    super.dispose();
  }

  render(): JSX.Element {
    return (
      <div className="jp-Infinstor-runLog-root">
        <div className="jp-Infinstor-buttons">
          <button
            className="jp-mod-styled jp-Infinstor-smallButton"
            onClick={() => void this.reload()}
            disabled={this._loading}
          >
            {this._loading ? trans.__('Loading…') : trans.__('Reload')}
          </button>
        </div>
        {this._error && (
          <div className="jp-Infinstor-error" role="alert">
            {this._error}
          </div>
        )}
        <pre className="jp-Infinstor-logText" data-testid="run-log">
          {this._log || (this._loading ? '' : trans.__('(the log is empty)'))}
        </pre>
      </div>
    );
  }

  private _log = '';
  private _error: string | null = null;
  private _loading = false;
  private _timer: number;
}

/** Show the last lines of a run's log in a dialog. */
export async function showRunLog(
  transforms: TransformsModel,
  run: IRun
): Promise<void> {
  await showDialog({
    title: trans.__('Log of %1 r%2 (%3)', run.transform, run.revision, run.id),
    body: new RunLogBody(transforms, run.id),
    buttons: [Dialog.okButton({ label: trans.__('Close') })]
  });
}

// -- runs --------------------------------------------------------------------------------

function Progress(props: { run: IRun }) {
  const { run } = props;
  if (run.executor === 'emr') {
    const d = run.details ?? {};
    return (
      <div className="jp-Infinstor-run-meta" data-testid="run-emr">
        {d.emr_state && (
          <span
            className="jp-Infinstor-badge"
            title={trans.__('EMR step state')}
          >
            {String(d.emr_state)}
          </span>
        )}{' '}
        {d.cluster_id && (
          <span className="jp-Infinstor-mono" title={trans.__('EMR cluster')}>
            {String(d.cluster_id)}
          </span>
        )}
        {d.step_id && (
          <>
            {' · '}
            <span className="jp-Infinstor-mono" title={trans.__('EMR step')}>
              {String(d.step_id)}
            </span>
          </>
        )}
        {d.log_location && (
          <div
            className="jp-Infinstor-run-meta jp-Infinstor-mono"
            title={trans.__('Where EMR writes the step logs')}
          >
            {String(d.log_location)}
          </div>
        )}
      </div>
    );
  }
  const total = run.total;
  const done = Math.min(run.done, total);
  const fraction = total > 0 ? done / total : run.state === 'succeeded' ? 1 : 0;
  return (
    <div className="jp-Infinstor-run-progress" data-testid="run-progress">
      <progress max={1} value={fraction} />
      <span>{trans.__('%1 / %2', formatCount(done), formatCount(total))}</span>
    </div>
  );
}

function RunItem(props: {
  transforms: TransformsModel;
  model: InfinstorModel;
  actions: ITransformsActions;
  run: IRun;
}) {
  const { transforms, model, actions, run } = props;
  const display = model.settings.timeDisplay;
  const active = isActive(run.state);
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const highlighted = transforms.highlighted === run.id;
  const ref = React.useRef<HTMLLIElement>(null);
  React.useEffect(() => {
    const node = ref.current;
    if (highlighted && node && typeof node.scrollIntoView === 'function') {
      node.scrollIntoView({ block: 'nearest' });
    }
  }, [highlighted]);
  const ended = run.finished_ms ?? null;
  const duration =
    ended !== null
      ? formatDuration(ended - run.created_ms)
      : active
        ? formatDuration(Date.now() - run.created_ms)
        : '';
  const cancel = async () => {
    setBusy(true);
    setError(null);
    try {
      await transforms.cancelRun(run.id);
    } catch (e) {
      setError(errorMessage(e));
    }
    setBusy(false);
  };
  return (
    <li
      ref={ref}
      className={`jp-Infinstor-run ${highlighted ? 'jp-mod-selected' : ''}`}
      data-run={run.id}
      data-state={run.state}
      onClick={() => transforms.highlight(run.id)}
    >
      <div className="jp-Infinstor-run-head">
        <span className="jp-Infinstor-run-name">{run.transform}</span>
        <span className="jp-Infinstor-badge">
          {trans.__('r%1', run.revision)}
        </span>
        <span
          className={`jp-Infinstor-badge ${STATE_CLASS[run.state] ?? ''}`}
          data-testid="run-state"
        >
          {stateText(run.state)}
        </span>
        <span className="jp-Infinstor-badge">{run.executor}</span>
      </div>
      <div
        className="jp-Infinstor-run-meta"
        title={JSON.stringify(run.input_spec)}
      >
        {describeInput(run.input_spec)}
      </div>
      <div className="jp-Infinstor-run-meta">
        {formatTime(run.created_ms, display)}
        {duration && ` · ${duration}`}
      </div>
      <Progress run={run} />
      {run.error && (
        <div
          className="jp-Infinstor-error"
          role="alert"
          data-testid="run-failure"
        >
          {run.error}
        </div>
      )}
      <div className="jp-Infinstor-run-meta">
        {trans.__('Output:')}{' '}
        <button
          className="jp-Infinstor-linkButton jp-Infinstor-mono"
          data-testid="run-output"
          title={trans.__('Show this folder in the browser')}
          onClick={e => {
            e.stopPropagation();
            actions.openOutput(run);
          }}
        >
          {run.output_uri}
        </button>
        {run.output_marker && (
          <span
            className="jp-Infinstor-warning"
            data-testid="run-output-marker"
            title={trans.__(
              'What the run wrote is partial; %1 in the output says so',
              run.output_marker
            )}
          >
            {' '}
            {run.state === 'cancelled'
              ? trans.__('(partial: marked cancelled, %1)', run.output_marker)
              : trans.__('(partial: marked failed, %1)', run.output_marker)}
          </span>
        )}
      </div>
      {(run.output_label || run.label_output || run.label_error) && (
        <div className="jp-Infinstor-run-meta">
          {run.output_label ? (
            <button
              className="jp-Infinstor-linkButton"
              data-testid="run-label"
              title={trans.__('Browse this label')}
              onClick={e => {
                e.stopPropagation();
                model.useLabel(run.output_label as string);
              }}
            >
              {trans.__('label %1', run.output_label)}
            </button>
          ) : run.label_error ? (
            <span className="jp-Infinstor-warning">
              {trans.__(
                'label %1 not created: %2',
                run.label_output ?? '',
                run.label_error
              )}
            </span>
          ) : (
            <span className="jp-Infinstor-note">
              {trans.__('label %1 once it succeeds', run.label_output ?? '')}
            </span>
          )}
        </div>
      )}
      <div className="jp-Infinstor-run-meta">
        {trans.__('MLflow:')}{' '}
        {run.mlflow_url ? (
          <a
            href={run.mlflow_url}
            target="_blank"
            rel="noopener noreferrer"
            data-testid="run-mlflow"
            onClick={e => e.stopPropagation()}
          >
            {trans.__('run %1', run.mlflow_run_id || run.id)}
          </a>
        ) : (
          <code
            className="jp-Infinstor-mono"
            data-testid="run-mlflow"
            title={trans.__(
              'MLflow run id (experiment %1)',
              run.mlflow_experiment_id
            )}
          >
            {run.mlflow_run_id || run.id}
          </code>
        )}
      </div>
      <div className="jp-Infinstor-buttons">
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          onClick={e => {
            e.stopPropagation();
            void showRunLog(transforms, run);
          }}
        >
          {trans.__('Log')}
        </button>
        {active && (
          <button
            className="jp-mod-styled jp-mod-warn jp-Infinstor-smallButton"
            disabled={busy}
            onClick={e => {
              e.stopPropagation();
              void cancel();
            }}
          >
            {trans.__('Cancel')}
          </button>
        )}
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          title={trans.__(
            'Run revision %1 again, with these settings, on another input',
            run.revision
          )}
          onClick={e => {
            e.stopPropagation();
            actions.runAgain(run);
          }}
        >
          {trans.__('Run again…')}
        </button>
        {actions.useFromOtherTools && runCredentialRequest(run) && (
          <button
            className="jp-mod-styled jp-Infinstor-smallButton"
            data-testid="run-other-tools"
            title={trans.__(
              'Read the input this run read (run:/%1) from pandas, pyarrow, DuckDB, the AWS CLI… through the S3 endpoint',
              run.mlflow_run_id
            )}
            onClick={e => {
              e.stopPropagation();
              actions.useFromOtherTools?.(run);
            }}
          >
            {trans.__('Use from other tools…')}
          </button>
        )}
      </div>
      {error && (
        <div className="jp-Infinstor-error" role="alert">
          {error}
        </div>
      )}
    </li>
  );
}

// -- transforms --------------------------------------------------------------------------

export async function deleteTransformWithConfirm(
  transforms: TransformsModel,
  name: string
): Promise<boolean> {
  return deleteWithConfirm({
    title: trans.__('Delete transform %1?', name),
    body: trans.__(
      'Its revisions go; its runs, their outputs and their MLflow runs stay.'
    ),
    name,
    remove: () => transforms.deleteTransform(name)
  });
}

function TransformItem(props: {
  transforms: TransformsModel;
  model: InfinstorModel;
  transform: ITransformSummary;
}) {
  const { transforms, model, transform } = props;
  const display = model.settings.timeDisplay;
  const expanded = transforms.isExpanded(transform.name);
  const latest = transform.latest;
  const runs = transforms.runsOf(transform.name).length;
  return (
    <li className="jp-Infinstor-transform" data-transform={transform.name}>
      <div className="jp-Infinstor-transform-head">
        <button
          className="jp-Infinstor-linkButton jp-Infinstor-transform-toggle"
          aria-expanded={expanded}
          title={trans.__('Show the revisions')}
          onClick={() => transforms.toggleExpanded(transform.name)}
        >
          {expanded ? '▾' : '▸'} {transform.name}
        </button>
        <span className="jp-Infinstor-badge">
          {trans.__('r%1', latest.revision)}
        </span>
        <code className="jp-Infinstor-mono jp-Infinstor-transform-entry">
          {latest.entry_point}
        </code>
      </div>
      <div className="jp-Infinstor-run-meta">
        {trans._n(
          '%1 revision',
          '%1 revisions',
          transform.revisions.length,
          transform.revisions.length
        )}
        {' · '}
        {trans._n('%1 run', '%1 runs', runs, runs)}
        {' · '}
        {formatTime(latest.created_ms, display)}
      </div>
      {expanded && (
        <ul className="jp-Infinstor-revisions" data-testid="revisions">
          {transform.revisions.map(rev => (
            <li key={rev.revision} data-revision={rev.revision}>
              <span className="jp-Infinstor-badge">
                {trans.__('r%1', rev.revision)}
              </span>{' '}
              <code className="jp-Infinstor-mono">{rev.entry_point}</code>{' '}
              <span className="jp-Infinstor-run-meta">
                {formatTime(rev.created_ms, display)}
                {rev.author && ` · ${rev.author}`}
              </span>
              <div
                className="jp-Infinstor-run-meta jp-Infinstor-mono"
                title={rev.sha256}
              >
                {`sha256 ${rev.sha256.slice(0, 16)}…`}
              </div>
              {rev.description && (
                <div className="jp-Infinstor-run-meta">{rev.description}</div>
              )}
            </li>
          ))}
        </ul>
      )}
      <div className="jp-Infinstor-buttons">
        <button
          className="jp-mod-styled jp-mod-warn jp-Infinstor-smallButton"
          onClick={() =>
            void deleteTransformWithConfirm(transforms, transform.name)
          }
        >
          {trans.__('Delete')}
        </button>
      </div>
    </li>
  );
}

export function TransformsView(props: {
  transforms: TransformsModel;
  model: InfinstorModel;
  actions: ITransformsActions;
}): JSX.Element {
  const { transforms, model, actions } = props;
  const runs = transforms.runs;
  return (
    <div className="jp-Infinstor-transforms" data-testid="transforms">
      <div className="jp-Infinstor-subhead">
        {trans.__('Runs')}
        {transforms.polling && (
          <span className="jp-Infinstor-note" data-testid="runs-polling">
            {' '}
            {trans._n(
              '(%1 active)',
              '(%1 active)',
              transforms.activeCount,
              transforms.activeCount
            )}
          </span>
        )}
      </div>
      {transforms.runsError && (
        <div className="jp-Infinstor-error" role="alert">
          {transforms.runsError}
        </div>
      )}
      {runs.length === 0 && !transforms.runsError && (
        <div className="jp-Infinstor-note">
          {trans.__(
            'No runs yet. Right-click a code cell → “Run cell as transform…”.'
          )}
        </div>
      )}
      <ul className="jp-Infinstor-runList">
        {runs.map(r => (
          <RunItem
            key={r.id}
            transforms={transforms}
            model={model}
            actions={actions}
            run={r}
          />
        ))}
      </ul>
      <div className="jp-Infinstor-subhead">{trans.__('Transforms')}</div>
      {transforms.transformsError && (
        <div className="jp-Infinstor-error" role="alert">
          {transforms.transformsError}
        </div>
      )}
      {transforms.transforms.length === 0 && !transforms.transformsError && (
        <div className="jp-Infinstor-note">
          {trans.__('No transforms yet.')}
        </div>
      )}
      <ul className="jp-Infinstor-transformList">
        {transforms.transforms.map(t => (
          <TransformItem
            key={t.name}
            transforms={transforms}
            model={model}
            transform={t}
          />
        ))}
      </ul>
    </div>
  );
}

/** How many runs the sidebar's summary shows. */
export const SUMMARY_RUNS = 3;

/** The sidebar's Transforms section: the last few runs, counts and *Open runs*. */
export function TransformsSummary(props: {
  transforms: TransformsModel;
  model: InfinstorModel;
  /** Open the runs panel (on a run, highlighted). */
  openRuns: (run: IRun | null) => void;
  /** Open the *Pipelines* tab (absent: no button). */
  openPipelines?: () => void;
  /** Open the *Schedules* tab (absent: no button). */
  openSchedules?: () => void;
}): JSX.Element {
  const { transforms, model, openRuns, openPipelines, openSchedules } = props;
  const display = model.settings.timeDisplay;
  const runs = transforms.runs;
  const failed = runs.filter(r => r.state === 'failed').length;
  const counts = [
    trans._n('%1 run', '%1 runs', runs.length, runs.length),
    ...(transforms.activeCount
      ? [trans.__('%1 active', transforms.activeCount)]
      : []),
    ...(failed ? [trans.__('%1 failed', failed)] : []),
    trans._n(
      '%1 transform',
      '%1 transforms',
      transforms.transforms.length,
      transforms.transforms.length
    )
  ].join(' · ');
  return (
    <div className="jp-Infinstor-transformsSummary" data-testid="transforms">
      {transforms.runsError && (
        <div className="jp-Infinstor-error" role="alert">
          {transforms.runsError}
        </div>
      )}
      {transforms.transformsError && (
        <div className="jp-Infinstor-error" role="alert">
          {transforms.transformsError}
        </div>
      )}
      {runs.length === 0 && !transforms.runsError ? (
        <div className="jp-Infinstor-note">
          {trans.__(
            'No runs yet. Right-click a code cell → “Run cell as transform…”.'
          )}
        </div>
      ) : (
        <>
          <div className="jp-Infinstor-run-meta" data-testid="runs-counts">
            {counts}
          </div>
          <ul className="jp-Infinstor-runSummaryList">
            {runs.slice(0, SUMMARY_RUNS).map(run => (
              <li
                key={run.id}
                className="jp-Infinstor-runSummary"
                data-run={run.id}
                data-state={run.state}
              >
                <button
                  className="jp-Infinstor-linkButton jp-Infinstor-runSummary-open"
                  title={trans.__(
                    '%1 r%2, %3, started %4: open in Transform Runs',
                    run.transform,
                    run.revision,
                    stateText(run.state),
                    formatTime(run.created_ms, display)
                  )}
                  onClick={() => openRuns(run)}
                >
                  <span className="jp-Infinstor-runSummary-name">
                    {run.transform}
                  </span>
                  <span className="jp-Infinstor-badge">
                    {trans.__('r%1', run.revision)}
                  </span>
                  <span
                    className={`jp-Infinstor-badge ${STATE_CLASS[run.state] ?? ''}`}
                    data-testid="run-state"
                  >
                    {stateText(run.state)}
                  </span>
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
      <div className="jp-Infinstor-buttons">
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          data-testid="open-runs"
          title={trans.__(
            'Every run and transform, in a main-area tab (log, cancel, run again, revisions)'
          )}
          onClick={() => openRuns(null)}
        >
          {trans.__('Open runs')}
        </button>
        {openPipelines && (
          <button
            className="jp-mod-styled jp-Infinstor-smallButton"
            data-testid="open-pipelines"
            title={trans.__(
              'Pipelines of transforms in a main-area tab: define, run with the result cache, follow each step'
            )}
            onClick={openPipelines}
          >
            {trans.__('Pipelines')}
          </button>
        )}
        {openSchedules && (
          <button
            className="jp-mod-styled jp-Infinstor-smallButton"
            data-testid="open-schedules"
            title={trans.__(
              'Schedules of transforms in a main-area tab: next run, last result, pause, history'
            )}
            onClick={openSchedules}
          >
            {trans.__('Schedules')}
          </button>
        )}
      </div>
    </div>
  );
}

/** The sidebar's Transforms section (a summary). */
export class TransformsWidget extends ReactWidget {
  constructor(
    private readonly _transforms: TransformsModel,
    private readonly _model: InfinstorModel,
    private readonly _openRuns: (run: IRun | null) => void,
    private readonly _more: {
      openPipelines?: () => void;
      openSchedules?: () => void;
    } = {}
  ) {
    super();
    this.addClass('jp-Infinstor-sectionBody');
  }

  render(): JSX.Element {
    return (
      <OnSignals
        signals={[this._transforms.changed, this._model.settingsChanged]}
      >
        {() => (
          <TransformsSummary
            transforms={this._transforms}
            model={this._model}
            openRuns={this._openRuns}
            openPipelines={this._more.openPipelines}
            openSchedules={this._more.openSchedules}
          />
        )}
      </OnSignals>
    );
  }
}

/** The *Transform Runs* panel's content: every run and transform. */
export class TransformRunsContent extends ReactWidget {
  constructor(
    private readonly _transforms: TransformsModel,
    private readonly _model: InfinstorModel,
    private readonly _actions: ITransformsActions
  ) {
    super();
    this.addClass('jp-Infinstor-runsTab');
  }

  render(): JSX.Element {
    return (
      <OnSignals
        signals={[this._transforms.changed, this._model.settingsChanged]}
      >
        {() => (
          <TransformsView
            transforms={this._transforms}
            model={this._model}
            actions={this._actions}
          />
        )}
      </OnSignals>
    );
  }
}

/** The id of the one *Transform Runs* main-area panel (layout restorer, activateById). */
export const RUNS_PANEL_ID = 'infinstor-runs';

/** The *Transform Runs* main-area panel (one instance: reuse it while it is open). */
export function createRunsWidget(
  transforms: TransformsModel,
  model: InfinstorModel,
  actions: ITransformsActions
): MainAreaWidget<TransformRunsContent> {
  const widget = new MainAreaWidget({
    content: new TransformRunsContent(transforms, model, actions)
  });
  widget.id = RUNS_PANEL_ID;
  widget.addClass('jp-Infinstor-runsPanel');
  widget.title.label = trans.__('Transform Runs');
  widget.title.icon = runIcon;
  widget.title.caption = trans.__(
    'Transform runs (status, log, output, MLflow) and transforms (revisions)'
  );
  widget.title.closable = true;
  return widget;
}
