import { Notification } from '@jupyterlab/apputils';
import * as React from 'react';
import { act } from 'react';
import { createRoot } from 'react-dom/client';

import { InfinstorActions } from '../browse/actions';
import { InfinstorClient } from '../api/client';
import { ILabel, IRun, ISyncJob, IVerifyReport } from '../api/types';
import { RunNotifications } from '../transforms/actions';
import { InfinstorModel } from '../model';
import { LabelsView } from '../sections/labels';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const LABEL: ILabel = {
  name: 'daisies-2026-11',
  bucket: 'flowers',
  prefix: 'daisy/',
  kind: 'snapshot',
  start_ms: null,
  end_ms: Date.UTC(2026, 10, 20, 10, 0, 0) + 999,
  spec: 'tm20261120100000',
  fingerprint: 'sha256:' + '0'.repeat(64),
  object_count: 3,
  total_bytes: 2048,
  description: '',
  created_ms: Date.UTC(2026, 10, 21),
  created: '2026-11-21T00:00:00.000Z',
  created_by: 'alice'
};

const REPORT: IVerifyReport = {
  name: LABEL.name,
  ok: true,
  fingerprint: LABEL.fingerprint,
  index_fingerprint: LABEL.fingerprint,
  index_matches: true,
  object_count: 3,
  index_object_count: 3,
  s3_checked: 3,
  s3_missing: [],
  s3_changed: []
};

function job(state: ISyncJob['state']): ISyncJob {
  return {
    id: 'j1',
    bucket: 'flowers',
    full: false,
    state,
    done: state !== 'running',
    error: state === 'error' ? 'The S3 endpoint did not answer.' : null,
    started_ms: 0,
    finished_ms: 1,
    warnings: [],
    versions_seen: 1234,
    versions_written: 12,
    pages: 1,
    rate: 1,
    resumed_after: null
  };
}

function setup(client: Partial<InfinstorClient>) {
  const model = new InfinstorModel({
    client: {
      listBuckets: jest.fn(async () => ({ buckets: [] })),
      listLabels: jest.fn(async () => ({ labels: [LABEL] })),
      ...client
    } as unknown as InfinstorClient,
    settings: { timeDisplay: 'utc' }
  });
  const shell = { add: jest.fn(), activateById: jest.fn() };
  const actions = new InfinstorActions({
    app: { shell } as any,
    model,
    sidebarId: 'infinstor-sidebar'
  });
  return { model, actions, shell };
}

function latest(): Notification.INotification {
  const all = Notification.manager.notifications;
  return all[0];
}

describe('label cards', () => {
  it('delete with a trash icon that asks first, naming the label', async () => {
    const deleteLabel = jest.fn(async () => undefined);
    const { model, actions } = setup({ deleteLabel } as any);
    await model.refreshLabels();
    const host = document.createElement('div');
    document.body.appendChild(host);
    const root = createRoot(host);
    await act(async () => {
      root.render(<LabelsView model={model} actions={actions} />);
    });
    const buttons = Array.from(host.querySelectorAll('button'));
    // No full-size "Delete" text button beside Use and Verify.
    expect(buttons.map(b => b.textContent)).toEqual([
      '',
      'Use',
      'Verify',
      'Details'
    ]);
    const trash = host.querySelector(
      `button[aria-label="Delete label ${LABEL.name}"]`
    ) as HTMLButtonElement;
    expect(trash).not.toBeNull();
    expect(trash.title).toBe(`Delete label ${LABEL.name}…`);
    await act(async () => {
      trash.click();
    });
    const dialog = document.querySelector('.jp-Dialog') as HTMLElement;
    expect(dialog.textContent).toContain(`Delete label ${LABEL.name}?`);
    expect(deleteLabel).not.toHaveBeenCalled();
    await act(async () => {
      (dialog.querySelector('.jp-mod-warn') as HTMLButtonElement).click();
      await new Promise(resolve => setTimeout(resolve, 0));
    });
    expect(deleteLabel).toHaveBeenCalledWith(LABEL.name);
    expect(model.labels).toEqual([]);
    await act(async () => {
      root.unmount();
    });
    model.dispose();
  });
});

