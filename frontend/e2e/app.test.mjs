// webpop end to end: real headless Chromium (Debian's, driven by playwright-core), the real relay
// serving the built web app (dist/) and /relay on one origin, and a real Dovecot, all started by
// `webpop-test-env` on 127.0.0.1 (see lib/env.mjs).
//
//   node --test --test-reporter=spec frontend/e2e/app.test.mjs
//
// The steps run in order in ONE browser context and build on each other: add an account, sync
// 204 messages (200 generated + the 4 fixtures in fixtures/), read plain, HTML and attachment
// mail, download an attachment, open a hostile message, read everything offline with the
// relay stopped, then load an HTML message's remote images. A step after a failed one is
// skipped; after every step, no Content Security Policy may have refused anything in any frame
// (lib/csp.mjs). Every step saves a screenshot to target/e2e-artifacts/ (WEBPOP_E2E_ARTIFACTS),
// a failing one `NN-…-FAILED.png`; the browser's console and every request it made go to
// browser.log there.
//
// Selection is by role and accessible name only, as the UI contract defines them.
//
// Remote URLs in the fixtures point at a "canary" HTTP server of the test env on 127.0.0.1: if
// anything in a shown message loads, the canary sees it and the test fails. The harness step
// proves the canary is reachable from this browser, so "the canary saw nothing" means something.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';

import { startEnv, colonHex, FIXTURES } from './lib/env.mjs';
import { launch, screenshot, artifactsDir } from './lib/browser.mjs';
import { waitUntil, holdsFor } from './lib/wait.mjs';
import { attachmentFromEml } from './lib/mime.mjs';
import {
  ui,
  waitReady,
  accountFields,
  fillAccountForm,
  recordProgress,
  progressRecord,
  collectRows,
  openMessage,
  sandboxTokens,
  inspectSrcdoc,
  FORBIDDEN_SANDBOX_TOKENS,
} from './lib/ui.mjs';

// Canary paths the harness itself requests (the positive control); everything else is a leak.
const HARNESS_PREFIX = '/harness/';

const fixture = (name) => readFileSync(path.join(FIXTURES, name));

