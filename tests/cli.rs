//! The real binary, headless: files written, repeatability, and bad input.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn wgangp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgangp-tui"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn metrics(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn all_numbers_finite(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        Value::Null => false,
        Value::Array(a) => a.iter().all(all_numbers_finite),
        Value::Object(o) => o.values().all(all_numbers_finite),
        _ => true,
    }
}

#[test]
fn headless_mnist_run_writes_config_metrics_and_an_image_grid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = wgangp(&[
        "--no-ui",
        "--steps",
        "2",
        "--seed",
        "5",
        "--sample-every",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["data"], "mnist");
    assert_eq!(config["family"], "mnist");
    assert_eq!(config["batch"], 50);
    assert_eq!(config["hyper"]["lambda"], 10.0);
    assert_eq!(config["seed"], 5);

    let lines = metrics(&out);
    let steps: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "metrics").collect();
    assert_eq!(steps.len(), 2);
    for m in &steps {
        let mut numbers = (*m).clone();
        numbers.as_object_mut().unwrap().remove("penalty_mode");
        assert!(all_numbers_finite(&numbers), "non-finite value in {m}");
        assert_eq!(m["layers"].as_array().unwrap().len(), 4);
        assert!(m["grad_norm_mean"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(lines.last().unwrap()["state"], "finished");

    // An 8x8 grid of 28x28 cells with 2-pixel gaps.
    let png = image::open(out.join("samples/step-0000002.png"))
        .unwrap()
        .to_luma8();
    assert_eq!(png.dimensions(), (8 * 28 + 9 * 2, 8 * 28 + 9 * 2));
    let cell: Vec<u8> = (0..28)
        .flat_map(|y| (0..28).map(move |x| (x, y)))
        .map(|(x, y)| png.get_pixel(2 + x, 2 + y)[0])
        .collect();
    assert!(
        cell.iter().any(|&p| p != cell[0]),
        "the first cell is blank"
    );
}

#[test]
fn same_seed_and_threads_give_identical_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let out = dir.path().join(name);
        let o = wgangp(&[
            "--no-ui",
            "--data",
            "toy:25gaussians",
            "--steps",
            "15",
            "--seed",
            "42",
            "--threads",
            "2",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // Timing fields differ between any two runs; everything else must not.
        // Checkpoint records name their own run folder.
        metrics(&out)
            .into_iter()
            .filter(|l| l["kind"] != "checkpoint")
            .map(|mut l| {
                l.as_object_mut().unwrap().remove("wall_s");
                l.as_object_mut().unwrap().remove("iters_per_s");
                l
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (run("a"), run("b"));
    assert_eq!(a.len(), 16);
    assert_eq!(a, b);
    let c = {
        let out = dir.path().join("c");
        wgangp(&[
            "--no-ui",
            "--data",
            "toy:25gaussians",
            "--steps",
            "2",
            "--seed",
            "43",
            "--out",
            out.to_str().unwrap(),
        ]);
        metrics(&out)
    };
    assert_ne!(
        a[0]["critic_loss"], c[0]["critic_loss"],
        "another seed should give another run"
    );
}

#[test]
fn toy_run_draws_a_scatter_over_the_critic_surface() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("toy");
    let o = wgangp(&[
        "--no-ui",
        "--data",
        "toy:swissroll",
        "--steps",
        "3",
        "--seed",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // --sample-every 100 > 3 steps: the final picture is still written.
    let png = image::open(out.join("samples/step-0000003.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(png.dimensions(), (512, 512));
    let orange = png.pixels().filter(|p| p.0 == [255, 140, 0]).count();
    let green = png.pixels().filter(|p| p.0 == [0, 140, 0]).count();
    assert!(
        orange > 100 && green > 100,
        "orange {orange}, green {green}"
    );
}

fn assert_bad_input(args: &[&str], message: &str) {
    let o = wgangp(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(message),
        "{args:?}: expected `{message}` in: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_input_gets_a_clear_message_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_bad_input(&["--no-ui", "--lambda", "-1"], "must be >= 0");
    assert_bad_input(&["--no-ui", "--lambda", "nan"], "not a finite number");
    assert_bad_input(&["--no-ui", "--lr", "0"], "must be > 0");
    assert_bad_input(&["--no-ui", "--n-critic", "0"], "--n-critic");
    assert_bad_input(&["--no-ui", "--batch", "0"], "--batch");
    assert_bad_input(
        &["--no-ui", "--batch", "20000", "--out", d],
        "larger than the data set",
    );
    assert_bad_input(
        &["--no-ui", "--data", "toy:circles"],
        "unknown toy set `circles`",
    );
    assert_bad_input(
        &["--no-ui", "--data", "/nonexistent/file.idx"],
        "cannot read data file /nonexistent/file.idx",
    );
    assert_bad_input(&["--no-ui", "--data", d], "is a directory");
    let bad = dir.path().join("bad.idx");
    std::fs::write(&bad, b"not an idx file at all").unwrap();
    assert_bad_input(
        &["--no-ui", "--data", bad.to_str().unwrap()],
        "bad magic number",
    );
}

#[test]
fn help_explains_each_flag_with_its_default() {
    let o = wgangp(&["--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--data",
        "--out",
        "--steps",
        "--seed",
        "--batch",
        "--lambda",
        "--lr",
        "--n-critic",
        "--penalty",
        "--clip",
        "--sample-every",
        "--log-every",
        "--threads",
        "--no-ui",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert!(
        help.contains("[default: 5]")
            && help.contains("[default: gp]")
            && help.contains("[default: 0.01]"),
        "{help}"
    );
}

#[test]
fn headless_run_stops_on_a_nan_with_status_1_and_keeps_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // A learning rate this large makes the loss non-finite after the first update.
    let output = wgangp(&[
        "--no-ui",
        "--data",
        "toy:8gaussians",
        "--seed",
        "2",
        "--n-critic",
        "1",
        "--lr",
        "1e30",
        "--steps",
        "50",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not finite") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let last = metrics(&out).pop().unwrap();
    assert_eq!(last["kind"], "state");
    assert_eq!(last["state"], "non_finite");
    assert!(all_numbers_finite(&Value::Array(
        metrics(&out)
            .into_iter()
            .filter(|l| l["kind"] == "metrics")
            .collect()
    )));
}
