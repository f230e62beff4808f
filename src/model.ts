/**
 * The state of the InfinStor sidebar: which bucket, folder and time are shown,
 * the listing of that view, the buckets with their sync status, the timeline,
 * labels and the last diff. Views subscribe to its Lumino signals; every
 * server call goes through `InfinstorClient`.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { InfinstorClient } from './api/client';
import {
  IBucket,
  IDiff,
  ILabel,
  IObjectsPage,
  ISyncJob,
  ITimeSpec,
  ITimeline,
  ITrackedBucket,
  IVerifyReport,
  IViewParams
} from './api/types';
import { DEFAULT_SETTINGS, ISettings } from './tokens';
import {
  formatIso,
  formatTm,
  parseIsoTime,
  secondEnd,
  secondStart
} from './time';
import { trans } from './i18n';
import {
  IViewState,
  pinnedViewParams,
  specText,
  TimeMode,
  viewParams
} from './viewstate';
import { errorMessage } from './errors';

export type { IViewState, TimeMode } from './viewstate';

/** One row of the browser: a folder (common prefix) or a file (object version). */
export interface IEntry {
  kind: 'folder' | 'file';
  /** Full key (files) or prefix ending with the delimiter (folders). */
  key: string;
  /** Shown name, relative to the listed prefix. */
  name: string;
  /** Bytes; -1 for folders. */
  size: number;
  /** Epoch ms; NaN for folders. */
  modifiedMs: number;
  versionId: string;
  etag: string;
}

export type SortKey = 'name' | 'size' | 'modified';

/** Progress of a sync job the sidebar watches. */
export interface ISyncState {
  job: ISyncJob | null;
  error: string | null;
}

/** A watched sync that ended (`syncEnded`). */
export interface ISyncEnded {
  bucket: string;
  /** The job as it ended; null when it could no longer be read. */
  job: ISyncJob | null;
  error: string | null;
}

/** The outcome of verifying a label. */
export interface IVerifyState {
  running: boolean;
  report: IVerifyReport | null;
  error: string | null;
}

/** Timestamps (performance.now()) of the last listing page, for benchmarks. */
export interface IListingMetrics {
  /** When the last page's response was applied to the model. */
  pageReceived: number;
  /** Number of entries that page added. */
  pageSize: number;
}

/** What the browser view last committed to the DOM, for benchmarks. */
export interface IRenderMetrics {
  /** `IListingMetrics.pageReceived` of the listing it showed. */
  pageReceived: number;
  /** performance.now() of the commit. */
  committed: number;
  /** Rows in the (filtered, sorted) listing. */
  entries: number;
}

const EMPTY_STATE: IViewState = {
  bucket: null,
  prefix: '',
  mode: 'now',
  atMs: null,
  sliceStartMs: null,
  sliceEndMs: null,
  label: null
};

/** Most pages a filter loads on its own before asking the user to load more. */
const FILTER_AUTOLOAD_PAGES = 10;

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The sidebar's model.
 */
export class InfinstorModel implements IDisposable {
  constructor(options: InfinstorModel.IOptions) {
    this.client = options.client;
    this._settings = { ...DEFAULT_SETTINGS, ...(options.settings ?? {}) };
    this._statusPoll = new Poll({
      auto: false,
      factory: () => this.refreshBuckets(),
      frequency: {
        interval: this._settings.pollInterval * 1000,
        backoff: true,
        max: Math.max(60_000, this._settings.pollInterval * 1000)
      },
      name: 'infinstor:bucket-status',
      standby: 'when-hidden'
    });
  }

  /** The REST client. */
  readonly client: InfinstorClient;

  // -- signals ----------------------------------------------------------------------------

  /** The view (bucket, prefix, time) changed. */
  get stateChanged(): ISignal<this, IViewState> {
    return this._stateChanged;
  }

  /** The listing (entries, loading, error, spec, sort, filter) changed. */
  get listingChanged(): ISignal<this, void> {
    return this._listingChanged;
  }

  /** The bucket list or a sync job changed. */
  get bucketsChanged(): ISignal<this, void> {
    return this._bucketsChanged;
  }

  /** The timeline changed. */
  get timelineChanged(): ISignal<this, void> {
    return this._timelineChanged;
  }

  /** The labels (or a verification) changed. */
  get labelsChanged(): ISignal<this, void> {
    return this._labelsChanged;
  }

