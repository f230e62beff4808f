/**
 * The state of the sidebar's Transforms section: transforms with their
 * revisions, runs with their live status, and the executors the run dialog
 * offers. Runs are polled (`GET runs`) every `interval` ms while any of them
 * is queued or running, and not at all otherwise.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { InfinstorClient } from '../api/client';
import {
  IExecutors,
  IRun,
  IRunCreate,
  IRunState,
  ITransformCreate,
  ITransformRevision,
  ITransformSummary
} from '../api/types';
import { errorMessage } from '../errors';

/** Default time between two `GET runs` while a run is queued or running. */
export const RUN_POLL_INTERVAL = 1500;

/** Whether a run can still change (and be cancelled). */
export function isActive(state: IRunState | string): boolean {
  return state === 'queued' || state === 'running';
}

export class TransformsModel implements IDisposable {
  constructor(options: TransformsModel.IOptions) {
    this.client = options.client;
    this._interval = options.interval ?? RUN_POLL_INTERVAL;
    this._poll = new Poll({
      auto: false,
      factory: () => this._pollRuns(),
      frequency: {
        interval: this._interval,
        backoff: true,
        max: Math.max(30_000, this._interval * 10)
      },
      name: 'infinstor:transform-runs',
      standby: options.standby ?? 'when-hidden'
    });
  }

  readonly client: InfinstorClient;

  // -- signals ----------------------------------------------------------------------------

  /** Transforms, runs, executors or the section's UI state changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** A run this model saw queued or running has ended (succeeded, failed, cancelled). */
  get runFinished(): ISignal<this, IRun> {
    return this._runFinished;
  }

  // -- data -------------------------------------------------------------------------------

  /** Transforms by name, each with its revisions (newest first). */
  get transforms(): ReadonlyArray<ITransformSummary> {
    return this._transforms;
  }

  get transformsError(): string | null {
    return this._transformsError;
  }

  /** Runs, newest first. */
  get runs(): ReadonlyArray<IRun> {
    return this._runs;
  }

  get runsError(): string | null {
    return this._runsError;
  }

  /** What `GET executors` said (null until loaded). */
  get executors(): IExecutors | null {
    return this._executors;
  }

  /** Whether runs are being polled (some run is queued or running). */
  get polling(): boolean {
    const phase = this._poll.state.phase;
    return phase !== 'constructed' && phase !== 'stopped' && !this.isDisposed;
  }

  /** Runs that are queued or running. */
  get activeCount(): number {
    return this._runs.filter(r => isActive(r.state)).length;
  }

  /** The run the section highlights (the one just started). */
  get highlighted(): string | null {
    return this._highlighted;
  }

  /** Highlight a run (null for none). */
  highlight(id: string | null): void {
    if (id !== this._highlighted) {
      this._highlighted = id;
      this._changed.emit();
    }
  }

  /** Whether a transform's revisions are shown. */
  isExpanded(name: string): boolean {
    return this._expanded.has(name);
  }

  toggleExpanded(name: string): void {
    if (this._expanded.has(name)) {
      this._expanded.delete(name);
    } else {
      this._expanded.add(name);
    }
    this._changed.emit();
  }

  /** A revision from the loaded list (null when unknown). */
  revision(name: string, revision?: number): ITransformRevision | null {
    const t = this._transforms.find(x => x.name === name);
    if (!t) {
      return null;
    }
    if (revision === undefined) {
      return t.latest;
    }
    return t.revisions.find(r => r.revision === revision) ?? null;
  }

  /** The runs of one transform, newest first. */
  runsOf(name: string): IRun[] {
    return this._runs.filter(r => r.transform === name);
  }

  // -- loading ----------------------------------------------------------------------------

  /** Reload transforms and runs. */
  async refresh(): Promise<void> {
    await Promise.all([this.refreshTransforms(), this.refreshRuns()]);
  }

  async refreshTransforms(): Promise<void> {
    try {
      const { transforms } = await this.client.listTransforms();
      this._transforms = transforms;
      this._transformsError = null;
    } catch (error) {
      this._transformsError = errorMessage(error);
    }
    if (!this.isDisposed) {
      this._changed.emit();
    }
  }

  /**
   * Reload the runs (errors are kept in `runsError`); starts polling when a
   * run is queued or running, stops it when none is.
   */
  async refreshRuns(): Promise<void> {
    try {
      await this._fetchRuns();
    } catch (error) {
      this._runsError = errorMessage(error);
      if (!this.isDisposed) {
        this._changed.emit();
      }
    }
  }

  /** `GET executors`, once (again with `force`). Rejects with the server's message. */
  async loadExecutors(force = false): Promise<IExecutors> {
    if (this._executors && !force) {
      return this._executors;
    }
    const executors = await this.client.executors();
    this._executors = executors;
    this._changed.emit();
    return executors;
  }

  // -- actions ----------------------------------------------------------------------------

  /** Store a cell as a revision (rejects with the server's message). */
  async saveTransform(body: ITransformCreate): Promise<ITransformRevision> {
    const rev = await this.client.createTransform(body);
    void this.refreshTransforms();
    return rev;
  }

