// The web app as the UI contract (/work/ui-contract.md, "roles and accessible names") describes
// it. Everything here selects by role and accessible name; the only CSS selectors are the ones the
// contract itself defines (body[data-ready="1"]) or ones inside code that runs in the page.

import { Key } from 'selenium-webdriver';
import { waitUntil } from './wait.mjs';

export const READY = 'body[data-ready="1"]';

export function ui(page) {
  return {
    form: page.getByRole('form', { name: 'Add account' }),
    list: page.getByRole('listbox', { name: 'Messages' }),
    reader: page.getByRole('article', { name: 'Message' }),
    syncStatus: page.getByRole('status', { name: 'Sync status' }),
    connection: page.getByRole('status', { name: 'Connection' }),
    progress: page.getByRole('progressbar', { name: 'Sync progress' }),
    syncNow: page.getByRole('button', { name: 'Sync now', exact: true }),
    search: page.getByRole('searchbox', { name: 'Search mail' }),
  };
}

/** Waits until the app says it is ready (IndexedDB open, accounts and list loaded). */
export async function waitReady(page, timeout = 90_000) {
  await page.waitForSelector(READY, { state: 'attached', timeout });
}

/** The account form's fields, by role and accessible name (a label wraps each control). */
export function accountFields(form) {
  const box = (name) => form.getByRole('textbox', { name, exact: true });
  return {
    email: box('Email address'),
    user: box('User name'),
    password: box('Password'),
    server: box('Server'),
    port: form.getByRole('spinbutton', { name: 'Port', exact: true }),
    security: form.getByRole('combobox', { name: 'Security', exact: true }),
    fingerprint: form.getByRole('textbox', { name: /^Certificate fingerprint/ }),
  };
}

/**
 * Fills the "Add account" form. Order matters: the user name and server follow the email
 * address until edited, and the port follows the security choice until edited.
 */
export async function fillAccountForm(form, a) {
  const f = accountFields(form);
  await f.email.fill(a.email);
  await f.user.fill(a.user);
  await f.server.fill(a.server);
  await f.security.selectOption(a.security);
  await f.port.fill(String(a.port));
  await f.fingerprint.fill(a.fingerprint);
  await f.password.fill(a.password);
}

/**
 * Records, inside the page, every distinct value of the "Sync progress" bar (as a fraction of
 * its max) and every distinct text of the "Sync status", from now on: a MutationObserver for
 * attribute and DOM changes plus a 20 ms sampler for property-only updates. Read it back with
 * `progressRecord`.
 */
export async function recordProgress(page) {
  await page.evaluate(progressRecorder);
}

/** The in-page half of `recordProgress` (shared with `recordProgressIn`). */
export function progressRecorder() {
  const seen = { values: [], statuses: [], startedAt: performance.now() };
  window.__e2eProgress = seen;
  const sample = () => {
    const bar = document.querySelector('progress[aria-label="Sync progress"]');
    if (bar && bar.hasAttribute('value')) {
      const max = Number(bar.max) || 1;
      const v = Number(bar.value) / max;
      if (Number.isFinite(v) && seen.values[seen.values.length - 1] !== v) seen.values.push(v);
    }
    const status = document.querySelector('[role="status"][aria-label="Sync status"]');
    if (status) {
      const t = status.textContent.trim();
      if (t && seen.statuses[seen.statuses.length - 1] !== t) seen.statuses.push(t);
    }
  };
  new MutationObserver(sample).observe(document.documentElement, {
    subtree: true,
    childList: true,
    attributes: true,
    characterData: true,
  });
  seen.timer = setInterval(sample, 20);
  sample();
}

export async function progressRecord(page) {
  return page.evaluate(progressReader);
}

/** The in-page half of `progressRecord`. */
export function progressReader() {
  const seen = window.__e2eProgress;
  return seen ? { values: seen.values, statuses: seen.statuses } : null;
}

/** Scrolls the (virtualized) message list to the top. */
export async function scrollListToTop(list) {
  await list.evaluate((el) => {
    el.scrollTop = 0;
  });
}

