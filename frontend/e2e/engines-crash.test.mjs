// A tab that crashes in the middle of a sync's IndexedDB write, in every engine (Chromium,
// Firefox ESR, WebKitGTK through lib/engines.mjs; hardening.test.mjs proves the same in Chromium
// with CDP). Against the e2e test env (lib/env.mjs), the `e2e` mailbox (204 messages: batches of
// 100, 100 and 4).
//
//   WEBPOP_ENGINES=firefox node --test --test-concurrency=1 frontend/e2e/engines-crash.test.mjs
//
// For batch 1, then batch 2, each in a fresh browser: the app is loaded with its sync worker
// instrumented (the test env serves the worker's loader with lib/worker-hold.js, and
// lib/hardening.mjs batchHold follows it from the page: the batch's write is held open after its
// UIDL states and first message are put, the rest not issued, the transaction kept alive by reads;
// nothing blocks and the worker's only request of its own is same-origin, so the app runs under
// its own Content-Security-Policy), the account is added through the UI, and once the first message's
// put has succeeded inside the open transaction, the browser's web-content processes are killed
// with SIGKILL (Chromium's renderers, Firefox's content processes, WebKit's WebKitWebProcess:
// IndexedDB lives outside them, in Chromium's browser process, Firefox's parent, WebKit's
// NetworkProcess, so the open transaction is aborted as in a real tab crash). The same browser
// then loads the app again and the store must be consistent: uids, messages and summaries hold
// the same keys, every stored message is byte for byte one of the server's and none twice, the
// interrupted batch left nothing and earlier batches are whole. "Sync now" (the password is asked
// for again) must then report exactly the missing messages as new, and the store end with all
// of them, none twice.
//
// Which process: the held worker burns CPU in slices (a dedicated worker runs in its page's
// process), and the web-content process whose CPU time
// grows most (and clearly more than the others) is killed (lib/engines.mjs busyContentProcess).
// The driver goes on in a new tab opened just before the kill: chromedriver refuses every
// command in a crashed tab ("tab crashed"). Firefox runs without geckodriver's
// MOZ_CRASHREPORTER_SHUTDOWN, which would make it quit when a content process dies (launch's
// surviveTabCrash). The "Add account" click is a script's, in a task of its own: WebKitWebDriver
// does not answer a click whose handler starts the sync that is then held.
//
// WebKitGTK: WebKitWebDriver ends the whole session, and its browser, when any page of it loses
// its web process ("session deleted because of page crash or hang"), and MiniBrowser keeps a
// driven session's website data in memory only. So WebKitGTK runs in lib/webkit-browser.py (the
// same engine, its website data in a directory of the test's): after the kill the dead session is
// closed, and a new session on the same directory reopens the store. There the crash is the web
// process's SIGKILL followed by the end of the whole browser (the driver stops it).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { startEnv, e2eAccount } from './lib/env.mjs';
import { ENGINES, launch, busyContentProcess } from './lib/engines.mjs';
import { batchHold, consistentSnapshot, snapshotStore } from './lib/hardening.mjs';
import { waitUntil } from './lib/wait.mjs';
import { READY, UI, clickOn, textOf, typeInto, waitFor, waitGone, query, fillAccountFormIn } from './lib/ui.mjs';

const SELECTED = (process.env.WEBPOP_ENGINES || ENGINES.join(',')).split(',').map((e) => e.trim()).filter(Boolean);

let testEnv;
let env;
let serverDigests; // SHA-256 of every message of the e2e mailbox
const times = {}; // engine → test → seconds

before(
  async () => {
    testEnv = await startEnv();
    env = testEnv.env;
    // The env may be shared (scripts/test's WEBPOP_TEST_ENV): what the server holds now counts.
    const digests = await testEnv.get(`/digests/${env.e2e.user}`);
    serverDigests = new Set(digests);
    assert.equal(serverDigests.size, digests.length, 'the server holds distinct messages');
    assert.ok(serverDigests.size > 100, 'the e2e mailbox fills more than one batch (100 messages)');
  },
  { timeout: 300_000 },
);

after(
  async () => {
    console.log(`# times (s): ${JSON.stringify(times)}`);
    if (testEnv) await testEnv.stop();
  },
  { timeout: 60_000 },
);

