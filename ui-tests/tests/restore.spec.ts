/**
 * The sidebar's restore dialog (issue 21), against the server's own bucket
 * `infinstor-restore` (jupyter_server_test_config.py):
 *
 *   good     tables/a.csv (row a,1), tables/b.csv (row b,1), tables/keep.csv
 *   damaged  a.csv overwritten (row a,BAD), b.csv deleted, c.csv added
 *
 * Each run first puts the folder in its damaged state through the REST API
 * (a restore to the damaged second: a no-op on a fresh server), so the test
 * passes again against a reused server.
 */
import { expect, galata, test } from '@jupyterlab/galata';
import { APIRequestContext } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

import {
  asOf,
  chooseBucket,
  history,
  human,
  names,
  openFolder,
  openPanel,
  screenshot,
  setSpec,
  SIDEBAR,
  tm
} from './helpers';

interface IRestoreData {
  bucket: string;
  prefix: string;
  good: number;
  damaged: number;
}

function restoreData(): IRestoreData {
  const file = path.join(__dirname, '..', 'test-data', 'restore.json');
  return JSON.parse(fs.readFileSync(file, 'utf-8'));
}

let DATA: IRestoreData;
let ENDPOINT: string;

test.beforeAll(() => {
  DATA = restoreData();
  ENDPOINT = history().endpoint;
});

test.use({
  viewport: { width: 1280, height: 1000 },
  mockSettings: {
    ...galata.DEFAULT_SETTINGS,
    'infinstor_jlab:plugin': { timeDisplay: 'utc' }
  }
});

/** Restore the folder to `to` over REST (plan, then the job), and wait for it. */
async function restoreOverRest(
  request: APIRequestContext,
  to: string
): Promise<void> {
  const url = `/infinstor/buckets/${DATA.bucket}/restore`;
  const plan = await request.post(`${url}/plan`, {
    data: { prefix: DATA.prefix, to }
  });
  expect(plan.ok()).toBeTruthy();
  const doc = await plan.json();
  if (doc.copy.length + doc.delete.length === 0) {
    return;
  }
  const started = await request.post(url, {
    data: {
      prefix: DATA.prefix,
      to,
      confirm: doc.confirm,
      expect: doc.fingerprint
    }
  });
  expect(started.status()).toBe(202);
  let job = await started.json();
  while (!job.finished) {
    await new Promise(resolve => setTimeout(resolve, 200));
    job = await (await request.get(`/infinstor/jobs/${job.id}`)).json();
  }
  expect(job.result?.ok).toBe(true);
}

