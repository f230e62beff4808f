/**
 * The S3 Time Travel sidebar against a Jupyter server wired to moto, with the
 * demo bucket's four distinct seconds of history (see helpers.ts).
 */
import { expect, galata, test } from '@jupyterlab/galata';
import * as fs from 'fs';

import {
  asOf,
  chooseBucket,
  expandSection,
  history,
  human,
  IHistoryData,
  names,
  openFolder,
  openPanel,
  pickerValue,
  screenshot,
  setSpec,
  SIDEBAR,
  signedS3Get,
  tm
} from './helpers';

// Read when the tests run: the server writes the file when it starts.
let DATA: IHistoryData;
let S0: number, S1: number, S2: number, S3: number;
let BUCKET: string;

test.beforeAll(() => {
  DATA = history();
  [S0, S1, S2, S3] = DATA.steps;
  BUCKET = DATA.bucket;
});

test.use({
  viewport: { width: 1280, height: 1000 },
  // Times in UTC, so that the pickers' values do not depend on the machine's zone.
  mockSettings: {
    ...galata.DEFAULT_SETTINGS,
    'infinstor_jlab:plugin': { timeDisplay: 'utc' }
  }
});

test.describe('S3 Time Travel sidebar', () => {
  test.beforeEach(async ({ page }) => {
    await openPanel(page);
    await chooseBucket(page, BUCKET);
  });

  test('the same folder shows different files at two times', async ({
    page
  }) => {
    await setSpec(page, tm(S0));
    await openFolder(page, 'flowers/daisy/');
    await expect(asOf(page)).toContainText(`as of ${human(S0)}`);
    await expect(names(page)).toHaveText([
      'daisy_001.png',
      'daisy_002.png',
      'daisy_003.png'
    ]);
    await screenshot(page, 'browser-snapshot', SIDEBAR);

    await setSpec(page, tm(S2));
    await expect(asOf(page)).toContainText(`as of ${human(S2)}`);
    await expect(names(page)).toHaveText(['daisy_001.png', 'daisy_003.png']);

    // The picker shows the same second, and moves the view too.
    await expect(page.getByTestId('snapshot-picker')).toHaveValue(pickerValue(S2));
    await page.getByTestId('snapshot-picker').fill(pickerValue(S0));
    await page.getByTestId('snapshot-picker').press('Enter');
    await expect(asOf(page)).toContainText(`as of ${human(S0)}`);
    await expect(names(page)).toHaveText([
      'daisy_001.png',
      'daisy_002.png',
      'daisy_003.png'
    ]);

    await openFolder(page, 'flowers/');
    await expect(names(page)).toHaveText(['daisy/']);
    await setSpec(page, tm(S3));
    await expect(names(page)).toHaveText(['daisy/', 'rose/', 'tulip/']);
  });

  test("slice mode shows only the window's arrivals", async ({ page }) => {
    await setSpec(page, `${tm(S1)}-${tm(S1)}`);
    await expect(
      page.locator(`${SIDEBAR} .jp-Infinstor-mode[data-mode="slice"]`)
    ).toHaveAttribute('aria-checked', 'true');
    await expect(asOf(page)).toContainText(
      `arrivals from ${human(S1)} to ${human(S1)}`
    );
    await expect(names(page)).toHaveText(['flowers/', 'tables/', 'README.txt']);
    await openFolder(page, 'flowers/');
    await expect(names(page)).toHaveText(['rose/']);
    await openFolder(page, 'tables/');
    await expect(names(page)).toHaveText(['iris.csv']);
    await screenshot(page, 'browser-slice', SIDEBAR);

    // A window over the last two steps: tulips and labels.json, never daisies.
    await setSpec(page, `${tm(S2)}-${tm(S3)}`);
    await openFolder(page, 'flowers/');
    await expect(names(page)).toHaveText(['tulip/']);
  });

  test('preview shows the old content of an overwritten file', async ({
    page
  }) => {
    await setSpec(page, tm(S0));
    await openFolder(page, 'tables/');
    await page.locator(`${SIDEBAR} .jp-Infinstor-row[data-key="tables/iris.csv"]`).dblclick();
    const preview = page.locator('.jp-Infinstor-preview').last();
    await expect(preview.getByTestId('preview-asof')).toHaveText(
      `as of ${human(S0)}`
    );
    // Version 1 has 30 rows (plus the header).
    await expect(preview.locator('.jp-Infinstor-preview-table tbody tr')).toHaveCount(
      30
    );
    await screenshot(page, 'preview-csv');

    await setSpec(page, tm(S3));
    await page.locator(`${SIDEBAR} .jp-Infinstor-row[data-key="tables/iris.csv"]`).dblclick();
    await expect(
      page.locator('.jp-Infinstor-preview').last().locator('.jp-Infinstor-preview-table tbody tr')
    ).toHaveCount(90);

    // README.txt: the first draft before S1, the second text at S1, gone at S3.
    await setSpec(page, tm(S0));
    await page.locator(`${SIDEBAR} .jp-Infinstor-crumb`).first().click();
    await page.locator(`${SIDEBAR} .jp-Infinstor-row[data-key="README.txt"]`).dblclick();
    await expect(page.locator('.jp-Infinstor-preview').last().getByTestId('preview-body')).toHaveText(
      'Sample data, first draft.'
    );
    await setSpec(page, tm(S1));
    await page.locator(`${SIDEBAR} .jp-Infinstor-row[data-key="README.txt"]`).dblclick();
    await expect(page.locator('.jp-Infinstor-preview').last().getByTestId('preview-body')).toHaveText(
      'Sample data: flowers and iris.'
    );
    await setSpec(page, tm(S3));
    await expect(names(page)).toHaveText(['flowers/', 'tables/']);
  });

  test('download gets exactly the version shown', async ({ page }) => {
    await setSpec(page, tm(S0));
    await openFolder(page, 'tables/');
    const row = page.locator(
      `${SIDEBAR} .jp-Infinstor-row[data-key="tables/iris.csv"]`
    );
    await row.click();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      row.locator('button[aria-label="Download"]').click()
    ]);
    expect(download.suggestedFilename()).toBe('iris.csv');
    const file = await download.path();
    const lines = fs.readFileSync(file!, 'utf-8').trim().split('\n');
    // The first version: a header and 30 rows (the latest has 90).
    expect(lines).toHaveLength(31);
  });

  test('a click in the history moves the time there', async ({ page }) => {
    await setSpec(page, tm(S3));
    await openFolder(page, 'tables/');
    const row = page.locator(`${SIDEBAR} .jp-Infinstor-row[data-key="tables/iris.csv"]`);
    await row.click();
    await row.locator('button[aria-label="History"]').click();
    const rows = page.locator('.jp-Infinstor-history-row');
    await expect(rows).toHaveCount(3);
    await screenshot(page, 'history');
    // Oldest version last: written at S0.
    await rows.nth(2).click();
    await expect(page.getByTestId('spec-input')).toHaveValue(tm(S0));
    await expect(asOf(page)).toContainText(`as of ${human(S0)}`);
    await expect(rows.nth(2)).toHaveClass(/jp-mod-selected/);
    await rows.nth(1).click();
    await expect(page.getByTestId('spec-input')).toHaveValue(tm(S1));
  });

  test('the diff of the slice window counts what changed', async ({ page }) => {
    // The window S1..S3 compares the snapshot just before S1 (= S0) with S3.
    await setSpec(page, `${tm(S1)}-${tm(S3)}`);
    await expandSection(page, 'Diff');
    // The snapshot just before the window: the last millisecond before S1's second.
    const beforeS1 = Math.floor(S1 / 1000) * 1000 - 1;
    await expect(page.getByTestId('diff-from')).toHaveValue(pickerValue(beforeS1));
    await expect(page.getByTestId('diff-to')).toHaveValue(pickerValue(S3));
    await page.getByTestId('diff-compare').click();
    await expect(page.getByTestId('diff-added')).toHaveText('+5 added');
    await expect(page.getByTestId('diff-modified')).toHaveText('~1 modified');
    await expect(page.getByTestId('diff-deleted')).toHaveText('−2 deleted');
    // The list of changes opens as a main-area tab; the sidebar keeps the counts.
    const tab = page.getByTestId('diff-tab');
    const list = tab.locator('.jp-Infinstor-diff-list li');
    await expect(list).toHaveCount(8);
    await expect(
      tab.locator('.jp-Infinstor-diff-list .jp-mod-deleted')
    ).toHaveText(['−README.txt', '−flowers/daisy/daisy_002.png']);
    await expect(page.locator(`${SIDEBAR} .jp-Infinstor-diff-list`)).toHaveCount(0);
    await screenshot(page, 'diff', SIDEBAR);
    await screenshot(page, 'diff-tab');

    // Each entry opens as a preview of its version: the deleted daisy image.
    await tab
      .locator('.jp-Infinstor-diff-list .jp-mod-deleted button', {
        hasText: 'daisy_002.png'
      })
      .click();
    await expect(
      page.locator('.jp-Infinstor-preview').last().locator('img')
    ).toBeVisible();
  });

  test('a label is created, used, verified and deleted', async ({ page }) => {
    const name = `ui-daisies-${Date.now()}`;
    await setSpec(page, tm(S0));
    await openFolder(page, 'flowers/');
    // The browser's toolbar button (the "as of" line no longer covers it).
    await page
      .locator(`${SIDEBAR} .lm-AccordionPanel-title`, { hasText: 'Browser' })
      .locator('.jp-Toolbar-item')
      .nth(1)
      .click();
    await page.locator('input[name="label-name"]').fill(name);
    await page.locator('textarea[name="label-description"]').fill('Daisies at S0');
    await page.locator('.jp-Dialog .jp-mod-accept').click();
    await expect(page.getByTestId('fingerprint')).toHaveText(/^sha256:[0-9a-f]{64}$/);
    await expect(page.getByTestId('label-created')).toContainText('3 objects');
    await page.locator('.jp-Dialog .jp-mod-accept').click();

    // The same name again: the server's sentence, in the dialog.
    await page.evaluate(() => {
      void (window as any).jupyterapp.commands.execute('infinstor:create-label');
    });
    await page.locator('input[name="label-name"]').fill(name);
    await page.locator('.jp-Dialog .jp-mod-accept').click();
    await expect(page.getByTestId('label-error')).toContainText('already exists');
    await page.locator('.jp-Dialog .jp-mod-reject').click();

    const item = page.locator(`${SIDEBAR} .jp-Infinstor-label[data-label="${name}"]`);
    await expandSection(page, 'Labels');
    await expect(item).toContainText(`s3://${BUCKET}/flowers/`);
    await expect(item).toContainText(human(S0));

    // Somewhere else, then "Use": the label's folder and time come back.
    await page.locator(`${SIDEBAR} .jp-Infinstor-mode[data-mode="now"]`).click();
    await page.locator(`${SIDEBAR} .jp-Infinstor-crumb`).first().click();
    await item.getByRole('button', { name: 'Use' }).click();
    await expect(asOf(page)).toContainText(`label ${name}`);
    await expect(asOf(page)).toContainText(`as of ${human(S0)}`);
    await expect(names(page)).toHaveText(['daisy/']);
    await expect(page.getByTestId('spec-input')).toHaveValue(`label:/${name}`);
    await screenshot(page, 'labels', SIDEBAR);

    await item.getByRole('button', { name: 'Verify' }).click();
    await expect(item.getByTestId('verify-ok')).toContainText('3 versions verified');

    // A success notification says so, with Details (the label's tab).
    await expect(
      page.locator('.Toastify__toast', { hasText: `Label ${name} verified` })
    ).toBeVisible();
    await item.getByRole('button', { name: 'Details' }).click();
    const details = page.getByTestId('label-details');
    await expect(details).toContainText(tm(S0));
    await expect(details.getByTestId('details-fingerprint')).toHaveText(
      /^sha256:[0-9a-f]{64}$/
    );

    // Delete is an icon that asks first, naming the label.
    await item.getByRole('button', { name: `Delete label ${name}` }).click();
    await expect(page.locator('.jp-Dialog-header')).toContainText(
      `Delete label ${name}?`
    );
    await page.locator('.jp-Dialog .jp-mod-warn').click();
    await expect(item).toHaveCount(0);
    await expect(
      page.locator(`${SIDEBAR} .jp-Infinstor-mode[data-mode="now"]`)
    ).toHaveAttribute('aria-checked', 'true');
  });

  test("a bad time spec shows the server's message", async ({ page }) => {
    await setSpec(page, 'yesterday at noon');
    const error = page.getByTestId('spec-error');
    await expect(error).toContainText("is not a time spec I understand");
    await expect(error).toContainText('Accepted time specs');
    await expect(page.getByTestId('spec-input')).toHaveAttribute('aria-invalid', 'true');
    await screenshot(page, 'bad-spec', SIDEBAR);
    // Escape puts the current spec back.
    await page.getByTestId('spec-input').press('Escape');
    await expect(error).toHaveCount(0);
    await expect(page.getByTestId('spec-input')).toHaveValue('now');
  });

  test('the arrow keys move the time on the timeline', async ({ page }) => {
    await setSpec(page, tm(S2));
    const timeline = page.getByTestId('timeline');
    await timeline.focus();
    await page.keyboard.press('ArrowLeft');
    await expect(page.getByTestId('spec-input')).toHaveValue(tm(S1));
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await expect(page.getByTestId('spec-input')).toHaveValue(tm(S3));
    await screenshot(page, 'timeline', `${SIDEBAR} .jp-Infinstor-timeSection`);

    // A click picks a snapshot; a drag picks a slice.
    const box = (await timeline.boundingBox())!;
    await timeline.click({ position: { x: 2, y: box.height / 2 } });
    await expect(
      page.locator(`${SIDEBAR} .jp-Infinstor-mode[data-mode="snapshot"]`)
    ).toHaveAttribute('aria-checked', 'true');
    await page.mouse.move(box.x + 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2, {
      steps: 5
    });
    await page.mouse.move(box.x + box.width - 2, box.y + box.height / 2, {
      steps: 5
    });
    await page.mouse.up();
    await expect(
      page.locator(`${SIDEBAR} .jp-Infinstor-mode[data-mode="slice"]`)
    ).toHaveAttribute('aria-checked', 'true');
    await expect(asOf(page)).toContainText('arrivals from');
  });

  test('insert code adds a notebook cell reading this object at this time', async ({
    page
  }) => {
    await page.notebook.createNew();
    await openPanel(page);
    await setSpec(page, tm(S1));
    await openFolder(page, 'tables/');
    const row = page.locator(`${SIDEBAR} .jp-Infinstor-row[data-key="tables/iris.csv"]`);
    await row.click();
    await row.locator('button[aria-label="Insert code"]').click();
    const source = await page.notebook.getCellTextInput(0);
    expect(source).toContain('from infinstor_jlab import infin_boto3');
    expect(source).toContain(`client = infin_boto3.client(at='${tm(S1)}')`);
    expect(source).toContain(
      `obj = client.get_object(Bucket='${BUCKET}', Key='tables/iris.csv')`
    );
  });

  test('use from other tools shows a credential for this view and inserts a snippet', async ({
    page
  }) => {
    await page.notebook.createNew();
    await openPanel(page);
    await setSpec(page, tm(S1));
    await openFolder(page, 'tables/');
    // Not awaited inside the page: the command resolves when its dialog closes.
    await page.evaluate(() => {
      void (window as any).jupyterapp.commands.execute(
        'infinstor:use-from-other-tools'
      );
    });
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog.getByTestId('othertools')).toBeVisible();
    await expect(dialog.getByTestId('othertools')).toContainText(
      `s3://${BUCKET}/tables/`
    );
    await expect(dialog.getByTestId('othertools-endpoint')).toHaveText(
      /^http:\/\/127\.0\.0\.1:\d+$/
    );
    await expect(dialog.getByTestId('othertools-key')).toHaveText(/^INFV/);
    await expect(dialog.getByTestId('othertools-secret')).not.toBeEmpty();
    await expect(dialog.getByTestId('othertools-snippet')).toContainText(
      `pd.read_parquet('s3://${BUCKET}/tables/', storage_options=opts)`
    );
    await dialog.locator('[data-tool="duckdb"]').click();
    await expect(dialog.getByTestId('othertools-snippet')).toContainText(
      'CREATE SECRET view'
    );
    await screenshot(page, 'other-tools', '.jp-Dialog-content');
    await dialog.getByRole('button', { name: 'Insert code' }).click();
    await expect(dialog).toHaveCount(0);
    const source = await page.notebook.getCellTextInput(0);
    expect(source).toContain('import duckdb');
    expect(source).toContain(
      `read_parquet('s3://${BUCKET}/tables/**/*.parquet')`
    );
  });

  test('a view credential is listed in View Credentials, and once revoked its requests are refused', async ({
    page,
    request
  }) => {
    await openPanel(page);
    await setSpec(page, tm(S1));
    await openFolder(page, 'tables/');
    await page.evaluate(() => {
      void (window as any).jupyterapp.commands.execute(
        'infinstor:use-from-other-tools'
      );
    });
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog.getByTestId('othertools-key')).toHaveText(/^INFV/);
    const keyId = (await dialog.getByTestId('othertools-key').textContent())!;
    const secret = (await dialog
      .getByTestId('othertools-secret')
      .textContent())!;
    const endpoint = (await dialog
      .getByTestId('othertools-endpoint')
      .textContent())!;
    const list = {
      endpoint,
      keyId,
      secret,
      path: `/${BUCKET}`,
      query: { 'list-type': '2', prefix: 'tables/' }
    };
    // The key reads its view, signed (SigV4) as any S3 client signs its requests.
    const before = await signedS3Get(request, list);
    expect(before.status()).toBe(200);
    expect(await before.text()).toContain('<Key>tables/iris.csv</Key>');

    await dialog.getByRole('button', { name: 'All credentials…' }).click();
    await expect(dialog).toHaveCount(0);
    const tab = page.getByTestId('credentials');
    await expect(tab).toBeVisible();
    const row = tab.locator(`tr[data-key="${keyId}"]`);
    await expect(row).toHaveAttribute('data-state', 'active');
    await expect(row).toContainText(`s3://${BUCKET}/tables/`);
    await expect(row).toContainText(`as of ${human(S1)}`);
    await screenshot(page, 'view-credentials', '#infinstor-credentials');

    await row.getByRole('button', { name: `Revoke ${keyId}` }).click();
    const confirm = page.locator('.jp-Dialog');
    await expect(confirm).toContainText(`Revoke view credential ${keyId}?`);
    await expect(confirm).toContainText(
      `${keyId} reads s3://${BUCKET}/tables/ as of ${human(S1)}`
    );
    await confirm.getByRole('button', { name: 'Revoke' }).click();
    await expect(confirm).toHaveCount(0);
    await expect(row).toHaveAttribute('data-state', 'revoked');
    await expect(row.getByTestId('credential-state')).toHaveText('revoked');
    await expect(row.getByRole('button')).toHaveCount(0);

    // The server says so too, and the endpoint refuses the key at once.
    const listed = await page.evaluate(async () => {
      const xsrf = document.cookie.match(/_xsrf=([^;]+)/)?.[1] ?? '';
      const r = await fetch('/infinstor/endpoint/credentials', {
        headers: { 'X-XSRFToken': xsrf }
      });
      return (await r.json()).credentials;
    });
    expect(
      listed.find((c: any) => c.aws_access_key_id === keyId)?.state
    ).toBe('revoked');
    const after = await signedS3Get(request, list);
    expect(after.status()).toBe(403);
    const body = await after.text();
    expect(body).toContain('<Code>InvalidAccessKeyId</Code>');
    expect(body).toContain('revoked');
    expect(body).not.toContain('tables/iris.csv');
  });

  test('a reload restores the panel, bucket, folder and time', async ({
    page
  }) => {
    await setSpec(page, tm(S1));
    await openFolder(page, 'flowers/');
    await expect(names(page)).toHaveText(['daisy/', 'rose/']);
    // JupyterLab writes the workspace 0.75 s after the last change: wait for it.
    await expect
      .poll(async () => {
        const ws = await page.evaluate(async () =>
          (await fetch('/lab/api/workspaces/default')).json()
        );
        return [
          ws.data['layout-restorer:data']?.left?.current,
          ws.data['infinstor_jlab:view']?.prefix
        ];
      })
      .toEqual(['infinstor-sidebar', 'flowers/']);
    // Load the page again, by hand: galata's first load had ?reset (a plain
    // reload would repeat it) and galata's goto() opens the file browser.
    // A /lab/tree/... URL would open the file browser: load /lab itself.
    await Promise.all([
      page.waitForEvent('load'),
      page.evaluate(() => window.location.assign('/lab'))
    ]);
    await page.waitForSelector('#jupyterlab-splash', { state: 'detached' });
    await expect(page.locator(SIDEBAR)).toBeVisible();
    await expect(
      page.locator(`${SIDEBAR} .jp-Infinstor-crumb[aria-current="page"]`)
    ).toHaveText('flowers');
    await expect(page.getByTestId('spec-input')).toHaveValue(tm(S1));
    await expect(names(page)).toHaveText(['daisy/', 'rose/']);
  });
});

