/**
 * The *Schedules* main-area tab: schedules of saved transforms (cron, or every
 * N minutes if new data), each with its next firing, last result and
 * pause/resume/run now/delete, its history of windows processed, and a form
 * that defines one.
 */
import { MainAreaWidget, ReactWidget } from '@jupyterlab/apputils';
import { listIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { trans } from '../i18n';
import { InfinstorModel } from '../model';
import { TransformsModel } from '../transforms/model';
import { parseKwargs } from '../transforms/runform';
import { formatTime, TimeDisplay } from '../time';
import { IScheduleCreate, ISchedule, IScheduleWindow } from '../api/types';
import { errorMessage } from '../errors';
import { deleteWithConfirm } from '../dialogs';
import { OnSignals } from '../signals';
import { SchedulesModel } from './model';

/** What the tab does outside itself. */
export interface ISchedulesActions {
  /** Show a transform run in the *Transform Runs* tab. */
  showRun(runId: string): void;
  /** Runs fired from this tab: follow them (a notification when they end). */
  followRuns(runIds: string[]): void;
}

const WINDOW_CLASS: { [state: string]: string } = {
  running: 'jp-mod-accent',
  succeeded: 'jp-mod-ok',
  failed: 'jp-mod-error',
  empty: ''
};

export function windowStateText(state: string): string {
  switch (state) {
    case 'running':
      return trans.__('running');
    case 'succeeded':
      return trans.__('succeeded');
    case 'failed':
      return trans.__('failed');
    case 'empty':
      return trans.__('nothing new');
    default:
      return state;
  }
}

export async function deleteScheduleWithConfirm(
  schedules: SchedulesModel,
  name: string
): Promise<boolean> {
  return deleteWithConfirm({
    title: trans.__('Delete schedule %1?', name),
    body: trans.__(
      'It stops firing and its window history goes; its runs and their outputs stay in MLflow and S3.'
    ),
    name,
    remove: () => schedules.delete(name)
  });
}

/** The form's content. */
export interface IScheduleForm {
  name: string;
  transform: string;
  bucket: string;
  prefix: string;
  trigger: 'cron' | 'every';
  cron: string;
  everyMinutes: string;
  ifNewData: boolean;
  mode: 'incremental' | 'snapshot';
  executor: string;
  outputUri: string;
  kwargs: string;
  start: string;
}

/** What is wrong with the form, per field; {} when it can be sent. */
export function validateScheduleForm(form: IScheduleForm): {
  [field: string]: string;
} {
  const errors: { [field: string]: string } = {};
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(form.name)) {
    errors.name = trans.__(
      "Name the schedule with 1-128 letters, digits, '.', '_' or '-'."
    );
  }
  if (!form.transform) {
    errors.transform = trans.__('Pick a saved transform.');
  }
  if (!form.bucket) {
    errors.bucket = trans.__('Pick the tracked bucket it reads.');
  }
  if (form.trigger === 'cron' && form.cron.trim().split(/\s+/).length !== 5) {
    errors.cron = trans.__(
      'A cron expression has five fields, in UTC (e.g. 0 2 * * * for 02:00 every day).'
    );
  }
  if (form.trigger === 'every') {
    const n = Number(form.everyMinutes);
    if (!Number.isInteger(n) || n < 1 || n > 10080) {
      errors.every = trans.__('Every 1 to 10080 minutes.');
    }
  }
  const kwargs = parseKwargs(form.kwargs);
  if (kwargs.error) {
    errors.kwargs = kwargs.error;
  }
  return errors;
}

/** The body of `POST schedules`. */
export function buildSchedule(form: IScheduleForm): IScheduleCreate {
  const body: IScheduleCreate = {
    name: form.name,
    transform: form.transform,
    bucket: form.bucket,
    prefix: form.prefix,
    mode: form.mode,
    executor: form.executor || 'local',
    kwargs: parseKwargs(form.kwargs).value ?? {}
  };
  if (form.trigger === 'cron') {
    body.cron = form.cron.trim();
  } else {
    body.every_minutes = Number(form.everyMinutes);
    body.if_new_data = form.ifNewData;
  }
  if (form.outputUri.trim()) {
    body.output_uri = form.outputUri.trim();
  }
  if (form.start.trim()) {
    body.start = form.start.trim();
  }
  return body;
}

