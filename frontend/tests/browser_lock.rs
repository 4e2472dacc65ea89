//! One sync per account across tabs, in a real browser: while one holder has an account's sync
//! lock (Web Locks, or the `localStorage` lease where there are none), a second request for it
//! is refused at once — as a second tab's would be — and it is free again once let go. Another
//! account's lock is independent.

use wasm_bindgen_test::*;
use webpop_frontend::worker::lock::{self, Kind};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn a_second_tab_cannot_sync_an_account_whose_sync_runs_and_can_once_it_ends() {
    // Every engine the tests run in has Web Locks; the lease is the fallback.
    assert_eq!(lock::kind(), Kind::WebLocks);
    let account = format!("lock-test-{}@example.org:995", js_sys::Math::random());
    let first = lock::acquire("tab-a", &account).await;
    assert!(first.is_some(), "the first tab gets the lock");
    assert!(
        lock::acquire("tab-b", &account).await.is_none(),
        "a second tab is refused while the first syncs"
    );
    let other = lock::acquire("tab-b", &format!("other-{account}")).await;
    assert!(other.is_some(), "another account's lock is independent");
    drop(first);
    // The browser releases the lock once the promise the holder returned settles: a task later.
    gloo_timers::future::TimeoutFuture::new(50).await;
    assert!(
        lock::acquire("tab-b", &account).await.is_some(),
        "the lock is free once the first tab's sync ended"
    );
}
