// webpop end to end, the same steps in every browser engine: Chromium, Firefox ESR and
// WebKitGTK through W3C WebDriver (lib/engines.mjs), the real relay serving the built web app
// (dist/) and /relay on one origin, and a real Dovecot, all started by `webpop-test-env` on
// 127.0.0.1 (see lib/env.mjs).
//
//   WEBPOP_ENGINES=chromium,firefox,webkit node --test --test-concurrency=1 frontend/e2e/app.test.mjs
//
// WEBPOP_ENGINES picks the engines (all three by default). In each engine, the steps run in order
// in ONE fresh browser profile and build on each other: add an account, sync 204 messages (200
// generated + the 4 fixtures in fixtures/), read plain, HTML and attachment mail, download the
// attachments, the message and the mailbox, open a hostile message, read everything again after
// a reload with the relay stopped (the service worker serves the app), then load an HTML
// message's remote images. A step after a failed one is skipped (in that engine only); after
// every step, no Content Security Policy may have refused anything. Every step saves a
// screenshot to <artifacts>/<engine>/app/ (WEBPOP_E2E_ARTIFACTS, default target/e2e-artifacts), a
// failing one `NN-…-FAILED.png`; per-step timings go to app-timings.json there.
//
// Where WebDriver has no counterpart of what the Playwright version used, the test says what it
// used instead, per engine (`# <engine>: …` lines and app-timings.json):
// - requests: WebDriver BiDi's network.beforeRequestSent where the driver has BiDi (every
//   context, frames included); otherwise (WebKitGTK) the page's resource timing. The canary
//   server's own log is the authority on leaks in every engine.
// - console, page errors and CSP reports: BiDi log.entryAdded where the driver has BiDi (in
//   Firefox it carries the browser's own CSP messages; in Chromium it does not, so chromedriver's
//   browser log is read too), MiniBrowser's console on its stdout (driver.log) in WebKitGTK,
//   which prints no CSP message; and in every engine a `securitypolicyviolation`/`error`
//   listener in the app's document (a BiDi preload script where there is BiDi, so it is there
//   before the app's first line; installed after each load otherwise). So in WebKitGTK a CSP
//   refusal inside the reader's frame (which runs no script) would go unseen.
// - downloads: a click on an `<a download>` (the app's links, and the one it makes for an
//   export) is caught in the page, which reads the Blob behind the object URL (kept from
//   URL.createObjectURL; fetch(blob:) is refused by the app's connect-src) as base64; the
//   browser's own save is not exercised.
// - offline: the relay is stopped through the test env's control API (so only the service
//   worker can serve the reload), and the browser is put offline where the driver can
//   (BiDi emulation.setNetworkConditions, else chromedriver's network conditions); where it
//   cannot (WebKitGTK) the "Offline" indicator is not checked, but "Sync now" must fail in words.
//
// Selection is by role and accessible name (lib/ui.mjs, UI contract).
//
// Remote URLs in the fixtures point at a "canary" HTTP server of the test env on 127.0.0.1: if
// anything in a shown message loads, the canary sees it and the test fails. The harness step
// proves the canary is reachable from this browser, so "the canary saw nothing" means something.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

import { startEnv, colonHex, e2eAccount, FIXTURES } from './lib/env.mjs';
import { ENGINES, launch } from './lib/engines.mjs';
import { waitUntil, holdsFor } from './lib/wait.mjs';
import { attachmentFromEml } from './lib/mime.mjs';
import { CSP_TEXT } from './lib/csp.mjs';
import {
  READY,
  UI,
  ACCOUNT_FIELDS,
  FORBIDDEN_SANDBOX_TOKENS,
  query,
  waitFor,
  waitGone,
  textOf,
  clickOn,
  typeInto,
  fillAccountFormIn,
  recordProgressIn,
  progressRecordIn,
  collectRowsIn,
  openMessageIn,
  sandboxTokensOf,
  inspectSrcdocOf,
  failureEvidence,
} from './lib/ui.mjs';

const SELECTED = (process.env.WEBPOP_ENGINES || ENGINES.join(',')).split(',').map((e) => e.trim()).filter(Boolean);

// Canary paths the harness itself requests (the positive control); everything else is a leak.
const HARNESS_PREFIX = '/harness/';
// What the in-page watcher prints, so the console (where there is one) carries it too.
const WATCH_PREFIX = 'webpop-e2e:';

const fixture = (name) => readFileSync(path.join(FIXTURES, name));

const RAW = ['JsValue', 'Error(', '@http'];

/**
 * Runs in the app's document (a BiDi preload script, or after each load): records CSP
 * violations, uncaught errors and unhandled rejections in `window.__e2eWatch`, and prints each
 * to the console with WATCH_PREFIX.
 */