function ScheduleEditor(props: {
  schedules: SchedulesModel;
  transforms: TransformsModel;
  model: InfinstorModel;
  onDone: (saved: string | null) => void;
}) {
  const { schedules, transforms, model } = props;
  const executors = transforms.executors;
  const [form, setForm] = React.useState<IScheduleForm>({
    name: '',
    transform: transforms.transforms[0]?.name ?? '',
    bucket: model.bucket ?? '',
    prefix: model.prefix ?? '',
    trigger: 'every',
    cron: '0 2 * * *',
    everyMinutes: '15',
    ifNewData: true,
    mode: 'incremental',
    executor: executors?.default_executor || 'local',
    outputUri: '',
    kwargs: '',
    start: ''
  });
  const [shown, setShown] = React.useState(false);
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const errors = shown ? validateScheduleForm(form) : {};
  const set = (patch: Partial<IScheduleForm>) => setForm({ ...form, ...patch });
  const tracked = model.buckets.filter(b => b.tracked).map(b => b.name);
  const save = async () => {
    setShown(true);
    if (Object.keys(validateScheduleForm(form)).length) {
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const created = await schedules.create(buildSchedule(form));
      props.onDone(created.name);
    } catch (e) {
      setError(errorMessage(e));
    }
    setBusy(false);
  };
  const err = (field: string) =>
    errors[field] ? (
      <div className="jp-Infinstor-error" role="alert">
        {errors[field]}
      </div>
    ) : null;
  return (
    <div className="jp-Infinstor-pipelineEditor" data-testid="schedule-editor">
      <div className="jp-Infinstor-subhead">{trans.__('New schedule')}</div>
      <label className="jp-Infinstor-field">
        {trans.__('Name')}
        <input
          className="jp-mod-styled"
          name="schedule-name"
          value={form.name}
          onChange={e => set({ name: e.target.value })}
        />
      </label>
      {err('name')}
      <label className="jp-Infinstor-field">
        {trans.__('Transform')}
        <select
          className="jp-mod-styled"
          name="schedule-transform"
          value={form.transform}
          onChange={e => set({ transform: e.target.value })}
        >
          <option value="">{trans.__('(pick a saved transform)')}</option>
          {transforms.transforms.map(t => (
            <option key={t.name} value={t.name}>
              {t.name}
            </option>
          ))}
        </select>
      </label>
      {err('transform')}
      <div className="jp-Infinstor-pipelineInputRow">
        <label className="jp-Infinstor-field">
          {trans.__('Bucket')}
          <select
            className="jp-mod-styled"
            name="schedule-bucket"
            value={form.bucket}
            onChange={e => set({ bucket: e.target.value })}
          >
            <option value="">{trans.__('(bucket)')}</option>
            {tracked.map(b => (
              <option key={b} value={b}>
                {b}
              </option>
            ))}
          </select>
        </label>
        <label className="jp-Infinstor-field jp-Infinstor-grow">
          {trans.__('Prefix')}
          <input
            className="jp-mod-styled"
            name="schedule-prefix"
            value={form.prefix}
            onChange={e => set({ prefix: e.target.value })}
          />
        </label>
      </div>
      {err('bucket')}
      <label className="jp-Infinstor-field">
        {trans.__('Reads')}
        <select
          className="jp-mod-styled"
          name="schedule-mode"
          value={form.mode}
          onChange={e => set({ mode: e.target.value as IScheduleForm['mode'] })}
        >
          <option value="incremental">
            {trans.__('what arrived since its previous run (incremental)')}
          </option>
          <option value="snapshot">
            {trans.__('the whole prefix as of each firing (snapshot)')}
          </option>
        </select>
      </label>
      <div className="jp-Infinstor-buttons" role="radiogroup">
        <label className="jp-Infinstor-check">
          <input
            type="radio"
            name="schedule-trigger"
            value="every"
            checked={form.trigger === 'every'}
            onChange={() => set({ trigger: 'every' })}
          />{' '}
          {trans.__('Every')}{' '}
          <input
            className="jp-mod-styled jp-Infinstor-narrow"
            name="schedule-every"
            type="number"
            min={1}
            value={form.everyMinutes}
            onChange={e =>
              set({ trigger: 'every', everyMinutes: e.target.value })
            }
          />{' '}
          {trans.__('minutes')}
        </label>
        <label className="jp-Infinstor-check">
          <input
            type="checkbox"
            name="schedule-if-new"
            disabled={form.trigger !== 'every'}
            checked={form.ifNewData}
            onChange={e => set({ ifNewData: e.target.checked })}
          />{' '}
          {trans.__('only if new data arrived')}
        </label>
        <label className="jp-Infinstor-check">
          <input
            type="radio"
            name="schedule-trigger"
            value="cron"
            checked={form.trigger === 'cron'}
            onChange={() => set({ trigger: 'cron' })}
          />{' '}
          {trans.__('Cron (UTC)')}{' '}
          <input
            className="jp-mod-styled"
            name="schedule-cron"
            value={form.cron}
            onChange={e => set({ trigger: 'cron', cron: e.target.value })}
          />
        </label>
      </div>
      {err('cron')}
      {err('every')}
      <div className="jp-Infinstor-pipelineInputRow">
        <label className="jp-Infinstor-field">
          {trans.__('Executor')}
          <select
            className="jp-mod-styled"
            name="schedule-executor"
            value={form.executor}
            onChange={e => set({ executor: e.target.value })}
          >
            {(
              executors?.executors ?? [
                {
                  name: 'local',
                  title: trans.__('Local'),
                  available: true,
                  detail: null
                }
              ]
            ).map(x => (
              <option key={x.name} value={x.name} disabled={!x.available}>
                {x.name}
              </option>
            ))}
          </select>
        </label>
        <label className="jp-Infinstor-field jp-Infinstor-grow">
          {trans.__('Output')}
          <input
            className="jp-mod-styled"
            name="schedule-output"
            placeholder={
              executors?.default_output_uri ||
              trans.__('s3://BUCKET/PREFIX/ (a tracked bucket)')
            }
            value={form.outputUri}
            onChange={e => set({ outputUri: e.target.value })}
          />
        </label>
      </div>
      <label className="jp-Infinstor-field">
        {trans.__('Keyword arguments (JSON)')}
        <textarea
          className="jp-mod-styled"
          name="schedule-kwargs"
          rows={1}
          value={form.kwargs}
          onChange={e => set({ kwargs: e.target.value })}
        />
      </label>
      {err('kwargs')}
      <label className="jp-Infinstor-field">
        {trans.__('First window begins (time spec; empty: now)')}
        <input
          className="jp-mod-styled"
          name="schedule-start"
          value={form.start}
          onChange={e => set({ start: e.target.value })}
        />
      </label>
      {error && (
        <div
          className="jp-Infinstor-error"
          role="alert"
          data-testid="schedule-save-error"
        >
          {error}
        </div>
      )}
      <div className="jp-Infinstor-buttons">
        <button
          className="jp-mod-styled jp-mod-accept"
          data-testid="save-schedule"
          disabled={busy}
          onClick={() => void save()}
        >
          {busy ? trans.__('Saving…') : trans.__('Create schedule')}
        </button>
        <button
          className="jp-mod-styled jp-mod-reject"
          onClick={() => props.onDone(null)}
        >
          {trans.__('Cancel')}
        </button>
      </div>
    </div>
  );
}

