/**
 * The buckets section: every bucket the credentials see and every tracked one,
 * with sync status, a consent dialog to track, and sync progress.
 */
import {
  Dialog,
  ReactWidget,
  showDialog,
  UseSignal
} from '@jupyterlab/apputils';
import { refreshIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { InfinstorModel } from './model';
import { IBucket, ITrackedBucket } from './tokens';
import { formatCount, formatDuration, formatTime, TimeDisplay } from './time';

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
          Tracking <b>s3://{this._bucket}</b> turns on <b>S3 versioning</b> for
          the bucket.
        </p>
        <ul>
          <li>
            History starts <b>now</b>: what was overwritten or deleted before
            cannot be recovered.
          </li>
          <li>
            A versioned bucket keeps every overwritten and deleted object, which
            costs storage (lifecycle rules can expire old versions).
          </li>
          <li>Versioning stays on if you stop tracking later.</li>
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
          Also receive S3 event notifications (creates an SQS queue), so changes
          show up within seconds
        </label>
      </div>
    );
  }

  private _events = false;
}

/** Ask for consent, then track; errors are shown as the server's sentence. */
export async function trackWithConsent(
  model: InfinstorModel,
  bucket: string
): Promise<boolean> {
  const result = await showDialog({
    title: `Track bucket ${bucket}?`,
    body: new TrackDialogBody(bucket),
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: 'Enable versioning and track' })
    ],
    focusNodeSelector: 'input[name="events"]'
  });
  if (!result.button.accept) {
    return false;
  }
  try {
    await model.track(bucket, { events: result.value?.events ?? false });
    return true;
  } catch (error) {
    await showDialog({
      title: `Could not track ${bucket}`,
      body: (error as Error).message || String(error),
      buttons: [Dialog.okButton()]
    });
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
        <div className="jp-Infinstor-sync-text">Starting sync…</div>
      </div>
    );
  }
  if (job.state === 'error') {
    return (
      <div className="jp-Infinstor-error" role="alert">
        Sync failed: {job.error}
      </div>
    );
  }
  if (job.state === 'done') {
    return (
      <div className="jp-Infinstor-sync-text" data-testid="sync-done">
        Synced {formatCount(job.versions_seen)} versions
        {job.finished_ms
          ? ` in ${formatDuration(job.finished_ms - job.started_ms)}`
          : ''}
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
        aria-label={`Syncing ${props.bucket}`}
      />
      <div className="jp-Infinstor-sync-text">
        Syncing: {formatCount(job.versions_seen)} versions,{' '}
        {formatCount(job.rate)}/s, {formatCount(job.pages)} pages
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
  const parts: string[] = [`${formatCount(b.version_count)} versions`];
  if (b.last_sync_ms) {
    parts.push(`synced ${formatDuration(now - b.last_sync_ms)} ago`);
  } else {
    parts.push('never synced');
  }
  let events = 'no events (periodic scans)';
  if (b.events) {
    events =
      b.last_event_ms !== null
        ? `events: last ${formatDuration(b.lag_ms ?? now - b.last_event_ms)} ago`
        : 'events: none yet';
    if (b.pending_messages) {
      events += `, ${formatCount(b.pending_messages)} queued`;
    }
  }
  return (
    <div className="jp-Infinstor-bucket-status">
      <div
        title={
          b.last_sync_ms
            ? `Last sync ${formatTime(b.last_sync_ms, props.display)}`
            : ''
        }
      >
        {parts.join(' · ')}
      </div>
      <div
        title={
          b.last_event_ms
            ? `Last event ${formatTime(b.last_event_ms, props.display)}`
            : ''
        }
      >
        {events}
        {b.malformed_events > 0 &&
          ` · ${formatCount(b.malformed_events)} malformed`}
      </div>
      {b.versioning && b.versioning !== 'Enabled' && (
        <div className="jp-Infinstor-warning">
          Versioning is {b.versioning.toLowerCase()}: new history is not kept.
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

function BucketRow(props: {
  model: InfinstorModel;
  bucket: IBucket;
}): JSX.Element {
  const { model, bucket } = props;
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
              ? `Browse s3://${bucket.name}`
              : `s3://${bucket.name} is not tracked yet`
          }
        >
          {bucket.name}
        </button>
        {bucket.tracked ? (
          <>
            <span className="jp-Infinstor-badge jp-mod-ok">tracked</span>
            <button
              className="jp-Infinstor-iconButton"
              title="Sync now (ListObjectVersions)"
              aria-label={`Sync ${bucket.name}`}
              disabled={running}
              onClick={() => void model.sync(bucket.name)}
            >
              <refreshIcon.react tag="span" className="jp-Infinstor-icon" />
            </button>
          </>
        ) : (
          <button
            className="jp-mod-styled jp-mod-accept jp-Infinstor-smallButton"
            onClick={() => void trackWithConsent(model, bucket.name)}
          >
            Track…
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

export function BucketsView(props: { model: InfinstorModel }): JSX.Element {
  const { model } = props;
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
          Only tracked buckets are shown: {listError}
        </div>
      )}
      {model.bucketsLoaded && buckets.length === 0 && !model.bucketsError && (
        <div className="jp-Infinstor-note">
          No buckets visible with these credentials.
        </div>
      )}
      {!model.bucketsLoaded && (
        <div className="jp-Infinstor-note">Loading…</div>
      )}
      <ul className="jp-Infinstor-bucketList">
        {buckets.map(b => (
          <BucketRow key={b.name} model={model} bucket={b} />
        ))}
      </ul>
    </div>
  );
}

/** The buckets section's content. */
export class BucketsWidget extends ReactWidget {
  constructor(private readonly _model: InfinstorModel) {
    super();
    this.addClass('jp-Infinstor-sectionBody');
  }

  render(): JSX.Element {
    const model = this._model;
    return (
      <UseSignal signal={model.bucketsChanged}>
        {() => (
          <UseSignal signal={model.stateChanged}>
            {() => (
              <UseSignal signal={model.settingsChanged}>
                {() => <BucketsView model={model} />}
              </UseSignal>
            )}
          </UseSignal>
        )}
      </UseSignal>
    );
  }
}
