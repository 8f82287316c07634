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
const SHOT_DIR = process.env.OZ_SCREENSHOT_DIR ?? null;

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
  let eveKey = '';
  let shots = '';
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
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
  }

  const runState = async (runId: string): Promise<string> => ((await api(server, 'GET', `/api/v1/agent/runs/${runId}`, { key: server.adminKey })).body as { state: string }).state;

  beforeAll(async () => {
    shots = SHOT_DIR ?? mkdtempSync(join(tmpdir(), 'oz-shots-'));
    mkdirSync(shots, { recursive: true });
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
    if (!SHOT_DIR && shots) rmSync(shots, { recursive: true, force: true });
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

  it('a wrong key at a deep link says so, on the sign-in form', async () => {
    const context = await browser.person();
    try {
      const page = await newPage(context);
      await page.goto(`${server.url}/environments`);
      await page.getByLabel('API key').fill('oz_definitely-not-a-key');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await showsText(page.getByRole('alert'), 'not valid');
      await visible(page.getByLabel('API key'));
    } finally {
      await context.close();
    }
  });

  it('creates an environment with a local repository from the form', async () => {
    const page = await newPage(alice);
    await page.goto(`${server.url}/environments`);
    await page.getByRole('link', { name: 'New environment' }).click();
    await page.getByLabel('Name', { exact: true }).fill('webapp');
    await page.getByLabel('Repositories', { exact: true }).fill(repoUrl);
    await page.getByLabel('Setup commands', { exact: true }).fill('echo setup-ran > .setup-marker');
    await page.getByRole('button', { name: 'Create environment' }).click();
    await page.waitForURL((url) => /^\/environments\/[\w-]+$/.test(url.pathname) && url.pathname !== '/environments/new');
    await visible(page.getByRole('heading', { level: 1, name: 'webapp' }));
    await showsText(page.getByRole('main'), 'webapp.git');
    await shot(page, 'environment');
    const listed = await api(server, 'GET', '/api/v1/agent/environments', { key: server.adminKey });
    const env = (listed.body as { environments: { config: { name: string; repos?: { url: string }[]; setup_commands?: string[] } }[] }).environments.find(
      (e) => e.config.name === 'webapp',
    );
    expect(env?.config).toMatchObject({ repos: [{ url: repoUrl }], setup_commands: ['echo setup-ran > .setup-marker'] });
    await page.close();
  });

  it('shows the API’s validation error at the field it names, and creates nothing', async () => {
    const before = ((await api(server, 'GET', '/api/v1/agent/runs?limit=500', { key: server.adminKey })).body as { runs: unknown[] }).runs.length;
    const page = await newPage(alice);
    await page.goto(`${server.url}/runs/new`);
    await page.getByLabel('Prompt', { exact: true }).fill('anything');
    await page.getByLabel('Max steps', { exact: true }).fill('0');
    await page.getByRole('button', { name: 'Dispatch' }).click();
    const field = page.getByLabel('Max steps', { exact: true });
    await until('the error shows at max steps', async () => ((await field.getAttribute('aria-invalid')) === 'true' ? true : null), 15_000, 100);
    const describedBy = (await field.getAttribute('aria-describedby')) ?? '';
    const message = await page.locator(`[id="${describedBy.split(' ').pop() ?? ''}"]`).textContent();
    expect(message).toMatch(/>=\s*1|at least 1/);
    expect(page.url()).toMatch(/\/runs\/new$/);
    const after = ((await api(server, 'GET', '/api/v1/agent/runs?limit=500', { key: server.adminKey })).body as { runs: unknown[] }).runs.length;
    expect(after).toBe(before);
    await page.close();
  });

  it('dispatches a command run from the form and shows its output live, then the branch and the diff', async () => {
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
    // The same patch from the CLI.
    const diff = await runOz(['run', 'diff', runId], server.cliEnv);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stdout).toMatch(/^# file:\/\/.*webapp\.git [0-9a-f]{12}\.\.[0-9a-f]{12} \(execution 1, /);
    expect(diff.stdout).toContain('+hello from the dashboard');
    const onlyOne = await runOz(['run', 'diff', runId, '--repo', 'webapp', '--output-format', 'json'], server.cliEnv);
    expect((JSON.parse(onlyOne.stdout) as { diffs: unknown[] }).diffs).toHaveLength(1);
    const unknown = await runOz(['run', 'diff', runId, '--repo', 'nope'], server.cliEnv);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--repo: the run changed no repository "nope"');
    // A follow-up to the ended run: the page follows its next execution live, without a reload
    // (a command run runs its command again; the follow-up's text goes with it).
    await page.getByLabel(/^Follow up/).fill('and once more');
    await page.getByRole('button', { name: 'Send follow-up' }).click();
    await showsText(page.locator('.transcript .message-follow-up'), 'and once more');
    await until('the second execution’s output shows', async () => ((await page.locator('.transcript pre', { hasText: 'done-now' }).count()) >= 2 ? true : null), 60_000, 200);
    await hasExactText(page.locator('.run-summary .state'), 'succeeded', 60_000);
    await page.goto(`${server.url}/runs`);
    await showsText(page.locator(`[data-run-id="${runId}"]`), 'succeeded');
    await shot(page, 'runs');
    await page.close();
  }, 150_000);

  it('creates a schedule and shows its next fire time and what the cron expression means', async () => {
    const page = await newPage(alice);
    await page.goto(`${server.url}/schedules/new`);
    await page.getByLabel('Name', { exact: true }).fill('nightly-check');
    await page.getByLabel('Cron expression', { exact: true }).fill('0 3 * * *');
    await page.getByLabel('Prompt', { exact: true }).fill('echo nightly');
    await page.getByLabel('Harness', { exact: true }).selectOption('command');
    await page.getByRole('button', { name: 'Create schedule' }).click();
    await page.waitForURL((url) => /^\/schedules\/[\w-]+$/.test(url.pathname) && url.pathname !== '/schedules/new');
    await visible(page.getByRole('heading', { level: 1, name: 'nightly-check' }));
    await showsText(page.getByRole('main'), '03:00');
    const schedules = (await api(server, 'GET', '/api/v1/agent/schedules', { key: server.adminKey })).body as {
      schedules: { name: string; history: { next_run: string | null } }[];
    };
    const nextRun = schedules.schedules.find((x) => x.name === 'nightly-check')?.history.next_run ?? '';
    expect(Date.parse(nextRun)).toBeGreaterThan(Date.now());
    await visible(page.locator(`time[datetime="${nextRun}"]`));
    await page.goto(`${server.url}/schedules`);
    await showsText(page.getByRole('main'), 'nightly-check');
    await shot(page, 'schedules');
    await page.close();
  });

  it('creates a secret and never shows its value again', async () => {
    const value = 'shh-the-value-9f3k2-never-shown';
    const page = await newPage(alice);
    const bodies: string[] = [];
    page.on('response', (response) => {
      if (response.url().includes('/api/'))
        void response.text().then(
          (t) => bodies.push(t),
          () => undefined,
        );
    });
    await page.goto(`${server.url}/secrets`);
    await page.getByLabel('Name', { exact: true }).fill('DEPLOY_TOKEN');
    await page.getByLabel('Value', { exact: true }).fill(value);
    await page.getByRole('button', { name: 'Create secret' }).click();
    await showsText(page.getByRole('main'), 'DEPLOY_TOKEN');
    expect(await page.getByLabel('Value', { exact: true }).inputValue()).toBe('');
    expect(await page.content()).not.toContain(value);
    await page.reload();
    await showsText(page.getByRole('main'), 'DEPLOY_TOKEN');
    expect(await page.content()).not.toContain(value);
    await shot(page, 'secrets');
    expect(bodies.length).toBeGreaterThan(0);
    expect(bodies.join('\n')).not.toContain(value);
    await page.close();
  });

  it('reads on a narrow screen in the dark', async () => {
    const narrow = await browser.person({ width: 390, height: 800, colorScheme: 'dark' });
    try {
      const page = await signIn(narrow, server.adminKey);
      await visible(page.getByRole('button', { name: 'Menu' }));
      const width = await page.evaluate<number>('document.documentElement.scrollWidth');
      expect(width).toBeLessThanOrEqual(390);
      await page.getByRole('button', { name: 'Menu' }).click();
      await visible(page.getByRole('link', { name: 'Environments' }));
      await page.getByRole('button', { name: 'Menu' }).click();
      await shot(page, 'runs-narrow-dark');
    } finally {
      await narrow.close();
    }
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
    eveKey = (key.body as { key: string }).key;
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

  it('asks before another person’s login link switches a signed-in browser to them', async () => {
    const link = await api(server, 'POST', '/api/v1/web/login-links', { key: eveKey, body: {} });
    const url = (link.body as { url: string }).url;
    const page = await newPage(alice);
    await page.goto(url);
    await visible(page.getByRole('heading', { name: 'Switch to another account?' }));
    await showsText(page.getByRole('main'), 'eve@other.test');
    await page.getByRole('button', { name: /^Stay/ }).click();
    await visible(page.getByRole('heading', { level: 1, name: 'Runs' }));
    const me = await page.evaluate<string>("fetch('/api/v1/me').then((r) => r.json()).then((b) => b.user.email)");
    expect(me).toBe('admin@localhost');
    await page.close();
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

describe.skipIf(missing !== null)('the runs list, live, past its first page', () => {
  let server: OzServerHandle;
  let browser: TestBrowser;

  beforeAll(async () => {
    // No worker: runs wait QUEUED until the test cancels one.
    server = await startOzServer('sqlite', { args: ['--no-worker'] });
    for (let i = 0; i < 130; i++) await api(server, 'POST', '/api/v1/agent/runs', { key: server.adminKey, body: { prompt: `run ${i}`, config: { harness: { type: 'command' } } } });
    browser = await launchBrowser();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('keeps showing a change it saw after the next page was fetched', async () => {
    const context = await browser.person();
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/`);
      await page.getByLabel('API key').fill(server.adminKey);
      await page.getByRole('button', { name: 'Sign in' }).click();
      const first = page.locator('[data-run-id]').first();
      await visible(first);
      const runId = (await first.getAttribute('data-run-id')) ?? '';
      expect((await api(server, 'POST', `/api/v1/agent/runs/${runId}/cancel`, { key: server.adminKey })).status).toBe(200);
      const row = page.locator(`[data-run-id="${runId}"] .state`);
      await hasExactText(row, 'cancelled', 15_000);
      // Scroll to the end of the first page: the second is fetched.
      const second = page.waitForResponse((response) => response.url().includes('/api/v1/agent/runs?') && response.url().includes('cursor='), { timeout: 15_000 });
      await page.evaluate("document.querySelector('.runs-scroll').scrollTop = 1e9");
      expect((await second).status()).toBe(200);
      await page.waitForTimeout(300);
      await page.evaluate("document.querySelector('.runs-scroll').scrollTop = 0");
      await page.waitForTimeout(500);
      await hasExactText(row, 'cancelled', 5_000);
    } finally {
      await context.close();
    }
  });
});
