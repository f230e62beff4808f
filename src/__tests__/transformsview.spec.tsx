import * as React from 'react';
import { act } from 'react';
import { createRoot, Root } from 'react-dom/client';

import { InfinstorClient } from '../api/client';
import { InfinstorModel } from '../model';
import { IExecutors, IRun } from '../api/types';
import { RunDialogBody } from '../transforms/dialog';
import { TransformsSummary, TransformsView } from '../transforms/section';
import { TransformsModel } from '../transforms/model';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const T = Date.UTC(2026, 10, 20, 10, 0, 0);

function run(id: string, patch: Partial<IRun> = {}): IRun {
  return {
    id,
    transform: 'thumbs',
    revision: 2,
    executor: 'local',
    input_spec: { type: 'label', label: 'flowers-v1' },
    output_uri: `s3://out/transform-out/${id}/`,
    kwargs: {},
    requirements: [],
    state: 'running',
    created_ms: T,
    finished_ms: null,
    done: 1,
    total: 4,
    manifest_fingerprint: null,
    mlflow_run_id: id,
    mlflow_experiment_id: '7',
    mlflow_url: null,
    error: null,
    details: {},
    label_output: null,
    output_label: null,
    label_error: null,
    ...patch
  };
}

const EXECUTORS: IExecutors = {
  executors: [
    { name: 'local', title: 'Local', available: true, detail: null },
    {
      name: 'emr',
      title: 'Amazon EMR',
      available: false,
      detail: 'no cluster configured'
    }
  ],
  default_executor: 'local',
  default_output_uri: 's3://out/transform-out/',
  mlflow_ui_url: '',
  tracking: { available: true, store: 'sqlite:///.../mlflow.db', detail: null }
};

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

describe('TransformsView', () => {
  it('shows status, progress, EMR steps, MLflow links, cancel only while active', async () => {
    const runs = [
      run('a1', {}),
      run('b2', {
        executor: 'emr',
        state: 'queued',
        details: {
          emr_state: 'PENDING',
          cluster_id: 'j-ABC',
          step_id: 's-XYZ',
          log_location: 's3://logs/j-ABC/'
        }
      }),
      run('c3', {
        state: 'failed',
        error: '1 of 4 objects failed',
        output_marker: '_FAILED.json',
        mlflow_url: 'http://mlflow:5000/#/experiments/7/runs/c3',
        finished_ms: T + 65_000
      })
    ];
    const client = {
      listRuns: jest.fn(async () => ({ runs })),
      listTransforms: jest.fn(async () => ({ transforms: [] }))
    } as unknown as InfinstorClient;
    const transforms = new TransformsModel({ client, interval: 60_000 });
    await transforms.refresh();
    const model = new InfinstorModel({ client });
    const actions = { runAgain: jest.fn(), openOutput: jest.fn() };
    await act(async () => {
      root.render(
        <TransformsView
          transforms={transforms}
          model={model}
          actions={actions}
        />
      );
    });
    const item = (id: string) =>
      host.querySelector(`[data-run="${id}"]`) as HTMLElement;
    const buttons = (id: string) =>
      Array.from(item(id).querySelectorAll('button')).map(b => b.textContent);

    expect(item('a1').dataset.state).toBe('running');
    expect(
      item('a1').querySelector('[data-testid="run-progress"]')?.textContent
    ).toContain('1 / 4');
    expect(buttons('a1')).toContain('Cancel');
    expect(item('a1').textContent).toContain('label flowers-v1');

    const emr = item('b2').querySelector('[data-testid="run-emr"]');
    expect(emr?.textContent).toContain('PENDING');
    expect(emr?.textContent).toContain('j-ABC');
    expect(emr?.textContent).toContain('s-XYZ');
    expect(emr?.textContent).toContain('s3://logs/j-ABC/');
    expect(item('b2').querySelector('[data-testid="run-progress"]')).toBeNull();

    expect(buttons('c3')).not.toContain('Cancel');
    expect(
      item('c3').querySelector('[data-testid="run-failure"]')?.textContent
    ).toBe('1 of 4 objects failed');
    // The partial output is marked, and the sidebar says so.
    expect(
      item('c3').querySelector('[data-testid="run-output-marker"]')?.textContent
    ).toContain('marked failed, _FAILED.json');
    expect(
      item('a1').querySelector('[data-testid="run-output-marker"]')
    ).toBeNull();
    const link = item('c3').querySelector(
      'a[data-testid="run-mlflow"]'
    ) as HTMLAnchorElement;
    expect(link.href).toBe('http://mlflow:5000/#/experiments/7/runs/c3');
    expect(item('c3').textContent).toContain('1 min');
    // Without an MLflow UI, the run id is shown.
    expect(
      item('a1').querySelector('code[data-testid="run-mlflow"]')?.textContent
    ).toBe('a1');

    await act(async () => {
      (
        item('c3').querySelector('[data-testid="run-output"]') as HTMLElement
      ).click();
    });
    expect(actions.openOutput).toHaveBeenCalledWith(runs[2]);
    transforms.dispose();
    model.dispose();
  });
});

