import { ServerConnection } from '@jupyterlab/services';

import { InfinstorClient } from '../api/client';
import {
  buildInput,
  buildRunRequest,
  buildTransformRequest,
  EMPTY_FORM,
  IRunForm,
  isValid,
  IViewContext,
  outputRoot,
  parseKwargs,
  parseRequirements,
  parseS3Uri,
  rerunForm,
  rerunOf,
  validateForm
} from '../transforms/runform';
import { IExecutors, IRun, ITransformRevision } from '../api/types';
import { RunDialogBody } from '../transforms/dialog';
import { TransformsModel } from '../transforms/model';

const T = Date.UTC(2026, 10, 20, 10, 0, 0);

const EXECUTORS: IExecutors = {
  executors: [
    { name: 'local', title: 'Local', available: true, detail: null },
    { name: 'spark', title: 'Spark', available: true, detail: 'local[*]' },
    {
      name: 'emr',
      title: 'Amazon EMR',
      available: false,
      detail: 'no cluster configured (EmrExecutor.cluster_id)'
    }
  ],
  default_executor: 'local',
  default_output_uri: 's3://out-bucket/transform-out/',
  mlflow_ui_url: '',
  tracking: { available: true, store: 'sqlite:///.../mlflow.db', detail: null }
};

const VIEW: IViewContext = {
  bucket: 'demo',
  prefix: 'flowers/',
  params: { at: 'tm20261120100000' },
  display: 'as of 2026-11-20 10:00:00 UTC'
};

const NO_VIEW: IViewContext = {
  bucket: null,
  prefix: '',
  params: {},
  display: 'now'
};

function form(patch: Partial<IRunForm> = {}): IRunForm {
  return {
    ...EMPTY_FORM,
    name: 'thumbs',
    inputKind: 'view',
    outputUri: 's3://out-bucket/transform-out/',
    ...patch
  };
}

function rev(revision = 1, sha = 'a'.repeat(64)): ITransformRevision {
  return {
    name: 'thumbs',
    revision,
    sha256: sha,
    entry_point: 'infin_transform_one_object',
    author: 'me',
    description: '',
    created_ms: T
  };
}

function run(
  id: string,
  state: IRun['state'],
  patch: Partial<IRun> = {}
): IRun {
  return {
    id,
    transform: 'thumbs',
    revision: 1,
    executor: 'local',
    input_spec: { type: 'label', label: 'flowers-v1' },
    output_uri: `s3://out-bucket/transform-out/${id}/`,
    kwargs: {},
    requirements: [],
    state,
    created_ms: T,
    finished_ms: null,
    done: 0,
    total: 3,
    manifest_fingerprint: null,
    mlflow_run_id: id,
    mlflow_experiment_id: '1',
    mlflow_url: null,
    error: null,
    details: {},
    label_output: null,
    output_label: null,
    label_error: null,
    ...patch
  };
}

class HttpError extends Error {}

/** A stand-in for the REST client: each transform method is a jest mock. */
function fakeClient(runs: () => IRun[] | Promise<IRun[]> = () => []) {
  const fake = {
    executors: jest.fn(async () => EXECUTORS),
    listTransforms: jest.fn(async () => ({ transforms: [] })),
    checkTransform: jest.fn(async (source: string) => ({
      code: source,
      sha256: 'b'.repeat(64),
      entry_point: 'infin_transform_one_object'
    })),
    createTransform: jest.fn(async () => rev(2)),
    createRun: jest.fn(async () => run('r-new', 'queued')),
    listRuns: jest.fn(async () => ({ runs: await runs() })),
    cancelRun: jest.fn(async (id: string) => run(id, 'running')),
    runLog: jest.fn(async () => ({ log: 'line 1\nline 2\n' })),
    deleteTransform: jest.fn(async () => undefined)
  };
  return { fake, client: fake as unknown as InfinstorClient };
}

const tick = (ms = 0) => new Promise(resolve => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeout = 2000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeout) {
      throw new Error('timed out');
    }
    await tick(5);
  }
}

// -- the form ------------------------------------------------------------------------------

