// The server side of the end-to-end test: `webpop-test-env` (testkit/) runs a private
// Dovecot, the relay (which also serves the built web app from dist/, so the page and /relay are
// same-origin) and a "canary" HTTP server on 127.0.0.1, and answers a small control API.
//
// With WEBPOP_TEST_ENV set (scripts/test does), that control URL is used; the env must have been
// started with `--web-root dist --e2e-fixtures frontend/e2e/fixtures`. Without it, the test starts
// its own env from target/debug/webpop-test-env (build it with
// `cargo build -p webpop-testkit --bin webpop-test-env`) and stops it at the end.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = path.resolve(E2E_DIR, '..', '..');
export const FIXTURES = path.join(E2E_DIR, 'fixtures');

const START_TIMEOUT_MS = 180_000;

/** Starts (or connects to) the test env; returns a handle with the `/env` JSON and helpers. */
export async function startEnv() {
  return startTestEnv({
    controlVar: 'WEBPOP_TEST_ENV',
    // 0: the wasm-bindgen tests' mailboxes stay empty; the e2e mailbox has its own fixed content.
    args: (webRoot) => ['0', '--web-root', webRoot, '--e2e-fixtures', FIXTURES],
    required: ['web', 'canary', 'e2e'],
    startAs: 'webpop-test-env 0 --web-root dist --e2e-fixtures frontend/e2e/fixtures',
  });
}

/**
 * Connects to the running test env whose control URL is in $`controlVar`, else starts one from
 * target/debug/webpop-test-env with `args(webRoot)` (stopped by the handle's `stop()`). The env's
 * `/env` JSON must have every key of `required`; `startAs` is the command line the error message
 * suggests when it has not.
 */
export async function startTestEnv({ controlVar, args, required, startAs }) {
  let control = process.env[controlVar];
  let child = null;
  if (!control) {
    ({ control, child } = await spawnEnv(controlVar, args));
  }
  control = control.replace(/\/+$/, '');
  const handle = {
    control,
    child,
    env: null,
    async get(route) {
      return request('GET', control + route);
    },
    async post(route) {
      return request('POST', control + route);
    },
    /** Requests the canary has seen (oldest first). */
    async canaryLog() {
      return request('GET', control + '/canary');
    },
    async stop() {
      if (!child) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGTERM'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
  try {
    handle.env = await handle.get('/env');
  } catch (e) {
    await handle.stop();
    throw new Error(`the test env's control API at ${control} does not answer: ${e.message}`);
  }
  const missing = required.filter((k) => !handle.env[k]);
  if (missing.length) {
    await handle.stop();
    throw new Error(`the test env at ${control} has no ${missing.join(', ')}: start it as \`${startAs}\``);
  }
  return handle;
}

async function spawnEnv(controlVar, args) {
  const targetDir = process.env.CARGO_TARGET_DIR
    ? path.resolve(REPO, process.env.CARGO_TARGET_DIR)
    : path.join(REPO, 'target');
  const bin = process.env.WEBPOP_TEST_ENV_BIN || path.join(targetDir, 'debug', 'webpop-test-env');
  if (!existsSync(bin)) {
    throw new Error(
      `${bin} is missing: run \`cargo build -p webpop-testkit --bin webpop-test-env\` ` +
        `(or set ${controlVar} to a running env)`,
    );
  }
  const webRoot = process.env.WEBPOP_E2E_WEB_ROOT || path.join(REPO, 'dist');
  if (!existsSync(path.join(webRoot, 'index.html'))) {
    throw new Error(
      `${webRoot}/index.html is missing: build the web app ` +
        '(scripts/wasm-env trunk build --release --offline)',
    );
  }
  const child = spawn(bin, args(webRoot), {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const control = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`webpop-test-env printed no control URL within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`webpop-test-env exited during start-up (status ${code})`));
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  return { control, child };
}

async function request(method, url) {
  const response = await fetch(url, { method, signal: AbortSignal.timeout(30_000) });
  if (!response.ok) {
    throw new Error(`${method} ${url}: HTTP ${response.status}`);
  }
  return response.json();
}

/**
 * The account form's fields for the e2e mailbox on the env's Dovecot over implicit TLS, its
 * certificate pinned; `overrides` replaces fields (a wrong password, say).
 */
export function e2eAccount(env, overrides = {}) {
  return {
    email: `${env.e2e.user}@localhost`,
    user: env.e2e.user,
    password: env.e2e.password,
    server: env.host,
    port: env.pop3s_port,
    security: 'tls',
    fingerprint: colonHex(env.cert_sha256),
    ...overrides,
  };
}

/** `f9c003…` or `F9:C0:03…` → `F9:C0:03:…` (colon-hex, uppercase: what the UI takes). */
export function colonHex(fingerprint) {
  const hex = String(fingerprint).replace(/[^0-9a-fA-F]/g, '').toUpperCase();
  if (hex.length !== 64) {
    throw new Error(`not a SHA-256 fingerprint: ${fingerprint}`);
  }
  return hex.match(/../g).join(':');
}
