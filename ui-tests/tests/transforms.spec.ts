/**
 * Cells as transforms: right-click a notebook cell → "Run cell as transform…" →
 * the dialog → run locally over the sidebar's view → the Transforms section
 * shows the run reaching "succeeded" → the output folder is in the browser.
 *
 * The server (jupyter_server_test_config.py) keeps MLflow in a sqlite file in its
 * temp workdir and sends outputs to a tracked bucket (test-data/transforms.json).
 */
import { expect, test } from '@jupyterlab/galata';
import * as fs from 'fs';
import * as path from 'path';

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
  TEST_DATA,
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
/** The id of the Transform Runs main-area panel. */
const RUNS_PANEL = 'infinstor-runs';

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

    // The Transform Runs main-area panel opens on the new run, which goes to
    // succeeded; the sidebar's Transforms section keeps a summary.
    const section = `#${RUNS_PANEL}`;
    await expect(page.locator(section)).toBeVisible();
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
    await screenshot(page, 'transform-run', section);

    // The sidebar's summary lists the run in one line, with the counts; its
    // Open runs brings the one panel forward (never a second one).
    await expandSection(page, 'Transforms');
    const summary = page.locator(`${SIDEBAR} .jp-Infinstor-transformsSection`);
    const line = summary.locator(`.jp-Infinstor-runSummary[data-run="${runId}"]`);
    await expect(line).toHaveAttribute('data-state', 'succeeded');
    await expect(line.getByTestId('run-state')).toHaveText('succeeded');
    // (Other specs' runs share the server: pipelines.spec.ts's step runs count too.)
    await expect(summary.getByTestId('runs-counts')).toContainText(/\d+ runs? · /);
    await expect(summary.locator('.jp-Infinstor-run')).toHaveCount(0);
    await page.locator('.lm-TabBar-tab', { hasText: 'transform.ipynb' }).click();
    await expect(page.locator(section)).toBeHidden();
    await summary.getByTestId('open-runs').click();
    await expect(page.locator(section)).toBeVisible();
    await expect(page.locator(`[id="${RUNS_PANEL}"]`)).toHaveCount(1);
    await line.locator('button').click();
    await expect(run).toHaveAttribute('data-run', runId);

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

  test("the demo notebook's cell runs from the right-click dialog with its defaults", async ({
    page,
    tmpPath
  }) => {
    test.setTimeout(180_000);
    // The notebook `infinstor-jlab demo` opens (written by the demo's own code).
    const file = `${tmpPath}/${TX.demo_notebook}`;
    await page.contents.uploadContent(
      fs.readFileSync(path.join(TEST_DATA, TX.demo_notebook), 'utf-8'),
      'text',
      file
    );
    await page.notebook.openByPath(file);
    await page.notebook.activate(TX.demo_notebook);

    await openPanel(page);
    await chooseBucket(page, DATA.bucket);
    await openFolder(page, 'flowers/daisy/');
    await expect(names(page)).toHaveText(['daisy_001.png', 'daisy_003.png']);

    // The sample cell (the second) → right-click → Run cell as transform….
    await page.notebook.getCellLocator(1).then(cell =>
      cell!.locator('.jp-InputArea-editor').click({ button: 'right' })
    );
    await page
      .locator('.lm-Menu-item', { hasText: 'Run cell as transform…' })
      .click();
    const dialog = page.locator(DIALOG);
    await expect(dialog.getByTestId('entry-point')).toHaveAttribute(
      'data-state',
      'ok'
    );
    await expect(dialog.getByTestId('entry-point')).toContainText(
      'infin_transform_one_object'
    );
    // Only the name is typed; the rest is what the dialog offers.
    const existing = dialog.locator('select[name="transform-existing"]');
    if (await existing.count()) {
      await existing.selectOption('');
    }
    await dialog.locator('input[name="transform-name"]').fill(TX.demo_transform);
    await expect(
      dialog.locator('input[name="input-kind"][value="view"]')
    ).toBeChecked();
    await expect(
      dialog.locator('input[name="executor"][value="local"]')
    ).toBeChecked();
    await expect(dialog.locator('input[name="output-uri"]')).toHaveValue(
      TX.output_uri
    );
    await expect(dialog.locator('textarea[name="kwargs"]')).toHaveValue(
      /^\s*(\{\s*\})?\s*$/
    );
    await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
    await expect(dialog).toHaveCount(0, { timeout: 60_000 });

    const run = page.locator(`#${RUNS_PANEL} .jp-Infinstor-run.jp-mod-selected`);
    await expect(run.locator('.jp-Infinstor-run-name')).toHaveText(
      TX.demo_transform
    );
    await expect(run).toHaveAttribute('data-state', 'succeeded', {
      timeout: 120_000
    });
    await expect(run.getByTestId('run-progress')).toContainText('2 / 2');
    const runId = (await run.getAttribute('data-run')) as string;
    await expect(run.getByTestId('run-output')).toHaveText(
      `${TX.output_uri}${runId}/`
    );
    // What the cell wrote: one .txt per image, in the output folder.
    await run.getByTestId('run-output').click();
    await expect(
      page.locator(`${SIDEBAR} .jp-Infinstor-crumb[aria-current="page"]`)
    ).toHaveText(runId);
    await expect(names(page)).toContainText([
      'daisy_001.png.txt',
      'daisy_003.png.txt'
    ]);
  });
});
