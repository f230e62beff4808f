/**
 * The "Run cell as transform…" form without its view: what the user typed,
 * client-side validation, and the `POST transforms` / `POST runs` bodies built
 * from it. The dialog (transforms/dialog.tsx) renders and submits this.
 */
import { trans } from '../i18n';
import {
  IExecutors,
  IRun,
  IRunCreate,
  IRunInput,
  ITransformCreate,
  IViewParams
} from '../api/types';

/** Which input the run reads. */
export type InputKind = 'view' | 'label' | 'snapshot' | 'mlflow' | 'none';

/** What the dialog's fields hold (text as typed). */
export interface IRunForm {
  /** A new transform (name typed) or a new revision of an existing one. */
  transformMode: 'new' | 'existing';
  /** Name of a new transform. */
  name: string;
  /** Name of the existing transform that gets a new revision. */
  existing: string;
  description: string;
  inputKind: InputKind;
  /** Label name (inputKind 'label'). */
  label: string;
  /** `s3://bucket/prefix/` or `bucket/prefix/` (inputKind 'snapshot'). */
  snapUri: string;
  snapKind: 'snapshot' | 'slice';
  /** Time spec of the snapshot or slice. */
  timeSpec: string;
  /** MLflow run id (inputKind 'mlflow'). */
  mlflowRunId: string;
  /** JSON text of the keyword arguments. */
  kwargs: string;
  executor: string;
  outputUri: string;
  /** pip requirements, one per line. */
  requirements: string;
  /** Name of a label to create over the output after success ('' for none). */
  labelOutput: string;
}

/** Errors of the form's fields, by field. */
export interface IFormErrors {
  name?: string;
  input?: string;
  kwargs?: string;
  executor?: string;
  outputUri?: string;
  requirements?: string;
  labelOutput?: string;
}

/** The sidebar's current view, as the dialog offers it as input. */
export interface IViewContext {
  bucket: string | null;
  prefix: string;
  /** Pinned to absolute times (`InfinstorModel.pinnedViewParams`). */
  params: IViewParams;
  /** "as of ..." for people. */
  display: string;
}

/** "Run again on another view": the same transform revision and settings. */
export interface IRerun {
  transform: string;
  revision: number;
  entryPoint: string | null;
  kwargs: { [key: string]: unknown };
  executor: string;
  /** The run's output root (without its `<run id>/`). */
  outputUri: string;
  requirements: string[];
}

export const EMPTY_FORM: IRunForm = {
  transformMode: 'new',
  name: '',
  existing: '',
  description: '',
  inputKind: 'none',
  label: '',
  snapUri: '',
  snapKind: 'snapshot',
  timeSpec: 'now',
  mlflowRunId: '',
  kwargs: '{}',
  executor: 'local',
  outputUri: '',
  requirements: '',
  labelOutput: ''
};

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Check a transform or label name as the server does; null when fine. */
export function nameError(
  name: string,
  what: 'transform' | 'label'
): string | null {
  if (!name) {
    return what === 'transform'
      ? trans.__('Give the transform a name.')
      : trans.__('Give the label a name.');
  }
  if (!NAME_RE.test(name)) {
    return trans.__(
      '“%1” is not a valid name: use 1–128 letters, digits, “-”, “_” and “.”, starting with a letter or digit.',
      name
    );
  }
  if (what === 'transform' && name === 'check') {
    return trans.__('“check” is reserved; pick another transform name.');
  }
  return null;
}

/**
 * Parse the keyword arguments: empty means none, else the text must be a JSON
 * object.
 */
