// The relay binary as `scripts/run` starts it for a new user: `webpop-proxy --demo` serves the
// built web app (dist/) on 127.0.0.1 and runs the demo mailbox next to it, which the page offers
// as "Try the demo mailbox" (webpop-test-env serves no /demo.json).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { REPO } from './env.mjs';

/**
 * Starts the relay with `--demo` and `extraArgs` (`--token-file`, ...); returns `{ web, stop() }`
 * (`web`: the page's origin, http://127.0.0.1:<port>).
 */
export async function startDemoRelay(extraArgs = []) {
  const targetDir = process.env.CARGO_TARGET_DIR
    ? path.resolve(REPO, process.env.CARGO_TARGET_DIR)
    : path.join(REPO, 'target');
  const bin = process.env.WEBPOP_PROXY_BIN || path.join(targetDir, 'debug', 'webpop-proxy');
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: run \`cargo build -p webpop-proxy --bin webpop-proxy\``);
  }
  const dist = process.env.WEBPOP_E2E_WEB_ROOT || path.join(REPO, 'dist');
  if (!existsSync(path.join(dist, 'index.html'))) {
    throw new Error(`${dist}/index.html is missing: scripts/wasm-env trunk build --release --offline`);
  }
  const relay = spawn(bin, ['--listen', '127.0.0.1:0', '--web-root', dist, '--demo', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: 'info' },
  });
  const exited = new Promise((resolve) => relay.once('exit', resolve));
  const web = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the relay logged no "serving" line in 60 s')), 60_000);
    createInterface({ input: relay.stdout }).on('line', (line) => {
      const addr = line.split('addr=')[1]?.split(/\s/)[0];
      if (addr && line.includes('serving')) {
        clearTimeout(timer);
        resolve(`http://${addr}`);
      }
    });
    relay.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the relay exited during start-up (${code})`));
    });
  });
  return {
    web,
    async stop() {
      relay.kill('SIGTERM');
      await exited;
    },
  };
}
