//! Helpers shared by the tests: random values and their comparison for the numeric tests, and
//! running the real binary (in a terminal too) for the others.
#![allow(dead_code)] // each test file uses some of them

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// `n` values drawn uniformly from [-1, 1).
pub fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    random_in(rng, n, -1.0, 1.0)
}

/// `n` values drawn uniformly from [lo, hi).
pub fn random_in(rng: &mut ChaCha8Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.gen_range(lo..hi)).collect()
}

/// The largest absolute difference of two equally long slices.
pub fn max_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

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

/// A private tmux server: the real binary in a real terminal.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A private tmux server with one 80x24 session running `script`.
    pub fn start(name: &str, script: &str) -> Self {
        let tmux = Tmux {
            socket: format!("wgangp-test-{}-{name}", std::process::id()),
        };
        let args = [
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "24",
            "-s",
            "t",
            script,
        ];
        let started = tmux.run(&args);
        assert!(
            started.status.success(),
            "{}",
            String::from_utf8_lossy(&started.stderr)
        );
        tmux
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed (.ci/run installs it)")
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    pub fn keys(&self, keys: &str) {
        assert!(self.run(&["send-keys", "-t", "t", keys]).status.success());
    }

    /// Polls until `f` holds, for up to 60 s.
    pub fn wait(&self, what: &str, mut f: impl FnMut(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if f(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

pub fn metric_lines(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
