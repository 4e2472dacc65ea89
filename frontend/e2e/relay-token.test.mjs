// The relay's access token, end to end, in every browser engine (lib/engines.mjs): the real
// `webpop-proxy` started with `--token-file` and `--demo` serves the built web app (dist/) on
// 127.0.0.1, and Chromium, Firefox ESR and WebKitGTK open it in turn.
//
//   WEBPOP_ENGINES=chromium,firefox,webkit node --test --test-concurrency=1 frontend/e2e/relay-token.test.mjs
//
// Needs dist/ (scripts/wasm-env trunk build --release) and the debug binary
// (cargo build -p webpop-proxy; $CARGO_TARGET_DIR is honoured, or $WEBPOP_PROXY_BIN).
// Screenshots and logs: <artifacts>/<engine>/relay-token/.
//
// The bug: the page never sent the token, so a relay with --token-file refused the web app; and
// a token in the query string lands in access logs. Now the page learns the token from its
// address's fragment (#token=…), drops it from the address bar, keeps it in localStorage, and
// offers it as a WebSocket subprotocol: the demo mailbox syncs, and no WebSocket URL holds it.
// A page that was never given the token is refused in words.
//
// How the WebSocket URLs are seen (the Playwright version used page.on('websocket')):
// - in every engine, an in-page wrapper around `WebSocket` records each URL and subprotocol list
//   the app asks for. Where the driver has BiDi (Chromium, Firefox) it is a preload script, there
//   before the app's first line; in WebKitGTK (no BiDi, so no preload scripts) it is installed
//   once the app is ready and before "Try the demo mailbox" is pressed, so it sees the demo's
//   sockets but not one the app might open while starting.
// - where there is BiDi, network.beforeRequestSent is read too: no request URL of any kind holds
//   the token (or the word "token").

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ENGINES, launch } from './lib/engines.mjs';
import { startDemoRelay } from './lib/demo-relay.mjs';
import { READY, clickOn, evaluateAsync, failureEvidence } from './lib/ui.mjs';
import { waitUntil } from './lib/wait.mjs';

const SELECTED = (process.env.WEBPOP_ENGINES || ENGINES.join(',')).split(',').map((e) => e.trim()).filter(Boolean);

// Characters a subprotocol may not hold, so the page must encode it.
const TOKEN = 'e2e/tok+en=7f3a';
const STORAGE_KEY = 'webpop.relay-token';
// The subprotocol that carries it (shared/src/relay.rs, token_protocol): base64url, no padding.
const TOKEN_PROTOCOL = `webpop.token.${Buffer.from(TOKEN).toString('base64url')}`;

let relay;
let tmp;

before(
  async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'webpop-token-'));
    const tokenFile = path.join(tmp, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    relay = await startDemoRelay(['--token-file', tokenFile]);
    console.log(`# relay: ${relay.web}; engines: ${SELECTED.join(', ')}`);
  },
  { timeout: 180_000 },
);

