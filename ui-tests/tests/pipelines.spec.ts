/**
 * Pipelines and schedules from the UI: the sidebar's Transforms section →
 * *Pipelines* → a three-step pipeline (two parallel steps feeding a third) is
 * defined in the form, run on the local executor to success, then run again
 * and every step shows as cached (with the run it reused); the same on Spark.
 * *Schedules* → a schedule defined in the form shows, and pause/resume change
 * its state.
 *
 * The server (jupyter_server_test_config.py) keeps MLflow in its temp workdir,
 * with the pipelines' experiments made up front, and sends outputs to a
 * tracked bucket (test-data/transforms.json).
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { execSync } from 'child_process';

import {
  chooseBucket,
  expandSection,
  history,
  IHistoryData,
  ITransformsData,
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
  viewport: { width: 1280, height: 1100 },
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
  '    shutil.copy(filename, os.path.join(output_dir, base + suffix + ext))'
].join('\n');

const TRANSFORM = 'pipe-copy';
const PANEL = '#infinstor-pipelines';
const SCHEDULES = '#infinstor-schedules';

function api(path: string): string {
  const base = process.env.TARGET_URL || 'http://localhost:8888';
  return `${base}/infinstor/${path}`;
}

/** Store the transform the steps use (the cell → transform flow is transforms.spec.ts'). */
async function saveTransform(page: IJupyterLabPageFixture): Promise<void> {
  const response = await page.request.post(api('transforms'), {
    data: { name: TRANSFORM, source: CELL }
  });
  expect([200, 201]).toContain(response.status());
}

/** The sidebar on the daisy folder, then Transforms → Pipelines. */
async function openPipelines(page: IJupyterLabPageFixture): Promise<void> {
  await openPanel(page);
  await chooseBucket(page, DATA.bucket);
  await openFolder(page, 'flowers/daisy/');
  await expandSection(page, 'Transforms');
  await page.locator(`${SIDEBAR} [data-testid="open-pipelines"]`).click();
  await expect(page.locator(PANEL)).toBeVisible();
}

/** Fill step `i` of the editor. */
async function fillStep(
  page: IJupyterLabPageFixture,
  i: number,
  step: { name: string; suffix: string; reads?: string[] }
): Promise<void> {
  const editor = page.locator(
    `${PANEL} .jp-Infinstor-pipelineStepEditor[data-step-index="${i}"]`
  );
  await editor.locator('input[name="step-name"]').fill(step.name);
  await editor.locator('select[name="step-transform"]').selectOption(TRANSFORM);
  if (step.reads) {
    await editor
      .locator('select[name="step-input-kind"]')
      .selectOption('steps');
    for (const name of step.reads) {
      await editor
        .locator(`input[name="step-reads"][value="${name}"]`)
        .check();
    }
  } else {
    // The sidebar's view is the default: the demo bucket's daisy folder.
    await expect(editor.locator('select[name="step-bucket"]')).toHaveValue(
      DATA.bucket
    );
    await expect(editor.locator('input[name="step-prefix"]')).toHaveValue(
      'flowers/daisy/'
    );
  }
  await editor
    .locator('textarea[name="step-kwargs"]')
    .fill(`{"suffix": "${step.suffix}"}`);
  await editor.locator('select[name="step-executor"]').selectOption('local');
}

/** Define the three-step pipeline `name` in the editor and save it. */
async function defineFan(
  page: IJupyterLabPageFixture,
  name: string
): Promise<void> {
  await page.locator(`${PANEL} [data-testid="new-pipeline"]`).click();
  const editor = page.locator(`${PANEL} [data-testid="pipeline-editor"]`);
  await editor.locator('input[name="pipeline-name"]').fill(name);
  await editor
    .locator('input[name="pipeline-description"]')
    .fill('two copies, then a copy of both');
  await fillStep(page, 0, { name: 'a', suffix: '_a' });
  await editor.getByTestId('add-step').click();
  await fillStep(page, 1, { name: 'b', suffix: '_b' });
  await editor.getByTestId('add-step').click();
  await fillStep(page, 2, { name: 'c', suffix: '_c', reads: ['a', 'b'] });

  // A bad name is refused in the form, before anything is sent.
  await editor.locator('input[name="pipeline-name"]').fill('-bad');
  await editor.getByTestId('save-pipeline').click();
  await expect(editor).toContainText('Name the pipeline');
  await editor.locator('input[name="pipeline-name"]').fill(name);
  await editor.getByTestId('save-pipeline').click();
  await expect(editor).toHaveCount(0);
}

