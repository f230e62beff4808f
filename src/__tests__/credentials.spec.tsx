import { waitForDialog } from '@jupyterlab/testing';
import * as React from 'react';
import { act } from 'react';
import { createRoot, Root } from 'react-dom/client';

import { InfinstorActions } from '../browse/actions';
import { CredentialsModel, CredentialsView } from '../browse/credentials';
import { openOtherToolsDialog } from '../browse/othertools';
import { IIssuedViewCredential, IViewCredential } from '../api/types';
import { InfinstorModel } from '../model';
import { CommandIDs, DEFAULT_SETTINGS, ISettings } from '../tokens';
import { IViewState, pinnedViewParams } from '../viewstate';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const T = Date.UTC(2026, 10, 1, 0, 0, 0);
const UTC: ISettings = { ...DEFAULT_SETTINGS, timeDisplay: 'utc' };

function cred(patch: Partial<IViewCredential>): IViewCredential {
  return {
    aws_access_key_id: 'INFVAAAA',
    view: {
      bucket: 'flowers',
      prefix: 'tables/',
      kind: 'snapshot',
      start_ms: null,
      end_ms: T + 999,
      spec: 'tm20261101000000',
      canonical: 'tm20261101000000',
      display: 'as of 2026-11-01 00:00:00 UTC',
      label: null
    },
    created: '2026-11-02T00:00:00Z',
    created_ms: T + 86_400_000,
    expires: '2026-11-09T00:00:00Z',
    expires_ms: T + 8 * 86_400_000,
    revoked_ms: null,
    state: 'active',
    secret_fingerprint: '0123456789abcdef',
    description: 'from the sidebar',
    ...patch
  };
}

const ACTIVE = cred({});
const LABELLED = cred({
  aws_access_key_id: 'INFVBBBB',
  view: {
    ...ACTIVE.view,
    prefix: 'daisy/',
    spec: 'label:/daisies',
    label: 'daisies'
  },
  expires: null,
  expires_ms: null
});
const EXPIRED = cred({ aws_access_key_id: 'INFVCCCC', state: 'expired' });
const EVERYWHERE = cred({
  aws_access_key_id: 'INFVDDDD',
  view: { ...ACTIVE.view, bucket: null, prefix: '' },
  state: 'revoked',
  revoked_ms: T + 2 * 86_400_000
});

/** A client over a list that revoke changes, as the server's does. */
function stubClient(list: IViewCredential[]) {
  let creds = [...list];
  const client = {
    listViewCredentials: jest.fn(async () => ({ credentials: [...creds] })),
    revokeViewCredential: jest.fn(async (keyId: string) => {
      const found = creds.find(c => c.aws_access_key_id === keyId);
      if (!found) {
        throw new Error(`No view credential ${keyId}.`);
      }
      const revoked = { ...found, state: 'revoked' as const, revoked_ms: T };
      creds = creds.map(c => (c === found ? revoked : c));
      return revoked;
    })
  };
  return client;
}

async function render(model: CredentialsModel): Promise<{
  host: HTMLElement;
  root: Root;
  rerender: () => Promise<void>;
}> {
  const host = document.createElement('div');
  document.body.appendChild(host);
  const root = createRoot(host);
  const rerender = async () => {
    await act(async () => {
      root.render(<CredentialsView model={model} settings={UTC} />);
    });
  };
  model.changed.connect(() => void rerender());
  await rerender();
  return { host, root, rerender };
}

function row(host: HTMLElement, key: string): HTMLTableRowElement {
  return host.querySelector(`tr[data-key="${key}"]`) as HTMLTableRowElement;
}

function cells(tr: HTMLTableRowElement): string[] {
  return Array.from(tr.querySelectorAll('td')).map(td => td.textContent ?? '');
}