describe('notifications for work the user started', () => {
  it('follow a verify from pending to success, with Details', async () => {
    let finish: (r: IVerifyReport) => void = () => undefined;
    const verifyLabel = jest.fn(
      () => new Promise<IVerifyReport>(resolve => (finish = resolve))
    );
    const { model, actions, shell } = setup({ verifyLabel } as any);
    await model.refreshLabels();
    const done = actions.verifyLabel(LABEL.name);
    expect(latest().type).toBe('in-progress');
    expect(latest().message).toBe(`Verifying label ${LABEL.name}…`);
    finish(REPORT);
    await done;
    const note = latest();
    expect(note.type).toBe('success');
    expect(note.message).toContain('verified: the same 3 versions');
    const details = note.options.actions?.find(a => a.label === 'Details');
    expect(details).toBeDefined();
    details!.callback(new MouseEvent('click'));
    expect(shell.add).toHaveBeenCalledTimes(1);
    expect(shell.add.mock.calls[0][0].title.label).toBe(`Label: ${LABEL.name}`);
    model.dispose();
  });

  it('report drift as an error that stays', async () => {
    const drift = {
      ...REPORT,
      ok: false,
      s3_missing: [{ key: 'daisy/a.png', version_id: 'v1', error: 'gone' }]
    };
    const { model, actions } = setup({
      verifyLabel: jest.fn(async () => drift)
    } as any);
    await actions.verifyLabel(LABEL.name);
    expect(latest().type).toBe('error');
    expect(latest().message).toContain('has drifted: 1 versions missing');
    expect(latest().options.autoClose).toBe(false);
    model.dispose();
  });

  it('follow a sync until its job ends, with Browse', async () => {
    const { model, actions } = setup({
      sync: jest.fn(async () => job('done'))
    } as any);
    await actions.syncBucket('flowers');
    const note = latest();
    expect(note.type).toBe('success');
    expect(note.message).toBe(
      'Synced s3://flowers: 1,234 versions listed, 12 new in the index.'
    );
    expect(note.options.actions?.map(a => a.label)).toEqual(['Browse']);
    model.dispose();
  });

  it("say why a sync failed, in the server's words", async () => {
    const { model, actions } = setup({
      sync: jest.fn(async () => job('error'))
    } as any);
    await actions.syncBucket('flowers');
    expect(latest().type).toBe('error');
    expect(latest().message).toBe(
      'The sync of s3://flowers failed: The S3 endpoint did not answer.'
    );
    model.dispose();
  });
  it('follow the first sync of a bucket the user tracked, with Browse', async () => {
    const track = jest.fn(async () => ({
      name: 'flowers',
      tracked: true,
      versioning: 'Enabled',
      sync_job: 'j1'
    }));
    const { model, actions } = setup({
      track,
      syncJob: jest.fn(async () => job('done'))
    } as any);
    await actions.trackBucket('flowers', { events: false });
    expect(track).toHaveBeenCalledWith('flowers', {
      enable_versioning: true,
      events: false
    });
    const note = latest();
    expect(note.type).toBe('success');
    expect(note.message).toBe(
      'Synced s3://flowers: 1,234 versions listed, 12 new in the index.'
    );
    expect(note.options.actions?.map(a => a.label)).toEqual(['Browse']);
    model.dispose();
  });

  it('leave a track that started no sync without a notification', async () => {
    const { model, actions } = setup({
      track: jest.fn(async () => ({ name: 'flowers', sync_job: null }))
    } as any);
    const before = Notification.manager.count;
    await actions.trackBucket('flowers', { events: false });
    expect(Notification.manager.count).toBe(before);
    model.dispose();
  });
});

describe('run notifications', () => {
  const run = {
    id: 'r1',
    transform: 'thumbnails',
    revision: 2,
    executor: 'local',
    output_uri: 's3://out/thumbnails/r1/',
    state: 'running',
    done: 0,
    total: 3,
    mlflow_url: null,
    error: null
  } as unknown as IRun;

  it('go from pending to success with Open output', () => {
    const openOutput = jest.fn();
    const notes = new RunNotifications({ showRun: jest.fn(), openOutput });
    notes.follow(run);
    expect(latest().type).toBe('in-progress');
    expect(latest().message).toBe('Running thumbnails (revision 2) on local…');
    notes.finished({ ...run, state: 'succeeded', done: 3 });
    const note = latest();
    expect(note.type).toBe('success');
    expect(note.message).toBe(
      'thumbnails finished: 3 objects done, output in s3://out/thumbnails/r1/'
    );
    const open = note.options.actions?.find(a => a.label === 'Open output');
    open!.callback(new MouseEvent('click'));
    expect(openOutput).toHaveBeenCalled();
  });

  it("show a failure's error, and stay", () => {
    const notes = new RunNotifications({
      showRun: jest.fn(),
      openOutput: jest.fn()
    });
    notes.follow({ ...run, id: 'r2' });
    notes.finished({
      ...run,
      id: 'r2',
      state: 'failed',
      error: 'NameError: x'
    });
    expect(latest().type).toBe('error');
    expect(latest().message).toBe('thumbnails failed: NameError: x');
    expect(latest().options.autoClose).toBe(false);
    expect(latest().options.actions?.map(a => a.label)).toEqual(['Show run']);
  });

  it('leave runs started elsewhere alone', () => {
    const before = Notification.manager.count;
    const notes = new RunNotifications({
      showRun: jest.fn(),
      openOutput: jest.fn()
    });
    notes.finished({ ...run, id: 'other', state: 'succeeded' });
    expect(Notification.manager.count).toBe(before);
  });
});
