/**
 * The state of the *Schedules* tab: the schedules (trigger, next firing, last
 * window, paused) and the window history of those the user expanded. The list
 * is reloaded every `interval` ms while the tab is shown (`start`/`stop`): the
 * server fires schedules on its own, so their state changes without the user.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { InfinstorClient } from '../api/client';
import {
  ISchedule,
  IScheduleCreate,
  IScheduleDetail,
  IScheduleWindow
} from '../api/types';
import { errorMessage } from '../errors';

/** Default time between two reloads while the tab is shown. */
export const SCHEDULE_POLL_INTERVAL = 5000;

/** How many windows of a schedule the tab shows. */
export const WINDOWS_SHOWN = 50;

export class SchedulesModel implements IDisposable {
  constructor(options: SchedulesModel.IOptions) {
    this.client = options.client;
    this._poll = new Poll({
      auto: false,
      factory: () => this._reload(true),
      frequency: {
        interval: options.interval ?? SCHEDULE_POLL_INTERVAL,
        backoff: true,
        max: 60_000
      },
      name: 'infinstor:schedules',
      standby: options.standby ?? 'when-hidden'
    });
  }

  readonly client: InfinstorClient;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Schedules in name order. */
  get schedules(): ReadonlyArray<ISchedule> {
    return this._schedules;
  }

  get error(): string | null {
    return this._error;
  }

  get loaded(): boolean {
    return this._loaded;
  }

  /** A schedule's windows, newest first (null until loaded, or when not expanded). */
  windows(name: string): ReadonlyArray<IScheduleWindow> | null {
    return this._details.get(name)?.windows ?? null;
  }

  isExpanded(name: string): boolean {
    return this._expanded.has(name);
  }

  /** Show or hide a schedule's history of windows. */
  async toggleExpanded(name: string): Promise<void> {
    if (this._expanded.has(name)) {
      this._expanded.delete(name);
      this._details.delete(name);
      this._emit();
      return;
    }
    this._expanded.add(name);
    this._emit();
    await this._loadDetail(name);
  }

  /** Reload the list (and the expanded schedules' windows). */
  async refresh(): Promise<void> {
    await this._reload(false);
  }

  /** Reload periodically (while the tab is shown). */
  start(): void {
    if (this.isDisposed) {
      return;
    }
    void this._poll.start();
  }

  stop(): void {
    if (!this.isDisposed) {
      void this._poll.stop();
    }
  }

  /** Define a schedule (rejects with the server's sentence). */
  async create(body: IScheduleCreate): Promise<ISchedule> {
    const created = await this.client.createSchedule(body);
    this._replace(created);
    return created;
  }

  async setPaused(name: string, paused: boolean): Promise<ISchedule> {
    const schedule = await this.client.setSchedulePaused(name, paused);
    this._replace(schedule);
    return schedule;
  }

  /** Fire now: the windows started (empty when nothing new arrived or one still runs). */
  async runNow(name: string): Promise<IScheduleWindow[]> {
    const { windows } = await this.client.runSchedule(name);
    await this.refresh();
    return windows;
  }

  async delete(name: string): Promise<void> {
    await this.client.deleteSchedule(name);
    this._schedules = this._schedules.filter(s => s.name !== name);
    this._expanded.delete(name);
    this._details.delete(name);
    this._emit();
  }

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

  private _emit(): void {
    if (!this.isDisposed) {
      this._changed.emit();
    }
  }

  private _replace(schedule: ISchedule): void {
    const others = this._schedules.filter(s => s.name !== schedule.name);
    this._schedules = [...others, schedule].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    );
    this._emit();
  }

  private async _reload(rethrow: boolean): Promise<void> {
    try {
      const { schedules } = await this.client.listSchedules();
      this._schedules = schedules;
      this._error = null;
    } catch (error) {
      this._error = errorMessage(error);
      this._loaded = true;
      this._emit();
      if (rethrow) {
        throw error;
      }
      return;
    }
    this._loaded = true;
    for (const name of [...this._expanded]) {
      if (!this._schedules.some(s => s.name === name)) {
        this._expanded.delete(name);
        this._details.delete(name);
      }
    }
    this._emit();
    await Promise.all([...this._expanded].map(n => this._loadDetail(n)));
  }

  private async _loadDetail(name: string): Promise<void> {
    try {
      const detail = await this.client.getSchedule(name, WINDOWS_SHOWN);
      if (this._expanded.has(name)) {
        this._details.set(name, detail);
      }
    } catch (error) {
      this._error = errorMessage(error);
    }
    this._emit();
  }

  private _poll: Poll;
  private _isDisposed = false;
  private _loaded = false;
  private _schedules: ISchedule[] = [];
  private _error: string | null = null;
  private _expanded = new Set<string>();
  private _details = new Map<string, IScheduleDetail>();
  private _changed = new Signal<this, void>(this);
}

export namespace SchedulesModel {
  export interface IOptions {
    client: InfinstorClient;
    /** ms between two reloads while the tab is shown (default 5000). */
    interval?: number;
    standby?: Poll.Standby;
  }
}
