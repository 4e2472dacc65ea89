// Debian's Chromium driven by playwright-core (no browser is ever downloaded), plus the test's
// artifacts: screenshots, the browser's console, every request the page made.

import { mkdirSync, writeFileSync, appendFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { REPO } from './env.mjs';
import { CHROMIUM_ARGS } from './chromium-args.mjs';
import { CspWatch } from './csp.mjs';

export const CHROMIUM = process.env.WEBPOP_CHROMIUM || '/usr/bin/chromium';

export { CHROMIUM_ARGS };

/**
 * Where screenshots and logs go: $WEBPOP_E2E_ARTIFACTS or target/e2e-artifacts. What an earlier
 * run left there (only files named the way this harness names them) is removed first, so the
 * directory always describes the last run.
 */
export function artifactsDir() {
  const dir = process.env.WEBPOP_E2E_ARTIFACTS
    ? path.resolve(process.env.WEBPOP_E2E_ARTIFACTS)
    : path.join(REPO, 'target', 'e2e-artifacts');
  mkdirSync(dir, { recursive: true });
  const ours = /^(\d.*\.png|\d+-downloaded-.*|browser\.log|canary\.json|requests\.json)$/;
  for (const name of readdirSync(dir)) {
    if (ours.test(name)) rmSync(path.join(dir, name), { force: true });
  }
  return dir;
}

/**
 * Launches Chromium (a fresh profile) with one context and one page, and records what happens
 * in it: dialogs (dismissed), popups, requests, console messages, page errors and Content
 * Security Policy reports (`record.csp`, a CspWatch over every page of the context).
 */
export async function launch({ artifacts }) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 120_000,
  });
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
  });
  // A loaded 2-core machine: generous, and every wait in the test names what it waited for.
  context.setDefaultTimeout(60_000);
  context.setDefaultNavigationTimeout(90_000);

  const log = path.join(artifacts, 'browser.log');
  writeFileSync(log, '');
  const started = Date.now();
  const note = (line) => appendFileSync(log, `[${((Date.now() - started) / 1000).toFixed(3)}] ${line}\n`);

  const record = {
    dialogs: [],
    popups: [],
    requests: [],
    pageErrors: [],
    csp: new CspWatch(note),
    note,
  };
  await record.csp.attachContext(context);
  context.on('page', (p) => {
    note(`page opened: ${p.url()}`);
  });
  const page = await context.newPage();
  page.on('dialog', async (dialog) => {
    record.dialogs.push({ type: dialog.type(), message: dialog.message() });
    note(`DIALOG ${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  page.on('popup', (popup) => {
    record.popups.push(popup.url());
    note(`POPUP ${popup.url()}`);
  });
  page.on('request', (request) => {
    const frame = safe(() => request.frame().url(), '?');
    record.requests.push({
      url: request.url(),
      method: request.method(),
      type: request.resourceType(),
      frame,
      at: Date.now(),
    });
    note(`request ${request.method()} ${request.url()} (${request.resourceType()}, frame ${frame})`);
  });
  page.on('requestfailed', (request) =>
    note(`request failed ${request.url()}: ${safe(() => request.failure().errorText, '?')}`),
  );
  page.on('console', (message) => note(`console.${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => {
    record.pageErrors.push(String(error));
    note(`PAGE ERROR ${error.stack || error}`);
  });
  return { browser, context, page, record };
}

function safe(f, fallback) {
  try {
    return f();
  } catch {
    return fallback;
  }
}

/** Saves a screenshot of the page as `<artifacts>/<name>.png` and returns the path. */
export async function screenshot(page, artifacts, name) {
  const file = path.join(artifacts, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false, timeout: 30_000 });
  return file;
}
