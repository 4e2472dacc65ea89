// Three browser engines behind one small API, through W3C WebDriver (selenium-webdriver), with
// WebDriver BiDi where the driver has it:
//   chromium — Debian's Chromium through Debian's chromedriver (flags: chromium-args.mjs);
//   firefox  — Debian's Firefox ESR through geckodriver (built by scripts/setup), a fresh profile
//              whose prefs send nothing anywhere and resolve every host name to 127.0.0.1;
//   webkit   — WebKitGTK's MiniBrowser through WebKitWebDriver, on an Xvfb display of its own.
//
// `launch(engine, { artifacts })` → a Session: goto, click/fill/waitFor by role and accessible
// name, by text or by CSS selector, evaluate, screenshot (into <artifacts>/<engine>/<label>/), the
// browser's console (BiDi log.entryAdded where the driver has BiDi), close. With
// `{ trace: true }` the driver and browser run under strace; `session.close()` then returns
// the network calls they made (traffic.mjs reads them).
//
// Permission prompts keep their defaults on purpose: the app must not wait on one.
//
// What each driver offers (measured 2026-12 on Debian 12):
//   chromedriver 156 + Chromium 156: W3C classic and BiDi (log.entryAdded works);
//   geckodriver 0.37.1 + Firefox ESR 153.8: W3C classic and BiDi (log.entryAdded works);
//   WebKitWebDriver 2.50.6 + MiniBrowser: W3C classic only. A session asking for BiDi
//   (webSocketUrl: true) is refused ("Failed to match capabilities"), so WebKit's console is
//   not captured (MiniBrowser's --enable-write-console-messages-to-stdout reaches no output we
//   get either). MiniBrowser has no headless mode: it runs on an Xvfb display.

import { mkdirSync, writeFileSync, appendFileSync, rmSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Builder } from 'selenium-webdriver';
import { REPO } from './env.mjs';
import { CHROMIUM_BASE_ARGS, CHROMIUM_NO_TRAFFIC_ARGS } from './chromium-args.mjs';
import { startDriver, startXvfb, versionOf } from './webdriver.mjs';
import { waitUntil } from './wait.mjs';

export const ENGINES = ['chromium', 'firefox', 'webkit'];

const CARGO_BIN = path.join(process.env.CARGO_HOME || path.join(process.env.HOME || '/root', '.cargo'), 'bin');

/** Binaries, overridable from the environment (WEBPOP_<WHAT>). */
export const BINARIES = {
  chromium: process.env.WEBPOP_CHROMIUM || '/usr/bin/chromium',
  chromedriver: process.env.CHROMEDRIVER || '/usr/bin/chromedriver',
  firefox: process.env.WEBPOP_FIREFOX || '/usr/bin/firefox-esr',
  geckodriver: process.env.GECKODRIVER || path.join(CARGO_BIN, 'geckodriver'),
  minibrowser:
    process.env.WEBPOP_MINIBROWSER || `/usr/lib/${multiarch()}/webkit2gtk-4.1/MiniBrowser`,
  webkitdriver: process.env.WEBKIT_WEBDRIVER || '/usr/bin/WebKitWebDriver',
};

/**
 * A WebKitGTK browser with a persistent website data directory (MiniBrowser keeps a driven
 * session's data in memory only): `launch('webkit', { dataDir })` runs it.
 */
const WEBKIT_BROWSER = path.join(REPO, 'frontend', 'e2e', 'lib', 'webkit-browser.py');
const WEBKIT_BROWSER_NAME = 'webpop-webkit-browser';

