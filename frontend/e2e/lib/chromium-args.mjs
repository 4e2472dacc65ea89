// What a Chromium started on these machines needs: no sandbox (root, containers), and none of
// the background traffic a fresh profile would send to Google's servers. A module of its own,
// without dependencies, so that bench/ui/ui-bench.mjs can import it without loading playwright.

/** Headless, no sandbox, no background services. */
export const CHROMIUM_BASE_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * With CHROMIUM_BASE_ARGS alone, Chromium still opened UDP sockets to the system's DNS server
 * (37 for one app load) and to a public IPv6 address (its reachability probe), as
 * engines-traffic.test.mjs saw under strace. With these, every host name but localhost fails to
 * resolve without a DNS query, and there is no async DNS client.
 */
export const CHROMIUM_NO_TRAFFIC_ARGS = [
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1',
  '--disable-features=AsyncDns,DnsOverHttps,MediaRouter,OptimizationHints,Translate',
  '--disable-domain-reliability',
  '--no-pings',
  '--dns-prefetch-disable',
];

/** Every Chromium the tests and benchmarks start. */
export const CHROMIUM_ARGS = [...CHROMIUM_BASE_ARGS, ...CHROMIUM_NO_TRAFFIC_ARGS];
