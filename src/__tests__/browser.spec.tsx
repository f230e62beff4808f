import * as React from 'react';
import { act } from 'react';
import { createRoot } from 'react-dom/client';

import { InfinstorActions } from '../browse/actions';
import { AsOf, Browser, ROW_HEIGHT } from '../browse/browser';
import { InfinstorClient } from '../api/client';
import { InfinstorModel } from '../model';
import { IObjectsPage } from '../api/types';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

function bigPage(n: number, next: string | null = null): IObjectsPage {
  const objects = [];
  for (let i = 0; i < n; i++) {
    objects.push({
      key: `many/item_${String(i).padStart(6, '0')}.txt`,
      version_id: `v${i}`,
      size: i,
      etag: '"e"',
      last_modified: '2026-11-20T10:00:00.000Z'
    });
  }
  return {
    objects,
    prefixes: [],
    next_token: next,
    bucket: 'b',
    prefix: 'many/',
    delimiter: '/',
    spec: {
      kind: 'snapshot',
      start_ms: null,
      end_ms: 0,
      canonical: 'tm20261120100000',
      display: 'as of 2026-11-20 10:00:00 UTC',
      label: null
    }
  };
}

describe('Browser', () => {
  it('renders only the rows in view of 100,000 entries', async () => {
    const client = {
      listObjects: jest.fn(async () => bigPage(0)),
      timeline: jest.fn(async () => {
        throw new Error('no timeline in this test');
      })
    } as unknown as InfinstorClient;
    const model = new InfinstorModel({ client });
    model.setBucket('b');
    await new Promise(resolve => setTimeout(resolve, 0));
    model.applyPage(bigPage(100_000), false);
    const actions = {} as InfinstorActions;
    const host = document.createElement('div');
    document.body.appendChild(host);
    const root = createRoot(host);
    await act(async () => {
      root.render(<Browser model={model} actions={actions} />);
    });
    const rows = host.querySelectorAll('.jp-Infinstor-row');
    // jsdom has no layout: one row "in view" plus the overscan.
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThan(40);
    const content = host.querySelector(
      '.jp-Infinstor-virtualList-content'
    ) as HTMLElement;
    expect(content.style.height).toBe(`${100_000 * ROW_HEIGHT}px`);
    expect(host.querySelector('[data-testid="asof"]')?.textContent).toContain(
      'as of 2026-11-20 10:00:00 UTC'
    );
    expect(
      host.querySelector('[data-testid="listing-status"]')?.textContent
    ).toContain('100,000 files');
    await act(async () => {
      root.unmount();
    });
    model.dispose();
  });
});

describe('AsOf', () => {
  async function renderWith(spec: IObjectsPage['spec']): Promise<HTMLElement> {
    const client = {
      listObjects: jest.fn(async () => bigPage(0)),
      timeline: jest.fn(async () => {
        throw new Error('no timeline in this test');
      })
    } as unknown as InfinstorClient;
    const model = new InfinstorModel({
      client,
      settings: { timeDisplay: 'utc' }
    });
    model.setBucket('b');
    model.setSnapshot(spec.end_ms);
    await new Promise(resolve => setTimeout(resolve, 0));
    model.applyPage({ ...bigPage(1), spec }, false);
    const host = document.createElement('div');
    const root = createRoot(host);
    await act(async () => {
      root.render(<AsOf model={model} />);
    });
    return host;
  }

  it('shows a future time as live, with a note in the Time display form', async () => {
    const end = Date.UTC(2099, 11, 31, 0, 0, 0) + 999;
    const host = await renderWith({
      kind: 'snapshot',
      start_ms: null,
      end_ms: end,
      canonical: 'tm20991231000000',
      display: 'as of 2099-12-31 00:00:00 UTC',
      label: null,
      future: true
    });
    const banner = host.querySelector('[data-testid="asof"]') as HTMLElement;
    expect(banner.classList).toContain('jp-mod-live');
    expect(banner.classList).not.toContain('jp-mod-past');
    expect(banner.textContent).not.toContain('as of 2099');
    expect(host.querySelector('[data-testid="asof-note"]')?.textContent).toBe(
      '2099-12-31 00:00:00 UTC is in the future, so this is the bucket as it is now.'
    );
  });

  it('keeps the past banner, without a note, for a past time', async () => {
    const host = await renderWith({
      ...bigPage(0).spec,
      end_ms: Date.UTC(2026, 10, 20, 10, 0, 0) + 999
    });
    const banner = host.querySelector('[data-testid="asof"]') as HTMLElement;
    expect(banner.classList).toContain('jp-mod-past');
    expect(host.querySelector('[data-testid="asof-note"]')).toBeNull();
  });
});
