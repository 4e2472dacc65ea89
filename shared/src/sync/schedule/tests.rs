use super::*;

const T0: u64 = 1_800_000_000;
const TEN_MINUTES: Duration = Duration::from_secs(600);

fn delay(seconds: u32) -> Option<LoginDelay> {
    Some(LoginDelay {
        seconds,
        per_user: false,
    })
}

#[test]
fn a_wrong_password_pauses_automatic_checks_until_the_person_signs_in_again() {
    // bug: a remembered wrong password was retried every 10 minutes forever (the attempt count
    // was never read and a stop was ignored), which can get the account locked.
    let mut s = Scheduler::new(TEN_MINUTES);
    s.track("a", None, T0);
    assert_eq!(s.due(T0), vec!["a".to_owned()]);
    for refusal in [
        Failure::Refused(Some(RespCode::Auth)),
        Failure::Refused(None),
    ] {
        assert_eq!(
            s.failed("a", T0, &refusal),
            Decision::Stop(StopReason::Auth)
        );
        assert_eq!(s.gate("a", T0), Gate::Paused(StopReason::Auth));
        // Never again on its own, however long we wait.
        for later in [T0 + 600, T0 + 86_400, T0 + 365 * 86_400] {
            assert!(s.due(later).is_empty(), "due at {later}");
        }
        assert_eq!(s.next_check("a"), None);
        s.resume("a");
        assert_eq!(s.gate("a", T0), Gate::Open);
    }
    assert_eq!(
        s.failed("a", T0, &Failure::Refused(Some(RespCode::SysPerm))),
        Decision::Stop(StopReason::Permanent)
    );
    assert!(s.due(T0 + 86_400).is_empty());
}

#[test]
fn automatic_retries_back_off_exponentially() {
    let mut s = Scheduler::new(TEN_MINUTES);
    s.track("a", None, T0);
    let mut waits = Vec::new();
    let mut now = T0;
    for _ in 0..8 {
        let Decision::RetryAt(at) = s.failed("a", now, &Failure::Other) else {
            panic!("a network failure never stops the schedule");
        };
        assert!(s.due(at - 1).is_empty());
        assert_eq!(s.due(at), vec!["a".to_owned()]);
        waits.push(at - now);
        now = at;
    }
    assert_eq!(waits, [60, 120, 240, 480, 960, 1800, 1800, 1800]);
    // [IN-USE] backs off from 30 s, counted with the failures before it.
    let mut s = Scheduler::new(TEN_MINUTES);
    let in_use = Failure::Refused(Some(RespCode::InUse));
    assert_eq!(s.failed("b", T0, &in_use), Decision::RetryAt(T0 + 30));
    assert_eq!(s.failed("b", T0, &in_use), Decision::RetryAt(T0 + 60));
    assert_eq!(s.failed("b", T0, &in_use), Decision::RetryAt(T0 + 120));
    // Success forgets the failures.
    s.logged_in("b", T0 + 200, None);
    s.succeeded("b", T0 + 210);
    assert_eq!(s.next_check("b"), Some(T0 + 200 + 600));
    assert_eq!(
        s.failed("b", T0 + 900, &in_use),
        Decision::RetryAt(T0 + 930)
    );
}

#[test]
fn login_delay_holds_for_every_login_including_manual_ones() {
    // bug: only automatic checks waited for LOGIN-DELAY; "Sync now" and fetching a whole
    // message signed in at once and were refused.
    let mut s = Scheduler::new(Duration::from_secs(60));
    s.track("a", None, T0);
    s.logged_in("a", T0, delay(900));
    s.succeeded("a", T0 + 5);
    assert_eq!(s.gate("a", T0 + 5), Gate::Wait { until: T0 + 900 });
    assert_eq!(s.gate("a", T0 + 899), Gate::Wait { until: T0 + 900 });
    assert_eq!(s.gate("a", T0 + 900), Gate::Open);
    // The automatic check (interval 60 s) waits for the delay too.
    assert!(s.due(T0 + 60).is_empty());
    assert_eq!(s.due(T0 + 900), vec!["a".to_owned()]);
    assert_eq!(s.next_check("a"), Some(T0 + 900));
}

#[test]
fn a_login_delay_refusal_waits_the_advertised_interval_from_now() {
    let mut s = Scheduler::new(TEN_MINUTES);
    s.track("a", None, T0);
    s.logged_in("a", T0, delay(300));
    s.succeeded("a", T0);
    // Another device logged in since: the server refuses with [LOGIN-DELAY].
    let refused = Failure::Refused(Some(RespCode::LoginDelay));
    assert_eq!(
        s.failed("a", T0 + 400, &refused),
        Decision::RetryAt(T0 + 700)
    );
    assert_eq!(s.gate("a", T0 + 400), Gate::Wait { until: T0 + 700 });
    // Without an advertised interval, the default (15 minutes) applies and is remembered.
    let mut s = Scheduler::new(TEN_MINUTES);
    assert_eq!(s.failed("b", T0, &refused), Decision::RetryAt(T0 + 900));
    assert_eq!(s.gate("b", T0 + 899), Gate::Wait { until: T0 + 900 });
}

#[test]
fn tracking_starts_one_interval_after_the_last_sync_and_never_in_the_past() {
    let mut s = Scheduler::new(TEN_MINUTES);
    s.track("old", Some(T0 - 86_400), T0);
    s.track("recent", Some(T0 - 60), T0);
    assert_eq!(s.due(T0), vec!["old".to_owned()]);
    assert_eq!(s.next_check("recent"), Some(T0 + 540));
    // Tracking again keeps what is known.
    s.failed("old", T0, &Failure::Refused(None));
    s.track("old", None, T0);
    assert_eq!(s.gate("old", T0), Gate::Paused(StopReason::Auth));
    s.forget("old");
    assert_eq!(s.gate("old", T0), Gate::Open);
}

#[test]
fn countdowns_read_as_clock_times() {
    assert_eq!(countdown(0), "0:00");
    assert_eq!(countdown(65), "1:05");
    assert_eq!(countdown(900), "15:00");
    assert_eq!(countdown(3_723), "1:02:03");
}