/**
 * Every distinct row of the virtualized list: scrolls it from top to bottom in half-screen
 * steps and, at each position, collects the rows in view once the render has settled (a row
 * covers the middle of the view and two rounds of two animation frames add no new row). Rows are
 * keyed by aria-posinset or id when the app sets them, else by their text. Ends back at the top.
 */
export async function collectRows(list) {
  return list.evaluate(rowsCollector);
}

/** The in-page half of `collectRows` (the list element in, its rows out). */
export async function rowsCollector(el) {
  const frames = () =>
    new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  const rows = new Map();
  const collect = () => {
    let added = 0;
    for (const row of el.querySelectorAll('[role="option"]')) {
      const text = row.textContent.replace(/\s+/g, ' ').trim();
      const key = row.getAttribute('aria-posinset') || row.id || text;
      if (!rows.has(key)) added++;
      rows.set(key, text);
    }
    return added;
  };
  const middleCovered = () => {
    const box = el.getBoundingClientRect();
    const y = box.top + el.clientTop + el.clientHeight / 2;
    const options = [...el.querySelectorAll('[role="option"]')];
    if (options.length === 0) return false;
    const last = options[options.length - 1].getBoundingClientRect();
    // At the very end the rows may stop above the middle of a tall view.
    return last.bottom < y || options.some((o) => {
      const r = o.getBoundingClientRect();
      return r.top <= y && r.bottom >= y;
    });
  };
  const settle = async () => {
    const deadline = performance.now() + 10_000;
    let quiet = 0;
    while (performance.now() < deadline && quiet < 2) {
      await frames();
      const added = collect();
      quiet = added === 0 && middleCovered() ? quiet + 1 : 0;
    }
  };
  el.scrollTop = 0;
  await settle();
  for (let guard = 0; guard < 100_000; guard++) {
    const before = el.scrollTop;
    el.scrollTop = before + Math.max(20, el.clientHeight / 2);
    await settle();
    if (el.scrollTop <= before) break;
  }
  el.scrollTop = 0;
  await settle();
  return [...rows.values()];
}

/** Clicks the list row whose text contains `subject` and waits for the reader to show it. */
export async function openMessage(page, subject) {
  const { list, reader } = ui(page);
  await scrollListToTop(list);
  await list.getByRole('option').filter({ hasText: subject }).first().click();
  await reader.getByRole('heading', { level: 2, name: subject }).waitFor({ state: 'visible' });
}

/** The tokens of an iframe's sandbox attribute, or null when it has none. */
/** Sandbox tokens the message frame must never have (it may forbid more). */
export const FORBIDDEN_SANDBOX_TOKENS = [
  'allow-scripts',
  'allow-same-origin',
  'allow-forms',
  'allow-modals',
  'allow-top-navigation',
  'allow-top-navigation-by-user-activation',
];

export async function sandboxTokens(iframe) {
  const value = await iframe.getAttribute('sandbox');
  return value === null ? null : value.split(/\s+/).filter(Boolean).map((t) => t.toLowerCase());
}

/**
 * Parses the reader iframe's srcdoc (DOMParser: nothing runs or loads) and lists what a
 * sanitized document must not contain, and whether it carries a CSP that forbids scripts.
 */
export async function inspectSrcdoc(iframe) {
  return iframe.evaluate(srcdocInspector);
}

