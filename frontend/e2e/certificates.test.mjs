// Certificates in the browser, in every engine (lib/engines.mjs: Chromium, Firefox ESR and
// WebKitGTK through W3C WebDriver): the built web app, served by the relay of `webpop-test-env`,
// against two POP3S servers of that env (FaultyPop3, see lib/env.mjs): `expired_cert`, whose
// self-signed certificate is past its dates, and `cert_change`, whose certificate the env's
// control API replaces and restores. One env serves every engine; each engine has a fresh
// browser profile.
//
//   WEBPOP_ENGINES=chromium,firefox,webkit node --test --test-concurrency=1 frontend/e2e/certificates.test.mjs
//
// What it proves, end to end (the rules are shared/src/session/trust.rs, the words
// frontend/src/state/explain.rs): "Trust this certificate" is offered only for a certificate
// no authority vouches for; any other refused certificate (here: an expired one) is explained
// in words, with no offer, and nothing is stored and no password sent; a pin means exactly the
// certificate trusted, so when the server presents another one the sync stops with the
// "certificate changed" explanation, sends no password, is not re-trusted by trying again, and
// works again as soon as the pinned certificate is back.
//
// The wasm app trusts only webpki-roots, so a "CA-signed but wrong" certificate cannot be made
// here; an expired self-signed one is refused as expired, not as self-signed (rustls-webpki
// checks a certificate's dates before its issuer: shared/tests/certificate_trust.rs,
// `an_expired_self_signed_certificate_is_not_offered_for_trust`).
//
// Page errors: BiDi log.entryAdded (type "javascript") where the driver has BiDi; in WebKitGTK
// (no BiDi) an `error`/`unhandledrejection` listener installed after each load.
//
// Screenshots, browser.log and certificates-timings.json go to <artifacts>/<engine>/certificates/
// (WEBPOP_E2E_ARTIFACTS, default target/e2e-artifacts).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { startEnv, colonHex } from './lib/env.mjs';
import { ENGINES, launch } from './lib/engines.mjs';
import { waitUntil } from './lib/wait.mjs';
import {
  READY,
  UI,
  ACCOUNT_FIELDS,
  query,
  waitFor,
  waitGone,
  textOf,
  clickOn,
  typeInto,
  fillAccountFormIn,
  failureEvidence,
} from './lib/ui.mjs';

const SELECTED = (process.env.WEBPOP_ENGINES || ENGINES.join(',')).split(',').map((e) => e.trim()).filter(Boolean);

const TRUST = 'Trust this certificate';
// What a Rust value printed for a programmer looks like: never for a person.
const DEBUG_TEXT = /JsValue|[{}]|::|\b(Some|None|Ok|Err)\b|\w+Context\b|\w+Error\b/;

const FORM_ALERT = { role: 'alert', within: UI.form };
const ADD_IN_FORM = { role: 'button', name: 'Add account', within: UI.form };
const TRUST_IN_FORM = { role: 'button', name: TRUST, within: UI.form };
const ACCOUNT_PICKER = { role: 'combobox', name: 'Account' };

/** The eight four-byte groups a fingerprint is shown in: `AB:CD:EF:01`, … */
function groupsOf(fingerprint) {
  return colonHex(fingerprint).match(/..(:..){3}/g);
}

/** Runs in the page: records uncaught errors (for engines without BiDi). */
function watchErrors() {
  if (window.__e2eErrors) return;
  const errors = [];
  window.__e2eErrors = errors;
  window.addEventListener('error', (e) => errors.push(`error ${e.message} at ${e.filename}:${e.lineno}`));
  window.addEventListener('unhandledrejection', (e) => errors.push(`unhandledrejection ${e.reason && (e.reason.stack || e.reason)}`));
}


let testEnv;
let env;

before(
  async () => {
    testEnv = await startEnv();
    env = testEnv.env;
    for (const server of ['expired_cert', 'cert_change']) {
      assert.ok(
        env[server],
        `the test env has no ${server} server: rebuild it (cargo build -p webpop-testkit --bin webpop-test-env)`,
      );
    }
    console.log(`# web app: ${env.web}; engines: ${SELECTED.join(', ')}`);
  },
  { timeout: 300_000 },
);

after(
  async () => {
    // Leave the env as found: the certificate server presents its first certificate.
    if (testEnv) await testEnv.post('/cert-change/restore').catch(() => {});
    if (testEnv) await testEnv.stop();
  },
  { timeout: 120_000 },
);

/** Connections and logins at one of the env's FaultyPop3 servers. */
const stats = (server) => testEnv.get(`/stats/${server}`);

