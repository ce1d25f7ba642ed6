//! Small helpers every layer may use: messages to the user, durations, progress, file writes,
//! signals.

pub mod files;
pub mod progress;
pub mod signals;
pub mod time;

use std::io::Write;

/// A line to the user on stderr. A closed or broken stderr (a pipe whose reader quit, a
/// terminal that hung up) must not stop training, so errors are ignored.
pub fn say(message: std::fmt::Arguments) {
    let _ = writeln!(std::io::stderr(), "wgangp-tui: {message}");
}

/// The message a panic carried (a `panic!` with a format gives a String, a literal a &str).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

/// The median of some figures (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn panic_messages_are_read_from_both_payload_kinds() {
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let formatted = std::panic::catch_unwind(|| panic!("CUDA {} failed", "sgemm"));
        let literal = std::panic::catch_unwind(|| panic!("a literal"));
        std::panic::set_hook(quiet);
        let message = |r: std::thread::Result<()>| super::panic_message(r.unwrap_err().as_ref());
        assert_eq!(message(formatted), "CUDA sgemm failed");
        assert_eq!(message(literal), "a literal");
    }
}