/** The in-page half of `inspectSrcdoc` (the iframe element in). */
export function srcdocInspector(el) {
  const srcdoc = el.getAttribute('srcdoc') || '';
  const doc = new DOMParser().parseFromString(srcdoc, 'text/html');
  const problems = [];
  const scriptish = (v) =>
    /^(javascript|vbscript|livescript):/i.test(String(v).replace(/[\u0000-\u0020]/g, ''));
  for (const e of doc.querySelectorAll('script')) problems.push(`<script> ${e.outerHTML.slice(0, 80)}`);
  for (const e of doc.querySelectorAll('*')) {
    for (const a of e.attributes) {
      if (/^on/i.test(a.name)) problems.push(`event handler ${e.localName}[${a.name}]`);
      if (scriptish(a.value)) problems.push(`script URL ${e.localName}[${a.name}]=${a.value.slice(0, 60)}`);
    }
  }
  for (const e of doc.querySelectorAll('meta[http-equiv]')) {
    if (/refresh/i.test(e.getAttribute('http-equiv'))) problems.push('meta refresh');
  }
  for (const e of doc.querySelectorAll('base[href]')) problems.push(`<base href=${e.getAttribute('href')}>`);
  // The effective script-src of every CSP meta; a document is safe if one of them is 'none'.
  const policies = [...doc.querySelectorAll('meta[http-equiv]')]
    .filter((m) => /^content-security-policy$/i.test(m.getAttribute('http-equiv').trim()))
    .map((m) => m.getAttribute('content') || '');
  const scriptSrc = (policy) => {
    const directives = new Map(
      policy
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .filter((d) => d[0])
        .map(([name, ...values]) => [name.toLowerCase(), values.map((v) => v.toLowerCase())]),
    );
    return directives.get('script-src') || directives.get('default-src') || null;
  };
  const cspForbidsScripts = policies.some((p) => {
    const s = scriptSrc(p);
    return s !== null && s.length === 1 && s[0] === "'none'";
  });
  return { length: srcdoc.length, problems, policies, cspForbidsScripts };
}

// ---------------------------------------------------------------------------------------------
// The same contract for an engine-neutral Session (lib/engines.mjs, W3C WebDriver): the element
// finders run in the page, and every in-page routine above is shared as a plain function.
//
// A target is `{ role, name }` (exact accessible name), `{ role, nameStarts }`, `{ role, level,
// name }` for headings, `{ role, hasText }` (the element's text contains it), `{ text }` (an
// element whose own text contains it), `{ title }` (an element with that title attribute), each
// optionally `within` another target. Roles come from the element or its tag; a name comes from
// aria-label, aria-labelledby, the label's own text (not the text of a select's options), or the
// element's text.

const PAGE_QUERY = `
const [target, visibleOnly] = arguments;
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
  code: 'code',
  form: 'form',
  img: 'img',
  list: 'ul, ol',
  progressbar: 'progress',
  status: 'output',
  alert: '',
  dialog: 'dialog',
};
const squash = (s) => (s || '').replace(/\\s+/g, ' ').trim();
const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
const ownText = (el) => squash([...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join(' '));
function nameOf(el) {
  const label = el.getAttribute('aria-label');
  if (label) return squash(label);
  const by = el.getAttribute('aria-labelledby');
  if (by) return squash(by.split(/\\s+/).map((id) => document.getElementById(id)?.textContent || '').join(' '));
  if (el.labels && el.labels.length) return squash([...el.labels].map(ownText).join(' '));
  if (el.localName === 'img') return squash(el.getAttribute('alt') || el.getAttribute('title') || '');
  return squash(el.textContent || el.value || el.getAttribute('title') || '');
}
function all(t, scope) {
  let found;
  if (t.title !== undefined) {
    found = [...scope.querySelectorAll('[title]')].filter((el) => el.getAttribute('title') === t.title);
  } else if (t.text !== undefined) {
    found = [...scope.querySelectorAll('*')].filter((el) =>
      [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.includes(t.text)));
  } else {
    const implicit = IMPLICIT[t.role];
    const explicit = '[role="' + t.role + '"]';
    found = [...scope.querySelectorAll(implicit ? explicit + ', ' + implicit : explicit)].filter(
      (el) => !el.hasAttribute('role') || el.getAttribute('role') === t.role);
    if (t.level !== undefined) found = found.filter((el) => el.localName === 'h' + t.level);
    if (t.name !== undefined) found = found.filter((el) => nameOf(el) === t.name);
    if (t.nameStarts !== undefined) found = found.filter((el) => nameOf(el).startsWith(t.nameStarts));
    if (t.hasText !== undefined) found = found.filter((el) => squash(el.textContent).includes(t.hasText));
  }
  return found;
}
function resolve(t) {
  const scopes = t.within ? [resolve(t.within)].filter(Boolean) : [document];
  for (const scope of scopes) {
    const found = all(t, scope).filter((el) => !visibleOnly || visible(el));
    if (found.length) return found[0];
  }
  return null;
}
return resolve(target);
`;