function installWatch(prefix) {
  if (window.__e2eWatch) return;
  const watch = { csp: [], errors: [] };
  window.__e2eWatch = watch;
  const say = (line) => {
    try {
      console.error(`${prefix} ${line}`);
    } catch {
      // no console
    }
  };
  const listen = () => {
    document.addEventListener('securitypolicyviolation', (e) => {
      const line =
        `securitypolicyviolation ${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'} ` +
        `at ${e.sourceFile || document.URL}:${e.lineNumber} in the policy "${e.originalPolicy}"`;
      watch.csp.push(line);
      say(line);
    });
  };
  if (document) listen();
  window.addEventListener('error', (e) => {
    const line = `error ${e.message} at ${e.filename}:${e.lineno}`;
    watch.errors.push(line);
    say(line);
  });
  window.addEventListener('unhandledrejection', (e) => {
    const line = `unhandledrejection ${e.reason && (e.reason.stack || e.reason)}`;
    watch.errors.push(line);
    say(line);
  });
}

/**
 * Runs in the page: from now on, a click on an `<a download>` (in the document, or one the app
 * made and clicks without attaching it) is caught, not saved, and the bytes of the Blob behind
 * its object URL read into `window.__e2eDownloads` (base64).
 */
function catchDownloads() {
  if (window.__e2eDownloads) return;
  const downloads = [];
  window.__e2eDownloads = downloads;
  const base64 = (buffer) => {
    const bytes = new Uint8Array(buffer);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };
  // fetch(blob:) would be refused by the app's connect-src: keep every Blob the app turns into
  // an object URL, and read the one the link points to.
  const blobs = new Map();
  const createObjectURL = URL.createObjectURL;
  URL.createObjectURL = function (blob) {
    const url = createObjectURL.call(URL, blob);
    if (blob instanceof Blob) blobs.set(url, blob);
    return url;
  };
  const grab = (a) => {
    if (!a.hasAttribute('download')) return false;
    const record = { name: a.getAttribute('download'), href: a.href, bytes: null, error: null };
    downloads.push(record);
    const blob = blobs.get(a.href);
    (blob ? blob.arrayBuffer() : Promise.reject(new Error(`${a.href} is not an object URL made since the harness looked`)))
      .then((b) => {
        record.bytes = base64(b);
      })
      .catch((e) => {
        record.error = String(e);
      });
    return true;
  };
  document.addEventListener(
    'click',
    (e) => {
      const a = e.target && e.target.closest ? e.target.closest('a[download]') : null;
      if (a && grab(a)) e.preventDefault();
    },
    true,
  );
  const click = HTMLAnchorElement.prototype.click;
  HTMLAnchorElement.prototype.click = function () {
    if (!this.isConnected && grab(this)) return;
    return click.call(this);
  };
}


let testEnv; // handle from startEnv
let env; // its /env JSON
let web; // the page's origin, e.g. http://127.0.0.1:41234
let subjects; // fixture file name → subject

before(
  async () => {
    testEnv = await startEnv();
    env = testEnv.env;
    web = new URL(env.web).origin;
    subjects = Object.fromEntries(env.e2e.fixtures.map((f) => [f.file, f.subject]));
    console.log(`# web app: ${env.web}  control: ${testEnv.control}  canary: ${env.canary}`);
    console.log(`# engines: ${SELECTED.join(', ')}`);
  },
  { timeout: 300_000 },
);

after(
  async () => {
    if (testEnv) await testEnv.stop();
  },
  { timeout: 60_000 },
);

