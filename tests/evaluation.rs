//! The evaluations of `--eval-every` through the real binary: when they come, what they hold,
//! that they change nothing in training, and that a resumed run evaluates as the uninterrupted
//! one.

use std::path::Path;

use serde_json::Value;

mod common;
use common::{records, wgangp};

/// Runs the binary, which must succeed; its output.
fn succeed(args: &[&str]) -> std::process::Output {
    let out = wgangp(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    out
}

fn train(out: &Path, extra: &[&str]) {
    let mut args = vec![
        "--no-ui",
        "--data",
        "toy:8gaussians",
        "--seed",
        "5",
        "--threads",
        "1",
        "--batch",
        "64",
        "--out",
    ];
    args.push(out.to_str().unwrap());
    args.extend_from_slice(extra);
    succeed(&args);
}

fn of_kind(run: &Path, kind: &str) -> Vec<Value> {
    records(run)
        .into_iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}

/// The training figures of each step, without the clock.
fn figures(run: &Path) -> Vec<Value> {
    of_kind(run, "metrics")
        .into_iter()
        .map(|mut r| {
            let o = r.as_object_mut().unwrap();
            o.remove("wall_s");
            o.remove("iters_per_s");
            r
        })
        .collect()
}

/// An evaluation record without its clock.
fn timeless(mut r: Value) -> Value {
    r.as_object_mut().unwrap().remove("seconds");
    r
}

/// Toy data: a record every N steps with both critic costs (fresh held-out points) and the
/// quality measures of the averaged and the raw generator; training goes exactly as without
/// evaluations; and the in-run measures agree with `eval` on the checkpoint of that step.
#[test]
fn toy_runs_evaluate_every_n_steps_without_changing_training() {
    let dir = tempfile::tempdir().unwrap();
    let (evaluated, plain) = (dir.path().join("evaluated"), dir.path().join("plain"));
    train(
        &evaluated,
        &[
            "--steps",
            "40",
            "--eval-every",
            "20",
            "--checkpoint-every",
            "20",
        ],
    );
    train(&plain, &["--steps", "40", "--eval-every", "0"]);
    assert!(
        figures(&evaluated) == figures(&plain),
        "the evaluations changed the training figures"
    );
    assert!(of_kind(&plain, "eval").is_empty());

    let evals = of_kind(&evaluated, "eval");
    let steps: Vec<u64> = evals.iter().map(|e| e["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [20, 40]);
    for e in &evals {
        assert_eq!(e["samples"], 256);
        let held_out = e["held_out_critic_cost"].as_f64().unwrap();
        let train = e["train_critic_cost"].as_f64().unwrap();
        // A critic that tells real from fake scores the real points higher: both costs are
        // negative, and on the same distribution they are close.
        assert!(held_out < 0.0 && train < 0.0, "{e}");
        assert!(
            (held_out - train).abs() < 0.5 * held_out.abs().max(train.abs()),
            "{e}"
        );
        for which in ["toy", "toy_raw"] {
            assert_eq!(e[which]["points"], 2500, "{e}");
            assert_eq!(e[which]["modes"], 8, "{e}");
        }
        assert_ne!(e["toy"], e["toy_raw"]);
    }
    // `eval` on the checkpoint of step 40 draws other points of the same generator: its
    // share of high-quality points is within sampling error of the run's own.
    let out = succeed(&["eval", evaluated.to_str().unwrap()]);
    let scored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(scored["generator"], "averaged generator");
    let (run, cmd) = (
        evals[1]["toy"]["high_quality"].as_f64().unwrap(),
        scored["toy"]["high_quality"].as_f64().unwrap(),
    );
    assert!((run - cmd).abs() < 0.05, "in the run {run}, eval {cmd}");

    // `ls` shows the last evaluation's measures.
    let ls = succeed(&["ls", dir.path().to_str().unwrap()]);
    let table = String::from_utf8_lossy(&ls.stdout);
    let t = &evals[1]["toy"];
    let shown = format!(
        "{:.0}% within 3 std, {}/8 modes",
        100.0 * run,
        t["modes_covered"]
    );
    let row = table.lines().find(|l| l.contains("evaluated")).unwrap();
    assert!(row.contains(&shown), "{shown} not in\n{table}");
    let row = table.lines().find(|l| l.contains("plain")).unwrap();
    assert!(!row.contains("modes"), "{table}");
}

/// MNIST: the critic costs are taken on the 200 held-out digits (2% of the embedded 10,000);
/// a run stopped and resumed evaluates exactly as one that went straight through.
#[test]
fn mnist_evaluates_on_held_out_digits_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (straight, resumed) = (dir.path().join("straight"), dir.path().join("resumed"));
    let common = [
        "--data",
        "mnist",
        "--n-critic",
        "1",
        "--batch",
        "16",
        "--eval-every",
        "2",
    ];
    let run = |out: &Path, steps: &str| {
        let mut args = vec!["--no-ui", "--seed", "3", "--threads", "1", "--steps", steps];
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(common);
        succeed(&args);
    };
    run(&straight, "4");
    run(&resumed, "2");
    succeed(&[
        "--no-ui",
        "--resume",
        resumed.to_str().unwrap(),
        "--steps",
        "4",
    ]);
    let evals = of_kind(&straight, "eval");
    assert_eq!(evals.len(), 2);
    for e in &evals {
        assert_eq!(e["samples"], 200, "{e}");
        assert!(
            e["held_out_critic_cost"].as_f64().unwrap().is_finite(),
            "{e}"
        );
        assert!(e.get("toy").is_none(), "{e}");
        // The sliced Wasserstein distance of the averaged and the raw generator's digits from
        // the held-out ones, at the pyramid's two levels (28 and 14).
        for which in ["swd", "swd_raw"] {
            let swd = &e[which];
            assert_eq!(swd["pictures"], 200, "{e}");
            let sides: Vec<u64> = swd["levels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l[0].as_u64().unwrap())
                .collect();
            assert_eq!(sides, [28, 14], "{e}");
            assert!(swd["mean"].as_f64().unwrap() > 0.0, "{e}");
        }
        // And their Frechet distance and classifier score on the project's classifier.
        for which in ["digits", "digits_raw"] {
            let digits = &e[which];
            assert_eq!(digits["pictures"], 200, "{e}");
            assert!(digits["frechet"].as_f64().unwrap() > 0.0, "{e}");
            let score = digits["classifier_score"].as_f64().unwrap();
            assert!((1.0..=10.0).contains(&score), "{e}");
        }
    }
    let timeless_evals =
        |run: &Path| -> Vec<Value> { of_kind(run, "eval").into_iter().map(timeless).collect() };
    assert_eq!(timeless_evals(&straight), timeless_evals(&resumed));
}

/// `checkpoints/best` names the checkpoint of the best evaluation, written at that step;
/// `--keep` never removes it; `sample`, `eval` and `--resume` take it.
#[test]
fn the_best_checkpoint_is_kept_and_usable() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // A run that collapses (no penalty, a fast learning rate): its best is not its last.
    let run_s = run.to_str().unwrap();
    succeed(&[
        "--no-ui",
        "--data",
        "toy:8gaussians",
        "--seed",
        "1",
        "--steps",
        "300",
        "--lambda",
        "0",
        "--lr",
        "0.003",
        "--n-critic",
        "1",
        "--eval-every",
        "50",
        "--checkpoint-every",
        "100",
        "--keep",
        "1",
        "--out",
        run_s,
    ]);
    // The best: the first evaluation with the most points of high quality.
    let evals = of_kind(&run, "eval");
    let share = |e: &Value| e["toy"]["high_quality"].as_f64().unwrap();
    let top = evals.iter().map(share).fold(f64::MIN, f64::max);
    let best = evals.iter().find(|e| share(e) == top).unwrap()["step"]
        .as_u64()
        .unwrap();
    assert!(best < 300, "the best is the last step: {evals:?}");
    let name = format!("step-{best:07}");
    let checkpoints = run.join("checkpoints");
    assert_eq!(
        std::fs::read_to_string(checkpoints.join("best"))
            .unwrap()
            .trim(),
        name
    );
    let mut kept: Vec<String> = std::fs::read_dir(&checkpoints)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .collect();
    kept.sort();
    assert_eq!(kept, [name.clone(), "step-0000300".to_string()]);

    let best_path = checkpoints.join("best");
    let best_s = best_path.to_str().unwrap();
    let csv = dir.path().join("best.csv");
    let out = succeed(&[
        "sample",
        "--from",
        best_s,
        "--count",
        "10",
        "--out",
        csv.to_str().unwrap(),
    ]);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("at step {best}")), "{said}");
    let scored: Value = serde_json::from_slice(&succeed(&["eval", best_s]).stdout).unwrap();
    assert_eq!(scored["step"], best);
    let more = (best + 10).to_string();
    let out = succeed(&["--no-ui", "--resume", best_s, "--steps", &more]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("going on from step {best}")),
        "{stderr}"
    );
}