/** What a target is, for a message. */
export function describeTarget(t) {
  const own = t.title !== undefined
    ? `[title=${JSON.stringify(t.title)}]`
    : t.text !== undefined
      ? `text ${JSON.stringify(t.text)}`
      : `${t.role}${t.level ? ` h${t.level}` : ''}${t.name !== undefined ? ` ${JSON.stringify(t.name)}` : ''}` +
        `${t.nameStarts !== undefined ? ` "${t.nameStarts}…"` : ''}${t.hasText !== undefined ? ` with text ${JSON.stringify(t.hasText)}` : ''}`;
  return t.within ? `${own} in ${describeTarget(t.within)}` : own;
}

/** The app's landmarks as targets (the same as `ui(page)`, for a Session). */
export const UI = {
  form: { role: 'form', name: 'Add account' },
  list: { role: 'listbox', name: 'Messages' },
  reader: { role: 'article', name: 'Message' },
  syncStatus: { role: 'status', name: 'Sync status' },
  connection: { role: 'status', name: 'Connection' },
  progress: { role: 'progressbar', name: 'Sync progress' },
  syncNow: { role: 'button', name: 'Sync now' },
  search: { role: 'searchbox', name: 'Search mail' },
};

/** The account form's fields as targets (a label wraps each control). */
export const ACCOUNT_FIELDS = {
  email: { role: 'textbox', name: 'Email address', within: UI.form },
  user: { role: 'textbox', name: 'User name', within: UI.form },
  password: { role: 'textbox', name: 'Password', within: UI.form },
  server: { role: 'textbox', name: 'Server', within: UI.form },
  port: { role: 'spinbutton', name: 'Port', within: UI.form },
  security: { role: 'combobox', name: 'Security', within: UI.form },
  fingerprint: { role: 'textbox', nameStarts: 'Certificate fingerprint', within: UI.form },
};

/** The element `target` names (visible ones only unless `{ attached: true }`), or null. */
export async function query(session, target, { attached = false } = {}) {
  return session.driver.executeScript(PAGE_QUERY, target, !attached);
}

/** Waits until `target` is there (visible unless `attached`); returns its element. */
export async function waitFor(session, target, { timeout = 60_000, attached = false } = {}) {
  return waitUntil(() => query(session, target, { attached }), { timeout, what: describeTarget(target) });
}

/** Waits until `target` is gone or hidden. */
export async function waitGone(session, target, { timeout = 60_000 } = {}) {
  await waitUntil(async () => (await query(session, target)) === null, {
    timeout,
    what: `${describeTarget(target)} to be hidden`,
  });
}

/** The text content of `target` (attached), or null when it is not there. */
export async function textOf(session, target) {
  const el = await query(session, target, { attached: true });
  return el ? session.driver.executeScript('return arguments[0].textContent', el) : null;
}

/** Scrolls `target` into view and clicks it as a person would. */
export async function clickOn(session, target, options) {
  const el = await waitFor(session, target, options);
  session.note(`click ${describeTarget(target)}`);
  await session.driver.executeScript('arguments[0].scrollIntoView({block: "center"})', el);
  await el.click();
}

/**
 * Types `value` into `target` as a person would: select all, delete, type. (WebDriver's
 * Element Clear does not fire `input` in every engine, and the app listens for `input`.)
 */
export async function typeInto(session, target, value) {
  const el = await waitFor(session, target);
  session.note(`type into ${describeTarget(target)}`);
  await el.click();
  await el.sendKeys(Key.chord(Key.CONTROL, 'a'), Key.BACK_SPACE);
  if (String(value) !== '') await el.sendKeys(String(value));
  const now = await session.driver.executeScript('return arguments[0].value', el);
  if (now !== String(value)) {
    throw new Error(`${describeTarget(target)} holds ${JSON.stringify(now)} after typing ${JSON.stringify(String(value))}`);
  }
}