after(async () => {
  if (relay) await relay.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Runs in the page: records every WebSocket the page opens (URL and subprotocols). */
function wrapWebSocket() {
  if (window.__e2eSockets) return;
  const seen = [];
  window.__e2eSockets = seen;
  const Original = window.WebSocket;
  function Recorded(url, protocols) {
    seen.push({ url: String(url), protocols: protocols === undefined ? [] : [].concat(protocols).map(String) });
    return protocols === undefined ? new Original(url) : new Original(url, protocols);
  }
  Recorded.prototype = Original.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Recorded[k] = Original[k];
  window.WebSocket = Recorded;
}

/**
 * Runs in a document of the app's origin (not the app): empties localStorage, sessionStorage,
 * every IndexedDB database, the caches, and unregisters the service workers.
 */
async function forgetOrigin() {
  localStorage.clear();
  sessionStorage.clear();
  if (typeof indexedDB.databases !== 'function') throw new Error('indexedDB.databases() is missing');
  const names = (await indexedDB.databases()).map((d) => d.name);
  for (const name of names) {
    await new Promise((resolve, reject) => {
      const request = indexedDB.deleteDatabase(name);
      request.onsuccess = resolve;
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error(`deleting ${name} is blocked`));
    });
  }
  const caches_ = typeof caches === 'undefined' ? [] : await caches.keys();
  for (const key of caches_) await caches.delete(key);
  const workers = navigator.serviceWorker ? await navigator.serviceWorker.getRegistrations() : [];
  for (const w of workers) await w.unregister();
  return { databases: names, caches: caches_, serviceWorkers: workers.length };
}

/** The sum of the relay's `/metrics` lines named `name` (every label). */
async function relayMetric(name) {
  const text = await (await fetch(`${relay.web.replace(/\/+$/, '')}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\d+)$/.exec(line);
    if (m && m[1] === name) sum += Number(m[3]);
  }
  return sum;
}

/** How many options the "Messages" list shows (runs in the page). */
function listedMail() {
  const list = [...document.querySelectorAll('[role="listbox"]')].find(
    (el) => el.getAttribute('aria-label') === 'Messages',
  );
  return list ? list.querySelectorAll('[role="option"]').length : 0;
}


for (const engine of SELECTED) {
  describe(`the relay's access token in ${engine}`, { concurrency: 1 }, () => {
    let session;
    let bidi = null;
    const requests = []; // request URLs (BiDi)
    const timings = {};
    let t0;

    /** A test that saves a screenshot and the status lines when it fails, timed. */
    function check(name, timeout, body) {
      test(name, { timeout }, async (t) => {
        const started = Date.now();
        try {
          assert.ok(session, `${engine} did not start`);
          await body(t);
        } catch (e) {
          if (session) await failureEvidence(session, t, name.replace(/[^a-z0-9]+/gi, '-').slice(0, 50), e.message);
          throw e;
        } finally {
          timings[name] = (Date.now() - started) / 1000;
        }
      });
    }

    before(
      async () => {
        t0 = Date.now();
        session = await launch(engine, { label: 'relay-token' });
        if (session.info.bidi) {
          bidi = await session.driver.getBidi();
          bidi.on('network.beforeRequestSent', (p) => {
            if (p.request?.url) requests.push(p.request.url);
          });
          await bidi.subscribe('network.beforeRequestSent');
          await bidi.send({
            method: 'script.addPreloadScript',
            params: { functionDeclaration: `() => (${wrapWebSocket})()` },
          });
        }
        timings.launched = (Date.now() - t0) / 1000;
        console.log(`# ${engine}: ${session.info.browserName} ${session.info.browserVersion}, BiDi ${bidi ? 'yes' : 'no'}`);
      },
      { timeout: 180_000 },
    );

    after(
      async () => {
        if (session) await session.close();
        timings.total = t0 ? (Date.now() - t0) / 1000 : null;
        console.log(`# ${engine}: ${JSON.stringify(timings)}`);
        if (session) writeFileSync(path.join(session.artifacts, 'relay-token-timings.json'), JSON.stringify(timings, null, 2));
      },
      { timeout: 120_000 },
    );

    check('a page given #token= syncs the demo mailbox through a --token-file relay', 240_000, async (t) => {
      await session.goto(`${relay.web}/#token=${encodeURIComponent(TOKEN)}`);
      await session.waitFor({ css: READY }, { timeout: 90_000 });
      const address = await session.driver.getCurrentUrl();
      assert.equal(new URL(address).hash, '', `the token left the address bar: ${address}`);
      assert.equal(await session.evaluate(`return localStorage.getItem(${JSON.stringify(STORAGE_KEY)})`), TOKEN);
      // Without BiDi: the wrapper from here on (the demo's sockets are opened after the click).
      if (!bidi) await session.evaluate(wrapWebSocket);

      const before = {
        connections: await relayMetric('webpop_relay_connections_total'),
        refused: await relayMetric('webpop_relay_refused_total'),
      };
      await clickOn(session, { role: 'button', name: 'Try the demo mailbox' });
      await waitUntil(async () => (await session.evaluate(listedMail)) > 0, {
        timeout: 120_000,
        what: 'demo mail in the "Messages" list',
      });
      t.diagnostic(`screenshot: ${await session.screenshot('token-demo-synced')}`);

      const sockets = (await session.evaluate('return window.__e2eSockets || []')) ?? [];
      t.diagnostic(`${engine}: WebSockets seen by the in-page wrapper${bidi ? ' (preload script)' : ' (installed after load)'}: ${JSON.stringify(sockets)}`);
      // The sync runs in the app's Web Worker, whose WebSockets a wrapper in the page does not
      // see (it sees those the page opens itself, if any). The relay's own counters say that the
      // sync's sessions were accepted — a --token-file relay accepts none without the token —
      // and that none was refused.
      const after = {
        connections: await relayMetric('webpop_relay_connections_total'),
        refused: await relayMetric('webpop_relay_refused_total'),
      };
      t.diagnostic(`${engine}: relay sessions ${before.connections} → ${after.connections}, refused ${before.refused} → ${after.refused}`);
      assert.ok(after.connections > before.connections, "the relay accepted the sync's sessions (the token was offered)");
      assert.equal(after.refused, before.refused, 'the relay refused none of them');
      for (const { url, protocols } of sockets) {
        assert.ok(!url.includes('token') && !url.includes(encodeURIComponent(TOKEN)) && !url.includes(TOKEN),
          `no token in the WebSocket URL: ${url}`);
        // The token travels as a subprotocol, encoded (a subprotocol may not hold "/", "+", "=").
        assert.ok(protocols.length > 0, `the WebSocket to ${url} offers a subprotocol`);
        for (const p of protocols) assert.match(p, /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, `subprotocol ${p} is a token (RFC 6455)`);
        assert.ok(!protocols.includes(TOKEN), 'the raw token is not offered as is');
        assert.ok(protocols.includes(TOKEN_PROTOCOL), `the token is offered as ${TOKEN_PROTOCOL}: ${protocols.join(', ')}`);
      }
      if (bidi) {
        t.diagnostic(`${engine}: ${requests.length} requests seen by BiDi network.beforeRequestSent`);
        // The fragment of the page's own address is not sent to the server: only what is.
        const sent = requests.map((url) => url.split('#')[0]);
        const handshakes = sent.filter((url) => /^(ws|http):\/\/[^/]+\/relay\?/.test(url));
        if (engine === 'firefox') {
          // Firefox reports the WebSocket handshake (as an http:// request to /relay).
          assert.ok(handshakes.length > 0, `BiDi saw the relay WebSocket's handshake: ${sent.join(' ')}`);
        } else {
          // chromium-bidi reports no request for a WebSocket handshake: the wrapper above is
          // what saw its URL.
          t.diagnostic(`${engine}: BiDi reported ${handshakes.length} WebSocket handshake(s) (chromium-bidi reports none)`);
        }
        for (const url of sent) {
          assert.ok(!url.includes('token') && !url.includes(encodeURIComponent(TOKEN)), `no token in a request URL: ${url}`);
        }
      } else {
        t.diagnostic(`${engine}: no BiDi, so request URLs are not checked beyond the WebSockets the wrapper saw`);
      }

      // A later visit without the fragment still has it.
      await session.goto(relay.web);
      await session.waitFor({ css: READY }, { timeout: 90_000 });
      assert.equal(await session.evaluate(`return localStorage.getItem(${JSON.stringify(STORAGE_KEY)})`), TOKEN);
    });

    check('a page never given the token is refused in words', 240_000, async (t) => {
      // The same profile with everything the origin stored forgotten (the token, and the demo
      // account the last test added), from a document of the origin that runs no app: the page
      // is a new visitor that was never given the token.
      await session.goto(`${relay.web}/icon.svg`);
      const forgotten = await evaluateAsync(session, forgetOrigin);
      t.diagnostic(`${engine}: forgot ${JSON.stringify(forgotten)}`);
      await session.goto(relay.web);
      await session.waitFor({ css: READY }, { timeout: 90_000 });
      assert.equal(await session.evaluate(`return localStorage.getItem(${JSON.stringify(STORAGE_KEY)})`), null);
      const before = {
        connections: await relayMetric('webpop_relay_connections_total'),
        refused: await relayMetric('webpop_relay_refused_total'),
      };
      await clickOn(session, { role: 'button', name: 'Try the demo mailbox' });
      const shown = await waitUntil(
        async () => {
          const text = await session.text();
          return /valid access token/.test(text) && text;
        },
        { timeout: 120_000, what: 'the words "valid access token" on the page' },
      );
      const line = shown.split('\n').find((l) => /valid access token/.test(l));
      t.diagnostic(`${engine}: ${line}`);
      assert.doesNotMatch(line, /JsValue|code 1006|Error\(/, 'the refusal is in words');
      t.diagnostic(`screenshot: ${await session.screenshot('no-token-refused')}`);
    });
  });
}
