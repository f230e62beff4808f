/**
 * The *Pipelines* main-area tab: the pipelines (DAGs of saved transforms), an
 * editor that defines one step by step or from a pasted YAML/JSON file, a run
 * control (executor, cache opt-out), and the selected pipeline's runs with
 * each step's live state, its MLflow run and its output.
 */
import { MainAreaWidget, ReactWidget } from '@jupyterlab/apputils';
import { fastForwardIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { trans } from '../i18n';
import { InfinstorModel } from '../model';
import { TransformsModel } from '../transforms/model';
import { describeInput } from '../transforms/runform';
import { formatDuration, formatTime } from '../time';
import {
  IExecutors,
  IPipelineRun,
  IPipelineStepRun,
  IPipelineSummary,
  IRunInput
} from '../api/types';
import { errorMessage } from '../errors';
import { deleteWithConfirm } from '../dialogs';
import { OnSignals } from '../signals';
import { PipelinesModel, upstreamSteps } from './model';
import {
  buildPipeline,
  describeGraph,
  formOf,
  IPipelineForm,
  IStepForm,
  newStep,
  validatePipelineForm
} from './form';

/** What the tab does outside itself. */
export interface IPipelinesActions {
  /** Show an S3 folder (a step's output) in the sidebar browser. */
  openOutput(uri: string): void;
  /** Browse a label in the sidebar. */
  useLabel(label: string): void;
  /** A run started from this tab: follow it (a notification when it ends). */
  followRun(run: IPipelineRun): void;
}

export const STEP_STATE_CLASS: { [state: string]: string } = {
  waiting: '',
  running: 'jp-mod-accent',
  succeeded: 'jp-mod-ok',
  cached: 'jp-mod-ok',
  failed: 'jp-mod-error',
  skipped: 'jp-mod-warn',
  cancelled: 'jp-mod-warn'
};

/** A step or run state for people. */
export function pipelineStateText(state: string): string {
  switch (state) {
    case 'waiting':
      return trans.__('pending');
    case 'running':
      return trans.__('running');
    case 'succeeded':
      return trans.__('succeeded');
    case 'failed':
      return trans.__('failed');
    case 'cached':
      return trans.__('cached');
    case 'skipped':
      return trans.__('skipped');
    case 'cancelled':
      return trans.__('cancelled');
    default:
      return state;
  }
}

export async function deletePipelineWithConfirm(
  pipelines: PipelinesModel,
  name: string
): Promise<boolean> {
  return deleteWithConfirm({
    title: trans.__('Delete pipeline %1?', name),
    body: trans.__(
      'Its definition goes; its runs, their outputs, labels and MLflow runs stay.'
    ),
    name,
    remove: () => pipelines.delete(name)
  });
}

// -- the editor ---------------------------------------------------------------------------

function FieldError(props: { error?: string; testid?: string }) {
  return props.error ? (
    <div
      className="jp-Infinstor-error"
      role="alert"
      data-testid={props.testid ?? 'field-error'}
    >
      {props.error}
    </div>
  ) : null;
}

function StepEditor(props: {
  index: number;
  step: IStepForm;
  others: string[];
  transforms: TransformsModel;
  model: InfinstorModel;
  executors: IExecutors | null;
  errors: { [field: string]: string };
  onChange: (step: IStepForm) => void;
  onRemove: () => void;
}) {
  const { index, step, others, transforms, model, executors, errors } = props;
  const set = (patch: Partial<IStepForm>) =>
    props.onChange({ ...step, ...patch });
  const at = (field: string) => errors[`steps.${index}.${field}`];
  const tracked = model.buckets.filter(b => b.tracked).map(b => b.name);
  return (
    <fieldset
      className="jp-Infinstor-pipelineStepEditor"
      data-step-index={index}
    >
      <legend>{trans.__('Step %1', index + 1)}</legend>
      <label className="jp-Infinstor-field">
        {trans.__('Name')}
        <input
          className="jp-mod-styled"
          name="step-name"
          value={step.name}
          onChange={e => set({ name: e.target.value })}
        />
      </label>
      <FieldError error={at('name')} />
      <label className="jp-Infinstor-field">
        {trans.__('Transform')}
        <select
          className="jp-mod-styled"
          name="step-transform"
          value={step.transform}
          onChange={e => set({ transform: e.target.value })}
        >
          <option value="">{trans.__('(pick a saved transform)')}</option>
          {transforms.transforms.map(t => (
            <option key={t.name} value={t.name}>
              {t.name} ({t.latest.entry_point})
            </option>
          ))}
        </select>
      </label>
      <FieldError error={at('transform')} />
      <label className="jp-Infinstor-field">
        {trans.__('Input')}
        <select
          className="jp-mod-styled"
          name="step-input-kind"
          value={step.inputKind}
          onChange={e =>
            set({ inputKind: e.target.value as IStepForm['inputKind'] })
          }
        >
          <option value="view">
            {trans.__('a view (bucket, prefix, time)')}
          </option>
          <option value="label">{trans.__('a label')}</option>
          <option value="steps" disabled={!others.length}>
            {trans.__("other steps' outputs")}
          </option>
        </select>
      </label>
      {step.inputKind === 'view' && (
        <div className="jp-Infinstor-pipelineInputRow">
          <select
            className="jp-mod-styled"
            name="step-bucket"
            aria-label={trans.__('Bucket')}
            value={step.bucket}
            onChange={e => set({ bucket: e.target.value })}
          >
            <option value="">{trans.__('(bucket)')}</option>
            {tracked.map(b => (
              <option key={b} value={b}>
                {b}
              </option>
            ))}
          </select>
          <input
            className="jp-mod-styled"
            name="step-prefix"
            aria-label={trans.__('Prefix')}
            placeholder={trans.__('prefix/ (empty: the whole bucket)')}
            value={step.prefix}
            onChange={e => set({ prefix: e.target.value })}
          />
          <input
            className="jp-mod-styled"
            name="step-at"
            aria-label={trans.__('Time')}
            title={trans.__(
              'A time spec (now, tm20261120100000, 2026-11-20T10:00:00Z) or a slice (A/B, tmA-tmB)'
            )}
            value={step.at}
            onChange={e => set({ at: e.target.value })}
          />
        </div>
      )}
      {step.inputKind === 'label' && (
        <select
          className="jp-mod-styled"
          name="step-label"
          aria-label={trans.__('Label')}
          value={step.label}
          onChange={e => set({ label: e.target.value })}
        >
          <option value="">{trans.__('(label)')}</option>
          {model.labels.map(l => (
            <option key={l.name} value={l.name}>
              {l.name}
            </option>
          ))}
        </select>
      )}
      {step.inputKind === 'steps' && (
        <div className="jp-Infinstor-pipelineInputRow" role="group">
          {others.map(name => (
            <label key={name} className="jp-Infinstor-check">
              <input
                type="checkbox"
                name="step-reads"
                value={name}
                checked={step.steps.includes(name)}
                onChange={e =>
                  set({
                    steps: e.target.checked
                      ? [...step.steps, name]
                      : step.steps.filter(s => s !== name)
                  })
                }
              />{' '}
              {name}
            </label>
          ))}
        </div>
      )}
      <FieldError error={at('input')} />
      <label className="jp-Infinstor-field">
        {trans.__('Keyword arguments (JSON)')}
        <textarea
          className="jp-mod-styled"
          name="step-kwargs"
          rows={1}
          placeholder={trans.__('{"size": 128}')}
          value={step.kwargs}
          onChange={e => set({ kwargs: e.target.value })}
        />
      </label>
      <FieldError error={at('kwargs')} />
      <div className="jp-Infinstor-pipelineInputRow">
        <label className="jp-Infinstor-field">
          {trans.__('Executor')}
          <select
            className="jp-mod-styled"
            name="step-executor"
            value={step.executor}
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
            name="step-output"
            placeholder={
              executors?.default_output_uri ||
              trans.__('s3://BUCKET/PREFIX/ (a tracked bucket)')
            }
            value={step.outputUri}
            onChange={e => set({ outputUri: e.target.value })}
          />
        </label>
      </div>
      <FieldError error={at('output')} />
      <div className="jp-Infinstor-buttons">
        <button
          className="jp-mod-styled jp-mod-warn jp-Infinstor-smallButton"
          onClick={props.onRemove}
        >
          {trans.__('Remove step')}
        </button>
      </div>
    </fieldset>
  );
}

const EXAMPLE_TEXT = [
  'name: my-pipeline',
  'steps:',
  '  - name: a',
  '    transform: my-transform',
  '    input: {type: view, bucket: my-bucket, prefix: in/, at: now}',
  '  - name: b',
  '    transform: other-transform',
  '    input: {type: step, step: a}'
].join('\n');

/** The editor: a form of steps, or a pasted file. Calls `onSaved` with the name. */
function PipelineEditor(props: {
  pipelines: PipelinesModel;
  transforms: TransformsModel;
  model: InfinstorModel;
  initial: IPipelineForm | null;
  onDone: (saved: string | null) => void;
}) {
  const { pipelines, transforms, model } = props;
  const executors = transforms.executors;
  const defaults = (): Partial<IStepForm> => ({
    bucket: model.bucket ?? '',
    prefix: model.prefix ?? '',
    executor: executors?.default_executor || 'local'
  });
  const [mode, setMode] = React.useState<'form' | 'text'>('form');
  const [form, setForm] = React.useState<IPipelineForm>(
    props.initial ?? {
      name: '',
      description: '',
      steps: [newStep(0, defaults())]
    }
  );
  const [text, setText] = React.useState('');
  const [shown, setShown] = React.useState(false);
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const errors = validatePipelineForm(form);
  const save = async () => {
    setShown(true);
    if (mode === 'form' && Object.keys(errors).length) {
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const saved = await pipelines.save(
        mode === 'form' ? buildPipeline(form) : { text }
      );
      props.onDone(saved.name);
    } catch (e) {
      setError(errorMessage(e));
    }
    setBusy(false);
  };
  const setStep = (i: number, step: IStepForm) => {
    const old = form.steps[i].name;
    const steps = form.steps.map((s, j) =>
      j === i
        ? step
        : // A renamed step stays connected.
          {
            ...s,
            steps: s.steps.map(n => (n === old ? step.name : n))
          }
    );
    setForm({ ...form, steps });
  };
  return (
    <div className="jp-Infinstor-pipelineEditor" data-testid="pipeline-editor">
      <div className="jp-Infinstor-subhead">
        {props.initial
          ? trans.__('Edit pipeline %1', props.initial.name)
          : trans.__('New pipeline')}
      </div>
      <div className="jp-Infinstor-buttons" role="tablist">
        <label className="jp-Infinstor-check">
          <input
            type="radio"
            name="pipeline-editor-mode"
            value="form"
            checked={mode === 'form'}
            onChange={() => setMode('form')}
          />{' '}
          {trans.__('Form')}
        </label>
        <label className="jp-Infinstor-check">
          <input
            type="radio"
            name="pipeline-editor-mode"
            value="text"
            checked={mode === 'text'}
            onChange={() => setMode('text')}
          />{' '}
          {trans.__('Paste YAML or JSON')}
        </label>
      </div>
      {mode === 'form' ? (
        <>
          <label className="jp-Infinstor-field">
            {trans.__('Pipeline name')}
            <input
              className="jp-mod-styled"
              name="pipeline-name"
              value={form.name}
              onChange={e => setForm({ ...form, name: e.target.value })}
            />
          </label>
          {shown && <FieldError error={errors.name} />}
          <label className="jp-Infinstor-field">
            {trans.__('Description')}
            <input
              className="jp-mod-styled"
              name="pipeline-description"
              value={form.description}
              onChange={e => setForm({ ...form, description: e.target.value })}
            />
          </label>
          {form.steps.map((step, i) => (
            <StepEditor
              key={i}
              index={i}
              step={step}
              others={form.steps.filter((_, j) => j !== i).map(s => s.name)}
              transforms={transforms}
              model={model}
              executors={executors}
              errors={shown ? errors : {}}
              onChange={s => setStep(i, s)}
              onRemove={() =>
                setForm({
                  ...form,
                  steps: form.steps
                    .filter((_, j) => j !== i)
                    .map(s => ({
                      ...s,
                      steps: s.steps.filter(n => n !== step.name)
                    }))
                })
              }
            />
          ))}
          {shown && <FieldError error={errors.steps} />}
          <div className="jp-Infinstor-buttons">
            <button
              className="jp-mod-styled jp-Infinstor-smallButton"
              data-testid="add-step"
              onClick={() =>
                setForm({
                  ...form,
                  steps: [...form.steps, newStep(form.steps.length, defaults())]
                })
              }
            >
              {trans.__('Add step')}
            </button>
          </div>
        </>
      ) : (
        <label className="jp-Infinstor-field">
          {trans.__(
            'A pipeline file, as `infinstor-jlab pipeline save FILE` reads it'
          )}
          <textarea
            className="jp-mod-styled jp-Infinstor-mono"
            name="pipeline-text"
            rows={12}
            placeholder={EXAMPLE_TEXT}
            value={text}
            onChange={e => setText(e.target.value)}
          />
        </label>
      )}
      {error && (
        <div
          className="jp-Infinstor-error"
          role="alert"
          data-testid="pipeline-save-error"
        >
          {error}
        </div>
      )}
      <div className="jp-Infinstor-buttons">
        <button
          className="jp-mod-styled jp-mod-accept"
          data-testid="save-pipeline"
          disabled={busy}
          onClick={() => void save()}
        >
          {busy ? trans.__('Saving…') : trans.__('Save pipeline')}
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

// -- runs ---------------------------------------------------------------------------------

function StepRunItem(props: {
  step: IPipelineStepRun;
  definition: IPipelineRun['definition'];
  actions: IPipelinesActions;
}) {
  const { step, definition, actions } = props;
  const def = definition.steps.find(s => s.name === step.step);
  const ups = def ? upstreamSteps(def.input) : [];
  const duration =
    step.started_ms !== null
      ? formatDuration((step.finished_ms ?? Date.now()) - step.started_ms)
      : '';
  return (
    <li
      className="jp-Infinstor-pipelineStep"
      data-step={step.step}
      data-state={step.state}
    >
      <div className="jp-Infinstor-run-head">
        <span className="jp-Infinstor-run-name">{step.step}</span>
        <span
          className={`jp-Infinstor-badge ${STEP_STATE_CLASS[step.state] ?? ''}`}
          data-testid="step-state"
        >
          {pipelineStateText(step.state)}
        </span>
        {def && (
          <span className="jp-Infinstor-badge">
            {def.transform}
            {def.revision !== null ? ` r${def.revision}` : ''} · {def.executor}
          </span>
        )}
        {step.state === 'running' && step.total > 0 && (
          <span className="jp-Infinstor-note">
            {trans.__('%1 / %2', step.done, step.total)}
          </span>
        )}
        {duration && <span className="jp-Infinstor-note">{duration}</span>}
      </div>
      {def && (
        <div className="jp-Infinstor-run-meta">
          {ups.length
            ? trans.__('reads %1', ups.join(', '))
            : describeInput(def.input as IRunInput)}
        </div>
      )}
      {step.error && (
        <div
          className="jp-Infinstor-error"
          role="alert"
          data-testid="step-error"
        >
          {step.error}
        </div>
      )}
      {step.state === 'cached' && step.cached_from && (
        <div className="jp-Infinstor-run-meta" data-testid="step-cached">
          {trans.__('reused the output of run')}{' '}
          {step.run_url ? (
            <a href={step.run_url} target="_blank" rel="noopener noreferrer">
              {step.cached_from}
            </a>
          ) : (
            <code className="jp-Infinstor-mono">{step.cached_from}</code>
          )}
        </div>
      )}
      {step.run_id && step.state !== 'cached' && (
        <div className="jp-Infinstor-run-meta">
          {trans.__('MLflow:')}{' '}
          {step.run_url ? (
            <a
              href={step.run_url}
              target="_blank"
              rel="noopener noreferrer"
              data-testid="step-mlflow"
            >
              {trans.__('run %1', step.run_id)}
            </a>
          ) : (
            <code className="jp-Infinstor-mono" data-testid="step-mlflow">
              {step.run_id}
            </code>
          )}
        </div>
      )}
      {step.output_uri && (
        <div className="jp-Infinstor-run-meta">
          {trans.__('Output:')}{' '}
          <button
            className="jp-Infinstor-linkButton jp-Infinstor-mono"
            data-testid="step-output"
            title={trans.__('Show this folder in the browser')}
            onClick={() => actions.openOutput(step.output_uri as string)}
          >
            {step.output_uri}
          </button>
          {step.output_label && (
            <>
              {' · '}
              <button
                className="jp-Infinstor-linkButton"
                title={trans.__('Browse this label')}
                onClick={() => actions.useLabel(step.output_label as string)}
              >
                {trans.__('label %1', step.output_label)}
              </button>
            </>
          )}
        </div>
      )}
    </li>
  );
}

function PipelineRunItem(props: {
  run: IPipelineRun;
  pipelines: PipelinesModel;
  model: InfinstorModel;
  actions: IPipelinesActions;
}) {
  const { run, pipelines, model, actions } = props;
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const display = model.settings.timeDisplay;
  const running = run.state === 'running';
  const cancel = async () => {
    setBusy(true);
    setError(null);
    try {
      await pipelines.cancelRun(run);
    } catch (e) {
      setError(errorMessage(e));
    }
    setBusy(false);
  };
  const duration = formatDuration(
    (run.finished_ms ?? Date.now()) - run.created_ms
  );
  return (
    <li
      className="jp-Infinstor-run jp-Infinstor-pipelineRun"
      data-run={run.id}
      data-state={run.state}
    >
      <div className="jp-Infinstor-run-head">
        <span className="jp-Infinstor-run-name">
          {trans.__('Run of %1', formatTime(run.created_ms, display))}
        </span>
        <span
          className={`jp-Infinstor-badge ${STEP_STATE_CLASS[run.state] ?? ''}`}
          data-testid="pipeline-run-state"
        >
          {run.cancel_requested && running
            ? trans.__('cancelling…')
            : pipelineStateText(run.state)}
        </span>
        {!run.cache && (
          <span
            className="jp-Infinstor-badge"
            title={trans.__('Every step ran, cached results or not')}
          >
            {trans.__('no cache')}
          </span>
        )}
        <span className="jp-Infinstor-note">{duration}</span>
      </div>
      {run.error && (
        <div
          className="jp-Infinstor-error"
          role="alert"
          data-testid="pipeline-run-error"
        >
          {run.error}
        </div>
      )}
      <div className="jp-Infinstor-run-meta">
        {trans.__('MLflow:')}{' '}
        {run.mlflow_url ? (
          <a
            href={run.mlflow_url}
            target="_blank"
            rel="noopener noreferrer"
            data-testid="pipeline-run-mlflow"
          >
            {trans.__('parent run %1', run.mlflow_run_id)}
          </a>
        ) : (
          <code
            className="jp-Infinstor-mono"
            data-testid="pipeline-run-mlflow"
            title={trans.__(
              'MLflow parent run id (experiment %1)',
              run.mlflow_experiment_id ?? ''
            )}
          >
            {run.mlflow_run_id}
          </code>
        )}
      </div>
      <ul className="jp-Infinstor-pipelineSteps">
        {run.steps.map(step => (
          <StepRunItem
            key={step.step}
            step={step}
            definition={run.definition}
            actions={actions}
          />
        ))}
      </ul>
      {running && (
        <div className="jp-Infinstor-buttons">
          <button
            className="jp-mod-styled jp-mod-warn jp-Infinstor-smallButton"
            data-testid="cancel-pipeline-run"
            disabled={busy || run.cancel_requested}
            title={trans.__(
              'Stop every running step and skip the waiting ones'
            )}
            onClick={() => void cancel()}
          >
            {trans.__('Cancel')}
          </button>
        </div>
      )}
      {error && (
        <div className="jp-Infinstor-error" role="alert">
          {error}
        </div>
      )}
    </li>
  );
}

function RunControl(props: {
  pipeline: IPipelineSummary;
  pipelines: PipelinesModel;
  executors: IExecutors | null;
  actions: IPipelinesActions;
}) {
  const { pipeline, pipelines, executors, actions } = props;
  const [executor, setExecutor] = React.useState('');
  const [noCache, setNoCache] = React.useState(false);
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      const started = await pipelines.startRun(pipeline.name, {
        cache: !noCache,
        ...(executor ? { executor } : {})
      });
      actions.followRun(started);
    } catch (e) {
      setError(errorMessage(e));
    }
    setBusy(false);
  };
  return (
    <div className="jp-Infinstor-pipelineRunControl">
      <div className="jp-Infinstor-buttons">
        <label className="jp-Infinstor-check">
          {trans.__('Executor')}{' '}
          <select
            className="jp-mod-styled"
            name="run-executor"
            value={executor}
            onChange={e => setExecutor(e.target.value)}
          >
            <option value="">{trans.__("each step's own")}</option>
            {(executors?.executors ?? []).map(x => (
              <option
                key={x.name}
                value={x.name}
                disabled={!x.available}
                title={x.detail ?? ''}
              >
                {x.available ? x.name : trans.__('%1 (unavailable)', x.name)}
              </option>
            ))}
          </select>
        </label>
        <label
          className="jp-Infinstor-check"
          title={trans.__(
            'Run every step even when a finished run has the same code, kwargs, input and requirements'
          )}
        >
          <input
            type="checkbox"
            name="no-cache"
            checked={noCache}
            onChange={e => setNoCache(e.target.checked)}
          />{' '}
          {trans.__("Don't reuse cached results")}
        </label>
        <button
          className="jp-mod-styled jp-mod-accept jp-Infinstor-smallButton"
          data-testid="run-pipeline"
          disabled={busy}
          onClick={() => void run()}
        >
          {trans.__('Run')}
        </button>
      </div>
      {error && (
        <div
          className="jp-Infinstor-error"
          role="alert"
          data-testid="run-pipeline-error"
        >
          {error}
        </div>
      )}
    </div>
  );
}

function PipelineItem(props: {
  pipeline: IPipelineSummary;
  pipelines: PipelinesModel;
  transforms: TransformsModel;
  model: InfinstorModel;
  actions: IPipelinesActions;
  onEdit: () => void;
}) {
  const { pipeline, pipelines, transforms, model, actions } = props;
  const selected = pipelines.selected === pipeline.name;
  const last = pipeline.last_run;
  return (
    <li
      className={`jp-Infinstor-pipeline ${selected ? 'jp-mod-selected' : ''}`}
      data-pipeline={pipeline.name}
    >
      <div className="jp-Infinstor-run-head">
        <button
          className="jp-Infinstor-linkButton jp-Infinstor-run-name"
          aria-expanded={selected}
          title={trans.__('Show its runs')}
          onClick={() => void pipelines.select(selected ? null : pipeline.name)}
        >
          {selected ? '▾' : '▸'} {pipeline.name}
        </button>
        <span className="jp-Infinstor-badge">
          {trans._n(
            '%1 step',
            '%1 steps',
            pipeline.steps.length,
            pipeline.steps.length
          )}
        </span>
        {last && (
          <span
            className={`jp-Infinstor-badge ${STEP_STATE_CLASS[last.state] ?? ''}`}
            data-testid="pipeline-last-state"
            title={trans.__(
              'Latest run, %1',
              formatTime(last.created_ms, model.settings.timeDisplay)
            )}
          >
            {pipelineStateText(last.state)}
          </span>
        )}
      </div>
      {pipeline.description && (
        <div className="jp-Infinstor-run-meta">{pipeline.description}</div>
      )}
      <div className="jp-Infinstor-run-meta jp-Infinstor-mono">
        {describeGraph(pipeline)}
      </div>
      <RunControl
        pipeline={pipeline}
        pipelines={pipelines}
        executors={transforms.executors}
        actions={actions}
      />
      <div className="jp-Infinstor-buttons">
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          onClick={props.onEdit}
        >
          {trans.__('Edit…')}
        </button>
        <button
          className="jp-mod-styled jp-mod-warn jp-Infinstor-smallButton"
          onClick={() =>
            void deletePipelineWithConfirm(pipelines, pipeline.name)
          }
        >
          {trans.__('Delete')}
        </button>
      </div>
      {selected && (
        <div className="jp-Infinstor-pipelineRuns" data-testid="pipeline-runs">
          {pipelines.runsError && (
            <div className="jp-Infinstor-error" role="alert">
              {pipelines.runsError}
            </div>
          )}
          {pipelines.runs.length === 0 && !pipelines.runsError && (
            <div className="jp-Infinstor-note">{trans.__('No runs yet.')}</div>
          )}
          <ul className="jp-Infinstor-runList">
            {pipelines.runs.map(run => (
              <PipelineRunItem
                key={run.id}
                run={run}
                pipelines={pipelines}
                model={model}
                actions={actions}
              />
            ))}
          </ul>
        </div>
      )}
    </li>
  );
}

export function PipelinesView(props: {
  pipelines: PipelinesModel;
  transforms: TransformsModel;
  model: InfinstorModel;
  actions: IPipelinesActions;
}): JSX.Element {
  const { pipelines, transforms, model, actions } = props;
  const [editing, setEditing] = React.useState<{
    initial: IPipelineForm | null;
  } | null>(null);
  const edit = (initial: IPipelineForm | null) => {
    void transforms.refreshTransforms();
    void transforms.loadExecutors().catch(() => undefined);
    setEditing({ initial });
  };
  return (
    <div className="jp-Infinstor-pipelines" data-testid="pipelines">
      <div className="jp-Infinstor-buttons">
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          data-testid="new-pipeline"
          disabled={editing !== null}
          onClick={() => edit(null)}
        >
          {trans.__('New pipeline…')}
        </button>
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          onClick={() => void pipelines.refresh()}
        >
          {trans.__('Reload')}
        </button>
      </div>
      {editing && (
        <PipelineEditor
          key={editing.initial?.name ?? ''}
          pipelines={pipelines}
          transforms={transforms}
          model={model}
          initial={editing.initial}
          onDone={saved => {
            setEditing(null);
            if (saved) {
              void pipelines.select(saved);
            }
          }}
        />
      )}
      {pipelines.error && (
        <div className="jp-Infinstor-error" role="alert">
          {pipelines.error}
        </div>
      )}
      {pipelines.loaded &&
        pipelines.pipelines.length === 0 &&
        !pipelines.error && (
          <div className="jp-Infinstor-note">
            {trans.__(
              'No pipelines yet. A pipeline chains saved transforms: a step reads a view or other steps’ outputs. Define one with “New pipeline…”.'
            )}
          </div>
        )}
      <ul className="jp-Infinstor-pipelineList">
        {pipelines.pipelines.map(p => (
          <PipelineItem
            key={p.name}
            pipeline={p}
            pipelines={pipelines}
            transforms={transforms}
            model={model}
            actions={actions}
            onEdit={() => edit(formOf(p))}
          />
        ))}
      </ul>
    </div>
  );
}

/** The *Pipelines* panel's content. */
export class PipelinesContent extends ReactWidget {
  constructor(
    private readonly _pipelines: PipelinesModel,
    private readonly _transforms: TransformsModel,
    private readonly _model: InfinstorModel,
    private readonly _actions: IPipelinesActions
  ) {
    super();
    this.addClass('jp-Infinstor-runsTab');
    void this._pipelines.refresh();
    void this._transforms.refreshTransforms();
    void this._transforms.loadExecutors().catch(() => undefined);
  }

  render(): JSX.Element {
    return (
      <OnSignals
        signals={[
          this._pipelines.changed,
          this._transforms.changed,
          this._model.settingsChanged,
          this._model.labelsChanged,
          this._model.bucketsChanged
        ]}
      >
        {() => (
          <PipelinesView
            pipelines={this._pipelines}
            transforms={this._transforms}
            model={this._model}
            actions={this._actions}
          />
        )}
      </OnSignals>
    );
  }
}

/** The id of the one *Pipelines* main-area panel. */
export const PIPELINES_PANEL_ID = 'infinstor-pipelines';

export function createPipelinesWidget(
  pipelines: PipelinesModel,
  transforms: TransformsModel,
  model: InfinstorModel,
  actions: IPipelinesActions
): MainAreaWidget<PipelinesContent> {
  const widget = new MainAreaWidget({
    content: new PipelinesContent(pipelines, transforms, model, actions)
  });
  widget.id = PIPELINES_PANEL_ID;
  widget.addClass('jp-Infinstor-pipelinesPanel');
  widget.title.label = trans.__('Pipelines');
  widget.title.icon = fastForwardIcon;
  widget.title.caption = trans.__(
    'Pipelines of transforms: define, run (with the result cache), follow each step'
  );
  widget.title.closable = true;
  return widget;
}
