/**
 * Shared helpers of the S3 Time Travel UI tests.
 *
 * The server (jupyter_server_test_config.py) seeds moto with the demo bucket's
 * four-second history and writes the step times to test-data/history.json:
 *
 *   before S0  README.txt "Sample data, first draft." (before versioning)
 *   S0  flowers/daisy/daisy_001..003.png, tables/iris.csv (30 rows)
 *   S1  flowers/rose/rose_001..002.png, tables/iris.csv (60 rows),
 *       README.txt "Sample data: flowers and iris."
 *   S2  delete flowers/daisy/daisy_002.png, tables/labels.json
 *   S3  flowers/tulip/tulip_001..002.png, tables/iris.csv (90 rows),
 *       delete README.txt
 */
import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';
import { APIRequestContext, APIResponse } from '@playwright/test';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

export interface IHistoryData {
  endpoint: string;
  bucket: string;
  steps: number[];
  plain_bucket: string;
  wide_bucket: string;
  wide_count: number;
}

export function history(): IHistoryData {
  const file = path.join(__dirname, '..', 'test-data', 'history.json');
  return JSON.parse(fs.readFileSync(file, 'utf-8'));
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** `tmYYYYMMDDHHMMSS` of the second holding `ms` (UTC). */
export function tm(ms: number): string {
  const d = new Date(ms);
  return (
    `tm${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}` +
    `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`
  );
}

/** `2026-11-20 10:00:00 UTC`, as the server's "as of" lines write a whole second. */
export function human(ms: number): string {
  const d = new Date(ms);
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`
  );
}

/** The text of a time picker showing UTC: `2026-11-20 10:00:00`. */
export function pickerValue(ms: number): string {
  return human(ms).replace(' UTC', '');
}

export const SIDEBAR = '#infinstor-sidebar';

/** Where screenshots of the main views go (gitignored). */
export const SHOTS = path.join(__dirname, '..', 'screenshots');

export async function screenshot(
  page: IJupyterLabPageFixture,
  name: string,
  selector?: string
): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  if (selector) {
    await page.locator(selector).screenshot({ path: file });
  } else {
    await page.screenshot({ path: file });
  }
}

/** Open the sidebar with its keyboard shortcut and wait for the bucket list. */
export async function openPanel(page: IJupyterLabPageFixture): Promise<void> {
  // Keys go to the focused page; the logo is a harmless place to click.
  await page.locator('#jp-MainLogo').click();
  await page.keyboard.press('Control+Shift+Y');
  await expect(page.locator(SIDEBAR)).toBeVisible();
  await expect(
    page.locator(`${SIDEBAR} .jp-Infinstor-bucket`).first()
  ).toBeVisible();
}

/** Browse a tracked bucket from its root. */
export async function chooseBucket(
  page: IJupyterLabPageFixture,
  bucket: string
): Promise<void> {
  await page
    .locator(`${SIDEBAR} .jp-Infinstor-bucket[data-bucket="${bucket}"] .jp-Infinstor-bucket-name`)
    .click();
  await page.locator(`${SIDEBAR} .jp-Infinstor-crumb`).first().click();
  await expect(page.locator(`${SIDEBAR} .jp-Infinstor-crumb`).first()).toHaveText(
    bucket
  );
}

/** Type a time spec in the spec field and apply it. */
export async function setSpec(
  page: IJupyterLabPageFixture,
  spec: string
): Promise<void> {
  const input = page.getByTestId('spec-input');
  await input.fill(spec);
  await input.press('Enter');
  // Applied (the view moved) or refused (the server's message is shown).
  await expect(input).toHaveAttribute('data-state', /^(applied|error)$/);
}

/** Open folders by double-clicking them, from the bucket root. */
export async function openFolder(
  page: IJupyterLabPageFixture,
  prefix: string
): Promise<void> {
  await page.locator(`${SIDEBAR} .jp-Infinstor-crumb`).first().click();
  let acc = '';
  for (const part of prefix.split('/').filter(Boolean)) {
    acc += `${part}/`;
    await page.locator(`${SIDEBAR} .jp-Infinstor-row[data-key="${acc}"]`).dblclick();
    await expect(
      page.locator(`${SIDEBAR} .jp-Infinstor-crumb[aria-current="page"]`)
    ).toHaveText(part);
  }
}

/** The names the browser shows, in order. */
export function names(page: IJupyterLabPageFixture) {
  return page.locator(`${SIDEBAR} .jp-Infinstor-row .jp-Infinstor-name`);
}

/** The browser's "as of" line. */
export function asOf(page: IJupyterLabPageFixture) {
  return page.locator(`${SIDEBAR} [data-testid="asof"]`);
}

/** Expand an accordion section of the sidebar by its title. */
export async function expandSection(
  page: IJupyterLabPageFixture,
  title: string
): Promise<void> {
  const header = page.locator(`${SIDEBAR} .lm-AccordionPanel-title`, {
    hasText: title
  });
  if ((await header.getAttribute('aria-expanded')) !== 'true') {
    await header.click();
  }
  await expect(header).toHaveAttribute('aria-expanded', 'true');
}

/** What jupyter_server_test_config.py set up for transforms (test-data/transforms.json). */
export interface ITransformsData {
  /** Tracked bucket the runs write to. */
  output_bucket: string;
  /** `InfinstorApp.transform_output_uri`: s3://<output_bucket>/transform-out/. */
  output_uri: string;
  /** The transform name whose MLflow experiment keeps artifacts in the temp workdir. */
  transform: string;
  /** A bucket no test tracks (the Buckets test tracks the history's plain bucket). */
  untracked_bucket: string;
  /** The demo's notebook (as `infinstor-jlab demo` writes it), in test-data/. */
  demo_notebook: string;
  /** The name the demo test gives the demo notebook's transform. */
  demo_transform: string;
}

export const TEST_DATA = path.join(__dirname, '..', 'test-data');

export function transformsData(): ITransformsData {
  const file = path.join(__dirname, '..', 'test-data', 'transforms.json');
  return JSON.parse(fs.readFileSync(file, 'utf-8'));
}

/** RFC 3986 encoding, as SigV4's canonical request wants it. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    c => '%' + c.charCodeAt(0).toString(16).toUpperCase()
  );
}

/**
 * A GET to an S3 endpoint signed with AWS Signature Version 4 (in headers),
 * as any S3 client sends it: what a reader with a view credential does.
 */
export async function signedS3Get(
  request: APIRequestContext,
  options: {
    endpoint: string;
    keyId: string;
    secret: string;
    path: string;
    query?: Record<string, string>;
    region?: string;
  }
): Promise<APIResponse> {
  const region = options.region ?? 'us-east-1';
  const url = new URL(options.endpoint);
  const now = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  const day = now.slice(0, 8);
  const payload = crypto.createHash('sha256').update('').digest('hex');
  const query = Object.entries(options.query ?? {})
    .map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const path = options.path.split('/').map(uriEncode).join('/');
  const headers: Record<string, string> = {
    host: url.host,
    'x-amz-content-sha256': payload,
    'x-amz-date': now
  };
  const signed = Object.keys(headers).sort().join(';');
  const canonical = [
    'GET',
    path,
    query,
    ...Object.keys(headers)
      .sort()
      .map(h => `${h}:${headers[h]}`),
    '',
    signed,
    payload
  ].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = [
    'AWS4-HMAC-SHA256',
    now,
    scope,
    crypto.createHash('sha256').update(canonical).digest('hex')
  ].join('\n');
  const hmac = (key: crypto.BinaryLike, data: string) =>
    crypto.createHmac('sha256', key).update(data).digest();
  let key = hmac('AWS4' + options.secret, day);
  for (const part of [region, 's3', 'aws4_request']) {
    key = hmac(key, part);
  }
  const signature = crypto
    .createHmac('sha256', key)
    .update(toSign)
    .digest('hex');
  return request.get(`${url.origin}${path}${query ? '?' + query : ''}`, {
    headers: {
      'x-amz-content-sha256': payload,
      'x-amz-date': now,
      authorization:
        `AWS4-HMAC-SHA256 Credential=${options.keyId}/${scope}, ` +
        `SignedHeaders=${signed}, Signature=${signature}`
    }
  });
}