  /** The diff changed. */
  get diffChanged(): ISignal<this, void> {
    return this._diffChanged;
  }

  /** The selected entry changed. */
  get selectionChanged(): ISignal<this, IEntry | null> {
    return this._selectionChanged;
  }

  /** Settings changed. */
  get settingsChanged(): ISignal<this, ISettings> {
    return this._settingsChanged;
  }

  /**
   * A sync this model watched ended: its last job state, or null with the
   * error when the job could no longer be read.
   */
  get syncEnded(): ISignal<this, ISyncEnded> {
    return this._syncEnded;
  }

  // -- settings ---------------------------------------------------------------------------

  get settings(): Readonly<ISettings> {
    return this._settings;
  }

  /** Apply (a part of) the user's settings. */
  updateSettings(settings: Partial<ISettings>): void {
    const next = { ...this._settings, ...settings };
    next.pageSize = Math.max(1, Math.min(1000, Math.floor(next.pageSize)));
    next.pollInterval = Math.max(1, next.pollInterval);
    const pollChanged = next.pollInterval !== this._settings.pollInterval;
    this._settings = next;
    if (pollChanged) {
      this._statusPoll.frequency = {
        interval: next.pollInterval * 1000,
        backoff: true,
        max: Math.max(60_000, next.pollInterval * 1000)
      };
    }
    this._settingsChanged.emit(next);
  }

  // -- view state -------------------------------------------------------------------------

  get bucket(): string | null {
    return this._state.bucket;
  }

  get prefix(): string {
    return this._state.prefix;
  }

  get mode(): TimeMode {
    return this._state.mode;
  }

  get atMs(): number | null {
    return this._state.atMs;
  }

  get sliceStartMs(): number | null {
    return this._state.sliceStartMs;
  }

  get sliceEndMs(): number | null {
    return this._state.sliceEndMs;
  }

  get label(): string | null {
    return this._state.label;
  }

  /** The saved form of the view. */
  toJSON(): IViewState {
    return { ...this._state };
  }

  /** Restore a saved view (unknown fields are ignored, bad ones reset). */
  restore(state: Partial<IViewState> | null | undefined): void {
    const s = { ...EMPTY_STATE };
    if (state && typeof state === 'object') {
      const num = (v: unknown): number | null =>
        typeof v === 'number' && Number.isFinite(v) ? v : null;
      s.bucket = typeof state.bucket === 'string' ? state.bucket : null;
      s.prefix = typeof state.prefix === 'string' ? state.prefix : '';
      s.mode = (['now', 'snapshot', 'slice', 'label'] as TimeMode[]).includes(
        state.mode as TimeMode
      )
        ? (state.mode as TimeMode)
        : 'now';
      s.atMs = num(state.atMs);
      s.sliceStartMs = num(state.sliceStartMs);
      s.sliceEndMs = num(state.sliceEndMs);
      s.label = typeof state.label === 'string' ? state.label : null;
      if (s.mode === 'snapshot' && s.atMs === null) {
        s.mode = 'now';
      }
      if (
        s.mode === 'slice' &&
        (s.sliceStartMs === null || s.sliceEndMs === null)
      ) {
        s.mode = 'now';
      }
      if (s.mode === 'label' && !s.label) {
        s.mode = 'now';
      }
    }
    this._setState(s, true);
  }

  /** Show a bucket (at its root). */
  setBucket(bucket: string | null): void {
    if (bucket === this._state.bucket) {
      return;
    }
    const next: IViewState = { ...this._state, bucket, prefix: '' };
    if (next.mode === 'label') {
      next.mode = 'now';
    }
    this._setState(next, true);
  }

  /** Show a folder of the current bucket ('' is the root). */
  setPrefix(prefix: string): void {
    if (prefix === this._state.prefix) {
      return;
    }
    this._setState({ ...this._state, prefix }, true);
  }

  /** Show the bucket as it is now (live). */
  setNow(): void {
    this._setState({ ...this._state, mode: 'now' }, false);
  }

  /** Show the snapshot at `atMs` (inclusive; ms 999 is "the whole second"). */
  setSnapshot(atMs: number): void {
    if (!Number.isFinite(atMs)) {
      return;
    }
    this._setState(
      { ...this._state, mode: 'snapshot', atMs: Math.round(atMs) },
      false
    );
  }

