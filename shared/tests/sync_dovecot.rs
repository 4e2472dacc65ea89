//! The sync host (`webpop_shared::sync::host`, the loop the page runs) against a real Dovecot
//! on 127.0.0.1, over the tokio transport with the test kit's memory store: full syncs over
//! implicit TLS and STLS, incremental syncs, each server policy, a connection cut mid-sync, a
//! store that fails, and a sync too big for the store's space.

use std::collections::HashSet;
use std::time::Duration;

use tokio::net::TcpStream;
use webpop_shared::connection::{Connection, ConnectionError, Transport};
use webpop_shared::pop3::AuthMethod;
use webpop_shared::secret::Credentials;
use webpop_shared::session::{Security, SessionConfig, Trust};
use webpop_shared::sync::host::{self, Cancel, Failure};
use webpop_shared::sync::{
    EngineConfig, KnownState, PlanOptions, Report, ServerPolicy, StoreFault, SyncError, SyncEvent,
};
use webpop_shared::tokio_transport::{self, TokioStream};
use webpop_testkit::corpus;
use webpop_testkit::dovecot::Dovecot;
use webpop_testkit::memory_store::{MemoryStore, MemoryStoreError};

const USER: &str = "erin";
const PASSWORD: &str = "sync-engine-test-pw";
const DAY: u64 = 86_400;
const T0: u64 = 1_800_000_000;

/// The store standing in for IndexedDB (which the browser tests use), for [`USER`].
type Store = MemoryStore;

fn raws(store: &Store) -> HashSet<Vec<u8>> {
    store.mail(USER).into_values().map(|s| s.raw).collect()
}

/// A transport that ends the stream, as a server that hangs up mid-sync does, once it has
/// received `left` more bytes (when set); the connection then ends without `QUIT`.
struct CutAfter<T> {
    inner: T,
    left: Option<usize>,
}

impl<T: Transport> Transport for CutAfter<T> {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.inner.send(bytes).await
    }

    async fn recv(&mut self) -> Result<Option<&[u8]>, ConnectionError> {
        if self.left == Some(0) {
            return Ok(None);
        }
        let received = self.inner.recv().await?;
        Ok(match (received, &mut self.left) {
            (Some(bytes), Some(left)) => {
                let taken = bytes.len().min(*left);
                *left -= taken;
                Some(&bytes[..taken])
            }
            (received, _) => received,
        })
    }

    async fn close(&mut self) -> Result<(), ConnectionError> {
        self.inner.close().await
    }

    fn now() -> Duration {
        T::now()
    }

    fn sleep(duration: Duration) -> impl std::future::Future<Output = ()> {
        T::sleep(duration)
    }
}

/// A logged-in connection to `server` that [`CutAfter`] ends once `cut_after` more bytes came
/// after the login.
async fn connect(
    server: &Dovecot,
    security: Security,
    cut_after: Option<usize>,
) -> Connection<CutAfter<TokioStream<TcpStream>>> {
    let addr = match security {
        Security::ImplicitTls => server.pop3s_addr(),
        _ => server.pop3_addr(),
    };
    let config = SessionConfig::new("localhost", security)
        .trust(Trust::default().with_root(server.cert_der().to_vec()));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let transport = CutAfter {
        inner: TokioStream::new(tcp),
        left: None,
    };
    let mut conn = Connection::start(transport, config, tokio_transport::unix_now())
        .await
        .unwrap();
    conn.login(Credentials::new(USER, PASSWORD).unwrap(), AuthMethod::Auto)
        .await
        .unwrap();
    conn.transport_mut().left = cut_after;
    conn
}

/// Runs one sync through the sync host; `cut_after` ends the stream after that many bytes of
/// the sync's replies, without QUIT. The engine's events, and how the host ended.
async fn sync_ended(
    server: &Dovecot,
    security: Security,
    store: &Store,
    config: EngineConfig,
    cut_after: Option<usize>,
) -> (Vec<SyncEvent>, Result<Report, Failure<MemoryStoreError>>) {
    let conn = connect(server, security, cut_after).await;
    let mut events = Vec::new();
    let ended = host::run(conn, store, USER, config, &Cancel::new(), async |e| {
        events.push(e.clone())
    })
    .await;
    let duplicates = store.duplicates();
    assert!(duplicates.is_empty(), "stored twice: {duplicates:?}");
    (events, ended)
}

/// [`sync_ended`]'s events.
async fn sync(
    server: &Dovecot,
    security: Security,
    store: &Store,
    config: EngineConfig,
    cut_after: Option<usize>,
) -> Vec<SyncEvent> {
    sync_ended(server, security, store, config, cut_after)
        .await
        .0
}

