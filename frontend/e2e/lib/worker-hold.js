// A test prelude, never part of the product: webpop-test-env prepends it to the sync worker's
// loader (/webpop-worker_loader.js) while a test asks for it (POST /worker-hold/batch/<n>), so it
// runs in the worker's global scope before the wasm loads. The sync's IndexedDB writes happen in
// the worker, where the page's prototypes (and a page-level patch) cannot reach them.
//
// It reads its parameters with a synchronous request to the same origin (/e2e-hold.json, which
// the test env writes and removes), so the app's Content-Security-Policy needs no bypass, and it
// is inert when that file is gone: a copy the service worker kept does nothing once the test has
// cleared the hold.
//
// Held, the sync's `batch`-th write (a readwrite transaction over uids, messages and summaries)
// stops in the middle: every UIDL state and the first message of the batch are put; the later
// puts are kept back (a harmless read stands in for each); the transaction is kept open by a
// chain of reads, so it can neither commit nor end; and the worker burns CPU in slices, so a
// test can tell its process from the browser's others. It reports on the BroadcastChannel
// "webpop-e2e-hold" — its state (`{ batch, held, written, spins, batches }`, as lib/hardening.mjs
// batchHold kept it in the page) and log lines (`{ log }`) — and a `{ release: true }` on that
// channel issues the kept-back puts and lets the transaction end (commit, or abort when storage
// is full).
(() => {
  let params = null;
  try {
    const xhr = new XMLHttpRequest();
    xhr.open('GET', `/e2e-hold.json?t=${Date.now()}`, false);
    xhr.send();
    if (xhr.status === 200) params = JSON.parse(xhr.responseText);
  } catch {
    params = null;
  }
  if (!params || !Number.isInteger(params.batch) || params.batch < 1) return;
  const batch = params.batch;
  const channel = new BroadcastChannel('webpop-e2e-hold');
  const state = { batch, held: false, written: false, released: false, spins: 0, batches: [] };
  const say = () => channel.postMessage(JSON.stringify(state));
  const log = (text) => channel.postMessage(JSON.stringify({ log: text }));
  const keptBack = [];
  let releasing = false;
  channel.onmessage = (e) => {
    let message = null;
    try {
      message = JSON.parse(e.data);
    } catch {
      return;
    }
    // The kept-back puts go out from the next read's success, where the transaction is active.
    if (message && message.release) releasing = true;
  };
  const replay = () => {
    state.released = true;
    for (const { store, args } of keptBack.splice(0)) {
      try {
        put.apply(store, args);
      } catch (error) {
        log(`webpop-e2e: a kept-back put failed: ${error && error.name}`);
      }
    }
    say();
  };
  const transaction = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function (names, mode, ...rest) {
    const tx = transaction.call(this, names, mode, ...rest);
    const list = typeof names === 'string' ? [names] : Array.from(names);
    if (mode === 'readwrite' && ['uids', 'messages', 'summaries'].every((n) => list.includes(n))) {
      const entry = { n: state.batches.length + 1, uids: [], messages: 0, committed: false, aborted: false };
      state.batches.push(entry);
      tx.__e2eBatch = entry;
      tx.addEventListener('complete', () => {
        entry.committed = true;
        log(`webpop-e2e: batch ${entry.n} committed (${entry.messages} messages)`);
        say();
      });
      tx.addEventListener('abort', () => {
        entry.aborted = true;
        log(`webpop-e2e: batch ${entry.n} aborted: ${tx.error && tx.error.name}`);
        say();
      });
      say();
    }
    return tx;
  };
  const put = IDBObjectStore.prototype.put;
  IDBObjectStore.prototype.put = function (...args) {
    const tx = this.transaction;
    const entry = tx.__e2eBatch;
    if (entry && tx.__e2eHeld && !state.released) {
      keptBack.push({ store: this, args });
      return this.count();
    }
    const request = put.apply(this, args);
    if (entry && this.name === 'uids') entry.uids.push(String(args[0] && args[0].uid));
    if (entry && this.name === 'messages') {
      entry.messages += 1;
      if (entry.n === batch && entry.messages === 1 && !state.held) {
        tx.__e2eHeld = true;
        state.held = true;
        request.addEventListener('success', () => {
          state.written = true;
          say();
        });
        const burn = () => {
          if (state.released) return;
          const end = performance.now() + 20;
          while (performance.now() < end) state.burnt = (state.burnt || 0) + 1;
          setTimeout(burn, 20);
        };
        setTimeout(burn, 0);
        const keep = tx.objectStore('uids');
        const spin = () => {
          if (releasing) return replay();
          state.spins += 1;
          if (state.spins % 50 === 0) say();
          keep.count().onsuccess = spin;
        };
        spin();
      }
    }
    return request;
  };
})();