/** Loads the app in `session` and waits until it is ready. */
async function openApp(session) {
  await session.goto(env.web);
  await waitUntil(() => session.evaluate((sel) => !!document.querySelector(sel), READY), {
    timeout: 90_000,
    what: 'the app to be ready',
  });
}

/** The store as the page sees it, checked (`consistentSnapshot`). */
async function consistentStore(session, label) {
  return consistentSnapshot(await session.evaluate(snapshotStore), serverDigests, label);
}

/** Waits until no process of `pids` is left. */
async function gone(pids) {
  const alive = (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  await waitUntil(() => pids.every((pid) => !alive(pid)), { timeout: 30_000, what: `processes ${pids.join(', ')} to end` });
}

/** The list's row count (its data-count), or null before the list is there. */
async function listCount(session) {
  const list = await query(session, UI.list, { attached: true });
  if (!list) return null;
  return Number(await session.driver.executeScript('return arguments[0].getAttribute("data-count")', list));
}

for (const engine of SELECTED) {
  describe(`a crash in the middle of a batch write in ${engine}`, { concurrency: 1 }, () => {
    times[engine] = {};

    for (const batch of [1, 2]) {
      const name =
        batch === 1
          ? 'a_crash_in_the_middle_of_a_batch_write_leaves_the_store_consistent'
          : 'a_crash_in_the_middle_of_the_second_batch_write_keeps_the_first_and_nothing_of_the_second';
      test(name, { timeout: 900_000 }, async (t) => {
        const t0 = Date.now();
        const lap = (what) => t.diagnostic(`${engine}: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        // The sync's writes happen in its Web Worker: the test env serves the worker's loader
        // with the hold prelude (lib/worker-hold.js) until this test clears it.
        const asked = await testEnv.post(`/worker-hold/batch/${batch}`);
        assert.ok(asked && asked.ok, `the test env holds batch ${batch}: ${JSON.stringify(asked)}`);
        // WebKitGTK: website data on disk, so that a second session can reopen the store.
        const dataDir = engine === 'webkit' ? mkdtempSync(path.join(os.tmpdir(), 'webpop-webkit-')) : null;
        let session = await launch(engine, { label: `crash-batch-${batch}`, surviveTabCrash: true, dataDir });
        try {
          t.diagnostic(`${session.info.browserName} ${session.info.browserVersion}`);
          await openApp(session);
          await waitFor(session, UI.form);
          await session.evaluate(batchHold, batch);
          await fillAccountFormIn(session, e2eAccount(env));
          // A click from a script, in a task of its own: WebKitWebDriver does not answer a click
          // (by element or by script) whose handler starts the sync that is then held.
          const add = await waitFor(session, { role: 'button', name: 'Add account', within: UI.form });
          session.note('click button "Add account" (from a script, in a task of its own)');
          await session.driver.executeScript('const b = arguments[0]; setTimeout(() => b.click(), 0);', add);
          let lastSaid = Date.now();
          const held = await waitUntil(
            async () => {
              const h = JSON.parse((await session.evaluate(() => JSON.stringify(window.__e2eHold ?? null))) ?? 'null');
              if (Date.now() - lastSaid > 10_000) {
                lastSaid = Date.now();
                const status = await textOf(session, UI.syncStatus).catch(() => '?');
                session.note(`waiting for the hold: ${JSON.stringify({ ...h, batches: h?.batches?.map((b) => [b.n, b.uids.length, b.messages, b.committed]) })}; status ${JSON.stringify(status)}`);
              }
              return h && h.written && h;
            },
            { timeout: 480_000, interval: 250, what: `batch ${batch}'s write to be held with its first message put` },
          );
          lap(`batch ${batch} held (${held.spins} reads keeping it open)`);
          await session.screenshot(`held-in-batch-${batch}`);

          // The crash: the held page's web-content process, SIGKILL. The held page burns CPU
          // in slices, which tells its process from the browser's others.
          const victim = await busyContentProcess(session);
          session.note(`the page's process: ${victim.pid} (${victim.ticks} ticks; others ${victim.others.join(', ')}): ${victim.argv.join(' ').slice(0, 160)}`);
          // The driver goes on in a new tab (chromedriver refuses every command in a crashed one:
          // "tab crashed"). WebKitWebDriver deletes the session instead: a new one follows.
          if (!dataDir) await session.driver.switchTo().newWindow('tab');
          process.kill(victim.pid, 'SIGKILL');
          await gone([victim.pid]);
          // The app opened next must sync unheld.
          await testEnv.post('/worker-hold/clear');
          lap(`the page's process ${victim.pid} killed (others: ${victim.others.join(', ') || 'none'})`);
          if (dataDir) {
            await session.close();
            session = await launch(engine, { label: `crash-batch-${batch}-reopened`, dataDir });
            lap('a new session on the same website data');
          }

          // The same browser, or the same website data (so the same IndexedDB), loads the app
          // again.
          await openApp(session);
          lap('app reloaded');
          const label = `${engine}, crash in batch ${batch}`;
          const store = await consistentStore(session, label);
          const heldBatch = held.batches.find((b) => b.n === batch);
          assert.ok(heldBatch && heldBatch.uids.length > 0, `${label}: batch ${batch} was being written`);
          const leftovers = heldBatch.uids.filter((u) => store.uids.has(u));
          assert.deepEqual(leftovers, [], `${label}: nothing of the interrupted batch ${batch} is stored`);
          let expected = 0;
          for (const b of held.batches.filter((x) => x.n < batch)) {
            const present = b.uids.filter((u) => store.uids.has(u)).length;
            assert.equal(present, b.uids.length, `${label}: batch ${b.n}, committed before, is stored whole`);
            assert.ok(b.committed, `${label}: batch ${b.n} had committed before the crash`);
            expected += present;
          }
          assert.equal(store.count, expected, `${label}: the store holds exactly the earlier batches`);
          t.diagnostic(`${label}: ${store.count} stored after the crash (batch ${batch} had ${heldBatch.uids.length})`);
          await waitUntil(async () => (await listCount(session)) === store.count, {
            timeout: 60_000,
            what: `the list to hold ${store.count} rows`,
          });
          await session.screenshot(`after-crash-in-batch-${batch}`);

          // "Sync now": the password is asked for again; exactly the missing messages are new.
          const total = serverDigests.size;
          await clickOn(session, UI.syncNow);
          const prompt = { role: 'form', name: 'Password' };
          await typeInto(session, { role: 'textbox', nameStarts: 'Password for', within: prompt }, env.e2e.password);
          await clickOn(session, { role: 'button', name: 'Sync', within: prompt });
          const wanted = new RegExp(`Synced\\s+${total - store.count}\\s+new messages?\\b`);
          await waitUntil(
            async () => {
              const text = ((await textOf(session, UI.syncStatus)) ?? '').trim();
              if (/: /.test(text) && !/^Synced|^Checking/.test(text) && !/ of \d+ messages/.test(text)) {
                throw new Error(`the sync failed: ${text}`);
              }
              return wanted.test(text);
            },
            { timeout: 480_000, interval: 500, what: `the sync status to say "Synced ${total - store.count} new messages"` },
          ).catch(async (e) => {
            // A thrown probe error is retried by waitUntil; say what the status said last.
            throw new Error(`${e.message} (status: ${await textOf(session, UI.syncStatus).catch(() => '?')})`);
          });
          lap('synced again');
          const final = await consistentStore(session, `${label}, synced again`);
          assert.equal(final.count, total, `${label}: all ${total} messages are stored after the next sync`);
          t.diagnostic(`${label}: ${final.whole} whole, ${final.count - final.whole} headers only (stored headers-first by size)`);
          await waitUntil(async () => (await listCount(session)) === total, {
            timeout: 60_000,
            what: `the list to hold ${total} rows`,
          });
          await session.screenshot(`synced-again-after-batch-${batch}`);
          await waitGone(session, UI.progress, { timeout: 60_000 }).catch(() => {});
          times[engine][`batch_${batch}`] = Math.round((Date.now() - t0) / 100) / 10;
        } catch (e) {
          await session.screenshot('FAILED').catch(() => {});
          throw e;
        } finally {
          await testEnv.post('/worker-hold/clear').catch(() => {});
          await session.close();
          if (dataDir) rmSync(dataDir, { recursive: true, force: true });
        }
      });
    }
  });
}