describe('TransformsView: Use from other tools on a run', () => {
  it("offers the run's own view for a run over a bucket view, not for one over nothing", async () => {
    const runs = [
      run('v1', {
        state: 'succeeded',
        input_spec: {
          type: 'view',
          bucket: 'my-bucket',
          prefix: 'tables/',
          at: 'tm20261101000000'
        }
      }),
      run('n2', { state: 'succeeded', input_spec: { type: 'no-input-data' } }),
      run('m3', {
        state: 'succeeded',
        mlflow_run_id: '',
        input_spec: {
          type: 'view',
          bucket: 'my-bucket',
          prefix: '',
          at: 'tm20261101000000'
        }
      })
    ];
    const client = {
      listRuns: jest.fn(async () => ({ runs })),
      listTransforms: jest.fn(async () => ({ transforms: [] }))
    } as unknown as InfinstorClient;
    const transforms = new TransformsModel({ client, interval: 60_000 });
    await transforms.refresh();
    const model = new InfinstorModel({ client });
    const actions = {
      runAgain: jest.fn(),
      openOutput: jest.fn(),
      useFromOtherTools: jest.fn()
    };
    await act(async () => {
      root.render(
        <TransformsView
          transforms={transforms}
          model={model}
          actions={actions}
        />
      );
    });
    const button = (id: string) =>
      host.querySelector(
        `[data-run="${id}"] [data-testid="run-other-tools"]`
      ) as HTMLButtonElement | null;
    expect(button('v1')?.textContent).toBe('Use from other tools…');
    expect(button('v1')?.title).toContain('run:/v1');
    expect(button('n2')).toBeNull(); // read no bucket view
    expect(button('m3')).toBeNull(); // no MLflow run id to name
    await act(async () => button('v1')?.click());
    expect(actions.useFromOtherTools).toHaveBeenCalledWith(runs[0]);
    transforms.dispose();
    model.dispose();
  });
});

describe('RunDialogBody view', () => {
  it('disables unavailable executors with their detail, shows check errors', async () => {
    const client = {
      checkTransform: jest.fn(async () => {
        throw new Error('The cell defines two entry points.');
      })
    } as unknown as InfinstorClient;
    const transforms = new TransformsModel({ client });
    const body = new RunDialogBody({
      transforms,
      view: { bucket: null, prefix: '', params: {}, display: 'now' },
      executors: EXECUTORS,
      source: 'x'
    });
    await body.ready;
    await act(async () => {
      root.render(body.render());
    });
    const emr = host.querySelector(
      'input[name="executor"][value="emr"]'
    ) as HTMLInputElement;
    expect(emr.disabled).toBe(true);
    expect(emr.closest('label')?.textContent).toContain(
      'unavailable: no cluster configured'
    );
    const local = host.querySelector(
      'input[name="executor"][value="local"]'
    ) as HTMLInputElement;
    expect(local.checked).toBe(true);
    // No bucket in the sidebar: its view is not offered, "no input" is chosen.
    expect(
      (host.querySelector('input[value="view"]') as HTMLInputElement).disabled
    ).toBe(true);
    expect(
      (host.querySelector('input[value="none"]') as HTMLInputElement).checked
    ).toBe(true);
    const entry = host.querySelector('[data-testid="entry-point"]');
    expect(entry?.getAttribute('data-state')).toBe('error');
    expect(entry?.textContent).toContain('two entry points');

    // Typed kwargs errors show as they are typed.
    await act(async () => {
      body.setForm({ kwargs: '{' });
    });
    expect(
      host.querySelector('[data-testid="kwargs-error"]')?.textContent
    ).toMatch(/not valid JSON/);
    body.dispose();
    transforms.dispose();
  });
});

