//! Transfer rate and time left for a progress bar, from samples the host takes with its own
//! clock (the engine reads none).

use std::collections::VecDeque;

/// How far back the rate looks, in milliseconds: long enough to smooth out batches, short
/// enough to follow a changing network.
const WINDOW_MS: f64 = 3_000.0;

/// Bytes per second over the last few seconds.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    samples: VecDeque<(f64, u64)>,
}

impl RateMeter {
    /// A meter with no samples.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `bytes_done` bytes were done at `now_ms` (any monotonic milliseconds).
    pub fn record(&mut self, now_ms: f64, bytes_done: u64) {
        self.samples.push_back((now_ms, bytes_done));
        while self.samples.len() > 2 && now_ms - self.samples[1].0 >= WINDOW_MS {
            self.samples.pop_front();
        }
    }

    /// Bytes per second, once two samples are far enough apart to tell.
    pub fn bytes_per_second(&self) -> Option<f64> {
        let (t0, b0) = *self.samples.front()?;
        let (t1, b1) = *self.samples.back()?;
        let elapsed = (t1 - t0) / 1000.0;
        (elapsed >= 0.05).then(|| b1.saturating_sub(b0) as f64 / elapsed)
    }

    /// Seconds left for `bytes_left`, at the current rate.
    pub fn seconds_left(&self, bytes_left: u64) -> Option<f64> {
        let rate = self.bytes_per_second()?;
        (rate > 0.0).then(|| bytes_left as f64 / rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_follows_the_last_seconds() {
        let mut m = RateMeter::new();
        assert_eq!(m.bytes_per_second(), None);
        m.record(0.0, 0);
        m.record(10.0, 100);
        assert_eq!(m.bytes_per_second(), None, "too soon to tell");
        m.record(1_000.0, 1_000_000);
        assert_eq!(m.bytes_per_second(), Some(1_000_000.0));
        assert_eq!(m.seconds_left(3_000_000), Some(3.0));
        // The network slows down: after the window, only the slow part counts.
        for s in 2..=10 {
            m.record(f64::from(s) * 1000.0, 1_000_000 + (s as u64 - 1) * 1000);
        }
        let rate = m.bytes_per_second().unwrap();
        assert!((rate - 1000.0).abs() < 1.0, "{rate}");
        // A stalled transfer has no time left to show.
        let mut stalled = RateMeter::new();
        stalled.record(0.0, 5);
        stalled.record(5_000.0, 5);
        assert_eq!(stalled.seconds_left(10), None);
    }
}
