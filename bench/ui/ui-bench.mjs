// ui-bench: webpop's web app in headless Chromium against the issue's targets, each next to a
// baseline measured in the same run.
//
//   bundle   gzip -9 size of every file the page loads from dist/ (target: at most 1.2 MB in
//            all); baseline: the raw sizes, and what webpop-proxy actually sends (gzip)
//   inbox    50,000 summaries seeded into IndexedDB "webpop": first render (target 300 ms),
//            scrolling the whole list (no long task over 50 ms), search (target 150 ms);
//            baselines: plain JS reading the same store and rendering 40 rows, plain JS filter
//   offline  with the service worker active and the network off, a reload: data-ready and the
//            first row (target 1 s)
//   sync     a first sync of a 2,000-message mailbox through the app (webpop-test-env: a private
//            Dovecot and the relay serving dist/) while the list is scrolled: main-thread long
//            tasks over 50 ms (target 0), the first row after sign-in completes (target 300 ms)
//            and the sync time (target: not worse than the 20.8–25.9 s the sync took on the main
//            thread, before it moved to its Web Worker; bench/README.md). The server lists the
//            mailbox once before the sign-in, as a server that indexes mail on delivery has.
//
// Run by `scripts/bench ui` (which builds dist/ and the release webpop-proxy first). Options:
// `node bench/ui/ui-bench.mjs --help`. It starts its own webpop-proxy on 127.0.0.1 serving dist/
// and talks to nothing else (the sync part: webpop-test-env's servers, also on 127.0.0.1). Until the app renders the listbox "Messages" (see ui-contract.md),
// the inbox and offline parts print "inbox: UI not built yet" and the run still succeeds.

import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

import { CHROMIUM_ARGS } from '../../frontend/e2e/lib/chromium-args.mjs';
import { colonHex, startTestEnv } from '../../frontend/e2e/lib/env.mjs';
import { fillAccountForm } from '../../frontend/e2e/lib/ui.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
// playwright-core is installed once, for the E2E tests, in frontend/e2e (no browser download).
const require = createRequire(path.join(ROOT, 'frontend/e2e/package.json'));

const TARGET = {
  bundleBytes: 1_200_000, // 1.2 MB, gzip, the whole app
  firstRenderMs: 300,
  longTaskMs: 50,
  searchMs: 150,
  offlineMs: 1000,
  signInToFirstRowMs: 300,
};
const LISTBOX = '[role="listbox"][aria-label="Messages"]';
const SEARCH = 'input[aria-label="Search mail"]';
// Words for the searches: COMMON is in about a third of the subjects, RARE in 5 messages, NONE
// nowhere.
const QUERIES = { common: 'invoice', rare: 'zephyrine', none: 'qqxyzzy' };

const USAGE = `usage: node bench/ui/ui-bench.mjs [options]
  --dist DIR          the built web app (default: dist)
  --proxy PATH        webpop-proxy (default: target/release/webpop-proxy)
  --chromium PATH     Chromium (default: /usr/bin/chromium)
  --messages N        summaries to seed (default: 50000)
  --runs N            reloads measured for first render (default: 3)
  --scroll-steps N    wheel events planned across the whole list, sized for every message at
                      56 px a row (default: 300; each at least 2,000 px)
  --bundle-only       only the bundle sizes
  --sync-only         only the first sync while scrolling (and the bundle sizes)
  --no-sync           everything but the first sync
  --test-env PATH     webpop-test-env for the first sync (default:
                      target/release/webpop-test-env; scripts/bench ui builds it)
  --sync-messages N   messages in the first sync's mailbox (default: 2000)
  --selftest          serve bench/ui/fixture (a plain-JS stand-in for the UI) with dist's
                      service worker, manifest and icons, to check the bench itself`;