describe('TransformsSummary (the sidebar section)', () => {
  async function summary(
    runs: IRun[],
    patch: Partial<InfinstorClient> = {}
  ): Promise<{
    openRuns: jest.Mock;
    transforms: TransformsModel;
    model: InfinstorModel;
  }> {
    const client = {
      listRuns: jest.fn(async () => ({ runs })),
      listTransforms: jest.fn(async () => ({
        transforms: [{ name: 'thumbs' }, { name: 'copies' }]
      })),
      ...patch
    } as unknown as InfinstorClient;
    const transforms = new TransformsModel({ client, interval: 60_000 });
    await transforms.refresh();
    const model = new InfinstorModel({ client });
    const openRuns = jest.fn();
    await act(async () => {
      root.render(
        <TransformsSummary
          transforms={transforms}
          model={model}
          openRuns={openRuns}
        />
      );
    });
    return { openRuns, transforms, model };
  }

  it('lists the last three runs in one line each, with the counts, and links to Transform Runs', async () => {
    const runs = [
      run('e5', { state: 'running' }),
      run('d4', { state: 'failed', transform: 'copies', revision: 1 }),
      run('c3', { state: 'succeeded' }),
      run('b2', { state: 'succeeded' }),
      run('a1', { state: 'cancelled' })
    ];
    const { openRuns, transforms, model } = await summary(runs);
    expect(host.querySelector('[data-testid="runs-counts"]')?.textContent).toBe(
      '5 runs · 1 active · 1 failed · 2 transforms'
    );
    const lines = Array.from(
      host.querySelectorAll('.jp-Infinstor-runSummary')
    ) as HTMLElement[];
    // Only a summary: the newest three, never the full run cards.
    expect(lines.map(l => l.dataset.run)).toEqual(['e5', 'd4', 'c3']);
    expect(host.querySelectorAll('.jp-Infinstor-run')).toHaveLength(0);
    expect(lines[1].dataset.state).toBe('failed');
    expect(lines[1].textContent).toBe('copiesr1failed');
    const state = lines[1].querySelector('[data-testid="run-state"]')!;
    expect(state.classList).toContain('jp-mod-error');
    const open = lines[1].querySelector('button') as HTMLButtonElement;
    // The whole line is in its title (the name may be cut with an ellipsis).
    expect(open.title).toMatch(
      /^copies r1, failed, started .+: open in Transform Runs$/
    );

    // A line opens the runs tab on that run; Open runs on none.
    await act(async () => open.click());
    expect(openRuns).toHaveBeenLastCalledWith(runs[1]);
    const all = host.querySelector(
      '[data-testid="open-runs"]'
    ) as HTMLButtonElement;
    expect(all.textContent).toBe('Open runs');
    await act(async () => all.click());
    expect(openRuns).toHaveBeenLastCalledWith(null);
    expect(openRuns).toHaveBeenCalledTimes(2);
    transforms.dispose();
    model.dispose();
  });

  it('says how to start when there are no runs, and keeps Open runs', async () => {
    const { openRuns, transforms, model } = await summary([]);
    expect(host.querySelector('[data-testid="runs-counts"]')).toBeNull();
    expect(host.querySelectorAll('.jp-Infinstor-runSummary')).toHaveLength(0);
    expect(host.querySelector('.jp-Infinstor-note')?.textContent).toBe(
      'No runs yet. Right-click a code cell → “Run cell as transform…”.'
    );
    await act(async () =>
      (host.querySelector('[data-testid="open-runs"]') as HTMLElement).click()
    );
    expect(openRuns).toHaveBeenCalledWith(null);
    transforms.dispose();
    model.dispose();
  });

  it("shows the server's error instead of pretending there are no runs", async () => {
    const { transforms, model } = await summary([], {
      listRuns: jest.fn(async () => {
        throw new Error('MLflow tracking is not installed: pip install mlflow');
      })
    } as any);
    const alert = host.querySelector('[role="alert"]');
    expect(alert?.textContent).toContain('pip install mlflow');
    expect(host.querySelector('.jp-Infinstor-note')).toBeNull();
    transforms.dispose();
    model.dispose();
  });
});
