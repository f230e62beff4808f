/**
 * The buckets section: every bucket the credentials see and every tracked one,
 * with sync status, a consent dialog to track, sync progress, and stop tracking.
 */
import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import { closeIcon, refreshIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { InfinstorModel } from '../model';
import { IBucket, ITrackedBucket } from '../api/types';
import { formatCount, formatDuration, formatTime, TimeDisplay } from '../time';
import { trans } from '../i18n';
import { OnSignals } from '../signals';

/** Body of the "Track bucket" consent dialog; its value is the events choice. */
class TrackDialogBody
  extends ReactWidget
  implements Dialog.IBodyWidget<{ events: boolean }>
{
  constructor(private readonly _bucket: string) {
    super();
    this.addClass('jp-Infinstor-dialog');
  }

  getValue(): { events: boolean } {
    return { events: this._events };
  }

  render(): JSX.Element {
    return (
      <div>
        <p>
          {trans.__(
            'Tracking s3://%1 turns on S3 versioning for the bucket.',
            this._bucket
          )}
        </p>
        <ul>
          <li>
            <b>
              {trans.__(
                'History starts now: what was overwritten or deleted before cannot be recovered.'
              )}
            </b>
          </li>
          <li>
            {trans.__(
              'A versioned bucket keeps every overwritten and deleted object, which costs storage (lifecycle rules can expire old versions).'
            )}
          </li>
          <li>{trans.__('Versioning stays on if you stop tracking later.')}</li>
        </ul>
        <label className="jp-Infinstor-checkbox">
          <input
            type="checkbox"
            name="events"
            defaultChecked={this._events}
            onChange={e => {
              this._events = e.currentTarget.checked;
            }}
          />{' '}
          {trans.__(
            'Also receive S3 event notifications (creates an SQS queue), so changes show up within seconds'
          )}
        </label>
      </div>
    );
  }

  private _events = false;
}

/** Tell the user an action failed, in the server's sentence. */
async function showFailure(title: string, error: unknown): Promise<void> {
  await showDialog({
    title,
    body: (error as Error).message || String(error),
    buttons: [Dialog.okButton()]
  });
}

/** Tracks a bucket the user consented to track (`InfinstorModel.track`). */
export type TrackStarter = (
  bucket: string,
  options: { events: boolean }
) => Promise<unknown>;

/**
 * Ask for consent, then track (with `track`, which may follow the first sync
 * in a notification); errors are shown as the server's sentence.
 */
export async function trackWithConsent(
  model: InfinstorModel,
  bucket: string,
  track: TrackStarter = (name, options) => model.track(name, options)
): Promise<boolean> {
  const result = await showDialog({
    title: trans.__('Track bucket %1?', bucket),
    body: new TrackDialogBody(bucket),
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: trans.__('Enable versioning and track') })
    ],
    focusNodeSelector: 'input[name="events"]'
  });
  if (!result.button.accept) {
    return false;
  }
  try {
    await track(bucket, { events: result.value?.events ?? false });
    return true;
  } catch (error) {
    await showFailure(trans.__('Could not track %1', bucket), error);
    return false;
  }
}

/** Ask, then stop tracking; errors are shown as the server's sentence. */
export async function untrackWithConfirmation(
  model: InfinstorModel,
  bucket: string
): Promise<boolean> {
  const result = await showDialog({
    title: trans.__('Stop tracking %1?', bucket),
    body: (
      <div className="jp-Infinstor-dialog">
        <p>
          {trans.__(
            'infinstor_jlab stops keeping the history of s3://%1: its S3 event queue and notification are removed, and its entries leave the snapshot index.',
            bucket
          )}
        </p>
        <p>
          {trans.__(
            'S3 versioning stays on and S3 keeps every version: tracking the bucket again rebuilds its history from them. Labels of the bucket stay, but cannot be browsed until then.'
          )}
        </p>
      </div>
    ),
    buttons: [
      Dialog.cancelButton(),
      Dialog.warnButton({ label: trans.__('Stop tracking') })
    ]
  });
  if (!result.button.accept) {
    return false;
  }
  try {
    await model.untrack(bucket);
    return true;
  } catch (error) {
    await showFailure(trans.__('Could not stop tracking %1', bucket), error);
    return false;
  }
}

