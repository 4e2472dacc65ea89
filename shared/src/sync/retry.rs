//! What to do when a server refuses: retry later (with backoff, or after the server's
//! LOGIN-DELAY), or stop and tell the user. Attempts are counted by the caller; no clock is read.

use std::time::Duration;

use crate::pop3::{LoginDelay, RespCode};

/// Why retrying will not help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StopReason {
    /// `[AUTH]`, or a login refused without a code: the credentials are wrong.
    #[error("the server refused the user name or password")]
    Auth,
    /// `[SYS/PERM]`: the server has a permanent problem with this mailbox.
    #[error("the server reports a permanent problem with this mailbox")]
    Permanent,
}

/// The decision after a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// Try again after this long.
    RetryAfter(Duration),
    /// Do not retry; tell the user.
    Stop(StopReason),
}

/// The first wait after `[IN-USE]`: another client holds the mailbox lock, usually briefly.
const IN_USE_FIRST: Duration = Duration::from_secs(30);
/// The first wait after `[SYS/TEMP]`.
const SYS_TEMP_FIRST: Duration = Duration::from_secs(60);
/// The longest wait between retries.
const MAX_WAIT: Duration = Duration::from_secs(30 * 60);
/// The wait after `[LOGIN-DELAY]` when the server did not advertise its interval.
const LOGIN_DELAY_DEFAULT: Duration = Duration::from_secs(15 * 60);

/// Advice after a login (or mailbox) refusal with `code`, on the `attempt`-th try in a row
/// (0 for the first), for a server that advertised `login_delay`.
pub fn advise(code: Option<&RespCode>, attempt: u32, login_delay: Option<LoginDelay>) -> Advice {
    let backoff = |first: Duration| {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        Advice::RetryAfter(first.saturating_mul(factor).min(MAX_WAIT))
    };
    match code {
        Some(RespCode::InUse) => backoff(IN_USE_FIRST),
        Some(RespCode::SysTemp) => backoff(SYS_TEMP_FIRST),
        Some(RespCode::LoginDelay) => {
            Advice::RetryAfter(login_delay.map_or(LOGIN_DELAY_DEFAULT, |d| {
                Duration::from_secs(u64::from(d.seconds))
            }))
        }
        Some(RespCode::SysPerm) => Advice::Stop(StopReason::Permanent),
        Some(RespCode::Auth) | Some(RespCode::Other(_)) | None => Advice::Stop(StopReason::Auth),
    }
}

/// The earliest time (seconds since the Unix epoch) an automatic check may log in again after
/// a login at `last_login`, given the server's LOGIN-DELAY and the user's `interval`.
pub fn next_check(last_login: u64, interval: Duration, login_delay: Option<LoginDelay>) -> u64 {
    let delay = login_delay.map_or(0, |d| u64::from(d.seconds));
    last_login.saturating_add(interval.as_secs().max(delay))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_codes_back_off_and_permanent_ones_stop() {
        assert_eq!(
            advise(Some(&RespCode::InUse), 0, None),
            Advice::RetryAfter(Duration::from_secs(30))
        );
        assert_eq!(
            advise(Some(&RespCode::InUse), 2, None),
            Advice::RetryAfter(Duration::from_secs(120))
        );
        assert_eq!(
            advise(Some(&RespCode::SysTemp), 40, None),
            Advice::RetryAfter(MAX_WAIT)
        );
        assert_eq!(
            advise(Some(&RespCode::SysPerm), 0, None),
            Advice::Stop(StopReason::Permanent)
        );
        assert_eq!(
            advise(Some(&RespCode::Auth), 0, None),
            Advice::Stop(StopReason::Auth)
        );
        assert_eq!(advise(None, 0, None), Advice::Stop(StopReason::Auth));
    }

    #[test]
    fn login_delay_waits_the_advertised_interval() {
        let delay = LoginDelay {
            seconds: 900,
            per_user: false,
        };
        assert_eq!(
            advise(Some(&RespCode::LoginDelay), 5, Some(delay)),
            Advice::RetryAfter(Duration::from_secs(900))
        );
        assert_eq!(
            advise(Some(&RespCode::LoginDelay), 0, None),
            Advice::RetryAfter(LOGIN_DELAY_DEFAULT)
        );
        assert_eq!(
            next_check(1_000, Duration::from_secs(300), Some(delay)),
            1_900
        );
        assert_eq!(
            next_check(1_000, Duration::from_secs(3600), Some(delay)),
            4_600
        );
        assert_eq!(next_check(1_000, Duration::from_secs(300), None), 1_300);
    }
}