function WindowRow(props: {
  window: IScheduleWindow;
  display: TimeDisplay;
  actions: ISchedulesActions;
}) {
  const { window: w, display, actions } = props;
  return (
    <tr data-seq={w.seq} data-state={w.state}>
      <td>{w.seq}</td>
      <td>{formatTime(w.start_ms, display)}</td>
      <td>{formatTime(w.end_ms, display)}</td>
      <td>
        <span
          className={`jp-Infinstor-badge ${WINDOW_CLASS[w.state] ?? ''}`}
          data-testid="window-state"
        >
          {windowStateText(w.state)}
        </span>
        {w.attempt > 1 && (
          <span
            className="jp-Infinstor-note"
            title={trans.__('Tries of this window start')}
          >
            {' '}
            {trans.__('try %1', w.attempt)}
          </span>
        )}
        {w.error && (
          <div className="jp-Infinstor-error" role="alert">
            {w.error}
          </div>
        )}
      </td>
      <td>{w.objects}</td>
      <td>
        {w.run_id ? (
          <button
            className="jp-Infinstor-linkButton jp-Infinstor-mono"
            title={trans.__('Show the run in Transform Runs')}
            onClick={() => actions.showRun(w.run_id as string)}
          >
            {w.run_id.slice(0, 12)}
          </button>
        ) : (
          '—'
        )}
      </td>
    </tr>
  );
}

