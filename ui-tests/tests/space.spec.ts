/**
 * Room for every section at a laptop's size (issue 23): at 1400×900 with the
 * sidebar at its default width, and with a narrow sidebar, the browser shows
 * at least 10 rows with each section open in turn, no text of the panel
 * overflows its box, nothing covers the browser's toolbar, and a future time
 * is shown as the live view with a note. Measured on element boxes
 * (scrollWidth against clientWidth, bounding rects), not on screenshots.
 */
import { expect, galata, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

import {
  chooseBucket,
  expandSection,
  history,
  openFolder,
  openPanel,
  screenshot,
  setSpec,
  SIDEBAR,
  tm
} from './helpers';

const WIDE = 'infinstor-wide';

test.use({
  viewport: { width: 1400, height: 900 },
  mockSettings: {
    ...galata.DEFAULT_SETTINGS,
    'infinstor_jlab:plugin': { timeDisplay: 'utc' }
  }
});

// The machine running these is shared and slow: layout settles late.
test.setTimeout(180_000);

/** Collapse every section but the defaults (Buckets, Time, Browser), then open `extra`. */
async function openOnly(page: IJupyterLabPageFixture, extra: string | null): Promise<void> {
  for (const title of ['Diff', 'Labels', 'Transforms']) {
    const header = page.locator(`${SIDEBAR} .lm-AccordionPanel-title`, { hasText: title });
    const open = (await header.getAttribute('aria-expanded')) === 'true';
    if (open !== (title === extra)) {
      await header.click();
      await expect(header).toHaveAttribute('aria-expanded', String(title === extra));
    }
  }
  for (const title of ['Buckets', 'Time', 'Browser']) {
    await expandSection(page, title);
  }
  // The accordion lays out on the next frames.
  await page.waitForTimeout(300);
}

/** Rows of the browser fully inside its scrolling box. */
async function visibleRows(page: IJupyterLabPageFixture): Promise<number> {
  return page.evaluate(sel => {
    const list = document.querySelector(`${sel} .jp-Infinstor-virtualList`);
    if (!list) {
      return 0;
    }
    const box = list.getBoundingClientRect();
    return Array.from(list.querySelectorAll('.jp-Infinstor-row')).filter(row => {
      const r = row.getBoundingClientRect();
      return r.height > 0 && r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5;
    }).length;
  }, SIDEBAR);
}

/**
 * Text that does not fit its box: an element whose own text is wider than it
 * (scrollWidth > clientWidth) unless it is cut with an ellipsis and its full
 * value is on hover (a title on it or an ancestor); and text boxes that stick
 * out of the open section holding them (cut off at its edge).
 */
async function overflows(page: IJupyterLabPageFixture): Promise<string[]> {
  return page.evaluate(sel => {
    const root = document.querySelector(sel) as HTMLElement;
    const out: string[] = [];
    const describe = (el: Element) =>
      `${el.tagName.toLowerCase()}.${Array.from(el.classList).join('.')} "${(el.textContent ?? '')
        .trim()
        .slice(0, 40)}"`;
    const hasOwnText = (el: Element) =>
      Array.from(el.childNodes).some(n => n.nodeType === Node.TEXT_NODE && n.textContent!.trim());
    for (const el of Array.from(root.querySelectorAll('*')) as HTMLElement[]) {
      if (!el.offsetParent || !hasOwnText(el)) {
        continue;
      }
      const style = getComputedStyle(el);
      if (el.closest('.jp-Infinstor-virtualList') && el.closest('.jp-Infinstor-row') === null) {
        continue;
      }
      if (el.scrollWidth > el.clientWidth + 1 && style.overflowX !== 'visible') {
        const cut = style.textOverflow === 'ellipsis';
        const hover = el.closest('[title]') !== null;
        if (!(cut && hover)) {
          out.push(`wider than its box: ${describe(el)} ${el.scrollWidth}>${el.clientWidth}`);
        }
      }
      if (style.overflowX === 'visible' && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) {
        out.push(`spills out: ${describe(el)} ${el.scrollWidth}>${el.clientWidth}`);
      }
      // Cut off at the edge of the section body holding it (not scrolled away;
      // the browser's rows scroll in their own list).
      if (el.closest('.jp-Infinstor-virtualList')) {
        continue;
      }
      const body = el.closest('.jp-Infinstor-sectionBody, .lm-AccordionPanel-title') as HTMLElement | null;
      if (body) {
        const b = body.getBoundingClientRect();
        const r = el.getBoundingClientRect();
        const scrolls = body.scrollHeight > body.clientHeight + 1;
        if (!scrolls && r.height > 0 && (r.bottom > b.bottom + 1 || r.top < b.top - 1)) {
          out.push(`cut off by its section: ${describe(el)}`);
        }
        if (r.width > 0 && (r.right > b.right + 1 || r.left < b.left - 1)) {
          out.push(`sticks out sideways: ${describe(el)}`);
        }
      }
    }
    return out;
  }, SIDEBAR);
}

/** Boxes that cover one another: the banner over the toolbar, row icons over Modified. */
async function overlaps(page: IJupyterLabPageFixture): Promise<string[]> {
  return page.evaluate(sel => {
    const out: string[] = [];
    const rect = (el: Element | null) => (el ? el.getBoundingClientRect() : null);
    const hit = (a: DOMRect | null, b: DOMRect | null) =>
      !!a && !!b && a.width > 0 && b.width > 0 &&
      a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
    const banner = rect(document.querySelector(`${sel} [data-testid="asof"]`));
    // The browser's toolbar sits in its accordion title, just before it.
    const section = document.querySelector(`${sel} .jp-Infinstor-browserSection`);
    const title = section?.previousElementSibling ?? null;
    const buttons = title ? Array.from(title.querySelectorAll('.jp-Toolbar-item')) : [];
    if (buttons.length === 0) {
      out.push("the browser's toolbar was not found");
    }
    for (const button of buttons) {
      if (hit(banner, rect(button))) {
        out.push('the "as of" banner covers a browser toolbar button');
      }
      // The toolbar button must be what a click at its centre reaches.
      const r = rect(button)!;
      if (r.width > 0) {
        const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        if (top && !button.contains(top)) {
          out.push(`a browser toolbar button is covered by ${top.className}`);
        }
      }
    }
    const row = document.querySelector(`${sel} .jp-Infinstor-row.jp-mod-selected`);
    if (row) {
      const icons = rect(row.querySelector('.jp-Infinstor-rowActions'));
      for (const col of ['.jp-Infinstor-col-modified', '.jp-Infinstor-col-size']) {
        const cell = row.querySelector(col) as HTMLElement | null;
        const shown = cell && cell.offsetParent && getComputedStyle(cell).visibility !== 'hidden';
        if (cell && shown && (cell.textContent ?? '').trim() && hit(icons, rect(cell))) {
          out.push(`the selected row's icons cover ${col}`);
        }
      }
    }
    return out;
  }, SIDEBAR);
}

/**
 * Sections whose height does not follow their content: an open section other
 * than the browser that scrolls while the browser has more than its minimum
 * (it could have had the room), or keeps empty space below its content (the
 * browser should have it); and room at the bottom of the accordion that no
 * section uses.
 */
async function fitProblems(page: IJupyterLabPageFixture): Promise<string[]> {
  return page.evaluate(sel => {
    const out: string[] = [];
    const browser = document.querySelector(`${sel} .jp-Infinstor-browserSection`) as HTMLElement;
    const browserMin = parseFloat(getComputedStyle(browser).minHeight);
    const browserRoom = browser.getBoundingClientRect().height > browserMin + 2;
    const sections = Array.from(
      document.querySelectorAll(`${sel} .jp-Infinstor-section`)
    ) as HTMLElement[];
    let bottom = 0;
    for (const section of sections) {
      if (section.classList.contains('lm-mod-hidden') || section.offsetHeight === 0) {
        continue;
      }
      const name = Array.from(section.classList).find(c => c.endsWith('Section'));
      bottom = Math.max(bottom, section.getBoundingClientRect().bottom);
      if (section === browser) {
        continue;
      }
      const body = section.querySelector('.jp-Infinstor-sectionBody') as HTMLElement;
      const style = getComputedStyle(body);
      let content = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
      for (const child of Array.from(body.children) as HTMLElement[]) {
        const cs = getComputedStyle(child);
        if (cs.position !== 'absolute') {
          content += child.offsetHeight + parseFloat(cs.marginTop) + parseFloat(cs.marginBottom);
        }
      }
      const scrolls = body.scrollHeight > body.clientHeight + 1;
      if (scrolls && browserRoom) {
        out.push(`${name} scrolls (${body.scrollHeight}>${body.clientHeight}) while the browser has room`);
      }
      if (!scrolls && body.clientHeight > Math.max(content, 48) + 2) {
        out.push(`${name} keeps ${Math.round(body.clientHeight - content)} px empty below its content`);
      }
    }
    const accordion = browser.parentElement as HTMLElement;
    for (const title of Array.from(accordion.querySelectorAll(':scope > .lm-AccordionPanel-title'))) {
      bottom = Math.max(bottom, title.getBoundingClientRect().bottom);
    }
    const end = accordion.getBoundingClientRect().bottom;
    if (end - bottom > 2) {
      out.push(`${Math.round(end - bottom)} px unused at the bottom of the sidebar`);
    }
    return out;
  }, SIDEBAR);
}

/** How many rows the browser's list box holds (its height over a row's). */
async function rowCapacity(page: IJupyterLabPageFixture): Promise<number> {
  return page.evaluate(sel => {
    const list = document.querySelector(`${sel} .jp-Infinstor-virtualList`) as HTMLElement | null;
    const row = document.querySelector(`${sel} .jp-Infinstor-row`) as HTMLElement | null;
    if (!list || !row || row.offsetHeight === 0) {
      return 0;
    }
    return Math.floor((list.clientHeight + 0.5) / row.offsetHeight);
  }, SIDEBAR);
}

/**
 * The timeline's hover/drag tooltip at a few points along the timeline (and
 * while dragging a slice): its box inside the time section's body and the
 * sidebar, clear of the spec field and its Go button.
 */
async function tipProblems(page: IJupyterLabPageFixture, name: string): Promise<string[]> {
  const canvas = page.getByTestId('timeline');
  const box = (await canvas.boundingBox())!;
  const tip = page.getByTestId('timeline-tip');
  const out: string[] = [];
  const check = async (where: string) => {
    await expect(tip).toBeVisible();
    // The tip moves to its measured place on the next frame.
    await page.waitForTimeout(100);
    out.push(
      ...(await page.evaluate(
        ([sel, where]) => {
          const problems: string[] = [];
          const r = document.querySelector('[data-testid="timeline-tip"]')!.getBoundingClientRect();
          const body = document
            .querySelector(`${sel} .jp-Infinstor-timeSection .jp-Infinstor-sectionBody`)!
            .getBoundingClientRect();
          const panel = document.querySelector(sel)!.getBoundingClientRect();
          const inside = (b: DOMRect) =>
            r.left >= b.left - 0.5 && r.right <= b.right + 0.5 && r.top >= b.top - 0.5 && r.bottom <= b.bottom + 0.5;
          if (!inside(body)) {
            problems.push(`${where}: the tip is not inside the time section`);
          }
          if (!inside(panel)) {
            problems.push(`${where}: the tip is not inside the panel`);
          }
          const spec = document.querySelector(`${sel} .jp-Infinstor-spec-row`);
          for (const el of spec ? Array.from(spec.querySelectorAll('input, button')) : []) {
            const b = el.getBoundingClientRect();
            if (r.left < b.right && b.left < r.right && r.top < b.bottom && b.top < r.bottom) {
              problems.push(`${where}: the tip covers ${el.tagName.toLowerCase()} "${(el.textContent ?? '').trim()}"`);
            }
          }
          return problems;
        },
        [SIDEBAR, where] as const
      ))
    );
  };
  const y = box.y + box.height / 2;
  for (const f of [0.01, 0.5, 0.99]) {
    await page.mouse.move(box.x + box.width * f, y);
    await check(`${name}, hover at ${Math.round(f * 100)}%`);
  }
  // A drag (a slice): the tip follows the pointer to the right edge.
  await page.mouse.move(box.x + box.width * 0.2, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, y, { steps: 4 });
  await page.mouse.move(box.x + box.width - 1, y, { steps: 4 });
  await check(`${name}, dragging`);
  await screenshot(page, `space-${name}-tip`, `${SIDEBAR} .jp-Infinstor-timeSection`);
  await page.mouse.move(box.x + box.width * 0.8, y);
  await page.mouse.up();
  await page.mouse.move(box.x - 40, y - 200);
  return out;
}

async function checkEverySection(page: IJupyterLabPageFixture, name: string): Promise<void> {
  for (const extra of [null, 'Diff', 'Labels', 'Transforms']) {
    await openOnly(page, extra);
    await expect
      .poll(() => visibleRows(page), { timeout: 20_000, message: `rows with ${extra ?? 'defaults'} open` })
      .toBeGreaterThanOrEqual(10);
    expect(await overflows(page), `overflow with ${extra ?? 'defaults'} open`).toEqual([]);
    expect(await overlaps(page), `overlap with ${extra ?? 'defaults'} open`).toEqual([]);
    await expect
      .poll(() => fitProblems(page), { timeout: 10_000, message: `fit with ${extra ?? 'defaults'} open` })
      .toEqual([]);
    await screenshot(page, `space-${name}-${(extra ?? 'defaults').toLowerCase()}`, SIDEBAR);
  }
}

/**
 * A short listing (the demo bucket's root: a few entries): the sections follow
 * their content, the browser gets the rest (at least ten rows' room).
 */
async function checkShortListing(page: IJupyterLabPageFixture, name: string): Promise<void> {
  await chooseBucket(page, history().bucket);
  await expect(page.locator(`${SIDEBAR} .jp-Infinstor-row`).first()).toBeVisible();
  expect(await page.locator(`${SIDEBAR} .jp-Infinstor-row`).count()).toBeLessThan(5);
  for (const extra of [null, 'Diff', 'Labels', 'Transforms']) {
    await openOnly(page, extra);
    const what = `${name}, short listing, ${extra ?? 'defaults'} open`;
    await expect.poll(() => fitProblems(page), { timeout: 10_000, message: what }).toEqual([]);
    await screenshot(page, `space-${name}-short-${(extra ?? 'defaults').toLowerCase()}`, SIDEBAR);
    // Every entry in view (the browser needs no more here, and keeps at
    // least its own height).
    const count = await page.locator(`${SIDEBAR} .jp-Infinstor-row`).count();
    expect(await visibleRows(page), what).toBe(count);
    expect(await rowCapacity(page), what).toBeGreaterThanOrEqual(count);
    expect(await overflows(page), what).toEqual([]);
  }
  // The Time section never scrolls here, whatever its mode.
  await openOnly(page, null);
  for (const mode of ['slice', 'label', 'now', 'snapshot']) {
    await page.locator(`${SIDEBAR} .jp-Infinstor-mode[data-mode="${mode}"]`).click();
    await expect
      .poll(() => fitProblems(page), { timeout: 10_000, message: `${name}, ${mode} mode` })
      .toEqual([]);
  }
  expect(await tipProblems(page, name)).toEqual([]);
}

async function openWideFolder(page: IJupyterLabPageFixture): Promise<void> {
  await chooseBucket(page, WIDE);
  const folder = page.locator(`${SIDEBAR} .jp-Infinstor-row[data-kind="folder"]`).first();
  await folder.dblclick();
  await expect(page.locator(`${SIDEBAR} .jp-Infinstor-row[data-kind="file"]`).first()).toBeVisible({
    timeout: 20_000
  });
  // A selected file shows its icons: they must not cover Modified (or Size).
  await page.locator(`${SIDEBAR} .jp-Infinstor-row[data-kind="file"]`).first().click();
}

test.describe('room for every section', () => {
  test.beforeEach(async ({ page }) => {
    await openPanel(page);
  });

  test('at 1400×900 with the default sidebar width', async ({ page }) => {
    await openWideFolder(page);
    await checkEverySection(page, 'default');
    await checkShortListing(page, 'default');
  });

  test('at 1400×900 with a narrow sidebar', async ({ page }) => {
    // The sidebar at 200 px, as a drag of its edge would leave it (the split
    // panel between the side areas and the main area sizes it).
    const panel = page.locator('#jp-left-stack');
    // JupyterLab's own minimum is 250 px (the default width); a user's CSS may
    // allow less, and the panel must still fit.
    await page.addStyleTag({
      content: ':root, body, .jp-LabShell { --jp-sidebar-min-width: 200px !important; }'
    });
    await page.evaluate(() => {
      const split = (window as any).jupyterapp.shell._hsplitPanel;
      const sizes: number[] = split.relativeSizes();
      const total = window.innerWidth;
      const right = sizes[2] * total;
      // The new minimum is read when the widgets fit their children again,
      // innermost first.
      const refit = (w: any): void => {
        for (const child of Array.from(w.children()) as any[]) {
          refit(child);
        }
        if (w.layout) {
          (w.layout as any)._fit?.();
        }
      };
      refit(split);
      split.setRelativeSizes([200, total - 200 - right, right].map(x => x / total));
    });
    await expect.poll(async () => (await panel.boundingBox())!.width).toBeLessThan(215);
    await openWideFolder(page);
    // Modified is shortened (the full time is its title); the name keeps its room.
    const row = page.locator(`${SIDEBAR} .jp-Infinstor-row[data-kind="file"]`).nth(1);
    await expect(row.locator('.jp-Infinstor-modShort')).toBeVisible();
    await expect(row.locator('.jp-Infinstor-col-modified')).toHaveAttribute('title', / UTC$/);
    await checkEverySection(page, 'narrow');
    await checkShortListing(page, 'narrow');
  });

  test('a future time is shown as live, with a note', async ({ page }) => {
    await openWideFolder(page);
    await setSpec(page, 'tm20991231000000');
    const banner = page.locator(`${SIDEBAR} [data-testid="asof"]`);
    await expect(banner).toHaveClass(/jp-mod-live/);
    await expect(banner).not.toHaveClass(/jp-mod-past/);
    await expect(banner).not.toContainText('as of 2099');
    await expect(banner.getByTestId('asof-note')).toHaveText(
      '2099-12-31 00:00:00 UTC is in the future, so this is the bucket as it is now.'
    );
    expect(await overflows(page)).toEqual([]);
    expect(await overlaps(page)).toEqual([]);
    await screenshot(page, 'space-future', SIDEBAR);
    // The same in the dark theme (checked by eye: the screenshot).
    await page.theme.setDarkTheme();
    await expect(banner).toHaveClass(/jp-mod-live/);
    expect(await overflows(page)).toEqual([]);
    await screenshot(page, 'space-future-dark', SIDEBAR);
  });

  test('a wide sidebar shows Size and the full Modified', async ({ page }) => {
    await page.evaluate(() => {
      const split = (window as any).jupyterapp.shell._hsplitPanel;
      const sizes: number[] = split.relativeSizes();
      const total = window.innerWidth;
      const right = sizes[2] * total;
      split.setRelativeSizes([420, total - 420 - right, right].map(x => x / total));
    });
    await openWideFolder(page);
    const row = page.locator(`${SIDEBAR} .jp-Infinstor-row[data-kind="file"]`).nth(1);
    await expect(row.locator('.jp-Infinstor-col-size')).toHaveText('2 B');
    await expect(row.locator('.jp-Infinstor-modLong')).toBeVisible();
    await expect(row.locator('.jp-Infinstor-modShort')).toBeHidden();
    await checkEverySection(page, 'wide');
  });

  test("the README's screenshot, in light and dark", async ({ page }) => {
    const data = history();
    await chooseBucket(page, data.bucket);
    await setSpec(page, tm(data.steps[data.steps.length - 1]));
    await page.locator(`${SIDEBAR} .jp-Infinstor-mode[data-mode="snapshot"]`).click();
    await openFolder(page, 'tables/');
    const csv = page.locator(`${SIDEBAR} .jp-Infinstor-row[data-kind="file"]`).first();
    await csv.dblclick();
    await expect(page.locator('.jp-Infinstor-preview').last()).toBeVisible();
    await csv.click();
    await page.waitForTimeout(500);
    expect(await overflows(page)).toEqual([]);
    expect(await overlaps(page)).toEqual([]);
    // Copied by hand to docs/sidebar.png when the sidebar's look changes.
    await screenshot(page, 'readme-sidebar');
    await page.theme.setDarkTheme();
    await page.waitForTimeout(500);
    await screenshot(page, 'readme-sidebar-dark');
  });
});
