import {
  acceptDialog,
  dismissDialog,
  waitForDialog
} from '@jupyterlab/testing';

import { InfinstorActions } from '../browse/actions';
import {
  credentialRequest,
  openOtherToolsDialog,
  openRunOtherToolsDialog,
  runCredentialRequest
} from '../browse/othertools';
import { InfinstorClient } from '../api/client';
import { IIssuedViewCredential, IRun, ITimeSpec } from '../api/types';
import { InfinstorModel } from '../model';
import { IViewState, pinnedViewParams } from '../viewstate';

const T = Date.UTC(2026, 10, 1, 0, 0, 0);

const ISSUED: IIssuedViewCredential = {
  endpoint_url: 'http://127.0.0.1:41234',
  aws_access_key_id: 'INFVKEY',
  aws_secret_access_key: 'S3CR3T',
  region: 'us-east-1',
  view: {
    bucket: 'my-bucket',
    prefix: 'tables/',
    kind: 'snapshot',
    start_ms: null,
    end_ms: T + 999,
    spec: 'tm20261101000000',
    canonical: 'tm20261101000000',
    display: 'as of 2026-11-01 00:00:00 UTC',
    label: null
  },
  expires: '2026-11-08T00:00:00Z',
  credential: {} as any
};

/** The parts of the model the dialog reads, over a real view state. */
function stubModel(
  state: Partial<IViewState>,
  issue: (body: any) => Promise<IIssuedViewCredential> = async () => ISSUED,
  spec: ITimeSpec | null = null
) {
  const s: IViewState = {
    bucket: 'my-bucket',
    prefix: 'tables/',
    mode: 'now',
    atMs: null,
    sliceStartMs: null,
    sliceEndMs: null,
    label: null,
    ...state
  };
  const client = { issueViewCredential: jest.fn(issue) };
  const model = {
    bucket: s.bucket,
    prefix: s.prefix,
    client,
    pinnedViewParams: () => pinnedViewParams(s, spec)
  } as unknown as InfinstorModel;
  return { model, client };
}

describe('credentialRequest', () => {
  it('asks for the folder of the bucket at the snapshot time', () => {
    const { model } = stubModel({ mode: 'snapshot', atMs: T + 999 });
    expect(credentialRequest(model)).toEqual({
      view: 'tm20261101000000',
      bucket: 'my-bucket',
      prefix: 'tables/',
      expires: '7d',
      description: 'from the sidebar'
    });
  });

  it('pins "now" to the time the listing was answered at', () => {
    const spec: ITimeSpec = {
      kind: 'snapshot',
      start_ms: null,
      end_ms: T + 999,
      canonical: 'tm20261101000000',
      display: '',
      label: null
    };
    const { model } = stubModel({ mode: 'now', prefix: '' }, undefined, spec);
    const body = credentialRequest(model);
    expect(body?.view).toBe('tm20261101000000');
    expect(body?.bucket).toBe('my-bucket');
    expect(body).not.toHaveProperty('prefix');
  });

  it('sends a slice as A-B and a label as label:/NAME with its own scope', () => {
    const slice = stubModel({
      mode: 'slice',
      sliceStartMs: T,
      sliceEndMs: T + 3600_999
    });
    expect(credentialRequest(slice.model)?.view).toBe(
      'tm20261101000000-tm20261101010000'
    );
    const label = stubModel({ mode: 'label', label: 'flowers-2026-11' });
    const body = credentialRequest(label.model);
    expect(body?.view).toBe('label:/flowers-2026-11');
    expect(body).not.toHaveProperty('bucket');
    expect(body).not.toHaveProperty('prefix');
  });

  it('has nothing to ask for without a bucket', () => {
    const { model } = stubModel({ bucket: null });
    expect(credentialRequest(model)).toBeNull();
  });
});

/** Until `selector` is in the page (a ReactWidget renders on the next frame). */
async function shown(selector: string): Promise<Element> {
  for (let i = 0; i < 100; i++) {
    const found = document.querySelector(selector);
    if (found) {
      return found;
    }
    await new Promise(resolve => setTimeout(resolve, 10));
  }
  throw new Error(`${selector} never appeared`);
}

