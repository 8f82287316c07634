/**
 * The dashboard's speed, in a real browser (Debian's Chromium through
 * Playwright) against the real server (a process, SQLite, no worker: the
 * runs wait, so nothing changes under the measurement).
 *
 *   npx tsx bench/web/run.ts          # same as: npm run bench:web
 *
 * What it measures, each against a baseline taken in the same run:
 * - First page: from navigation to the runs list showing its first rows
 *   (interactive: React mounted, session read, first page of runs drawn), in
 *   a fresh browser profile (nothing cached) and again with the cache warm.
 *   Baseline: a navigation to a static file of the same server.
 * - The list with 10,000 runs: scrolling through every one of them (each page
 *   fetched with the API's cursor as the list reaches it), frame times while
 *   scrolling and the rows in the DOM. Baseline: the same scroll over a list
 *   of 100 runs (another team's).
 *
 * Sizes: OZ_BENCH_WEB_RUNS (default 10000), OZ_BENCH_WEB_LOADS (default 15).
 */
import type { Page } from 'playwright-core';
import { intFromEnv, ms, stats, table } from '../support.js';
import { launchBrowser } from '../../test/support/browser.js';
import { newRun } from '../../test/support/run-fixtures.js';
import { openFromSpec } from '../../test/support/store-factories.js';
import { startOzServer } from '../../test/support/oz-server-process.js';
import { API_KEY_PREFIX, mintCredential } from '../../src/server/credentials.js';

const RUNS = intFromEnv('OZ_BENCH_WEB_RUNS', 10_000);
const LOADS = intFromEnv('OZ_BENCH_WEB_LOADS', 15);
const SMALL = 100;

/** Milliseconds from the navigation's start until the first run row is on screen. */
async function firstRows(page: Page, url: string): Promise<number> {
  const start = Date.now();
  await page.goto(url, { waitUntil: 'commit' });
  await page.locator('[data-run-id]').first().waitFor({ state: 'visible', timeout: 30_000 });
  return Date.now() - start;
}

async function staticLoad(page: Page, url: string): Promise<number> {
  const start = Date.now();
  await page.goto(url, { waitUntil: 'load' });
  return Date.now() - start;
}

/** Scroll the list to its end a screen per frame; frame times (ms), the most rows in the DOM, and the time to reach the end. */
async function scrollThrough(page: Page, expected: number): Promise<{ frames: number[]; maxRows: number; totalMs: number }> {
  // A script as text (bench/ is typed without the DOM), called at once: the page awaits its promise.
  return page.evaluate<{ frames: number[]; maxRows: number; totalMs: number }>(
    `((expected) => new Promise((resolve, reject) => {
      const scroller = document.querySelector('.runs-scroll');
      if (!scroller) return reject(new Error('no list'));
      const frames = [];
      let maxRows = 0;
      let last = performance.now();
      const start = last;
      const step = () => {
        const now = performance.now();
        frames.push(now - last);
        last = now;
        maxRows = Math.max(maxRows, document.querySelectorAll('[data-run-id]').length);
        scroller.scrollTop += scroller.clientHeight;
        const rows = document.querySelectorAll('[data-run-id]');
        const lastRow = rows[rows.length - 1];
        const index = lastRow ? Number(lastRow.getAttribute('aria-rowindex')) - 1 : 0;
        if (index >= expected) return resolve({ frames: frames.slice(1), maxRows, totalMs: now - start });
        if (now - start > 120000) return reject(new Error('did not reach the end in 2 minutes (at row ' + index + ')'));
        requestAnimationFrame(step);
      };
      requestAnimationFrame(step);
    }))(${expected})`,
  );
}

