/**
 * The "Run cell as transform…" dialog: capture a notebook cell as a transform
 * revision and run it over an input (the sidebar's view, a label, a snapshot or
 * slice, an MLflow run's artifacts, or nothing); also "run again on another
 * view" for a stored revision.
 *
 * The dialog stays open on errors (client-side validation and the server's
 * 4xx sentences are shown in it) and keeps what the user typed.
 */
import { Dialog, ReactWidget } from '@jupyterlab/apputils';
import { ISignal, Signal } from '@lumino/signaling';
import * as React from 'react';

import { trans } from '../i18n';
import {
  buildRunRequest,
  buildTransformRequest,
  EMPTY_FORM,
  IFormErrors,
  InputKind,
  IRerun,
  IRunForm,
  isValid,
  IViewContext,
  parseKwargs,
  parseS3Uri,
  rerunForm,
  transformName,
  validateForm
} from './runform';
import { IExecutors, ILabel, IRun, ITransformSummary } from '../api/types';
import { TransformsModel } from './model';
import { errorMessage } from '../errors';

/** The entry point check of the cell (`POST transforms/check`). */
export type CheckState =
  | { state: 'checking' }
  | { state: 'ok'; entryPoint: string; sha256: string }
  | { state: 'error'; message: string }
  | { state: 'none' };

/**
 * The dialog's body: holds the form, checks the cell when created, validates
 * and submits (`POST transforms` then `POST runs`).
 */