describe('run form parsing', () => {
  it('accepts a JSON object (or nothing) as keyword arguments', () => {
    expect(parseKwargs('')).toEqual({ value: {}, error: null });
    expect(parseKwargs('  {"size": 128, "mode": "RGB"} ')).toEqual({
      value: { size: 128, mode: 'RGB' },
      error: null
    });
  });

  it('refuses bad JSON, lists, scalars and non-identifier names', () => {
    expect(parseKwargs('{size: 1}').error).toMatch(/not valid JSON/);
    expect(parseKwargs('[1, 2]').error).toMatch(/JSON object.*a list/);
    expect(parseKwargs('3').error).toMatch(/JSON object.*not 3/);
    expect(parseKwargs('null').error).toMatch(/JSON object/);
    expect(parseKwargs('{"a-b": 1}').error).toMatch(/identifiers: "a-b"/);
    expect(parseKwargs('{"größe": 1, "_x2": 2}').error).toBeNull();
  });

  it('reads requirements one per line, without blanks and comments', () => {
    expect(
      parseRequirements(
        'pillow>=10\n\n# a comment\n  pandas  # inline\r\nnumpy'
      )
    ).toEqual(['pillow>=10', 'pandas', 'numpy']);
  });

  it('parses S3 URIs, with the scheme optional where asked', () => {
    expect(parseS3Uri('s3://my-bucket/a/b/')).toEqual({
      bucket: 'my-bucket',
      prefix: 'a/b/'
    });
    expect(parseS3Uri('s3://my-bucket')).toEqual({
      bucket: 'my-bucket',
      prefix: ''
    });
    expect(parseS3Uri('my-bucket/a/')).toBeNull();
    expect(parseS3Uri('my-bucket/a/', true)).toEqual({
      bucket: 'my-bucket',
      prefix: 'a/'
    });
    expect(parseS3Uri('s3://Bad_Bucket/x')).toBeNull();
    expect(parseS3Uri('https://x/y')).toBeNull();
  });

  it('strips the run id from an output URI', () => {
    expect(outputRoot(run('abc', 'succeeded'))).toBe(
      's3://out-bucket/transform-out/'
    );
    expect(outputRoot({ id: 'abc', output_uri: 's3://b/elsewhere/' })).toBe(
      's3://b/elsewhere/'
    );
  });
});

