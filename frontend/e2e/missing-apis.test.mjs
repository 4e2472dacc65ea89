// Web APIs an engine lacks, or answers only after a prompt, reproduced in Chromium: the app must
// start, sync the demo mailbox and explain itself in words, never waiting on a prompt and never
// showing a JsValue, a Rust Debug text or a JavaScript stack. The real relay binary serves the
// built app with its demo mailbox (as scripts/run does).
//
//   node --test --test-reporter=spec frontend/e2e/missing-apis.test.mjs
//
// Needs dist/ (scripts/wasm-env trunk build --release) and the debug binary
// (cargo build -p webpop-proxy).
//
// The bugs, as seen in the other engines:
// - WebKitGTK has no navigator.storage.estimate(): the status line read "The mail store failed:
//   JsValue(TypeError: undefined is not an object (evaluating 'arg0.estimate')" and a stack.
// - Firefox answers navigator.storage.persist() only after the person answers a permission
//   prompt, and start-up awaited it: the app never became ready.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

import { startDemoRelay } from './lib/relay.mjs';
import { CHROMIUM, CHROMIUM_ARGS } from './lib/browser.mjs';
import { ui, waitReady } from './lib/ui.mjs';
import { waitUntil } from './lib/wait.mjs';

let relay;
let browser;

before(
  async () => {
    relay = await startDemoRelay();
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
  if (relay) relay.stop();
});

/** A fresh context whose pages first run `init` (which takes an API away). */
async function pageWithout(init) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(60_000);
  context.setDefaultNavigationTimeout(90_000);
  await context.addInitScript(init);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  return { context, page, errors };
}

/** What a person must never read: a JsValue, a Rust Debug text, a JavaScript stack. */
async function assertNoRawErrors(page) {
  const text = await page.evaluate(() => document.body.innerText);
  for (const raw of ['JsValue', 'Error(', '@http', 'at http', 'wasm-function']) {
    assert.ok(!text.includes(raw), `the page shows "${raw}":\n${text}`);
  }
}

async function demoSyncs(page) {
  await page.goto(relay.web);
  await waitReady(page);
  await page.getByRole('button', { name: 'Try the demo mailbox' }).click();
  const rows = ui(page).list.getByRole('option');
  await waitUntil(async () => (await rows.count()) > 0, { timeout: 120_000, what: 'demo mail in the list' });
}

test('webkit_storage_estimate_missing_demo_still_syncs', { timeout: 240_000 }, async () => {
  const { context, page, errors } = await pageWithout(() => {
    delete StorageManager.prototype.estimate;
  });
  await demoSyncs(page);
  assert.equal(await page.evaluate(() => typeof navigator.storage.estimate), 'undefined');
  await assertNoRawErrors(page);
  assert.deepEqual(errors, []);
  await context.close();
});

test('firefox_persist_prompt_does_not_block_startup', { timeout: 240_000 }, async () => {
  // persist() and persisted() never answer, as with a permission prompt nobody answers.
  const { context, page } = await pageWithout(() => {
    window.__persistCalls = 0;
    StorageManager.prototype.persist = () => {
      window.__persistCalls += 1;
      return new Promise(() => {});
    };
    StorageManager.prototype.persisted = () => new Promise(() => {});
  });
  await demoSyncs(page);
  assert.equal(await page.evaluate(() => window.__persistCalls), 0, 'nothing asked for a prompt unasked');

  // A deleting policy explains eviction and offers the request; the prompt's silence blocks
  // nothing: consent alone still lets the account be added.
  await page.getByRole('button', { name: 'Add account' }).click();
  const form = ui(page).form;
  await form.getByRole('combobox', { name: 'On the server' }).selectOption('remove');
  await form.getByText(/has not promised to keep webpop's stored mail/).waitFor();
  await form.getByRole('button', { name: "Ask the browser to keep webpop's mail" }).click();
  await form.getByText(/Waiting for the browser's answer/).waitFor();
  assert.equal(await page.evaluate(() => window.__persistCalls), 1);
  await form.getByRole('checkbox', { name: /I understand/ }).check();
  await assertNoRawErrors(page);
  await context.close();
});

test('without navigator.storage at all the demo still syncs', { timeout: 240_000 }, async () => {
  // As on a page served over plain http from another host: no StorageManager.
  const { context, page, errors } = await pageWithout(() => {
    Object.defineProperty(Navigator.prototype, 'storage', { get: () => undefined });
  });
  await demoSyncs(page);
  await assertNoRawErrors(page);
  assert.deepEqual(errors, []);
  await context.close();
});

test('a mail store that cannot be opened is explained in words', { timeout: 240_000 }, async () => {
  // The browser's error carries a JavaScript expression in its message; the person reads
  // webpop's words and at most the error's name.
  const { context, page } = await pageWithout(() => {
    IDBFactory.prototype.open = function () {
      throw new TypeError("undefined is not an object (evaluating 'arg0.estimate')");
    };
  });
  await page.goto(relay.web);
  await waitReady(page);
  await page.getByText(/mail store cannot be opened/).first().waitFor();
  const text = await page.evaluate(() => document.body.innerText);
  assert.ok(!text.includes('evaluating'), `the browser's message is not shown:\n${text}`);
  await assertNoRawErrors(page);
  await context.close();
});