function pipelineItem(page: IJupyterLabPageFixture, name: string) {
  return page.locator(`${PANEL} .jp-Infinstor-pipeline[data-pipeline="${name}"]`);
}

/** Run the pipeline from its card; wait for the new run to end; its steps' states. */
async function runAndWait(
  page: IJupyterLabPageFixture,
  name: string,
  options: { executor?: string; noCache?: boolean; runsBefore: number }
): Promise<string[]> {
  const item = pipelineItem(page, name);
  if (options.executor) {
    await item
      .locator('select[name="run-executor"]')
      .selectOption(options.executor);
  }
  await item.locator('input[name="no-cache"]').setChecked(!!options.noCache);
  await item.getByTestId('run-pipeline').click();
  const runs = item.locator('.jp-Infinstor-pipelineRun');
  await expect(runs).toHaveCount(options.runsBefore + 1);
  const run = runs.first();
  await expect(run).toHaveAttribute('data-state', /^(succeeded|failed|cancelled)$/, {
    timeout: 240_000
  });
  await expect(run.getByTestId('pipeline-run-error')).toHaveCount(0);
  await expect(run).toHaveAttribute('data-state', 'succeeded');
  return run
    .locator('.jp-Infinstor-pipelineStep')
    .evaluateAll(nodes => nodes.map(n => (n as HTMLElement).dataset.state ?? ''));
}

test.describe('Pipelines', () => {
  test('a three-step pipeline runs locally, then again from the cache', async ({
    page
  }) => {
    test.setTimeout(300_000);
    await saveTransform(page);
    await openPipelines(page);
    await defineFan(page, 'ui-fan');

    const item = pipelineItem(page, 'ui-fan');
    await expect(item).toContainText('3 steps');
    await expect(item).toContainText('a, b → c');
    await expect(item.getByTestId('pipeline-runs')).toContainText('No runs yet.');

    // First run: every step runs; a and b need nothing from each other.
    const first = await runAndWait(page, 'ui-fan', { runsBefore: 0 });
    expect(first).toEqual(['succeeded', 'succeeded', 'succeeded']);
    const run = item.locator('.jp-Infinstor-pipelineRun').first();
    await expect(run.getByTestId('pipeline-run-mlflow')).toBeVisible();
    await expect(run.getByTestId('step-mlflow')).toHaveCount(3);
    await expect(
      run.locator('[data-step="c"] [data-testid="step-output"]')
    ).toContainText(`s3://${TX.output_bucket}/`);
    await expect(item.getByTestId('pipeline-last-state')).toHaveText(
      'succeeded'
    );
    // The notification of a run started here.
    await expect(
      page.locator('.Toastify__toast', { hasText: 'Pipeline ui-fan finished' })
    ).toBeVisible();
    await screenshot(page, 'pipeline-run', PANEL);

    // Again: same code, kwargs and input, so each step reuses its result.
    const firstIds = await run
      .locator('[data-testid="step-mlflow"]')
      .allTextContents();
    const again = await runAndWait(page, 'ui-fan', { runsBefore: 1 });
    expect(again).toEqual(['cached', 'cached', 'cached']);
    const cached = item.locator('.jp-Infinstor-pipelineRun').first();
    const reused = await cached
      .locator('[data-testid="step-cached"]')
      .allTextContents();
    expect(reused).toHaveLength(3);
    for (const [i, text] of reused.entries()) {
      expect(text).toContain(firstIds[i].replace(/^run /, ''));
    }
    await screenshot(page, 'pipeline-cached', PANEL);

    // A step's output opens in the sidebar browser.
    await cached.locator('[data-step="c"] [data-testid="step-output"]').click();
    await expect(
      page.locator(`${SIDEBAR} .jp-Infinstor-crumb`).first()
    ).toHaveText(TX.output_bucket);
  });

  test('the same pipeline runs on Spark, then again from the cache', async ({
    page
  }) => {
    test.setTimeout(600_000);
    test.skip(!sparkAvailable(), 'pyspark or Java is not installed');
    await saveTransform(page);
    await openPipelines(page);
    await defineFan(page, 'ui-fan-spark');
    // The cache key has no executor: the local test's results would be reused,
    // so this first run opts out of the cache and every step runs on Spark.
    const first = await runAndWait(page, 'ui-fan-spark', {
      executor: 'spark',
      noCache: true,
      runsBefore: 0
    });
    expect(first).toEqual(['succeeded', 'succeeded', 'succeeded']);
    const item = pipelineItem(page, 'ui-fan-spark');
    const sparkRun = item.locator('.jp-Infinstor-pipelineRun').first();
    await expect(sparkRun.locator('[data-step="a"]')).toContainText('spark');
    await expect(sparkRun).toContainText('no cache');
    const again = await runAndWait(page, 'ui-fan-spark', {
      executor: 'spark',
      runsBefore: 1
    });
    expect(again).toEqual(['cached', 'cached', 'cached']);
  });

  test('deleting a pipeline asks first, naming it', async ({ page }) => {
    await saveTransform(page);
    const response = await page.request.post(api('pipelines'), {
      data: {
        text: [
          'name: ui-doomed',
          'steps:',
          '  - name: only',
          `    transform: ${TRANSFORM}`,
          `    input: {type: view, bucket: ${DATA.bucket}, prefix: flowers/daisy/}`
        ].join('\n')
      }
    });
    expect(response.status()).toBe(201);
    await openPipelines(page);
    const item = pipelineItem(page, 'ui-doomed');
    await item.locator('button', { hasText: 'Delete' }).click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Delete pipeline ui-doomed?');
    await dialog.locator('.jp-mod-warn').click();
    await expect(item).toHaveCount(0);
  });
});

