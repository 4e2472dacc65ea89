// Writes the capabilities file wasm-bindgen-test-runner reads (WASM_BINDGEN_TEST_WEBDRIVER_JSON)
// for the frontend's browser tests in Firefox: Debian's Firefox ESR with the same locked-down
// prefs as the end-to-end tests (lib/engines.mjs), so one list of prefs serves both.
//
//   node frontend/e2e/lib/webdriver-json.mjs firefox > target/webdriver-firefox.json
//
// (The runner adds -headless itself. For Safari's driver it sends no capabilities at all, so
// WebKitWebDriver starts its default browser, MiniBrowser, and needs nothing from here.)

import { BINARIES, FIREFOX_PREFS } from './engines.mjs';

const engine = process.argv[2];
if (engine !== 'firefox') {
  console.error('usage: webdriver-json.mjs firefox');
  process.exit(2);
}
console.log(
  JSON.stringify({ 'moz:firefoxOptions': { binary: BINARIES.firefox, prefs: FIREFOX_PREFS } }, null, 2),
);
