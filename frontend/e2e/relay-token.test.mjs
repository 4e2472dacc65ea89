// The relay's access token, end to end: the real `webpop-proxy` started with `--token-file` and
// `--demo` serves the built web app (dist/) on 127.0.0.1, and Debian's Chromium opens it.
//
//   node --test --test-reporter=spec frontend/e2e/relay-token.test.mjs
//
// Needs dist/ (scripts/wasm-env trunk build --release) and the debug binary
// (cargo build -p webpop-proxy; $CARGO_TARGET_DIR is honoured, or $WEBPOP_PROXY_BIN).
//
// The bug: the page never sent the token, so a relay with --token-file refused the web app; and
// a token in the query string lands in access logs. Now the page learns the token from its
// address's fragment (#token=…), drops it from the address bar, keeps it in localStorage, and
// offers it as a WebSocket subprotocol: the demo mailbox syncs, and no WebSocket URL holds it.
// A page that was never given the token is refused in words.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { startDemoRelay } from './lib/relay.mjs';
import { CHROMIUM, CHROMIUM_ARGS } from './lib/browser.mjs';
import { ui, waitReady } from './lib/ui.mjs';
import { waitUntil } from './lib/wait.mjs';

// Characters a subprotocol may not hold, so the page must encode it.
const TOKEN = 'e2e/tok+en=7f3a';

let stopRelay;
let web; // http://127.0.0.1:<port>
let browser;
let tmp;

before(
  async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'webpop-token-'));
    const tokenFile = path.join(tmp, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    ({ web, stop: stopRelay } = await startDemoRelay(['--token-file', tokenFile]));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 120_000,
    });
  },
  { timeout: 180_000 },
);

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (stopRelay) stopRelay();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(60_000);
  context.setDefaultNavigationTimeout(90_000);
  const page = await context.newPage();
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  return { context, page, sockets };
}

test('a page given #token= syncs the demo mailbox through a --token-file relay', { timeout: 240_000 }, async () => {
  const { context, page, sockets } = await newPage();
  await page.goto(`${web}/#token=${encodeURIComponent(TOKEN)}`);
  await waitReady(page);
  assert.equal(new URL(page.url()).hash, '', 'the token left the address bar');
  assert.equal(await page.evaluate(() => localStorage.getItem('webpop.relay-token')), TOKEN);

  await page.getByRole('button', { name: 'Try the demo mailbox' }).click();
  const rows = ui(page).list.getByRole('option');
  await waitUntil(async () => (await rows.count()) > 0, { timeout: 120_000, what: 'demo mail in the list' });

  assert.ok(sockets.length > 0, 'the page opened relay WebSockets');
  for (const url of sockets) {
    assert.ok(!url.includes('token'), `no token in the WebSocket URL: ${url}`);
  }
  // A later visit without the fragment still has it.
  await page.goto(web);
  await waitReady(page);
  assert.equal(await page.evaluate(() => localStorage.getItem('webpop.relay-token')), TOKEN);
  await context.close();
});

test('a page never given the token is refused in words', { timeout: 240_000 }, async () => {
  const { context, page } = await newPage();
  await page.goto(web);
  await waitReady(page);
  await page.getByRole('button', { name: 'Try the demo mailbox' }).click();
  await page.getByText(/valid access token/).first().waitFor({ timeout: 120_000 });
  await context.close();
});