test.describe('Buckets', () => {
  test('tracking asks for consent, then syncs with progress', async ({
    page
  }) => {
    // Against a reused server the bucket may be tracked already: forget it.
    await page.request.delete(
      `/infinstor/buckets/${DATA.plain_bucket}/track?forget=1`
    );
    await openPanel(page);
    const row = page.locator(
      `${SIDEBAR} .jp-Infinstor-bucket[data-bucket="${DATA.plain_bucket}"]`
    );
    await row.getByRole('button', { name: 'Track…' }).click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('S3 versioning');
    await expect(dialog).toContainText('History starts now');
    await screenshot(page, 'track-dialog', '.jp-Dialog-content');
    await dialog.getByRole('button', { name: 'Enable versioning and track' }).click();
    await expect(row.locator('.jp-Infinstor-badge')).toHaveText('tracked');
    await expect(row.getByTestId('sync-done')).toContainText('Synced 3 versions');
    // The newly tracked bucket is shown.
    await expect(page.locator(`${SIDEBAR} .jp-Infinstor-crumb`).first()).toHaveText(
      DATA.plain_bucket
    );
    await expect(names(page)).toHaveText(['notes/']);

    // Stop tracking asks first, then the bucket is offered for tracking again.
    await row.getByRole('button', { name: `Stop tracking ${DATA.plain_bucket}` }).click();
    const confirm = page.locator('.jp-Dialog');
    await expect(confirm).toContainText('S3 versioning stays on');
    await confirm.getByRole('button', { name: 'Stop tracking' }).click();
    await expect(confirm).toHaveCount(0);
    await expect(row.getByRole('button', { name: 'Track…' })).toBeVisible();
    await expect(row.locator('.jp-Infinstor-badge')).toHaveCount(0);
  });

  test('a long folder loads further pages as it scrolls', async ({ page }) => {
    await openPanel(page);
    await chooseBucket(page, DATA.wide_bucket);
    await openFolder(page, 'many/');
    const status = page.getByTestId('listing-status');
    await expect(status).toContainText('500 files, more to load');
    const list = page.locator(`${SIDEBAR} .jp-Infinstor-list`);
    for (let i = 0; i < 10; i++) {
      await list.evaluate(el => (el.scrollTop = el.scrollHeight));
      if ((await status.textContent())?.includes(`${DATA.wide_count.toLocaleString('en-US')} files`)) {
        break;
      }
      await page.waitForTimeout(300);
    }
    await expect(status).toHaveText(
      `0 folders, ${DATA.wide_count.toLocaleString('en-US')} files`
    );
    // Only the rows in view are in the DOM.
    expect(await page.locator(`${SIDEBAR} .jp-Infinstor-row`).count()).toBeLessThan(80);
    await page.getByTestId('filter').fill('item_00119');
    await expect(names(page)).toHaveText(
      Array.from({ length: 10 }, (_, i) => `item_00119${i}.txt`)
    );
    await screenshot(page, 'browser-filter', SIDEBAR);
  });
});