export class RunDialogBody
  extends ReactWidget
  implements Dialog.IBodyWidget<IRun | null>
{
  constructor(options: RunDialogBody.IOptions) {
    super();
    this.addClass('jp-Infinstor-dialog');
    this.addClass('jp-Infinstor-runDialog');
    this.transforms = options.transforms;
    this.view = options.view;
    this.labels = options.labels ?? [];
    this.trackedBuckets = options.trackedBuckets ?? [];
    this.executors = options.executors ?? null;
    this.existing = options.existing ?? [];
    this.source = options.source ?? '';
    this.rerun = options.rerun ?? null;

    let form: IRunForm = {
      ...EMPTY_FORM,
      inputKind: this.view.bucket ? 'view' : 'none',
      label: this.labels[0]?.name ?? '',
      snapUri: this.view.bucket
        ? `s3://${this.view.bucket}/${this.view.prefix}`
        : '',
      executor:
        this.executors?.default_executor ||
        this.executors?.executors.find(e => e.available)?.name ||
        'local',
      outputUri: this.executors?.default_output_uri ?? ''
    };
    if (this.rerun) {
      form = rerunForm(this.rerun, form);
    }
    this._form = { ...form, ...(options.initial ?? {}) };

    if (this.rerun) {
      this._check = this.rerun.entryPoint
        ? { state: 'ok', entryPoint: this.rerun.entryPoint, sha256: '' }
        : { state: 'none' };
      this.ready = Promise.resolve();
    } else {
      this._check = { state: 'checking' };
      this.ready = this._runCheck();
    }
  }

  readonly transforms: TransformsModel;
  readonly view: IViewContext;
  readonly labels: ReadonlyArray<ILabel>;
  readonly trackedBuckets: ReadonlyArray<string>;
  readonly executors: IExecutors | null;
  readonly existing: ReadonlyArray<ITransformSummary>;
  readonly source: string;
  readonly rerun: IRerun | null;
  /** Settles when the entry point check has answered. */
  readonly ready: Promise<void>;

  /** The form, the errors, the check or the busy state changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get form(): Readonly<IRunForm> {
    return this._form;
  }

  get errors(): Readonly<IFormErrors> {
    return this._errors;
  }

  /** The server's (or the network's) message of the last submit. */
  get serverError(): string | null {
    return this._serverError;
  }

  get check(): CheckState {
    return this._check;
  }

  /** A submit is in flight. */
  get busy(): boolean {
    return this._busy;
  }

  /** The run started (null until then). */
  get run(): IRun | null {
    return this._run;
  }

  getValue(): IRun | null {
    return this._run;
  }

  /** Change fields; keyword arguments are validated as they are typed. */
  setForm(patch: Partial<IRunForm>): void {
    this._form = { ...this._form, ...patch };
    const errors = { ...this._errors };
    for (const key of Object.keys(patch)) {
      switch (key) {
        case 'kwargs':
          errors.kwargs = parseKwargs(this._form.kwargs).error ?? undefined;
          break;
        case 'name':
        case 'existing':
        case 'transformMode':
          delete errors.name;
          break;
        case 'inputKind':
        case 'label':
        case 'snapUri':
        case 'snapKind':
        case 'timeSpec':
        case 'mlflowRunId':
          delete errors.input;
          break;
        default:
          delete errors[key as keyof IFormErrors];
      }
    }
    this._errors = errors;
    this._changed.emit();
  }

  /** Validate the form as it is (shows the errors). */
  validate(): IFormErrors {
    this._errors = validateForm(this._form, {
      view: this.view,
      executors: this.executors,
      rerun: this.rerun
    });
    this._changed.emit();
    return this._errors;
  }

  /**
   * Validate, store the cell as a revision (not when running again), start the
   * run. Resolves with the run, or null when something is wrong (shown in the
   * body, which keeps the form).
   */
  async submit(): Promise<IRun | null> {
    if (this._busy) {
      return null;
    }
    if (this._run) {
      return this._run;
    }
    this._serverError = null;
    if (!isValid(this.validate())) {
      return null;
    }
    this._busy = true;
    this._changed.emit();
    try {
      await this.ready;
      let revision: number;
      let name: string;
      if (this.rerun) {
        name = this.rerun.transform;
        revision = this.rerun.revision;
      } else {
        if (this._check.state === 'error') {
          throw new Error(this._check.message);
        }
        const rev = await this.transforms.saveTransform(
          buildTransformRequest(this._form, this.source)
        );
        name = rev.name;
        revision = rev.revision;
        this._savedRevision = rev.revision;
      }
      this._run = await this.transforms.startRun(
        buildRunRequest(this._form, this.view, name, revision)
      );
      return this._run;
    } catch (error) {
      this._serverError = errorMessage(error);
      this._errorCount++;
      return null;
    } finally {
      this._busy = false;
      this._changed.emit();
    }
  }

  /** The revision the last submit stored (null before). */
  get savedRevision(): number | null {
    return this._savedRevision;
  }

  /** Increments with every server error (the view scrolls to it). */
  get errorCount(): number {
    return this._errorCount;
  }

  render(): JSX.Element {
    return <RunFormView body={this} />;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    super.dispose();
    Signal.clearData(this);
  }

  private async _runCheck(): Promise<void> {
    try {
      const checked = await this.transforms.client.checkTransform(this.source);
      this._check = {
        state: 'ok',
        entryPoint: checked.entry_point,
        sha256: checked.sha256
      };
      // The same code as a stored transform: offer it as that transform.
      const same = this.existing.find(t => t.latest.sha256 === checked.sha256);
      if (
        same &&
        this._form.transformMode === 'new' &&
        !this._form.name.trim()
      ) {
        this._form = {
          ...this._form,
          transformMode: 'existing',
          existing: same.name
        };
      }
    } catch (error) {
      this._check = { state: 'error', message: errorMessage(error) };
    }
    if (!this.isDisposed) {
      this._changed.emit();
    }
  }

  private _form: IRunForm;
  private _errors: IFormErrors = {};
  private _serverError: string | null = null;
  private _errorCount = 0;
  private _check: CheckState;
  private _busy = false;
  private _run: IRun | null = null;
  private _savedRevision: number | null = null;
  private _changed = new Signal<this, void>(this);
}

export namespace RunDialogBody {
  export interface IOptions {
    transforms: TransformsModel;
    /** The sidebar's current view. */
    view: IViewContext;
    labels?: ReadonlyArray<ILabel>;
    /** Buckets in the index (the output shows in the browser only there). */
    trackedBuckets?: ReadonlyArray<string>;
    executors?: IExecutors | null;
    /** Stored transforms (a name to make a new revision of). */
    existing?: ReadonlyArray<ITransformSummary>;
    /** The cell's source (capture). */
    source?: string;
    /** Run a stored revision again instead of capturing a cell. */
    rerun?: IRerun | null;
    /** Fields to start with. */
    initial?: Partial<IRunForm>;
  }
}

function FieldError(props: { error?: string; testId: string }) {
  if (!props.error) {
    return null;
  }
  return (
    <div
      className="jp-Infinstor-fieldError"
      role="alert"
      data-testid={props.testId}
    >
      {props.error}
    </div>
  );
}

