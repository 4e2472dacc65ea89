// Content Security Policy violations in the web app's pages, for the whole run.
//
// Chromium reports every violation in the page's console, from every frame — the reader's
// sandboxed srcdoc frame, which runs no script, included — as "Refused to … because it violates
// the following Content Security Policy directive: "…"". An init script also listens for
// `securitypolicyviolation` events in every document that runs script (the app's own) and logs
// each one with the policy it broke. Both are collected here.
//
// The relay sends the app's policy on every response; a message shown in the reader carries its
// own, stricter one (webpop_shared::reader::csp) that is meant to refuse things in hostile mail.
// `violations(appPolicy)` keeps only what broke the app's policy: the app must work under it
// without a single refusal.

/** Console text about a CSP. */
export const CSP_TEXT = /content[- ]security[- ]policy|securitypolicyviolation/i;

const EVENT_PREFIX = 'webpop-e2e: securitypolicyviolation';

/** Runs in every new document of a context: logs its CSP violations to the console. */
function reportViolations(prefix) {
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error(
      `${prefix} ${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'} ` +
        `at ${e.sourceFile || document.URL}:${e.lineNumber} ` +
        `in the policy "${e.originalPolicy}"`,
    );
  });
}

/** The directives of a policy, as trimmed `name value…` strings. */
function directives(policy) {
  return policy
    .split(';')
    .map((d) => d.trim().replace(/\s+/g, ' '))
    .filter(Boolean);
}

/**
 * Whether the console `text` about a CSP concerns `policy` (the app's): it quotes one of its
 * directives, or (an event from the init script) names it whole. Text that names no directive
 * counts: it can only be a problem with a policy as a whole.
 */
export function concernsPolicy(text, policy) {
  const ours = directives(policy);
  const whole = text.match(/in the policy "([^"]*)"/);
  if (whole) return directives(whole[1]).join('; ') === ours.join('; ');
  // Chromium words it two ways: `… directive: "img-src data:".` and, for inline script,
  // `… directive 'script-src 'self' …'. Either …`.
  const quoted = [
    ...[...text.matchAll(/directive: "([^"]*)"/g)].map((m) => m[1]),
    ...[...text.matchAll(/directive '(.*?)'\.(?:\s|$)/g)].map((m) => m[1]),
  ].map((d) => d.trim().replace(/\s+/g, ' '));
  if (quoted.length === 0) return true;
  // "… "default-src 'none'". Note that 'img-src' was not explicitly set, so 'default-src' is
  // used as a fallback.": not about a policy that does set img-src.
  const fallbackFor = text.match(/Note that '([a-z-]+)' was not explicitly set/);
  if (fallbackFor && ours.some((d) => d.split(' ')[0] === fallbackFor[1])) return false;
  return quoted.some((d) => ours.includes(d));
}

/** Collects CSP reports of the pages it is attached to. */
export class CspWatch {
  constructor(note = () => {}) {
    /** `{ text, frame, at }` for every console message about a CSP. */
    this.reports = [];
    this.note = note;
  }

  /** Watches every page of `context` (those open now and those to come). */
  async attachContext(context) {
    await context.addInitScript(reportViolations, EVENT_PREFIX);
    for (const page of context.pages()) this.attachPage(page);
    context.on('page', (page) => this.attachPage(page));
  }

  attachPage(page) {
    if (page.__webpopCspWatched) return;
    page.__webpopCspWatched = true;
    page.on('console', (m) => {
      const text = m.text();
      if (!CSP_TEXT.test(text)) return;
      let frame = '?';
      try {
        frame = m.location().url ?? '?';
      } catch {
        // no location
      }
      this.reports.push({ text, frame, at: Date.now() });
      this.note(`CSP: ${text} (frame ${frame})`);
    });
  }

  /**
   * The reports from index `from` on; with `policy`, only those about it. Each as `text (frame)`
   * for an assertion message.
   */
  violations({ policy = null, from = 0 } = {}) {
    return this.reports
      .slice(from)
      .filter((r) => policy === null || concernsPolicy(r.text, policy))
      .map((r) => `${r.text} (frame ${r.frame})`);
  }
}

/** The Content-Security-Policy the relay sends with the page at `url`. */
export async function appPolicy(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  await response.arrayBuffer();
  const policy = response.headers.get('content-security-policy');
  if (!policy) throw new Error(`${url} was served without a Content-Security-Policy`);
  return policy;
}