async function main(): Promise<void> {
  const server = await startOzServer('sqlite', { args: ['--no-worker'] });
  const browser = await launchBrowser();
  try {
    const store = await openFromSpec(server.storeSpec);
    const me = (await (await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${server.adminKey}` } })).json()) as {
      team: { uid: string };
      user: { uid: string };
    };
    process.stderr.write(`seeding ${RUNS} runs…\n`);
    const t0 = Date.now() - RUNS * 1000;
    for (let i = 0; i < RUNS; i++) await store.createRun(newRun(me.team.uid, { title: `run ${i}`, creatorId: me.user.uid }), t0 + i * 1000);
    const small = await store.createTeam({ name: 'small', maxConcurrentRuns: 5 }, Date.now());
    const user = await store.createUser({ teamId: small.id, email: 'small@bench.test', displayName: null, role: 'member' }, Date.now());
    const minted = mintCredential(API_KEY_PREFIX);
    await store.createApiKey({ teamId: small.id, userId: user.id, name: 'bench', prefix: minted.prefix, secretHash: minted.secretHash, expiresAt: null }, Date.now());
    for (let i = 0; i < SMALL; i++) await store.createRun(newRun(small.id, { title: `small ${i}` }), t0 + i * 1000);
    await store.close();

    const signedIn = async (key: string) => {
      const context = await browser.person();
      const response = await context.request.post(`${server.url}/api/v1/web/session`, { data: { api_key: key } });
      if (!response.ok()) throw new Error(`sign-in: ${response.status()}`);
      return context;
    };

    // First page: cold (a fresh profile each time) and warm (the same one again).
    const cold: number[] = [];
    const warm: number[] = [];
    const baseline: number[] = [];
    for (let i = 0; i < LOADS; i++) {
      const context = await signedIn(server.adminKey);
      const page = await context.newPage();
      baseline.push(await staticLoad(page, `${server.url}/favicon.svg`));
      cold.push(await firstRows(page, `${server.url}/runs`));
      warm.push(await firstRows(page, `${server.url}/runs`));
      await context.close();
    }

    // The list: every run, scrolled through.
    const scroll = async (key: string, expected: number) => {
      const context = await signedIn(key);
      const page = await context.newPage();
      await firstRows(page, `${server.url}/runs`);
      const result = await scrollThrough(page, expected);
      await context.close();
      return result;
    };
    const big = await scroll(server.adminKey, RUNS);
    const little = await scroll(minted.secret, SMALL);

    const c = stats(cold);
    const w = stats(warm);
    const b = stats(baseline);
    console.log(
      table(
        `First page: navigation → the runs list's first rows on screen (${LOADS} loads, ${RUNS} runs stored)`,
        ['', 'p50 ms', 'p95 ms', 'max ms', '× baseline p50'],
        [
          ['static file (baseline)', ms(b.p50), ms(b.p95), ms(b.max), '1.0'],
          ['runs list, cold cache', ms(c.p50), ms(c.p95), ms(c.max), (c.p50 / b.p50).toFixed(1)],
          ['runs list, warm cache', ms(w.p50), ms(w.p95), ms(w.max), (w.p50 / b.p50).toFixed(1)],
        ],
        [false, true, true, true, true],
      ),
    );
    const fb = stats(big.frames);
    const fs = stats(little.frames);
    console.log(
      table(
        'Scrolling the whole list, a screen per frame',
        ['', 'runs', 'frames', 'frame p50 ms', 'frame p95 ms', 'frame max ms', 'rows in DOM (max)', 'to the end ms'],
        [
          [`${SMALL} runs (baseline)`, String(SMALL), String(little.frames.length), ms(fs.p50), ms(fs.p95), ms(fs.max), String(little.maxRows), ms(little.totalMs)],
          [`${RUNS} runs`, String(RUNS), String(big.frames.length), ms(fb.p50), ms(fb.p95), ms(fb.max), String(big.maxRows), ms(big.totalMs)],
        ],
        [false, true, true, true, true, true, true, true],
      ),
    );
    console.log(`frame p95 with ${RUNS} runs / with ${SMALL}: ${(fb.p95 / fs.p95).toFixed(2)}×; rows in the DOM stay at ${big.maxRows} (virtualised)`);
  } finally {
    await browser.close();
    await server.stop();
  }
}

await main();
