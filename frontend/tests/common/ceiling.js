// The browser's own ceiling for `scripts/bench browser` (bench/src/browser_sync.rs), run by
// frontend/tests/bench_sync.rs in the same page and the same run as webpop's sync.
//
// Plain JavaScript receives the benchmark's mailbox over a WebSocket from the same relay and
// writes it to IndexedDB, 100 records per transaction. The relay is a byte pipe, so the bench
// points it at a tiny TCP source of its own that sends the very message bytes Dovecot serves,
// each as a 4-byte big-endian length and the message, then a length of 0. Why this is a fair
// ceiling: the same browser, page, relay, WebSocket frames, flow control and IndexedDB; the same
// ~100 MB in the same number of records. What it leaves out (TLS, POP3, dot-unstuffing, MIME
// summaries, the sync engine's bookkeeping) is exactly webpop's own work, which the ratio
// measures. It is a ceiling, not a twin: its transactions may overlap, and it stores one record
// per message where webpop stores three (uid state, raw message, summary).

const STORE = 'messages';
const PER_TRANSACTION = 100;
// The relay's flow control (shared/src/relay/flow.rs): acknowledge consumed bytes in steps of
// at least ACK_EVERY (a quarter of the 4 MiB window), as webpop's page does.
const FLOW_PROTOCOL = 'webpop.flow.v1';
const ACK_EVERY = 1024 * 1024;

const request = (r) =>
  new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });

const committed = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
  });

async function openFresh(name) {
  await request(indexedDB.deleteDatabase(name));
  const open = indexedDB.open(name, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE, { keyPath: ['account', 'uid'] });
  return request(open);
}

/// Receives every message from `url` (the relay, with the source as its target; `protocols`
/// as webpop offers them) into a fresh database `dbName`, then deletes it. Resolves to
/// `{ messages, bytes, elapsedMs }`, timed from opening the WebSocket to the last commit.
export async function ceiling(url, protocols, dbName) {
  const db = await openFresh(dbName);
  const started = performance.now();
  const ws = new WebSocket(url, protocols);
  ws.binaryType = 'arraybuffer';

  let header = new Uint8Array(4); // the length being read
  let headerHave = 0;
  let body = null; // the message being read
  let bodyHave = 0;
  let batch = [];
  const commits = [];
  let messages = 0;
  let bytes = 0;
  let unacked = 0;

  const flush = () => {
    if (batch.length === 0) return;
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    for (const record of batch) store.put(record);
    commits.push(committed(tx));
    batch = [];
  };

  await new Promise((resolve, reject) => {
    let done = false;
    ws.onerror = () => reject(new Error('the WebSocket failed'));
    ws.onclose = (e) => {
      if (!done) reject(new Error(`the relay closed the WebSocket early (${e.code} ${e.reason})`));
    };
    ws.onmessage = (event) => {
      if (typeof event.data === 'string') return;
      const chunk = new Uint8Array(event.data);
      let at = 0;
      while (at < chunk.length && !done) {
        if (body === null) {
          const take = Math.min(4 - headerHave, chunk.length - at);
          header.set(chunk.subarray(at, at + take), headerHave);
          headerHave += take;
          at += take;
          if (headerHave < 4) break;
          headerHave = 0;
          const length = new DataView(header.buffer).getUint32(0);
          if (length === 0) {
            done = true;
            break;
          }
          body = new Uint8Array(length);
          bodyHave = 0;
        }
        const take = Math.min(body.length - bodyHave, chunk.length - at);
        body.set(chunk.subarray(at, at + take), bodyHave);
        bodyHave += take;
        at += take;
        if (bodyHave === body.length) {
          batch.push({ account: 'ceiling', uid: String(messages), raw: body });
          messages += 1;
          bytes += body.length;
          body = null;
          if (batch.length === PER_TRANSACTION) flush();
        }
      }
      unacked += chunk.length;
      if (ws.protocol === FLOW_PROTOCOL && unacked >= ACK_EVERY) {
        ws.send(`ack ${unacked}`);
        unacked = 0;
      }
      if (done) {
        flush();
        ws.onclose = null;
        ws.close();
        resolve();
      }
    };
  });
  await Promise.all(commits);
  const elapsedMs = performance.now() - started;
  db.close();
  await request(indexedDB.deleteDatabase(dbName));
  return { messages, bytes, elapsedMs };
}