function multiarch() {
  return { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[process.arch] || `${process.arch}-linux-gnu`;
}

/**
 * Firefox prefs for a profile that makes no traffic of its own. geckodriver already sets its
 * "recommended" automation prefs (no first-run pages, no update checks); these make sure and
 * cover the rest. Whatever still asks for a host name gets 127.0.0.1.
 */
export const FIREFOX_PREFS = {
  // Every host name resolves to 127.0.0.1; no DNS over HTTPS; no prefetching or pre-connects.
  'network.dns.forceResolve': '127.0.0.1',
  'network.trr.mode': 5,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'network.http.speculative-parallel-limit': 0,
  'network.predictor.enabled': false,
  'browser.urlbar.speculativeConnect.enabled': false,
  'network.proxy.type': 0,
  // Updates (the app, add-ons, system add-ons, search engines, region).
  'app.update.disabledForTesting': true,
  'app.update.auto': false,
  'app.update.staging.enabled': false,
  'extensions.update.enabled': false,
  'extensions.getAddons.cache.enabled': false,
  'extensions.systemAddon.update.enabled': false,
  'extensions.systemAddon.update.url': '',
  'extensions.blocklist.enabled': false,
  'browser.search.update': false,
  'browser.region.network.url': '',
  'browser.region.update.enabled': false,
  // Telemetry and studies.
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.archive.enabled': false,
  'toolkit.telemetry.server': '',
  'toolkit.coverage.endpoint.base': '',
  'datareporting.healthreport.uploadEnabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'app.normandy.enabled': false,
  'app.normandy.api_url': '',
  'app.shield.optoutstudies.enabled': false,
  'browser.ping-centre.telemetry': false,
  'browser.discovery.enabled': false,
  // Remote settings (and what fetches through it), pointed at a closed loopback port.
  'services.settings.server': 'http://127.0.0.1:9/v1',
  'security.remote_settings.crlite_filters.enabled': false,
  'security.remote_settings.intermediates.enabled': false,
  'security.OCSP.enabled': 0,
  'browser.translations.enable': false,
  'browser.ml.enable': false,
  // Safe browsing.
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.blockedURIs.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'browser.safebrowsing.downloads.remote.enabled': false,
  'browser.safebrowsing.provider.google4.updateURL': '',
  'browser.safebrowsing.provider.google.updateURL': '',
  'browser.safebrowsing.provider.mozilla.updateURL': '',
  // Captive portal and connectivity checks.
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'captivedetect.canonicalURL': '',
  // New tab, Pocket, sponsored tiles, accounts, push, geolocation, media plugins.
  'browser.startup.page': 0,
  'browser.startup.homepage': 'about:blank',
  'browser.newtabpage.enabled': false,
  'browser.newtabpage.activity-stream.feeds.section.topstories': false,
  'browser.newtabpage.activity-stream.feeds.telemetry': false,
  'browser.newtabpage.activity-stream.telemetry': false,
  'browser.newtabpage.activity-stream.showSponsored': false,
  'browser.newtabpage.activity-stream.showSponsoredTopSites': false,
  'browser.topsites.contile.enabled': false,
  'extensions.pocket.enabled': false,
  'identity.fxaccounts.enabled': false,
  'dom.push.connection.enabled': false,
  'dom.push.serverURL': '',
  'geo.provider.network.url': '',
  'media.gmp-manager.url': '',
  'media.gmp-gmpopenh264.enabled': false,
  'media.gmp-widevinecdm.enabled': false,
  'browser.uitour.enabled': false,
};

/**
 * MiniBrowser options: no DNS prefetching, no <a ping>, and an HTTP proxy on a closed loopback
 * port for every host but loopback, so a request that would leave the machine fails at once.
 */
export const MINIBROWSER_ARGS = [
  '--automation',
  '--enable-dns-prefetching=false',
  '--enable-hyperlink-auditing=false',
  '--proxy=http://127.0.0.1:9',
  // One host per option (a list in one value is taken as one host name).
  '--ignore-host=127.0.0.1',
  '--ignore-host=::1',
  '--ignore-host=localhost',
];

// `lockedDown: false` drops what this file adds to keep a browser off the network (only the
// traffic check's positive control does that, in a network namespace with no route out).
// `bidi: false` asks for a classic-only session (Chromium then runs no BiDi mapper tab, a
// renderer of its own that a test killing the page's renderers must not take down).
function capabilities(engine, lockedDown, bidi = true, survive = null, dataDir = null) {
  switch (engine) {
    case 'chromium':
      return {
        browserName: 'chrome',
        webSocketUrl: bidi,
        // chromedriver's own browser log carries what the browser itself prints to the console
        // (a CSP refusal in any frame), which BiDi's log.entryAdded leaves out.
        'goog:loggingPrefs': { browser: 'ALL' },
        'goog:chromeOptions': {
          binary: BINARIES.chromium,
          args: [...CHROMIUM_BASE_ARGS, ...(lockedDown ? CHROMIUM_NO_TRAFFIC_ARGS : []), '--window-size=1280,800'],
        },
      };
    case 'firefox':
      return {
        browserName: 'firefox',
        webSocketUrl: bidi,
        'moz:firefoxOptions': {
          // geckodriver sets MOZ_CRASHREPORTER_SHUTDOWN, with which Firefox quits as soon as a
          // content process dies ("A content process crashed and MOZ_CRASHREPORTER_SHUTDOWN is
          // set, shutting down"); a test that kills one on purpose (`surviveTabCrash`) starts
          // Firefox through a script that drops it (firefoxOptions.env cannot unset it).
          binary: survive ? survivingFirefox(survive) : BINARIES.firefox,
          args: ['-headless', '-width', '1280', '-height', '800'],
          prefs: lockedDown ? FIREFOX_PREFS : {},
        },
      };
    case 'webkit':
      if (dataDir) {
        // webkit-browser.py: WebKitGTK with its website data kept in dataDir, so that a session
        // started after one that lost its web process finds the same IndexedDB.
        return {
          browserName: WEBKIT_BROWSER_NAME,
          'webkitgtk:browserOptions': {
            binary: '/usr/bin/python3',
            args: [WEBKIT_BROWSER, '--automation', `--data-dir=${dataDir}`],
          },
        };
      }
      return {
        browserName: 'MiniBrowser',
        'webkitgtk:browserOptions': {
          binary: BINARIES.minibrowser,
          args: lockedDown ? MINIBROWSER_ARGS : ['--automation'],
        },
      };
    default:
      throw new Error(`unknown engine ${engine}: one of ${ENGINES.join(', ')}`);
  }
}

/** An executable script in `dir` that starts Firefox without MOZ_CRASHREPORTER_SHUTDOWN. */
function survivingFirefox(dir) {
  const script = path.join(dir, 'firefox');
  writeFileSync(script, `#!/bin/sh\nunset MOZ_CRASHREPORTER_SHUTDOWN\nexec '${BINARIES.firefox.replace(/'/g, "'\\''")}' "$@"\n`, { mode: 0o755 });
  return script;
}

function driverCommand(engine) {
  switch (engine) {
    case 'chromium':
      return { binary: BINARIES.chromedriver, args: (port) => [`--port=${port}`, '--allowed-ips=127.0.0.1'] };
    case 'firefox':
      // --websocket-port 0: geckodriver's own default (9222) may be taken by another session.
      return {
        binary: BINARIES.geckodriver,
        args: (port) => ['--host', '127.0.0.1', '--port', String(port), '--websocket-port', '0'],
      };
    case 'webkit':
      return { binary: BINARIES.webkitdriver, args: (port) => [`--port=${port}`, '--host=local'] };
    default:
      throw new Error(`unknown engine ${engine}`);
  }
}

/**
 * Where one session's screenshots and logs go: <artifacts>/<engine>/<label>/, emptied of what an
 * earlier run left there (so each test file's sessions keep their own). `artifacts` defaults to
 * $WEBPOP_E2E_ARTIFACTS or target/e2e-artifacts.
 */
export function engineArtifacts(engine, label, artifacts) {
  const root = artifacts
    ? path.resolve(artifacts)
    : process.env.WEBPOP_E2E_ARTIFACTS
      ? path.resolve(process.env.WEBPOP_E2E_ARTIFACTS)
      : path.join(REPO, 'target', 'e2e-artifacts');
  if (!/^[a-z0-9-]+$/.test(label)) throw new Error(`artifact label ${label}: use a-z, 0-9 and -`);
  const dir = path.join(root, engine, label);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Starts `engine`'s driver (under strace with `trace`), a fresh browser profile and one window;
 * artifacts go to <artifacts>/<engine>/<label>/. Returns a Session; always `close()` it.
 * `dataDir` (WebKitGTK only): keep the website data there, not in memory, so that a later
 * session on the same directory sees the same storage (lib/webkit-browser.py).
 */
export async function launch(
  engine,
  {
    label = 'session',
    artifacts,
    trace = false,
    timeout = 60_000,
    lockedDown = true,
    bidi = true,
    surviveTabCrash = false,
    dataDir = null,
  } = {},
) {
  if (dataDir && engine !== 'webkit') throw new Error(`launch: dataDir is for webkit only, not ${engine}`);
  const dir = engineArtifacts(engine, label, artifacts);
  const logFile = path.join(dir, 'browser.log');
  writeFileSync(logFile, '');
  writeFileSync(path.join(dir, 'driver.log'), '');
  const started = Date.now();
  const stamp = () => `[${((Date.now() - started) / 1000).toFixed(3)}]`;
  const note = (line) => appendFileSync(logFile, `${stamp()} ${line}\n`);
  const driverLog = (line) => appendFileSync(path.join(dir, 'driver.log'), `${stamp()} ${line}\n`);

  const straceFile = trace ? path.join(dir, 'strace.log') : null;
  let xvfb = null;
  let server = null;
  let driver = null;
  try {
    const env = {};
    if (engine === 'webkit') {
      xvfb = await startXvfb();
      env.DISPLAY = xvfb.display;
      note(`Xvfb on ${xvfb.display}`);
    }
    // No session bus: MiniBrowser and Firefox would otherwise try to start or reach one.
    env.DBUS_SESSION_BUS_ADDRESS = 'disabled:';
    const { binary, args } = driverCommand(engine);
    server = await startDriver({ binary, args, env, straceFile, log: driverLog });
    note(`${path.basename(binary)} (${versionOf(binary)}) at ${server.url}${trace ? ', under strace' : ''}`);
    driver = await new Builder().usingServer(server.url).withCapabilities(capabilities(engine, lockedDown, bidi, surviveTabCrash ? dir : null, dataDir)).build();
    await driver.manage().setTimeouts({ script: timeout, pageLoad: 90_000 });
    if (engine !== 'chromium') {
      // Chromium's window size comes from its flags; the others from the window rectangle.
      await driver.manage().window().setRect({ width: 1280, height: 800 }).catch(() => {});
    }
  } catch (e) {
    if (driver) await driver.quit().catch(() => {});
    if (server) await server.stop();
    if (xvfb) await xvfb.stop();
    throw e;
  }

  const caps = await driver.getCapabilities();
  const info = {
    engine,
    browserName: caps.get('browserName'),
    browserVersion: caps.get('browserVersion'),
    bidi: typeof caps.get('webSocketUrl') === 'string',
  };
  note(`session: ${info.browserName} ${info.browserVersion}, BiDi ${info.bidi ? 'yes' : 'no'}`);

  const consoleEntries = [];
  if (info.bidi) {
    try {
      const bidi = await driver.getBidi();
      bidi.on('log.entryAdded', (params) => {
        const entry = {
          level: params.level,
          type: params.type,
          text: params.text,
          source: params.source?.context,
        };
        consoleEntries.push(entry);
        note(`console.${params.level} (${params.type}): ${params.text}`);
      });
      await bidi.subscribe('log.entryAdded');
    } catch (e) {
      info.bidi = false;
      note(`BiDi announced but failed: ${e.message}`);
    }
  }

  let shots = 0;
  const session = {
    engine,
    info,
    driver,
    artifacts: dir,
    /** The driver server's process id: the browser and its processes descend from it. */
    driverPid: server.child.pid,
    /** Console messages and uncaught errors (BiDi only; empty where the driver has none). */
    console: consoleEntries,
    note,

    async goto(url) {
      note(`goto ${url}`);
      await driver.get(url);
    },

    /** Runs `fn` (a function or a script body) in the page with `args`; returns its result. */
    async evaluate(fn, ...args) {
      const script = typeof fn === 'function' ? `return (${fn}).apply(null, arguments);` : fn;
      return driver.executeScript(script, ...args);
    },

    /**
     * The first visible element matching `target`: `{ css }`, `{ text }` (an element whose own
     * text contains it) or `{ role, name }` (role from the element or its tag; name from
     * aria-label, aria-labelledby, a label, or the text). Null when there is none.
     */
    async find(target) {
      return driver.executeScript(FIND_SCRIPT, target);
    },

    /** Waits until `target` (see find) is there and visible; returns its element. */
    async waitFor(target, { timeout: wait = 60_000 } = {}) {
      return waitUntil(() => session.find(target), { timeout: wait, what: describe(target) });
    },

    /** Waits for `target`, scrolls it into view, and clicks it as a person would. */
    async click(target, options) {
      const element = await session.waitFor(target, options);
      note(`click ${describe(target)}`);
      await driver.executeScript('arguments[0].scrollIntoView({block: "center"})', element);
      await element.click();
    },

    /** Waits for `target`, empties it and types `value`. */
    async fill(target, value, options) {
      const element = await session.waitFor(target, options);
      note(`fill ${describe(target)}`);
      await element.clear();
      await element.sendKeys(String(value));
    },

    /** Saves `<artifacts>/<engine>/<label>/<NN>-<name>.png` (the viewport) and returns its path. */
    async screenshot(name) {
      shots += 1;
      const file = path.join(dir, `${String(shots).padStart(2, '0')}-${name}.png`);
      const png = await driver.takeScreenshot();
      writeFileSync(file, Buffer.from(png, 'base64'));
      return file;
    },

    /** The page's visible text (for failure messages and "no raw error" checks). */
    async text() {
      return driver.executeScript('return document.body ? document.body.innerText : ""');
    },

    /**
     * Ends the session and stops the driver, its browser and the display. Returns the path of
     * the strace log (with `trace`) or null.
     */
    async close() {
      await driver.quit().catch((e) => note(`quit failed: ${e.message}`));
      await server.stop();
      if (xvfb) await xvfb.stop();
      note('closed');
      return straceFile;
    },
  };
  return session;
}

function describe(target) {
  if (target.css) return `selector ${target.css}`;
  if (target.text) return `text ${JSON.stringify(target.text)}`;
  return `${target.role} ${JSON.stringify(target.name ?? '')}`;
}

// Runs in the page: an approximation of ARIA roles and accessible names good enough for the
// app's own markup (the UI contract names every control).
const FIND_SCRIPT = `
const target = arguments[0];
const IMPLICIT = {
  button: 'button, input[type=button], input[type=submit], input[type=reset], summary',
  link: 'a[href]',
  textbox: 'input:not([type]), input[type=text], input[type=email], input[type=password], input[type=url], textarea',
  searchbox: 'input[type=search]',
  spinbutton: 'input[type=number]',
  combobox: 'select:not([multiple]):not([size])',
  listbox: 'select[multiple], select[size]',
  option: 'option',
  checkbox: 'input[type=checkbox]',
  heading: 'h1, h2, h3, h4, h5, h6',
  article: 'article',
  form: 'form',
  progressbar: 'progress',
  status: 'output',
  dialog: 'dialog',
};
const squash = (s) => (s || '').replace(/\\s+/g, ' ').trim();
const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
function nameOf(el) {
  const label = el.getAttribute('aria-label');
  if (label) return squash(label);
  const by = el.getAttribute('aria-labelledby');
  if (by) return squash(by.split(/\\s+/).map((id) => document.getElementById(id)?.textContent || '').join(' '));
  if (el.labels && el.labels.length) return squash([...el.labels].map((l) => l.textContent).join(' '));
  return squash(el.textContent || el.value || el.getAttribute('title') || '');
}
let candidates;
if (target.css) {
  candidates = [...document.querySelectorAll(target.css)];
} else if (target.text) {
  candidates = [...document.querySelectorAll('body *')].filter((el) =>
    [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.includes(target.text)));
} else {
  const implicit = IMPLICIT[target.role];
  const explicit = '[role="' + target.role + '"]';
  candidates = [...document.querySelectorAll(implicit ? explicit + ', ' + implicit : explicit)].filter(
    (el) => !el.hasAttribute('role') || el.getAttribute('role') === target.role);
  if (target.name !== undefined) candidates = candidates.filter((el) => nameOf(el) === target.name);
}
return candidates.find(visible) || null;
`;

/**
 * The processes that descend from process `root` (read from /proc): `{ pid, ppid, argv }`.
 * Linux only.
 */
export function descendants(root) {
  const procs = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      procs.push({ pid: Number(name), ppid, argv });
    } catch {
      // Gone meanwhile.
    }
  }
  const inside = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (!inside.has(p.pid) && inside.has(p.ppid)) {
        inside.add(p.pid);
        grew = true;
      }
    }
  }
  return procs.filter((p) => p.pid !== root && inside.has(p.pid));
}

