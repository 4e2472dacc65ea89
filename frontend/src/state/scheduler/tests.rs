use webpop_shared::pop3::RespCode;

use super::*;

const T0: u64 = 1_800_000_000;
const TEN_MINUTES: Duration = Duration::from_secs(600);

/// Accounts `a` and `b`; `b` has no password at hand unless given.
struct Accounts {
    passwords: Vec<&'static str>,
}

impl Roster for Accounts {
    fn accounts(&self) -> Vec<String> {
        vec!["a".into(), "b".into()]
    }
    fn label(&self, id: &str) -> Option<&str> {
        match id {
            "a" => Some("ana@example.org"),
            "b" => Some("bo@example.org"),
            _ => None,
        }
    }
    fn has_password(&self, id: &str) -> bool {
        self.passwords.contains(&id)
    }
}

fn both() -> Accounts {
    Accounts {
        passwords: vec!["a", "b"],
    }
}

fn status(text: &str) -> SyncEffect {
    SyncEffect::Status(text.into())
}

fn start(id: &str) -> SyncEffect {
    SyncEffect::Start(id.into())
}

fn ok(stored: usize, delay: Option<u32>) -> Outcome {
    Ok((
        Report {
            stored,
            ..Report::default()
        },
        delay.map(|seconds| LoginDelay {
            seconds,
            per_user: false,
        }),
    ))
}

fn wrong_password() -> Outcome {
    Err((
        Problem::WrongPassword("Wrong user name or password.".into()),
        Failure::Refused(None),
    ))
}

fn dropped() -> Outcome {
    Err((Problem::Relay("The relay closed.".into()), Failure::Other))
}

fn done(id: &str, outcome: Outcome) -> SyncAction {
    SyncAction::Done {
        account: id.into(),
        outcome,
    }
}

/// A queue with `a` and `b` tracked, never synced.
fn queue(roster: &Accounts) -> SyncQueue {
    let mut q = SyncQueue::new(TEN_MINUTES, true);
    for id in roster.accounts() {
        q.apply(
            SyncAction::Track {
                account: id,
                last_sync: None,
            },
            T0,
            roster,
        );
    }
    q
}

#[test]
fn sync_now_runs_the_accounts_one_at_a_time() {
    let r = both();
    let mut q = queue(&r);
    assert_eq!(
        q.apply(SyncAction::SyncNow(None), T0, &r),
        [status("Checking ana@example.org…"), start("a")]
    );
    assert_eq!(q.running().map(|run| run.account.as_str()), Some("a"));
    // Pressed again while it runs: nothing new starts, nothing is queued twice.
    assert_eq!(q.apply(SyncAction::SyncNow(None), T0, &r), []);
    assert_eq!(
        q.apply(done("a", ok(3, None)), T0 + 5, &r),
        [
            status("Synced 3 new messages for ana@example.org."),
            SyncEffect::Synced {
                account: "a".into(),
                at: T0 + 5
            },
            status("Checking bo@example.org…"),
            start("b"),
        ]
    );
    assert_eq!(
        q.apply(done("b", ok(1, None)), T0 + 9, &r)[0],
        status("Synced 1 new message for bo@example.org.")
    );
    assert!(q.running().is_none());
}

#[test]
fn progress_is_kept_for_the_running_account_only() {
    let r = both();
    let mut q = queue(&r);
    q.apply(SyncAction::SyncNow(Some("a".into())), T0, &r);
    let progress = Progress {
        bytes_done: 500,
        ..Progress::default()
    };
    for account in ["b", "a"] {
        q.apply(
            SyncAction::Progress {
                account: account.into(),
                progress,
                now_ms: 1_000.0,
            },
            T0,
            &r,
        );
    }
    assert_eq!(q.running().unwrap().progress, progress);
}