function InputChoice(props: {
  body: RunDialogBody;
  kind: InputKind;
  title: string;
  disabled?: boolean;
  children?: React.ReactNode;
}) {
  const { body, kind } = props;
  const checked = body.form.inputKind === kind;
  return (
    <div className="jp-Infinstor-choice">
      <label className="jp-Infinstor-radio">
        <input
          type="radio"
          name="input-kind"
          value={kind}
          checked={checked}
          disabled={props.disabled}
          onChange={() => body.setForm({ inputKind: kind })}
        />
        <span className="jp-Infinstor-radioText">{props.title}</span>
      </label>
      {checked && props.children && (
        <div className="jp-Infinstor-choiceBody">{props.children}</div>
      )}
    </div>
  );
}

function EntryPoint(props: { body: RunDialogBody }) {
  const check = props.body.check;
  switch (check.state) {
    case 'checking':
      return (
        <div
          className="jp-Infinstor-note"
          data-testid="entry-point"
          data-state="checking"
        >
          {trans.__('Checking the cell…')}
        </div>
      );
    case 'error':
      return (
        <div
          className="jp-Infinstor-error"
          role="alert"
          data-testid="entry-point"
          data-state="error"
        >
          {check.message}
          <div className="jp-Infinstor-note">
            {trans.__('Fix the cell, then open this dialog again.')}
          </div>
        </div>
      );
    case 'ok':
      return (
        <div data-testid="entry-point" data-state="ok">
          {trans.__('Entry point:')}{' '}
          <code className="jp-Infinstor-mono">{check.entryPoint}</code>
          {check.entryPoint === 'script' && (
            <span className="jp-Infinstor-note">
              {' '}
              {trans.__(
                '(no infin_transform_* function: the cell runs as a script with INPUT_DIR and OUTPUT_DIR set)'
              )}
            </span>
          )}
        </div>
      );
    default:
      return null;
  }
}