function ScheduleItem(props: {
  schedule: ISchedule;
  schedules: SchedulesModel;
  model: InfinstorModel;
  actions: ISchedulesActions;
}) {
  const { schedule: s, schedules, model, actions } = props;
  const display = model.settings.timeDisplay;
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [note, setNote] = React.useState<string | null>(null);
  const expanded = schedules.isExpanded(s.name);
  const windows = schedules.windows(s.name);
  const last = s.last_window;
  const act = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    setNote(null);
    try {
      await work();
    } catch (e) {
      setError(errorMessage(e));
    }
    setBusy(false);
  };
  return (
    <li
      className="jp-Infinstor-run jp-Infinstor-schedule"
      data-schedule={s.name}
      data-paused={s.paused ? 'true' : 'false'}
    >
      <div className="jp-Infinstor-run-head">
        <span className="jp-Infinstor-run-name">{s.name}</span>
        <span
          className={`jp-Infinstor-badge ${s.paused ? 'jp-mod-warn' : 'jp-mod-ok'}`}
          data-testid="schedule-state"
        >
          {s.paused ? trans.__('paused') : trans.__('active')}
        </span>
        <span className="jp-Infinstor-badge">{s.mode}</span>
        <span className="jp-Infinstor-badge">{s.executor}</span>
      </div>
      <div className="jp-Infinstor-run-meta" data-testid="schedule-trigger">
        {s.trigger}
      </div>
      <div className="jp-Infinstor-run-meta">
        {trans.__(
          '%1%2 on s3://%3/%4',
          s.transform,
          s.revision !== null ? ` r${s.revision}` : '',
          s.bucket,
          s.prefix
        )}
      </div>
      <div className="jp-Infinstor-run-meta" data-testid="schedule-next">
        {s.paused
          ? trans.__('Next run: none while paused')
          : trans.__('Next run: %1', formatTime(s.next_ms, display))}
      </div>
      <div className="jp-Infinstor-run-meta" data-testid="schedule-last">
        {last
          ? trans.__(
              'Last: %1, %2 objects, window %3 → %4',
              windowStateText(last.state),
              last.objects,
              formatTime(last.start_ms, display),
              formatTime(last.end_ms, display)
            )
          : trans.__('Last: not fired yet')}
      </div>
      {last?.error && (
        <div className="jp-Infinstor-error" role="alert">
          {last.error}
        </div>
      )}
      <div className="jp-Infinstor-buttons">
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          data-testid={s.paused ? 'resume-schedule' : 'pause-schedule'}
          disabled={busy}
          onClick={() =>
            void act(async () => {
              await schedules.setPaused(s.name, !s.paused);
            })
          }
        >
          {s.paused ? trans.__('Resume') : trans.__('Pause')}
        </button>
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          data-testid="run-schedule"
          disabled={busy}
          title={trans.__('Fire now, over what arrived since the last window')}
          onClick={() =>
            void act(async () => {
              const started = await schedules.runNow(s.name);
              const ids = started
                .map(w => w.run_id)
                .filter((id): id is string => !!id);
              if (ids.length) {
                actions.followRuns(ids);
              } else {
                setNote(
                  trans.__(
                    'Nothing started: nothing new arrived, or its last run still goes on.'
                  )
                );
              }
            })
          }
        >
          {trans.__('Run now')}
        </button>
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          aria-expanded={expanded}
          onClick={() => void schedules.toggleExpanded(s.name)}
        >
          {expanded ? trans.__('Hide history') : trans.__('History')}
        </button>
        <button
          className="jp-mod-styled jp-mod-warn jp-Infinstor-smallButton"
          onClick={() => void deleteScheduleWithConfirm(schedules, s.name)}
        >
          {trans.__('Delete')}
        </button>
      </div>
      {note && <div className="jp-Infinstor-note">{note}</div>}
      {error && (
        <div className="jp-Infinstor-error" role="alert">
          {error}
        </div>
      )}
      {expanded && (
        <div data-testid="schedule-windows">
          {windows === null ? (
            <div className="jp-Infinstor-note">{trans.__('Loading…')}</div>
          ) : windows.length === 0 ? (
            <div className="jp-Infinstor-note">
              {trans.__('No windows processed yet.')}
            </div>
          ) : (
            <table className="jp-Infinstor-windows">
              <thead>
                <tr>
                  <th>#</th>
                  <th>{trans.__('From')}</th>
                  <th>{trans.__('To')}</th>
                  <th>{trans.__('Result')}</th>
                  <th>{trans.__('Objects')}</th>
                  <th>{trans.__('Run')}</th>
                </tr>
              </thead>
              <tbody>
                {windows.map(w => (
                  <WindowRow
                    key={w.seq}
                    window={w}
                    display={display}
                    actions={actions}
                  />
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </li>
  );
}

export function SchedulesView(props: {
  schedules: SchedulesModel;
  transforms: TransformsModel;
  model: InfinstorModel;
  actions: ISchedulesActions;
}): JSX.Element {
  const { schedules, transforms, model, actions } = props;
  const [editing, setEditing] = React.useState(false);
  return (
    <div className="jp-Infinstor-schedules" data-testid="schedules">
      <div className="jp-Infinstor-buttons">
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          data-testid="new-schedule"
          disabled={editing}
          onClick={() => {
            void transforms.refreshTransforms();
            void transforms.loadExecutors().catch(() => undefined);
            setEditing(true);
          }}
        >
          {trans.__('New schedule…')}
        </button>
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          onClick={() => void schedules.refresh()}
        >
          {trans.__('Reload')}
        </button>
      </div>
      {editing && (
        <ScheduleEditor
          schedules={schedules}
          transforms={transforms}
          model={model}
          onDone={() => setEditing(false)}
        />
      )}
      {schedules.error && (
        <div className="jp-Infinstor-error" role="alert">
          {schedules.error}
        </div>
      )}
      {schedules.loaded &&
        schedules.schedules.length === 0 &&
        !schedules.error && (
          <div className="jp-Infinstor-note">
            {trans.__(
              'No schedules yet. A schedule runs a saved transform by cron or every N minutes, over what arrived since its previous run.'
            )}
          </div>
        )}
      <ul className="jp-Infinstor-runList">
        {schedules.schedules.map(s => (
          <ScheduleItem
            key={s.name}
            schedule={s}
            schedules={schedules}
            model={model}
            actions={actions}
          />
        ))}
      </ul>
    </div>
  );
}

/** The *Schedules* panel's content; reloads the list while it is shown. */
export class SchedulesContent extends ReactWidget {
  constructor(
    private readonly _schedules: SchedulesModel,
    private readonly _transforms: TransformsModel,
    private readonly _model: InfinstorModel,
    private readonly _actions: ISchedulesActions
  ) {
    super();
    this.addClass('jp-Infinstor-runsTab');
    void this._schedules.refresh();
    void this._transforms.refreshTransforms();
    this._schedules.start();
  }

  dispose(): void {
    this._schedules.stop();
    super.dispose();
  }

  render(): JSX.Element {
    return (
      <OnSignals
        signals={[
          this._schedules.changed,
          this._transforms.changed,
          this._model.settingsChanged,
          this._model.bucketsChanged
        ]}
      >
        {() => (
          <SchedulesView
            schedules={this._schedules}
            transforms={this._transforms}
            model={this._model}
            actions={this._actions}
          />
        )}
      </OnSignals>
    );
  }
}

export const SCHEDULES_PANEL_ID = 'infinstor-schedules';

export function createSchedulesWidget(
  schedules: SchedulesModel,
  transforms: TransformsModel,
  model: InfinstorModel,
  actions: ISchedulesActions
): MainAreaWidget<SchedulesContent> {
  const widget = new MainAreaWidget({
    content: new SchedulesContent(schedules, transforms, model, actions)
  });
  widget.id = SCHEDULES_PANEL_ID;
  widget.addClass('jp-Infinstor-schedulesPanel');
  widget.title.label = trans.__('Schedules');
  widget.title.icon = listIcon;
  widget.title.caption = trans.__(
    'Schedules of transforms: next run, last result, history of windows processed'
  );
  widget.title.closable = true;
  return widget;
}
