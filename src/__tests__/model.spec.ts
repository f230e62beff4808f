import { InfinstorClient } from '../api/client';
import { InfinstorModel, IViewState } from '../model';
import {
  IBucketList,
  ILabel,
  IListObjectsRequest,
  IObjectsPage,
  ISyncJob,
  ITimeSpec,
  ITimeline
} from '../api/types';

const T = Date.UTC(2026, 10, 20, 10, 0, 0);

function spec(partial: Partial<ITimeSpec> = {}): ITimeSpec {
  return {
    kind: 'snapshot',
    start_ms: null,
    end_ms: T + 123,
    canonical: '2026-11-20T10:00:00.123Z',
    display: 'as of 2026-11-20 10:00:00.123 UTC',
    label: null,
    ...partial
  };
}

function page(
  prefix: string,
  names: string[],
  folders: string[] = [],
  next: string | null = null
): IObjectsPage {
  return {
    objects: names.map((n, i) => ({
      key: prefix + n,
      version_id: `v${i}`,
      size: (i + 1) * 10,
      etag: '"e"',
      last_modified: new Date(T - i * 1000).toISOString()
    })),
    prefixes: folders.map(f => prefix + f),
    next_token: next,
    bucket: 'b',
    prefix,
    delimiter: '/',
    spec: spec()
  };
}

const LABEL: ILabel = {
  name: 'flowers-v1',
  bucket: 'b2',
  prefix: 'flowers/',
  kind: 'snapshot',
  start_ms: null,
  end_ms: T + 999,
  spec: 'tm20261120100000',
  fingerprint: 'sha256:' + '0'.repeat(64),
  object_count: 3,
  total_bytes: 30,
  description: '',
  created_ms: T,
  created: '',
  created_by: ''
};

const TIMELINE: ITimeline = {
  start_ms: T,
  end_ms: T + 4000,
  bin_ms: 1000,
  created: [1, 2, 0, 3, 1],
  deleted: [0, 0, 1, 0, 0]
};

/** A stand-in for the REST client: each method is a jest mock. */
function fakeClient() {
  const fake = {
    listObjects: jest.fn(
      async (_b: string, r: IListObjectsRequest): Promise<IObjectsPage> =>
        page(r.prefix ?? '', ['a.csv'])
    ),
    listBuckets: jest.fn(async (): Promise<IBucketList> => ({
      buckets: [
        { name: 'a-untracked', tracked: false },
        {
          name: 'b',
          tracked: true,
          tracked_ms: T,
          versioning: 'Enabled',
          last_sync_ms: T,
          version_count: 5,
          first_ms: T,
          last_ms: T + 4000,
          sync_in_progress: false,
          events: false,
          last_event_ms: null,
          lag_ms: null,
          events_applied: 0,
          malformed_events: 0,
          last_error: null,
          pending_messages: null,
          sync_job: null
        }
      ]
    })),
    timeline: jest.fn(async () => TIMELINE),
    timespec: jest.fn(async (text: string): Promise<ITimeSpec> => {
      if (text === 'bad') {
        throw new Error("'bad' is not a time spec I understand.");
      }
      if (text.startsWith('label:/')) {
        return spec({ label: text.slice(7), end_ms: LABEL.end_ms });
      }
      if (text.includes('-')) {
        return spec({ kind: 'slice', start_ms: T, end_ms: T + 60_999 });
      }
      return spec({ end_ms: T + 999 });
    }),
    getLabel: jest.fn(async () => LABEL),
    listLabels: jest.fn(async () => ({ labels: [LABEL] })),
    createLabel: jest.fn(async (body: any) => ({ ...LABEL, ...body })),
    deleteLabel: jest.fn(async () => undefined),
    verifyLabel: jest.fn(async () => ({ ok: true }) as any),
    diff: jest.fn(async () => ({ counts: { added: 1 } }) as any),
    track: jest.fn(async (bucket: string) => ({
      name: bucket,
      tracked: true,
      sync_job: 'job-1'
    })),
    untrack: jest.fn(async () => undefined),
    sync: jest.fn(),
    syncJob: jest.fn()
  };
  return fake;
}

