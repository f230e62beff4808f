/**
 * The *View Credentials* main-area tab: every credential the S3 endpoint knows
 * (key id, view, where, created, expires, state), newest first, and *Revoke…*
 * with a confirmation that names the key and its view. A long table, so it is a
 * tab (as the Transform Runs are), opened from *Use from other tools…* and the
 * palette.
 */
import {
  Dialog,
  MainAreaWidget,
  ReactWidget,
  showDialog
} from '@jupyterlab/apputils';
import { launchIcon } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import * as React from 'react';

import { IViewCredential } from '../api/types';
import { errorMessage } from '../errors';
import { trans } from '../i18n';
import { OnSignals } from '../signals';
import { formatTime } from '../time';
import { ISettings } from '../tokens';

/** What the tab needs from the REST client. */
export interface ICredentialsClient {
  listViewCredentials(): Promise<{ credentials: IViewCredential[] }>;
  revokeViewCredential(keyId: string): Promise<IViewCredential>;
}

/** The credentials as last listed, with the error of the last refresh. */
export class CredentialsModel {
  constructor(private readonly _client: ICredentialsClient) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get credentials(): ReadonlyArray<IViewCredential> {
    return this._credentials;
  }

  /** The last refresh's failure (null after a good one). */
  get error(): string | null {
    return this._error;
  }

  /** Whether the list was ever answered (or failed). */
  get loaded(): boolean {
    return this._loaded;
  }

  async refresh(): Promise<void> {
    try {
      const list = await this._client.listViewCredentials();
      this._credentials = list.credentials;
      this._error = null;
    } catch (e) {
      this._error = errorMessage(e);
    }
    this._loaded = true;
    this._changed.emit();
  }

  /** Revoke a key; the list then shows it revoked. Throws the server's error. */
  async revoke(keyId: string): Promise<IViewCredential> {
    const revoked = await this._client.revokeViewCredential(keyId);
    this._credentials = this._credentials.map(c =>
      c.aws_access_key_id === keyId ? revoked : c
    );
    this._changed.emit();
    return revoked;
  }

  private _credentials: IViewCredential[] = [];
  private _error: string | null = null;
  private _loaded = false;
  private _changed = new Signal<this, void>(this);
}

/** Where a credential reaches: `s3://bucket/prefix`, or every indexed bucket. */
export function credentialWhere(cred: IViewCredential): string {
  const view = cred.view;
  return view.bucket
    ? `s3://${view.bucket}/${view.prefix}`
    : trans.__('every indexed bucket');
}

/** The view in words, with the form it was asked for when that differs. */
export function credentialViewText(cred: IViewCredential): string {
  const view = cred.view;
  return view.spec && view.spec !== view.canonical
    ? `${view.spec} (${view.display})`
    : view.display;
}

/** A credential's time, to the second (issue and expiry times carry milliseconds). */
function when(ms: number, display: ISettings['timeDisplay']): string {
  return formatTime(Math.floor(ms / 1000) * 1000, display);
}

const STATE_CLASS: Record<IViewCredential['state'], string> = {
  active: 'jp-mod-ok',
  expired: 'jp-mod-warn',
  revoked: 'jp-mod-error'
};

function stateText(state: IViewCredential['state']): string {
  return state === 'active'
    ? trans.__('active')
    : state === 'expired'
      ? trans.__('expired')
      : trans.__('revoked');
}

/**
 * Ask before revoking (naming the key and its view), then revoke; a failure is
 * shown in a dialog. Resolves to whether the key was revoked.
 */
export async function revokeWithConfirm(
  model: CredentialsModel,
  cred: IViewCredential
): Promise<boolean> {
  const key = cred.aws_access_key_id;
  const result = await showDialog({
    title: trans.__('Revoke view credential %1?', key),
    body: trans.__(
      '%1 reads %2 %3. Every request signed with it is refused from now on: a notebook, job or tool that uses it stops reading. This cannot be undone; issue a new credential to read the view again.',
      key,
      credentialWhere(cred),
      credentialViewText(cred)
    ),
    buttons: [
      Dialog.cancelButton(),
      Dialog.warnButton({ label: trans.__('Revoke') })
    ]
  });
  if (!result.button.accept) {
    return false;
  }
  try {
    await model.revoke(key);
    return true;
  } catch (e) {
    await showDialog({
      title: trans.__('Could not revoke %1', key),
      body: errorMessage(e),
      buttons: [Dialog.okButton()]
    });
    return false;
  }
}

