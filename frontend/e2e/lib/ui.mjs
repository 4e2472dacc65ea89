// The web app as the UI contract (/work/ui-contract.md, "roles and accessible names") describes
// it. Everything here selects by role and accessible name; the only CSS selectors are the ones the
// contract itself defines (body[data-ready="1"]) or ones inside code that runs in the page.

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
  await page.evaluate(() => {
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
  });
}

export async function progressRecord(page) {
  return page.evaluate(() => {
    const seen = window.__e2eProgress;
    return seen ? { values: seen.values, statuses: seen.statuses } : null;
  });
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
  return list.evaluate(async (el) => {
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
  });
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
  return iframe.evaluate((el) => {
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
  });
}