describe('CredentialsModel', () => {
  it('lists, then keeps the server’s error of a failed refresh', async () => {
    const client = stubClient([ACTIVE]);
    const model = new CredentialsModel(client);
    expect(model.loaded).toBe(false);
    await model.refresh();
    expect(model.credentials).toEqual([ACTIVE]);
    expect(model.error).toBeNull();
    client.listViewCredentials.mockRejectedValueOnce(
      new Error('View credentials are unavailable in this server.')
    );
    await model.refresh();
    expect(model.error).toBe(
      'View credentials are unavailable in this server.'
    );
    expect(model.credentials).toEqual([ACTIVE]);
  });

  it('shows a revoked key revoked without listing again', async () => {
    const client = stubClient([ACTIVE, EXPIRED]);
    const model = new CredentialsModel(client);
    await model.refresh();
    const revoked = await model.revoke(ACTIVE.aws_access_key_id);
    expect(revoked.state).toBe('revoked');
    expect(model.credentials.map(c => c.state)).toEqual(['revoked', 'expired']);
    expect(client.listViewCredentials).toHaveBeenCalledTimes(1);
  });
});

describe('the View Credentials list', () => {
  it('shows key id, view, where, created, expires and state of each', async () => {
    const model = new CredentialsModel(
      stubClient([ACTIVE, LABELLED, EXPIRED, EVERYWHERE])
    );
    await model.refresh();
    const { host, root } = await render(model);
    expect(
      host.querySelector('[data-testid="credentials-count"]')?.textContent
    ).toBe('4 credentials · 2 active');
    expect(cells(row(host, 'INFVAAAA')).slice(0, 7)).toEqual([
      'INFVAAAA',
      'as of 2026-11-01 00:00:00 UTC',
      's3://flowers/tables/',
      '2026-11-02 00:00:00 UTC',
      '2026-11-09 00:00:00 UTC',
      'active',
      'from the sidebar'
    ]);
    // A label keeps the form it was asked for; no expiry reads "never".
    expect(cells(row(host, 'INFVBBBB')).slice(1, 5)).toEqual([
      'label:/daisies (as of 2026-11-01 00:00:00 UTC)',
      's3://flowers/daisy/',
      '2026-11-02 00:00:00 UTC',
      'never'
    ]);
    expect(cells(row(host, 'INFVCCCC'))[5]).toBe('expired');
    expect(cells(row(host, 'INFVDDDD'))[2]).toBe('every indexed bucket');
    expect(cells(row(host, 'INFVDDDD'))[5]).toBe('revoked');
    // Only an active key can be revoked.
    const revokable = Array.from(
      host.querySelectorAll('button[aria-label^="Revoke "]')
    ).map(b => b.getAttribute('aria-label'));
    expect(revokable).toEqual(['Revoke INFVAAAA', 'Revoke INFVBBBB']);
    await act(async () => root.unmount());
    host.remove();
  });

  it('says how to get one when there are none', async () => {
    const model = new CredentialsModel(stubClient([]));
    await model.refresh();
    const { host, root } = await render(model);
    expect(host.textContent).toContain('No view credentials yet.');
    expect(host.querySelector('table')).toBeNull();
    await act(async () => root.unmount());
    host.remove();
  });

  it('revokes after a confirmation that names the key and its view', async () => {
    const client = stubClient([ACTIVE, LABELLED]);
    const model = new CredentialsModel(client);
    await model.refresh();
    const { host, root } = await render(model);
    const revokeButton = () =>
      host.querySelector(
        'button[aria-label="Revoke INFVAAAA"]'
      ) as HTMLButtonElement | null;

    // Cancel: nothing is revoked.
    await act(async () => revokeButton()!.click());
    await waitForDialog();
    let dialog = document.querySelector('.jp-Dialog') as HTMLElement;
    expect(dialog.textContent).toContain('Revoke view credential INFVAAAA?');
    expect(dialog.textContent).toContain(
      'INFVAAAA reads s3://flowers/tables/ as of 2026-11-01 00:00:00 UTC.'
    );
    await act(async () => {
      (
        dialog.querySelector('.jp-Dialog-button.jp-mod-reject') as HTMLElement
      ).click();
      await new Promise(resolve => setTimeout(resolve, 0));
    });
    expect(client.revokeViewCredential).not.toHaveBeenCalled();
    expect(row(host, 'INFVAAAA').dataset.state).toBe('active');

    // Revoke: the row turns revoked and loses its button.
    await act(async () => revokeButton()!.click());
    await waitForDialog();
    dialog = document.querySelector('.jp-Dialog') as HTMLElement;
    await act(async () => {
      (
        dialog.querySelector('.jp-Dialog-button.jp-mod-warn') as HTMLElement
      ).click();
      await new Promise(resolve => setTimeout(resolve, 0));
    });
    expect(client.revokeViewCredential).toHaveBeenCalledWith('INFVAAAA');
    expect(row(host, 'INFVAAAA').dataset.state).toBe('revoked');
    expect(cells(row(host, 'INFVAAAA'))[5]).toBe('revoked');
    expect(revokeButton()).toBeNull();
    expect(row(host, 'INFVBBBB').dataset.state).toBe('active');
    await act(async () => root.unmount());
    host.remove();
  });

  it('shows why a revoke failed, and keeps the key listed as it was', async () => {
    const client = stubClient([ACTIVE]);
    client.revokeViewCredential.mockRejectedValueOnce(
      new Error('No view credential INFVAAAA.')
    );
    const model = new CredentialsModel(client);
    await model.refresh();
    const { host, root } = await render(model);
    await act(async () =>
      (
        host.querySelector(
          'button[aria-label="Revoke INFVAAAA"]'
        ) as HTMLButtonElement
      ).click()
    );
    await waitForDialog();
    await act(async () => {
      (
        document.querySelector(
          '.jp-Dialog .jp-Dialog-button.jp-mod-warn'
        ) as HTMLElement
      ).click();
      await new Promise(resolve => setTimeout(resolve, 10));
    });
    await waitForDialog();
    const dialog = document.querySelector('.jp-Dialog') as HTMLElement;
    expect(dialog.textContent).toContain('Could not revoke INFVAAAA');
    expect(dialog.textContent).toContain('No view credential INFVAAAA.');
    await act(async () => {
      (
        dialog.querySelector('.jp-Dialog-button.jp-mod-accept') as HTMLElement
      ).click();
      await new Promise(resolve => setTimeout(resolve, 0));
    });
    expect(row(host, 'INFVAAAA').dataset.state).toBe('active');
    await act(async () => root.unmount());
    host.remove();
  });
});

