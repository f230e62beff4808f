/**
 * Cells as transforms: right-click a notebook cell → "Run cell as transform…" →
 * the dialog → run locally over the sidebar's view → the Transforms section
 * shows the run reaching "succeeded" → the output folder is in the browser.
 *
 * The server (jupyter_server_test_config.py) keeps MLflow in a sqlite file in its
 * temp workdir and sends outputs to a tracked bucket (test-data/transforms.json).
 */
import { expect, test } from '@jupyterlab/galata';

import {
  chooseBucket,
  expandSection,
  history,
  IHistoryData,
  ITransformsData,
  names,
  openFolder,
  openPanel,
  screenshot,
  SIDEBAR,
  transformsData
} from './helpers';

let DATA: IHistoryData;
let TX: ITransformsData;

test.beforeAll(() => {
  DATA = history();
  TX = transformsData();
});

test.use({
  viewport: { width: 1280, height: 1000 },
  // Fail fast on a missing element rather than at the test's timeout.
  actionTimeout: 20_000
});

/** A one_object transform: copies each input file with a suffix. */
const CELL = [
  'import os',
  'import shutil',
  '',
  '',
  'def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):',
  '    base, ext = os.path.splitext(os.path.basename(filename))',
  '    suffix = kwargs.get("suffix", "_copy")',
  '    shutil.copy(filename, os.path.join(output_dir, base + suffix + ext))',
  '',
  '',
  '# Tried on one file here; these lines are not part of the transform.',
  'print("ready")  # infinstor'
].join('\n');

const DIALOG = '.jp-Dialog';

