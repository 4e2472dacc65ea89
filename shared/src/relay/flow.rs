//! Credit-based flow control between the relay and the page, so that a page which stops
//! reading stops the relay reading the mail server.
//!
//! A browser's WebSocket (outside Chromium's `WebSocketStream`) takes every frame the relay
//! sends, whether or not the page has asked for it: the sync engine stops reading while its
//! window is full ([`crate::sync::Engine::wants_input`]), but the frames keep piling up in the
//! page's memory, and the relay keeps reading the server. Flow control fixes that in the relay
//! contract itself, and so works in every browser.
//!
//! A page that offers the subprotocol [`PROTOCOL`] (and a relay that picks it) agree that:
//! - the relay sends the page at most [`WINDOW`] payload bytes the page has not acknowledged,
//!   and reads the server only as far as that credit reaches, so TCP backpressure reaches the
//!   mail server;
//! - the page acknowledges bytes once it has handed them to its session (not when they merely
//!   arrive), with a text frame [`Ack`] (`ack <bytes>`; binary frames stay the mail server's
//!   bytes). It acknowledges in steps of at least [`ACK_EVERY`] bytes ([`Grants`]);
//! - a page that acknowledges more than it was sent, or sends any other text, broke the
//!   contract: the relay closes with [`super::CloseReason::FlowViolation`].
//!
//! A page or relay that does not know [`PROTOCOL`] simply does not pick it, and the session
//! runs without flow control, as before.
//!
//! [`Credit`] is the relay's side, [`Grants`] the page's; both are sans-I/O.

use std::fmt;
use std::num::NonZeroU32;

/// The subprotocol a page offers (next to [`super::PROTOCOL`]) to ask for flow control. A relay
/// that supports it answers with this one: a handshake names one protocol only, and the
/// browser accepts only one it offered.
pub const PROTOCOL: &str = "webpop.flow.v1";

/// The most payload bytes the relay sends before the page acknowledges them (4 MiB). A page
/// and a relay a round trip apart move at most one window per round trip: measured through a
/// relay on loopback with added latency, 4 MiB carries 200 MB/s at 10 ms and 50 MB/s at 50 ms
/// (1 MiB: 64 and 17 MB/s), above the 17–33 MB/s a page syncs at. Half the sync engine's 8 MiB
/// window, so a page holds at most 12 MiB of mail it has not stored.
pub const WINDOW: u32 = 4 * 1024 * 1024;

/// The page acknowledges once it has consumed this many unacknowledged bytes (1 MiB, the
/// relay's read size): four acknowledgements per window, so the relay reads in large steps
/// and the page sends one small text frame per sixteen 64 KiB frames it takes.
pub const ACK_EVERY: u32 = WINDOW / 4;

/// The most characters an acknowledgement has: `ack ` and a `u32` in decimal.
const MAX_ACK_LEN: usize = 4 + 10;

/// Why a page's flow-control message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// The text frame is not `ack ` and a positive decimal number of at most 10 digits without
    /// leading zeros that fits 32 bits.
    #[error("the page sent a text frame that is not an acknowledgement")]
    Malformed,
    /// The page acknowledged bytes it was never sent.
    #[error("the page acknowledged {acked} bytes with only {unacked} unacknowledged")]
    MoreThanSent {
        /// What the page acknowledged.
        acked: u32,
        /// What the relay had sent and not seen acknowledged.
        unacked: u64,
    },
}

/// An acknowledgement: the page has consumed this many more bytes (at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack(NonZeroU32);

impl Ack {
    /// An acknowledgement of `bytes`; `None` for 0, which acknowledges nothing.
    pub fn new(bytes: u32) -> Option<Self> {
        NonZeroU32::new(bytes).map(Self)
    }

    /// How many bytes it acknowledges.
    pub fn bytes(self) -> u32 {
        self.0.get()
    }

    /// Reads a text frame's payload. Strict: exactly `ack`, one space, and the number in
    /// canonical decimal, so that one message has one spelling.
    ///
    /// # Errors
    /// [`FlowError::Malformed`] for anything else (including 0 and numbers over `u32::MAX`).
    pub fn parse(text: &str) -> Result<Self, FlowError> {
        if text.len() > MAX_ACK_LEN {
            return Err(FlowError::Malformed);
        }
        let digits = text.strip_prefix("ack ").ok_or(FlowError::Malformed)?;
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !canonical {
            return Err(FlowError::Malformed);
        }
        digits
            .parse::<u32>()
            .ok()
            .and_then(Self::new)
            .ok_or(FlowError::Malformed)
    }
}

impl fmt::Display for Ack {
    /// The text frame's payload, `ack <bytes>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ack {}", self.0)
    }
}

/// The relay's side: how much it may still send the page.
#[derive(Debug, Clone)]
pub struct Credit {
    window: u64,
    unacked: u64,
}

impl Credit {
    /// Credit for a new session: `window` bytes ([`WINDOW`] on the wire).
    pub fn new(window: u32) -> Self {
        Self {
            window: u64::from(window),
            unacked: 0,
        }
    }

    /// How many bytes the relay may read from the server and send now; 0 means wait for an
    /// acknowledgement.
    pub fn available(&self) -> usize {
        usize::try_from(self.window.saturating_sub(self.unacked)).unwrap_or(usize::MAX)
    }

    /// Bytes sent and not yet acknowledged.
    pub fn unacked(&self) -> u64 {
        self.unacked
    }