/// bug (carried over from the god component, now pinned): a remembered wrong password was
/// retried by every automatic check, which can get the account locked.
#[test]
fn a_refused_password_is_forgotten_and_not_retried_until_typed_again() {
    let r = Accounts {
        passwords: vec!["a"],
    };
    let mut q = queue(&r);
    q.apply(SyncAction::SyncNow(Some("a".into())), T0, &r);
    assert_eq!(
        q.apply(done("a", wrong_password()), T0 + 1, &r),
        [
            SyncEffect::ForgetPassword("a".into()),
            status(
                "ana@example.org: Wrong user name or password. Automatic checks are paused \
                 until you enter the password again (Sync now)."
            ),
        ]
    );
    for later in [T0 + 600, T0 + 86_400] {
        assert_eq!(q.apply(SyncAction::Tick, later, &r), [], "at {later}");
    }
    // Even before the app has forgotten it, "Sync now" asks for the password instead of
    // signing in with the refused one.
    assert_eq!(
        q.apply(SyncAction::SyncNow(Some("a".into())), T0 + 2, &r),
        []
    );
    assert_eq!(q.asking(), Some("a"));
    assert_eq!(
        q.apply(SyncAction::PasswordGiven("a".into()), T0 + 3, &r),
        [status("Checking ana@example.org…"), start("a")]
    );
    assert_eq!(q.asking(), None);
}

#[test]
fn a_permanent_refusal_pauses_automatic_checks() {
    let r = Accounts {
        passwords: vec!["a"],
    };
    let mut q = queue(&r);
    q.apply(SyncAction::SyncNow(Some("a".into())), T0, &r);
    let effects = q.apply(
        done(
            "a",
            Err((
                Problem::Other("The server reports a permanent problem.".into()),
                Failure::Refused(Some(RespCode::SysPerm)),
            )),
        ),
        T0,
        &r,
    );
    assert_eq!(
        effects,
        [status(
            "ana@example.org: The server reports a permanent problem. Automatic checks are \
             paused for this account."
        )]
    );
    assert_eq!(q.apply(SyncAction::Tick, T0 + 86_400, &r), []);
}

#[test]
fn failures_back_off_and_the_check_runs_when_due() {
    let r = both();
    let mut q = queue(&r);
    // Never synced: both are due at once.
    assert_eq!(
        q.apply(SyncAction::Tick, T0, &r),
        [status("Checking ana@example.org…"), start("a")]
    );
    assert_eq!(
        q.apply(done("a", dropped()), T0, &r),
        [
            status("ana@example.org: The relay closed. Next try in 1:00."),
            status("Checking bo@example.org…"),
            start("b"),
        ]
    );
    // `b`'s sync ends late, so its next check (one interval on) is after this test's ticks.
    q.apply(done("b", ok(0, None)), T0 + 1_000, &r);
    assert_eq!(q.apply(SyncAction::Tick, T0 + 59, &r), []);
    assert_eq!(q.apply(SyncAction::Tick, T0 + 60, &r)[1], start("a"));
    // A second failure in a row waits twice as long.
    assert_eq!(
        q.apply(done("a", dropped()), T0 + 60, &r)[0],
        status("ana@example.org: The relay closed. Next try in 2:00.")
    );
    assert_eq!(q.apply(SyncAction::Tick, T0 + 179, &r), []);
    assert_eq!(q.apply(SyncAction::Tick, T0 + 180, &r)[1], start("a"));
    // Success forgets the failures; the next check is one interval later.
    q.apply(done("a", ok(0, None)), T0 + 180, &r);
    assert_eq!(q.apply(SyncAction::Tick, T0 + 779, &r), []);
    assert_eq!(q.apply(SyncAction::Tick, T0 + 780, &r)[1], start("a"));
}

#[test]
fn login_delay_holds_sync_now_and_counts_down() {
    let r = Accounts {
        passwords: vec!["a"],
    };
    let mut q = queue(&r);
    q.apply(SyncAction::SyncNow(Some("a".into())), T0, &r);
    q.apply(done("a", ok(0, Some(300))), T0, &r);
    let waiting = "ana@example.org: the server allows one sign-in at a time every few minutes \
                   (LOGIN-DELAY); next sign-in in";
    assert_eq!(
        q.apply(SyncAction::SyncNow(Some("a".into())), T0 + 1, &r),
        [status(&format!("{waiting} 4:59."))]
    );
    assert!(q.running().is_none());
    assert_eq!(
        q.apply(SyncAction::Tick, T0 + 2, &r),
        [status(&format!("{waiting} 4:58."))]
    );
    assert_eq!(
        q.apply(SyncAction::Tick, T0 + 300, &r),
        [status(
            "ana@example.org: the server allows a new sign-in now."
        )]
    );
    assert_eq!(q.apply(SyncAction::Tick, T0 + 301, &r), []);
    // Fetching a whole message waits too.
    q.apply(
        SyncAction::LoggedIn {
            account: "a".into(),
            login_delay: None,
        },
        T0 + 400,
        &r,
    );
    assert_eq!(
        q.apply(SyncAction::Fetch("a".into()), T0 + 400, &r),
        [status(&format!("{waiting} 5:00."))]
    );
    assert_eq!(
        q.apply(SyncAction::Fetch("a".into()), T0 + 700, &r),
        [
            status("Downloading the whole message…"),
            SyncEffect::Fetch("a".into())
        ]
    );
}