describe('webpop end to end (Chromium, relay, Dovecot)', { concurrency: 1 }, () => {
  const artifacts = artifactsDir();
  let testEnv; // handle from startEnv
  let env; // its /env JSON
  let browser;
  let context;
  let page;
  let record; // dialogs, popups, requests, page errors
  let web; // the page's origin, e.g. http://127.0.0.1:41234
  let subjects; // fixture file name → subject
  let relayStopped = false;
  let broken = null; // the first step that failed: later steps are skipped

  /** One ordered step: skipped after a failure, screenshot on failure. */
  function step(name, timeout, body) {
    test(name, { timeout }, async (t) => {
      if (broken) {
        t.skip(`an earlier step failed: ${broken}`);
        return;
      }
      try {
        await body(t);
        // The app must work under its Content-Security-Policy without one refusal, in any
        // frame, at any time: checked after every step.
        assert.deepEqual(
          record.csp.violations(),
          [],
          'no Content Security Policy violation so far (console or securitypolicyviolation)',
        );
      } catch (e) {
        broken = name;
        const slug = name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();
        if (page) {
          const file = await screenshot(page, artifacts, `${slug}-FAILED`).catch(() => null);
          if (file) t.diagnostic(`screenshot: ${file}`);
        }
        throw e;
      }
    });
  }

  /** Canary requests other than the harness's own positive control. */
  async function leaks() {
    const log = await testEnv.canaryLog();
    return log.filter((r) => !r.path.startsWith(HARNESS_PREFIX));
  }

  async function assertNoLeaks(when) {
    const seen = await leaks();
    assert.deepEqual(
      seen.map((r) => `${r.method} ${r.path} (${r.fetch_dest ?? '?'})`),
      [],
      `${when}: the canary must see no request`,
    );
  }

  before(
    async () => {
      testEnv = await startEnv();
      env = testEnv.env;
      web = new URL(env.web).origin;
      subjects = Object.fromEntries(env.e2e.fixtures.map((f) => [f.file, f.subject]));
      for (const file of ['plain.eml', 'html.eml', 'attachments.eml', 'hostile.eml']) {
        assert.ok(subjects[file], `the test env loaded fixture ${file}`);
      }
      ({ browser, context, page, record } = await launch({ artifacts }));
      console.log(`# artifacts: ${artifacts}`);
      console.log(`# web app: ${env.web}  control: ${testEnv.control}  canary: ${env.canary}`);
    },
    { timeout: 300_000 },
  );

  after(
    async () => {
      // Leave the env as found: online, relay running.
      if (context) await context.setOffline(false).catch(() => {});
      if (testEnv && relayStopped) await testEnv.post('/relay/start').catch(() => {});
      if (testEnv) {
        const log = await testEnv.canaryLog().catch(() => []);
        writeFileSync(path.join(artifacts, 'canary.json'), JSON.stringify(log, null, 2));
      }
      if (record) {
        writeFileSync(path.join(artifacts, 'requests.json'), JSON.stringify(record.requests, null, 2));
      }
      if (browser) await browser.close().catch(() => {});
      if (testEnv) await testEnv.stop();
    },
    { timeout: 120_000 },
  );

  step('0. harness: the relay serves the web app, the canary is reachable, fixtures are sound', 180_000, async (t) => {
    // Fixtures: the attachments in attachments.eml are exactly the files next to it.
    const eml = fixture('attachments.eml');
    for (const name of ['notes.txt', 'chart.png']) {
      assert.deepEqual(
        attachmentFromEml(eml, name),
        fixture(path.join('attachments', name)),
        `attachments.eml carries fixtures/attachments/${name}`,
      );
    }
    assert.equal(env.e2e.count, env.e2e.corpus + env.e2e.fixtures.length);

    // Positive control: this browser can reach the canary (so silence later means something).
    const probe = await context.newPage();
    try {
      await probe.setContent(
        `<img src="${env.canary}${HARNESS_PREFIX}positive-control.png" alt="probe">`,
      );
      await waitUntil(
        async () =>
          (await testEnv.canaryLog()).some((r) => r.path === `${HARNESS_PREFIX}positive-control.png`),
        { what: 'the canary to see the positive control request' },
      );
    } finally {
      await probe.close();
    }
    await assertNoLeaks('before the web app is loaded');

    // Positive control for the CSP check after every step: an inline script the relay's policy
    // refuses, in a document it served, is seen both in the console and as a
    // securitypolicyviolation event. (Then forgotten: it was asked for.)
    const cspFrom = record.csp.reports.length;
    const control = await context.newPage();
    try {
      await control.goto(`${web}/healthz`);
      await control.evaluate(() => {
        const script = document.createElement('script');
        script.textContent = 'window.__cspControl = 1;';
        document.documentElement.append(script);
      });
      await waitUntil(
        () => {
          const texts = record.csp.reports.slice(cspFrom).map((r) => r.text);
          return (
            texts.some((t) => /inline script/i.test(t) && !t.startsWith('webpop-e2e')) &&
            texts.some((t) => /securitypolicyviolation script-src/.test(t))
          );
        },
        { what: 'the CSP watch to see the refused inline script (console and event)' },
      );
      assert.equal(await control.evaluate(() => window.__cspControl), undefined, 'the inline script did not run');
    } finally {
      await control.close();
    }
    record.csp.reports.splice(cspFrom);

    // The page, served by the relay from dist/, same origin as /relay.
    const response = await page.goto(env.web, { waitUntil: 'load' });
    assert.ok(response && response.ok(), `GET ${env.web} answered ${response && response.status()}`);
    assert.equal(new URL(page.url()).origin, web);
    await page.getByRole('heading', { level: 1, name: 'webpop' }).waitFor({ state: 'visible' });
    t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '00-page-loaded')}`);
  });

  step('1. add an account (a wrong password, then an untrusted certificate first)', 240_000, async (t) => {
    await waitReady(page);
    const { form } = ui(page);
    await form.waitFor({ state: 'visible' });
    const account = {
      email: `${env.e2e.user}@localhost`,
      user: env.e2e.user,
      password: 'certainly-not-the-password',
      server: env.host,
      port: env.pop3s_port,
      security: 'tls',
      fingerprint: colonHex(env.cert_sha256),
    };

    await fillAccountForm(form, account);
    await form.getByRole('button', { name: 'Add account', exact: true }).click();
    const alert = form.getByRole('alert');
    await waitUntil(async () => /password/i.test((await alert.textContent()) ?? ''), {
      timeout: 90_000,
      what: 'an alert in the form about the password',
    });
    t.diagnostic(`alert: ${(await alert.textContent()).trim()}`);
    t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '01a-wrong-password')}`);

    // The right password but no pinned certificate: the self-signed certificate is refused,
    // explained, and its fingerprint offered to trust.
    await accountFields(form).password.fill(env.e2e.password);
    await accountFields(form).fingerprint.fill('');
    await form.getByRole('button', { name: 'Add account', exact: true }).click();
    await waitUntil(async () => /certificate problem/i.test((await alert.textContent()) ?? ''), {
      timeout: 90_000,
      what: 'an alert in the form about the certificate',
    });
    const shown = (await alert.textContent()) ?? '';
    t.diagnostic(`alert: ${shown.trim()}`);
    assert.ok(shown.includes(colonHex(env.cert_sha256)), 'the alert shows the certificate fingerprint');
    t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '01b-certificate-problem')}`);

    // Watch the progress bar from before the sync starts: it may be quick.
    await recordProgress(page);
    // Trusting it pins the fingerprint and signs in again.
    await form.getByRole('button', { name: 'Trust this certificate', exact: true }).click();

    // A picture of the sync under way, when it can be caught (not an assertion: step 2 checks).
    const midway = await waitUntil(
      async () => (await progressRecord(page)).values.some((v) => v > 0 && v < 1),
      { timeout: 60_000, interval: 50, what: 'the sync to be under way' },
    ).catch(() => false);
    if (midway) {
      t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '01c-syncing')}`);
    }
    await form.waitFor({ state: 'hidden', timeout: 90_000 });
    t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '01d-account-added')}`);
  });

  step('2. the first sync: the progress bar moves, 204 messages arrive', 480_000, async (t) => {
    const { list, syncStatus } = ui(page);
    const total = env.e2e.count;
    await waitUntil(
      async () => new RegExp(`Synced\\s+${total}\\b`).test((await syncStatus.textContent()) ?? ''),
      { timeout: 420_000, interval: 500, what: `the sync status to say "Synced ${total} new messages"` },
    );
    const seen = await progressRecord(page);
    t.diagnostic(`progress values seen: ${JSON.stringify(seen.values)}`);
    t.diagnostic(`status texts seen: ${seen.statuses.length} (e.g. ${JSON.stringify(seen.statuses.slice(0, 3))})`);
    const values = [...new Set(seen.values)].filter((v) => v >= 0 && v <= 1);
    assert.ok(values.length >= 2, `the progress bar took at least two values (${JSON.stringify(seen.values)})`);
    assert.ok(
      values.some((v) => v > 0 && v < 1),
      `the progress bar showed a value strictly between 0 and 1 (${JSON.stringify(seen.values)})`,
    );

    await list.getByRole('option').first().waitFor({ state: 'visible' });
    const rows = await collectRows(list);
    assert.equal(rows.length, total, `the list holds ${total} rows (saw ${rows.length})`);
    for (const subject of Object.values(subjects)) {
      assert.ok(rows.slice(0, 8).some((r) => r.includes(subject)), `"${subject}" is near the top (newest)`);
    }
    assert.ok(rows.some((r) => r.includes(env.e2e.oldest_subject)), 'the oldest message is listed');
    await assertNoLeaks('after the sync');
    t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '02-synced')}`);
  });

  step('3. read a plain, an HTML and an attachments message', 240_000, async (t) => {
    const { reader } = ui(page);

    // Plain text: shown as text, markup in it stays text.
    await openMessage(page, subjects['plain.eml']);
    await reader.getByText('The tomatoes are ripe and the fence is painted.').waitFor({ state: 'visible' });
    await reader.getByText('<script>this is not code</script>', { exact: false }).waitFor({ state: 'visible' });
    t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '03a-plain')}`);

    // HTML: in the sandboxed frame; the cid: image inline as data:, the remote one blocked.
    await openMessage(page, subjects['html.eml']);
    const iframe = reader.getByTitle('Message content');
    await iframe.waitFor({ state: 'attached' });
    const content = iframe.contentFrame();
    await content.getByText('Hello from the HTML newsletter').waitFor({ state: 'visible' });
    const logo = content.getByRole('img', { name: 'Inline logo' });
    await logo.waitFor({ state: 'attached' });
    const src = await logo.getAttribute('src');
    assert.ok(src && src.startsWith('data:image/png'), `the cid: image is a data: URL (src=${src && src.slice(0, 40)})`);
    await reader.getByText(/\b1 remote images? blocked/i).waitFor({ state: 'visible' });
    await reader.getByRole('button', { name: 'Load images' }).waitFor({ state: 'visible' });
    await assertNoLeaks('after showing the HTML message');
    t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '03b-html')}`);

    // Attachments: both listed by name.
    await openMessage(page, subjects['attachments.eml']);
    await reader.getByText('Here are the meeting notes and the chart').waitFor({ state: 'visible' });
    const attachments = reader.getByRole('list', { name: 'Attachments' });
    for (const name of ['notes.txt', 'chart.png']) {
      await attachments.getByRole('link', { name }).waitFor({ state: 'visible' });
    }
    t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '03c-attachments')}`);
  });

  step('4. download the attachments (the same bytes as sent), the message as .eml and the mailbox as mbox', 120_000, async (t) => {
    await openMessage(page, subjects['attachments.eml']);
    const attachments = ui(page).reader.getByRole('list', { name: 'Attachments' });
    for (const name of ['chart.png', 'notes.txt']) {
      const link = attachments.getByRole('link', { name });
      const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
      const file = await download.path();
      assert.equal(download.suggestedFilename(), name);
      const expected = fixture(path.join('attachments', name));
      assert.deepEqual(readFileSync(file), expected, `${name}: the downloaded bytes equal the fixture`);
      copyFileSync(file, path.join(artifacts, `04-downloaded-${name}`));
    }
    // The message as .eml: the stored bytes, which are the server's.
    const [eml] = await Promise.all([
      page.waitForEvent('download'),
      ui(page).reader.getByRole('link', { name: 'Download .eml' }).click(),
    ]);
    assert.match(eml.suggestedFilename(), /\.eml$/);
    const emlBytes = readFileSync(await eml.path()).toString('latin1');
    assert.ok(emlBytes.includes(`Subject: ${subjects['attachments.eml']}`), 'the .eml is the message');
    assert.ok(emlBytes.includes('\r\n'), 'the .eml keeps the CRLF line ends');

    // The whole account as mbox (mboxrd): one "From " line per message, quoted ones inside.
    const [mbox] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export mailbox (mbox)' }).click(),
    ]);
    assert.match(mbox.suggestedFilename(), /\.mbox$/);
    const mboxText = readFileSync(await mbox.path()).toString('latin1');
    const separators = mboxText.match(/^From /gm) ?? [];
    assert.equal(separators.length, env.e2e.count, 'one envelope line per stored message');
    t.diagnostic(`mbox: ${mbox.suggestedFilename()}, ${mboxText.length} bytes, ${separators.length} messages`);
    t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '04-downloaded')}`);
  });

  step('5. a hostile HTML message runs nothing and loads nothing', 240_000, async (t) => {
    const { reader } = ui(page);
    const firstRequest = record.requests.length;
    const dialogsBefore = record.dialogs.length;
    const popupsBefore = record.popups.length;
    const errorsBefore = record.pageErrors.length;
    const pageUrl = page.url();

    await openMessage(page, subjects['hostile.eml']);
    const iframe = reader.getByTitle('Message content');
    await iframe.waitFor({ state: 'attached' });
    const content = iframe.contentFrame();
    await content.getByText('Hostile fixture: nothing here may run or load').waitFor({ state: 'visible' });

    // What a reader might do: click the prize link and the form's button, if they survived.
    for (const target of [
      content.getByRole('link', { name: 'Claim your prize' }),
      content.getByRole('button', { name: 'Submit your details' }),
    ]) {
      if ((await target.count()) > 0) {
        await target.first().click({ timeout: 10_000 }).catch((e) => t.diagnostic(`click: ${e.message}`));
      }
    }

    // Nothing may happen, also a little later: no canary request, no dialog, no popup, no
    // request to another origin, no navigation.
    const foreign = () =>
      record.requests
        .slice(firstRequest)
        .filter((r) => !/^(data|blob|about):/.test(r.url) && new URL(r.url).origin !== web);
    await holdsFor(async () => {
      await assertNoLeaks('while the hostile message is shown');
      assert.deepEqual(record.dialogs.slice(dialogsBefore), [], 'no dialog opened');
      assert.deepEqual(record.popups.slice(popupsBefore), [], 'no popup opened');
      assert.deepEqual(foreign().map((r) => r.url), [], 'no request left the page origin');
      assert.equal(page.url(), pageUrl, 'the page did not navigate');
    });

    assert.equal(await page.evaluate(() => window.__pwned), undefined, 'window.__pwned is unset in the page');
    for (const frame of page.frames()) {
      const url = frame.url();
      assert.ok(
        /^about:(srcdoc|blank)$/.test(url) || new URL(url).origin === web,
        `no frame navigated away (frame at ${url})`,
      );
      // Evaluation from DevTools works even where the sandbox forbids the page's own scripts.
      if (frame.isDetached()) continue;
      const pwned = await frame.evaluate(() => window.__pwned).catch((e) => {
        if (frame.isDetached()) return undefined;
        throw e;
      });
      assert.equal(pwned, undefined, `window.__pwned is unset in frame ${url}`);
    }

    const tokens = await sandboxTokens(iframe);
    assert.ok(tokens !== null, 'the message iframe is sandboxed');
    for (const forbidden of FORBIDDEN_SANDBOX_TOKENS) {
      assert.ok(!tokens.includes(forbidden), `the sandbox has no ${forbidden} (sandbox="${tokens.join(' ')}")`);
    }
    const srcdoc = await inspectSrcdoc(iframe);
    t.diagnostic(`srcdoc: ${srcdoc.length} chars, CSP: ${JSON.stringify(srcdoc.policies)}`);
    assert.deepEqual(srcdoc.problems, [], 'the sanitized document has no scripts, handlers, script URLs, refresh or base');
    assert.ok(srcdoc.cspForbidsScripts, "the sanitized document carries a CSP whose script-src is 'none'");
    assert.deepEqual(record.pageErrors.slice(errorsBefore), [], 'the page threw no errors');
    t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '05-hostile')}`);
  });

  step('6. offline, relay stopped, reloaded: the list and the mail are still readable', 300_000, async (t) => {
    await testEnv.post('/relay/stop');
    relayStopped = true;
    await context.setOffline(true);
    try {
      await page.reload({ waitUntil: 'load' });
    } catch (e) {
      throw new Error(`reloading offline failed (is the app shell served by a service worker?): ${e.message}`);
    }
    await waitReady(page);
    const { list, reader, connection, syncNow, search } = ui(page);

    await waitUntil(async () => ((await connection.textContent()) ?? '').trim() === 'Offline', {
      what: 'the "Connection" status to say Offline',
    });
    await waitUntil(() => syncNow.isDisabled(), { what: '"Sync now" to be disabled offline' });

    await list.getByRole('option').first().waitFor({ state: 'visible' });
    const rows = await collectRows(list);
    assert.equal(rows.length, env.e2e.count, `offline, the list still holds ${env.e2e.count} rows`);

    // Search finds the oldest message; it opens from IndexedDB.
    await search.fill(env.e2e.oldest_subject);
    await list.getByRole('option').filter({ hasText: env.e2e.oldest_subject }).first().click();
    await reader.getByRole('heading', { level: 2, name: env.e2e.oldest_subject }).waitFor({ state: 'visible' });
    await search.fill('');

    await openMessage(page, subjects['plain.eml']);
    await reader.getByText('The tomatoes are ripe and the fence is painted.').waitFor({ state: 'visible' });
    await openMessage(page, subjects['html.eml']);
    await reader.getByTitle('Message content').contentFrame().getByText('Hello from the HTML newsletter').waitFor({ state: 'visible' });
    t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '06-offline')}`);

    await context.setOffline(false);
    const started = await testEnv.post('/relay/start');
    assert.ok(started.ok, `the relay restarted: ${JSON.stringify(started)}`);
    relayStopped = false;
  });

  // The reader's srcdoc frame is governed by the page's Content-Security-Policy as well as its
  // own: remote images asked for must get through both (the step checks that no CSP refused
  // anything, like every step).
  step('7. "Load images" on the HTML message: the remote image loads under the page\'s policy', 120_000, async (t) => {
    const { reader } = ui(page);
    await openMessage(page, subjects['html.eml']);
    const content = reader.getByTitle('Message content').contentFrame();
    await content.getByText('Hello from the HTML newsletter').waitFor({ state: 'visible' });
    const canaryFrom = (await testEnv.canaryLog()).length;
    await reader.getByRole('button', { name: 'Load images' }).click();
    const banner = content.getByRole('img', { name: 'Remote banner' });
    await banner.waitFor({ state: 'attached' });
    await waitUntil(
      async () =>
        (await testEnv.canaryLog()).slice(canaryFrom).some((r) => r.path === '/newsletter/remote-banner.png'),
      { what: 'the canary to see the remote banner requested' },
    );
    await waitUntil(() => banner.evaluate((img) => img.complete && img.naturalWidth > 0), {
      what: 'the remote banner to be shown',
    });
    // Inline styles and the cid: image still apply after the frame is rebuilt.
    const logo = content.getByRole('img', { name: 'Inline logo' });
    assert.ok(await logo.evaluate((img) => img.complete && img.naturalWidth > 0), 'the cid: image is shown');
    t.diagnostic(`screenshot: ${await screenshot(page, artifacts, '07-images-loaded')}`);
  });
});
