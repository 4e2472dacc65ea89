// No browser makes traffic of its own: each engine (Chromium, Firefox ESR, WebKitGTK; see
// lib/engines.mjs) opens the web app served by the relay with its demo mailbox, under strace,
// and may have connected to nothing but 127.0.0.1 / ::1 (lib/traffic.mjs says what counts).
//
// The positive control proves the check sees what it must: inside a network namespace of its
// own, with loopback alone and no route out (so nothing can leave the machine), a page reaches
// for 10.255.255.1 and for a host name. A browser without our flags must show up in the strace
// record; each locked-down browser must fail those requests without any such connect().
//
// Engines: $WEBPOP_ENGINES (comma-separated), default all three. Artifacts (screenshots,
// browser.log, driver.log, strace.log): <artifacts>/<engine>/{traffic,traffic-probe,traffic-probe-bare}/.
//
//   node --test --test-concurrency=1 frontend/e2e/engines-traffic.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINES, launch } from './lib/engines.mjs';
import { startDemoRelay } from './lib/demo-relay.mjs';
import { readTraffic } from './lib/traffic.mjs';
import { REPO } from './lib/env.mjs';

const SELECTED = (process.env.WEBPOP_ENGINES || ENGINES.join(',')).split(',').filter(Boolean);
const ARTIFACTS = process.env.WEBPOP_E2E_ARTIFACTS
  ? path.resolve(process.env.WEBPOP_E2E_ARTIFACTS)
  : path.join(REPO, 'target', 'e2e-artifacts');
const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'traffic-probe.mjs');

let relay;
before(async () => {
  relay = await startDemoRelay();
});
after(async () => {
  if (relay) await relay.stop();
});

function show(calls) {
  return calls.map((c) => `  ${c.proto} ${c.call} → ${c.to} (pid ${c.pid})`).join('\n');
}

for (const engine of SELECTED) {
  test(`${engine}_opens_no_connection_beyond_loopback`, { timeout: 240_000 }, async () => {
    const t0 = Date.now();
    const session = await launch(engine, { label: 'traffic', artifacts: ARTIFACTS, trace: true });
    let straceFile;
    try {
      await session.goto(relay.web);
      // The app's own markup, whatever state start-up reaches in this engine.
      await session.waitFor({ role: 'form', name: 'Add account' }, { timeout: 90_000 });
      await session.screenshot('traffic-app-open');
      // Give late background work (update checks, telemetry pings) a moment to show itself.
      await new Promise((resolve) => setTimeout(resolve, 5_000));
    } finally {
      straceFile = await session.close();
    }
    const { calls, traffic, probes } = readTraffic(straceFile);
    session.note(`traffic check: ${calls.length} network calls, ${probes.length} UDP route probes, ${Date.now() - t0} ms`);
    assert.ok(calls.length > 0, `strace saw no network call at all in ${straceFile}: is it tracing?`);
    assert.deepEqual(traffic, [], `${engine} reached beyond loopback:\n${show(traffic)}\n(see ${straceFile})`);
  });
}

/** Runs the probe page in a fresh network namespace; null when one cannot be made here. */
function probe(engine, bare) {
  const r = spawnSync(
    'unshare',
    ['--net', '--', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, PROBE, engine,
      ARTIFACTS, bare ? 'bare' : 'locked'],
    { encoding: 'utf8', timeout: 200_000 },
  );
  const last = (r.stdout || '').trim().split('\n').pop();
  if (r.status !== 0 && !last?.startsWith('{')) {
    return { unavailable: `${r.error?.message || ''}${r.stderr || ''}`.trim() };
  }
  const result = JSON.parse(last);
  assert.ok(result.isolated, 'the probe refused to run: the namespace was not isolated');
  assert.equal(r.status, 0, `the probe failed:\n${r.stderr}`);
  return result;
}

function namespaceSkip() {
  const r = spawnSync('unshare', ['--net', '--', 'true']);
  return r.status === 0 ? false : 'no network namespace can be made here (unshare --net needs root or user namespaces)';
}

// Firefox is left out of the bare run: in a namespace without a network link it goes offline
// by itself and fails the requests without a connect(), which would prove nothing here.
for (const engine of SELECTED.filter((e) => e !== 'firefox')) {
  test(`the traffic check sees ${engine} without its flags reach for 10.255.255.1`, { timeout: 240_000, skip: namespaceSkip() }, () => {
    const r = probe(engine, true);
    assert.ok(!r.unavailable, r.unavailable);
    const seen = r.traffic.map((c) => c.to);
    assert.ok(seen.includes('10.255.255.1:80'), `the fetch to 10.255.255.1 went unseen; seen:\n${show(r.traffic)}`);
    assert.ok(seen.includes('10.255.255.1:8080'), `the image from 10.255.255.1:8080 went unseen; seen:\n${show(r.traffic)}`);
  });
}

for (const engine of SELECTED) {
  test(`${engine} locked down fails requests to 10.255.255.1 and to host names without connecting`, { timeout: 240_000, skip: namespaceSkip() }, () => {
    const r = probe(engine, false);
    assert.ok(!r.unavailable, r.unavailable);
    assert.match(r.page, /^done /, 'the probe page finished');
    assert.ok(!JSON.parse(r.page.slice(5)).includes('ok'), `a probe request succeeded: ${r.page}`);
    assert.deepEqual(r.traffic, [], `${engine} tried to reach beyond loopback:\n${show(r.traffic)}`);
  });
}