/** The form itself; re-renders on every change of the body. */
function RunFormView(props: { body: RunDialogBody }): JSX.Element {
  const { body } = props;
  const [, setTick] = React.useState(0);
  React.useEffect(() => {
    const onChange = () => setTick(t => t + 1);
    body.changed.connect(onChange);
    return () => {
      body.changed.disconnect(onChange);
    };
  }, [body]);

  const form = body.form;
  const errors = body.errors;
  const set = (patch: Partial<IRunForm>) => body.setForm(patch);
  const view = body.view;
  const rerun = body.rerun;
  const executors = body.executors?.executors ?? [];
  const output = parseS3Uri(form.outputUri);
  const outputUntracked =
    output !== null && !body.trackedBuckets.includes(output.bucket);
  const existingName = transformName(form, rerun);
  const sameCode =
    !rerun &&
    form.transformMode === 'existing' &&
    body.check.state === 'ok' &&
    body.existing.find(t => t.name === existingName)?.latest.sha256 ===
      body.check.sha256;

  return (
    <form
      className="jp-Infinstor-runForm"
      data-testid="run-form"
      data-busy={body.busy ? 'true' : 'false'}
      onSubmit={e => e.preventDefault()}
    >
      <fieldset disabled={body.busy}>
        <legend>{trans.__('Transform')}</legend>
        {rerun ? (
          <div data-testid="rerun-transform">
            <b>{rerun.transform}</b>{' '}
            <span className="jp-Infinstor-badge">
              {trans.__('r%1', rerun.revision)}
            </span>{' '}
            <span className="jp-Infinstor-note">
              {trans.__('the same revision runs again; no new revision.')}
            </span>
          </div>
        ) : (
          <>
            <label>
              {trans.__('Store as')}
              <select
                className="jp-mod-styled"
                name="transform-existing"
                value={form.transformMode === 'existing' ? form.existing : ''}
                onChange={e => {
                  const value = e.currentTarget.value;
                  set(
                    value
                      ? { transformMode: 'existing', existing: value }
                      : { transformMode: 'new', existing: '' }
                  );
                }}
              >
                <option value="">{trans.__('A new transform')}</option>
                {body.existing.map(t => (
                  <option key={t.name} value={t.name}>
                    {trans.__(
                      'New revision of %1 (latest r%2)',
                      t.name,
                      t.latest.revision
                    )}
                  </option>
                ))}
              </select>
            </label>
            {form.transformMode === 'new' && (
              <label>
                {trans.__('Name')}
                <input
                  className="jp-mod-styled"
                  name="transform-name"
                  value={form.name}
                  placeholder={trans.__('e.g. thumbnails')}
                  onChange={e => set({ name: e.currentTarget.value })}
                />
              </label>
            )}
            {sameCode && (
              <div className="jp-Infinstor-note" data-testid="same-code">
                {trans.__(
                  'The cell is the same code as the latest revision of %1: no new revision is stored.',
                  existingName
                )}
              </div>
            )}
            <FieldError error={errors.name} testId="name-error" />
            <label>
              {trans.__('Description (optional)')}
              <input
                className="jp-mod-styled"
                name="transform-description"
                value={form.description}
                onChange={e => set({ description: e.currentTarget.value })}
              />
            </label>
          </>
        )}
        <EntryPoint body={body} />
      </fieldset>

      <fieldset disabled={body.busy}>
        <legend>{trans.__('Input')}</legend>
        <InputChoice
          body={body}
          kind="view"
          disabled={!view.bucket}
          title={
            view.bucket
              ? trans.__(
                  'The sidebar’s view: s3://%1/%2 %3',
                  view.bucket,
                  view.prefix,
                  view.display
                )
              : trans.__('The sidebar’s view (choose a bucket there first)')
          }
        />
        <InputChoice body={body} kind="label" title={trans.__('A label')}>
          {body.labels.length ? (
            <select
              className="jp-mod-styled"
              name="input-label"
              value={form.label}
              onChange={e => set({ label: e.currentTarget.value })}
            >
              {!form.label && (
                <option value="">{trans.__('Choose a label…')}</option>
              )}
              {body.labels.map(l => (
                <option key={l.name} value={l.name}>
                  {`${l.name} — s3://${l.bucket}/${l.prefix} @ ${l.spec}`}
                </option>
              ))}
            </select>
          ) : (
            <div className="jp-Infinstor-note">
              {trans.__(
                'No labels yet: name a view in the sidebar’s Labels section.'
              )}
            </div>
          )}
        </InputChoice>
        <InputChoice
          body={body}
          kind="snapshot"
          title={trans.__('A snapshot or slice of a bucket')}
        >
          <input
            className="jp-mod-styled"
            name="input-uri"
            value={form.snapUri}
            placeholder={trans.__('s3://bucket/prefix/')}
            onChange={e => set({ snapUri: e.currentTarget.value })}
          />
          <div className="jp-Infinstor-inline">
            <select
              className="jp-mod-styled"
              name="input-snap-kind"
              value={form.snapKind}
              onChange={e =>
                set({
                  snapKind:
                    e.currentTarget.value === 'slice' ? 'slice' : 'snapshot'
                })
              }
            >
              <option value="snapshot">{trans.__('snapshot at')}</option>
              <option value="slice">{trans.__('slice')}</option>
            </select>
            <input
              className="jp-mod-styled"
              name="input-time-spec"
              value={form.timeSpec}
              placeholder={
                form.snapKind === 'slice'
                  ? trans.__('tm20261120100000-tm20261120110000')
                  : trans.__('tm20261120100000, now')
              }
              onChange={e => set({ timeSpec: e.currentTarget.value })}
            />
          </div>
        </InputChoice>
        <InputChoice
          body={body}
          kind="mlflow"
          title={trans.__('The artifacts of an MLflow run')}
        >
          <input
            className="jp-mod-styled"
            name="input-mlflow-run"
            value={form.mlflowRunId}
            placeholder={trans.__('MLflow run id')}
            onChange={e => set({ mlflowRunId: e.currentTarget.value })}
          />
        </InputChoice>
        <InputChoice body={body} kind="none" title={trans.__('No input')} />
        <FieldError error={errors.input} testId="input-error" />
      </fieldset>

      <fieldset disabled={body.busy}>
        <legend>{trans.__('Run')}</legend>
        <label>
          {trans.__('Keyword arguments (JSON object)')}
          <textarea
            className="jp-mod-styled jp-Infinstor-mono"
            name="kwargs"
            rows={3}
            value={form.kwargs}
            spellCheck={false}
            onChange={e => set({ kwargs: e.currentTarget.value })}
          />
        </label>
        <FieldError error={errors.kwargs} testId="kwargs-error" />

        <div className="jp-Infinstor-fieldLabel">{trans.__('Run on')}</div>
        <div className="jp-Infinstor-executors" role="radiogroup">
          {executors.length === 0 && (
            <div className="jp-Infinstor-note">
              {trans.__('The server did not say where runs can go.')}
            </div>
          )}
          {executors.map(ex => (
            <label
              key={ex.name}
              className={`jp-Infinstor-radio ${ex.available ? '' : 'jp-mod-disabled'}`}
              title={ex.detail ?? ''}
            >
              <input
                type="radio"
                name="executor"
                value={ex.name}
                checked={form.executor === ex.name}
                disabled={!ex.available}
                onChange={() => set({ executor: ex.name })}
              />
              <span className="jp-Infinstor-radioText">{ex.title}</span>
              {ex.detail && (
                <span className="jp-Infinstor-executorDetail">
                  {ex.available
                    ? ex.detail
                    : trans.__('unavailable: %1', ex.detail)}
                </span>
              )}
            </label>
          ))}
        </div>
        <FieldError error={errors.executor} testId="executor-error" />

        <label>
          {trans.__('Output location')}
          <input
            className="jp-mod-styled"
            name="output-uri"
            value={form.outputUri}
            placeholder={trans.__('s3://bucket/outputs/')}
            onChange={e => set({ outputUri: e.currentTarget.value })}
          />
        </label>
        <div className="jp-Infinstor-note">
          {trans.__('Each run writes under <output>/<run id>/.')}
          {outputUntracked &&
            ' ' +
              trans.__(
                'Bucket %1 is not tracked: the output will not show in the sidebar browser.',
                output?.bucket ?? ''
              )}
        </div>
        <FieldError error={errors.outputUri} testId="output-error" />

        <label>
          {trans.__('Extra pip requirements (one per line)')}
          <textarea
            className="jp-mod-styled jp-Infinstor-mono"
            name="requirements"
            rows={2}
            value={form.requirements}
            spellCheck={false}
            placeholder={trans.__('pillow>=10')}
            onChange={e => set({ requirements: e.currentTarget.value })}
          />
        </label>
        <FieldError error={errors.requirements} testId="requirements-error" />

        <label>
          {trans.__('Label the output (optional label name)')}
          <input
            className="jp-mod-styled"
            name="label-output"
            value={form.labelOutput}
            placeholder={trans.__('e.g. thumbnails-2026-11')}
            onChange={e => set({ labelOutput: e.currentTarget.value })}
          />
        </label>
        <FieldError error={errors.labelOutput} testId="label-output-error" />
      </fieldset>

      {body.busy && (
        <div className="jp-Infinstor-note" data-testid="run-busy">
          {rerun
            ? trans.__('Starting the run…')
            : trans.__('Storing the transform and starting the run…')}
        </div>
      )}
      {body.serverError && (
        <div
          key={body.errorCount}
          className="jp-Infinstor-error"
          role="alert"
          data-testid="run-error"
          ref={node => {
            if (node && typeof node.scrollIntoView === 'function') {
              node.scrollIntoView({ block: 'nearest' });
            }
          }}
        >
          {body.serverError}
        </div>
      )}
    </form>
  );
}

