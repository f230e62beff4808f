/**
 * The *Pipelines* tab's editor as plain data: a form of steps (each a saved
 * transform, its input, kwargs, executor and output) turned into the
 * `PipelineDefinition` the server saves, and back. The server checks the rest
 * (transforms, cycles, executors) and answers with a sentence.
 */
import { trans } from '../i18n';
import {
  IPipeline,
  IPipelineDefinition,
  IPipelineStepDefinition,
  IPipelineStepInput
} from '../api/types';
import { parseKwargs } from '../transforms/runform';
import { upstreamSteps } from './model';

export type StepInputKind = 'view' | 'label' | 'steps';

/** One step as the editor holds it. */
export interface IStepForm {
  name: string;
  transform: string;
  inputKind: StepInputKind;
  /** view: a tracked bucket, a prefix and a time spec (at) or a slice spec. */
  bucket: string;
  prefix: string;
  at: string;
  /** label: its name. */
  label: string;
  /** steps: the steps whose outputs it reads. */
  steps: string[];
  /** JSON object text. */
  kwargs: string;
  executor: string;
  /** '' for the server's default. */
  outputUri: string;
}

/** The editor's content. */
export interface IPipelineForm {
  name: string;
  description: string;
  steps: IStepForm[];
}

export const PIPELINE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const STEP_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** A new step: named after its position, reading the given view. */
export function newStep(
  index: number,
  defaults: Partial<IStepForm> = {}
): IStepForm {
  return {
    name: `step${index + 1}`,
    transform: '',
    inputKind: 'view',
    bucket: '',
    prefix: '',
    at: 'now',
    label: '',
    steps: [],
    kwargs: '',
    executor: 'local',
    outputUri: '',
    ...defaults
  };
}

/** What is wrong with the form, per field (`steps.<i>.<field>`); {} when it can be sent. */
export function validatePipelineForm(form: IPipelineForm): {
  [field: string]: string;
} {
  const errors: { [field: string]: string } = {};
  if (!PIPELINE_NAME_RE.test(form.name)) {
    errors.name = trans.__(
      "Name the pipeline with 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit."
    );
  }
  if (!form.steps.length) {
    errors.steps = trans.__('Add a step.');
  }
  const names = new Set<string>();
  form.steps.forEach((step, i) => {
    const at = (field: string) => `steps.${i}.${field}`;
    if (!STEP_NAME_RE.test(step.name)) {
      errors[at('name')] = trans.__(
        "Name the step with 1-64 letters, digits, '_' or '-'."
      );
    } else if (names.has(step.name)) {
      errors[at('name')] = trans.__('Two steps are named %1.', step.name);
    }
    names.add(step.name);
    if (!step.transform) {
      errors[at('transform')] = trans.__('Pick a saved transform.');
    }
    if (step.inputKind === 'view' && !step.bucket) {
      errors[at('input')] = trans.__('Pick the bucket the step reads.');
    } else if (step.inputKind === 'label' && !step.label) {
      errors[at('input')] = trans.__('Pick the label the step reads.');
    } else if (step.inputKind === 'steps' && !step.steps.length) {
      errors[at('input')] = trans.__(
        'Tick the steps whose outputs this step reads.'
      );
    }
    const kwargs = parseKwargs(step.kwargs);
    if (kwargs.error) {
      errors[at('kwargs')] = kwargs.error;
    }
    if (step.outputUri.trim() && !/^s3:\/\/./i.test(step.outputUri.trim())) {
      errors[at('output')] = trans.__(
        'Write the output location as s3://BUCKET/PREFIX/ (a tracked bucket), or leave it empty.'
      );
    }
  });
  return errors;
}

function stepInput(step: IStepForm): IPipelineStepInput {
  switch (step.inputKind) {
    case 'label':
      return { type: 'label', label: step.label };
    case 'steps':
      return { type: 'step', steps: [...step.steps] };
    default: {
      const spec = step.at.trim() || 'now';
      // A slice (A/B or tmA-tmB) goes as `slice`, anything else as `at`.
      const isSlice = spec.includes('/') || /^tm\d+-tm\d+$/.test(spec);
      return isSlice
        ? {
            type: 'view',
            bucket: step.bucket,
            prefix: step.prefix,
            slice: spec
          }
        : { type: 'view', bucket: step.bucket, prefix: step.prefix, at: spec };
    }
  }
}

/** The body of `POST pipelines` (call `validatePipelineForm` first). */
export function buildPipeline(form: IPipelineForm): IPipelineDefinition {
  const steps: IPipelineStepDefinition[] = form.steps.map(step => {
    const out: IPipelineStepDefinition = {
      name: step.name,
      transform: step.transform,
      input: stepInput(step),
      kwargs: parseKwargs(step.kwargs).value ?? {},
      executor: step.executor || 'local'
    };
    if (step.outputUri.trim()) {
      out.output_uri = step.outputUri.trim();
    }
    return out;
  });
  const body: IPipelineDefinition = { name: form.name, steps };
  if (form.description.trim()) {
    body.description = form.description.trim();
  }
  return body;
}

/** The editor's content for a saved pipeline (Edit). */
export function formOf(pipeline: IPipeline): IPipelineForm {
  return {
    name: pipeline.name,
    description: pipeline.description,
    steps: pipeline.steps.map((step, i) => {
      const input = step.input as unknown as { [key: string]: unknown };
      const base = newStep(i, {
        name: step.name,
        transform: step.transform,
        kwargs: Object.keys(step.kwargs ?? {}).length
          ? JSON.stringify(step.kwargs)
          : '',
        executor: step.executor,
        outputUri: step.output_uri ?? ''
      });
      const ups = upstreamSteps(step.input);
      if (ups.length) {
        return { ...base, inputKind: 'steps', steps: ups };
      }
      if (input.type === 'label') {
        return { ...base, inputKind: 'label', label: String(input.label) };
      }
      return {
        ...base,
        inputKind: 'view',
        bucket: String(input.bucket ?? ''),
        prefix: String(input.prefix ?? ''),
        at: String(input.slice ?? input.at ?? 'now')
      };
    })
  };
}

/** A pipeline's shape in words: "a, b → c". */
export function describeGraph(pipeline: IPipeline): string {
  return pipeline.steps
    .map(step => {
      const ups = upstreamSteps(step.input);
      return ups.length ? `${ups.join(', ')} → ${step.name}` : step.name;
    })
    .join(' · ');
}
