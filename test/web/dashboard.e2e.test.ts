import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBareRepo } from '../support/git-fixtures.js';
import { chromiumMissing, launchBrowser, type TestBrowser } from '../support/browser.js';
import { api, runOz, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';

const missing = chromiumMissing();
if (missing && process.env.CI) throw new Error(`the dashboard's browser tests cannot run: ${missing}`);
if (missing) console.log(`dashboard browser tests skipped: ${missing}`);

/** Where the tests' screenshots go: OZ_SCREENSHOT_DIR (docs/screenshots refreshes the docs' pictures), else a temp dir. */
const SHOTS = process.env.OZ_SCREENSHOT_DIR ?? mkdtempSync(join(tmpdir(), 'oz-shots-'));

/** Waits the way a person looks: until the element shows (Playwright's own assertions live in @playwright/test, which needs its browser download). */
const visible = (locator: Locator, timeout = 15_000): Promise<void> => locator.first().waitFor({ state: 'visible', timeout });
const showsText = (locator: Locator, text: string, timeout = 15_000): Promise<void> => visible(locator.filter({ hasText: text }), timeout);
const hasExactText = (locator: Locator, text: string, timeout = 15_000): Promise<string> =>
  until(`${text} shown`, async () => ((await locator.first().textContent())?.trim() === text ? text : null), timeout, 100);

/**
 * The dashboard as a person uses it: the real server (its embedded worker
 * runs command runs in bwrap sandboxes) and a real browser (Debian's
 * Chromium through Playwright). Every page is checked for CSP violations.
 */
describe.skipIf(missing !== null)('the web dashboard in a browser', () => {
  let server: OzServerHandle;
  let browser: TestBrowser;
  let fixtures: string;
  let repoUrl: string;
  let alice: BrowserContext;
  const cspViolations: string[] = [];

  async function newPage(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
    });
    page.on('pageerror', (error) => cspViolations.push(`page error: ${error.message}`));
    return page;
  }

  async function signIn(context: BrowserContext, key: string): Promise<Page> {
    const page = await newPage(context);
    await page.goto(`${server.url}/`);
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await visible(page.getByRole('heading', { level: 1, name: 'Runs' }));
    return page;
  }

  async function shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
  }

  const runState = async (runId: string): Promise<string> => ((await api(server, 'GET', `/api/v1/agent/runs/${runId}`, { key: server.adminKey })).body as { state: string }).state;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    fixtures = mkdtempSync(join(tmpdir(), 'oz-web-fixtures-'));
    repoUrl = makeBareRepo(fixtures, 'webapp', { 'README.md': '# webapp\n' });
    server = await startOzServer('sqlite', { env: { OZ_FILE_REPO_ROOTS: fixtures, OZ_KILL_GRACE_MS: '500', OZ_WORKER_CONCURRENCY: '3' } });
    browser = await launchBrowser();
    alice = await browser.person();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(fixtures, { recursive: true, force: true });
    if (!process.env.OZ_SCREENSHOT_DIR) rmSync(SHOTS, { recursive: true, force: true });
  });

  it('signs in with a key once: the browser keeps an HttpOnly cookie, never the key', async () => {
    const page = await signIn(alice, server.adminKey);
    const cookies = await alice.cookies();
    expect(cookies.map((c) => [c.name, c.httpOnly, c.sameSite])).toEqual([['oz_session', true, 'Strict']]);
    // (Page scripts as text: the test's own types have no DOM.)
    const stored = await page.evaluate<string>('JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie })');
    expect(stored).not.toContain(server.adminKey);
    expect(stored).not.toContain('oz_session');
    await page.close();
  });

  it('dispatches a command run from the form and shows its output live, then the branch and the diff', async () => {
    const env = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: 'webapp', repos: [{ url: repoUrl }] } });
    expect(env.status, JSON.stringify(env.body)).toBe(201);
    const page = await newPage(alice);
    await page.goto(`${server.url}/runs/new`);
    await page.getByLabel('Prompt', { exact: true }).fill('Write a greeting file');
    await page.getByLabel('Environment', { exact: true }).selectOption({ label: 'webapp' });
    await page.getByLabel('Harness', { exact: true }).selectOption('command');
    await page.getByLabel('Command', { exact: true }).fill('echo first-line-live; sleep 4; echo "hello from the dashboard" > GREETING.md; echo done-now');
    await shot(page, 'new-run');
    await page.getByRole('button', { name: 'Dispatch' }).click();
    await page.waitForURL((url) => /^\/runs\/[\w-]+$/.test(url.pathname) && url.pathname !== '/runs/new');
    const runId = new URL(page.url()).pathname.split('/').pop() ?? '';
    // Live: the first line shows while the run is still working.
    await visible(page.getByText('first-line-live'), 30_000);
    expect(await runState(runId)).toBe('INPROGRESS');
    await visible(page.getByText('done-now'), 30_000);
    await hasExactText(page.locator('.run-summary .state'), 'succeeded', 30_000);
    await visible(page.getByRole('region', { name: 'Artifacts' }).getByText(/^Branch/));
    const changes = page.getByRole('region', { name: 'Changes in webapp' });
    await visible(changes.getByText('GREETING.md'), 15_000);
    await visible(changes.getByText('hello from the dashboard'));
    await visible(page.getByRole('list', { name: 'Phases' }).getByText('agent'));
    await shot(page, 'run');
    await page.goto(`${server.url}/runs`);
    await showsText(page.locator(`[data-run-id="${runId}"]`), 'succeeded');
    await shot(page, 'runs');
    await page.close();
  });

  it('cancels a long run from its page', async () => {
    const created = await api(server, 'POST', '/api/v1/agent/runs', {
      key: server.adminKey,
      body: { prompt: 'sleep 300', title: 'a long one', config: { harness: { type: 'command' } } },
    });
    const runId = (created.body as { run_id: string }).run_id;
    await until('the run starts', async () => (await runState(runId)) === 'INPROGRESS', 30_000);
    const page = await newPage(alice);
    await page.goto(`${server.url}/runs/${runId}`);
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await page.getByRole('button', { name: 'Yes, cancel it' }).click();
    await hasExactText(page.locator('.run-summary .state'), 'cancelled', 30_000);
    expect(await runState(runId)).toBe('CANCELLED');
    await page.close();
  });

  it('renders a prompt with markup as text', async () => {
    const prompt = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><b>bold?</b>';
    const created = await api(server, 'POST', '/api/v1/agent/runs', {
      key: server.adminKey,
      body: { prompt: `echo '${prompt.replace(/'/g, '')}'`, title: prompt, config: { harness: { type: 'command' } } },
    });
    const runId = (created.body as { run_id: string }).run_id;
    const page = await newPage(alice);
    await page.goto(`${server.url}/runs/${runId}`);
    await hasExactText(page.getByRole('heading', { level: 1 }), prompt);
    await showsText(page.locator('details.prompt'), '<script>window.__pwned = 1</script>');
    await until('the run ends', async () => ['SUCCEEDED', 'FAILED'].includes(await runState(runId)), 30_000);
    await showsText(page.locator('.transcript'), '<b>bold?</b>', 15_000);
    expect(await page.evaluate<unknown>('window.__pwned')).toBeUndefined();
    expect(await page.locator('main b, main img[src="x"], main script').count()).toBe(0);
    await page.close();
  });

  it('another team’s person gets not-found for the first team’s run page', async () => {
    const team = await api(server, 'POST', '/api/v1/admin/teams', { key: server.adminKey, body: { name: 'other-team' } });
    expect(team.status).toBe(201);
    const user = await api(server, 'POST', '/api/v1/admin/users', { key: server.adminKey, body: { team: 'other-team', email: 'eve@other.test' } });
    expect(user.status).toBe(201);
    const key = await api(server, 'POST', '/api/v1/admin/users/eve@other.test/api-keys', { key: server.adminKey, body: { name: 'eve' } });
    const eveKey = (key.body as { key: string }).key;
    const runs = await api(server, 'GET', '/api/v1/agent/runs?limit=1', { key: server.adminKey });
    const runId = (runs.body as { runs: { run_id: string }[] }).runs[0]?.run_id ?? '';
    const eve = await browser.person();
    try {
      const page = await signIn(eve, eveKey);
      await page.goto(`${server.url}/runs/${runId}`);
      await visible(page.getByRole('heading', { level: 1, name: 'Not found' }));
      expect(await page.getByRole('main').textContent()).not.toContain('Prompt');
    } finally {
      await eve.close();
    }
  });

  it('oz open prints a one-time link that opens the run’s page signed in', async () => {
    const runs = await api(server, 'GET', '/api/v1/agent/runs?limit=1', { key: server.adminKey });
    const runId = (runs.body as { runs: { run_id: string }[] }).runs[0]?.run_id ?? '';
    const cli = await runOz(['open', runId, '--no-browser'], server.cliEnv);
    expect(cli.code, cli.stderr).toBe(0);
    const url = cli.stdout.split('\n')[0] ?? '';
    expect(url).toMatch(/\/login#/);
    const fresh = await browser.person();
    try {
      const page = await newPage(fresh);
      await page.goto(url);
      await page.waitForURL(`${server.url}/runs/${runId}`);
      await visible(page.locator('.run-summary'));
      expect(page.url()).not.toContain('#');
      // Used once: the same link again signs nobody in.
      const other = await browser.person();
      const again = await newPage(other);
      await again.goto(url);
      await showsText(again.getByRole('alert'), 'used already or has expired');
      await other.close();
    } finally {
      await fresh.close();
    }
  });

  it('signs out on the server: the old cookie no longer works', async () => {
    const context = await browser.person();
    try {
      const page = await signIn(context, server.adminKey);
      const [cookie] = await context.cookies();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await visible(page.getByLabel('API key'));
      const replay = await fetch(`${server.url}/api/v1/me`, { headers: { cookie: `oz_session=${cookie?.value ?? ''}` } });
      expect(replay.status).toBe(401);
    } finally {
      await context.close();
    }
  });

  it('no page broke the Content-Security-Policy', () => {
    expect(cspViolations).toEqual([]);
  });
});