test.describe('Cells as transforms', () => {
  test('run a cell locally over the sidebar view and browse its output', async ({
    page
  }) => {
    test.setTimeout(180_000);

    await page.notebook.createNew('transform.ipynb');
    // Set the source as a whole: typing it would get the editor's auto-indent.
    await page.evaluate(source => {
      const app = (window as any).jupyterapp;
      const cell = app.shell.currentWidget.content.widgets[0];
      cell.model.sharedModel.setSource(source);
    }, CELL);
    await expect(
      page.notebook.getCellLocator(0).then(c => c!.textContent())
    ).resolves.toContain('def infin_transform_one_object');

    // The sidebar shows the demo bucket's daisy folder now: two files.
    await openPanel(page);
    await chooseBucket(page, DATA.bucket);
    await openFolder(page, 'flowers/daisy/');
    await expect(names(page)).toHaveText(['daisy_001.png', 'daisy_003.png']);

    // Right-click the cell → "Run cell as transform…".
    await page.notebook.getCellLocator(0).then(cell =>
      cell!.locator('.jp-InputArea-editor').click({ button: 'right' })
    );
    await page
      .locator('.lm-Menu-item', { hasText: 'Run cell as transform…' })
      .click();

    const dialog = page.locator(DIALOG);
    await expect(dialog.locator('.jp-Dialog-header')).toHaveText(
      'Run cell as transform'
    );
    // The cell is checked as the dialog opens: its entry point is shown.
    const entry = dialog.getByTestId('entry-point');
    await expect(entry).toHaveAttribute('data-state', 'ok');
    await expect(entry).toContainText('infin_transform_one_object');

    await dialog.locator('select[name="transform-existing"]').selectOption('');
    await dialog.locator('input[name="transform-name"]').fill(TX.transform);

    // Input: the sidebar's view (the default when the sidebar shows a bucket).
    const viewChoice = dialog.locator('input[name="input-kind"][value="view"]');
    await expect(viewChoice).toBeChecked();
    await expect(
      dialog.locator('label:has(input[name="input-kind"][value="view"])')
    ).toContainText(`s3://${DATA.bucket}/flowers/daisy/`);

    // Keyword arguments are validated as typed, and a bad value keeps the dialog open.
    const kwargs = dialog.locator('textarea[name="kwargs"]');
    await kwargs.fill('["not", "an object"]');
    await expect(dialog.getByTestId('kwargs-error')).toContainText(
      'must be a JSON object'
    );
    await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
    await expect(dialog).toBeVisible();
    await expect(dialog.locator('input[name="transform-name"]')).toHaveValue(
      TX.transform
    );
    await kwargs.fill('{"suffix": "_copy"}');
    await expect(dialog.getByTestId('kwargs-error')).toHaveCount(0);

    // Local, to the configured output location (prefilled).
    const local = dialog.locator('input[name="executor"][value="local"]');
    await local.check();
    await expect(local).toBeChecked();
    await expect(dialog.locator('input[name="output-uri"]')).toHaveValue(
      TX.output_uri
    );
    await screenshot(page, 'transform-dialog', `${DIALOG} .jp-Dialog-content`);

    // The server's 4xx sentence shows in the dialog, which keeps what was typed:
    // labelling an output needs its bucket tracked. (Not the plain bucket: the
    // Buckets test tracks that one, and runs first in the full suite.)
    const output = dialog.locator('input[name="output-uri"]');
    await output.fill(`s3://${TX.untracked_bucket}/out/`);
    await expect(dialog).toContainText(
      `Bucket ${TX.untracked_bucket} is not tracked`
    );
    await dialog.locator('input[name="label-output"]').fill('copies-v1');
    await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
    await expect(dialog.getByTestId('run-error')).toContainText(
      `needs its bucket '${TX.untracked_bucket}' tracked`
    );
    await expect(kwargs).toHaveValue('{"suffix": "_copy"}');
    await output.fill(TX.output_uri);
    await dialog.locator('input[name="label-output"]').fill('');

    await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
    await expect(dialog).toHaveCount(0, { timeout: 60_000 });

    // The Transforms section opens on the new run, which goes to succeeded.
    const section = `${SIDEBAR} .jp-Infinstor-transformsSection`;
    const run = page.locator(`${section} .jp-Infinstor-run.jp-mod-selected`);
    await expect(run).toBeVisible();
    await expect(run.locator('.jp-Infinstor-run-name')).toHaveText(TX.transform);
    const runId = (await run.getAttribute('data-run')) as string;
    expect(runId).toMatch(/^[0-9a-f]{32}$/);
    await expect(run).toHaveAttribute('data-state', 'succeeded', {
      timeout: 120_000
    });
    await expect(run.getByTestId('run-progress')).toContainText('2 / 2');
    await expect(run.getByTestId('run-mlflow')).toContainText(runId);
    await expect(run.getByTestId('run-output')).toHaveText(
      `${TX.output_uri}${runId}/`
    );
    await screenshot(page, 'transform-run', SIDEBAR);

    // The log tail.
    await run.locator('button', { hasText: 'Log' }).click();
    await expect(page.getByTestId('run-log')).not.toBeEmpty();
    await page.locator(`${DIALOG} .jp-Dialog-footer button`).click();
    await expect(page.locator(DIALOG)).toHaveCount(0);

    // The output folder is in the browser (the output bucket is tracked).
    await expandSection(page, 'Browser');
    await chooseBucket(page, TX.output_bucket);
    await openFolder(page, 'transform-out/');
    await expect(
      page.locator(`${SIDEBAR} .jp-Infinstor-row[data-key="transform-out/${runId}/"]`)
    ).toBeVisible();

    // Clicking the run's output shows that folder's files.
    await run.getByTestId('run-output').click();
    await expect(
      page.locator(`${SIDEBAR} .jp-Infinstor-crumb[aria-current="page"]`)
    ).toHaveText(runId);
    await expect(names(page)).toContainText([
      'daisy_001_copy.png',
      'daisy_003_copy.png'
    ]);

    // Run the same revision again on another view: a snapshot of the roses.
    await run.locator('button', { hasText: 'Run again…' }).click();
    const again = page.locator(DIALOG);
    await expect(again.locator('.jp-Dialog-header')).toHaveText(
      `Run ${TX.transform} r1 again`
    );
    await expect(again.getByTestId('entry-point')).toContainText(
      'infin_transform_one_object'
    );
    await expect(again.locator('textarea[name="kwargs"]')).toHaveValue(
      /"suffix": "_copy"/
    );
    await again.locator('input[name="input-kind"][value="snapshot"]').check();
    await again
      .locator('input[name="input-uri"]')
      .fill(`s3://${DATA.bucket}/flowers/rose/`);
    await again.locator('input[name="input-time-spec"]').fill('now');
    await again.locator('.jp-Dialog-footer .jp-mod-accept').click();
    await expect(again).toHaveCount(0, { timeout: 60_000 });

    const second = page.locator(
      `${section} .jp-Infinstor-run.jp-mod-selected`
    );
    await expect(second).not.toHaveAttribute('data-run', runId);
    await expect(second).toHaveAttribute('data-state', 'succeeded', {
      timeout: 120_000
    });
    await expect(second.locator('.jp-Infinstor-badge').first()).toHaveText(
      'r1'
    );
    await expect(second.getByTestId('run-progress')).toContainText('2 / 2');
    // No new revision was stored.
    await expect(
      page.locator(
        `${section} .jp-Infinstor-transform[data-transform="${TX.transform}"]`
      )
    ).toContainText('1 revision · 2 runs');
  });
});