/**
 * The processes of `session`'s browser that run web content (pages, their frames and workers):
 * Chromium's renderers (`--type=renderer`), Firefox's content processes (`-contentproc` …
 * `tab`), WebKitGTK's WebKitWebProcess. Storage (IndexedDB) lives elsewhere in each: Chromium's
 * browser process and storage service, Firefox's parent process, WebKit's NetworkProcess; so
 * killing these is a tab crash, not a browser crash.
 */
export function contentProcesses(session) {
  // Chromium rewrites its command line into one string (its process title): match words.
  const isContent = {
    chromium: (words) => words.includes('--type=renderer') && !words.includes('--top-chrome-webui'),
    firefox: (words) => words.includes('-contentproc') && words.includes('-isForBrowser'),
    webkit: (words) => path.basename(words[0] || '') === 'WebKitWebProcess',
  }[session.engine];
  return descendants(session.driverPid).filter((p) => isContent(p.argv.join(' ').split(' ')));
}

/** CPU time (user + system, in clock ticks) process `pid` has used, or null once it is gone. */
function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

/**
 * Which of `session`'s web-content processes hosts a page that is kept busy on purpose (the
 * test makes the page burn CPU; the browser names no tab in a process's command line): the one
 * whose CPU time grows most over `ms`, once it grew at least `minTicks` (clock ticks, 1/100 s)
 * and more than twice as much as any other. Returns `{ pid, argv, ticks, others }` or throws.
 */
export async function busyContentProcess(session, { ms = 3_000, minTicks = 50 } = {}) {
  const procs = contentProcesses(session);
  const before = new Map(procs.map((p) => [p.pid, cpuTicks(p.pid)]));
  await new Promise((resolve) => setTimeout(resolve, ms));
  const grown = procs
    .map((p) => ({ ...p, ticks: (cpuTicks(p.pid) ?? 0) - (before.get(p.pid) ?? 0) }))
    .sort((a, b) => b.ticks - a.ticks);
  const [top, next] = grown;
  const others = grown.slice(1).map((p) => `${p.pid}: ${p.ticks}`);
  if (!top || top.ticks < minTicks || (next && next.ticks * 2 > top.ticks)) {
    throw new Error(
      `no web-content process stands out as the busy page: ${grown.map((p) => `${p.pid}: ${p.ticks}`).join(', ')} ticks in ${ms} ms`,
    );
  }
  return { pid: top.pid, argv: top.argv, ticks: top.ticks, others };
}
