import { ServerConnection } from '@jupyterlab/services';
import * as React from 'react';
import { act } from 'react';
import { createRoot, Root } from 'react-dom/client';

import { InfinstorClient } from '../api/client';
import {
  IPipelineRun,
  IPipelineStepRun,
  IPipelineSummary,
  IRun,
  ISchedule,
  IScheduleWindow
} from '../api/types';
import { InfinstorModel } from '../model';
import {
  buildPipeline,
  describeGraph,
  formOf,
  newStep,
  validatePipelineForm
} from '../pipelines/form';
import { PipelinesModel, upstreamSteps } from '../pipelines/model';
import { finalOutput, stepCounts } from '../pipelines/notifications';
import { PipelinesView } from '../pipelines/tab';
import { SchedulesModel } from '../schedules/model';
import {
  buildSchedule,
  SchedulesView,
  validateScheduleForm
} from '../schedules/tab';
import { activeRunCounts } from '../statusbar';
import { TransformsModel } from '../transforms/model';
import { OnSignals } from '../signals';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const T = Date.UTC(2026, 10, 20, 10, 0, 0);

// -- fixtures -----------------------------------------------------------------------------

const VIEW = {
  type: 'view' as const,
  bucket: 'flowers',
  prefix: 'raw/',
  at: 'now'
};

const PIPELINE = {
  name: 'fan',
  description: 'two, then one',
  author: 'ann',
  created_ms: T,
  updated_ms: T,
  steps: [
    {
      name: 'a',
      transform: 'cp',
      revision: null,
      kwargs: { tag: 'a-' },
      executor: 'local',
      output_uri: 's3://out/o/',
      requirements: [],
      input: VIEW
    },
    {
      name: 'b',
      transform: 'cp',
      revision: 2,
      kwargs: {},
      executor: 'local',
      output_uri: 's3://out/o/',
      requirements: [],
      input: { type: 'label' as const, label: 'flowers-v1' }
    },
    {
      name: 'c',
      transform: 'gather',
      revision: null,
      kwargs: {},
      executor: 'spark',
      output_uri: 's3://out/o/',
      requirements: [],
      input: { type: 'step' as const, steps: ['a', 'b'] }
    }
  ]
};

function stepRun(
  step: string,
  patch: Partial<IPipelineStepRun> = {}
): IPipelineStepRun {
  return {
    step,
    state: 'waiting',
    run_id: null,
    cached_from: null,
    cache_key: null,
    output_uri: null,
    output_label: null,
    error: null,
    started_ms: null,
    finished_ms: null,
    done: 0,
    total: 0,
    run_url: null,
    ...patch
  };
}

function pipelineRun(
  id: string,
  patch: Partial<IPipelineRun> = {}
): IPipelineRun {
  return {
    id,
    pipeline: 'fan',
    definition: PIPELINE,
    state: 'running',
    created_ms: T,
    finished_ms: null,
    cache: true,
    steps: [stepRun('a'), stepRun('b'), stepRun('c')],
    error: null,
    mlflow_experiment_id: '3',
    mlflow_run_id: id,
    mlflow_url: null,
    heartbeat_ms: T,
    author: 'ann',
    driver: 'host:1',
    cancel_requested: false,
    ...patch
  };
}

function schedule(name: string, patch: Partial<ISchedule> = {}): ISchedule {
  return {
    name,
    transform: 'cp',
    bucket: 'flowers',
    prefix: 'raw/',
    mode: 'incremental',
    cron: null,
    every_minutes: 15,
    if_new_data: true,
    executor: 'local',
    output_uri: 's3://out/o/',
    kwargs: {},
    requirements: [],
    revision: null,
    start_ms: T,
    settle_s: 60,
    paused: false,
    created_ms: T,
    created_by: 'ann',
    next_ms: T + 900_000,
    trigger: 'every 15 min if new data',
    last_window: null,
    ...patch
  };
}

function window_(seq: number, patch: Partial<IScheduleWindow> = {}) {
  return {
    schedule: 'fresh',
    seq,
    start_ms: T + seq * 1000,
    end_ms: T + seq * 1000 + 999,
    state: 'succeeded' as const,
    run_id: `run${seq}`,
    objects: seq,
    created_ms: T,
    finished_ms: T,
    error: null,
    attempt: 1,
    ...patch
  };
}

// -- the client ---------------------------------------------------------------------------

interface ISent {
  url: string;
  method: string;
  body: string;
}