#[test]
fn a_login_delay_refusal_counts_down_to_the_next_try() {
    let r = both();
    let mut q = queue(&r);
    let effects = q.apply(
        SyncAction::Failed {
            account: "a".into(),
            problem: Problem::Later("The server asks to wait.".into()),
            failure: Failure::Refused(Some(RespCode::LoginDelay)),
        },
        T0,
        &r,
    );
    assert_eq!(
        effects,
        [status(
            "ana@example.org: The server asks to wait. Next try in 15:00."
        )]
    );
    assert_eq!(
        q.apply(SyncAction::Tick, T0 + 60, &r)[0],
        status(
            "ana@example.org: the server allows one sign-in at a time every few minutes \
             (LOGIN-DELAY); next sign-in in 14:00."
        )
    );
}

#[test]
fn offline_nothing_starts_until_the_network_is_back() {
    let r = both();
    let mut q = queue(&r);
    q.apply(SyncAction::Online(false), T0, &r);
    assert!(!q.online());
    assert_eq!(q.apply(SyncAction::SyncNow(Some("a".into())), T0, &r), []);
    assert_eq!(q.apply(SyncAction::Tick, T0 + 60, &r), []);
    assert_eq!(
        q.apply(SyncAction::Online(true), T0 + 61, &r),
        [status("Checking ana@example.org…"), start("a")]
    );
}

#[test]
fn a_cancelled_sync_is_not_a_failure_and_the_queue_is_dropped() {
    let r = both();
    let mut q = queue(&r);
    q.apply(SyncAction::SyncNow(None), T0, &r);
    assert_eq!(q.apply(SyncAction::Cancel, T0, &r), [SyncEffect::CancelRun]);
    assert_eq!(
        q.apply(done("a", dropped()), T0, &r),
        [status("Sync cancelled; the mail stored so far is kept.")]
    );
    // `b` was dropped from the queue; no backoff was counted for `a`.
    assert!(q.running().is_none());
    q.apply(SyncAction::SyncNow(Some("a".into())), T0, &r);
    assert_eq!(
        q.apply(done("a", dropped()), T0, &r)[0],
        status("ana@example.org: The relay closed. Next try in 1:00.")
    );
    assert_eq!(q.apply(SyncAction::Cancel, T0, &r), []);
}

#[test]
fn without_a_password_sync_now_asks_and_automatic_checks_skip_the_account() {
    let r = Accounts {
        passwords: vec!["a"],
    };
    let mut q = queue(&r);
    // Due, but without a password: the automatic check leaves `b` alone.
    assert_eq!(q.apply(SyncAction::Tick, T0, &r)[1], start("a"));
    q.apply(done("a", ok(0, None)), T0, &r);
    assert_eq!(q.asking(), None);
    q.apply(SyncAction::SyncNow(Some("b".into())), T0, &r);
    assert_eq!(q.asking(), Some("b"));
    // While the prompt is open nothing else starts; "Not now" drops the queue.
    assert_eq!(q.apply(SyncAction::SyncNow(Some("a".into())), T0, &r), []);
    q.apply(SyncAction::PasswordDismissed, T0, &r);
    assert_eq!(q.asking(), None);
    assert_eq!(q.apply(SyncAction::Tick, T0 + 1, &r), []);
    // Fetching a whole message asks too.
    q.apply(SyncAction::Fetch("b".into()), T0, &r);
    assert_eq!(q.asking(), Some("b"));
}

#[test]
fn an_added_account_shows_its_first_sync_and_a_removed_one_is_skipped() {
    let r = both();
    let mut q = queue(&r);
    assert_eq!(
        q.apply(SyncAction::Added("b".into()), T0, &r),
        [status("Checking bo@example.org…")]
    );
    assert_eq!(q.running().map(|run| run.account.as_str()), Some("b"));
    q.apply(done("b", ok(0, None)), T0, &r);
    q.apply(SyncAction::SyncNow(Some("gone".into())), T0, &r);
    assert!(q.running().is_none());
}