/** ETags without their quotes (S3 sends them quoted, XML-escaped in listings). */
const bare = (etag: string) => etag.replace(/&quot;|&#34;|"/g, '');

/**
 * What S3 itself holds now under the folder: key → content ETag, from moto's
 * ListObjectsV2 (not from the index).
 */
async function liveInS3(
  request: APIRequestContext
): Promise<Record<string, string>> {
  const listing = await (
    await request.get(
      `${ENDPOINT}/${DATA.bucket}?list-type=2&prefix=${encodeURIComponent(DATA.prefix)}`
    )
  ).text();
  const out: Record<string, string> = {};
  for (const m of listing.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const key = /<Key>([^<]+)<\/Key>/.exec(m[1])?.[1] ?? '';
    out[key] = bare(/<ETag>([^<]+)<\/ETag>/.exec(m[1])?.[1] ?? '');
  }
  return out;
}

/** The view as the index answers it: key → ETag. */
async function view(
  request: APIRequestContext,
  at: string
): Promise<Record<string, string>> {
  const resp = await request.get(
    `/infinstor/buckets/${DATA.bucket}/objects?prefix=${encodeURIComponent(
      DATA.prefix
    )}&at=${at}`
  );
  expect(resp.ok()).toBeTruthy();
  const page = await resp.json();
  return Object.fromEntries(
    page.objects.map((o: { key: string; etag: string }) => [
      o.key,
      bare(o.etag)
    ])
  );
}

test.describe('Restore a folder to a time', () => {
  test('the dialog shows the plan, asks for the name, then restores', async ({
    page
  }) => {
    const GOOD = tm(DATA.good);
    await restoreOverRest(page.request, tm(DATA.damaged));
    const good = await view(page.request, GOOD);
    expect(Object.keys(good)).toEqual([
      'tables/a.csv',
      'tables/b.csv',
      'tables/keep.csv'
    ]);
    const damaged = await liveInS3(page.request);
    expect(Object.keys(damaged)).toEqual([
      'tables/a.csv',
      'tables/c.csv',
      'tables/keep.csv'
    ]);
    expect(damaged['tables/a.csv']).not.toBe(good['tables/a.csv']);

    await openPanel(page);
    await chooseBucket(page, DATA.bucket);
    await setSpec(page, GOOD);
    await expect(asOf(page)).toContainText(`as of ${human(DATA.good)}`);
    await openFolder(page, DATA.prefix);
    await expect(names(page)).toHaveText(['a.csv', 'b.csv', 'keep.csv']);

    // The folder's context menu, on the folder shown as of that time.
    await page.locator(`${SIDEBAR} .jp-Infinstor-crumb`).first().click();
    await page
      .locator(`${SIDEBAR} .jp-Infinstor-row[data-key="${DATA.prefix}"]`)
      .click({ button: 'right' });
    await page
      .locator('.lm-Menu-item', { hasText: 'Restore This Folder to This Time…' })
      .click();

    // The plan: what comes back, what goes, what stays, the bytes.
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog.locator('.jp-Dialog-header')).toHaveText(
      'Restore this folder to this time?'
    );
    const summary = dialog.getByTestId('restore-summary');
    await expect(summary).toContainText('2 to bring back or revert (26 B to copy)');
    await expect(summary).toContainText('1 to delete (delete markers)');
    await expect(summary).toContainText('1 unchanged');
    await expect(summary).toContainText('0 skipped');
    await expect(dialog.getByTestId('restore-actions').locator('li')).toHaveText([
      'M tables/a.csv',
      '+ tables/b.csv',
      '- tables/c.csv'
    ]);
    await screenshot(page, 'restore-dialog', '.jp-Dialog-content');

    // The diff opens file by file: the version a.csv goes back to.
    await dialog.getByRole('link', { name: 'M tables/a.csv' }).click();
    const preview = page.locator('.jp-Infinstor-preview').last();
    await expect(preview.getByTestId('preview-asof')).toHaveText(/^version /);
    await expect(
      preview.locator('.jp-Infinstor-preview-table tbody tr')
    ).toHaveText(['1a1']);
    await expect(dialog).toBeVisible();

    // Restore stays disabled until the folder's name is typed.
    const restore = dialog.locator('.jp-Dialog-button.jp-mod-accept');
    await expect(restore).toHaveText('Restore');
    await expect(restore).toBeDisabled();
    const input = dialog.locator('input[name="restore-confirm"]');
    await input.fill('table');
    await expect(restore).toBeDisabled();
    await input.fill('tables2');
    await expect(restore).toBeDisabled();
    await input.fill('tables');
    await expect(restore).toBeEnabled();
    await restore.click();
    await expect(dialog).toHaveCount(0);

    // Progress while it runs, then a notification that says how it ended.
    await expect(
      page.locator('.Toastify__toast', {
        hasText: `Restoring s3://${DATA.bucket}/${DATA.prefix}`
      })
    ).toBeVisible();
    const done = page.locator('.Toastify__toast', {
      hasText: `Restored s3://${DATA.bucket}/${DATA.prefix}`
    });
    await expect(done).toBeVisible({ timeout: 30_000 });
    await expect(done).toContainText(
      /to that view \(before it: label before-restore-\d{14}(-\d+)?\): 2 brought back, 1 delete markers\./
    );

    // The live folder now equals the view at that time, key for key and ETag
    // for ETag: in S3 itself, in the index's live view...
    expect(await liveInS3(page.request)).toEqual(good);
    expect(await view(page.request, 'now')).toEqual(good);
    // ...and in the sidebar's live listing, with the old content.
    await page.locator(`${SIDEBAR} .jp-Infinstor-mode[data-mode="now"]`).click();
    await openFolder(page, DATA.prefix);
    await expect(names(page)).toHaveText(['a.csv', 'b.csv', 'keep.csv']);
    await page
      .locator(`${SIDEBAR} .jp-Infinstor-row[data-key="tables/a.csv"]`)
      .dblclick();
    await expect(
      page
        .locator('.jp-Infinstor-preview')
        .last()
        .locator('.jp-Infinstor-preview-table tbody tr')
    ).toHaveText(['1a1']);
  });
});