function recordingClient(reply: (url: string, method: string) => unknown): {
  client: InfinstorClient;
  sent: ISent[];
} {
  const sent: ISent[] = [];
  const fetchMock = async (input: RequestInfo, init?: RequestInit) => {
    const request = new Request(input, init);
    sent.push({
      url: request.url
        .replace(/[?&]\d{10,}$/, '')
        .replace('http://localhost:8888/base/infinstor/', ''),
      method: request.method,
      body: await request.text()
    });
    const body = reply(request.url, request.method);
    return body === null
      ? new Response(null, { status: 204 })
      : new Response(JSON.stringify(body), {
          status: 200,
          headers: { 'Content-Type': 'application/json' }
        });
  };
  const serverSettings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/base/',
    wsUrl: 'ws://localhost:8888/base/',
    fetch: fetchMock as any
  });
  return { client: new InfinstorClient({ serverSettings }), sent };
}

describe('InfinstorClient: pipelines and schedules', () => {
  it('sends each request to the documented route with its body', async () => {
    const { client, sent } = recordingClient((_, method) =>
      method === 'DELETE' && !_.includes('/runs/') ? null : {}
    );
    await client.listPipelines();
    await client.savePipeline({ text: 'name: x' });
    await client.getPipeline('a b');
    await client.deletePipeline('fan');
    await client.listPipelineRuns('fan', 5);
    await client.startPipelineRun('fan', { cache: false, executor: 'spark' });
    await client.getPipelineRun('fan', 'r1');
    await client.cancelPipelineRun('fan', 'r1');
    await client.listSchedules();
    await client.createSchedule({
      name: 's',
      transform: 'cp',
      bucket: 'b',
      every_minutes: 5
    });
    await client.getSchedule('s', 20);
    await client.setSchedulePaused('s', true);
    await client.setSchedulePaused('s', false);
    await client.runSchedule('s');
    await client.deleteSchedule('s');
    expect(sent.map(s => `${s.method} ${s.url}`)).toEqual([
      'GET pipelines',
      'POST pipelines',
      'GET pipelines/a%20b',
      'DELETE pipelines/fan',
      'GET pipelines/fan/runs?limit=5',
      'POST pipelines/fan/runs',
      'GET pipelines/fan/runs/r1',
      'DELETE pipelines/fan/runs/r1',
      'GET schedules',
      'POST schedules',
      'GET schedules/s?windows=20',
      'POST schedules/s/pause',
      'POST schedules/s/resume',
      'POST schedules/s/run',
      'DELETE schedules/s'
    ]);
    expect(JSON.parse(sent[1].body)).toEqual({ text: 'name: x' });
    expect(JSON.parse(sent[5].body)).toEqual({
      cache: false,
      executor: 'spark'
    });
    expect(JSON.parse(sent[9].body)).toEqual({
      name: 's',
      transform: 'cp',
      bucket: 'b',
      every_minutes: 5
    });
  });
});

// -- the editor's data --------------------------------------------------------------------

describe('pipeline form', () => {
  it('builds the definition the server saves, and reads one back', () => {
    const form = formOf(PIPELINE);
    expect(form.steps.map(s => s.inputKind)).toEqual([
      'view',
      'label',
      'steps'
    ]);
    expect(validatePipelineForm(form)).toEqual({});
    const body = buildPipeline(form);
    expect(body.name).toBe('fan');
    expect(body.description).toBe('two, then one');
    expect(body.steps[0]).toEqual({
      name: 'a',
      transform: 'cp',
      input: VIEW,
      kwargs: { tag: 'a-' },
      executor: 'local',
      output_uri: 's3://out/o/'
    });
    expect(body.steps[1].input).toEqual({ type: 'label', label: 'flowers-v1' });
    expect(body.steps[2].input).toEqual({ type: 'step', steps: ['a', 'b'] });
    expect(body.steps[2].executor).toBe('spark');
    // A slice goes as `slice`.
    const sliced = buildPipeline({
      ...form,
      steps: [{ ...form.steps[0], at: 'tm20261120100000-tm20261120110000' }]
    });
    expect(sliced.steps[0].input).toEqual({
      type: 'view',
      bucket: 'flowers',
      prefix: 'raw/',
      slice: 'tm20261120100000-tm20261120110000'
    });
    expect(describeGraph(PIPELINE)).toBe('a · b · a, b → c');
    expect(upstreamSteps([{ type: 'step', step: 'x' }])).toEqual(['x']);
    expect(upstreamSteps({ type: 'step', step: 'y' })).toEqual(['y']);
    expect(upstreamSteps(VIEW)).toEqual([]);
  });

  it('says what is wrong, per field', () => {
    const errors = validatePipelineForm({
      name: '-x',
      description: '',
      steps: [
        newStep(0, { transform: 'cp', bucket: '' }),
        newStep(0, { kwargs: '[1]', inputKind: 'steps', outputUri: 'out/' })
      ]
    });
    expect(errors.name).toContain('Name the pipeline');
    expect(errors['steps.0.input']).toContain('bucket');
    expect(errors['steps.1.name']).toContain('Two steps are named step1');
    expect(errors['steps.1.transform']).toContain('Pick a saved transform');
    expect(errors['steps.1.input']).toContain('Tick the steps');
    expect(errors['steps.1.kwargs']).toContain('JSON object');
    expect(errors['steps.1.output']).toContain('s3://BUCKET/PREFIX/');
  });
});