  /** Delete a transform (its runs stay). Rejects with the server's message. */
  async deleteTransform(name: string): Promise<void> {
    await this.client.deleteTransform(name);
    this._transforms = this._transforms.filter(t => t.name !== name);
    this._expanded.delete(name);
    this._changed.emit();
  }

  /** Start a run, show it first and highlighted, and poll until it ends. */
  async startRun(body: IRunCreate): Promise<IRun> {
    const run = await this.client.createRun(body);
    this._localRuns.set(run.id, this._fetchGen);
    this._runs = [run, ...this._runs.filter(r => r.id !== run.id)];
    this._highlighted = run.id;
    this._changed.emit();
    this._updatePolling();
    return run;
  }

  /**
   * Follow a run started elsewhere for this user (a schedule fired from the
   * UI, a pipeline step): it shows, and is polled until it ends
   * (`runFinished`).
   */
  track(run: IRun): void {
    this._localRuns.set(run.id, this._fetchGen);
    this._runs = [run, ...this._runs.filter(r => r.id !== run.id)];
    this._changed.emit();
    this._updatePolling();
  }

  /** Ask the server to cancel a run (rejects with its message, e.g. already ended). */
  async cancelRun(id: string): Promise<IRun> {
    const run = await this.client.cancelRun(id);
    this._replaceRun(run);
    this._updatePolling();
    return run;
  }

  /** The tail of a run's log. */
  async runLog(id: string, lines = 200): Promise<string> {
    const { log } = await this.client.runLog(id, lines);
    return log;
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
    this._poll.dispose();
    Signal.clearData(this);
  }

  // -- private ----------------------------------------------------------------------------

  /** The poll's factory: rejects on errors, so that the poll backs off. */
  private async _pollRuns(): Promise<void> {
    try {
      await this._fetchRuns();
    } catch (error) {
      this._runsError = errorMessage(error);
      this._changed.emit();
      throw error;
    }
  }

  private async _fetchRuns(): Promise<void> {
    const gen = ++this._fetchGen;
    const { runs } = await this.client.listRuns();
    if (this.isDisposed || gen < this._appliedGen) {
      // A later request has answered already.
      return;
    }
    this._appliedGen = gen;
    this._applyRuns(runs, gen);
  }

  private _applyRuns(fetched: IRun[], gen: number): void {
    const seen = new Set(fetched.map(r => r.id));
    // Runs started here after this request went out are not in its answer yet.
    const kept = this._runs.filter(
      r =>
        !seen.has(r.id) &&
        this._localRuns.has(r.id) &&
        (this._localRuns.get(r.id) as number) >= gen
    );
    for (const id of seen) {
      this._localRuns.delete(id);
    }
    const previous = new Map(this._runs.map(r => [r.id, r]));
    const next = [...kept, ...fetched];
    const finished: IRun[] = [];
    for (const run of next) {
      const before = previous.get(run.id);
      if (before && isActive(before.state) && !isActive(run.state)) {
        finished.push(run);
      }
    }
    this._runs = next;
    this._runsError = null;
    this._changed.emit();
    for (const run of finished) {
      this._runFinished.emit(run);
    }
    this._updatePolling();
  }

  private _replaceRun(run: IRun): void {
    const before = this._runs.find(r => r.id === run.id);
    this._runs = before
      ? this._runs.map(r => (r.id === run.id ? run : r))
      : [run, ...this._runs];
    this._changed.emit();
    if (before && isActive(before.state) && !isActive(run.state)) {
      this._runFinished.emit(run);
    }
  }

  /** Poll while a run is queued or running; stop when none is. */
  private _updatePolling(): void {
    if (this.isDisposed) {
      return;
    }
    if (this._runs.some(r => isActive(r.state))) {
      if (!this.polling) {
        void this._poll.schedule({
          cancel: ({ phase }) => phase !== 'constructed' && phase !== 'stopped',
          interval: this._interval,
          phase: 'started'
        });
      }
    } else if (this.polling) {
      void this._poll.stop();
    }
  }

  private _interval: number;
  private _poll: Poll;
  private _isDisposed = false;
  private _transforms: ITransformSummary[] = [];
  private _transformsError: string | null = null;
  private _runs: IRun[] = [];
  private _runsError: string | null = null;
  private _executors: IExecutors | null = null;
  private _expanded = new Set<string>();
  private _highlighted: string | null = null;
  /** Runs started here, with the fetch generation current when they started. */
  private _localRuns = new Map<string, number>();
  private _fetchGen = 0;
  private _appliedGen = 0;

  private _changed = new Signal<this, void>(this);
  private _runFinished = new Signal<this, IRun>(this);
}

export namespace TransformsModel {
  export interface IOptions {
    client: InfinstorClient;
    /** ms between two `GET runs` while a run is active (default 1500). */
    interval?: number;
    /** Poll standby (default 'when-hidden': no polling while the page is hidden). */
    standby?: Poll.Standby;
  }
}