describe('openOtherToolsDialog', () => {
  it('shows the endpoint, key and secret, and inserts the chosen snippet', async () => {
    const { model, client } = stubModel({ mode: 'snapshot', atMs: T + 999 });
    const insertText = jest.fn(() => true);
    const actions = { insertText } as unknown as InfinstorActions;
    const done = openOtherToolsDialog(model, actions);
    await waitForDialog();
    await shown('[data-testid="othertools"]');
    expect(client.issueViewCredential).toHaveBeenCalledTimes(1);
    const text = (id: string) =>
      document.querySelector(`[data-testid="othertools-${id}"]`)?.textContent;
    expect(text('endpoint')).toBe('http://127.0.0.1:41234');
    expect(text('key')).toBe('INFVKEY');
    expect(text('secret')).toBe('S3CR3T');
    expect(text('snippet')).toContain('pd.read_parquet');
    const duckdb = document.querySelector(
      '[data-tool="duckdb"]'
    ) as HTMLButtonElement;
    duckdb.click();
    await shown('[data-tool="duckdb"][aria-selected="true"]');
    expect(text('snippet')).toContain('CREATE SECRET view');
    await acceptDialog();
    await expect(done).resolves.toEqual(ISSUED);
    expect(insertText).toHaveBeenCalledTimes(1);
    const calls = insertText.mock.calls as unknown as string[][];
    expect(calls[0][0]).toContain("ENDPOINT '127.0.0.1:41234'");
  });

  it('inserts nothing when closed', async () => {
    const { model } = stubModel({ mode: 'snapshot', atMs: T + 999 });
    const insertText = jest.fn(() => true);
    const done = openOtherToolsDialog(model, {
      insertText
    } as unknown as InfinstorActions);
    await waitForDialog();
    await dismissDialog();
    await done;
    expect(insertText).not.toHaveBeenCalled();
  });

  it("shows the server's sentence when no credential can be issued", async () => {
    const sentence =
      'The S3 endpoint is not running in this Jupyter server; run `infinstor-jlab endpoint serve`.';
    const { model } = stubModel({ mode: 'snapshot', atMs: T + 999 }, () =>
      Promise.reject(new Error(sentence))
    );
    const done = openOtherToolsDialog(model, {
      insertText: jest.fn()
    } as unknown as InfinstorActions);
    await waitForDialog();
    expect(document.querySelector('.jp-Dialog')?.textContent).toContain(
      sentence
    );
    await acceptDialog();
    await expect(done).resolves.toBeNull();
  });
});

function aRun(patch: Partial<IRun>): IRun {
  return {
    id: 'r-17',
    transform: 'thumbs',
    revision: 1,
    executor: 'local',
    input_spec: { type: 'no-input-data' },
    output_uri: 's3://out/r-17/',
    kwargs: {},
    requirements: [],
    state: 'succeeded',
    created_ms: T,
    finished_ms: T + 1000,
    done: 1,
    total: 1,
    manifest_fingerprint: null,
    mlflow_run_id: '0a1b2c3d',
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

describe('runCredentialRequest', () => {
  it('asks for run:/<MLflow run id> over the bucket and folder the run read', () => {
    const view = aRun({
      input_spec: {
        type: 'view',
        bucket: 'my-bucket',
        prefix: 'tables/',
        at: 'tm20261101000000'
      }
    });
    expect(runCredentialRequest(view)).toEqual({
      view: 'run:/0a1b2c3d',
      bucket: 'my-bucket',
      prefix: 'tables/',
      expires: '7d',
      description: 'run r-17 (thumbs)'
    });
    const snap = aRun({
      input_spec: {
        type: 'infinslice',
        bucketname: 'old-bucket',
        prefix: '',
        time_spec: 'tm20261101000000-tm20261102000000'
      }
    });
    expect(runCredentialRequest(snap)).toEqual({
      view: 'run:/0a1b2c3d',
      bucket: 'old-bucket',
      expires: '7d',
      description: 'run r-17 (thumbs)'
    });
  });

  it('reads a label run through its label, and nothing for a run without a bucket view', () => {
    const label = aRun({ input_spec: { type: 'label', label: 'flowers-v1' } });
    expect(runCredentialRequest(label)).toEqual({
      view: 'label:/flowers-v1',
      expires: '7d',
      description: 'run r-17 (thumbs)'
    });
    expect(runCredentialRequest(aRun({}))).toBeNull();
    expect(
      runCredentialRequest(
        aRun({ input_spec: { type: 'mlflow-run-artifacts', run_id: 'x' } })
      )
    ).toBeNull();
    expect(
      runCredentialRequest(
        aRun({
          mlflow_run_id: '',
          input_spec: { type: 'view', bucket: 'b', prefix: '' }
        })
      )
    ).toBeNull();
  });
});

describe('openRunOtherToolsDialog', () => {
  it("issues run:/ for the run's input and shows it with the run's bucket in the snippets", async () => {
    const issued: IIssuedViewCredential = {
      ...ISSUED,
      view: { ...ISSUED.view, spec: 'run:/0a1b2c3d' }
    };
    const issue = jest.fn(async () => issued);
    const client = {
      issueViewCredential: issue
    } as unknown as InfinstorClient;
    const insertText = jest.fn(() => true);
    const run = aRun({
      input_spec: { type: 'view', bucket: 'my-bucket', prefix: 'tables/' }
    });
    const done = openRunOtherToolsDialog(
      client,
      { insertText } as unknown as InfinstorActions,
      run
    );
    await waitForDialog();
    await shown('[data-testid="othertools"]');
    expect(issue).toHaveBeenCalledWith(
      expect.objectContaining({
        view: 'run:/0a1b2c3d',
        bucket: 'my-bucket',
        prefix: 'tables/'
      })
    );
    expect(
      document.querySelector('[data-testid="othertools-snippet"]')?.textContent
    ).toContain('s3://my-bucket/tables/');
    await acceptDialog();
    await expect(done).resolves.toEqual(issued);
    expect(insertText).toHaveBeenCalledTimes(1);
  });

  it('says why when the run read no bucket view', async () => {
    const issue = jest.fn();
    const done = openRunOtherToolsDialog(
      { issueViewCredential: issue } as unknown as InfinstorClient,
      { insertText: jest.fn() } as unknown as InfinstorActions,
      aRun({})
    );
    await waitForDialog();
    expect(document.querySelector('.jp-Dialog')?.textContent).toContain(
      'read no bucket view'
    );
    await acceptDialog();
    await expect(done).resolves.toBeNull();
    expect(issue).not.toHaveBeenCalled();
  });
});
