// Helpers of the hardening end-to-end test (hardening.test.mjs): its own test env (with the
// hostile-HTML mailbox), the browser's request log at the network layer, a recorder of what a
// page does, a direct reader of the web app's IndexedDB, and a "hold" server that stops a page
// in the middle of a sync's write.

import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { REPO, startTestEnv } from './env.mjs';
import { CHROMIUM, CHROMIUM_ARGS } from './browser.mjs';

export const VECTORS = path.join(REPO, 'shared', 'tests', 'fixtures', 'hostile', 'vectors.txt');

/**
 * Where this test's screenshots and logs go: `hardening/` under $WEBPOP_E2E_ARTIFACTS or
 * target/e2e-artifacts (a directory of its own, so that app.test.mjs's files are never touched).
 * What an earlier run left there is removed first.
 */
export function hardeningArtifacts() {
  const base = process.env.WEBPOP_E2E_ARTIFACTS
    ? path.resolve(process.env.WEBPOP_E2E_ARTIFACTS)
    : path.join(REPO, 'target', 'e2e-artifacts');
  const dir = path.join(base, 'hardening');
  mkdirSync(dir, { recursive: true });
  const ours = /^(\d.*\.png|browser\.log|canary\.json|requests\.json|figures\.json)$/;
  for (const name of readdirSync(dir)) {
    if (ours.test(name)) rmSync(path.join(dir, name), { force: true });
  }
  return dir;
}

/**
 * The test env of this file: $WEBPOP_HARDENING_TEST_ENV (a running `webpop-test-env 300
 * --web-root dist --hostile-corpus shared/tests/fixtures/hostile/vectors.txt`), else one of its
 * own, started from target/debug/webpop-test-env and stopped by `stop()`. It never shares
 * app.test.mjs's env: that test requires a canary that has seen nothing, and this one loads
 * images from its canary on purpose.
 */
export function startHardeningEnv() {
  return startTestEnv({
    controlVar: 'WEBPOP_HARDENING_TEST_ENV',
    // 300: the `browser` mailbox (300 generated messages, two of them 2-5 MB) is the one whose
    // sync the test interrupts.
    args: (webRoot) => ['300', '--web-root', webRoot, '--hostile-corpus', VECTORS],
    required: ['web', 'canary', 'hostile'],
    startAs: 'webpop-test-env 300 --web-root dist --hostile-corpus shared/tests/fixtures/hostile/vectors.txt',
  });
}

/** Debian's Chromium, headless, a fresh profile (contexts are made by the test). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 120_000,
  });
}

/**
 * The browser's request log at the network layer: CDP's Fetch domain enabled on the BROWSER
 * target pauses every HTTP(S) request of every target — pages, out-of-process iframes (Chromium
 * puts a sandboxed iframe in a process of its own, and Playwright's `page.on('request')` does not
 * report their subresources), workers, the service worker — before it is sent; each one is
 * recorded and let go unchanged. (WebSockets and data: URLs do not pass through Fetch.)
 */
export async function watchNetwork(browser, note = () => {}) {
  const session = await browser.newBrowserCDPSession();
  const log = [];
  session.on('Fetch.requestPaused', (e) => {
    const entry = {
      url: e.request.url,
      method: e.request.method,
      type: e.resourceType,
      frameId: e.frameId ?? null,
      at: Date.now(),
    };
    log.push(entry);
    note(`network ${entry.method} ${entry.url} (${entry.type}, frame ${entry.frameId})`);
    session.send('Fetch.continueRequest', { requestId: e.requestId }).catch(() => {});
  });
  await session.send('Fetch.enable', { patterns: [{ urlPattern: '*' }] });
  return {
    log,
    /** Entries from index `from` on. */
    since: (from) => log.slice(from),
    async stop() {
      await session.send('Fetch.disable').catch(() => {});
      await session.detach().catch(() => {});
    },
  };
}

/**
 * Records what happens in `page`: dialogs (dismissed), popups, requests Playwright reports,
 * console messages (of every frame) and uncaught errors. Everything also goes to `note`.
 */
