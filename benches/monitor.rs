//! What the live monitor costs: training throughput with the monitor vs `--no-ui` on the same
//! work, and the bytes the monitor writes to an 80x24 terminal per second (SSH users pay for
//! every byte).
//!
//! `cargo bench --bench monitor` (options after `--`: `--steps N`, `--rounds R`). The monitor
//! runs in a real pseudo-terminal (util-linux `script`, sized 80x24), which records every byte
//! written to it. The two modes alternate so that drifts of the machine hit both alike; the
//! figures are medians. This is a benchmark, not a test: it prints figures and asserts nothing.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wgangp_tui::util::median;

const BIN: &str = env!("CARGO_BIN_EXE_wgangp-tui");

struct Figures {
    iters_per_s: f64,
    /// Terminal bytes per second (monitor only).
    bytes_per_s: Option<f64>,
}

fn records(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Generator iterations per second between the first and the last metrics record, so that
/// start-up (model building, terminal set-up) is left out.
fn throughput(out: &Path) -> f64 {
    let metrics: Vec<_> = records(out)
        .into_iter()
        .filter(|r| r["kind"] == "metrics")
        .collect();
    let (first, last) = (&metrics[0], metrics.last().unwrap());
    let steps = last["step"].as_f64().unwrap() - first["step"].as_f64().unwrap();
    steps / (last["wall_s"].as_f64().unwrap() - first["wall_s"].as_f64().unwrap())
}

fn train_args(out: &Path, steps: u64) -> Vec<String> {
    let args = [
        "--data",
        "toy:8gaussians",
        "--seed",
        "1",
        "--threads",
        "2",
        "--steps",
    ];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.push(steps.to_string());
    args.push("--out".into());
    args.push(out.display().to_string());
    args
}

fn headless(steps: u64) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = train_args(&out, steps);
    args.push("--no-ui".into());
    let status = Command::new(BIN)
        .args(&args)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    Figures {
        iters_per_s: throughput(&out),
        bytes_per_s: None,
    }
}

fn monitor(steps: u64) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let typescript = dir.path().join("terminal");
    let command = format!(
        "stty cols 80 rows 24; env TERM=xterm-256color {BIN} {}",
        train_args(&out, steps).join(" ")
    );
    let start = Instant::now();
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command])
        .arg(&typescript)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("util-linux `script` runs the monitor in a pseudo-terminal");
    // The monitor stays open on the finished run until q.
    while !records(&out)
        .iter()
        .any(|r| r["kind"] == "state" && r["state"] == "finished")
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the monitor exited early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&typescript).map(|m| m.len()).unwrap_or(0) as f64;
    child.stdin.as_mut().unwrap().write_all(b"q").unwrap();
    assert!(child.wait().unwrap().success());
    Figures {
        iters_per_s: throughput(&out),
        bytes_per_s: Some(bytes / elapsed),
    }
}

fn flag(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a whole number"))
        .unwrap_or(default)
}

fn main() {
    let steps = flag("--steps", 150);
    let rounds = flag("--rounds", 3);
    let (mut plain, mut shown, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let h = headless(steps);
        let m = monitor(steps);
        eprintln!(
            "round {round}: --no-ui {:.3} it/s, monitor {:.3} it/s, {:.0} B/s to the terminal",
            h.iters_per_s,
            m.iters_per_s,
            m.bytes_per_s.unwrap()
        );
        plain.push(h.iters_per_s);
        shown.push(m.iters_per_s);
        bytes.push(m.bytes_per_s.unwrap());
    }
    let (plain, shown, bytes) = (median(plain), median(shown), median(bytes));
    let summary = serde_json::json!({
        "bench": "monitor",
        "config": "toy 8gaussians, batch 256, 5 critic steps, 2 threads",
        "steps": steps,
        "rounds": rounds,
        "no_ui_iters_per_s": plain,
        "monitor_iters_per_s": shown,
        "monitor_cost_percent": 100.0 * (1.0 - shown / plain),
        "terminal_bytes_per_s_80x24": bytes,
    });
    println!("{summary}");
}