describe('run form validation', () => {
  const ctx = { view: VIEW, executors: EXECUTORS };

  it('passes a complete form', () => {
    expect(validateForm(form(), ctx)).toEqual({});
    expect(isValid(validateForm(form(), ctx))).toBe(true);
  });

  it('checks the transform name as the server does', () => {
    expect(validateForm(form({ name: '' }), ctx).name).toMatch(/name/);
    expect(validateForm(form({ name: '-x' }), ctx).name).toMatch(
      /not a valid name/
    );
    expect(validateForm(form({ name: 'a b' }), ctx).name).toMatch(
      /not a valid name/
    );
    expect(validateForm(form({ name: 'check' }), ctx).name).toMatch(/reserved/);
    expect(
      validateForm(form({ name: 'x'.repeat(129) }), ctx).name
    ).toBeTruthy();
    expect(
      validateForm(form({ transformMode: 'existing', existing: '' }), ctx).name
    ).toMatch(/Pick the transform/);
    expect(
      validateForm(
        form({ name: '', transformMode: 'existing', existing: 'thumbs' }),
        ctx
      ).name
    ).toBeUndefined();
  });

  it('needs the fields of the chosen input', () => {
    expect(validateForm(form(), { ...ctx, view: NO_VIEW }).input).toMatch(
      /no bucket/
    );
    expect(
      validateForm(form({ inputKind: 'label', label: '' }), ctx).input
    ).toMatch(/Pick a label/);
    expect(
      validateForm(form({ inputKind: 'snapshot', snapUri: 'not a uri' }), ctx)
        .input
    ).toMatch(/s3:\/\/BUCKET/);
    expect(
      validateForm(
        form({
          inputKind: 'snapshot',
          snapUri: 'demo/flowers/',
          snapKind: 'slice',
          timeSpec: ' '
        }),
        ctx
      ).input
    ).toMatch(/slice needs a time spec/);
    expect(
      validateForm(form({ inputKind: 'mlflow', mlflowRunId: '' }), ctx).input
    ).toMatch(/MLflow run/);
    expect(
      validateForm(form({ inputKind: 'mlflow', mlflowRunId: 'a b' }), ctx).input
    ).toMatch(/letters, digits/);
    expect(validateForm(form({ inputKind: 'none' }), ctx)).toEqual({});
  });

  it('refuses bad kwargs, unavailable executors, bad outputs and labels', () => {
    const errors = validateForm(
      form({
        kwargs: '[1]',
        executor: 'emr',
        outputUri: 'out-bucket/x/',
        requirements: 'pillow\n-r other.txt',
        labelOutput: 'bad label'
      }),
      ctx
    );
    expect(errors.kwargs).toMatch(/JSON object/);
    expect(errors.executor).toMatch(
      /Amazon EMR is not available here: no cluster/
    );
    expect(errors.outputUri).toMatch(/not an S3 URI/);
    expect(errors.requirements).toMatch(/-r other.txt/);
    expect(errors.labelOutput).toMatch(/not a valid name/);
    expect(validateForm(form({ executor: 'ray' }), ctx).executor).toMatch(
      /no “ray” executor/
    );
  });

  it('lets the output be empty only when the server has a default', () => {
    expect(
      validateForm(form({ outputUri: '' }), ctx).outputUri
    ).toBeUndefined();
    expect(
      validateForm(form({ outputUri: '' }), {
        ...ctx,
        executors: { ...EXECUTORS, default_output_uri: '' }
      }).outputUri
    ).toMatch(/Say where the output goes/);
  });

  it('does not ask for a name when running a revision again', () => {
    const rerun = rerunOf(run('r1', 'succeeded'));
    expect(validateForm(form({ name: '' }), { ...ctx, rerun })).toEqual({});
  });
});

describe('run requests', () => {
  it('sends the sidebar view pinned to its time (or slice, or label)', () => {
    expect(buildInput(form(), VIEW)).toEqual({
      type: 'view',
      bucket: 'demo',
      prefix: 'flowers/',
      at: 'tm20261120100000'
    });
    expect(
      buildInput(form(), { ...VIEW, params: { slice: 'tmA-tmB' } })
    ).toEqual({
      type: 'view',
      bucket: 'demo',
      prefix: 'flowers/',
      slice: 'tmA-tmB'
    });
    expect(
      buildInput(form(), { ...VIEW, params: { label: 'flowers-v1' } })
    ).toEqual({
      type: 'view',
      bucket: 'demo',
      prefix: 'flowers/',
      at: 'label:/flowers-v1'
    });
  });

  it('sends labels, snapshots, slices, MLflow runs and no input', () => {
    expect(
      buildInput(form({ inputKind: 'label', label: ' l1 ' }), VIEW)
    ).toEqual({ type: 'label', label: 'l1' });
    expect(
      buildInput(
        form({
          inputKind: 'snapshot',
          snapUri: 's3://demo/tables/',
          timeSpec: ''
        }),
        VIEW
      )
    ).toEqual({
      type: 'infinsnap',
      bucketname: 'demo',
      prefix: 'tables/',
      time_spec: 'now'
    });
    expect(
      buildInput(
        form({
          inputKind: 'snapshot',
          snapUri: 'demo',
          snapKind: 'slice',
          timeSpec: 'tmA-tmB'
        }),
        VIEW
      )
    ).toEqual({
      type: 'infinslice',
      bucketname: 'demo',
      prefix: '',
      time_spec: 'tmA-tmB'
    });
    expect(
      buildInput(form({ inputKind: 'mlflow', mlflowRunId: ' abc ' }), VIEW)
    ).toEqual({ type: 'mlflow-run-artifacts', run_id: 'abc' });
    expect(buildInput(form({ inputKind: 'none' }), VIEW)).toEqual({
      type: 'no-input-data'
    });
  });

  it('builds POST transforms and POST runs bodies', () => {
    const f = form({
      description: '  thumbnails  ',
      kwargs: '{"size": 64}',
      executor: 'spark',
      requirements: 'pillow>=10\n',
      labelOutput: 'thumbs-out'
    });
    expect(buildTransformRequest(f, 'code')).toEqual({
      name: 'thumbs',
      source: 'code',
      description: 'thumbnails'
    });
    expect(buildTransformRequest(form(), 'code')).toEqual({
      name: 'thumbs',
      source: 'code'
    });
    expect(buildRunRequest(f, VIEW, 'thumbs', 3)).toEqual({
      transform: 'thumbs',
      revision: 3,
      input: {
        type: 'view',
        bucket: 'demo',
        prefix: 'flowers/',
        at: 'tm20261120100000'
      },
      executor: 'spark',
      output_uri: 's3://out-bucket/transform-out/',
      kwargs: { size: 64 },
      requirements: ['pillow>=10'],
      label_output: 'thumbs-out'
    });
    // Optional fields are left out when empty.
    expect(
      buildRunRequest(form({ outputUri: ' ', inputKind: 'none' }), VIEW, 't', 1)
    ).toEqual({
      transform: 't',
      revision: 1,
      input: { type: 'no-input-data' },
      executor: 'local'
    });
  });

  it('prefills "run again" with the run’s settings', () => {
    const r = run('r1', 'succeeded', {
      revision: 4,
      kwargs: { size: 64 },
      executor: 'spark',
      requirements: ['pillow'],
      label_output: 'old'
    });
    const again = rerunForm(
      rerunOf(r, 'infin_transform_one_object'),
      EMPTY_FORM
    );
    expect(again.transformMode).toBe('existing');
    expect(again.existing).toBe('thumbs');
    expect(JSON.parse(again.kwargs)).toEqual({ size: 64 });
    expect(again.executor).toBe('spark');
    expect(again.outputUri).toBe('s3://out-bucket/transform-out/');
    expect(again.requirements).toBe('pillow');
    expect(again.labelOutput).toBe('');
  });
});

