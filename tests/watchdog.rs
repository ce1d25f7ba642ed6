//! The watchdog through the real binary: silent on a healthy run, and each alert on a run made
//! to fail, in `metrics.jsonl`, on stderr and through `--on-alert`.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

mod common;
use common::{records, wait_for, wgangp};

/// A toy run of `steps` from seed 1 into `out`, with `extra` flags.
fn toy_run(out: &Path, steps: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--no-ui",
        "--data",
        "toy:8gaussians",
        "--seed",
        "1",
        "--steps",
        steps,
    ];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    wgangp(&args)
}

/// (kind, step) of each alert of the run.
fn alerts(run: &Path) -> Vec<(String, u64)> {
    records(run)
        .into_iter()
        .filter(|r| r["kind"] == "alert")
        .map(|r: Value| {
            (
                r["alert"].as_str().unwrap().to_string(),
                r["step"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_healthy_toy_run_raises_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = toy_run(&run, "300", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(alerts(&run), []);
    assert!(!stderr.contains("alert"), "{stderr}");
    // It was watched: its figures and evaluations are there.
    assert_eq!(
        records(&run).iter().filter(|r| r["kind"] == "eval").count(),
        3
    );
}

/// Lambda 0 leaves the critic's slope free: its gradient norm runs away from 1. The alert is
/// recorded, said on stderr, and handed to the --on-alert command in its environment.
#[test]
fn lambda_zero_alerts_on_the_gradient_norm_and_runs_the_alert_command() {
    let dir = tempfile::tempdir().unwrap();
    let (run, told) = (dir.path().join("run"), dir.path().join("told.txt"));
    let command = format!(
        "printf '%s %s %s\\n' \"$WGANGP_ALERT_KIND\" \"$WGANGP_STEP\" \"$WGANGP_RUN\" >> {}; \
         printf '%s\\n' \"$WGANGP_ALERT\" >> {}",
        told.display(),
        told.display()
    );
    let out = toy_run(&run, "220", &["--lambda", "0", "--on-alert", &command]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(alerts(&run), [("gradient_norm".to_string(), 200)]);
    assert!(
        stderr.contains("alert at step 200: the critic's gradient norm on the interpolates"),
        "{stderr}"
    );
    wait_for("the alert command's file", || {
        std::fs::read_to_string(&told).is_ok_and(|t| t.lines().count() == 2)
    });
    let text = std::fs::read_to_string(&told).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("gradient_norm 200 {}", run.display())
    );
    assert!(lines.next().unwrap().contains("raise lambda (+)"), "{text}");
}

/// A generator whose samples collapse onto a few points (no penalty, a fast learning rate and
/// one critic step a generator step): the critic's estimate turns negative and the fixed-noise
/// samples lose their spread.
#[test]
fn a_collapsing_generator_alerts_on_diversity_and_a_negative_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let flags = [
        "--lambda",
        "0",
        "--lr",
        "0.003",
        "--n-critic",
        "1",
        "--sample-every",
        "50",
    ];
    let out = toy_run(&run, "300", &flags);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kinds: Vec<String> = alerts(&run).into_iter().map(|(k, _)| k).collect();
    assert!(kinds.contains(&"diversity".to_string()), "{kinds:?}");
    assert!(
        kinds.contains(&"wasserstein_negative".to_string()),
        "{kinds:?}"
    );
}

/// A learning rate far too large: the run turns non-finite, which is an alert too (headless,
/// the run then ends with status 1).
#[test]
fn a_huge_learning_rate_alerts_non_finite() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = toy_run(&run, "310", &["--lr", "0.05"]);
    assert_eq!(out.status.code(), Some(1));
    let found = alerts(&run);
    assert!(found.iter().any(|(k, _)| k == "non_finite"), "{found:?}");
}

/// `--on-nan rollback`: a learning rate of 10 turns the run non-finite at step 42; it goes
/// back to the checkpoint of step 40 with the learning rates halved, says so, and trains on to
/// the end, every step recorded once and finite.
#[test]
fn a_rollback_goes_back_to_the_newest_checkpoint_with_halved_learning_rates() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let flags = [
        "--lr",
        "10",
        "--on-nan",
        "rollback",
        "--checkpoint-every",
        "10",
        "--eval-every",
        "0",
    ];
    let out = toy_run(&run, "60", &flags);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let all = records(&run);
    let rollbacks: Vec<&Value> = all.iter().filter(|r| r["alert"] == "non_finite").collect();
    assert_eq!(rollbacks.len(), 1, "{rollbacks:?}");
    let message = rollbacks[0]["message"].as_str().unwrap();
    assert!(
        message.contains("state of step 40") && message.contains("rollback 1 of 3"),
        "{message}"
    );
    assert!(stderr.contains("rollback 1 of 3"), "{stderr}");
    let metrics: Vec<&Value> = all.iter().filter(|r| r["kind"] == "metrics").collect();
    let steps: Vec<u64> = metrics
        .iter()
        .map(|m| m["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=60).collect::<Vec<_>>());
    let rolled_at = rollbacks[0]["step"].as_u64().unwrap();
    for m in &metrics {
        assert!(m["critic_loss"].as_f64().unwrap().is_finite(), "{m}");
        let halved = m["step"].as_u64().unwrap() >= rolled_at;
        let want = if halved { 5.0 } else { 10.0 };
        assert_eq!(m["lr_critic"].as_f64(), Some(want), "{m}");
        assert_eq!(m["lr_generator"].as_f64(), Some(want), "{m}");
    }
}

/// A run that stays non-finite however often it goes back pauses after the third rollback
/// (headless: ends with status 1), having halved its learning rates three times.
#[test]
fn a_run_that_cannot_recover_stops_after_three_rollbacks() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = toy_run(&run, "50", &["--lr", "1e30", "--on-nan", "rollback"]);
    assert_eq!(out.status.code(), Some(1));
    let all = records(&run);
    let messages: Vec<&str> = all
        .iter()
        .filter(|r| r["alert"] == "non_finite")
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    for (i, m) in messages[..3].iter().enumerate() {
        assert!(m.contains(&format!("rollback {} of 3", i + 1)), "{m}");
    }
    let last_lr = all
        .iter()
        .filter(|r| r["kind"] == "hyper")
        .map(|r| r["hyper"]["lr_critic"].as_f64().unwrap())
        .last();
    assert_eq!(last_lr, Some(1e30 / 8.0));
    assert_eq!(all.last().unwrap()["state"], "non_finite");
}