function parseArgs(argv) {
  const opts = {
    dist: 'dist',
    proxy: 'target/release/webpop-proxy',
    chromium: '/usr/bin/chromium',
    messages: 50_000,
    runs: 3,
    scrollSteps: 300,
    bundleOnly: false,
    selftest: false,
    sync: true,
    syncOnly: false,
    testEnv: 'target/release/webpop-test-env',
    syncMessages: 2000,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${flag} needs a value`);
      return argv[++i];
    };
    const number = () => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) fail(`${flag} needs a positive whole number`);
      return n;
    };
    if (flag === '--dist') opts.dist = value();
    else if (flag === '--proxy') opts.proxy = value();
    else if (flag === '--chromium') opts.chromium = value();
    else if (flag === '--messages') opts.messages = number();
    else if (flag === '--runs') opts.runs = number();
    else if (flag === '--scroll-steps') opts.scrollSteps = number();
    else if (flag === '--bundle-only') opts.bundleOnly = true;
    else if (flag === '--selftest') opts.selftest = true;
    else if (flag === '--sync-only') opts.syncOnly = true;
    else if (flag === '--no-sync') opts.sync = false;
    else if (flag === '--test-env') opts.testEnv = value();
    else if (flag === '--sync-messages') opts.syncMessages = number();
    else if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else fail(`unknown option ${flag}\n${USAGE}`);
  }
  opts.dist = path.resolve(ROOT, opts.dist);
  opts.proxy = path.resolve(ROOT, opts.proxy);
  opts.testEnv = path.resolve(ROOT, opts.testEnv);
  return opts;
}

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// Formatting

const ms = (v) => (v == null ? '–' : `${v.toFixed(0)} ms`);
const kb = (bytes) => `${(bytes / 1000).toLocaleString('en', { maximumFractionDigits: 1 })} KB`;
const ratio = (a, b) => (a == null || b == null || b === 0 ? '–' : `${(a / b).toFixed(2)}×`);
const median = (values) => {
  const sorted = values.filter((v) => v != null).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

function table(header, rows) {
  const cells = [header, ...rows].map((row) => row.map(String));
  const widths = header.map((_, c) => Math.max(...cells.map((row) => row[c].length)));
  const line = (row) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  console.log(line(cells[0]));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of cells.slice(1)) console.log(line(row));
}

// ---------------------------------------------------------------------------------------------
// Bundle size

// The same-origin files an index.html references, as the service worker finds them: href/src
// attributes and the quoted paths in trunk's inline init script.
function referencedFiles(html) {
  const files = new Set();
  const quoted = /["']([^"'\s<>]+\.(?:js|wasm|css|webmanifest|json|svg|png|ico|woff2?))["']/g;
  for (const [, ref] of html.matchAll(quoted)) {
    const url = new URL(ref, 'http://webpop.invalid/');
    if (url.origin === 'http://webpop.invalid') files.add(url.pathname);
  }
  return [...files];
}

// What webpop-proxy sends for `urlPath` to a browser that accepts gzip: the body's bytes.
function servedBytes(base, urlPath) {
  return new Promise((resolve, reject) => {
    const request = http.get(
      new URL(urlPath, base),
      { headers: { 'accept-encoding': 'gzip' } },
      (response) => {
        let bytes = 0;
        response.on('data', (chunk) => (bytes += chunk.length));
        response.on('end', () =>
          resolve({ bytes, status: response.statusCode, encoding: response.headers['content-encoding'] }),
        );
      },
    );
    request.on('error', reject);
  });
}

async function bundle(dist, base) {
  const html = fs.readFileSync(path.join(dist, 'index.html'), 'utf8');
  // The page loads index.html and what it references; the app registers /sw.js.
  const files = ['/', ...referencedFiles(html)];
  if (fs.existsSync(path.join(dist, 'sw.js')) && !files.includes('/sw.js')) files.push('/sw.js');
  // The app starts its sync worker at once: its script and the wasm that script loads.
  for (const file of fs.readdirSync(dist).sort()) {
    if (/^webpop-worker.*(\.js|_bg\.wasm)$/.test(file) && !files.includes(`/${file}`)) files.push(`/${file}`);
  }
  const rows = [];
  const total = { raw: 0, gzip: 0, served: 0 };
  for (const file of files) {
    const onDisk = path.join(dist, file === '/' ? 'index.html' : file.slice(1));
    if (!fs.existsSync(onDisk)) {
      rows.push([file, 'missing in dist/', '', '', '']);
      continue;
    }
    const data = fs.readFileSync(onDisk);
    const gzip = zlib.gzipSync(data, { level: 9 }).length;
    const served = base ? await servedBytes(base, file) : null;
    total.raw += data.length;
    total.gzip += gzip;
    if (served) total.served += served.bytes;
    rows.push([
      file,
      kb(data.length),
      kb(gzip),
      ratio(gzip, data.length),
      served ? `${kb(served.bytes)}${served.encoding ? ` (${served.encoding})` : ''}` : '–',
    ]);
  }
  rows.push(['total', kb(total.raw), kb(total.gzip), ratio(total.gzip, total.raw), base ? kb(total.served) : '–']);
  console.log('\nbundle: every file the page loads from dist/, its sync worker included (KB = 1,000 bytes)\n');
  table(['file', 'raw (baseline)', 'gzip -9', 'gzip/raw', 'served by webpop-proxy'], rows);
  const verdict = total.gzip <= TARGET.bundleBytes ? 'meets' : 'MISSES';
  console.log(
    `\nbundle: ${kb(total.gzip)} gzip of ${kb(total.raw)} raw; target ≤ ${kb(TARGET.bundleBytes)}: ` +
      `${ratio(total.gzip, TARGET.bundleBytes)} of the target (${verdict} it)`,
  );
  return total;
}

// ---------------------------------------------------------------------------------------------
// webpop-proxy

// Starts webpop-proxy on a free loopback port serving `webRoot`. The seeded account names
// pop.example.com: denied by name, so the relay never even resolves it.
async function startProxy(binary, webRoot) {
  if (!fs.existsSync(binary)) fail(`${binary} is missing: cargo build --release -p webpop-proxy`);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEBPOP_')));
  const child = spawn(
    binary,
    ['--listen', '127.0.0.1:0', '--web-root', webRoot, '--drain-timeout', '1s',
      '--deny-host', 'example.com', '--deny-host', '*.example.com'],
    { env: { ...env, RUST_LOG: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`webpop-proxy did not start:\n${log}`)), 20_000);
    const onData = (chunk) => {
      log += chunk;
      const found = /serving.*?addr=(\S+)/.exec(log);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`webpop-proxy exited (${code}):\n${log}`)));
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return {
    base: `http://${addr}/`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// In the page (these functions are serialised into the page by Playwright)

// Added to every document before its own scripts: the time body[data-ready="1"] and the first
// row of the listbox appear (ms since navigation start), and every long task.
function initScript({ listbox }) {
  const bench = (window.__bench = { ready: null, firstRow: null, longtasks: [] });
  try {
    new PerformanceObserver((entries) => {
      for (const e of entries.getEntries()) bench.longtasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  } catch {
    bench.longtasks = null; // not supported
  }
  const observer = new MutationObserver(() => {
    if (bench.ready === null && document.body?.dataset.ready === '1') bench.ready = performance.now();
    if (bench.firstRow === null && document.querySelector(`${listbox} [role="option"]`)) {
      bench.firstRow = performance.now();
    }
    if (bench.ready !== null && bench.firstRow !== null) observer.disconnect();
  });
  observer.observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-ready'] });
}

// Seeds the app's database (which the app created, with its version and indexes) with one
// account and `count` summaries, newest first, in transactions of 5,000.
async function seedDatabase({ count }) {
  const request = (r) =>
    new Promise((resolve, reject) => {
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  const done = (tx) =>
    new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  const db = await request(indexedDB.open('webpop'));
  const stores = [...db.objectStoreNames];
  for (const name of ['accounts', 'summaries']) {
    if (!stores.includes(name)) throw new Error(`database "webpop" has no "${name}" store (stores: ${stores})`);
  }
  const indexes = [...db.transaction('summaries').objectStore('summaries').indexNames];
  if (!indexes.includes('by_date')) throw new Error(`"summaries" has no "by_date" index (${indexes})`);
  const withUids = stores.includes('uids');

  let seed = 0x5eed;
  const random = () => {
    // mulberry32: the same mailbox every run.
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = (list) => list[Math.floor(random() * list.length)];
  const firsts = ['Anna', 'Ben', 'Chiara', 'Dmitri', 'Emma', 'Farid', 'Greta', 'Hiro', 'Ines', 'Jonas',
    'Kemal', 'Lena', 'Marco', 'Nora', 'Oskar', 'Priya', 'Quentin', 'Rosa', 'Sven', 'Tariq', 'Uma',
    'Viktor', 'Wen', 'Yara', 'Zoe', 'Jürgen', 'Søren', '佐藤'];
  const lasts = ['Adler', 'Berg', 'Costa', 'Dubois', 'Eriksen', 'Fischer', 'García', 'Hansen', 'Ito',
    'Jansen', 'Kowalski', 'Larsen', 'Müller', 'Nakamura', 'Olsen', 'Petrov', 'Rossi', 'Schmidt',
    'Tanaka', 'Weber'];
  const domains = ['example.org', 'mail.example.net', 'company.example', 'uni.example.edu', 'shop.example'];
  const words = ('meeting report budget project update schedule review draft contract team lunch ' +
    'travel order shipment delivery payment receipt account password newsletter weekly monthly ' +
    'quarterly planning agenda notes minutes feedback question answer request approval holiday ' +
    'vacation conference ticket booking hotel flight train release version bug feature test ' +
    'server backup storage network security patch deadline tomorrow today friday monday photos ' +
    'family party birthday dinner garden recipe book film music concert exhibition museum ' +
    'Rechnung Termin Besprechung Angebot 会議 お知らせ').split(' ');
  const sentence = (n) => Array.from({ length: n }, () => pick(words)).join(' ');
  const now = Math.floor(Date.now() / 1000);

  await request(
    db.transaction('accounts', 'readwrite').objectStore('accounts').put({
      id: 'bench', email: 'bench@example.com', user: 'bench', host: 'pop.example.com', port: 995,
      security: 'tls', server_name: 'pop.example.com', auth: 'auto', cert_sha256: null,
      policy: 'keep', days: 0, password: null, last_sync: null,
    }),
  );
  const BATCH = 5000;
  for (let start = 0; start < count; start += BATCH) {
    const tx = db.transaction(withUids ? ['summaries', 'uids'] : ['summaries'], 'readwrite');
    const summaries = tx.objectStore('summaries');
    const uids = withUids ? tx.objectStore('uids') : null;
    for (let i = start; i < Math.min(count, start + BATCH); i++) {
      const first = pick(firsts);
      const last = pick(lasts);
      const uid = `bench-${String(i).padStart(6, '0')}`;
      let subject = sentence(2 + Math.floor(random() * 6));
      if (i % 3 === 1) subject = `Invoice ${10000 + i}: ${subject}`;
      let snippet = sentence(18 + Math.floor(random() * 10)).slice(0, 160);
      if (i % 10_000 === 1234) snippet = `the zephyrine sample ${snippet}`.slice(0, 160);
      summaries.put({
        account: 'bench',
        uid,
        from: `${first} ${last} <${first.toLowerCase()}.${last.toLowerCase()}@${pick(domains)}>`,
        to: 'bench@example.com',
        subject: subject[0].toUpperCase() + subject.slice(1),
        // Newest first: about one message every half hour, going back some three years.
        date: now - i * 1800 - Math.floor(random() * 1800),
        size: 1500 + Math.floor(random() ** 3 * 2_000_000),
        has_attachments: random() < 0.15,
        snippet,
        read: i >= 20 && random() > 0.1,
        flagged: random() < 0.02,
      });
      uids?.put({ account: 'bench', uid, state: 'stored', first_seen: now - i * 1800 });
    }
    await done(tx);
  }
  db.close();
  return { withUids };
}

// Baseline (a), the floor for first render: plain JS opens the same database, reads every
// summary (getAll on by_date), takes the newest 40 and renders them into a div. `cursor`:
// instead read only the newest 40 through a cursor (what a list needs for its first screen).
async function baselineRender({ rows, cursor }) {
  const request = (r) =>
    new Promise((resolve, reject) => {
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const t0 = performance.now();
  const db = await request(indexedDB.open('webpop'));
  const index = db.transaction('summaries').objectStore('summaries').index('by_date');
  let newest;
  let total;
  if (cursor) {
    newest = [];
    await new Promise((resolve, reject) => {
      const r = index.openCursor(null, 'prev');
      r.onsuccess = () => {
        const c = r.result;
        if (c && newest.length < rows) {
          newest.push(c.value);
          c.continue();
        } else resolve();
      };
      r.onerror = () => reject(r.error);
    });
    total = null;
  } else {
    const all = await request(index.getAll());
    total = all.length;
    newest = all.slice(-rows).reverse();
  }
  const div = document.createElement('div');
  div.style.cssText = 'position:fixed;inset:0;background:#fff;z-index:2147483647;overflow:hidden';
  for (const s of newest) {
    const row = document.createElement('div');
    row.style.cssText = 'height:56px;white-space:nowrap;overflow:hidden';
    row.textContent = `${s.from} · ${s.subject} · ${new Date(s.date * 1000).toLocaleDateString()} · ${s.size} B`;
    div.append(row);
  }
  document.body.append(div);
  const inserted = performance.now();
  await frame();
  await frame();
  const painted = performance.now();
  div.remove();
  db.close();
  return { rows: inserted - t0, painted: painted - t0, total };
}

// Baseline (b), the floor for search: plain JS filter with toLowerCase().includes over the
// same summaries, already in memory (read once, not timed).
async function baselineSearch({ queries }) {
  const request = (r) =>
    new Promise((resolve, reject) => {
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  const db = await request(indexedDB.open('webpop'));
  const all = await request(db.transaction('summaries').objectStore('summaries').index('by_date').getAll());
  db.close();
  const results = {};
  for (const [name, q] of Object.entries(queries)) {
    const t0 = performance.now();
    const hits = all.filter(
      (s) =>
        s.from.toLowerCase().includes(q) ||
        s.to.toLowerCase().includes(q) ||
        s.subject.toLowerCase().includes(q) ||
        s.snippet.toLowerCase().includes(q),
    );
    results[name] = { ms: performance.now() - t0, hits: hits.length };
  }
  return results;
}

// webpop's search: sets "Search mail" and fires `input`, then waits for the page's <main> to
// change and settle. Time: from the input event to the second animation frame after the last
// change (the change is painted), i.e. what the simple "input, then two frames" measure gives
// when the app answers in one go, without cutting off an app that answers later.
async function searchOnce({ selector, listbox, q, timeout }) {
  const input = document.querySelector(selector);
  const scope = document.querySelector('main') || document.body;
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  let mutations = 0;
  const observer = new MutationObserver((records) => (mutations += records.length));
  observer.observe(scope, { subtree: true, childList: true, characterData: true, attributes: true });
  const t0 = performance.now();
  input.value = q;
  input.dispatchEvent(new Event('input', { bubbles: true }));
  let seen = 0; // mutations seen at the last frame
  let changedAtFrame = null; // frame count when the last change was first seen
  let settledAt = null;
  for (let frames = 1; performance.now() - t0 < timeout; frames++) {
    await frame();
    if (mutations !== seen) {
      seen = mutations;
      changedAtFrame = frames;
      settledAt = null;
    } else if (changedAtFrame !== null && frames === changedAtFrame + 1) {
      settledAt = performance.now(); // second frame after the last change
    } else if (settledAt !== null && frames >= changedAtFrame + 4) {
      break; // three quiet frames: settled
    }
  }
  observer.disconnect();
  return {
    ms: settledAt === null ? null : settledAt - t0,
    changed: mutations > 0,
    rows: document.querySelectorAll(`${listbox} [role="option"]`).length,
  };
}

// ---------------------------------------------------------------------------------------------
// The inbox and offline parts

async function waitForBench(page, key, timeout) {
  try {
    await page.waitForFunction((k) => window.__bench && window.__bench[k] !== null, key, { timeout });
    return await page.evaluate((k) => window.__bench[k], key);
  } catch {
    return null;
  }
}

// Loads the page (goto: the first visit, no mail yet; or reload) and returns the times since
// navigation start.
async function load(page, how, timeout = 15_000) {
  if (how === 'goto') await page.goto('/', { waitUntil: 'commit' });
  else await page.reload({ waitUntil: 'commit' });
  const ready = await waitForBench(page, 'ready', timeout);
  const firstRow = await waitForBench(page, 'firstRow', ready === null || how === 'goto' ? 1 : timeout);
  return { ready, firstRow };
}

// Waits until the page has been idle for a while: at least 1.5 s, and then two idle callbacks in a
// row with a full 50 ms budget (at most 10 s in all).
async function settle(page) {
  await page.waitForTimeout(1500);
  await page.evaluate(async () => {
    const idle = () =>
      new Promise((resolve) => requestIdleCallback((d) => resolve(!d.didTimeout && d.timeRemaining() >= 49), { timeout: 1000 }));
    const until = performance.now() + 8500;
    let quiet = 0;
    while (quiet < 2 && performance.now() < until) quiet = (await idle()) ? quiet + 1 : 0;
  });
}

// Makes sure the service worker controls the page: the app registers it; if it has not (yet),
// the bench does, and says so.
async function ensureServiceWorker(page) {
  const state = await page.evaluate(async () => {
    if (!('serviceWorker' in navigator)) return 'unsupported';
    let registered = 'app';
    for (let i = 0; i < 20 && !(await navigator.serviceWorker.getRegistration()); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (!(await navigator.serviceWorker.getRegistration())) {
      await navigator.serviceWorker.register('/sw.js');
      registered = 'bench';
    }
    const ready = await Promise.race([
      navigator.serviceWorker.ready,
      new Promise((resolve) => setTimeout(resolve, 15_000, null)),
    ]);
    if (!ready) return 'never activated (did its install fail?)';
    if (!navigator.serviceWorker.controller) {
      await new Promise((resolve) => {
        navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true });
        setTimeout(resolve, 10_000);
      });
    }
    return navigator.serviceWorker.controller ? registered : 'not controlling';
  });
  if (state === 'bench') console.log('note: the app did not register /sw.js; the bench registered it');
  else if (state !== 'app') console.log(`note: service worker: ${state}`);
  return state === 'app' || state === 'bench';
}

async function inbox(opts, proxy) {
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({ executablePath: opts.chromium, args: CHROMIUM_ARGS });
  try {
    const context = await browser.newContext({ baseURL: proxy.base, viewport: { width: 1280, height: 800 } });
    await context.addInitScript(initScript, { listbox: LISTBOX });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));

    // 1. The app creates its database (its version and indexes) and says it is ready.
    const first = await load(page, 'goto', 30_000);
    if (first.ready === null) {
      console.log('\ninbox: UI not built yet (the page never set body[data-ready="1"])');
      if (errors.length) console.log(`  page errors: ${errors.slice(0, 3).join('; ')}`);
      return;
    }
    const controlled = await ensureServiceWorker(page);

    // 2. Seed it.
    const seedStart = Date.now();
    const seeded = await page.evaluate(seedDatabase, { count: opts.messages });
    console.log(
      `\ninbox: seeded ${opts.messages.toLocaleString('en')} summaries${seeded.withUids ? ' (+ uids)' : ''} ` +
        `in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`,
    );

    // 3. First render, a few times.
    const loads = [];
    for (let run = 0; run < opts.runs; run++) {
      // Each reload starts from a quiet page: whatever the last one still did in the background
      // (reading the rest of the list, say) would slow it down.
      await settle(page);
      const times = await load(page, 'reload');
      if (run === 0 && times.firstRow === null) {
        const hasList = (await page.locator(LISTBOX).count()) > 0;
        if (!hasList) {
          console.log('inbox: UI not built yet (no listbox "Messages" after seeding)');
          return;
        }
        throw new Error('the listbox "Messages" shows no rows for the seeded account');
      }
      loads.push(times);
    }
    const baselineRuns = [];
    const cursorRuns = [];
    await settle(page);
    for (let run = 0; run < opts.runs; run++) {
      baselineRuns.push(await page.evaluate(baselineRender, { rows: 40, cursor: false }));
      cursorRuns.push(await page.evaluate(baselineRender, { rows: 40, cursor: true }));
    }
    if (baselineRuns[0].total !== opts.messages) {
      throw new Error(`the store holds ${baselineRuns[0].total} summaries, not ${opts.messages}`);
    }

    // 4. Scrolling the whole list with the mouse wheel.
    await settle(page);
    await load(page, 'reload');
    await settle(page);
    const scroll = await scrollWholeList(page, opts.scrollSteps, opts.messages);

    // 5. Search.
    await page.locator(LISTBOX).evaluate((el) => el.scrollTo(0, 0));
    const search = {};
    const hasSearch = (await page.locator(SEARCH).count()) > 0;
    if (hasSearch) {
      for (const [name, q] of [...Object.entries(QUERIES), ['clear', '']]) {
        await page.waitForTimeout(300);
        search[name] = await page.evaluate(searchOnce, { selector: SEARCH, listbox: LISTBOX, q, timeout: 5000 });
      }
    }
    const searchBase = await page.evaluate(baselineSearch, { queries: QUERIES });

    // 6. Offline reload: the relay gone and the browser offline.
    let offline = null;
    if (controlled) {
      await settle(page);
      await proxy.stop();
      await context.setOffline(true);
      try {
        offline = await load(page, 'reload', 10_000);
        offline.onLine = await page.evaluate(() => navigator.onLine);
      } catch (e) {
        offline = { error: String(e).split('\n')[0] };
      }
    }

    report({ opts, loads, baselineRuns, cursorRuns, scroll, search, hasSearch, searchBase, offline });
    if (!controlled) console.log('offline: no service worker controlled the page, so no offline reload');
    if (errors.length) console.log(`\npage errors: ${errors.slice(0, 5).join('; ')}`);
  } finally {
    await browser.close();
  }
}

// Wheels through the whole listbox (a list that loads more as it nears its end included);
// returns the long tasks seen meanwhile and the longest gap between animation frames.
async function scrollWholeList(page, steps, messages) {
  const listbox = page.locator(LISTBOX);
  const box = await listbox.boundingBox();
  const position = () =>
    listbox.evaluate((el) => ({ top: el.scrollTop, end: el.scrollHeight - el.clientHeight }));
  const start = await position();
  // Sized for every message at the contract's 56 px a row, whatever is loaded so far.
  const delta = Math.max(2000, Math.ceil(Math.max(start.end, messages * 56) / steps));
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const t0 = await page.evaluate(() => {
    // The longest gap between frames while scrolling (long tasks only show those over 50 ms).
    const gaps = (window.__frames = { max: 0, last: performance.now(), on: true });
    const tick = (now) => {
      gaps.max = Math.max(gaps.max, now - gaps.last);
      gaps.last = now;
      if (gaps.on) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    return performance.now();
  });
  const started = Date.now();
  let events = 0;
  let atEnd = 0;
  // At most twice the planned events; done when two checks ten events apart find the end.
  while (events < 2 * steps && atEnd < 2) {
    await page.mouse.wheel(0, delta);
    await page.waitForTimeout(16);
    events++;
    if (events % 10 === 0) {
      const { top, end } = await position();
      atEnd = top >= end - 2 ? atEnd + 1 : 0;
    }
  }
  // Until the scroll position settles.
  let last = -1;
  for (let i = 0; i < 40; i++) {
    const { top } = await position();
    if (top === last) break;
    last = top;
    await page.waitForTimeout(100);
  }
  const seconds = (Date.now() - started) / 1000;
  const result = await page.evaluate((t0) => {
    window.__frames.on = false;
    const tasks = window.__bench.longtasks;
    const during = tasks === null ? null : tasks.filter((t) => t.start >= t0);
    const before = tasks === null ? null : tasks.filter((t) => t.start < t0);
    const list = document.querySelector('[role="listbox"][aria-label="Messages"]');
    return {
      tasks: during,
      loadTasks: before,
      maxFrameGap: window.__frames.max,
      scrollTop: list.scrollTop,
      distance: list.scrollHeight - list.clientHeight,
      rowsInView: list.querySelectorAll('[role="option"]').length,
    };
  }, t0);
  return { ...result, startDistance: start.end, delta, events, seconds };
}

function report(results) {
  const { opts, loads, baselineRuns, cursorRuns, scroll, search, hasSearch, searchBase, offline } = results;
  const firstRow = median(loads.map((l) => l.firstRow));
  const ready = median(loads.map((l) => l.ready));
  const base = median(baselineRuns.map((b) => b.rows));
  const basePainted = median(baselineRuns.map((b) => b.painted));
  const cursor = median(cursorRuns.map((b) => b.rows));
  const tasks = scroll.tasks;
  const longest = tasks === null ? null : Math.max(0, ...tasks.map((t) => t.duration));
  const over = tasks === null ? null : tasks.filter((t) => t.duration > TARGET.longTaskMs).length;
  // null when a query did not settle: the table then shows "–" and the lines below say why.
  const searchTimes = hasSearch ? Object.keys(QUERIES).map((k) => search[k].ms) : [];
  const searchMax = hasSearch && !searchTimes.includes(null) ? Math.max(...searchTimes) : null;
  const baseSearchMax = Math.max(...Object.values(searchBase).map((r) => r.ms));
  const offlineOk = offline && !offline.error && offline.firstRow !== null;
  const offlineMs = offlineOk ? Math.max(offline.ready, offline.firstRow) : null;

  const n = opts.messages.toLocaleString('en');
  const reloads = `${opts.runs} reload${opts.runs === 1 ? '' : 's'}`;
  console.log(`\ninbox of ${n} messages (median of ${reloads}; ms since navigation start)\n`);
  const row = (measure, webpop, baseline, target, value, floor) => [
    measure,
    webpop,
    baseline,
    target == null ? '' : ms(target),
    floor == null ? '' : ratio(value, floor),
    target == null ? '' : ratio(value, target),
  ];
  table(
    ['measure', 'webpop', 'baseline', 'target', 'webpop/baseline', 'webpop/target'],
    [
      row('first render (first row)', ms(firstRow), `${ms(base)} (a)`, TARGET.firstRenderMs, firstRow, base),
      row('  vs 40 newest by cursor', '', `${ms(cursor)} (a′)`, null, firstRow, cursor),
      row('data-ready', ms(ready), '', null),
      [
        'scroll: longest long task',
        longest === null ? 'n/a' : longest ? ms(longest) : 'none',
        '',
        `≤ ${ms(TARGET.longTaskMs)}`,
        '',
        longest ? ratio(longest, TARGET.longTaskMs) : '',
      ],
      ['scroll: long tasks > 50 ms', over === null ? 'n/a' : String(over), '', '0', '', ''],
      row(
        'search (max of 3 queries)',
        hasSearch ? ms(searchMax) : 'no "Search mail"',
        `${ms(baseSearchMax)} (b)`,
        TARGET.searchMs,
        searchMax,
        baseSearchMax,
      ),
      row(
        'offline reload (ready, first row)',
        offline === null ? 'not run' : offlineOk ? ms(offlineMs) : 'failed',
        '',
        TARGET.offlineMs,
        offlineMs,
      ),
    ],
  );
  const px = (v) => `${v.toLocaleString('en')} px`;
  const list = (values, format) => values.map(format).join(', ');
  console.log(
    `\n(a) plain JS in the page: open "webpop", getAll on by_date (${n}), the 40 newest rows into a ` +
      `div: ${ms(base)} to the rows, ${ms(basePainted)} painted ` +
      `(runs: ${list(baselineRuns, (b) => ms(b.rows))})`,
  );
  console.log(`(a′) the same, reading just the 40 newest through a cursor (prev) on by_date: ${ms(cursor)}`);
  console.log(
    `    webpop's reloads: first row ${list(loads, (l) => ms(l.firstRow))}; ` +
      `data-ready ${list(loads, (l) => ms(l.ready))}`,
  );
  console.log(`(b) plain JS filter, toLowerCase().includes on from/to/subject/snippet of ${n} objects:`);
  for (const [name, q] of Object.entries(QUERIES)) {
    const w = search[name];
    const { hits } = searchBase[name];
    let webpop = 'webpop: no search box';
    if (hasSearch) {
      const time = w.ms !== null ? ms(w.ms) : w.changed ? 'did not settle in 5 s' : 'no change in 5 s';
      webpop = `webpop ${time}, ${w.rows} rows in the DOM`;
    }
    console.log(`    ${name.padEnd(6)} "${q}": ${hits} hits, baseline ${searchBase[name].ms.toFixed(1)} ms; ${webpop}`);
    // The rare and the missing word fit on one screen: webpop must show exactly the hits.
    if (hasSearch && name !== 'common' && w.rows !== hits) {
      console.log(`    WARNING: webpop shows ${w.rows} rows for "${q}", plain JS finds ${hits}`);
    }
  }
  if (hasSearch) console.log(`    clearing the search: ${ms(search.clear.ms)}`);
  const grew = scroll.distance > scroll.startDistance + 1000 ? ` (${px(scroll.startDistance)} at the start)` : '';
  console.log(
    `scroll: ${scroll.events} wheel events of ${px(scroll.delta)} in ${scroll.seconds.toFixed(1)} s, ` +
      `reached ${px(scroll.scrollTop)} of ${px(scroll.distance)}${grew}, ${scroll.rowsInView} rows in ` +
      `the DOM at the end; longest gap between frames ${ms(scroll.maxFrameGap)}`,
  );
  if (scroll.loadTasks?.length) {
    const worst = Math.max(...scroll.loadTasks.map((t) => t.duration));
    console.log(
      `        before scrolling, from the reload until the page was idle: ${scroll.loadTasks.length} ` +
        `long tasks, the longest ${ms(worst)}`,
    );
  } else if (scroll.loadTasks) {
    console.log('        before scrolling, from the reload until the page was idle: no long task');
  }
  // Every message in the list makes it messages × 56 px tall (the contract's row height).
  const expected = opts.messages * 56;
  if (scroll.distance + 2000 < expected * 0.9) {
    console.log(
      `scroll: WARNING: the listbox scrolls ${px(scroll.distance)}; ${n} rows of 56 px would be ` +
        `${px(expected)}: the list does not hold every message (or the listbox is not the scroll ` +
        `container, or rows are not 56 px), so this did not scroll through ${n}`,
    );
  }
  if (offline?.error) console.log(`offline: the reload failed: ${offline.error}`);
  else if (offline) {
    console.log(
      `offline: data-ready ${ms(offline.ready)}, first row ${ms(offline.firstRow)} ` +
        `(navigator.onLine ${offline.onLine})`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// A first sync while the list scrolls

// Installed in the page just before "Add account" is clicked: when the form leaves (sign-in
// completed: the app signed in, saved the account and shows its list), when the list's first
// row appears, every sync status text, and when the status first says "Synced". Times are
// performance.now() in the page, comparable with the long tasks' start times.
function watchFirstSync({ listbox }) {
  const w = (window.__sync = { clicked: performance.now(), signedIn: null, firstRow: null, synced: null, statuses: [] });
  const check = () => {
    const now = performance.now();
    if (w.signedIn === null && !document.querySelector('form[aria-label="Add account"]')) w.signedIn = now;
    if (w.firstRow === null && document.querySelector(`${listbox} [role="option"]`)) w.firstRow = now;
    const status = document.querySelector('[role="status"][aria-label="Sync status"]')?.textContent.trim();
    if (status && w.statuses[w.statuses.length - 1] !== status) w.statuses.push(status);
    if (w.synced === null && status && /^Synced\s+\d/.test(status)) w.synced = now;
  };
  new MutationObserver(check).observe(document.documentElement, {
    subtree: true,
    childList: true,
    attributes: true,
    characterData: true,
  });
}

// Lists the mailbox once over POP3S, as the bench's Dovecot has only just had its 2,000 messages
// written: its first listing reads every file to learn the sizes (about 200 ms here), which a
// server that indexed its mail as it was delivered has done long before anyone signs in. Only
// 127.0.0.1; the server's certificate is the test env's own (its fingerprint is checked).
function warmServer({ host, port, user, password, fingerprint }) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const seen = socket.getPeerCertificate().fingerprint256;
      if (seen !== fingerprint) {
        socket.destroy();
        reject(new Error(`warming the server: unexpected certificate ${seen}`));
        return;
      }
      socket.write(`USER ${user}\r\nPASS ${password}\r\nLIST\r\nUIDL\r\nQUIT\r\n`);
    });
    let tail = '';
    socket.on('data', (chunk) => {
      tail = (tail + chunk.toString('latin1')).slice(-64);
    });
    socket.on('error', reject);
    socket.on('close', () => (/\+OK[^\n]*\r\n$/.test(tail) ? resolve() : reject(new Error(`warming the server ended: ${JSON.stringify(tail)}`))));
    socket.setTimeout(120_000, () => socket.destroy(new Error('warming the server timed out')));
  });
}

async function firstSync(opts) {
  if (!fs.existsSync(opts.testEnv)) {
    console.log(
      `\nsync: skipped, no ${opts.testEnv} ` +
        '(cargo build --release -p webpop-testkit --bin webpop-test-env; scripts/bench ui does)',
    );
    return;
  }
  // env.mjs starts the binary named here with dist/ as its web root.
  process.env.WEBPOP_TEST_ENV_BIN = opts.testEnv;
  process.env.WEBPOP_E2E_WEB_ROOT = opts.dist;
  const started = Date.now();
  const env = await startTestEnv({
    controlVar: 'WEBPOP_UI_BENCH_ENV',
    args: (webRoot) => [String(opts.syncMessages), '--web-root', webRoot],
    required: ['web'],
    startAs: `webpop-test-env ${opts.syncMessages} --web-root dist`,
  });
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({ executablePath: opts.chromium, args: CHROMIUM_ARGS });
  try {
    // The env's first mailbox holds the COUNT messages it was started with.
    console.log(
      `\nsync: webpop-test-env up in ${((Date.now() - started) / 1000).toFixed(1)} s; mailbox ` +
        `"${env.env.user}": ${opts.syncMessages.toLocaleString('en')} messages`,
    );
    const warmStart = Date.now();
    await warmServer({
      host: env.env.host,
      port: env.env.pop3s_port,
      user: env.env.user,
      password: env.env.password,
      fingerprint: colonHex(env.env.cert_sha256).toUpperCase(),
    });
    console.log(`sync: the server listed the mailbox once beforehand (${Date.now() - warmStart} ms), as after delivery`);
    const context = await browser.newContext({ baseURL: env.env.web, viewport: { width: 1280, height: 800 } });
    await context.addInitScript(initScript, { listbox: LISTBOX });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto('/', { waitUntil: 'commit' });
    if ((await waitForBench(page, 'ready', 60_000)) === null) {
      console.log('sync: the app never set body[data-ready="1"]');
      return;
    }
    const form = page.getByRole('form', { name: 'Add account' });
    await fillAccountForm(form, {
      email: `${env.env.user}@localhost`,
      user: env.env.user,
      password: env.env.password,
      server: env.env.host,
      port: env.env.pop3s_port,
      security: 'tls',
      fingerprint: colonHex(env.env.cert_sha256),
    });
    await settle(page);
    await page.evaluate(watchFirstSync, { listbox: LISTBOX });
    const wallStart = Date.now();
    await form.getByRole('button', { name: 'Add account' }).click();

    // Scroll the list, down and back up, until the status says "Synced" (at most 10 minutes).
    const listbox = page.locator(LISTBOX);
    let direction = 1;
    let wheels = 0;
    let placed = false;
    const deadline = Date.now() + 600_000;
    while (Date.now() < deadline) {
      const state = await page.evaluate(() => window.__sync);
      if (state.synced !== null) break;
      if (!placed && (await listbox.count()) > 0) {
        const box = await listbox.boundingBox();
        if (box) {
          await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
          placed = true;
        }
      }
      if (!placed) {
        await page.waitForTimeout(50);
        continue;
      }
      for (let i = 0; i < 10; i++) {
        await page.mouse.wheel(0, direction * 600);
        await page.waitForTimeout(30);
        wheels++;
      }
      const { top, end } = await listbox.evaluate((el) => ({ top: el.scrollTop, end: el.scrollHeight - el.clientHeight }));
      if (direction > 0 && top >= end - 2) direction = -1;
      else if (direction < 0 && top <= 0) direction = 1;
    }
    const wallSeconds = (Date.now() - wallStart) / 1000;
    await page.waitForTimeout(500);
    const result = await page.evaluate(() => ({
      ...window.__sync,
      longtasks: window.__bench.longtasks,
      rows: document.querySelectorAll('[role="listbox"][aria-label="Messages"] [role="option"]').length,
    }));
    reportSync({ result, wheels, wallSeconds, messages: opts.syncMessages });
    if (errors.length) console.log(`sync: page errors: ${errors.slice(0, 5).join('; ')}`);
  } finally {
    await browser.close();
    await env.stop();
  }
}

function reportSync({ result, wheels, wallSeconds, messages }) {
  const { clicked, signedIn, firstRow, synced, statuses, longtasks } = result;
  const n = messages.toLocaleString('en');
  if (synced === null) {
    console.log(`sync: did not finish in 10 minutes; statuses: ${JSON.stringify(statuses.slice(-5))}`);
  }
  const tasks = longtasks === null ? null : longtasks.filter((t) => t.start >= clicked);
  const over = tasks === null ? null : tasks.filter((t) => t.duration > TARGET.longTaskMs);
  const longest = over === null ? null : Math.max(0, ...over.map((t) => t.duration));
  const total = over === null ? null : over.reduce((sum, t) => sum + t.duration, 0);
  const firstRowAfter = signedIn === null || firstRow === null ? null : Math.max(0, firstRow - signedIn);
  const sinceClick = (t) => (t === null ? null : t - clicked);
  console.log(`\nfirst sync of ${n} messages through the app while the list scrolls (the sync in its Web Worker)\n`);
  table(
    ['measure', 'webpop', 'target'],
    [
      ['long tasks > 50 ms (click to "Synced")', over === null ? 'n/a' : String(over.length), '0'],
      ['  longest', longest === null ? 'n/a' : longest ? ms(longest) : 'none', `≤ ${ms(TARGET.longTaskMs)}`],
      ['  their total', total === null ? 'n/a' : ms(total), ''],
      ['first row after sign-in completes', ms(firstRowAfter), `≤ ${ms(TARGET.signInToFirstRowMs)}`],
      ['sync time (click "Add account" to "Synced")', ms(sinceClick(synced)), "not worse than today's"],
      ['  of which sign-in (click to form gone)', ms(sinceClick(signedIn)), ''],
    ],
  );
  console.log(
    `\nsync: ${wheels} wheel events of 600 px meanwhile; ${result.rows} rows in the DOM at the end; ` +
      `wall clock ${wallSeconds.toFixed(1)} s; last status: ${JSON.stringify(statuses[statuses.length - 1] ?? '')}`,
  );
  if (over?.length) {
    const shown = over.slice(0, 20).map((t) => `${(t.start - clicked).toFixed(0)}+${t.duration.toFixed(0)}`);
    const more = over.length > 20 ? `, … (${over.length - 20} more)` : '';
    console.log(`sync: long tasks (ms after the click + duration): ${shown.join(', ')}${more}`);
  }
}

// ---------------------------------------------------------------------------------------------

// --selftest: the fixture app with dist's (or frontend/static's) service worker, manifest, icons.
function selftestRoot(dist) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'webpop-ui-bench-'));
  for (const file of fs.readdirSync(path.join(HERE, 'fixture'))) {
    fs.copyFileSync(path.join(HERE, 'fixture', file), path.join(root, file));
  }
  const staticDir = path.join(ROOT, 'frontend/static');
  for (const file of ['sw.js', 'manifest.webmanifest', 'icon.svg', 'icon-192.png', 'icon-512.png']) {
    const from = fs.existsSync(path.join(dist, file)) ? path.join(dist, file) : path.join(staticDir, file);
    if (fs.existsSync(from)) fs.copyFileSync(from, path.join(root, file));
  }
  return root;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let webRoot = opts.dist;
  if (opts.selftest) {
    webRoot = selftestRoot(opts.dist);
    console.log(`selftest: serving bench/ui/fixture (plain JS, not webpop) from ${webRoot}`);
  } else if (!fs.existsSync(path.join(opts.dist, 'index.html'))) {
    fail(`no ${opts.dist}/index.html: build the web app (scripts/bench ui does)`);
  }
  const proxy = await startProxy(opts.proxy, webRoot);
  try {
    await bundle(webRoot, proxy.base);
    if (!opts.bundleOnly && !opts.syncOnly) await inbox(opts, proxy);
  } finally {
    await proxy.stop();
  }
  try {
    // The fixture has no sync; the first sync needs the real app.
    if (!opts.bundleOnly && opts.sync && !opts.selftest) await firstSync(opts);
  } finally {
    if (opts.selftest) fs.rmSync(webRoot, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`error: ${e.stack || e}`);
  process.exit(1);
});