// -- the dialog body -----------------------------------------------------------------------

describe('RunDialogBody', () => {
  function body(
    client: InfinstorClient,
    options: Partial<RunDialogBody.IOptions> = {}
  ) {
    const transforms = new TransformsModel({ client, interval: 10 });
    return new RunDialogBody({
      transforms,
      view: VIEW,
      executors: EXECUTORS,
      labels: [],
      trackedBuckets: ['demo', 'out-bucket'],
      source:
        'def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):\n    pass\n',
      ...options
    });
  }

  it('checks the cell as it opens and shows its entry point', async () => {
    const { client, fake } = fakeClient();
    const b = body(client);
    expect(b.check.state).toBe('checking');
    await b.ready;
    expect(fake.checkTransform).toHaveBeenCalledWith(
      expect.stringContaining('infin_transform_one_object')
    );
    expect(b.check).toEqual({
      state: 'ok',
      entryPoint: 'infin_transform_one_object',
      sha256: 'b'.repeat(64)
    });
    // Defaults: the sidebar's view, the default executor and output.
    expect(b.form.inputKind).toBe('view');
    expect(b.form.executor).toBe('local');
    expect(b.form.outputUri).toBe('s3://out-bucket/transform-out/');
    b.dispose();
  });

  it('shows the check error and stores nothing', async () => {
    const { client, fake } = fakeClient();
    fake.checkTransform.mockRejectedValueOnce(
      new HttpError(
        'The cell is not valid Python (line 3, column 5: invalid syntax).'
      )
    );
    const b = body(client, { initial: { name: 'thumbs' } });
    await b.ready;
    expect(b.check).toEqual({
      state: 'error',
      message:
        'The cell is not valid Python (line 3, column 5: invalid syntax).'
    });
    expect(await b.submit()).toBeNull();
    expect(b.serverError).toMatch(/not valid Python/);
    expect(fake.createTransform).not.toHaveBeenCalled();
    expect(fake.createRun).not.toHaveBeenCalled();
    b.dispose();
  });

  it('validates kwargs as they are typed and before submitting', async () => {
    const { client, fake } = fakeClient();
    const b = body(client);
    await b.ready;
    b.setForm({ name: 'thumbs', kwargs: '{"size": ' });
    expect(b.errors.kwargs).toMatch(/not valid JSON/);
    b.setForm({ kwargs: '{"size": 64}' });
    expect(b.errors.kwargs).toBeUndefined();
    b.setForm({ kwargs: '"x"' });
    expect(await b.submit()).toBeNull();
    expect(b.errors.kwargs).toMatch(/JSON object/);
    expect(fake.createTransform).not.toHaveBeenCalled();
    // What was typed stays.
    expect(b.form.kwargs).toBe('"x"');
    expect(b.form.name).toBe('thumbs');
    b.dispose();
  });

  it('stores the revision, then starts the run with it', async () => {
    const { client, fake } = fakeClient();
    const b = body(client);
    await b.ready;
    b.setForm({
      name: 'thumbs',
      kwargs: '{"suffix": "_copy"}',
      labelOutput: 'thumbs-out'
    });
    const started = await b.submit();
    expect(started?.id).toBe('r-new');
    expect(b.getValue()?.id).toBe('r-new');
    expect(fake.createTransform).toHaveBeenCalledWith({
      name: 'thumbs',
      source: expect.stringContaining('def infin_transform_one_object')
    });
    expect(fake.createRun).toHaveBeenCalledWith({
      transform: 'thumbs',
      revision: 2,
      input: {
        type: 'view',
        bucket: 'demo',
        prefix: 'flowers/',
        at: 'tm20261120100000'
      },
      executor: 'local',
      output_uri: 's3://out-bucket/transform-out/',
      kwargs: { suffix: '_copy' },
      label_output: 'thumbs-out'
    });
    expect(b.savedRevision).toBe(2);
    // The model shows the new run first, highlighted, and polls it.
    expect(b.transforms.runs[0].id).toBe('r-new');
    expect(b.transforms.highlighted).toBe('r-new');
    expect(b.transforms.polling).toBe(true);
    b.transforms.dispose();
    b.dispose();
  });

  it('keeps the form and shows the server’s message on a 4xx', async () => {
    const { client, fake } = fakeClient();
    fake.createRun.mockRejectedValueOnce(
      new HttpError('There is no label named "nope".')
    );
    const b = body(client);
    await b.ready;
    b.setForm({ name: 'thumbs', inputKind: 'label', label: 'nope' });
    expect(await b.submit()).toBeNull();
    expect(b.serverError).toBe('There is no label named "nope".');
    expect(b.errorCount).toBe(1);
    expect(b.busy).toBe(false);
    expect(b.form.label).toBe('nope');
    expect(b.getValue()).toBeNull();
    // Fixed and sent again: works, and the message goes.
    b.setForm({ inputKind: 'none' });
    const started = await b.submit();
    expect(started?.id).toBe('r-new');
    expect(b.serverError).toBeNull();
    expect(fake.createRun).toHaveBeenCalledTimes(2);
    expect(fake.createRun.mock.calls[1]).toEqual([
      expect.objectContaining({ input: { type: 'no-input-data' } })
    ]);
    b.transforms.dispose();
    b.dispose();
  });

  it('offers a stored transform with the same code as that transform', async () => {
    const { client } = fakeClient();
    const b = body(client, {
      existing: [
        {
          name: 'thumbs',
          latest: rev(3, 'b'.repeat(64)),
          revisions: [rev(3, 'b'.repeat(64))]
        }
      ]
    });
    await b.ready;
    expect(b.form.transformMode).toBe('existing');
    expect(b.form.existing).toBe('thumbs');
    b.dispose();
  });

  it('runs a revision again without storing one', async () => {
    const { client, fake } = fakeClient();
    const previous = run('r1', 'succeeded', {
      revision: 4,
      kwargs: { size: 64 },
      executor: 'spark'
    });
    const b = body(client, {
      rerun: rerunOf(previous, 'infin_transform_one_object'),
      source: ''
    });
    await b.ready;
    expect(fake.checkTransform).not.toHaveBeenCalled();
    expect(b.check).toEqual({
      state: 'ok',
      entryPoint: 'infin_transform_one_object',
      sha256: ''
    });
    b.setForm({ inputKind: 'label', label: 'flowers-v2' });
    await b.submit();
    expect(fake.createTransform).not.toHaveBeenCalled();
    expect(fake.createRun).toHaveBeenCalledWith({
      transform: 'thumbs',
      revision: 4,
      input: { type: 'label', label: 'flowers-v2' },
      executor: 'spark',
      output_uri: 's3://out-bucket/transform-out/',
      kwargs: { size: 64 }
    });
    b.transforms.dispose();
    b.dispose();
  });
});

