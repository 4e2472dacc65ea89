// The real relay binary (`webpop-proxy`), started by a test on 127.0.0.1 to serve the built web
// app (dist/) with its demo mailbox, as `scripts/run` does for a person.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import path from 'node:path';

import { REPO } from './env.mjs';

/**
 * Starts `webpop-proxy --listen 127.0.0.1:0 --web-root dist --demo` plus `extraArgs`; resolves to
 * `{ web, stop }` once it logs the address it serves (`web`: http://127.0.0.1:<port>).
 * The binary is $WEBPOP_PROXY_BIN, or debug/webpop-proxy under $CARGO_TARGET_DIR or target/.
 */
export async function startDemoRelay(extraArgs = []) {
  const targetDir = process.env.CARGO_TARGET_DIR
    ? path.resolve(process.env.CARGO_TARGET_DIR)
    : path.join(REPO, 'target');
  const bin = process.env.WEBPOP_PROXY_BIN || path.join(targetDir, 'debug', 'webpop-proxy');
  assert.ok(existsSync(bin), `${bin} is missing: run cargo build -p webpop-proxy`);
  const dist = path.join(REPO, 'dist');
  assert.ok(existsSync(path.join(dist, 'index.html')), 'dist/ is missing: build the web app');
  const relay = spawn(bin, ['--listen', '127.0.0.1:0', '--web-root', dist, '--demo', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: 'info' },
  });
  const web = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the relay logged no "serving" line')), 60_000);
    createInterface({ input: relay.stdout }).on('line', (line) => {
      const addr = line.split('addr=')[1]?.split(/\s/)[0];
      if (addr && line.includes('serving')) {
        clearTimeout(timer);
        resolve(`http://${addr}`);
      }
    });
    relay.on('exit', (code) => reject(new Error(`the relay exited (${code})`)));
  });
  return { web, stop: () => relay.kill('SIGTERM') };
}
