//! Exit statuses and the error line.

use std::process::ExitCode;

use crate::util::say;

/// Exit status for bad input (flags, data, output folder), as clap uses for bad flags.
pub const BAD_INPUT: u8 = 2;
/// Exit status when training stopped on a NaN or infinite value, or a check failed.
pub const FAILED: u8 = 1;

/// The shell's convention for a process ended by a signal; success without one.
pub fn signal_status(signal: i32) -> ExitCode {
    if signal == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(128u8.saturating_add(signal as u8))
    }
}

/// Says `message` as an error and returns `code`.
pub fn fail(message: &str, code: u8) -> ExitCode {
    say(format_args!("error: {message}"));
    ExitCode::from(code)
}