// -- the model -------------------------------------------------------------------------------

describe('TransformsModel', () => {
  it('polls while a run is queued or running, and stops when none is', async () => {
    const states: IRun[][] = [
      [run('r1', 'running', { done: 1 })],
      [run('r1', 'running', { done: 2 })],
      [run('r1', 'succeeded', { done: 3, finished_ms: T + 5000 })]
    ];
    let i = 0;
    const { client, fake } = fakeClient(() => states[Math.min(i++, 2)]);
    const model = new TransformsModel({ client, interval: 10 });
    const finished: IRun[] = [];
    model.runFinished.connect((_, r) => {
      finished.push(r);
    });

    await model.refreshRuns();
    expect(model.runs[0].done).toBe(1);
    expect(model.polling).toBe(true);
    expect(model.activeCount).toBe(1);

    await until(() => model.runs[0].state === 'succeeded');
    expect(model.polling).toBe(false);
    expect(finished.map(r => [r.id, r.state])).toEqual([['r1', 'succeeded']]);
    const calls = fake.listRuns.mock.calls.length;
    expect(calls).toBe(3);
    await tick(60);
    // No more requests once nothing is active.
    expect(fake.listRuns.mock.calls.length).toBe(calls);
    model.dispose();
  });

  it('does not poll when every run has ended', async () => {
    const { client, fake } = fakeClient(() => [
      run('r1', 'failed', { error: 'boom' }),
      run('r2', 'cancelled')
    ]);
    const model = new TransformsModel({ client, interval: 10 });
    const finished: IRun[] = [];
    model.runFinished.connect((_, r) => {
      finished.push(r);
    });
    await model.refreshRuns();
    expect(model.polling).toBe(false);
    await tick(40);
    expect(fake.listRuns).toHaveBeenCalledTimes(1);
    // Runs that ended before this session saw them are not "finished" events.
    expect(finished).toEqual([]);
    model.dispose();
  });

  it('starts polling when a run starts, keeping it while the list lags', async () => {
    let list: IRun[] = [];
    const { client, fake } = fakeClient(() => list);
    const model = new TransformsModel({ client, interval: 10 });
    await model.refreshRuns();
    expect(model.polling).toBe(false);

    // A list request that went out before the run started answers without it.
    let release: (runs: IRun[]) => void = () => undefined;
    fake.listRuns.mockImplementationOnce(
      () =>
        new Promise(resolve => {
          release = runs => resolve({ runs });
        })
    );
    const stale = model.refreshRuns();
    const started = await model.startRun({
      transform: 'thumbs',
      input: { type: 'no-input-data' },
      executor: 'local'
    });
    expect(started.id).toBe('r-new');
    expect(model.polling).toBe(true);
    release([]);
    await stale;
    expect(model.runs.map(r => r.id)).toEqual(['r-new']);

    list = [run('r-new', 'succeeded', { done: 3 })];
    await until(() => model.runs[0].state === 'succeeded');
    expect(model.polling).toBe(false);
    model.dispose();
  });

  it('keeps polling with back-off through errors and shows them', async () => {
    let fail = true;
    const { client, fake } = fakeClient(() => {
      if (fail) {
        throw new HttpError('Server unavailable');
      }
      return [run('r1', 'succeeded')];
    });
    const model = new TransformsModel({ client, interval: 10 });
    fake.listRuns.mockImplementationOnce(async () => ({
      runs: [run('r1', 'running')]
    }));
    await model.refreshRuns();
    expect(model.polling).toBe(true);
    await until(() => model.runsError === 'Server unavailable');
    expect(model.polling).toBe(true);
    fail = false;
    await until(() => model.runs[0].state === 'succeeded', 5000);
    expect(model.runsError).toBeNull();
    expect(model.polling).toBe(false);
    model.dispose();
  });

  it('cancels, deletes, reads logs and expands transforms', async () => {
    const { client, fake } = fakeClient(() => [run('r1', 'running')]);
    const model = new TransformsModel({ client, interval: 1000 });
    await model.refreshRuns();
    fake.cancelRun.mockResolvedValueOnce(run('r1', 'cancelled'));
    const finished: string[] = [];
    model.runFinished.connect((_, r) => {
      finished.push(r.state);
    });
    await model.cancelRun('r1');
    expect(model.runs[0].state).toBe('cancelled');
    expect(finished).toEqual(['cancelled']);
    expect(model.polling).toBe(false);

    expect(await model.runLog('r1')).toBe('line 1\nline 2\n');
    expect(fake.runLog).toHaveBeenCalledWith('r1', 200);

    fake.listTransforms.mockResolvedValueOnce({
      transforms: [
        { name: 'thumbs', latest: rev(2), revisions: [rev(2), rev(1)] }
      ]
    } as any);
    await model.refreshTransforms();
    expect(model.revision('thumbs')?.revision).toBe(2);
    expect(model.revision('thumbs', 1)?.revision).toBe(1);
    expect(model.revision('nope')).toBeNull();
    model.toggleExpanded('thumbs');
    expect(model.isExpanded('thumbs')).toBe(true);
    await model.deleteTransform('thumbs');
    expect(fake.deleteTransform).toHaveBeenCalledWith('thumbs');
    expect(model.transforms).toEqual([]);
    expect(model.isExpanded('thumbs')).toBe(false);
    model.dispose();
  });
});