test.describe('Schedules', () => {
  test('a schedule defined in the form shows, and pause/resume change it', async ({
    page
  }) => {
    test.setTimeout(120_000);
    await saveTransform(page);
    await openPanel(page);
    await chooseBucket(page, DATA.bucket);
    await openFolder(page, 'flowers/daisy/');
    await expandSection(page, 'Transforms');
    await page.locator(`${SIDEBAR} [data-testid="open-schedules"]`).click();
    const panel = page.locator(SCHEDULES);
    await expect(panel).toBeVisible();

    await panel.getByTestId('new-schedule').click();
    const editor = panel.getByTestId('schedule-editor');
    await editor.locator('input[name="schedule-name"]').fill('ui-fresh');
    await editor
      .locator('select[name="schedule-transform"]')
      .selectOption(TRANSFORM);
    await expect(editor.locator('select[name="schedule-bucket"]')).toHaveValue(
      DATA.bucket
    );
    await editor.locator('input[name="schedule-every"]').fill('600');
    await editor.getByTestId('save-schedule').click();
    await expect(editor).toHaveCount(0);

    const item = panel.locator('.jp-Infinstor-schedule[data-schedule="ui-fresh"]');
    await expect(item.getByTestId('schedule-trigger')).toContainText('600');
    await expect(item.getByTestId('schedule-state')).toHaveText('active');
    await expect(item.getByTestId('schedule-next')).toContainText('Next run:');
    await expect(item.getByTestId('schedule-last')).toContainText(
      'not fired yet'
    );

    await item.getByTestId('pause-schedule').click();
    await expect(item.getByTestId('schedule-state')).toHaveText('paused');
    await expect(item).toHaveAttribute('data-paused', 'true');
    await expect(item.getByTestId('schedule-next')).toContainText(
      'none while paused'
    );
    await item.getByTestId('resume-schedule').click();
    await expect(item.getByTestId('schedule-state')).toHaveText('active');

    await item.locator('button', { hasText: 'History' }).click();
    await expect(item.getByTestId('schedule-windows')).toBeVisible();
    await screenshot(page, 'schedules', SCHEDULES);

    await item.locator('button', { hasText: 'Delete' }).click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Delete schedule ui-fresh?');
    await dialog.locator('.jp-mod-warn').click();
    await expect(item).toHaveCount(0);
  });
});

function sparkAvailable(): boolean {
  try {
    execSync('python -c "import pyspark" && java -version', { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
