// What a Chromium started on these machines needs: no sandbox (root, containers), and none of
// the background traffic a fresh profile would send to Google's servers. A module of its own,
// without dependencies, so that bench/ui/ui-bench.mjs can import it without loading playwright.
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