describe('schedule form', () => {
  const base = {
    name: 'fresh',
    transform: 'cp',
    bucket: 'flowers',
    prefix: 'raw/',
    trigger: 'every' as const,
    cron: '0 2 * * *',
    everyMinutes: '15',
    ifNewData: true,
    mode: 'incremental' as const,
    executor: 'local',
    outputUri: '',
    kwargs: '{"size": 1}',
    start: ''
  };
  it('builds a cron or an every-N-minutes schedule', () => {
    expect(validateScheduleForm(base)).toEqual({});
    expect(buildSchedule(base)).toEqual({
      name: 'fresh',
      transform: 'cp',
      bucket: 'flowers',
      prefix: 'raw/',
      mode: 'incremental',
      executor: 'local',
      kwargs: { size: 1 },
      every_minutes: 15,
      if_new_data: true
    });
    const cron = buildSchedule({ ...base, trigger: 'cron', start: 'now' });
    expect(cron.cron).toBe('0 2 * * *');
    expect(cron.every_minutes).toBeUndefined();
    expect(cron.start).toBe('now');
    expect(
      validateScheduleForm({ ...base, trigger: 'cron', cron: '0 2 *' }).cron
    ).toContain('five fields');
    expect(
      validateScheduleForm({ ...base, everyMinutes: '0' }).every
    ).toBeTruthy();
  });
});

// -- the pipelines model ------------------------------------------------------------------

describe('PipelinesModel', () => {
  it('polls a started run until it ends, then says so once', async () => {
    let n = 0;
    const states: IPipelineRun[] = [
      pipelineRun('r1', {
        steps: [
          stepRun('a', { state: 'running', run_id: 'ta' }),
          stepRun('b', { state: 'running', run_id: 'tb' }),
          stepRun('c')
        ]
      }),
      pipelineRun('r1', {
        state: 'succeeded',
        finished_ms: T + 5000,
        steps: [
          stepRun('a', { state: 'succeeded', run_id: 'ta' }),
          stepRun('b', { state: 'cached', run_id: 'tb', cached_from: 'old' }),
          stepRun('c', { state: 'succeeded', output_uri: 's3://out/o/tc/' })
        ]
      })
    ];
    const client = {
      listPipelines: jest.fn(async () => ({
        pipelines: [{ ...PIPELINE, last_run: null }]
      })),
      listPipelineRuns: jest.fn(async () => ({ runs: [] })),
      startPipelineRun: jest.fn(async () => pipelineRun('r1')),
      getPipelineRun: jest.fn(async () => states[Math.min(n++, 1)])
    } as unknown as InfinstorClient;
    const pipelines = new PipelinesModel({ client, interval: 10 });
    await pipelines.refresh();
    const finished: IPipelineRun[] = [];
    pipelines.runFinished.connect((_, run) => finished.push(run));

    await pipelines.startRun('fan', { cache: false });
    expect(client.startPipelineRun).toHaveBeenCalledWith('fan', {
      cache: false
    });
    expect(pipelines.selected).toBe('fan');
    expect(pipelines.activeCount).toBe(1);
    expect(pipelines.pipeline('fan')?.last_run?.id).toBe('r1');

    for (let i = 0; i < 100 && finished.length === 0; i++) {
      await new Promise(r => setTimeout(r, 10));
      if (n === 1) {
        expect([...pipelines.activeStepRunIds()].sort()).toEqual(['ta', 'tb']);
      }
    }
    expect(finished.map(r => r.state)).toEqual(['succeeded']);
    expect(pipelines.activeCount).toBe(0);
    expect(pipelines.runs[0].state).toBe('succeeded');
    await new Promise(r => setTimeout(r, 50));
    expect(pipelines.polling).toBe(false);
    expect(finished).toHaveLength(1);
    expect(finalOutput(finished[0])).toBe('s3://out/o/tc/');
    expect(stepCounts(finished[0])).toBe('3 steps: 2 succeeded, 1 cached');
    pipelines.dispose();
  });

  it('finds runs still going in the list (another session started them)', async () => {
    const client = {
      listPipelines: jest.fn(async () => ({
        pipelines: [{ ...PIPELINE, last_run: pipelineRun('r9') }]
      })),
      getPipelineRun: jest.fn(async () => pipelineRun('r9'))
    } as unknown as InfinstorClient;
    const pipelines = new PipelinesModel({ client, interval: 60_000 });
    await pipelines.refresh();
    expect(pipelines.activeCount).toBe(1);
    expect(pipelines.polling).toBe(true);
    pipelines.dispose();
  });
});

