// The CSP watch's reading of Chromium's console (lib/csp.mjs), without a browser: which
// messages are about the app's policy and which about a message's own, stricter one.
//
//   node --test frontend/e2e/csp-watch.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { concernsPolicy } from './lib/csp.mjs';

const APP =
  "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' 'sha256-fB31EYLQDZ+qKCW7InhugVVM+WpcgJFcBMwzzG77EN0='; " +
  "style-src 'self' 'unsafe-inline'; img-src 'self' data: https: http:; font-src 'self' data:; " +
  "connect-src 'self' ws://127.0.0.1:34345 wss://127.0.0.1:34345; worker-src 'self'; manifest-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

test("messages about the app's policy are told from those about a message's own", () => {
  const cases = [
    [
      "Executing inline script violates the following Content Security Policy directive 'script-src 'self' " +
        "'wasm-unsafe-eval' 'sha256-fB31EYLQDZ+qKCW7InhugVVM+WpcgJFcBMwzzG77EN0=''. Either the 'unsafe-inline' " +
        "keyword, a hash ('sha256-2n3w='), or a nonce ('nonce-...') is required to enable inline execution.",
      true,
    ],
    [
      "Connecting to 'http://127.0.0.1:35605/hold' violates the following Content Security Policy directive: " +
        '"connect-src \'self\' ws://127.0.0.1:34345 wss://127.0.0.1:34345". The action has been blocked.',
      true,
    ],
    [
      "Loading media from 'http://x/' violates the following Content Security Policy directive: \"default-src 'none'\". " +
        "Note that 'media-src' was not explicitly set, so 'default-src' is used as a fallback.",
      true,
    ],
    ['The Content Security Policy directive \'foo\' is unrecognized and will be ignored.', true],
    [`webpop-e2e: securitypolicyviolation connect-src blocked x at y:1 in the policy "${APP}"`, true],
    [
      "Loading the image 'http://x/y.png' violates the following Content Security Policy directive: \"img-src data:\".",
      false,
    ],
    [
      "Executing inline script violates the following Content Security Policy directive 'script-src 'none''. Either …",
      false,
    ],
    [
      "Loading the font 'http://x/' violates the following Content Security Policy directive: \"default-src 'none'\". " +
        "Note that 'font-src' was not explicitly set, so 'default-src' is used as a fallback.",
      false,
    ],
    [
      `webpop-e2e: securitypolicyviolation img-src blocked x at y:1 in the policy "default-src 'none'; img-src data:"`,
      false,
    ],
  ];
  for (const [text, app] of cases) {
    assert.equal(concernsPolicy(text, APP), app, text);
  }
});
