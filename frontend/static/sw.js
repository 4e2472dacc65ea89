// webpop's service worker: keeps the app shell (index.html, trunk's JS and wasm, CSS, manifest,
// icons) in Cache Storage so the page loads with no network. The mail itself is in IndexedDB,
// which the app reads directly, so everything stored stays readable offline.
//
// Served at /sw.js (scope: the whole site) with `Cache-Control: no-cache`, so the browser sees a
// new version at once. trunk copies this file to dist/ unchanged (see index.html).

// Bump when the caching below changes: activation deletes every other version's cache. A new
// build of the app needs no bump: each online navigation stores the new index.html and the files
// it references, and drops the ones it no longer references.
const VERSION = 'v2';
const CACHE = `webpop-shell-${VERSION}`;

// Fixed-name files the shell wants besides what index.html references (best effort): the sync
// worker's loader, script and wasm (trunk names a worker after its binary, unhashed, and leaves
// no reference in index.html), the manifest and icons.
const STATIC = [
  '/webpop-worker_loader.js',
  '/webpop-worker.js',
  '/webpop-worker_bg.wasm',
  '/manifest.webmanifest',
  '/icon.svg',
  '/icon-192.png',
  '/icon-512.png',
];

// The sync worker's files: unhashed names, so the network first (a cached copy from an older
// build must not run beside a newer page), the cache when offline.
const NETWORK_FIRST = ['/webpop-worker_loader.js', '/webpop-worker.js', '/webpop-worker_bg.wasm'];

// Left to the network, never cached: the relay, the demo description (must not go stale), and
// the relay's own endpoints.
const NETWORK_ONLY = ['/relay', '/demo.json', '/metrics', '/healthz'];

// How long a navigation waits for the network before it takes the cached page.
const NAVIGATION_TIMEOUT_MS = 2000;

// The same-origin files an index.html references: href/src attributes and the quoted paths in
// trunk's inline init script ('/webpop-frontend-<hash>.js', '/webpop-frontend-<hash>_bg.wasm').
function shellAssets(html) {
  const paths = new Set();
  const quoted = /["']([^"'\s<>]+\.(?:js|wasm|css|webmanifest|json|svg|png|ico|woff2?))["']/g;
  for (const [, ref] of html.matchAll(quoted)) {
    const url = new URL(ref, self.registration.scope);
    if (url.origin === self.location.origin && !NETWORK_ONLY.includes(url.pathname)) {
      paths.add(url.pathname);
    }
  }
  return [...paths];
}

// Stores `shell` (a response for '/') with everything it references, then drops cached files it
// no longer references (an older build's hashed names). '/' is put last, so the cached page never
// refers to files that are not cached. Throws when a referenced file cannot be fetched.
async function storeShell(shell) {
  const cache = await caches.open(CACHE);
  const assets = shellAssets(await shell.clone().text());
  const cached = new Set((await cache.keys()).map((request) => new URL(request.url).pathname));
  // Hashed names never change, so only the missing ones are fetched.
  await cache.addAll(assets.filter((path) => !cached.has(path)));
  // The fixed names can change under the same name: refetched (revalidated) every time.
  await Promise.allSettled(STATIC.map((path) => cache.add(path)));
  await cache.put('/', shell);
  const keep = new Set(['/', ...STATIC, ...assets]);
  for (const request of await cache.keys()) {
    if (!keep.has(new URL(request.url).pathname)) await cache.delete(request);
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const shell = await fetch('/', { cache: 'no-cache' });
      if (!shell.ok) throw new Error(`GET / answered ${shell.status}`);
      await storeShell(shell);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith('webpop-shell-') && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || NETWORK_ONLY.includes(url.pathname)) return;
  if (request.mode === 'navigate') {
    event.respondWith(navigate(event, url));
  } else if (NETWORK_FIRST.includes(url.pathname)) {
    event.respondWith(networkFirst(event, url));
  } else {
    event.respondWith(cacheFirst(event));
  }
});

// Navigations: the network first, for at most NAVIGATION_TIMEOUT_MS, then the cached '/'. A
// fresh '/' from the network is stored (with its files) in the background.
async function navigate(event, url) {
  // Known to be offline: no need to wait for the network to fail.
  if (self.navigator.onLine === false) {
    const cached = await caches.match('/', { cacheName: CACHE });
    if (cached) return cached;
  }
  const network = fetch(event.request);
  // Registered before the page gets the response, so the clone is taken before it is read; and
  // at once, so it also runs when the cached page wins the race.
  const isShell = url.pathname === '/' || url.pathname === '/index.html';
  event.waitUntil(
    network
      .then((response) => {
        if (isShell && response.ok && !response.redirected) return storeShell(response.clone());
      })
      .catch(() => {}),
  );
  const timeout = new Promise((resolve) => setTimeout(resolve, NAVIGATION_TIMEOUT_MS, null));
  const first = await Promise.race([network.catch(() => null), timeout]);
  // A 5xx is most likely a reverse proxy whose webpop-proxy is down: the cached page is better.
  if (first && first.status < 500) return first;
  const cached = await caches.match('/', { cacheName: CACHE });
  // Nothing cached yet: keep waiting for the network (or its error).
  return cached || first || network;
}

// The worker's files: the network, whose answer replaces the cached copy; the cached copy when
// the network fails or answers 5xx (a reverse proxy whose webpop-proxy is down).
async function networkFirst(event, url) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(event.request, { cache: 'no-cache' });
    if (response.status < 500) {
      if (response.ok && response.type === 'basic') {
        event.waitUntil(cache.put(url.pathname, response.clone()).catch(() => {}));
      }
      return response;
    }
  } catch {
    // Offline: the cached copy below.
  }
  const cached = await cache.match(url.pathname);
  if (cached) return cached;
  return fetch(event.request);
}

// Other same-origin GETs: the cache first (trunk's hashed names are immutable), else the network,
// whose successful answer is cached.
async function cacheFirst(event) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(event.request);
  if (hit) return hit;
  const response = await fetch(event.request);
  if (response.ok && response.type === 'basic') {
    event.waitUntil(cache.put(event.request, response.clone()).catch(() => {}));
  }
  return response;
}
