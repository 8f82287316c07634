import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

/** Debian's Chromium (.ci/run installs it); Playwright's own browser download cannot work on these machines. */
export const CHROMIUM = '/usr/bin/chromium';

/** What this host lacks for the browser tests, or null. */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM) ? null : `needs Chromium at ${CHROMIUM} (apt-get install chromium)`;
}

export interface TestBrowser {
  browser: Browser;
  /** A fresh profile: its own cookies (a person). */
  person(options?: { width?: number; height?: number; colorScheme?: 'light' | 'dark' }): Promise<BrowserContext>;
  close(): Promise<void>;
}

/**
 * Headless Chromium driven by Playwright. The flags keep it off the network
 * (no background services, updates or sync: these machines refuse them) and
 * let it run as root (no sandbox of its own; the test is the only page).
 */
export async function launchBrowser(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'oz-chromium-'));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
    // Its temp files (singleton sockets, shared memory) in the profile too, removed with it.
    env: { ...process.env, HOME: profile, TMPDIR: profile },
  });
  return {
    browser,
    person: (options = {}) =>
      browser.newContext({ viewport: { width: options.width ?? 1280, height: options.height ?? 860 }, colorScheme: options.colorScheme ?? 'light', reducedMotion: 'reduce' }),
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