// -- the client ------------------------------------------------------------------------------

describe('InfinstorClient transforms routes', () => {
  it('calls each route with its method and body', async () => {
    const sent: { url: string; method: string; body: string }[] = [];
    const fetchMock = async (input: RequestInfo, init?: RequestInit) => {
      const request = new Request(input, init);
      sent.push({
        url: request.url.replace(/[?&]\d{10,}$/, ''),
        method: request.method,
        body: await request.text()
      });
      return new Response(request.method === 'DELETE' ? null : '{}', {
        status: request.method === 'DELETE' ? 204 : 200
      });
    };
    const client = new InfinstorClient({
      serverSettings: ServerConnection.makeSettings({
        baseUrl: 'http://localhost:8888/',
        wsUrl: 'ws://localhost:8888/',
        fetch: fetchMock as any
      })
    });
    await client.executors();
    await client.listTransforms();
    await client.checkTransform('x = 1');
    await client.createTransform({ name: 't', source: 'x = 1' });
    await client.getTransform('a b');
    await client.deleteTransform('a b');
    await client.listRuns('t');
    await client.createRun({
      transform: 't',
      input: { type: 'no-input-data' },
      executor: 'local'
    });
    await client.getRun('r/1');
    await client.cancelRun('r1');
    await client.runLog('r1', 50);
    const base = 'http://localhost:8888/infinstor/';
    expect(sent.map(s => [s.method, s.url.replace(base, '')])).toEqual([
      ['GET', 'executors'],
      ['GET', 'transforms'],
      ['POST', 'transforms/check'],
      ['POST', 'transforms'],
      ['GET', 'transforms/a%20b'],
      ['DELETE', 'transforms/a%20b'],
      ['GET', 'runs?transform=t'],
      ['POST', 'runs'],
      ['GET', 'runs/r%2F1'],
      ['POST', 'runs/r1/cancel'],
      ['GET', 'runs/r1/log?lines=50']
    ]);
    expect(JSON.parse(sent[2].body)).toEqual({ source: 'x = 1' });
    expect(JSON.parse(sent[3].body)).toEqual({ name: 't', source: 'x = 1' });
    expect(JSON.parse(sent[7].body)).toEqual({
      transform: 't',
      input: { type: 'no-input-data' },
      executor: 'local'
    });
  });
});
