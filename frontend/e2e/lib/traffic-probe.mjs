// The positive control of the traffic check, run by engines-traffic.test.mjs as
//   unshare --net -- sh -c 'ip link set lo up && exec node lib/traffic-probe.mjs <engine> <artifacts> [bare]'
// inside a network namespace of its own that has only loopback and no route anywhere. It refuses
// to run anywhere else: its page reaches for 10.255.255.1 and for a host name on purpose, and
// that must never leave the machine. In the namespace, the kernel answers such a connect() at
// once with "network unreachable"; the browser's attempt is still on strace's record, which is
// what the control proves.
//
// Prints one JSON line: { engine, lockedDown, isolated, page, traffic, probes }.

import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { launch } from './engines.mjs';
import { readTraffic } from './traffic.mjs';
import { waitUntil } from './wait.mjs';

export const UNREACHABLE = '10.255.255.1';

/** True only inside a network namespace with loopback alone and no IPv4 route at all. */
function isolated() {
  const names = Object.keys(networkInterfaces());
  if (names.some((n) => n !== 'lo')) return false;
  const v4 = readFileSync('/proc/net/route', 'utf8').trim().split('\n').slice(1);
  if (v4.length > 0) return false;
  const v6 = readFileSync('/proc/net/ipv6_route', 'utf8').trim().split('\n').filter(Boolean);
  return v6.every((line) => line.trim().endsWith(' lo'));
}

// `bare`: without the flags and prefs that keep the browser off the network, so that the
// browser really calls connect() and the check must see it.
const [engine, artifacts, bare] = process.argv.slice(2);
const lockedDown = bare !== 'bare';
if (!isolated()) {
  console.log(JSON.stringify({ engine, isolated: false }));
  process.exit(2);
}

// The page: after load, a fetch and an image to 10.255.255.1, and a fetch by host name.
const PAGE = `<!doctype html><title>traffic probe</title><body><p id="state">running</p><script>
const results = [];
const done = () => { document.getElementById('state').textContent = 'done ' + JSON.stringify(results); };
const attempts = [
  fetch('http://${UNREACHABLE}/webpop-probe', { mode: 'no-cors' }).then(() => 'ok', (e) => String(e)),
  fetch('http://webpop-probe.example/', { mode: 'no-cors' }).then(() => 'ok', (e) => String(e)),
  new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve('ok');
    img.onerror = () => resolve('error');
    img.src = 'http://${UNREACHABLE}:8080/probe.png';
  }),
];
Promise.all(attempts.map((p) => Promise.race([p, new Promise((r) => setTimeout(() => r('timeout'), 20000))])))
  .then((r) => { results.push(...r); done(); });
</script>`;
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(PAGE);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/`;

const label = lockedDown ? 'traffic-probe' : 'traffic-probe-bare';
const session = await launch(engine, { label, artifacts, trace: true, lockedDown });
let page = null;
try {
  await session.goto(url);
  page = await waitUntil(
    async () => {
      const text = await session.evaluate(() => document.getElementById('state')?.textContent || '');
      return text.startsWith('done') ? text : null;
    },
    { timeout: 60_000, what: 'the probe page to finish' },
  );
  await session.screenshot('traffic-probe');
} finally {
  const straceFile = await session.close();
  server.close();
  const { traffic, probes } = readTraffic(straceFile);
  console.log(JSON.stringify({ engine, lockedDown, isolated: true, page, traffic, probes }));
}