for (const engine of SELECTED) {
  describe(`webpop end to end in ${engine} (relay, Dovecot)`, { concurrency: 1 }, () => {
    let session;
    let bidi = null; // the raw BiDi connection, where the driver has one
    let canaryFrom = 0; // this engine's part of the canary log starts here
    let relayStopped = false;
    let offlineBy = null; // how the browser was put offline, if it was
    let broken = null; // the first step that failed: later steps are skipped
    const requests = []; // { url, context, at } (BiDi)
    const csp = []; // CSP reports from every source, for the whole run
    const pageErrors = [];
    let driverLogFrom = 0;
    const timings = { engine, steps: {} };
    const how = {}; // what stood in for what, in this engine
    let t0 = Date.now();

    /** One ordered step: skipped after a failure, screenshot on failure, timed. */
    function step(name, timeout, body) {
      test(name, { timeout }, async (t) => {
        if (broken) {
          t.skip(`an earlier step failed: ${broken}`);
          return;
        }
        const started = Date.now();
        try {
          await body(t);
          await collectWatch();
          // The app must work under its Content-Security-Policy without one refusal, at any time.
          assert.deepEqual(csp, [], 'no Content Security Policy violation so far (console or securitypolicyviolation)');
        } catch (e) {
          broken = name;
          const slug = name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase().slice(0, 60);
          if (session) await failureEvidence(session, t, slug, e.message);
          throw e;
        } finally {
          timings.steps[name] = (Date.now() - started) / 1000;
        }
      });
    }

    async function shot(t, name) {
      t.diagnostic(`screenshot: ${await session.screenshot(name)}`);
    }

    /**
     * Gathers what the page's watcher and the console saw since the last call: CSP reports
     * into `csp`, uncaught errors into `pageErrors`.
     */
    async function collectWatch() {
      const seen = await session
        .evaluate(() => {
          const w = window.__e2eWatch;
          if (!w) return null;
          const out = { csp: w.csp.splice(0), errors: w.errors.splice(0) };
          return out;
        })
        .catch(() => null);
      if (seen) {
        // With BiDi these also reach the console, which is read below: count them once.
        if (!bidi) {
          csp.push(...seen.csp);
          pageErrors.push(...seen.errors);
        }
      }
      consoleReports();
      if (engine === 'chromium') {
        // chromedriver's browser log: the browser's own console messages, every frame's.
        const entries = await session.driver.manage().logs().get('browser').catch(() => []);
        for (const entry of entries) {
          if (CSP_TEXT.test(entry.message) && !entry.message.includes(WATCH_PREFIX)) csp.push(`console: ${entry.message}`);
        }
      }
      if (engine === 'webkit') {
        // MiniBrowser writes the console to its stdout, which lands in driver.log.
        const file = path.join(session.artifacts, 'driver.log');
        if (existsSync(file)) {
          const lines = readFileSync(file, 'utf8').split('\n');
          for (const line of lines.slice(driverLogFrom)) {
            if (CSP_TEXT.test(line) && !line.includes(WATCH_PREFIX)) csp.push(`console: ${line}`);
          }
          driverLogFrom = Math.max(driverLogFrom, lines.length - 1);
        }
      }
    }

    async function installWatchNow() {
      if (!bidi) await session.evaluate(installWatch, WATCH_PREFIX);
    }

    /** Canary requests since this engine started, other than the harness's positive control. */
    async function leaks() {
      const log = await testEnv.canaryLog();
      // /favicon.ico: the browser's own, after the harness opened a page of the canary's origin.
      return log.slice(canaryFrom).filter((r) => !r.path.startsWith(HARNESS_PREFIX) && r.path !== '/favicon.ico');
    }

    async function assertNoLeaks(when) {
      const seen = await leaks();
      assert.deepEqual(
        seen.map((r) => `${r.method} ${r.path} (${r.fetch_dest ?? '?'})`),
        [],
        `${when}: the canary must see no request`,
      );
    }

    /** Puts the browser off the network where the driver can; returns how, or null. */
    async function goOffline(offline) {
      if (bidi) {
        try {
          await bidi.send({
            method: 'emulation.setNetworkConditions',
            params: { networkConditions: offline ? { type: 'offline' } : null },
          });
          return 'BiDi emulation.setNetworkConditions';
        } catch (e) {
          session.note(`emulation.setNetworkConditions: ${e.message}`);
        }
      }
      if (engine === 'chromium' && typeof session.driver.setNetworkConditions === 'function') {
        if (offline) {
          await session.driver.setNetworkConditions({ offline: true, latency: 0, download_throughput: -1, upload_throughput: -1 });
        } else {
          await session.driver.deleteNetworkConditions();
        }
        return "chromedriver's network conditions";
      }
      return null;
    }

    before(
      async () => {
        t0 = Date.now();
        canaryFrom = (await testEnv.canaryLog()).length;
        session = await launch(engine, { label: 'app' });
        timings.browser = `${session.info.browserName} ${session.info.browserVersion}`;
        timings.launched = (Date.now() - t0) / 1000;
        if (session.info.bidi) {
          bidi = await session.driver.getBidi();
          bidi.on('network.beforeRequestSent', (p) => {
            const entry = { url: p.request?.url, context: p.context, navigation: p.navigation ?? null, at: Date.now() };
            requests.push(entry);
            session.note(`request ${p.request?.method} ${entry.url} (context ${p.context})`);
          });
          await bidi.subscribe('network.beforeRequestSent');
          // The watcher in every document before its own scripts run.
          await bidi.send({
            method: 'script.addPreloadScript',
            params: { functionDeclaration: `() => (${installWatch})(${JSON.stringify(WATCH_PREFIX)})` },
          });
          how.requests = 'BiDi network.beforeRequestSent (all contexts) + the canary log';
          how.console = 'BiDi log.entryAdded + a securitypolicyviolation listener from a BiDi preload script';
        } else {
          how.requests = "the page's resource timing (top document) + the canary log";
          how.console = 'MiniBrowser stdout (driver.log) + a securitypolicyviolation listener installed after each load';
        }
        how.downloads = 'the Blob behind the clicked <a download> object URL, read in the page (base64)';
        console.log(`# ${engine}: ${timings.browser}, BiDi ${session.info.bidi ? 'yes' : 'no'}; artifacts ${session.artifacts}`);
      },
      { timeout: 180_000 },
    );

    // The console is only known once the session is up: CSP text and uncaught errors from it.
    function consoleReports() {
      for (const entry of session.console.splice(0)) {
        const text = entry.text ?? '';
        if (CSP_TEXT.test(text)) csp.push(`console: ${text}`);
        else if (text.startsWith(WATCH_PREFIX) && / (error|unhandledrejection) /.test(text)) pageErrors.push(text);
        else if (entry.type === 'javascript') pageErrors.push(text);
      }
    }

    after(
      async () => {
        if (session && offlineBy) await goOffline(false).catch(() => {});
        if (testEnv && relayStopped) await testEnv.post('/relay/start').catch(() => {});
        if (session) {
          const log = await testEnv.canaryLog().catch(() => []);
          writeFileSync(path.join(session.artifacts, 'canary.json'), JSON.stringify(log.slice(canaryFrom), null, 2));
          writeFileSync(path.join(session.artifacts, 'requests.json'), JSON.stringify(requests, null, 2));
          await session.close();
          timings.total = (Date.now() - t0) / 1000;
          timings.how = how;
          writeFileSync(path.join(session.artifacts, 'app-timings.json'), JSON.stringify(timings, null, 2));
          console.log(`# ${engine}: ${timings.total.toFixed(1)} s in all; ${JSON.stringify(how)}`);
        }
      },
      { timeout: 120_000 },
    );

    step('0. harness: the relay serves the web app, the canary is reachable, fixtures are sound', 180_000, async (t) => {
      const eml = fixture('attachments.eml');
      for (const name of ['notes.txt', 'chart.png']) {
        assert.deepEqual(
          attachmentFromEml(eml, name),
          fixture(path.join('attachments', name)),
          `attachments.eml carries fixtures/attachments/${name}`,
        );
      }
      assert.equal(env.e2e.count, env.e2e.corpus + env.e2e.fixtures.length);
      for (const file of ['plain.eml', 'html.eml', 'attachments.eml', 'hostile.eml']) {
        assert.ok(subjects[file], `the test env loaded fixture ${file}`);
      }

      // Positive control: this browser can reach the canary (so silence later means something).
      const control = `${HARNESS_PREFIX}${engine}/positive-control.png`;
      // From a page of the canary's own origin (a blank page's opaque origin may not reach
      // loopback: Chromium's local network access rules).
      await session.goto(`${env.canary}${HARNESS_PREFIX}${engine}/page.html`);
      await session.evaluate((src) => {
        const img = document.createElement('img');
        img.alt = 'probe';
        img.src = src;
        document.body.append(img);
      }, `${env.canary}${control}`);
      await waitUntil(async () => (await testEnv.canaryLog()).slice(canaryFrom).some((r) => r.path === control), {
        what: 'the canary to see the positive control request',
      });
      await assertNoLeaks('before the web app is loaded');
      if (bidi) {
        await waitUntil(() => requests.some((r) => r.url === `${env.canary}${control}`), {
          what: 'BiDi network.beforeRequestSent to report the positive control request',
        });
      }

      // Positive control for the CSP check after every step: an inline script the relay's policy
      // refuses, in a document it served, is seen as a securitypolicyviolation event, and in the
      // console where the engine reports CSP there. (Then forgotten: it was asked for.)
      await session.goto(`${web}/healthz`);
      await installWatchNow();
      await session.evaluate(() => {
        const script = document.createElement('script');
        script.textContent = 'window.__cspControl = 1;';
        document.documentElement.append(script);
      });
      let sawEvent = false;
      let sawConsole = false;
      await waitUntil(
        async () => {
          await collectWatch();
          sawEvent ||= csp.some((r) => r.includes('securitypolicyviolation script-src'));
          sawConsole ||= csp.some((r) => r.startsWith('console: ') && !r.includes(WATCH_PREFIX) && /inline|script/i.test(r));
          // The browser's own console message about it: from BiDi's log.entryAdded in Firefox,
          // chromedriver's browser log in Chromium; MiniBrowser does not print it (written down).
          return sawEvent && (sawConsole || engine === 'webkit');
        },
        { what: 'the CSP watch to see the refused inline script (securitypolicyviolation, and the console but in WebKitGTK)' },
      );
      if (!sawConsole) {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        await collectWatch();
        sawConsole = csp.some((r) => r.startsWith('console: ') && !r.includes(WATCH_PREFIX) && /inline|script/i.test(r));
      }
      how.cspConsole = sawConsole
        ? "the browser's console reports CSP refusals too"
        : "the browser's own CSP messages do not reach the harness: the event listener in the app's document alone (frames that run no script are not watched)";
      t.diagnostic(`CSP control: event ${sawEvent}, console ${sawConsole}`);
      assert.equal(await session.evaluate(() => typeof window.__cspControl), 'undefined', 'the inline script did not run');
      csp.splice(0);

      // The page, served by the relay from dist/, same origin as /relay.
      await session.goto(env.web);
      await installWatchNow();
      assert.equal(new URL(await session.driver.getCurrentUrl()).origin, web);
      await waitFor(session, { role: 'heading', level: 1, name: 'webpop' });
      await shot(t, 'page-loaded');
    });

    step('1. add an account (a wrong password, then an untrusted certificate first)', 240_000, async (t) => {
      await waitUntil(() => session.evaluate((sel) => !!document.querySelector(sel), READY), {
        timeout: 90_000,
        what: 'the app to be ready (body[data-ready="1"])',
      });
      await waitFor(session, UI.form);
      const account = e2eAccount(env, { password: 'certainly-not-the-password' });
      const alert = { role: 'alert', within: UI.form };
      const addAccount = { role: 'button', name: 'Add account', within: UI.form };

      await fillAccountFormIn(session, account);
      await clickOn(session, addAccount);
      await waitUntil(async () => /password/i.test((await textOf(session, alert)) ?? ''), {
        timeout: 90_000,
        what: 'an alert in the form about the password',
      });
      t.diagnostic(`alert: ${(await textOf(session, alert)).trim()}`);
      await shot(t, 'wrong-password');

      // The right password but no pinned certificate: the self-signed certificate is refused,
      // explained, and its fingerprint offered to trust.
      await typeInto(session, ACCOUNT_FIELDS.password, env.e2e.password);
      await typeInto(session, ACCOUNT_FIELDS.fingerprint, '');
      await clickOn(session, addAccount);
      await waitUntil(async () => /certificate problem/i.test((await textOf(session, alert)) ?? ''), {
        timeout: 90_000,
        what: 'an alert in the form about the certificate',
      });
      const shown = (await textOf(session, alert)) ?? '';
      t.diagnostic(`alert: ${shown.trim()}`);
      assert.ok(shown.includes(colonHex(env.cert_sha256)), 'the alert shows the certificate fingerprint');
      for (const raw of RAW) assert.ok(!shown.includes(raw), `the alert shows no "${raw}": ${shown}`);
      await shot(t, 'certificate-problem');

      // Watch the progress bar from before the sync starts: it may be quick.
      await recordProgressIn(session);
      // Trusting it pins the fingerprint and signs in again.
      await clickOn(session, { role: 'button', name: 'Trust this certificate', within: UI.form });

      // A picture of the sync under way, when it can be caught (not an assertion: step 2 checks).
      const midway = await waitUntil(
        async () => ((await progressRecordIn(session))?.values ?? []).some((v) => v > 0 && v < 1),
        { timeout: 60_000, interval: 100, what: 'the sync to be under way' },
      ).catch(() => false);
      if (midway) await shot(t, 'syncing');
      await waitGone(session, UI.form, { timeout: 90_000 });
      await shot(t, 'account-added');
    });

    step('2. the first sync: the progress bar moves, 204 messages arrive', 480_000, async (t) => {
      const total = env.e2e.count;
      await waitUntil(
        async () => new RegExp(`Synced\\s+${total}\\b`).test((await textOf(session, UI.syncStatus)) ?? ''),
        { timeout: 420_000, interval: 500, what: `the sync status to say "Synced ${total} new messages"` },
      );
      const seen = await progressRecordIn(session);
      t.diagnostic(`progress values seen: ${JSON.stringify(seen.values)}`);
      t.diagnostic(`status texts seen: ${seen.statuses.length} (e.g. ${JSON.stringify(seen.statuses.slice(0, 3))})`);
      const values = [...new Set(seen.values)].filter((v) => v >= 0 && v <= 1);
      assert.ok(values.length >= 2, `the progress bar took at least two values (${JSON.stringify(seen.values)})`);
      assert.ok(
        values.some((v) => v > 0 && v < 1),
        `the progress bar showed a value strictly between 0 and 1 (${JSON.stringify(seen.values)})`,
      );
      for (const status of seen.statuses) {
        for (const raw of RAW) assert.ok(!status.includes(raw), `a sync status shows "${raw}": ${status}`);
      }

      await waitFor(session, { role: 'option', within: UI.list });
      const rows = await collectRowsIn(session);
      assert.equal(rows.length, total, `the list holds ${total} rows (saw ${rows.length})`);
      for (const subject of Object.values(subjects)) {
        assert.ok(rows.slice(0, 8).some((r) => r.includes(subject)), `"${subject}" is near the top (newest)`);
      }
      assert.ok(rows.some((r) => r.includes(env.e2e.oldest_subject)), 'the oldest message is listed');
      await assertNoLeaks('after the sync');
      await shot(t, 'synced');
    });

    /** The reader's message frame as an element (attached). */
    const messageFrame = { title: 'Message content', within: UI.reader };

    /**
     * Runs `body` with the driver switched into the reader's message frame, then back. Finding
     * and reading elements there needs the driver to run script in a sandboxed frame that
     * forbids the page's own scripts; every engine here can.
     */
    async function inMessage(body) {
      const frame = await waitFor(session, messageFrame, { attached: true });
      await session.driver.switchTo().frame(frame);
      try {
        return await body();
      } finally {
        await session.driver.switchTo().defaultContent();
      }
    }

    step('3. read a plain, an HTML and an attachments message', 240_000, async (t) => {
      // Plain text: shown as text, markup in it stays text.
      await openMessageIn(session, subjects['plain.eml']);
      await waitFor(session, { text: 'The tomatoes are ripe and the fence is painted.', within: UI.reader });
      await waitFor(session, { text: '<script>this is not code</script>', within: UI.reader });
      await shot(t, 'plain');

      // HTML: in the sandboxed frame; the cid: image inline as data:, the remote one blocked.
      await openMessageIn(session, subjects['html.eml']);
      const src = await inMessage(async () => {
        await waitFor(session, { text: 'Hello from the HTML newsletter' });
        const logo = await waitFor(session, { role: 'img', name: 'Inline logo' }, { attached: true });
        return logo.getAttribute('src');
      });
      assert.ok(src && src.startsWith('data:image/png'), `the cid: image is a data: URL (src=${src && src.slice(0, 40)})`);
      await waitUntil(async () => /^\s*1 remote images? blocked/i.test((await textOf(session, { text: 'remote image', within: UI.reader })) ?? ''), {
        what: 'the reader to say "1 remote image blocked"',
      });
      await waitFor(session, { role: 'button', name: 'Load images', within: UI.reader });
      await assertNoLeaks('after showing the HTML message');
      await shot(t, 'html');

      // Attachments: both listed by name.
      await openMessageIn(session, subjects['attachments.eml']);
      await waitFor(session, { text: 'Here are the meeting notes and the chart', within: UI.reader });
      const attachments = { role: 'list', name: 'Attachments', within: UI.reader };
      for (const name of ['notes.txt', 'chart.png']) {
        await waitFor(session, { role: 'link', name, within: attachments });
      }
      await shot(t, 'attachments');
    });

    step('4. download the attachments (the same bytes as sent), the message as .eml and the mailbox as mbox', 180_000, async (t) => {
      // Before the message opens: its object URLs are made then.
      await session.evaluate(catchDownloads);
      await openMessageIn(session, subjects['plain.eml']);
      await openMessageIn(session, subjects['attachments.eml']);
      const attachments = { role: 'list', name: 'Attachments', within: UI.reader };
      /** Clicks `target` and returns the download it started: `{ name, bytes: Buffer }`. */
      const download = async (target, what) => {
        const before = await session.evaluate(() => window.__e2eDownloads.length);
        await clickOn(session, target);
        const got = await waitUntil(
          async () => {
            const d = await session.evaluate((i) => window.__e2eDownloads[i] ?? null, before);
            return d && (d.bytes !== null || d.error !== null) ? d : null;
          },
          { what: `the download of ${what}` },
        );
        assert.equal(got.error, null, `${what}: reading the object URL failed: ${got.error}`);
        return { name: got.name, href: got.href, bytes: Buffer.from(got.bytes, 'base64') };
      };
      for (const name of ['chart.png', 'notes.txt']) {
        const file = await download({ role: 'link', name, within: attachments }, name);
        assert.equal(file.name, name);
        assert.match(file.href, /^blob:/, `${name} is saved from an object URL`);
        assert.deepEqual(file.bytes, fixture(path.join('attachments', name)), `${name}: the downloaded bytes equal the fixture`);
        writeFileSync(path.join(session.artifacts, `downloaded-${name}`), file.bytes);
      }
      // The message as .eml: the stored bytes, which are the server's.
      const eml = await download({ role: 'link', name: 'Download .eml', within: UI.reader }, 'the .eml');
      assert.match(eml.name, /\.eml$/);
      const emlBytes = eml.bytes.toString('latin1');
      assert.ok(emlBytes.includes(`Subject: ${subjects['attachments.eml']}`), 'the .eml is the message');
      assert.ok(emlBytes.includes('\r\n'), 'the .eml keeps the CRLF line ends');

      // The whole account as mbox (mboxrd): one "From " line per message, quoted ones inside.
      const mbox = await download({ role: 'button', name: 'Export mailbox (mbox)' }, 'the mbox');
      assert.match(mbox.name, /\.mbox$/);
      const mboxText = mbox.bytes.toString('latin1');
      const separators = mboxText.match(/^From /gm) ?? [];
      assert.equal(separators.length, env.e2e.count, 'one envelope line per stored message');
      t.diagnostic(`mbox: ${mbox.name}, ${mboxText.length} bytes, ${separators.length} messages`);
      const handles = await session.driver.getAllWindowHandles();
      assert.equal(handles.length, 1, 'no download opened a window');
      await shot(t, 'downloaded');
    });

    step('5. a hostile HTML message runs nothing and loads nothing', 240_000, async (t) => {
      await collectWatch();
      const firstRequest = requests.length;
      const errorsBefore = pageErrors.length;
      const pageUrl = await session.driver.getCurrentUrl();
      const windows = await session.driver.getAllWindowHandles();
      await session.evaluate(() => performance.setResourceTimingBufferSize(100_000));
      const resourcesBefore = await session.evaluate(() => performance.getEntriesByType('resource').length);

      await openMessageIn(session, subjects['hostile.eml']);
      await inMessage(async () => {
        await waitFor(session, { text: 'Hostile fixture: nothing here may run or load' });
        // What a reader might do: click the prize link and the form's button, if they survived.
        for (const target of [
          { role: 'link', name: 'Claim your prize' },
          { role: 'button', name: 'Submit your details' },
        ]) {
          const el = await query(session, target);
          if (el) await el.click().catch((e) => t.diagnostic(`click ${target.name}: ${e.message}`));
        }
      });

      // Nothing may happen, also a little later: no canary request, no dialog, no popup, no
      // request to another origin, no navigation.
      const foreign = (urls) => urls.filter((u) => u && !/^(data|blob|about):/.test(u) && new URL(u).origin !== web);
      await holdsFor(async () => {
        await assertNoLeaks('while the hostile message is shown');
        // A dialog would make every command fail ("unexpected alert open"); say it plainly.
        const dialog = await session.driver
          .switchTo()
          .alert()
          .then((a) => a.getText())
          .catch(() => null);
        assert.equal(dialog, null, 'no dialog opened');
        assert.deepEqual(await session.driver.getAllWindowHandles(), windows, 'no popup opened');
        if (bidi) {
          assert.deepEqual(foreign(requests.slice(firstRequest).map((r) => r.url)), [], 'no request left the page origin (BiDi)');
        } else {
          const urls = await session.evaluate((from) => performance.getEntriesByType('resource').slice(from).map((e) => e.name), resourcesBefore);
          assert.deepEqual(foreign(urls), [], 'no request left the page origin (resource timing)');
        }
        assert.equal(await session.driver.getCurrentUrl(), pageUrl, 'the page did not navigate');
      });

      assert.equal(await session.evaluate(() => typeof window.__pwned), 'undefined', 'window.__pwned is unset in the page');
      // Every frame of the page: still where it was put, and nothing set __pwned there.
      const frames = await session.evaluate(() => [...document.querySelectorAll('iframe')]);
      for (const frame of frames) {
        await session.driver.switchTo().frame(frame);
        try {
          const inside = await session.evaluate(() => ({ url: document.URL, pwned: window.__pwned === undefined ? null : String(window.__pwned) }));
          assert.ok(/^about:(srcdoc|blank)$/.test(inside.url) || new URL(inside.url).origin === web, `no frame navigated away (frame at ${inside.url})`);
          assert.equal(inside.pwned, null, `window.__pwned is unset in frame ${inside.url}`);
        } finally {
          await session.driver.switchTo().defaultContent();
        }
      }

      const iframe = await waitFor(session, messageFrame, { attached: true });
      const tokens = await sandboxTokensOf(session, iframe);
      assert.ok(tokens !== null, 'the message iframe is sandboxed');
      for (const forbidden of FORBIDDEN_SANDBOX_TOKENS) {
        assert.ok(!tokens.includes(forbidden), `the sandbox has no ${forbidden} (sandbox="${tokens.join(' ')}")`);
      }
      const srcdoc = await inspectSrcdocOf(session, iframe);
      t.diagnostic(`srcdoc: ${srcdoc.length} chars, CSP: ${JSON.stringify(srcdoc.policies)}`);
      assert.deepEqual(srcdoc.problems, [], 'the sanitized document has no scripts, handlers, script URLs, refresh or base');
      assert.ok(srcdoc.cspForbidsScripts, "the sanitized document carries a CSP whose script-src is 'none'");
      await collectWatch();
      assert.deepEqual(pageErrors.slice(errorsBefore), [], 'the page threw no errors');
      await shot(t, 'hostile');
    });

    step('6. relay stopped, reloaded (offline where the driver can): the list and the mail are still readable', 300_000, async (t) => {
      await collectWatch();
      const pageUrl = await session.driver.getCurrentUrl();
      const stopped = await testEnv.post('/relay/stop');
      relayStopped = true;
      t.diagnostic(`relay stopped: ${JSON.stringify(stopped)}`);
      // Nothing answers on the app's origin now: only the service worker can serve the reload.
      const direct = await fetch(env.web, { signal: AbortSignal.timeout(10_000) }).then(
        (r) => `HTTP ${r.status}`,
        (e) => `failed (${e.cause?.code ?? e.message})`,
      );
      assert.match(direct, /^failed/, `with the relay stopped, ${env.web} does not answer (${direct})`);
      offlineBy = await goOffline(true);
      how.offline = offlineBy ? `relay stopped + browser offline by ${offlineBy}` : 'relay stopped only (the driver cannot put the browser offline)';
      t.diagnostic(how.offline);
      // Opened again by its address, as a person would after closing the tab: WebDriver's
      // Refresh is a forced reload in Firefox (geckodriver), which bypasses the service worker
      // like Shift+Reload does.
      const reload = async () => {
        try {
          await session.goto(pageUrl);
        } catch (e) {
          throw new Error(`reloading with the relay stopped failed (is the app shell served by a service worker?): ${e.message}`);
        }
      };
      await reload();
      await installWatchNow();
      await waitUntil(() => session.evaluate((sel) => !!document.querySelector(sel), READY), {
        timeout: 90_000,
        what: 'the reloaded app to be ready (served by its service worker)',
      });
      const controlled = await session.evaluate(() => !!(navigator.serviceWorker && navigator.serviceWorker.controller));
      assert.ok(controlled, 'the reloaded page is controlled by the service worker');

      if (offlineBy) {
        await waitUntil(async () => ((await textOf(session, UI.connection)) ?? '').trim() === 'Offline', {
          what: 'the "Connection" status to say Offline',
        });
        await waitUntil(
          async () => session.driver.executeScript('return arguments[0].disabled', await waitFor(session, UI.syncNow)),
          { what: '"Sync now" to be disabled offline' },
        );
      } else {
        // Online as far as the browser knows, but the relay is gone. "Sync now" asks for the
        // password (not remembered across a reload), and the sync then fails in words.
        await clickOn(session, UI.syncNow);
        const prompt = { role: 'form', name: 'Password' };
        await typeInto(session, { role: 'textbox', nameStarts: 'Password for', within: prompt }, env.e2e.password);
        await clickOn(session, { role: 'button', name: 'Sync', within: prompt });
        const said = await waitUntil(
          async () => {
            const s = ((await textOf(session, UI.syncStatus)) ?? '').trim();
            return s && !/^\d+ of \d+ messages/.test(s) ? s : null;
          },
          { timeout: 120_000, what: 'the sync status to say why the sync failed' },
        );
        t.diagnostic(`"Sync now" with the relay stopped: ${JSON.stringify(said)}`);
        assert.doesNotMatch(said, /^Synced/, 'a sync with the relay stopped does not claim success');
        for (const raw of RAW) assert.ok(!said.includes(raw), `the sync status shows "${raw}": ${said}`);
      }

      await waitFor(session, { role: 'option', within: UI.list });
      const rows = await collectRowsIn(session);
      assert.equal(rows.length, env.e2e.count, `with the relay stopped, the list still holds ${env.e2e.count} rows`);

      // Search finds the oldest message; it opens from IndexedDB.
      await typeInto(session, UI.search, env.e2e.oldest_subject);
      await clickOn(session, { role: 'option', hasText: env.e2e.oldest_subject, within: UI.list });
      await waitFor(session, { role: 'heading', level: 2, name: env.e2e.oldest_subject, within: UI.reader });
      await typeInto(session, UI.search, '');

      await openMessageIn(session, subjects['plain.eml']);
      await waitFor(session, { text: 'The tomatoes are ripe and the fence is painted.', within: UI.reader });
      await openMessageIn(session, subjects['html.eml']);
      await inMessage(() => waitFor(session, { text: 'Hello from the HTML newsletter' }));
      await shot(t, 'offline');

      if (offlineBy) await goOffline(false);
      offlineBy = null;
      const started = await testEnv.post('/relay/start');
      assert.ok(started.ok, `the relay restarted: ${JSON.stringify(started)}`);
      relayStopped = false;
    });

    // The reader's srcdoc frame is governed by the page's Content-Security-Policy as well as its
    // own: remote images asked for must get through both (the step checks that no CSP refused
    // anything, like every step).
    step('7. "Load images" on the HTML message: the remote image loads under the page\'s policy', 120_000, async (t) => {
      await openMessageIn(session, subjects['html.eml']);
      await inMessage(() => waitFor(session, { text: 'Hello from the HTML newsletter' }));
      const canaryAt = (await testEnv.canaryLog()).length;
      await clickOn(session, { role: 'button', name: 'Load images', within: UI.reader });
      await waitUntil(
        async () => (await testEnv.canaryLog()).slice(canaryAt).some((r) => r.path === '/newsletter/remote-banner.png'),
        { what: 'the canary to see the remote banner requested' },
      );
      await waitUntil(
        () =>
          inMessage(async () => {
            const banner = await query(session, { role: 'img', name: 'Remote banner' }, { attached: true });
            return banner && session.driver.executeScript('return arguments[0].complete && arguments[0].naturalWidth > 0', banner);
          }),
        { what: 'the remote banner to be shown' },
      );
      // Inline styles and the cid: image still apply after the frame is rebuilt.
      const logoShown = await inMessage(async () => {
        const logo = await waitFor(session, { role: 'img', name: 'Inline logo' }, { attached: true });
        return session.driver.executeScript('return arguments[0].complete && arguments[0].naturalWidth > 0', logo);
      });
      assert.ok(logoShown, 'the cid: image is shown');
      await shot(t, 'images-loaded');
    });
  });
}