for (const engine of SELECTED) {
  describe(`certificates in ${engine} (relay, POP3S servers with odd certificates)`, { concurrency: 1 }, () => {
    let session;
    let bidi = false;
    const pageErrors = [];
    const timings = { engine, tests: {} };
    let t0;

    /** A test that saves a screenshot (and the status lines) when it fails; timed. */
    function check(name, timeout, body) {
      test(name, { timeout }, async (t) => {
        const started = Date.now();
        try {
          assert.ok(session, `${engine} did not start`);
          await body(t);
        } catch (e) {
          if (session) await failureEvidence(session, t, name.replace(/_/g, '-').slice(0, 53), e.message);
          throw e;
        } finally {
          timings.tests[name] = (Date.now() - started) / 1000;
        }
      });
    }

    async function shot(t, name) {
      t.diagnostic(`screenshot: ${await session.screenshot(name)}`);
    }

    /** Waits until the app says it is ready; without BiDi, starts watching for page errors. */
    async function waitReady() {
      await session.waitFor({ css: READY }, { timeout: 90_000 });
      if (!bidi) await session.evaluate(watchErrors);
    }

    /** Uncaught errors in the page so far. */
    async function errorsSoFar() {
      if (bidi) {
        for (const entry of session.console) {
          if (entry.type === 'javascript' && !pageErrors.includes(entry.text)) pageErrors.push(entry.text);
        }
      } else {
        const seen = (await session.evaluate('return (window.__e2eErrors || []).splice(0)')) ?? [];
        pageErrors.push(...seen);
      }
      return pageErrors;
    }

    /** The "Add account" form filled for `server` (from /env), implicit TLS, nothing pinned. */
    async function fillFor(server) {
      await waitFor(session, UI.form);
      await fillAccountFormIn(session, {
        email: `${server.user}@localhost`,
        user: server.user,
        password: server.password,
        server: server.host,
        port: server.pop3s_port,
        security: 'tls',
        fingerprint: '',
      });
    }

    /** The fingerprint groups the form's alert shows, read from the page. */
    async function shownGroups() {
      const code = await waitFor(session, { role: 'code', within: FORM_ALERT });
      return session.evaluate((el) => [...el.children].map((g) => g.textContent), code);
    }

    /** Whether a "Trust this certificate" button is anywhere in the page (hidden ones too). */
    async function trustButtons() {
      return (await query(session, { role: 'button', name: TRUST }, { attached: true })) === null ? 0 : 1;
    }

    async function syncNow() {
      await waitUntil(
        async () => {
          const button = await query(session, UI.syncNow);
          return button && !(await session.evaluate((el) => el.disabled, button));
        },
        { what: '"Sync now" to be enabled' },
      );
      await clickOn(session, UI.syncNow);
    }

    /** Waits for the sync status to match `wanted`; returns its text. */
    async function statusMatching(wanted, what, timeout = 120_000) {
      return waitUntil(
        async () => {
          const text = ((await textOf(session, UI.syncStatus)) ?? '').trim();
          return wanted.test(text) && text;
        },
        { timeout, interval: 250, what },
      );
    }

    before(
      async () => {
        t0 = Date.now();
        session = await launch(engine, { label: 'certificates' });
        bidi = session.info.bidi;
        timings.browser = `${session.info.browserName} ${session.info.browserVersion}`;
        await session.goto(env.web);
        await waitReady();
        timings.ready = (Date.now() - t0) / 1000;
        console.log(`# ${engine}: ${timings.browser}, BiDi ${bidi ? 'yes' : 'no'}; artifacts ${session.artifacts}`);
      },
      { timeout: 300_000 },
    );

    after(
      async () => {
        if (testEnv) await testEnv.post('/cert-change/restore').catch(() => {});
        if (session) {
          await session.close();
          timings.total = (Date.now() - t0) / 1000;
          writeFileSync(path.join(session.artifacts, 'certificates-timings.json'), JSON.stringify(timings, null, 2));
          console.log(`# ${engine}: ${timings.total.toFixed(1)} s in all; ${JSON.stringify(timings.tests)}`);
        }
      },
      { timeout: 120_000 },
    );

    check('a_certificate_that_may_not_be_trusted_offers_no_trust_button', 180_000, async (t) => {
      const server = env.expired_cert;
      const before = await stats('expired_cert');
      await fillFor(server);
      await clickOn(session, ADD_IN_FORM);

      const text = await waitUntil(
        async () => {
          const shown = ((await textOf(session, FORM_ALERT)) ?? '').trim();
          return /certificate problem/i.test(shown) && shown;
        },
        { timeout: 90_000, what: 'an alert in the form about the certificate' },
      );
      t.diagnostic(`alert: ${text}`);
      // The reason and what to do, in words.
      assert.match(text, /refused because it has expired/);
      assert.match(text, /cannot be trusted from here/);
      assert.match(text, /Nothing was sent to the server/);
      assert.doesNotMatch(text, DEBUG_TEXT, 'no programmer text (Debug output, JsValue) in the alert');
      // The refused certificate, in groups to compare, and no offer to trust it.
      assert.deepEqual(await shownGroups(), groupsOf(server.cert_sha256));
      assert.equal(await trustButtons(), 0, `no "${TRUST}" button`);
      await shot(t, 'expired-refused');

      // The server was reached, and the password never sent.
      const after = await stats('expired_cert');
      assert.ok(after.connections > before.connections, 'the browser reached the server');
      assert.equal(after.logins, before.logins, 'no login: the password was not sent');

      // Nothing is stored: after a reload there is still no account.
      await errorsSoFar();
      await session.driver.navigate().refresh();
      await waitReady();
      await waitFor(session, UI.form);
      assert.equal(await query(session, ACCOUNT_PICKER, { attached: true }), null, 'no account stored');
      assert.equal(await query(session, UI.syncNow, { attached: true }), null, 'nothing to sync');
      assert.deepEqual(await errorsSoFar(), [], 'the page threw no errors');
    });

    check('a_changed_pinned_certificate_stops_with_an_explanation', 300_000, async (t) => {
      // The certificate presented now (the env may have been used before).
      const first = (await testEnv.post('/cert-change/restore')).cert_sha256;
      const server = { ...(await testEnv.get('/env')).cert_change, cert_sha256: first };
      const label = new RegExp(`${server.user}@localhost`);

      // Self-signed: explained, its groups shown, offered for trust; trusting it pins it.
      await fillFor(server);
      await clickOn(session, ADD_IN_FORM);
      await waitFor(session, TRUST_IN_FORM, { timeout: 90_000 });
      assert.match((await textOf(session, FORM_ALERT)) ?? '', /not signed by an authority webpop knows/);
      assert.deepEqual(await shownGroups(), groupsOf(first), 'the fingerprint in eight groups');
      await shot(t, 'self-signed-offered');
      await clickOn(session, TRUST_IN_FORM);
      await waitGone(session, UI.form, { timeout: 90_000 });
      await statusMatching(
        new RegExp(`Synced ${server.count} new messages for ${label.source}`),
        `the first sync to store ${server.count} messages`,
      );
      const trusted = await stats('cert_change');
      assert.ok(trusted.logins >= 1, 'signed in with the pinned certificate');

      // The server's certificate changes: the next sync stops, explained, with no offer.
      const replaced = await testEnv.post('/cert-change/replace');
      assert.ok(replaced.ok, JSON.stringify(replaced));
      assert.notEqual(replaced.cert_sha256, first);
      for (const attempt of ['changed', 'changed-again']) {
        // The second round: trying again stops the same way, nothing is re-trusted.
        const connections = (await stats('cert_change')).connections;
        await syncNow();
        await waitUntil(async () => (await stats('cert_change')).connections > connections, {
          what: 'the sync to reach the server',
        });
        const text = await statusMatching(/Certificate changed/, 'the sync status to say "Certificate changed"');
        t.diagnostic(`status: ${text}`);
        assert.match(text, label);
        assert.match(text, /different certificate from the one you trusted/);
        assert.match(text, /stopped before sending your password/);
        // bug: the words said "only if it is the one below" and the status line showed no
        // fingerprint at all: the certificate presented, in groups, is part of the status.
        assert.ok(
          text.includes(groupsOf(replaced.cert_sha256).join(' ')),
          `the status shows the presented certificate's fingerprint in groups: ${text}`,
        );
        assert.doesNotMatch(text, /\bbelow\b/, 'nothing points at a fingerprint block the status line does not have');
        assert.doesNotMatch(text, DEBUG_TEXT, 'no programmer text in the status');
        assert.equal(await trustButtons(), 0, `no "${TRUST}" button`);
        assert.equal((await stats('cert_change')).logins, trusted.logins, 'no login: the password was not sent');
        await shot(t, attempt);
      }

      // The pin is still exactly the first certificate: back, and the sync signs in again.
      const restored = await testEnv.post('/cert-change/restore');
      assert.equal(restored.cert_sha256, first);
      await syncNow();
      await statusMatching(new RegExp(`Synced 0 new messages for ${label.source}`), 'a sync with the first certificate back');
      // (At least once: the app's own schedule may also have synced by now.)
      const restoredLogins = (await stats('cert_change')).logins;
      assert.ok(restoredLogins > trusted.logins, 'signed in again');
      await shot(t, 'restored');

      // What the words advise works: having compared the new fingerprint, the person adds the
      // account again with it, and that certificate is the one accepted from then on.
      const renewed = await testEnv.post('/cert-change/replace');
      await clickOn(session, { role: 'button', name: 'Add account' });
      await fillFor({ ...server, cert_sha256: renewed.cert_sha256 });
      await typeInto(session, ACCOUNT_FIELDS.fingerprint, colonHex(renewed.cert_sha256));
      await clickOn(session, ADD_IN_FORM);
      await waitGone(session, UI.form, { timeout: 90_000 });
      await statusMatching(new RegExp(`Synced \\d+ new messages? for ${label.source}`), 'a sync with the new pin');
      assert.ok((await stats('cert_change')).logins > restoredLogins, 'signed in with the new pin');
      const picker = await waitFor(session, ACCOUNT_PICKER);
      const accounts = await session.evaluate((el) => [...el.options].map((o) => o.textContent), picker);
      assert.deepEqual(accounts, ['All accounts', `${server.user}@localhost`], 'still one account');
      assert.deepEqual(await errorsSoFar(), [], 'the page threw no errors');
      await shot(t, 'pinned-anew');
    });
  });
}