/**
 * A dialog whose accept button submits the body and closes only once the run
 * has started.
 */
class RunDialog extends Dialog<IRun | null> {
  constructor(
    body: RunDialogBody,
    title: string,
    private readonly _buttonList: ReadonlyArray<Dialog.IButton>
  ) {
    super({
      title,
      body,
      buttons: _buttonList,
      defaultButton: _buttonList.length - 1,
      focusNodeSelector: 'input[name="transform-name"], input, select'
    });
    this._runBody = body;
    this.addClass('jp-Infinstor-runDialogHost');
  }

  resolve(index?: number): void {
    const i = index ?? this._buttonList.length - 1;
    const button = this._buttonList[i];
    if (!button?.accept || this._runBody.run) {
      super.resolve(i);
      return;
    }
    if (this._runBody.busy) {
      return;
    }
    const accept = this.node.querySelector<HTMLButtonElement>(
      '.jp-Dialog-footer .jp-mod-accept'
    );
    if (accept) {
      accept.disabled = true;
    }
    void this._runBody.submit().then(run => {
      if (accept) {
        accept.disabled = false;
      }
      if (run && !this.isDisposed) {
        super.resolve(i);
      }
    });
  }

  private _runBody: RunDialogBody;
}

/**
 * Show the dialog; resolves with the started run, or null when cancelled.
 */
export async function showRunDialog(
  options: RunDialogBody.IOptions
): Promise<IRun | null> {
  const body = new RunDialogBody(options);
  const title = options.rerun
    ? trans.__(
        'Run %1 r%2 again',
        options.rerun.transform,
        options.rerun.revision
      )
    : trans.__('Run cell as transform');
  const dialog = new RunDialog(body, title, [
    Dialog.cancelButton(),
    Dialog.okButton({ label: trans.__('Run') })
  ]);
  const result = await dialog.launch();
  return result.button.accept ? (result.value ?? body.run) : null;
}
