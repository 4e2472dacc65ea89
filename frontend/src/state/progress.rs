//! The progress line under the sync bar: messages, megabytes, rate and time left.

use webpop_shared::sync::{Progress, RateMeter};

/// What the progress bar shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressView {
    /// Fraction done, 0.0 to 1.0 (by bytes when known, else by messages).
    pub fraction: f64,
    /// For example "12 of 300 messages · 3.4 of 90.0 MB · 5.1 MB/s · 17 s left".
    pub text: String,
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_000_000.0)
}

fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The view of `progress`, with the rate from `meter` (fed by the caller's clock).
pub fn view(progress: &Progress, meter: &RateMeter) -> ProgressView {
    let fraction = if progress.bytes_total > 0 {
        progress.bytes_done as f64 / progress.bytes_total as f64
    } else if progress.messages_total > 0 {
        progress.messages_done as f64 / progress.messages_total as f64
    } else {
        1.0
    }
    .clamp(0.0, 1.0);
    let mut parts = vec![
        format!(
            "{} of {} messages",
            progress.messages_done, progress.messages_total
        ),
        format!(
            "{} of {} MB",
            megabytes(progress.bytes_done),
            megabytes(progress.bytes_total)
        ),
    ];
    if let Some(rate) = meter.bytes_per_second() {
        parts.push(format!("{:.1} MB/s", rate / 1_000_000.0));
        let left = progress.bytes_total.saturating_sub(progress.bytes_done);
        if let Some(seconds) = meter.seconds_left(left) {
            parts.push(format!("{} left", duration(seconds)));
        }
    }
    ProgressView {
        fraction,
        text: parts.join(" · "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_counts_rate_and_time_left() {
        let mut meter = RateMeter::new();
        meter.record(0.0, 0);
        meter.record(1_000.0, 5_000_000);
        let p = Progress {
            messages_done: 12,
            messages_total: 300,
            bytes_done: 5_000_000,
            bytes_total: 90_000_000,
        };
        let v = view(&p, &meter);
        assert_eq!(
            v.text,
            "12 of 300 messages · 5.0 of 90.0 MB · 5.0 MB/s · 17 s left"
        );
        assert!((v.fraction - 5.0 / 90.0).abs() < 1e-9);
    }

    #[test]
    fn no_rate_yet_and_empty_syncs() {
        let v = view(&Progress::default(), &RateMeter::new());
        assert_eq!(v.text, "0 of 0 messages · 0.0 of 0.0 MB");
        assert_eq!(v.fraction, 1.0);
        assert_eq!(duration(125.0), "2 min 5 s");
        assert_eq!(duration(7_300.0), "2 h 1 min");
    }
}