export function recordPage(page, note = () => {}) {
  const record = { dialogs: [], popups: [], requests: [], console: [], pageErrors: [] };
  page.on('dialog', async (dialog) => {
    record.dialogs.push({ type: dialog.type(), message: dialog.message() });
    note(`DIALOG ${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  page.on('popup', (popup) => {
    record.popups.push({ url: popup.url(), page: popup, at: Date.now() });
    note(`POPUP ${popup.url()}`);
  });
  page.on('request', (r) => {
    let frame = '?';
    try {
      frame = r.frame().url();
    } catch {
      // a request of a service worker has no frame
    }
    record.requests.push({ url: r.url(), type: r.resourceType(), frame, at: Date.now() });
  });
  page.on('console', (m) => {
    let frame = '?';
    try {
      frame = m.page() ? (m.location().url ?? '') : '?';
    } catch {
      // ignore
    }
    record.console.push({ type: m.type(), text: m.text(), frame, at: Date.now() });
    note(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => {
    record.pageErrors.push(String(e));
    note(`PAGE ERROR ${e.stack || e}`);
  });
  return record;
}

/**
 * Console messages that prove script ran in a sandboxed frame (Chromium ignores alert() and
 * friends without allow-modals, and says so), or that script or a script URL reached a
 * document and was stopped only by the sandbox or the CSP.
 */
export const SCRIPT_RAN = /Ignored call to '(alert|confirm|prompt|print)\(\)'/;
export const SCRIPT_BLOCKED = new RegExp(
  [
    'Blocked script execution',
    'Refused to (execute|run|evaluate)',
    'Blocked form submission',
    'Blocked (opening|navigation)',
    'unsafe attempt to initiate navigation',
  ].join('|'),
  'i',
);
export const CSP_REFUSED = /Refused to (load|apply|connect|frame|create|prefetch)/i;

/**
 * A snapshot of the web app's IndexedDB ("webpop"), read directly in `page` (which must have
 * opened it already): every account id, every UIDL state, every stored message (size, SHA-256
 * of the raw bytes, whether it ends its header block) and every summary.
 */
export async function readStore(page) {
  return page.evaluate(snapshotStore);
}

/**
 * Checks a store snapshot (`snapshotStore`): uids (stored or headers-only), messages and
 * summaries hold the same keys; every message has bytes and a header block; every whole message
 * is one of `serverDigests` (SHA-256 hex), none twice. Returns the account, the UIDLs and counts.
 */
export function consistentSnapshot(snap, serverDigests, label) {
  assert.equal(snap.accounts.length, 1, `${label}: one account is stored`);
  const account = snap.accounts[0];
  const mine = (xs) => xs.filter((x) => x.account === account);
  const uids = mine(snap.uids);
  const messages = mine(snap.messages);
  const summaries = mine(snap.summaries);
  const states = new Map(uids.map((u) => [u.uid, u.state]));
  const odd = uids.filter((u) => u.state !== 'stored' && u.state !== 'headers');
  assert.deepEqual(odd, [], `${label}: every UIDL state is "stored" or "headers"`);
  const sorted = (xs) => xs.map((x) => x.uid).sort();
  assert.deepEqual(sorted(messages), sorted(uids), `${label}: every UIDL state has its message and no message is without one`);
  assert.deepEqual(sorted(summaries), sorted(uids), `${label}: every message has its summary and no summary is without one`);
  for (const m of messages) {
    assert.ok(m.bytes > 0 && m.hasHeaderBlock, `${label}: message ${m.uid} has its bytes (${m.bytes})`);
  }
  const whole = messages.filter((m) => states.get(m.uid) === 'stored');
  const foreign = whole.filter((m) => !serverDigests.has(m.sha256));
  assert.deepEqual(foreign.map((m) => m.uid), [], `${label}: every stored message is byte for byte one of the server's`);
  assert.equal(new Set(whole.map((m) => m.sha256)).size, whole.length, `${label}: no message is stored twice`);
  return {
    account,
    uids: new Set(uids.map((u) => u.uid)),
    count: uids.length,
    whole: whole.length,
    headers: uids.length - whole.length,
  };
}

/**
 * In a page (self-contained, for `page.evaluate` or a WebDriver script): the snapshot
 * `readStore` returns.
 */
export async function snapshotStore() {
  const db = await new Promise((resolve, reject) => {
    const open = indexedDB.open('webpop');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
    open.onblocked = () => reject(new Error('opening webpop was blocked'));
  });
  try {
    const all = (name) =>
      new Promise((resolve, reject) => {
        const r = db.transaction(name, 'readonly').objectStore(name).getAll();
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
    const [accounts, uids, messages, summaries] = await Promise.all(
      ['accounts', 'uids', 'messages', 'summaries'].map(all),
    );
    const hex = (buffer) =>
      [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
    const stored = [];
    for (const m of messages) {
      const raw = m.raw instanceof Uint8Array ? m.raw : new Uint8Array(m.raw ?? []);
      const head = new TextDecoder('latin1').decode(raw.subarray(0, Math.min(raw.length, 65536)));
      stored.push({
        account: m.account,
        uid: m.uid,
        bytes: raw.length,
        sha256: hex(await crypto.subtle.digest('SHA-256', raw)),
        hasHeaderBlock: /\r?\n\r?\n/.test(head),
      });
    }
    return {
      version: db.version,
      accounts: accounts.map((a) => a.id),
      uids: uids.map((u) => ({ account: u.account, uid: u.uid, state: u.state })),
      messages: stored,
      summaries: summaries.map((s) => ({ account: s.account, uid: s.uid, subject: s.subject })),
    };
  } finally {
    db.close();
  }
}

/**
 * A local HTTP server that a page, stopped on purpose in the middle of a write, calls with a
 * synchronous XMLHttpRequest: the page's main thread stays blocked until the test answers (or
 * crashes the page). `next()` resolves with the next held request: its query parameters and
 * `release()`, which answers it.
 */
export async function holdServer() {
  const waiting = [];
  const queued = [];
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    let body = null;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
    } catch {
      body = null;
    }
    const held = {
      body,
      release() {
        if (!res.writableEnded) {
          res.writeHead(200, {
            'content-type': 'text/plain',
            'access-control-allow-origin': '*',
            'cache-control': 'no-store',
          });
          res.end('go\n');
        }
      },
    };
    const w = waiting.shift();
    if (w) w(held);
    else queued.push(held);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/hold`;
  return {
    url,
    next(timeout = 120_000) {
      const q = queued.shift();
      if (q) return Promise.resolve(q);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no page called the hold server within ${timeout} ms`)),
          timeout,
        );
        waiting.push((held) => {
          clearTimeout(timer);
          resolve(held);
        });
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Holds the sync's `batch`-th write (a readwrite transaction over uids, messages and summaries:
 * one batch of the sync engine) in the middle, and stops `page` there: the sync runs in a Web
 * Worker, so the test env serves the worker's loader with the prelude lib/worker-hold.js (ask for
 * it with `POST /worker-hold/batch/<batch>` before the page loads, clear it with
 * `POST /worker-hold/clear`), which holds the write after every UIDL state and the first message
 * of the batch are put. `page` (instrumented here before its scripts run) hears of it on the
 * BroadcastChannel "webpop-e2e-hold", POSTs what it knows to `holdUrl` with a synchronous
 * XMLHttpRequest and waits for the answer; then it tells the worker to issue the rest of the
 * batch and let the transaction end. The body (JSON) lists every batch written so far: its number,
 * its UIDLs, and whether it had committed by then. The prelude's log lines ("webpop-e2e: batch
 * <n> committed|aborted …") are repeated on the page's console.
 */
export async function holdBatch(page, holdUrl, batch) {
  await page.addInitScript(
    ({ holdUrl, batch }) => {
      let asked = false;
      const channel = new BroadcastChannel('webpop-e2e-hold');
      channel.onmessage = (e) => {
        let message = null;
        try {
          message = JSON.parse(e.data);
        } catch {
          return;
        }
        if (!message) return;
        if (message.log) {
          console.debug(message.log);
          return;
        }
        window.__e2eHold = message;
        if (message.batch !== batch || !message.written || asked) return;
        asked = true;
        const xhr = new XMLHttpRequest();
        xhr.open('POST', holdUrl, false);
        xhr.setRequestHeader('content-type', 'text/plain');
        try {
          xhr.send(JSON.stringify({ batch, batches: message.batches }));
        } catch {
          // the answer does not matter, only that it came
        }
        channel.postMessage(JSON.stringify({ release: true }));
      };
    },
    { holdUrl, batch },
  );
}

/**
 * In a page (self-contained, for a WebDriver script; run it after the app has loaded, before its
 * sync starts): follows the sync worker's held write. The test env serves the worker's loader with
 * the prelude lib/worker-hold.js (`POST /worker-hold/batch/<batch>` before the page loads, then
 * `POST /worker-hold/clear`), which holds the sync's `batch`-th write (a readwrite transaction
 * over uids, messages and summaries) in the middle, in the worker's global scope, without
 * blocking anything and without any request beyond reading its parameters from the same origin
 * (so the app's Content-Security-Policy needs no bypass, and a driver that cannot script workers,
 * as geckodriver, still works): every UIDL state of the batch and its first message are put; the
 * app's later puts in that transaction are not issued; the transaction is kept open by a chain
 * of reads; and the worker burns CPU in slices, in the page's process. It reports on the
 * BroadcastChannel "webpop-e2e-hold", which this listener turns into `window.__e2eHold`:
 * `{ batch, held, written, spins, batches }`, `written` once the first message's put has
 * succeeded (it is in the open transaction); `batches` lists every batch write so far (number,
 * UIDLs, messages put, whether it committed).
 */
export function batchHold(batch) {
  window.__e2eHold = null;
  const channel = new BroadcastChannel('webpop-e2e-hold');
  channel.onmessage = (e) => {
    try {
      const message = JSON.parse(e.data);
      if (message && message.batch === batch) window.__e2eHold = message;
    } catch {
      // not ours
    }
  };
  // Kept reachable: a channel that is collected stops listening.
  window.__e2eHoldChannel = channel;
}