/** Chooses the option with `value` of the select `target` by clicking it. */
export async function chooseOption(session, target, value) {
  const select = await waitFor(session, target);
  const option = await session.driver.executeScript(
    'return [...arguments[0].options].find((o) => o.value === arguments[1]) || null',
    select,
    value,
  );
  if (!option) throw new Error(`${describeTarget(target)} has no option ${value}`);
  await select.click();
  await option.click();
  const now = await session.driver.executeScript('return arguments[0].value', select);
  if (now !== value) throw new Error(`${describeTarget(target)} is ${JSON.stringify(now)}, not ${value}`);
}

/** `fillAccountForm` for a Session. */
export async function fillAccountFormIn(session, a) {
  const f = ACCOUNT_FIELDS;
  await typeInto(session, f.email, a.email);
  await typeInto(session, f.user, a.user);
  await typeInto(session, f.server, a.server);
  await chooseOption(session, f.security, a.security);
  await typeInto(session, f.port, a.port);
  await typeInto(session, f.fingerprint, a.fingerprint);
  await typeInto(session, f.password, a.password);
}

/** Runs the async in-page function `fn(...args)` and returns what it resolves to. */
export async function evaluateAsync(session, fn, ...args) {
  const result = await session.driver.executeAsyncScript(
    `const done = arguments[arguments.length - 1];
     Promise.resolve((${fn}).apply(null, [].slice.call(arguments, 0, -1)))
       .then((value) => done({ value }), (e) => done({ error: String(e && e.stack || e) }));`,
    ...args,
  );
  if (result && result.error !== undefined) throw new Error(`in the page: ${result.error}`);
  return result ? result.value : undefined;
}

/** `recordProgress` for a Session. */
export async function recordProgressIn(session) {
  await session.evaluate(progressRecorder);
}

/** `progressRecord` for a Session. */
export async function progressRecordIn(session) {
  return session.evaluate(progressReader);
}

/** `collectRows` for a Session: the list's rows, every one, in order. */
export async function collectRowsIn(session) {
  const list = await waitFor(session, UI.list);
  return evaluateAsync(session, rowsCollector, list);
}

/** `openMessage` for a Session. */
export async function openMessageIn(session, subject) {
  const list = await waitFor(session, UI.list);
  await session.driver.executeScript('arguments[0].scrollTop = 0', list);
  await clickOn(session, { role: 'option', hasText: subject, within: UI.list });
  await waitFor(session, { role: 'heading', level: 2, name: subject, within: UI.reader });
}

/** `sandboxTokens` and `inspectSrcdoc` for a Session (the iframe as an element). */
export async function sandboxTokensOf(session, iframe) {
  const value = await session.driver.executeScript('return arguments[0].getAttribute("sandbox")', iframe);
  return value === null ? null : value.split(/\s+/).filter(Boolean).map((t) => t.toLowerCase());
}

export async function inspectSrcdocOf(session, iframe) {
  return session.evaluate(srcdocInspector, iframe);
}

/** In the page: the app's status and alert lines (what a person reads), for failure messages. */
export function statusLines() {
  return [...document.querySelectorAll('[role="status"], [role="alert"]')]
    .map((el) => `${el.getAttribute('aria-label') || el.getAttribute('role')}: ${el.textContent.trim()}`)
    .filter((line) => !line.endsWith(': '))
    .join('\n');
}

/**
 * After a failed test in a Session: a screenshot `<slug>-FAILED` and the page's status lines,
 * as diagnostics of the test `t` and in the session's log. Returns the status lines ('?' when
 * the page cannot answer).
 */
export async function failureEvidence(session, t, slug, why) {
  const file = await session.screenshot(`${slug}-FAILED`).catch(() => null);
  if (file) t.diagnostic(`screenshot: ${file}`);
  const seen = await session.evaluate(statusLines).catch(() => '?');
  session.note(`FAILED ${slug}: ${why}\nstatus lines:\n${seen}`);
  t.diagnostic(`status lines: ${JSON.stringify(seen)}`);
  return seen;
}