describe('Use from other tools… → All credentials…', () => {
  it('closes the dialog and opens the View Credentials tab', async () => {
    const issued: IIssuedViewCredential = {
      endpoint_url: 'http://127.0.0.1:41234',
      aws_access_key_id: 'INFVAAAA',
      aws_secret_access_key: 'S3CR3T',
      region: 'us-east-1',
      view: ACTIVE.view,
      expires: ACTIVE.expires,
      credential: ACTIVE
    };
    const s: IViewState = {
      bucket: 'flowers',
      prefix: 'tables/',
      mode: 'snapshot',
      atMs: T + 999,
      sliceStartMs: null,
      sliceEndMs: null,
      label: null
    };
    const model = {
      bucket: s.bucket,
      prefix: s.prefix,
      client: { issueViewCredential: jest.fn(async () => issued) },
      pinnedViewParams: () => pinnedViewParams(s, null)
    } as unknown as InfinstorModel;
    const execute = jest.fn(async () => undefined);
    const insertText = jest.fn();
    const actions = {
      insertText,
      app: { commands: { execute } }
    } as unknown as InfinstorActions;
    const done = openOtherToolsDialog(model, actions);
    await waitForDialog();
    for (let i = 0; i < 100; i++) {
      if (document.querySelector('[data-testid="othertools"]')) {
        break;
      }
      await new Promise(resolve => setTimeout(resolve, 10));
    }
    const dialog = document.querySelector('.jp-Dialog') as HTMLElement;
    expect(dialog.textContent).toContain('Revoke it in View Credentials');
    const all = Array.from(
      dialog.querySelectorAll<HTMLButtonElement>('.jp-Dialog-button')
    ).find(b => b.textContent === 'All credentials…');
    expect(all).toBeDefined();
    all!.click();
    await expect(done).resolves.toEqual(issued);
    expect(execute).toHaveBeenCalledWith(CommandIDs.viewCredentials);
    expect(insertText).not.toHaveBeenCalled();
  });
});