function SyncProgress(props: {
  model: InfinstorModel;
  bucket: string;
}): JSX.Element | null {
  const state = props.model.syncState(props.bucket);
  if (!state) {
    return null;
  }
  const job = state.job;
  if (state.error && (!job || job.state === 'running')) {
    return (
      <div className="jp-Infinstor-error" role="alert">
        {state.error}
      </div>
    );
  }
  if (!job) {
    return (
      <div className="jp-Infinstor-sync" data-testid="sync-progress">
        <div className="jp-Infinstor-progress jp-mod-indeterminate" />
        <div className="jp-Infinstor-sync-text">
          {trans.__('Starting sync…')}
        </div>
      </div>
    );
  }
  if (job.state === 'error') {
    return (
      <div className="jp-Infinstor-error" role="alert">
        {trans.__('Sync failed: %1', job.error ?? '')}
      </div>
    );
  }
  if (job.state === 'done') {
    return (
      <div className="jp-Infinstor-sync-text" data-testid="sync-done">
        {job.finished_ms
          ? trans.__(
              'Synced %1 versions in %2',
              formatCount(job.versions_seen),
              formatDuration(job.finished_ms - job.started_ms)
            )
          : trans.__('Synced %1 versions', formatCount(job.versions_seen))}
        {job.warnings.map((w, i) => (
          <div key={i} className="jp-Infinstor-warning">
            {w}
          </div>
        ))}
      </div>
    );
  }
  return (
    <div className="jp-Infinstor-sync" data-testid="sync-progress">
      <div
        className="jp-Infinstor-progress jp-mod-indeterminate"
        role="progressbar"
        aria-label={trans.__('Syncing %1', props.bucket)}
      />
      <div className="jp-Infinstor-sync-text">
        {trans.__(
          'Syncing: %1 versions, %2/s, %3 pages',
          formatCount(job.versions_seen),
          formatCount(job.rate),
          formatCount(job.pages)
        )}
        {job.partitions_total
          ? ' ' +
            trans.__(
              '(%1 of %2 partitions)',
              formatCount(job.partitions_done ?? 0),
              formatCount(job.partitions_total)
            )
          : null}
      </div>
    </div>
  );
}

function TrackedStatus(props: {
  bucket: ITrackedBucket;
  display: TimeDisplay;
}): JSX.Element {
  const b = props.bucket;
  const now = Date.now();
  const parts: string[] = [
    trans.__('%1 versions', formatCount(b.version_count))
  ];
  if (b.last_sync_ms) {
    parts.push(trans.__('synced %1 ago', formatDuration(now - b.last_sync_ms)));
  } else {
    parts.push(trans.__('never synced'));
  }
  let events = trans.__('no events (periodic scans)');
  if (b.events) {
    events =
      b.last_event_ms !== null
        ? trans.__(
            'events: last %1 ago',
            formatDuration(b.lag_ms ?? now - b.last_event_ms)
          )
        : trans.__('events: none yet');
    if (b.pending_messages) {
      events = trans.__(
        '%1, %2 queued',
        events,
        formatCount(b.pending_messages)
      );
    }
  }
  return (
    <div className="jp-Infinstor-bucket-status">
      <div
        title={
          b.last_sync_ms
            ? trans.__(
                'Last sync %1',
                formatTime(b.last_sync_ms, props.display)
              )
            : ''
        }
      >
        {parts.join(' · ')}
      </div>
      <div
        title={
          b.last_event_ms
            ? trans.__(
                'Last event %1',
                formatTime(b.last_event_ms, props.display)
              )
            : ''
        }
      >
        {events}
        {b.malformed_events > 0 &&
          ` · ${trans.__('%1 malformed', formatCount(b.malformed_events))}`}
      </div>
      {b.versioning && b.versioning !== 'Enabled' && (
        <div className="jp-Infinstor-warning">
          {trans.__(
            'Versioning is %1: new history is not kept.',
            b.versioning.toLowerCase()
          )}
        </div>
      )}
      {b.last_error && (
        <div className="jp-Infinstor-error" role="alert">
          {b.last_error}
        </div>
      )}
    </div>
  );
}

/** Starts a sync the user asked for (followed in a notification). */
export type SyncStarter = (bucket: string) => Promise<void>;