/// A whole sync over implicit TLS with `policy` at `now`; its report.
async fn sync_with(server: &Dovecot, store: &Store, policy: ServerPolicy, now: u64) -> Report {
    let events = sync(
        server,
        Security::ImplicitTls,
        store,
        config(policy, now),
        None,
    )
    .await;
    report(&events)
}

fn config(policy: ServerPolicy, now: u64) -> EngineConfig {
    EngineConfig {
        plan: PlanOptions {
            policy,
            large_message: u64::MAX,
            top: true,
        },
        now,
        ..EngineConfig::default()
    }
}

fn report(events: &[SyncEvent]) -> Report {
    events
        .iter()
        .find_map(|e| match e {
            SyncEvent::Finished(r) => Some(*r),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Finished in {:?}", events.last()))
}

fn dovecot_messages(server: &Dovecot) -> Vec<Vec<u8>> {
    let n = server.maildir_files(USER).unwrap().len();
    (1..=n)
        .map(|i| server.stored_message(USER, i).unwrap())
        .collect()
}

#[tokio::test]
async fn full_then_incremental_syncs_over_implicit_tls_and_stls() {
    let mail = corpus::generate(300, 404);
    let server = Dovecot::start(&[(USER, PASSWORD, &mail)]).unwrap();
    for security in [Security::ImplicitTls, Security::StartTls] {
        let store = Store::default();
        let policy = ServerPolicy::LeaveOnServer;
        let first = sync(&server, security, &store, config(policy, T0), None).await;
        assert_eq!(report(&first).stored, 300, "{security:?}");
        let on_server: HashSet<Vec<u8>> = dovecot_messages(&server).into_iter().collect();
        assert_eq!(
            raws(&store),
            on_server,
            "{security:?}: stored bytes differ from Dovecot's"
        );
        // Batches never exceeded the window: progress reached the totals.
        assert!(first.iter().any(|e| matches!(e, SyncEvent::Progress(p) if p.messages_done == 300 && p.bytes_done == p.bytes_total)));

        let second = sync(&server, security, &store, config(policy, T0), None).await;
        assert_eq!(report(&second), Report::default(), "{security:?}");
        assert!(second.contains(&SyncEvent::Planned {
            fetch: 0,
            bytes: 0,
            delete: 0
        }));
    }
    let store = Store::default();
    sync(
        &server,
        Security::ImplicitTls,
        &store,
        config(ServerPolicy::LeaveOnServer, T0),
        None,
    )
    .await;
    let new = corpus::message(300, 404, 1.0);
    server.add_message(USER, &new).unwrap();
    let third = sync(
        &server,
        Security::ImplicitTls,
        &store,
        config(ServerPolicy::LeaveOnServer, T0),
        None,
    )
    .await;
    assert_eq!(report(&third).stored, 1);
    assert!(raws(&store).contains(&new));
}

#[tokio::test]
async fn large_messages_come_headers_first() {
    let mail = corpus::generate(90, 5); // index 83 is a 2-5 MB message
    let server = Dovecot::start(&[(USER, PASSWORD, &mail)]).unwrap();
    let store = Store::default();
    let mut cfg = config(ServerPolicy::DeleteAfterDownload, T0);
    cfg.plan.large_message = 1024 * 1024;
    let events = sync(&server, Security::ImplicitTls, &store, cfg, None).await;
    assert_eq!(
        report(&events).deleted,
        89,
        "the large message stays on the server"
    );
    let stored = store
        .mail(USER)
        .into_values()
        .find(|s| s.known.state == KnownState::HeadersOnly)
        .unwrap();
    let (known, raw) = (stored.known, &stored.raw);
    assert_eq!(known.state, KnownState::HeadersOnly);
    let full = server.stored_message(USER, 1).unwrap();
    assert!(full.starts_with(raw) && raw.ends_with(b"\r\n\r\n") && full.len() > 1_000_000);
}

#[tokio::test]
async fn each_server_policy_deletes_what_it_should() {
    let mail = corpus::generate(40, 77);
    let server = Dovecot::start(&[(USER, PASSWORD, &mail)]).unwrap();
    let count = || server.maildir_files(USER).unwrap().len();
    let store = Store::default();

    // Leave on server, then "delete when deleted locally": only what the user deleted goes.
    sync(
        &server,
        Security::ImplicitTls,
        &store,
        config(ServerPolicy::LeaveOnServer, T0),
        None,
    )
    .await;
    assert_eq!(count(), 40);
    for uid in store.mail(USER).into_keys().take(3) {
        store.set_state(USER, &uid, KnownState::DeletedLocally);
    }
    let done = sync_with(&server, &store, ServerPolicy::DeleteWhenDeletedLocally, T0).await;
    assert_eq!(done.deleted, 3);
    assert_eq!(count(), 37);

    // Delete after 7 days: nothing at day 6, everything at day 8.
    let done = sync_with(
        &server,
        &store,
        ServerPolicy::DeleteAfterDays(7),
        T0 + 6 * DAY,
    )
    .await;
    assert_eq!(done.deleted, 0);
    assert_eq!(count(), 37);
    let done = sync_with(
        &server,
        &store,
        ServerPolicy::DeleteAfterDays(7),
        T0 + 8 * DAY,
    )
    .await;
    assert_eq!(done.deleted, 37);
    assert_eq!(count(), 0);

    // Remove right after download: new mail is stored, then deleted, in the same session.
    for m in corpus::generate(5, 78) {
        server.add_message(USER, &m).unwrap();
    }
    let events = sync(
        &server,
        Security::ImplicitTls,
        &store,
        config(ServerPolicy::DeleteAfterDownload, T0 + 9 * DAY),
        None,
    )
    .await;
    assert_eq!(
        report(&events),
        Report {
            stored: 5,
            deleted: 5,
            skipped: 0
        }
    );
    assert_eq!(count(), 0);
    assert_eq!(store.mail(USER).len(), 45);
}

#[tokio::test]
async fn a_cut_connection_loses_nothing_and_the_rerun_duplicates_nothing() {
    let mail = corpus::generate(120, 9);
    let server = Dovecot::start(&[(USER, PASSWORD, &mail)]).unwrap();
    let store = Store::default();
    let mut cfg = config(ServerPolicy::DeleteAfterDownload, T0);
    cfg.batch_messages = 10;
    // Cut after half the mailbox's bytes: several batches committed and their DELEs sent, no
    // QUIT.
    let half = mail.iter().map(|m| m.len()).sum::<usize>() / 2;
    let events = sync(&server, Security::ImplicitTls, &store, cfg, Some(half)).await;
    assert!(!events.iter().any(|e| matches!(e, SyncEvent::Finished(_))));
    let stored_before = store.mail(USER).len();
    assert!(stored_before > 0 && stored_before < 120, "{stored_before}");
    // Dovecot may need a moment to notice the dropped connection and release the mailbox.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        server.maildir_files(USER).unwrap().len(),
        120,
        "deleted without QUIT"
    );

    let events = sync(&server, Security::ImplicitTls, &store, cfg, None).await;
    let r = report(&events);
    assert_eq!(r.stored, 120 - stored_before);
    assert_eq!(r.deleted, 120);
    assert_eq!(store.mail(USER).len(), 120);
    let all: HashSet<Vec<u8>> = mail.iter().map(|m| m.to_vec()).collect();
    assert_eq!(raws(&store).len(), 120);
    assert_eq!(raws(&store).intersection(&all).count(), 120);
    assert_eq!(server.maildir_files(USER).unwrap().len(), 0);
}

#[tokio::test]
async fn a_failing_store_stops_the_sync_and_nothing_is_deleted() {
    let mail = corpus::generate(30, 3);
    let server = Dovecot::start(&[(USER, PASSWORD, &mail)]).unwrap();
    let store = Store::default();
    store.fail_batch(Some(2));
    let mut cfg = config(ServerPolicy::DeleteAfterDownload, T0);
    cfg.batch_messages = 5;
    let (events, ended) = sync_ended(&server, Security::ImplicitTls, &store, cfg, None).await;
    assert!(
        matches!(
            events.last(),
            Some(SyncEvent::Failed(SyncError::Store(StoreFault::Full)))
        ),
        "{:?}",
        events.last()
    );
    assert!(
        matches!(ended, Err(Failure::Commit(MemoryStoreError::Full))),
        "{ended:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(server.maildir_files(USER).unwrap().len(), 30);
    assert_eq!(
        store.mail(USER).len(),
        5,
        "only the first batch was committed"
    );
}

#[tokio::test]
async fn a_sync_that_would_not_fit_in_the_store_stops_before_fetching_anything() {
    let mail = corpus::generate(20, 11);
    let server = Dovecot::start(&[(USER, PASSWORD, &mail)]).unwrap();
    let store = Store::default();
    store.set_space(Some(10_000));
    let cfg = config(ServerPolicy::DeleteAfterDownload, T0);
    let (events, ended) = sync_ended(&server, Security::ImplicitTls, &store, cfg, None).await;
    assert!(
        matches!(ended, Err(Failure::NotEnoughStorage { available: 0, .. })),
        "{ended:?}"
    );
    assert!(
        !events.iter().any(|e| match e {
            SyncEvent::Store(_) => true,
            SyncEvent::Progress(p) => p.bytes_done > 0,
            _ => false,
        }),
        "{events:?}"
    );
    assert!(store.mail(USER).is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(server.maildir_files(USER).unwrap().len(), 20);

    // With room, the same sync goes through.
    store.set_space(None);
    let events = sync(&server, Security::ImplicitTls, &store, cfg, None).await;
    assert_eq!(report(&events).stored, 20);
}
