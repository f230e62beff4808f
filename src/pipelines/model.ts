/**
 * The state of the *Pipelines* tab: the pipelines (each with its latest run),
 * the runs of the pipeline the tab shows, and the pipeline runs that are still
 * going. Running pipeline runs are polled (`GET pipelines/{name}/runs/{id}`)
 * every `interval` ms while there are any, and not at all otherwise.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { InfinstorClient } from '../api/client';
import {
  IPipeline,
  IPipelineDefinition,
  IPipelineRun,
  IPipelineRunCreate,
  IPipelineSummary,
  IPipelineText
} from '../api/types';
import { errorMessage } from '../errors';

/** Default time between two polls of the running pipeline runs. */
export const PIPELINE_POLL_INTERVAL = 1500;

/** How many runs of the shown pipeline the tab lists. */
export const PIPELINE_RUNS_SHOWN = 10;

/** The names of the steps a step reads (none when it reads a view). */
export function upstreamSteps(input: unknown): string[] {
  const value = input as { type?: string; step?: string; steps?: string[] };
  if (Array.isArray(input)) {
    return (input as { step?: string }[])
      .map(i => i.step ?? '')
      .filter(Boolean);
  }
  if (!value || value.type !== 'step') {
    return [];
  }
  if (Array.isArray(value.steps)) {
    return value.steps;
  }
  return value.step ? [value.step] : [];
}

export class PipelinesModel implements IDisposable {
  constructor(options: PipelinesModel.IOptions) {
    this.client = options.client;
    this._interval = options.interval ?? PIPELINE_POLL_INTERVAL;
    this._poll = new Poll({
      auto: false,
      factory: () => this._pollRuns(),
      frequency: {
        interval: this._interval,
        backoff: true,
        max: Math.max(30_000, this._interval * 10)
      },
      name: 'infinstor:pipeline-runs',
      standby: options.standby ?? 'when-hidden'
    });
  }

  readonly client: InfinstorClient;

  /** Pipelines, runs or the tab's state changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** A pipeline run this model saw running has ended. */
  get runFinished(): ISignal<this, IPipelineRun> {
    return this._runFinished;
  }

  /** Pipelines in name order, each with its latest run. */
  get pipelines(): ReadonlyArray<IPipelineSummary> {
    return this._pipelines;
  }

  get error(): string | null {
    return this._error;
  }

  /** Whether the list was loaded once. */
  get loaded(): boolean {
    return this._loaded;
  }

  /** The pipeline whose runs the tab shows (null: none). */
  get selected(): string | null {
    return this._selected;
  }

  /** The runs of the selected pipeline, newest first. */
  get runs(): ReadonlyArray<IPipelineRun> {
    return this._runs;
  }

  get runsError(): string | null {
    return this._runsError;
  }

  /** Pipeline runs still running, as last seen. */
  get activeRuns(): ReadonlyArray<IPipelineRun> {
    return [...this._active.values()];
  }

  get activeCount(): number {
    return this._active.size;
  }

  /** The transform runs of the running pipeline runs' steps (counted once, as pipeline runs). */
  activeStepRunIds(): Set<string> {
    const ids = new Set<string>();
    for (const run of this._active.values()) {
      for (const step of run.steps) {
        if (step.run_id) {
          ids.add(step.run_id);
        }
      }
    }
    return ids;
  }

  /** Whether running pipeline runs are being polled. */
  get polling(): boolean {
    const phase = this._poll.state.phase;
    return phase !== 'constructed' && phase !== 'stopped' && !this.isDisposed;
  }

  /** A pipeline of the list (null when unknown). */
  pipeline(name: string): IPipelineSummary | null {
    return this._pipelines.find(p => p.name === name) ?? null;
  }

  /** A run as last seen (the shown pipeline's or a running one). */
  run(id: string): IPipelineRun | null {
    return this._active.get(id) ?? this._runs.find(r => r.id === id) ?? null;
  }

  // -- loading ------------------------------------------------------------------------------

  /** Reload the pipelines (and the shown pipeline's runs). */
  async refresh(): Promise<void> {
    try {
      const { pipelines } = await this.client.listPipelines();
      this._pipelines = pipelines;
      this._error = null;
      for (const p of pipelines) {
        const last = p.last_run;
        if (last && last.state === 'running' && !this._active.has(last.id)) {
          this._active.set(last.id, last);
        }
      }
    } catch (error) {
      this._error = errorMessage(error);
    }
    this._loaded = true;
    if (
      this._selected &&
      !this._pipelines.some(p => p.name === this._selected)
    ) {
      this._selected = null;
      this._runs = [];
    }
    this._emit();
    if (this._selected) {
      await this.refreshRuns();
    }
    this._updatePolling();
  }