// -- the views ----------------------------------------------------------------------------

let host: HTMLDivElement;
let root: Root;

beforeEach(() => {
  host = document.createElement('div');
  document.body.appendChild(host);
  root = createRoot(host);
});

afterEach(() => {
  act(() => root.unmount());
  host.remove();
});

function click(node: Element | null | undefined): Promise<void> {
  return act(async () => {
    (node as HTMLElement).dispatchEvent(
      new MouseEvent('click', { bubbles: true })
    );
  });
}

describe('PipelinesView', () => {
  it("shows each step's state, the reused run, links, and cancels while running", async () => {
    const running = pipelineRun('r2', {
      steps: [
        stepRun('a', {
          state: 'cached',
          run_id: 'ca',
          cached_from: 'old-a',
          run_url: 'http://mlflow/#/experiments/3/runs/old-a',
          output_uri: 's3://out/o/old-a/'
        }),
        stepRun('b', {
          state: 'failed',
          run_id: 'tb',
          error: '1 of 2 objects failed'
        }),
        stepRun('c', { state: 'skipped', error: "step 'b' failed" })
      ]
    });
    const summary: IPipelineSummary = { ...PIPELINE, last_run: running };
    const cancelled = { ...running, cancel_requested: true };
    const client = {
      listPipelines: jest.fn(async () => ({ pipelines: [summary] })),
      listPipelineRuns: jest.fn(async () => ({ runs: [running] })),
      getPipelineRun: jest.fn(async () => running),
      cancelPipelineRun: jest.fn(async () => cancelled),
      listTransforms: jest.fn(async () => ({ transforms: [] })),
      listRuns: jest.fn(async () => ({ runs: [] }))
    } as unknown as InfinstorClient;
    const pipelines = new PipelinesModel({ client, interval: 60_000 });
    await pipelines.refresh();
    await pipelines.select('fan');
    const transforms = new TransformsModel({ client, interval: 60_000 });
    const model = new InfinstorModel({ client });
    const actions = {
      openOutput: jest.fn(),
      useLabel: jest.fn(),
      followRun: jest.fn()
    };
    await act(async () => {
      root.render(
        <OnSignals signals={[pipelines.changed]}>
          {() => (
            <PipelinesView
              pipelines={pipelines}
              transforms={transforms}
              model={model}
              actions={actions}
            />
          )}
        </OnSignals>
      );
    });
    const item = host.querySelector('[data-pipeline="fan"]') as HTMLElement;
    expect(item.textContent).toContain('3 steps');
    expect(item.textContent).toContain('a · b · a, b → c');
    const step = (name: string) =>
      item.querySelector(`[data-step="${name}"]`) as HTMLElement;
    const state = (name: string) =>
      step(name).querySelector('[data-testid="step-state"]')?.textContent;
    expect([state('a'), state('b'), state('c')]).toEqual([
      'cached',
      'failed',
      'skipped'
    ]);
    const reused = step('a').querySelector('[data-testid="step-cached"] a');
    expect(reused?.textContent).toBe('old-a');
    expect(reused?.getAttribute('href')).toBe(
      'http://mlflow/#/experiments/3/runs/old-a'
    );
    expect(step('b').textContent).toContain('1 of 2 objects failed');
    expect(step('c').textContent).toContain("step 'b' failed");
    expect(step('c').textContent).toContain('reads a, b');
    await click(step('a').querySelector('[data-testid="step-output"]'));
    expect(actions.openOutput).toHaveBeenCalledWith('s3://out/o/old-a/');

    await click(item.querySelector('[data-testid="cancel-pipeline-run"]'));
    expect(client.cancelPipelineRun).toHaveBeenCalledWith('fan', 'r2');
    expect(
      item.querySelector('[data-testid="pipeline-run-state"]')?.textContent
    ).toBe('cancelling…');
    pipelines.dispose();
    transforms.dispose();
  });
});