export function CredentialsView(props: {
  model: CredentialsModel;
  settings: Readonly<ISettings>;
}): JSX.Element {
  const { model } = props;
  const display = props.settings.timeDisplay;
  const creds = model.credentials;
  const active = creds.filter(c => c.state === 'active').length;
  return (
    <div className="jp-Infinstor-credentials" data-testid="credentials">
      <h2>{trans.__('View credentials of the S3 endpoint')}</h2>
      <p className="jp-Infinstor-hint">
        {trans.__(
          'Each key reads exactly one view, read-only. Secrets are shown only when a key is issued (Use from other tools…). A revoked or expired key is refused at once.'
        )}
      </p>
      {model.error && (
        <div className="jp-Infinstor-error" role="alert">
          {model.error}
        </div>
      )}
      <div className="jp-Infinstor-buttons">
        <span className="jp-Infinstor-run-meta" data-testid="credentials-count">
          {model.loaded && !model.error
            ? [
                trans._n(
                  '%1 credential',
                  '%1 credentials',
                  creds.length,
                  creds.length
                ),
                trans.__('%1 active', active)
              ].join(' · ')
            : ''}
        </span>
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          data-testid="credentials-refresh"
          onClick={() => void model.refresh()}
        >
          {trans.__('Refresh')}
        </button>
      </div>
      {model.loaded && !model.error && creds.length === 0 ? (
        <div className="jp-Infinstor-note">
          {trans.__(
            'No view credentials yet. “Use from other tools…” (the browser’s context menu) issues one for the view the sidebar shows.'
          )}
        </div>
      ) : (
        <table className="jp-Infinstor-detailsTable jp-Infinstor-credentialsTable">
          <thead>
            <tr>
              <th>{trans.__('Key id')}</th>
              <th>{trans.__('View')}</th>
              <th>{trans.__('Where')}</th>
              <th>{trans.__('Created')}</th>
              <th>{trans.__('Expires')}</th>
              <th>{trans.__('State')}</th>
              <th>{trans.__('Description')}</th>
              <th aria-label={trans.__('Actions')} />
            </tr>
          </thead>
          <tbody>
            {creds.map(c => (
              <tr
                key={c.aws_access_key_id}
                data-key={c.aws_access_key_id}
                data-state={c.state}
              >
                <td className="jp-Infinstor-mono">{c.aws_access_key_id}</td>
                <td title={c.view.canonical}>{credentialViewText(c)}</td>
                <td className="jp-Infinstor-mono">{credentialWhere(c)}</td>
                <td>{when(c.created_ms, display)}</td>
                <td>
                  {c.expires_ms === null
                    ? trans.__('never')
                    : when(c.expires_ms, display)}
                </td>
                <td>
                  <span
                    className={`jp-Infinstor-badge ${STATE_CLASS[c.state] ?? ''}`}
                    data-testid="credential-state"
                    title={
                      c.revoked_ms !== null
                        ? trans.__('revoked %1', when(c.revoked_ms, display))
                        : undefined
                    }
                  >
                    {stateText(c.state)}
                  </span>
                </td>
                <td>{c.description}</td>
                <td>
                  {c.state === 'active' && (
                    <button
                      className="jp-mod-styled jp-mod-warn jp-Infinstor-smallButton"
                      aria-label={trans.__('Revoke %1', c.aws_access_key_id)}
                      onClick={() => void revokeWithConfirm(model, c)}
                    >
                      {trans.__('Revoke…')}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** The tab's content: the list, drawn again when it or the settings change. */
export class CredentialsContent extends ReactWidget {
  constructor(
    readonly model: CredentialsModel,
    private readonly _settings: {
      settings: Readonly<ISettings>;
      settingsChanged: ISignal<unknown, ISettings>;
    }
  ) {
    super();
    this.addClass('jp-Infinstor-credentialsTab');
  }

  render(): JSX.Element {
    return (
      <OnSignals signals={[this.model.changed, this._settings.settingsChanged]}>
        {() => (
          <CredentialsView
            model={this.model}
            settings={this._settings.settings}
          />
        )}
      </OnSignals>
    );
  }
}

/** The id of the one *View Credentials* main-area panel. */
export const CREDENTIALS_PANEL_ID = 'infinstor-credentials';

export function createCredentialsWidget(
  model: CredentialsModel,
  settings: {
    settings: Readonly<ISettings>;
    settingsChanged: ISignal<unknown, ISettings>;
  }
): MainAreaWidget<CredentialsContent> {
  const widget = new MainAreaWidget({
    content: new CredentialsContent(model, settings)
  });
  widget.id = CREDENTIALS_PANEL_ID;
  widget.title.label = trans.__('View Credentials');
  widget.title.caption = trans.__(
    'The S3 endpoint’s view credentials: list and revoke'
  );
  widget.title.icon = launchIcon;
  widget.title.closable = true;
  return widget;
}