  /** Reload the shown pipeline's runs. */
  async refreshRuns(): Promise<void> {
    const name = this._selected;
    if (!name) {
      return;
    }
    try {
      const { runs } = await this.client.listPipelineRuns(
        name,
        PIPELINE_RUNS_SHOWN
      );
      if (name !== this._selected) {
        return;
      }
      this._runs = runs;
      this._runsError = null;
      for (const run of runs) {
        this._see(run);
      }
    } catch (error) {
      this._runsError = errorMessage(error);
    }
    this._emit();
    this._updatePolling();
  }

  /** Show a pipeline's runs (null: none). */
  async select(name: string | null): Promise<void> {
    if (name === this._selected) {
      return;
    }
    this._selected = name;
    this._runs = [];
    this._runsError = null;
    this._emit();
    await this.refreshRuns();
  }

  // -- actions ------------------------------------------------------------------------------

  /** Save a definition or a pasted file (rejects with the server's sentence). */
  async save(body: IPipelineDefinition | IPipelineText): Promise<IPipeline> {
    const saved = await this.client.savePipeline(body);
    await this.refresh();
    return saved;
  }

  /** Delete a pipeline (its runs stay). Rejects with the server's message. */
  async delete(name: string): Promise<void> {
    await this.client.deletePipeline(name);
    this._pipelines = this._pipelines.filter(p => p.name !== name);
    if (this._selected === name) {
      this._selected = null;
      this._runs = [];
    }
    this._emit();
  }

  /** Start a run, show it first, and poll until it ends. */
  async startRun(
    name: string,
    body: IPipelineRunCreate = {}
  ): Promise<IPipelineRun> {
    const run = await this.client.startPipelineRun(name, body);
    this._selected = name;
    this._runs = [run, ...this._runs.filter(r => r.id !== run.id)];
    this._active.set(run.id, run);
    this._pipelines = this._pipelines.map(p =>
      p.name === name ? { ...p, last_run: run } : p
    );
    this._emit();
    this._updatePolling();
    return run;
  }

  /** Cancel a run: every running step stops, waiting ones are skipped. */
  async cancelRun(run: IPipelineRun): Promise<IPipelineRun> {
    const next = await this.client.cancelPipelineRun(run.pipeline, run.id);
    this._see(next);
    this._emit();
    this._updatePolling();
    return next;
  }

  // -- lifecycle ----------------------------------------------------------------------------

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

  // -- private ------------------------------------------------------------------------------

  private _emit(): void {
    if (!this.isDisposed) {
      this._changed.emit();
    }
  }

  /** Record a run as fetched: replace it where it shows, emit `runFinished` when it ended. */
  private _see(run: IPipelineRun): void {
    const before = this._active.get(run.id);
    this._runs = this._runs.map(r => (r.id === run.id ? run : r));
    this._pipelines = this._pipelines.map(p =>
      p.last_run && p.last_run.id === run.id ? { ...p, last_run: run } : p
    );
    if (run.state === 'running') {
      this._active.set(run.id, run);
      return;
    }
    if (before) {
      this._active.delete(run.id);
      this._runFinished.emit(run);
    }
  }

  /** The poll's factory: rejects on errors, so that the poll backs off. */
  private async _pollRuns(): Promise<void> {
    const runs = [...this._active.values()];
    const fetched = await Promise.all(
      runs.map(r => this.client.getPipelineRun(r.pipeline, r.id))
    );
    if (this.isDisposed) {
      return;
    }
    for (const run of fetched) {
      this._see(run);
    }
    this._emit();
    this._updatePolling();
  }

  private _updatePolling(): void {
    if (this.isDisposed) {
      return;
    }
    if (this._active.size) {
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
  private _loaded = false;
  private _pipelines: IPipelineSummary[] = [];
  private _error: string | null = null;
  private _selected: string | null = null;
  private _runs: IPipelineRun[] = [];
  private _runsError: string | null = null;
  private _active = new Map<string, IPipelineRun>();
  private _changed = new Signal<this, void>(this);
  private _runFinished = new Signal<this, IPipelineRun>(this);
}

export namespace PipelinesModel {
  export interface IOptions {
    client: InfinstorClient;
    /** ms between two polls while a pipeline run is running (default 1500). */
    interval?: number;
    standby?: Poll.Standby;
  }
}
