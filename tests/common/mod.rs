//! Helpers shared by the tests that run the real binary.
#![allow(dead_code)] // each test file uses some of them

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_wgangp-tui");

/// Runs the binary to the end.
pub fn wgangp(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("binary runs")
}

/// Every record of a run folder's metrics.jsonl.
pub fn records(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// The binary refuses `args` with status 2 and one clear line, never a panic.
pub fn assert_bad_input(args: &[&str], message: &str) {
    let o = wgangp(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(message),
        "{args:?}: expected `{message}` in: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