    /// Records `bytes` sent to the page (the relay never sends more than
    /// [`Credit::available`]).
    pub fn sent(&mut self, bytes: usize) {
        self.unacked = self
            .unacked
            .saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    /// Takes the page's acknowledgement.
    ///
    /// # Errors
    /// [`FlowError::MoreThanSent`] when it covers bytes not sent (or already acknowledged); the
    /// credit is then unchanged.
    pub fn acked(&mut self, ack: Ack) -> Result<(), FlowError> {
        let bytes = u64::from(ack.bytes());
        if bytes > self.unacked {
            return Err(FlowError::MoreThanSent {
                acked: ack.bytes(),
                unacked: self.unacked,
            });
        }
        self.unacked -= bytes;
        Ok(())
    }
}

/// The page's side: counts the bytes it consumed and says when to acknowledge them.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pending: u64,
}

impl Grants {
    /// Nothing consumed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `bytes` handed to the session; returns the acknowledgement to send, if one is
    /// due (once [`ACK_EVERY`] bytes are pending).
    pub fn consumed(&mut self, bytes: usize) -> Option<Ack> {
        self.pending = self
            .pending
            .saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
        if self.pending < u64::from(ACK_EVERY) {
            return None;
        }
        let now = u32::try_from(self.pending).unwrap_or(u32::MAX);
        self.pending -= u64::from(now);
        Ack::new(now)
    }

    /// Consumed bytes not yet acknowledged.
    pub fn pending(&self) -> u64 {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_round_trip_through_their_text() {
        for n in [1, 7, ACK_EVERY, WINDOW, u32::MAX] {
            let ack = Ack::new(n).unwrap();
            let text = ack.to_string();
            assert_eq!(text, format!("ack {n}"));
            assert_eq!(Ack::parse(&text), Ok(ack));
        }
        assert_eq!(Ack::new(0), None);
    }

    #[test]
    fn garbage_zero_and_overflowing_acks_are_malformed_not_panics() {
        for text in [
            "",
            "ack",
            "ack ",
            "ack 0",
            "ack 00",
            "ack 01",
            "ack +1",
            "ack -1",
            "ack 1 ",
            " ack 1",
            "ack  1",
            "ACK 1",
            "ack\t1",
            "ack 1\n",
            "ack 4294967296",
            "ack 99999999999",
            "ack 18446744073709551616",
            "ack 1e6",
            "ack ١",
            "USER alice",
            "ack 4294967295 and more text after it",
        ] {
            assert_eq!(Ack::parse(text), Err(FlowError::Malformed), "{text:?}");
        }
        let long = format!("ack {}", "9".repeat(100_000));
        assert_eq!(Ack::parse(&long), Err(FlowError::Malformed));
    }

    #[test]
    fn the_relay_sends_at_most_the_window_until_the_page_acknowledges() {
        let mut credit = Credit::new(WINDOW);
        assert_eq!(credit.available(), WINDOW as usize);
        credit.sent(1000);
        assert_eq!(credit.available(), WINDOW as usize - 1000);
        credit.sent(WINDOW as usize - 1000);
        assert_eq!(credit.available(), 0);
        credit.acked(Ack::new(ACK_EVERY).unwrap()).unwrap();
        assert_eq!(credit.available(), ACK_EVERY as usize);
        assert_eq!(credit.unacked(), u64::from(WINDOW - ACK_EVERY));
    }

    #[test]
    fn a_page_that_acknowledges_more_than_it_was_sent_is_refused() {
        let mut credit = Credit::new(WINDOW);
        assert_eq!(
            credit.acked(Ack::new(1).unwrap()),
            Err(FlowError::MoreThanSent {
                acked: 1,
                unacked: 0
            })
        );
        credit.sent(10);
        credit.acked(Ack::new(10).unwrap()).unwrap();
        // The same bytes twice: the second is more than was sent.
        assert!(credit.acked(Ack::new(10).unwrap()).is_err());
        // The largest ack a page can write cannot overflow anything either.
        credit.sent(5);
        assert!(credit.acked(Ack::new(u32::MAX).unwrap()).is_err());
        assert_eq!(credit.unacked(), 5);
        assert_eq!(credit.available(), WINDOW as usize - 5);
    }

    #[test]
    fn the_page_acknowledges_in_steps_of_ack_every_and_everything_it_consumed() {
        let mut grants = Grants::new();
        let mut acked = 0u64;
        let mut consumed = 0u64;
        // Frames of uneven sizes: small replies, then 64 KiB frames.
        for size in [37usize, 4000, 120]
            .into_iter()
            .chain(std::iter::repeat_n(64 * 1024, 40))
        {
            consumed += size as u64;
            if let Some(ack) = grants.consumed(size) {
                assert!(ack.bytes() >= ACK_EVERY);
                acked += u64::from(ack.bytes());
            }
            assert!(grants.pending() < u64::from(ACK_EVERY));
            assert_eq!(acked + grants.pending(), consumed);
        }
        assert!(acked > 0);
    }

    /// With the page acknowledging only in steps, the relay must never be left without credit
    /// while the page has consumed everything (each would wait for the other).
    #[test]
    fn a_page_that_consumed_everything_always_leaves_the_relay_credit() {
        let mut credit = Credit::new(WINDOW);
        let mut grants = Grants::new();
        for size in [1usize, 500, 64 * 1024, 3, 1 << 20, 17, 200_000] {
            let mut left = size;
            while left > 0 {
                let n = left.min(credit.available());
                assert!(n > 0, "the relay is stuck with the page caught up");
                credit.sent(n);
                if let Some(ack) = grants.consumed(n) {
                    credit.acked(ack).unwrap();
                }
                left -= n;
            }
            assert!(credit.available() > (WINDOW - ACK_EVERY) as usize);
        }
    }
}