  /** Show what arrived in [startMs, endMs] (both inclusive, swapped if reversed). */
  setSlice(startMs: number, endMs: number): void {
    if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) {
      return;
    }
    let a = Math.round(startMs);
    let b = Math.round(endMs);
    if (a > b) {
      [a, b] = [b, a];
    }
    this._setState(
      { ...this._state, mode: 'slice', sliceStartMs: a, sliceEndMs: b },
      false
    );
  }

  /**
   * Show a label's view: its bucket, its prefix (unless `keepPrefix`) and its
   * pinned time. Accepts a label record or a name (looked up in `labels`).
   */
  useLabel(label: ILabel | string): void {
    const record =
      typeof label === 'string'
        ? this._labels.find(l => l.name === label)
        : label;
    const name = typeof label === 'string' ? label : label.name;
    const next: IViewState = { ...this._state, mode: 'label', label: name };
    if (record) {
      const bucketChanged = record.bucket !== this._state.bucket;
      next.bucket = record.bucket;
      next.prefix = record.prefix;
      this._setState(next, bucketChanged || record.prefix !== this.prefix);
    } else {
      this._setState(next, false);
    }
  }

  /**
   * Switch the time mode, keeping (or choosing sensible) times: a snapshot
   * starts at the time shown now, a slice at the timeline's whole range.
   */
  setMode(mode: TimeMode): void {
    if (mode === this._state.mode) {
      return;
    }
    switch (mode) {
      case 'now':
        this.setNow();
        break;
      case 'snapshot': {
        const at =
          this._state.atMs ??
          secondEnd(this._spec ? this._spec.end_ms : Date.now());
        this.setSnapshot(at);
        break;
      }
      case 'slice': {
        let start = this._state.sliceStartMs;
        let end = this._state.sliceEndMs;
        if (start === null || end === null) {
          const t = this._timeline;
          if (t) {
            start = secondStart(t.start_ms);
            end = secondEnd(t.start_ms + t.bin_ms * t.created.length - 1);
          } else {
            const at = this._state.atMs ?? secondEnd(Date.now());
            start = secondStart(at) - 3600_000;
            end = at;
          }
        }
        this.setSlice(start, end);
        break;
      }
      case 'label': {
        const name = this._state.label ?? this._labels[0]?.name ?? null;
        if (name) {
          this.useLabel(name);
        } else {
          this._setState({ ...this._state, mode: 'label', label: null }, false);
        }
        break;
      }
    }
  }

  /**
   * The query parameters naming the current view (`at`, `slice` or `label`;
   * none for now).
   */
  viewParams(): IViewParams {
    return viewParams(this._state);
  }

  /**
   * The view pinned to absolute times: like `viewParams`, but "now" becomes the
   * time the listing was answered at (what the user saw). For code and labels.
   */
  pinnedViewParams(): IViewParams {
    return pinnedViewParams(this._state, this._spec);
  }

  /** The current view as one time spec (the text field shows it). */
  specText(): string {
    return specText(this._state);
  }

  /**
   * Validate a time spec with the server (`GET timespec`) and show it.
   * Rejects with the server's message when the spec is bad.
   */
  async applySpec(text: string): Promise<ITimeSpec | null> {
    const spec = text.trim();
    if (!spec) {
      throw new Error(
        trans.__('Type a time spec, e.g. tm20261120100000 or now.')
      );
    }
    if (spec.toLowerCase() === 'now') {
      this.setNow();
      return null;
    }
    const parsed = await this.client.timespec(spec);
    if (parsed.label) {
      if (!this._labels.some(l => l.name === parsed.label)) {
        try {
          const label = await this.client.getLabel(parsed.label);
          this._labels = [...this._labels, label].sort((a, b) =>
            compareText(a.name, b.name)
          );
          this._labelsChanged.emit();
        } catch {
          // The label resolved a moment ago; use it by name.
        }
      }
      this.useLabel(parsed.label);
    } else if (parsed.kind === 'slice' && parsed.start_ms !== null) {
      this.setSlice(parsed.start_ms, parsed.end_ms);
    } else {
      this.setSnapshot(parsed.end_ms);
    }
    return parsed;
  }

  // -- listing ----------------------------------------------------------------------------

  /** The spec the last listing was answered for (its `display` is the "as of" line). */
  get spec(): ITimeSpec | null {
    return this._spec;
  }

  get loading(): boolean {
    return this._loading;
  }

  get listingError(): string | null {
    return this._listingError;
  }

  /** More pages exist. */
  get hasMore(): boolean {
    return this._nextToken !== null;
  }

  /** Entries loaded so far (folders and files), before sorting and filtering. */
  get loadedCount(): number {
    return this._folders.length + this._files.length;
  }

  get sortKey(): SortKey {
    return this._sortKey;
  }

  get sortAscending(): boolean {
    return this._sortAscending;
  }

  get filter(): string {
    return this._filter;
  }

  /** Timestamps of the last page, for benchmarks. */
  get metrics(): IListingMetrics {
    return this._metrics;
  }

  /** Set by the browser view after each commit (benchmarks read it). */
  renderMetrics: IRenderMetrics | null = null;

  /**
   * The rows to show: folders then files, filtered by name and sorted.
   * Computed lazily and cached until the listing, sort or filter changes.
   */
  get entries(): ReadonlyArray<IEntry> {
    if (this._view === null) {
      this._view = this._computeView();
    }
    return this._view;
  }

  /** Sort by a column; the same column again flips the direction. */
  setSort(key: SortKey, ascending?: boolean): void {
    const asc =
      ascending ?? (key === this._sortKey ? !this._sortAscending : true);
    if (key === this._sortKey && asc === this._sortAscending) {
      return;
    }
    this._sortKey = key;
    this._sortAscending = asc;
    this._view = null;
    this._listingChanged.emit();
  }

  /** Show only entries whose name contains `text` (case-insensitive). */
  setFilter(text: string): void {
    if (text === this._filter) {
      return;
    }
    this._filter = text;
    this._filterPages = 0;
    this._view = null;
    this._listingChanged.emit();
  }

  /**
   * Whether the browser should fetch the next page by itself: while a filter
   * hides most rows, up to a few pages per change of filter.
   */
  get filterMayAutoload(): boolean {
    return this._filterPages < FILTER_AUTOLOAD_PAGES;
  }

  /** Reload the listing of the current view from its first page. */
  async refresh(): Promise<void> {
    const gen = ++this._generation;
    this._folders = [];
    this._files = [];
    this._nextToken = null;
    this._listingError = null;
    this._view = null;
    this._filterPages = 0;
    this._setSelected(null);
    const bucket = this._state.bucket;
    if (!bucket || (this._state.mode === 'label' && !this._state.label)) {
      this._loading = false;
      this._spec = null;
      this._listingChanged.emit();
      return;
    }
    this._loading = true;
    this._listingChanged.emit();
    await this._fetchPage(gen, bucket, undefined);
  }

  /** Fetch the next page, if any (no-op while a page is loading). */
  async loadMore(): Promise<void> {
    const bucket = this._state.bucket;
    if (!bucket || this._loading || this._nextToken === null) {
      return;
    }
    if (this._filter) {
      this._filterPages += 1;
    }
    this._loading = true;
    this._listingChanged.emit();
    await this._fetchPage(this._generation, bucket, this._nextToken);
  }

  /**
   * Put a listing page into the model as if the server had sent it for the
   * current view (`append` adds it after the loaded ones). The network path
   * uses this too; benchmarks feed synthetic pages through it.
   */
  applyPage(page: IObjectsPage, append: boolean): void {
    if (!append) {
      this._folders = [];
      this._files = [];
    }
    const prefix = page.prefix ?? '';
    const cut = prefix.length;
    for (const p of page.prefixes) {
      this._folders.push({
        kind: 'folder',
        key: p,
        name: p.slice(cut),
        size: -1,
        modifiedMs: NaN,
        versionId: '',
        etag: ''
      });
    }
    for (const o of page.objects) {
      this._files.push({
        kind: 'file',
        key: o.key,
        name: o.key.slice(cut),
        size: o.size,
        modifiedMs: parseIsoTime(o.last_modified),
        versionId: o.version_id,
        etag: o.etag
      });
    }
    this._nextToken = page.next_token;
    this._spec = page.spec;
    this._listingError = null;
    this._loading = false;
    this._view = null;
    this._metrics = {
      pageReceived: performance.now(),
      pageSize: page.objects.length + page.prefixes.length
    };
    this._listingChanged.emit();
  }

  // -- selection --------------------------------------------------------------------------

  get selected(): IEntry | null {
    return this._selected;
  }

  select(entry: IEntry | null): void {
    this._setSelected(entry);
  }

  // -- buckets ----------------------------------------------------------------------------

  get buckets(): ReadonlyArray<IBucket> {
    return this._buckets;
  }

  get bucketsError(): string | null {
    return this._bucketsError;
  }

  /** Whether the bucket list has been fetched at least once. */
  get bucketsLoaded(): boolean {
    return this._bucketsLoaded;
  }

  /** The status of the current bucket, when it is tracked. */
  get currentBucket(): ITrackedBucket | null {
    const b = this._buckets.find(x => x.name === this._state.bucket);
    return b && b.tracked ? b : null;
  }

  /** Sync jobs being watched, by bucket. */
  syncState(bucket: string): ISyncState | null {
    return this._syncs.get(bucket) ?? null;
  }

  /** Fetch the bucket list (with tracked buckets' status). */
  async refreshBuckets(): Promise<void> {
    try {
      const { buckets } = await this.client.listBuckets();
      const before = this.currentBucket;
      this._buckets = buckets;
      const after = this.currentBucket;
      if (
        this._state.mode === 'now' &&
        before &&
        after &&
        (before.last_ms !== after.last_ms ||
          before.version_count !== after.version_count)
      ) {
        // The live view follows the bucket: new versions were indexed.
        void this.refresh();
        void this.refreshTimeline();
      }
      this._bucketsError = null;
      for (const b of buckets) {
        if (b.tracked && b.sync_job && !this._syncPolls.has(b.sync_job)) {
          this._watchSync(b.name, b.sync_job);
        }
      }
    } catch (error) {
      this._bucketsError = errorMessage(error);
    }
    this._bucketsLoaded = true;
    if (!this._state.bucket) {
      const preferred = this._settings.defaultBucket;
      const tracked = this._buckets.filter(b => b.tracked);
      const pick =
        (preferred && this._buckets.find(b => b.name === preferred)?.name) ||
        (tracked.length ? tracked[0].name : null);
      if (pick) {
        this.setBucket(pick);
      }
    }
    this._bucketsChanged.emit();
  }

  /** Start polling the bucket status every `pollInterval` seconds. */
  startStatusPoll(): void {
    void this._statusPoll.start();
  }

  /**
   * Track a bucket: enable versioning (the caller asked the user) and start its
   * first sync, which the model then watches.
   */
  /**
   * Track a bucket (versioning on); resolves true when its first sync was
   * started and is watched (its end comes as `syncEnded`).
   */
  async track(
    bucket: string,
    options: { events?: boolean } = {}
  ): Promise<boolean> {
    const result = await this.client.track(bucket, {
      enable_versioning: true,
      events: !!options.events
    });
    const others = this._buckets.filter(b => b.name !== bucket);
    this._buckets = [...others, result].sort((a, b) =>
      compareText(a.name, b.name)
    );
    if (result.sync_job) {
      this._watchSync(bucket, result.sync_job);
    }
    this._bucketsChanged.emit();
    this.setBucket(bucket);
    return !!result.sync_job;
  }

  /**
   * Stop tracking a bucket: the server removes the S3 event queue and notification
   * that tracking added and forgets the bucket's history (S3 versioning stays on, so
   * tracking it again rebuilds that history from S3). A browser showing the bucket
   * moves to another tracked one.
   */
  async untrack(bucket: string): Promise<void> {
    await this.client.untrack(bucket, true);
    this._syncs.delete(bucket);
    await this.refreshBuckets();
    if (this._state.bucket === bucket) {
      const next = this._buckets.find(b => b.tracked && b.name !== bucket);
      this.setBucket(next ? next.name : null);
    }
  }

  /** Start (or join) a sync of a tracked bucket and watch it. */
  async sync(bucket: string, full = false): Promise<void> {
    const job = await this.client.sync(bucket, { full });
    this._syncs.set(bucket, { job, error: null });
    this._bucketsChanged.emit();
    if (!job.done) {
      this._watchSync(bucket, job.id);
    } else {
      this._syncEnded.emit({ bucket, job, error: job.error });
      await this._syncFinished(bucket);
    }
  }

  // -- timeline ---------------------------------------------------------------------------

  get timeline(): ITimeline | null {
    return this._timeline;
  }

  get timelineError(): string | null {
    return this._timelineError;
  }

  get timelineLoading(): boolean {
    return this._timelineLoading;
  }

  /** Fetch the histogram of the current bucket and prefix. */
  async refreshTimeline(bins = this._timelineBins): Promise<void> {
    this._timelineBins = bins;
    const bucket = this._state.bucket;
    const gen = ++this._timelineGen;
    if (!bucket) {
      this._timeline = null;
      this._timelineError = null;
      this._timelineChanged.emit();
      return;
    }
    this._timelineLoading = true;
    this._timelineChanged.emit();
    try {
      const prefix = this._state.prefix;
      let t = await this.client.timeline(bucket, { prefix, bins });
      // A short history gets one bin per second, aligned on whole seconds
      // (the resolution of S3 listings), rather than fractions of seconds.
      const first = secondStart(t.start_ms);
      const last = secondStart(t.end_ms);
      const seconds = (last - first) / 1000 + 1;
      if (
        gen === this._timelineGen &&
        seconds <= bins &&
        (t.bin_ms !== 1000 || t.start_ms !== first)
      ) {
        t = await this.client.timeline(bucket, {
          prefix,
          from: formatIso(first),
          to: formatTm(last),
          bins: seconds
        });
      }
      if (gen !== this._timelineGen) {
        return;
      }
      this._timeline = t;
      this._timelineError = null;
    } catch (error) {
      if (gen !== this._timelineGen) {
        return;
      }
      this._timeline = null;
      this._timelineError = errorMessage(error);
    }
    this._timelineLoading = false;
    this._timelineChanged.emit();
  }

  /** Put a timeline into the model (benchmarks). */
  setTimeline(timeline: ITimeline | null): void {
    this._timeline = timeline;
    this._timelineError = null;
    this._timelineChanged.emit();
  }

  // -- labels -----------------------------------------------------------------------------

  get labels(): ReadonlyArray<ILabel> {
    return this._labels;
  }

  get labelsError(): string | null {
    return this._labelsError;
  }

  verifyState(name: string): IVerifyState | null {
    return this._verifications.get(name) ?? null;
  }

  async refreshLabels(): Promise<void> {
    try {
      const { labels } = await this.client.listLabels();
      this._labels = labels;
      this._labelsError = null;
    } catch (error) {
      this._labelsError = errorMessage(error);
    }
    this._labelsChanged.emit();
  }

  /**
   * Name the current view (bucket, folder, time pinned to absolute times).
   * Rejects with the server's message (name taken, unknown bucket...).
   */
  /**
   * The prefix a new label of the current view covers: the folder shown, except
   * above a label's own folder, where a label's view holds only that folder (the
   * browser shows just it), so the new label names what is shown.
   */
  labelPrefix(): string {
    const prefix = this._state.prefix;
    if (this._state.mode === 'label' && this._state.label) {
      const source = this._labels.find(l => l.name === this._state.label);
      if (source && source.prefix.startsWith(prefix)) {
        return source.prefix;
      }
    }
    return prefix;
  }

  async createLabel(name: string, description = ''): Promise<ILabel> {
    const bucket = this._state.bucket;
    if (!bucket) {
      throw new Error(
        trans.__('Choose a bucket first: a label names a view of one bucket.')
      );
    }
    const view = this.pinnedViewParams();
    let at: string | undefined;
    let slice: string | undefined;
    const prefix = this.labelPrefix();
    if (view.label) {
      const spec = this._spec;
      if (spec && spec.kind === 'slice') {
        slice = spec.canonical;
      } else if (spec) {
        at = spec.canonical;
      } else {
        at = `label:/${view.label}`;
      }
    } else {
      at = view.at;
      slice = view.slice;
    }
    const label = await this.client.createLabel({
      name,
      bucket,
      prefix,
      at,
      slice,
      description
    });
    this._labels = [
      ...this._labels.filter(l => l.name !== label.name),
      label
    ].sort((a, b) => compareText(a.name, b.name));
    this._labelsChanged.emit();
    return label;
  }

  /** Delete a label (rejects with the server's message). */
  async deleteLabel(name: string): Promise<void> {
    await this.client.deleteLabel(name);
    this._labels = this._labels.filter(l => l.name !== name);
    this._verifications.delete(name);
    if (this._state.mode === 'label' && this._state.label === name) {
      this._setState({ ...this._state, mode: 'now', label: null }, false);
    }
    this._labelsChanged.emit();
  }

  /** Verify a label; the outcome is kept for the labels view. */
  async verifyLabel(name: string): Promise<IVerifyReport | null> {
    this._verifications.set(name, { running: true, report: null, error: null });
    this._labelsChanged.emit();
    try {
      const report = await this.client.verifyLabel(name, { check_s3: true });
      this._verifications.set(name, { running: false, report, error: null });
      this._labelsChanged.emit();
      return report;
    } catch (error) {
      this._verifications.set(name, {
        running: false,
        report: null,
        error: errorMessage(error)
      });
      this._labelsChanged.emit();
      return null;
    }
  }

  // -- diff -------------------------------------------------------------------------------

  get diff(): IDiff | null {
    return this._diff;
  }

  get diffError(): string | null {
    return this._diffError;
  }

  get diffLoading(): boolean {
    return this._diffLoading;
  }

  /** Compare the snapshots `from` and `to` (time specs) under the current prefix. */
  async computeDiff(from: string, to: string): Promise<void> {
    const bucket = this._state.bucket;
    if (!bucket) {
      this._diffError = trans.__('Choose a bucket first.');
      this._diffChanged.emit();
      return;
    }
    const gen = ++this._diffGen;
    this._diffLoading = true;
    this._diffError = null;
    this._diffChanged.emit();
    try {
      const diff = await this.client.diff(bucket, {
        prefix: this._state.prefix,
        from,
        to
      });
      if (gen !== this._diffGen) {
        return;
      }
      this._diff = diff;
    } catch (error) {
      if (gen !== this._diffGen) {
        return;
      }
      this._diff = null;
      this._diffError = errorMessage(error);
    }
    this._diffLoading = false;
    this._diffChanged.emit();
  }

  clearDiff(): void {
    this._diffGen++;
    this._diff = null;
    this._diffError = null;
    this._diffLoading = false;
    this._diffChanged.emit();
  }

  // -- lifecycle --------------------------------------------------------------------------

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._statusPoll.dispose();
    for (const poll of this._syncPolls.values()) {
      poll.dispose();
    }
    this._syncPolls.clear();
    Signal.clearData(this);
  }

  // -- private ----------------------------------------------------------------------------

  private _setState(next: IViewState, placeChanged: boolean): void {
    const prev = this._state;
    if (
      prev.bucket === next.bucket &&
      prev.prefix === next.prefix &&
      prev.mode === next.mode &&
      prev.atMs === next.atMs &&
      prev.sliceStartMs === next.sliceStartMs &&
      prev.sliceEndMs === next.sliceEndMs &&
      prev.label === next.label
    ) {
      return;
    }
    this._state = next;
    this._stateChanged.emit({ ...next });
    if (this._isDisposed) {
      return;
    }
    void this.refresh();
    if (
      placeChanged ||
      prev.bucket !== next.bucket ||
      prev.prefix !== next.prefix
    ) {
      if (this._diff || this._diffError) {
        this.clearDiff();
      }
      void this.refreshTimeline();
    }
  }

  private async _fetchPage(
    gen: number,
    bucket: string,
    token: string | undefined
  ): Promise<void> {
    try {
      const page = await this.client.listObjects(bucket, {
        prefix: this._state.prefix,
        delimiter: '/',
        ...this.viewParams(),
        max_keys: this._settings.pageSize,
        page_token: token
      });
      if (gen !== this._generation || this._isDisposed) {
        return;
      }
      this.applyPage(page, token !== undefined);
    } catch (error) {
      if (gen !== this._generation || this._isDisposed) {
        return;
      }
      this._loading = false;
      this._listingError = errorMessage(error);
      if (token === undefined) {
        this._spec = null;
      }
      this._listingChanged.emit();
    }
  }

  private _computeView(): IEntry[] {
    const needle = this._filter.trim().toLowerCase();
    let folders: IEntry[] = this._folders;
    let files: IEntry[] = this._files;
    if (needle) {
      folders = folders.filter(e => e.name.toLowerCase().includes(needle));
      files = files.filter(e => e.name.toLowerCase().includes(needle));
    }
    const key = this._sortKey;
    const dir = this._sortAscending ? 1 : -1;
    if (key === 'name' && dir === 1) {
      // The server lists in key order already.
      return folders.concat(files);
    }
    const byName = (a: IEntry, b: IEntry) => compareText(a.name, b.name) * dir;
    let cmp: (a: IEntry, b: IEntry) => number = byName;
    if (key === 'size') {
      cmp = (a, b) => (a.size - b.size) * dir || compareText(a.name, b.name);
    } else if (key === 'modified') {
      cmp = (a, b) =>
        (a.modifiedMs - b.modifiedMs) * dir || compareText(a.name, b.name);
    }
    // Folders have no size or time: they stay first, in name order unless sorted by name.
    const sortedFolders =
      key === 'name' ? folders.slice().sort(byName) : folders;
    return sortedFolders.concat(files.slice().sort(cmp));
  }

  private _setSelected(entry: IEntry | null): void {
    if (entry === this._selected) {
      return;
    }
    this._selected = entry;
    this._selectionChanged.emit(entry);
  }

  private _watchSync(bucket: string, jobId: string): void {
    if (this._syncPolls.has(jobId) || this._isDisposed) {
      return;
    }
    const current = this._syncs.get(bucket);
    if (!current || current.job?.id !== jobId) {
      this._syncs.set(bucket, { job: null, error: null });
    }
    const poll = new Poll({
      factory: async () => {
        const job = await this.client.syncJob(jobId);
        this._syncs.set(bucket, { job, error: null });
        this._bucketsChanged.emit();
        if (job.done || job.state !== 'running') {
          poll.dispose();
          this._syncPolls.delete(jobId);
          this._syncEnded.emit({ bucket, job, error: job.error });
          await this._syncFinished(bucket);
        }
      },
      frequency: { interval: 500, backoff: true, max: 10_000 },
      name: `infinstor:sync:${jobId}`,
      standby: 'never'
    });
    poll.ticked.connect((_, state) => {
      if (state.phase === 'rejected') {
        const error = errorMessage(state.payload);
        this._syncs.set(bucket, {
          job: this._syncs.get(bucket)?.job ?? null,
          error
        });
        this._bucketsChanged.emit();
        if (/no sync job/i.test(error)) {
          poll.dispose();
          this._syncPolls.delete(jobId);
          this._syncEnded.emit({ bucket, job: null, error });
        }
      }
    });
    this._syncPolls.set(jobId, poll);
  }

  private async _syncFinished(bucket: string): Promise<void> {
    await this.refreshBuckets();
    if (bucket === this._state.bucket) {
      void this.refresh();
      void this.refreshTimeline();
    }
  }

  private _state: IViewState = { ...EMPTY_STATE };
  private _settings: ISettings;
  private _isDisposed = false;

  private _folders: IEntry[] = [];
  private _files: IEntry[] = [];
  private _view: IEntry[] | null = null;
  private _nextToken: string | null = null;
  private _spec: ITimeSpec | null = null;
  private _loading = false;
  private _listingError: string | null = null;
  private _generation = 0;
  private _sortKey: SortKey = 'name';
  private _sortAscending = true;
  private _filter = '';
  private _filterPages = 0;
  private _metrics: IListingMetrics = { pageReceived: 0, pageSize: 0 };
  private _selected: IEntry | null = null;

  private _buckets: IBucket[] = [];
  private _bucketsError: string | null = null;
  private _bucketsLoaded = false;
  private _statusPoll: Poll;
  private _syncs = new Map<string, ISyncState>();
  private _syncPolls = new Map<string, Poll>();

  private _timeline: ITimeline | null = null;
  private _timelineError: string | null = null;
  private _timelineLoading = false;
  private _timelineGen = 0;
  private _timelineBins = 120;

  private _labels: ILabel[] = [];
  private _labelsError: string | null = null;
  private _verifications = new Map<string, IVerifyState>();

  private _diff: IDiff | null = null;
  private _diffError: string | null = null;
  private _diffLoading = false;
  private _diffGen = 0;

  private _stateChanged = new Signal<this, IViewState>(this);
  private _listingChanged = new Signal<this, void>(this);
  private _bucketsChanged = new Signal<this, void>(this);
  private _syncEnded = new Signal<this, ISyncEnded>(this);
  private _timelineChanged = new Signal<this, void>(this);
  private _labelsChanged = new Signal<this, void>(this);
  private _diffChanged = new Signal<this, void>(this);
  private _selectionChanged = new Signal<this, IEntry | null>(this);
  private _settingsChanged = new Signal<this, ISettings>(this);
}

export namespace InfinstorModel {
  export interface IOptions {
    client: InfinstorClient;
    settings?: Partial<ISettings>;
  }
}
