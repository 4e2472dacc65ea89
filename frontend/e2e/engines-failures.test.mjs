// The known ways signing in fails, walked in every engine (Chromium, Firefox ESR, WebKitGTK
// through lib/engines.mjs): each is explained in words in the form's alert, and no visible text
// is a JsValue, a Rust Debug text or a JavaScript stack. Against the e2e test env (a relay,
// Dovecot and odd POP3 servers on 127.0.0.1; lib/env.mjs).
//
//   WEBPOP_ENGINES=firefox node --test --test-concurrency=1 frontend/e2e/engines-failures.test.mjs
//
// The bug this guards (issue 13): WebKitGTK showed "The mail store failed: JsValue(TypeError: …)"
// and a stack trace; a relay that could not be reached read "code 1006: ".

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startEnv, e2eAccount } from './lib/env.mjs';
import { ENGINES, launch } from './lib/engines.mjs';
import { waitUntil } from './lib/wait.mjs';
import { READY, UI, clickOn, textOf, waitFor, fillAccountFormIn } from './lib/ui.mjs';

const SELECTED = (process.env.WEBPOP_ENGINES || ENGINES.join(',')).split(',').map((e) => e.trim()).filter(Boolean);

/** What a person must never read. */
const RAW = ['JsValue', 'Error(', '@http', 'at http', 'wasm-function', 'undefined is not'];

let testEnv;
let env;

before(
  async () => {
    testEnv = await startEnv();
    env = testEnv.env;
  },
  { timeout: 300_000 },
);

after(
  async () => {
    if (testEnv) {
      await testEnv.post('/relay/start').catch(() => {});
      await testEnv.stop();
    }
  },
  { timeout: 60_000 },
);

/** The ways to fail, each with the words the alert must hold. */
function failures() {
  const dovecot = e2eAccount(env);
  const expired = env.expired_cert;
  return [
    { name: 'a wrong password', account: { ...dovecot, password: 'certainly-not-the-password' }, words: /password/i },
    { name: 'a port the relay does not allow', account: { ...dovecot, port: 25 }, words: /does not allow/i },
    {
      name: 'TLS to a server that speaks plain POP3',
      account: { ...dovecot, port: env.pop3_port },
      words: /secure connection|TLS|encrypt/i,
    },
    {
      name: 'an expired certificate',
      account: {
        email: `${expired.user}@localhost`,
        user: expired.user,
        password: expired.password,
        server: expired.host,
        port: expired.pop3s_port,
        security: 'tls',
        fingerprint: '',
      },
      words: /expired/i,
    },
    {
      name: 'the relay cannot be reached',
      account: dovecot,
      words: /could not reach the relay/i,
      before: () => testEnv.post('/relay/stop'),
      // The relay also serves the web app: a restart that failed would leave the next engine
      // without it, so say so here rather than as an app that is never ready.
      after: async () => {
        const started = await testEnv.post('/relay/start');
        if (!started?.ok) throw new Error(`the relay did not start again: ${JSON.stringify(started)}`);
      },
    },
  ];
}

for (const engine of SELECTED) {
  describe(`failures in words in ${engine}`, { concurrency: 1 }, () => {
    let session;
    before(
      async () => {
        session = await launch(engine, { label: 'failures' });
        await session.goto(env.web);
        try {
          await waitUntil(() => session.evaluate((sel) => !!document.querySelector(sel), READY), {
            timeout: 90_000,
            what: 'the app to be ready',
          });
        } catch (e) {
          // What the browser shows instead (an error page, a stuck start-up) goes to the artifacts.
          await session.screenshot('00-not-ready').catch(() => {});
          const text = await session.text().catch(() => '');
          throw new Error(`${e.message}; the page shows: ${JSON.stringify(text.slice(0, 300))}`);
        }
        await waitFor(session, UI.form);
      },
      { timeout: 180_000 },
    );
    after(async () => {
      if (session) await session.close();
    });

    test('every known failure is explained in words', { timeout: 600_000 }, async (t) => {
      const alert = { role: 'alert', within: UI.form };
      const addAccount = { role: 'button', name: 'Add account', within: UI.form };
      let previous = '';
      for (const [i, failure] of failures().entries()) {
        if (failure.before) await failure.before();
        try {
          await fillAccountFormIn(session, failure.account);
          await clickOn(session, addAccount);
          await waitUntil(
            async () => {
              const text = ((await textOf(session, alert)) ?? '').trim();
              return text !== previous && failure.words.test(text);
            },
            { timeout: 120_000, what: `the form's alert about ${failure.name} (${failure.words})` },
          );
        } finally {
          if (failure.after) await failure.after();
        }
        previous = ((await textOf(session, alert)) ?? '').trim();
        t.diagnostic(`${failure.name}: ${previous}`);
        await session.screenshot(`${String(i + 1).padStart(2, '0')}-${failure.name.replace(/[^a-z0-9]+/gi, '-')}`);
        const visible = await session.text();
        for (const raw of RAW) {
          assert.ok(!visible.includes(raw), `${failure.name}: the page shows "${raw}":\n${visible}`);
        }
      }
    });
  });
}
