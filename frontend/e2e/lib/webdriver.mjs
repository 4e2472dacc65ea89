// The processes under a W3C WebDriver session: the driver server (chromedriver, geckodriver,
// WebKitWebDriver) on a free 127.0.0.1 port, optionally traced by strace so that every
// connect()/sendto()/sendmsg() of the driver and the browser it starts is on record (see
// traffic.mjs), and an Xvfb display for a browser that has no headless mode (MiniBrowser).
//
// The harness starts the driver itself and hands its address to selenium-webdriver
// (`Builder.usingServer`): selenium then never runs its selenium-manager, so no driver or browser
// is ever looked up or downloaded.

import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { waitUntil } from './wait.mjs';

// Drivers and displays run in process groups of their own (so that stopping one stops the browser
// it started too); these are killed when this process exits, however it exits, so that a test
// that dies early leaves no browser behind.
const LIVE = new Set();
process.once('exit', () => {
  for (const child of LIVE) killGroup(child);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
}

/** Where strace is, or null: the traffic check needs it, the rest does not. */
export function straceBinary() {
  for (const p of ['/usr/bin/strace', '/bin/strace']) {
    if (existsSync(p)) return p;
  }
  return null;
}

/** A port the kernel just gave out on 127.0.0.1 (closed again, so the driver can bind it). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `binary` with `args(port)` and waits until its WebDriver `/status` answers. With
 * `straceFile`, the process and every process it starts run under strace, which writes each
 * network system call (and its address) to that file. `log(line)` gets the driver's output.
 * Returns `{ url, child, stop() }`.
 */
export async function startDriver({ binary, args, env = {}, straceFile = null, log = () => {} }) {
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: run scripts/setup`);
  }
  const port = await freePort();
  let command = binary;
  let argv = args(port);
  if (straceFile) {
    const strace = straceBinary();
    if (!strace) throw new Error('strace is missing: run scripts/setup');
    // --seccomp-bpf: only the traced calls stop the process, so the browser runs at nearly full
    // speed. -qq: no attach/exit chatter. -s 0: no buffer contents (mail text stays out of it).
    argv = [
      '-f', '--seccomp-bpf', '-qq', '-yy', '-s', process.env.WEBPOP_STRACE_STRLEN || '0', '-e', 'trace=connect,sendto,sendmsg,sendmmsg',
      '-o', straceFile, '--', binary, ...argv,
    ];
    command = strace;
  }
  const child = spawn(command, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
    detached: true,
  });
  LIVE.add(child);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => LIVE.delete(child));
  let exit = null;
  exited.then((e) => {
    exit = e;
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    let rest = '';
    stream.on('data', (chunk) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop();
      for (const line of lines) log(line);
    });
  }
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(
      async () => {
        if (exit) throw new Error(`${binary} exited (${exit.code ?? exit.signal}) during start-up`);
        const response = await fetch(`${url}/status`, { signal: AbortSignal.timeout(5_000) });
        return response.ok;
      },
      { timeout: 60_000, what: `${binary} answering on ${url}/status` },
    );
  } catch (e) {
    killGroup(child);
    throw e;
  }
  return {
    url,
    child,
    /** Stops the driver and everything it started (one process group), and waits for it. */
    async stop() {
      if (exit) return;
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function killGroup(child, signal = 'SIGKILL') {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Starts an Xvfb display (the first free one, chosen by Xvfb itself) that listens on no TCP
 * port. Returns `{ display: ':N', stop() }`.
 */
export async function startXvfb() {
  const binary = '/usr/bin/Xvfb';
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run scripts/setup (xvfb)`);
  const child = spawn(binary, ['-displayfd', '3', '-nolisten', 'tcp', '-screen', '0', '1280x800x24'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    detached: true,
  });
  LIVE.add(child);
  child.once('exit', () => LIVE.delete(child));
  let errors = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    errors += d;
  });
  const display = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Xvfb chose no display in 30 s: ${errors}`)), 30_000);
    let out = '';
    child.stdio[3].setEncoding('utf8');
    child.stdio[3].on('data', (d) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(`:${out.trim()}`);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Xvfb exited (${code}): ${errors}`));
    });
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    display,
    async stop() {
      killGroup(child, 'SIGTERM');
      await exited;
    },
  };
}

/** The first line `binary --version` prints, or '?' (for the record, never for a decision). */
export function versionOf(binary, args = ['--version']) {
  const r = spawnSync(binary, args, { encoding: 'utf8', timeout: 30_000 });
  return `${r.stdout || ''}${r.stderr || ''}`.split('\n').find((l) => l.trim()) || '?';
}