test.describe('Dark theme', () => {
  test.use({
    mockSettings: {
      ...galata.DEFAULT_SETTINGS,
      '@jupyterlab/apputils-extension:themes': {
        ...(galata.DEFAULT_SETTINGS['@jupyterlab/apputils-extension:themes'] as any),
        theme: 'JupyterLab Dark'
      },
      'infinstor_jlab:plugin': { timeDisplay: 'utc' }
    }
  });

  test('the panel follows the dark theme', async ({ page }) => {
    const data = history();
    await openPanel(page);
    await chooseBucket(page, data.bucket);
    await setSpec(page, `${tm(data.steps[1])}-${tm(data.steps[3])}`);
    await openFolder(page, 'tables/');
    await page.locator(`${SIDEBAR} .jp-Infinstor-row`).first().click();
    await expect(page.locator('body')).toHaveAttribute(
      'data-jp-theme-light',
      'false'
    );
    // Text is drawn in the theme's colours, not the light theme's.
    const color = await page
      .locator(`${SIDEBAR} .jp-Infinstor-breadcrumbs .jp-Infinstor-crumb`)
      .first()
      .evaluate(el => getComputedStyle(el).color);
    const [r, g, b] = color.match(/\d+/g)!.map(Number);
    expect((r + g + b) / 3).toBeGreaterThan(128);
    await screenshot(page, 'sidebar-dark', SIDEBAR);
  });
});