export function parseKwargs(text: string): {
  value: { [key: string]: unknown } | null;
  error: string | null;
} {
  const trimmed = text.trim();
  if (!trimmed) {
    return { value: {}, error: null };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch (e) {
    return {
      value: null,
      error: trans.__(
        'Keyword arguments are not valid JSON (%1). Write an object such as {"size": 128}.',
        (e as Error).message
      )
    };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return {
      value: null,
      error: trans.__(
        'Keyword arguments must be a JSON object such as {"size": 128}, not %1.',
        Array.isArray(parsed) ? trans.__('a list') : JSON.stringify(parsed)
      )
    };
  }
  const bad = Object.keys(parsed).filter(
    k => !/^[\p{L}_][\p{L}\p{N}_]*$/u.test(k)
  );
  if (bad.length) {
    return {
      value: null,
      error: trans.__(
        'Keyword argument names must be Python identifiers: %1.',
        bad.map(k => JSON.stringify(k)).join(', ')
      )
    };
  }
  return { value: parsed as { [key: string]: unknown }, error: null };
}

/** pip requirements, one per line; blank lines and `#` comments dropped. */
export function parseRequirements(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map(line => line.replace(/(^|\s)#.*$/, '').trim())
    .filter(line => line.length > 0);
}

/**
 * `s3://bucket/prefix` (or `bucket/prefix` when `schemeOptional`) as bucket and
 * prefix; null when it is not one.
 */
export function parseS3Uri(
  text: string,
  schemeOptional = false
): { bucket: string; prefix: string } | null {
  let rest = text.trim();
  if (rest.toLowerCase().startsWith('s3://')) {
    rest = rest.slice(5);
  } else if (!schemeOptional) {
    return null;
  }
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1);
  if (!/^[a-z0-9][a-z0-9.-]{1,62}$/.test(bucket)) {
    return null;
  }
  return { bucket, prefix };
}

/** The output root of a run: its `output_uri` without the trailing `<run id>/`. */
export function outputRoot(run: Pick<IRun, 'id' | 'output_uri'>): string {
  const uri = run.output_uri;
  const tail = `${run.id}/`;
  return uri.endsWith(tail) ? uri.slice(0, uri.length - tail.length) : uri;
}

/** The transform the form names. */
export function transformName(form: IRunForm, rerun?: IRerun | null): string {
  if (rerun) {
    return rerun.transform;
  }
  return (form.transformMode === 'existing' ? form.existing : form.name).trim();
}

/** Validate the form; an empty object means it can be submitted. */
export function validateForm(
  form: IRunForm,
  context: {
    view: IViewContext;
    executors: IExecutors | null;
    rerun?: IRerun | null;
  }
): IFormErrors {
  const errors: IFormErrors = {};
  if (!context.rerun) {
    const name = transformName(form);
    if (form.transformMode === 'existing' && !name) {
      errors.name = trans.__('Pick the transform that gets a new revision.');
    } else {
      const e = nameError(name, 'transform');
      if (e) {
        errors.name = e;
      }
    }
  }

  switch (form.inputKind) {
    case 'view':
      if (!context.view.bucket) {
        errors.input = trans.__(
          'The sidebar shows no bucket: choose one there, or pick another input.'
        );
      }
      break;
    case 'label':
      if (!form.label.trim()) {
        errors.input = trans.__('Pick a label.');
      }
      break;
    case 'snapshot':
      if (!parseS3Uri(form.snapUri, true)) {
        errors.input = trans.__(
          'Type the bucket and folder as s3://BUCKET/PREFIX/ (or BUCKET/PREFIX/).'
        );
      } else if (form.snapKind === 'slice' && !form.timeSpec.trim()) {
        errors.input = trans.__(
          'A slice needs a time spec such as tm20261120100000-tm20261120110000.'
        );
      }
      break;
    case 'mlflow':
      if (!form.mlflowRunId.trim()) {
        errors.input = trans.__('Type the id of the MLflow run.');
      } else if (!/^[A-Za-z0-9_-]+$/.test(form.mlflowRunId.trim())) {
        errors.input = trans.__(
          'An MLflow run id is letters, digits, “-” and “_” (e.g. 8f2c...).'
        );
      }
      break;
    default:
      break;
  }

  const kwargs = parseKwargs(form.kwargs);
  if (kwargs.error) {
    errors.kwargs = kwargs.error;
  }

  const executors = context.executors?.executors ?? [];
  const executor = executors.find(e => e.name === form.executor);
  if (!form.executor) {
    errors.executor = trans.__('Choose where the transform runs.');
  } else if (executors.length && !executor) {
    errors.executor = trans.__(
      'This server has no “%1” executor.',
      form.executor
    );
  } else if (executor && !executor.available) {
    errors.executor = trans.__(
      '%1 is not available here: %2',
      executor.title,
      executor.detail ?? ''
    );
  }

  const output = form.outputUri.trim();
  if (!output) {
    if (!context.executors?.default_output_uri) {
      errors.outputUri = trans.__(
        'Say where the output goes: an S3 URI such as s3://my-bucket/outputs/.'
      );
    }
  } else if (!parseS3Uri(output)) {
    errors.outputUri = trans.__(
      '“%1” is not an S3 URI; write it as s3://BUCKET/PREFIX/.',
      output
    );
  }

  for (const req of parseRequirements(form.requirements)) {
    if (req.startsWith('-')) {
      errors.requirements = trans.__(
        '“%1” is not a pip requirement: give package specifiers such as pillow>=10, one per line (pip options are not accepted).',
        req
      );
      break;
    }
  }

  const labelOutput = form.labelOutput.trim();
  if (labelOutput) {
    const e = nameError(labelOutput, 'label');
    if (e) {
      errors.labelOutput = e;
    }
  }
  return errors;
}

/** Whether validation found nothing. */
export function isValid(errors: IFormErrors): boolean {
  return Object.values(errors).every(e => !e);
}

/** The `input` of `POST runs`. */
export function buildInput(form: IRunForm, view: IViewContext): IRunInput {
  switch (form.inputKind) {
    case 'view': {
      const input: IRunInput = {
        type: 'view',
        bucket: view.bucket ?? '',
        prefix: view.prefix
      };
      const p = view.params;
      if (p.slice) {
        input.slice = p.slice;
      } else if (p.at) {
        input.at = p.at;
      } else if (p.label) {
        input.at = `label:/${p.label}`;
      }
      return input;
    }
    case 'label':
      return { type: 'label', label: form.label.trim() };
    case 'snapshot': {
      const target = parseS3Uri(form.snapUri, true) ?? {
        bucket: '',
        prefix: ''
      };
      return {
        type: form.snapKind === 'slice' ? 'infinslice' : 'infinsnap',
        bucketname: target.bucket,
        prefix: target.prefix,
        time_spec: form.timeSpec.trim() || 'now'
      };
    }
    case 'mlflow':
      return { type: 'mlflow-run-artifacts', run_id: form.mlflowRunId.trim() };
    default:
      return { type: 'no-input-data' };
  }
}

/** The body of `POST transforms` (storing the cell as a revision). */
export function buildTransformRequest(
  form: IRunForm,
  source: string
): ITransformCreate {
  const body: ITransformCreate = { name: transformName(form), source };
  if (form.description.trim()) {
    body.description = form.description.trim();
  }
  return body;
}

/** The body of `POST runs` for a validated form. */
export function buildRunRequest(
  form: IRunForm,
  view: IViewContext,
  transform: string,
  revision: number
): IRunCreate {
  const body: IRunCreate = {
    transform,
    revision,
    input: buildInput(form, view),
    executor: form.executor
  };
  const output = form.outputUri.trim();
  if (output) {
    body.output_uri = output;
  }
  const kwargs = parseKwargs(form.kwargs).value;
  if (kwargs && Object.keys(kwargs).length) {
    body.kwargs = kwargs;
  }
  const requirements = parseRequirements(form.requirements);
  if (requirements.length) {
    body.requirements = requirements;
  }
  const label = form.labelOutput.trim();
  if (label) {
    body.label_output = label;
  }
  return body;
}

/** Describe a run's input for people (sidebar, dialog). */
export function describeInput(input: IRunInput | null | undefined): string {
  if (!input) {
    return trans.__('no input');
  }
  switch (input.type) {
    case 'view': {
      const when = input.slice ?? input.at ?? 'now';
      return `s3://${input.bucket}/${input.prefix} @ ${when}`;
    }
    case 'label':
      return trans.__('label %1', input.label);
    case 'infinsnap':
    case 'infinslice':
      return `s3://${input.bucketname}/${input.prefix} @ ${input.time_spec}`;
    case 'mlflow-run-artifacts':
      return trans.__('artifacts of MLflow run %1', input.run_id);
    default:
      return trans.__('no input');
  }
}

/** The form a "run again" dialog starts with. */
export function rerunForm(rerun: IRerun, base: IRunForm): IRunForm {
  return {
    ...base,
    transformMode: 'existing',
    existing: rerun.transform,
    kwargs: Object.keys(rerun.kwargs).length
      ? JSON.stringify(rerun.kwargs, null, 2)
      : '{}',
    executor: rerun.executor,
    outputUri: rerun.outputUri,
    requirements: rerun.requirements.join('\n'),
    labelOutput: ''
  };
}

/** The "run again" settings of a run. */
export function rerunOf(run: IRun, entryPoint: string | null = null): IRerun {
  return {
    transform: run.transform,
    revision: run.revision,
    entryPoint,
    kwargs: run.kwargs ?? {},
    executor: run.executor,
    outputUri: outputRoot(run),
    requirements: run.requirements ?? []
  };
}