function lastCall<T extends any[]>(mock: jest.Mock<any, T>): T {
  return mock.mock.calls[mock.mock.calls.length - 1];
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 0));
  }
}

function makeModel() {
  const client = fakeClient();
  const model = new InfinstorModel({
    client: client as unknown as InfinstorClient
  });
  return { client, model };
}

describe('InfinstorModel view state', () => {
  it('starts empty, live, with nothing to list', () => {
    const { model } = makeModel();
    expect(model.toJSON()).toEqual({
      bucket: null,
      prefix: '',
      mode: 'now',
      atMs: null,
      sliceStartMs: null,
      sliceEndMs: null,
      label: null
    });
    expect(model.viewParams()).toEqual({});
    expect(model.specText()).toBe('now');
  });

  it('emits stateChanged once per change and lists the new view', async () => {
    const { client, model } = makeModel();
    const states: IViewState[] = [];
    model.stateChanged.connect((_, s) => states.push(s));
    model.setBucket('b');
    model.setBucket('b'); // no-op
    model.setPrefix('flowers/');
    await flush();
    expect(states.map(s => [s.bucket, s.prefix])).toEqual([
      ['b', ''],
      ['b', 'flowers/']
    ]);
    const last = lastCall(client.listObjects);
    expect(last[0]).toBe('b');
    expect(last[1]).toMatchObject({
      prefix: 'flowers/',
      delimiter: '/',
      max_keys: 500,
      page_token: undefined
    });
    expect(model.entries.map(e => e.name)).toEqual(['a.csv']);
    expect(model.spec?.display).toBe('as of 2026-11-20 10:00:00.123 UTC');
    // The timeline follows the folder.
    expect(client.timeline).toHaveBeenLastCalledWith('b', {
      prefix: 'flowers/',
      bins: 120
    });
  });

  it('changing bucket goes back to its root', () => {
    const { model } = makeModel();
    model.setBucket('b');
    model.setPrefix('x/');
    model.setBucket('c');
    expect(model.prefix).toBe('');
  });

  it('sends a snapshot as tm for a whole second and exact otherwise', async () => {
    const { client, model } = makeModel();
    model.setBucket('b');
    model.setSnapshot(T + 999);
    expect(model.mode).toBe('snapshot');
    expect(model.viewParams()).toEqual({ at: 'tm20261120100000' });
    expect(model.specText()).toBe('tm20261120100000');
    await flush();
    expect(lastCall(client.listObjects)[1].at).toBe('tm20261120100000');
    model.setSnapshot(T + 5);
    expect(model.viewParams()).toEqual({ at: '2026-11-20T10:00:00.005Z' });
  });

  it('orders a slice window and sends it as a slice', () => {
    const { model } = makeModel();
    model.setSlice(T + 60_999, T);
    expect([model.sliceStartMs, model.sliceEndMs]).toEqual([T, T + 60_999]);
    expect(model.viewParams()).toEqual({
      slice: 'tm20261120100000-tm20261120100100'
    });
  });

  it('does not emit when the same time is set again', () => {
    const { model } = makeModel();
    const spy = jest.fn();
    model.stateChanged.connect(spy);
    model.setSnapshot(T + 999);
    model.setSnapshot(T + 999);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('switching to snapshot freezes the time shown; slice takes the timeline', async () => {
    const { model } = makeModel();
    model.setBucket('b');
    await flush();
    model.setMode('snapshot');
    // The listing was answered at T+123: the snapshot is that whole second.
    expect(model.atMs).toBe(T + 999);
    model.setMode('slice');
    expect([model.sliceStartMs, model.sliceEndMs]).toEqual([T, T + 4999]);
    model.setMode('now');
    expect(model.viewParams()).toEqual({});
    // The times are kept for the next switch.
    model.setMode('snapshot');
    expect(model.atMs).toBe(T + 999);
  });

  it('pins "now" to the time the listing was answered', async () => {
    const { model } = makeModel();
    model.setBucket('b');
    await flush();
    expect(model.pinnedViewParams()).toEqual({
      at: '2026-11-20T10:00:00.123Z'
    });
  });

  it('restores a saved view and rejects inconsistent ones', () => {
    const { model } = makeModel();
    model.restore({
      bucket: 'b',
      prefix: 'p/',
      mode: 'slice',
      sliceStartMs: T,
      sliceEndMs: T + 999
    });
    expect(model.toJSON()).toMatchObject({
      bucket: 'b',
      prefix: 'p/',
      mode: 'slice',
      sliceStartMs: T,
      sliceEndMs: T + 999
    });
    model.restore({ bucket: 'b', mode: 'snapshot', atMs: null } as any);
    expect(model.mode).toBe('now');
    model.restore({ bucket: 7, mode: 'weird' } as any);
    expect(model.toJSON()).toMatchObject({ bucket: null, mode: 'now' });
  });
});

describe('InfinstorModel listing', () => {
  it('loads further pages with page_token and appends them', async () => {
    const { client, model } = makeModel();
    client.listObjects
      .mockResolvedValueOnce(page('', ['a', 'b'], ['dir/'], 'TOKEN-1'))
      .mockResolvedValueOnce(page('', ['c'], ['zdir/'], null));
    const changes = jest.fn();
    model.listingChanged.connect(changes);
    model.setBucket('b');
    await flush();
    expect(model.hasMore).toBe(true);
    await model.loadMore();
    expect(client.listObjects.mock.calls[1][1].page_token).toBe('TOKEN-1');
    expect(model.hasMore).toBe(false);
    // Folders first, then files, each in key order.
    expect(model.entries.map(e => e.name)).toEqual([
      'dir/',
      'zdir/',
      'a',
      'b',
      'c'
    ]);
    expect(changes).toHaveBeenCalled();
    await model.loadMore(); // nothing more: no request
    expect(client.listObjects).toHaveBeenCalledTimes(2);
  });

  it('ignores the answer to a view that is no longer shown', async () => {
    const { client, model } = makeModel();
    let release: (p: IObjectsPage) => void = () => undefined;
    client.listObjects.mockImplementationOnce(
      () => new Promise<IObjectsPage>(resolve => (release = resolve))
    );
    model.setBucket('b');
    model.setPrefix('new/');
    await flush();
    release(page('', ['stale.txt']));
    await flush();
    expect(model.entries.map(e => e.key)).toEqual(['new/a.csv']);
  });

  it("shows the server's message when a listing fails", async () => {
    const { client, model } = makeModel();
    client.listObjects.mockRejectedValueOnce(
      new Error("Bucket 'b' is not tracked; track it first.")
    );
    model.setBucket('b');
    await flush();
    expect(model.listingError).toBe(
      "Bucket 'b' is not tracked; track it first."
    );
    expect(model.loading).toBe(false);
  });

  it('sorts by size or time (folders stay first) and filters by name', async () => {
    const { client, model } = makeModel();
    client.listObjects.mockResolvedValueOnce(
      page('', ['small.txt', 'mid.csv', 'big.json'], ['dir/'])
    );
    model.setBucket('b');
    await flush();
    model.setSort('size', false);
    expect(model.entries.map(e => e.name)).toEqual([
      'dir/',
      'big.json',
      'mid.csv',
      'small.txt'
    ]);
    model.setSort('modified', true);
    expect(model.entries.map(e => e.name)).toEqual([
      'dir/',
      'big.json',
      'mid.csv',
      'small.txt'
    ]);
    model.setSort('name'); // same key flips to descending... then name asc
    model.setSort('name', false);
    expect(model.entries.map(e => e.name)).toEqual([
      'dir/',
      'small.txt',
      'mid.csv',
      'big.json'
    ]);
    model.setFilter('CSV');
    expect(model.entries.map(e => e.name)).toEqual(['mid.csv']);
  });

  it('uses the page size setting (at most 1000)', async () => {
    const { client, model } = makeModel();
    model.updateSettings({ pageSize: 5000 });
    expect(model.settings.pageSize).toBe(1000);
    model.updateSettings({ pageSize: 50 });
    model.setBucket('b');
    await flush();
    expect(lastCall(client.listObjects)[1].max_keys).toBe(50);
  });

  it('keeps 100,000 entries and slices them cheaply', () => {
    const { model } = makeModel();
    const names = Array.from({ length: 100_000 }, (_, i) => `f${i}`);
    const started = Date.now();
    model.applyPage(page('', names), false);
    expect(model.entries).toHaveLength(100_000);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('InfinstorModel time specs and labels', () => {
  it('applies a spec the server parsed', async () => {
    const { client, model } = makeModel();
    await model.applySpec('tm20261120100000');
    expect(client.timespec).toHaveBeenCalledWith('tm20261120100000');
    expect(model.mode).toBe('snapshot');
    expect(model.atMs).toBe(T + 999);
    await model.applySpec('tmA-tmB');
    expect(model.mode).toBe('slice');
    await model.applySpec('now');
    expect(model.mode).toBe('now');
  });

  it("rejects a bad spec with the server's message and keeps the view", async () => {
    const { model } = makeModel();
    model.setSnapshot(T + 999);
    await expect(model.applySpec('bad')).rejects.toThrow(
      "'bad' is not a time spec I understand."
    );
    expect(model.atMs).toBe(T + 999);
  });

  it('a label spec switches to the label, its bucket and folder', async () => {
    const { model } = makeModel();
    model.setBucket('b');
    await model.applySpec('label:/flowers-v1');
    expect(model.toJSON()).toMatchObject({
      mode: 'label',
      label: 'flowers-v1',
      bucket: 'b2',
      prefix: 'flowers/'
    });
    expect(model.viewParams()).toEqual({ label: 'flowers-v1' });
  });

  it('creates a label of the pinned view, and deleting it leaves the label view', async () => {
    const { client, model } = makeModel();
    model.setBucket('b');
    model.setPrefix('flowers/');
    model.setSlice(T, T + 60_999);
    await flush();
    const label = await model.createLabel('mine', 'desc');
    expect(client.createLabel).toHaveBeenCalledWith({
      name: 'mine',
      bucket: 'b',
      prefix: 'flowers/',
      at: undefined,
      slice: 'tm20261120100000-tm20261120100100',
      description: 'desc'
    });
    expect(model.labels.map(l => l.name)).toContain(label.name);
    model.useLabel(label);
    expect(model.mode).toBe('label');
    await model.deleteLabel(label.name);
    expect(model.mode).toBe('now');
    expect(model.labels.map(l => l.name)).not.toContain('mine');
  });

  it('labels what a label view shows: above its folder, only that folder', async () => {
    const { client, model } = makeModel();
    await model.refreshLabels();
    model.useLabel('flowers-v1');
    model.setPrefix('');
    await flush();
    await model.createLabel('again');
    expect(client.createLabel).toHaveBeenLastCalledWith(
      expect.objectContaining({ bucket: 'b2', prefix: 'flowers/' })
    );
    model.setPrefix('flowers/daisy/');
    await flush();
    await model.createLabel('daisies');
    expect(client.createLabel).toHaveBeenLastCalledWith(
      expect.objectContaining({ bucket: 'b2', prefix: 'flowers/daisy/' })
    );
  });

  it('keeps the outcome of a verification', async () => {
    const { model } = makeModel();
    const changed = jest.fn();
    model.labelsChanged.connect(changed);
    await model.verifyLabel('flowers-v1');
    expect(model.verifyState('flowers-v1')).toMatchObject({
      running: false,
      report: { ok: true },
      error: null
    });
    expect(changed).toHaveBeenCalledTimes(2);
  });

  it('compares two times under the current folder', async () => {
    const { client, model } = makeModel();
    model.setBucket('b');
    model.setPrefix('p/');
    await model.computeDiff('tm1', 'now');
    expect(client.diff).toHaveBeenCalledWith('b', {
      prefix: 'p/',
      from: 'tm1',
      to: 'now'
    });
    expect(model.diff?.counts.added).toBe(1);
    model.setPrefix('q/');
    expect(model.diff).toBeNull();
  });
});

describe('InfinstorModel buckets and syncs', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('picks the first tracked bucket (or the default bucket setting)', async () => {
    const { model } = makeModel();
    await model.refreshBuckets();
    expect(model.bucket).toBe('b');
    expect(model.currentBucket?.version_count).toBe(5);

    const other = makeModel();
    other.model.updateSettings({ defaultBucket: 'a-untracked' });
    await other.model.refreshBuckets();
    expect(other.model.bucket).toBe('a-untracked');
  });

  it('tracks with consent and follows the sync job until it is done', async () => {
    const { client, model } = makeModel();
    const job = (state: ISyncJob['state'], seen: number): ISyncJob => ({
      id: 'job-1',
      bucket: 'new-bucket',
      full: false,
      state,
      done: state !== 'running',
      error: null,
      started_ms: T,
      finished_ms: state === 'running' ? null : T + 10,
      warnings: [],
      versions_seen: seen,
      versions_written: seen,
      pages: 1,
      rate: 100,
      resumed_after: null
    });
    client.syncJob
      .mockResolvedValueOnce(job('running', 10))
      .mockResolvedValueOnce(job('done', 20));
    const seen: number[] = [];
    model.bucketsChanged.connect(() => {
      const s = model.syncState('new-bucket');
      if (s?.job) {
        seen.push(s.job.versions_seen);
      }
    });
    await model.track('new-bucket', { events: true });
    expect(client.track).toHaveBeenCalledWith('new-bucket', {
      enable_versioning: true,
      events: true
    });
    expect(model.bucket).toBe('new-bucket');
    for (
      let i = 0;
      i < 60 && model.syncState('new-bucket')?.job?.state !== 'done';
      i++
    ) {
      await new Promise(resolve => setTimeout(resolve, 100));
    }
    expect(model.syncState('new-bucket')?.job?.state).toBe('done');
    expect(seen).toEqual(expect.arrayContaining([10, 20]));
    // The bucket list is refreshed when the sync ends.
    expect(client.listBuckets).toHaveBeenCalled();
    model.dispose();
  });

  it('stops tracking a bucket: forgets it and browses another tracked one', async () => {
    const { client, model } = makeModel();
    const listed = await client.listBuckets();
    const other = { ...(listed.buckets[1] as any), name: 'c' };
    client.listBuckets.mockResolvedValueOnce({
      buckets: [...listed.buckets, other]
    });
    await model.refreshBuckets();
    expect(model.bucket).toBe('b');
    // After untracking, the server lists b as a bucket it sees but does not track.
    client.listBuckets.mockResolvedValueOnce({
      buckets: [listed.buckets[0], { name: 'b', tracked: false }, other]
    });
    await model.untrack('b');
    expect(client.untrack).toHaveBeenCalledWith('b', true);
    expect(model.bucket).toBe('c');
    expect(model.buckets.find(b => b.name === 'b')?.tracked).toBe(false);

    // The last tracked bucket: nothing left to browse.
    client.listBuckets.mockResolvedValueOnce({
      buckets: [listed.buckets[0], { name: 'b', tracked: false }]
    });
    await model.untrack('c');
    expect(model.bucket).toBe(null);
    model.dispose();
  });

  it('a live view reloads when the bucket got new versions', async () => {
    const { client, model } = makeModel();
    await model.refreshBuckets();
    await flush();
    const calls = client.listObjects.mock.calls.length;
    await model.refreshBuckets(); // nothing new
    expect(client.listObjects.mock.calls.length).toBe(calls);
    const grown = await client.listBuckets();
    (grown.buckets[1] as any).version_count = 6;
    client.listBuckets.mockResolvedValueOnce(grown);
    await model.refreshBuckets();
    await flush();
    expect(client.listObjects.mock.calls.length).toBe(calls + 1);
    // A snapshot does not move.
    model.setSnapshot(T + 999);
    await flush();
    const pinned = client.listObjects.mock.calls.length;
    const again = JSON.parse(JSON.stringify(grown));
    again.buckets[1].version_count = 7;
    client.listBuckets.mockResolvedValueOnce(again);
    await model.refreshBuckets();
    await flush();
    expect(client.listObjects.mock.calls.length).toBe(pinned);
  });

  it('stops its polls when disposed', () => {
    const { model } = makeModel();
    model.startStatusPoll();
    model.dispose();
    expect(model.isDisposed).toBe(true);
  });
});