describe('SchedulesView', () => {
  it('lists schedules, pauses one, and shows its windows', async () => {
    let paused = false;
    const detail = () => ({
      ...schedule('fresh', { paused }),
      windows: [
        window_(2, { state: 'failed', error: 'boom', attempt: 2 }),
        window_(1)
      ]
    });
    const client = {
      listSchedules: jest.fn(async () => ({
        schedules: [
          schedule('fresh', {
            paused,
            last_window: window_(2, { state: 'failed', error: 'boom' })
          })
        ]
      })),
      setSchedulePaused: jest.fn(async (_: string, p: boolean) => {
        paused = p;
        return schedule('fresh', { paused });
      }),
      getSchedule: jest.fn(async () => detail()),
      listTransforms: jest.fn(async () => ({ transforms: [] }))
    } as unknown as InfinstorClient;
    const schedules = new SchedulesModel({ client, interval: 60_000 });
    await schedules.refresh();
    const transforms = new TransformsModel({ client, interval: 60_000 });
    const model = new InfinstorModel({ client });
    const actions = { showRun: jest.fn(), followRuns: jest.fn() };
    await act(async () => {
      root.render(
        <OnSignals signals={[schedules.changed]}>
          {() => (
            <SchedulesView
              schedules={schedules}
              transforms={transforms}
              model={model}
              actions={actions}
            />
          )}
        </OnSignals>
      );
    });
    const item = () =>
      host.querySelector('[data-schedule="fresh"]') as HTMLElement;
    const text = (id: string) =>
      item().querySelector(`[data-testid="${id}"]`)?.textContent;
    expect(text('schedule-state')).toBe('active');
    expect(text('schedule-trigger')).toBe('every 15 min if new data');
    expect(text('schedule-next')).toContain('Next run:');
    expect(text('schedule-last')).toContain('failed, 2 objects');

    await click(item().querySelector('[data-testid="pause-schedule"]'));
    expect(client.setSchedulePaused).toHaveBeenCalledWith('fresh', true);
    expect(text('schedule-state')).toBe('paused');
    expect(text('schedule-next')).toContain('none while paused');

    const history = Array.from(item().querySelectorAll('button')).find(
      b => b.textContent === 'History'
    );
    await click(history);
    const rows = item().querySelectorAll(
      '[data-testid="schedule-windows"] tr[data-seq]'
    );
    expect(Array.from(rows).map(r => (r as HTMLElement).dataset.state)).toEqual(
      ['failed', 'succeeded']
    );
    expect(rows[0].textContent).toContain('try 2');
    expect(rows[0].textContent).toContain('boom');
    await click(rows[1].querySelector('button'));
    expect(actions.showRun).toHaveBeenCalledWith('run1');
    schedules.dispose();
    transforms.dispose();
  });
});

describe('active runs in the status bar', () => {
  it("counts transform runs and pipeline runs, a pipeline's steps once", async () => {
    const runs = [
      { id: 'ta', state: 'running' },
      { id: 'solo', state: 'queued' },
      { id: 'done', state: 'succeeded' }
    ] as IRun[];
    const client = {
      listRuns: jest.fn(async () => ({ runs })),
      listTransforms: jest.fn(async () => ({ transforms: [] })),
      listPipelines: jest.fn(async () => ({
        pipelines: [
          {
            ...PIPELINE,
            last_run: pipelineRun('r1', {
              steps: [stepRun('a', { state: 'running', run_id: 'ta' })]
            })
          }
        ]
      }))
    } as unknown as InfinstorClient;
    const transforms = new TransformsModel({ client, interval: 60_000 });
    const pipelines = new PipelinesModel({ client, interval: 60_000 });
    await Promise.all([transforms.refresh(), pipelines.refresh()]);
    expect(activeRunCounts(transforms, pipelines)).toEqual({
      transforms: 1,
      pipelines: 1
    });
    transforms.dispose();
    pipelines.dispose();
  });
});
