//! Durations for people: `42s`, `3m05s`, `2h10m`, and the time left to a number of steps.

/// The time left to `total` steps at the current pace, formatted; None when unknown.
pub fn eta(total: Option<u64>, step: u64, iters_per_s: f64) -> Option<String> {
    match total {
        Some(n) if iters_per_s > 0.0 && n > step => {
            Some(format_duration((n - step) as f64 / iters_per_s))
        }
        _ => None,
    }
}

pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