function BucketRow(props: {
  model: InfinstorModel;
  bucket: IBucket;
  sync: SyncStarter;
  track?: TrackStarter;
}): JSX.Element {
  const { model, bucket, sync, track } = props;
  const current = model.bucket === bucket.name;
  const running =
    model.syncState(bucket.name)?.job?.state === 'running' ||
    (bucket.tracked && bucket.sync_in_progress);
  const select = () => {
    if (bucket.tracked) {
      model.setBucket(bucket.name);
    }
  };
  return (
    <li
      className={`jp-Infinstor-bucket ${current ? 'jp-mod-selected' : ''} ${
        bucket.tracked ? 'jp-mod-tracked' : 'jp-mod-untracked'
      }`}
      data-bucket={bucket.name}
    >
      <div className="jp-Infinstor-bucket-head">
        <button
          className="jp-Infinstor-bucket-name"
          onClick={select}
          disabled={!bucket.tracked}
          aria-current={current ? 'true' : undefined}
          title={
            bucket.tracked
              ? trans.__('Browse s3://%1', bucket.name)
              : trans.__('s3://%1 is not tracked yet', bucket.name)
          }
        >
          {bucket.name}
        </button>
        {bucket.tracked ? (
          <>
            <span className="jp-Infinstor-badge jp-mod-ok">
              {trans.__('tracked')}
            </span>
            <button
              className="jp-Infinstor-iconButton"
              title={trans.__('Sync now (ListObjectVersions)')}
              aria-label={trans.__('Sync %1', bucket.name)}
              disabled={running}
              onClick={() => void sync(bucket.name)}
            >
              <refreshIcon.react tag="span" className="jp-Infinstor-icon" />
            </button>
            <button
              className="jp-Infinstor-iconButton"
              title={trans.__('Stop tracking…')}
              aria-label={trans.__('Stop tracking %1', bucket.name)}
              disabled={running}
              onClick={() => void untrackWithConfirmation(model, bucket.name)}
            >
              <closeIcon.react tag="span" className="jp-Infinstor-icon" />
            </button>
          </>
        ) : (
          <button
            className="jp-mod-styled jp-mod-accept jp-Infinstor-smallButton"
            onClick={() => void trackWithConsent(model, bucket.name, track)}
          >
            {trans.__('Track…')}
          </button>
        )}
      </div>
      {bucket.tracked && (
        <TrackedStatus bucket={bucket} display={model.settings.timeDisplay} />
      )}
      <SyncProgress model={model} bucket={bucket.name} />
    </li>
  );
}

export function BucketsView(props: {
  model: InfinstorModel;
  sync?: SyncStarter;
  track?: TrackStarter;
}): JSX.Element {
  const { model } = props;
  const sync = props.sync ?? ((name: string) => model.sync(name));
  const buckets = model.buckets;
  const listError = buckets.find(b => b.list_error)?.list_error;
  return (
    <div className="jp-Infinstor-buckets" data-testid="buckets">
      {model.bucketsError && (
        <div className="jp-Infinstor-error" role="alert">
          {model.bucketsError}
        </div>
      )}
      {listError && (
        <div className="jp-Infinstor-warning">
          {trans.__('Only tracked buckets are shown: %1', listError)}
        </div>
      )}
      {model.bucketsLoaded && buckets.length === 0 && !model.bucketsError && (
        <div className="jp-Infinstor-note">
          {trans.__('No buckets visible with these credentials.')}
        </div>
      )}
      {!model.bucketsLoaded && (
        <div className="jp-Infinstor-note">{trans.__('Loading…')}</div>
      )}
      <ul className="jp-Infinstor-bucketList">
        {buckets.map(b => (
          <BucketRow
            key={b.name}
            model={model}
            bucket={b}
            sync={sync}
            track={props.track}
          />
        ))}
      </ul>
    </div>
  );
}

/** The buckets section's content. */
export class BucketsWidget extends ReactWidget {
  constructor(
    private readonly _model: InfinstorModel,
    private readonly _sync?: SyncStarter,
    private readonly _track?: TrackStarter
  ) {
    super();
    this.addClass('jp-Infinstor-sectionBody');
  }

  render(): JSX.Element {
    const model = this._model;
    return (
      <OnSignals
        signals={[
          model.bucketsChanged,
          model.stateChanged,
          model.settingsChanged
        ]}
      >
        {() => (
          <BucketsView model={model} sync={this._sync} track={this._track} />
        )}
      </OnSignals>
    );
  }
}
