/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  makeTempDir,
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * The primary's status page in a real headless Chromium (Debian's, driven by
 * playwright-core): every mirror with its region, lag and health, and a chart
 * of publish-to-visible latency fed by the mirrors' acknowledgements.
 */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let primary: RunningPrimary | undefined;
const mirrors: RunningMirror[] = [];
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
  for (const mirror of mirrors) await mirror.stop();
  await primary?.stop();
  await removeTempDirs();
});

describe('status page', () => {
  it('shows every mirror with region, lag and health, and a publish-to-visible chart', async () => {
    expect(existsSync(CHROMIUM), 'Debian chromium is installed by scripts/setup.sh').toBe(true);
    primary = await startPrimary();
    const p = primary;
    for (const region of ['eu-west', 'us-east']) {
      mirrors.push(await startMirror({ primaryUrl: p.url, keyArg: p.keyArg, args: ['--region', region, '--mirror-id', `m-${region}`] }));
    }
    for (let i = 0; i < 5; i++) await publishPackage(p.url, `acme/pkg${i}`, [{ version: '1.0.0' }]);
    await waitFor(
      async () => {
        const data = (await (await fetch(`${p.url}/status/data.json`)).json()) as {
          seq: number;
          mirrors: { seq: number }[];
          visible: { samples: unknown[] };
        };
        return data.mirrors.length === 2 && data.mirrors.every((m) => m.seq === data.seq) && data.visible.samples.length > 0;
      },
      { timeoutMs: 15_000, what: 'both mirrors to acknowledge the head' },
    );

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    await page.goto(`${p.url}/status`);
    await page.waitForSelector('tr[data-mirror="m-us-east"]', { timeout: 10_000 });

    const rows = await page.$$eval('#mirrors tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(rows).toHaveLength(2);
    const byId = new Map(rows.map((cells) => [cells[0], cells]));
    expect(byId.get('m-eu-west')?.[1]).toBe('eu-west');
    expect(byId.get('m-us-east')?.[1]).toBe('us-east');
    for (const cells of rows) {
      expect(cells[4], 'lag in seq').toBe('0');
      expect(cells[6]).toBe('healthy');
    }
    const dots = await page.$$eval('#latency-chart circle.sample', (circles) => circles.length);
    expect(dots).toBeGreaterThan(0);
    expect(await page.textContent('#latency-summary')).toMatch(/p50 \d+ ms, p99 \d+ ms/);

    // A stopped mirror turns from healthy to disconnected on the next refresh.
    await mirrors[1]!.stop();
    await page.waitForFunction(
      () => document.querySelector('tr[data-mirror="m-us-east"] td:last-child')?.textContent === 'disconnected',
      undefined,
      { timeout: 10_000 },
    );
    // METASYNC_SCREENSHOT_DIR keeps the picture for a person to look at.
    const screenshotDir = process.env.METASYNC_SCREENSHOT_DIR ?? (await makeTempDir('status-page-'));
    await page.screenshot({ path: join(screenshotDir, 'status.png'), fullPage: true });
  }, 60_000);
});
