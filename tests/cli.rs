//! The real binary, headless: files written, repeatability, and bad input.

use std::process::Command;

use serde_json::Value;

mod common;
use common::{assert_bad_input, records, wgangp};

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
    // Without --device, a build without CUDA trains on the CPU, and says so.
    assert_eq!(config["device"], "cpu");
    assert!(String::from_utf8_lossy(&o.stderr).contains("model) on cpu, writing to"));
    assert_eq!(config["batch"], 50);
    assert_eq!(config["hyper"]["lambda"], 10.0);
    assert_eq!(config["seed"], 5);

    let lines = records(&out);
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
fn same_seed_gives_identical_metrics_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, threads: &str| {
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
            threads,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // Timing fields differ between any two runs; everything else must not.
        // Checkpoint records name their own run folder.
        records(&out)
            .into_iter()
            .filter(|l| l["kind"] != "checkpoint")
            .map(|mut l| {
                l.as_object_mut().unwrap().remove("wall_s");
                l.as_object_mut().unwrap().remove("iters_per_s");
                l
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (run("a", "2"), run("b", "2"));
    assert_eq!(a.len(), 16);
    assert_eq!(a, b);
    // The batch is split into the same shards whatever the thread count.
    assert_eq!(a, run("one", "1"), "one thread");
    assert_eq!(a, run("three", "3"), "three threads");
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
        records(&out)
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

#[test]
fn bad_input_gets_a_clear_message_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_bad_input(
        &["--no-ui", "--lambda", "-1"],
        "must be a finite number >= 0",
    );
    assert_bad_input(&["--no-ui", "--lambda", "nan"], "not a finite number");
    assert_bad_input(&["--no-ui", "--lr", "0"], "must be a finite number > 0");
    assert_bad_input(&["--no-ui", "--n-critic", "0"], "--n-critic");
    assert_bad_input(&["--no-ui", "--batch", "0"], "--batch");
    assert_bad_input(
        &["--no-ui", "--batch", "20000", "--out", d],
        "larger than the data set",
    );
    // It names the largest batch the data allows: the embedded MNIST's 10,000 less the 2%
    // held out for the evaluations, or all of them without evaluations.
    assert_bad_input(
        &["--no-ui", "--batch", "20000", "--out", d],
        "(9800 images to train on, 200 more held out for --eval-every): give --batch 9800 or less",
    );
    assert_bad_input(
        &[
            "--no-ui",
            "--batch",
            "20000",
            "--eval-every",
            "0",
            "--out",
            d,
        ],
        "give --batch 10000 or less",
    );
    assert_bad_input(
        &["--no-ui", "--data", "toy:circles"],
        "unknown toy set `circles`",
    );
    assert_bad_input(
        &["--no-ui", "--data", "/nonexistent/file.idx"],
        "cannot read data file /nonexistent/file.idx",
    );
    assert_bad_input(&["--no-ui", "--data", d], "no usable picture in 0 files");
    let bad = dir.path().join("bad.idx");
    std::fs::write(&bad, b"not an idx file at all").unwrap();
    assert_bad_input(
        &["--no-ui", "--data", bad.to_str().unwrap()],
        "bad magic number",
    );
    assert_bad_input(&["--no-ui", "--device", "gpu"], "invalid value 'gpu'");
    assert_bad_input(
        &["--no-ui", "--deep"],
        "--deep: the deep nets train on toy data only",
    );
    assert_bad_input(
        &["--no-ui", "--fixed-generator", "noise"],
        "--fixed-generator: a fixed generator exists for toy data only",
    );
    assert_bad_input(
        &[
            "--no-ui",
            "--data",
            "toy:swissroll",
            "--fixed-generator",
            "gan",
        ],
        "invalid value 'gan'",
    );
    // These tests run a build without the `cuda` feature.
    assert_bad_input(
        &["--no-ui", "--device", "cuda", "--out", d],
        "--device cuda: this wgangp-tui was built without CUDA",
    );
    assert_bad_input(
        &["gpu-check", "--device", "cuda"],
        "--device cuda: this wgangp-tui was built without CUDA",
    );
    assert_bad_input(
        &["gpu-check", "--device", "cpu"],
        "compares a device with the CPU",
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
    let last = records(&out).pop().unwrap();
    assert_eq!(last["kind"], "state");
    assert_eq!(last["state"], "non_finite");
    assert!(all_numbers_finite(&Value::Array(
        records(&out)
            .into_iter()
            .filter(|l| l["kind"] == "metrics")
            .collect()
    )));
}

#[test]
fn broken_data_files_and_output_folders_get_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let raw = {
        use std::io::Read;
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(wgangp_tui::data::EMBEDDED_MNIST)
            .read_to_end(&mut raw)
            .unwrap();
        raw
    };
    std::fs::write(path("empty.idx"), b"").unwrap();
    assert_bad_input(&["--no-ui", "--data", &path("empty.idx")], "too short");
    // A real MNIST file cut in the middle.
    std::fs::write(path("cut.idx"), &raw[..raw.len() / 2]).unwrap();
    assert_bad_input(&["--no-ui", "--data", &path("cut.idx")], "bytes follow it");
    std::fs::write(
        path("cut.idx.gz"),
        &wgangp_tui::data::EMBEDDED_MNIST[..5000],
    )
    .unwrap();
    assert_bad_input(
        &["--no-ui", "--data", &path("cut.idx.gz")],
        "corrupt gzip data",
    );
    // 2 images of 32x32: a valid IDX file the MNIST model cannot take.
    let mut big = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 32, 0, 0, 0, 32];
    big.extend(vec![7u8; 2 * 32 * 32]);
    std::fs::write(path("big.idx"), big).unwrap();
    assert_bad_input(
        &["--no-ui", "--data", &path("big.idx")],
        "the MNIST model takes 28x28",
    );
    // Non-numbers and out-of-range values.
    assert_bad_input(&["--no-ui", "--lambda", "ten"], "is not a number");
    assert_bad_input(&["--no-ui", "--steps", "-5"], "--steps");
    assert_bad_input(&["--no-ui", "--keep", "0"], "--keep");
    // An output folder that cannot be created (its parent is a file).
    std::fs::write(path("file"), b"x").unwrap();
    assert_bad_input(
        &[
            "--no-ui",
            "--data",
            "toy:8gaussians",
            "--out",
            &path("file/run"),
        ],
        "cannot create output folder",
    );
    // A full disk: metrics.jsonl leads to /dev/full, where every write fails with ENOSPC.
    let run = dir.path().join("full");
    std::fs::create_dir(&run).unwrap();
    std::os::unix::fs::symlink("/dev/full", run.join("metrics.jsonl")).unwrap();
    assert_bad_input(
        &[
            "--no-ui",
            "--data",
            "toy:8gaussians",
            "--steps",
            "3",
            "--out",
            run.to_str().unwrap(),
        ],
        "No space left on device",
    );
}

/// Training goes on and completes its files when nobody reads its output: stdout and stderr
/// closed, or a pipe whose reader quit (SIGPIPE).
#[test]
fn closed_or_broken_stdout_and_stderr_do_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_wgangp-tui");
    for (name, redirect) in [
        ("closed", ">&- 2>&-"),
        ("piped", "2>&1 | head -c 1 >/dev/null"),
    ] {
        let out = dir.path().join(name);
        let script = format!(
            "set -o pipefail; {bin} --no-ui --data toy:8gaussians --steps 40 --n-critic 1 --out {} {redirect}; \
             echo \"${{PIPESTATUS[0]}}\" > {}/{name}.status",
            out.display(),
            dir.path().display()
        );
        Command::new("bash").args(["-c", &script]).status().unwrap();
        let status = std::fs::read_to_string(dir.path().join(format!("{name}.status"))).unwrap();
        assert_eq!(status.trim(), "0", "{name}: exit status");
        let lines = records(&out);
        assert_eq!(lines.last().unwrap()["state"], "finished", "{name}");
        assert_eq!(
            lines.iter().filter(|l| l["kind"] == "metrics").count(),
            40,
            "{name}"
        );
    }
}

/// The benchmark subcommand prints one JSON line with the reference's field names (figures are
/// machine-dependent: only their sanity is checked here).
#[test]
fn bench_prints_one_json_line_of_figures() {
    let started = std::time::Instant::now();
    let o = wgangp(&[
        "bench",
        "--config",
        "toy",
        "--iters",
        "3",
        "--warmup",
        "1",
        "--threads",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (
            v["config"].as_str(),
            v["iters"].as_u64(),
            v["critic_iters"].as_u64()
        ),
        (Some("toy"), Some(3), Some(5))
    );
    assert_eq!(v["batch"], 256);
    assert_eq!(v["device"], "cpu");
    for key in [
        "gen_iters_per_s_median",
        "critic_step_ms_median",
        "gen_step_ms_median",
        "peak_rss_mb",
        "gflop_per_iter",
        "achieved_gflops",
        "peak_gflops",
        "eval_ms_median",
    ] {
        let x = v[key].as_f64().unwrap_or(f64::NAN);
        assert!(x.is_finite() && x > 0.0, "{key} = {x}");
    }
    // An evaluation at the defaults: 256 samples, a share of the run's time between 0 and 1.
    assert_eq!(v["eval_samples"], 256);
    let share = v["eval_share_at_defaults"].as_f64().unwrap();
    assert!(share > 0.0 && share < 1.0, "{share}");
    // Nothing crosses to a device on the CPU.
    for key in [
        "host_to_device_mb_per_iter",
        "device_to_host_mb_per_iter",
        "copies_per_iter",
    ] {
        assert_eq!(v[key].as_f64(), Some(0.0), "{key}");
    }
    // The toy nets' products: at least the critic's forward pass over the batch, 5 times.
    let gflop = v["gflop_per_iter"].as_f64().unwrap();
    let critic_forward = 2.0 * 256.0 * (2.0 * 512.0 + 2.0 * 512.0 * 512.0 + 512.0) / 1e9;
    assert!(gflop > 5.0 * critic_forward, "{gflop} GFLOP");
    // Measured from outside: the process did at least one iteration's work in its whole
    // wall time (so the median iteration was no slower than that), and no product runs faster
    // than the machine's own peak (a factor 2 for noise between the two measurements).
    let wall_s = started.elapsed().as_secs_f64();
    let achieved = v["achieved_gflops"].as_f64().unwrap();
    let peak = v["peak_gflops"].as_f64().unwrap();
    assert!(
        achieved >= gflop / wall_s,
        "{achieved} GFLOP/s in {wall_s} s"
    );
    assert!(
        achieved <= 2.0 * peak,
        "{achieved} GFLOP/s above the peak {peak}"
    );
}

/// Two processes never train one run folder: the second start is refused while the first
/// holds the folder's lock, even before the first serves its socket (a start at the same
/// instant), and the folder is left as it was.
#[test]
fn a_run_folder_another_process_holds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    std::fs::create_dir_all(&out).unwrap();
    let lock = std::fs::File::create(out.join(".lock")).unwrap();
    lock.lock().unwrap();
    assert_bad_input(
        &["--no-ui", "--steps", "1", "--out", out.to_str().unwrap()],
        "another wgangp-tui process is training the run in",
    );
    assert!(
        !out.join("config.json").exists(),
        "the refused start wrote files"
    );
    drop(lock);
    // Other tests of this binary start processes: one forked but not yet exec'd holds a copy
    // of every open descriptor, ours of the lock included, for a moment.
    common::wait_for("the lock to be free", || {
        let file = std::fs::File::open(out.join(".lock")).unwrap();
        file.try_lock().is_ok()
    });
    let o = wgangp(&[
        "--no-ui",
        "--steps",
        "1",
        "--data",
        "toy:8gaussians",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Colour sample sets become colour PNGs: each picture's pixels in their place in the grid.
#[test]
fn colour_samples_render_as_a_colour_grid() {
    use wgangp_tui::event::SampleSet;
    use wgangp_tui::run::pictures::{GRID_GAP, render};
    let side = 3;
    let pixel = |i: usize, p: usize| [i as f32 / 4.0, p as f32 / 9.0, 1.0];
    let generated: Vec<f32> = (0..4)
        .flat_map(|i| (0..side * side).flat_map(move |p| pixel(i, p)))
        .collect();
    let set = SampleSet::Images {
        step: 1,
        side,
        channels: 3,
        count: 4,
        generated,
        real: vec![],
        raw: None,
    };
    let picture = render(&set).to_rgb8();
    let g = GRID_GAP;
    assert_eq!(picture.dimensions(), (2 * 3 + 3 * g, 2 * 3 + 3 * g));
    // Image 1 sits top right, image 2 bottom left; pixel 5 of each is (x 2, y 1).
    let byte = |i, p| pixel(i, p).map(|v| (v * 255.0).round() as u8);
    assert_eq!(picture.get_pixel(g + 3 + g + 2, g + 1).0, byte(1, 5));
    assert_eq!(picture.get_pixel(g + 2, g + 3 + g + 1).0, byte(2, 5));
    assert_eq!(picture.get_pixel(0, 0).0, [96, 96, 96], "the gap");
}

/// `--deep` trains the 12-layer nets and records each layer's input-gradient norm;
/// `--fixed-generator noise` trains the critic alone, its generator loss -mean D(fake).
#[test]
fn deep_and_fixed_generator_runs_record_what_they_are_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deep");
    let o = wgangp(&[
        "--no-ui",
        "--data",
        "toy:swissroll",
        "--deep",
        "--fixed-generator",
        "noise",
        "--steps",
        "3",
        "--seed",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["family"], "deeptoy");
    assert_eq!(config["fixed_generator"], "noise");
    let lines = records(&out);
    let metrics: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "metrics").collect();
    assert_eq!(metrics.len(), 3);
    for m in metrics {
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 12);
        for l in layers {
            assert!(l["input_grad_norm"].as_f64().unwrap() > 0.0, "{l}");
        }
        let (g, w, d) = (
            m["generator_loss"].as_f64().unwrap(),
            m["wasserstein"].as_f64().unwrap(),
            m["critic_loss"].as_f64().unwrap(),
        );
        assert!(g.is_finite() && w.is_finite() && d.is_finite());
    }
    // Sampling such a run says its generator never trained.
    let csv = dir.path().join("s.csv");
    let o = wgangp(&[
        "sample",
        "--from",
        out.to_str().unwrap(),
        "--count",
        "3",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("its generator is the untrained one"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The 4-layer toy nets record no input-gradient norms.
    let plain = dir.path().join("plain");
    let o = wgangp(&[
        "--no-ui",
        "--data",
        "toy:swissroll",
        "--steps",
        "1",
        "--out",
        plain.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let m = records(&plain)
        .into_iter()
        .find(|l| l["kind"] == "metrics")
        .unwrap();
    assert!(m["layers"][0].get("input_grad_norm").is_none(), "{m}");
}

/// `eval` through the binary: a toy checkpoint's scores as one JSON line; a checkpoint it
/// cannot score yet, or none, a clear message and status 2.
#[test]
fn eval_scores_toy_and_picture_checkpoints_and_refuses_what_it_cannot_score() {
    let dir = tempfile::tempdir().unwrap();
    let toy = dir.path().join("toy");
    let toy_s = toy.to_str().unwrap();
    let trained = wgangp(&[
        "--no-ui",
        "--data",
        "toy:25gaussians",
        "--steps",
        "3",
        "--no-tensorboard",
        "--out",
        toy_s,
    ]);
    assert!(trained.status.success());
    let o = wgangp(&["eval", toy_s, "--count", "400"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["step"], 3);
    assert_eq!(v["toy"]["points"], 400);
    assert_eq!(v["toy"]["modes"], 25);
    let per_mode: u64 = v["toy"]["per_mode"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_u64().unwrap())
        .sum();
    let share = v["toy"]["high_quality"].as_f64().unwrap();
    assert!((share - per_mode as f64 / 400.0).abs() < 1e-12, "{v}");
    // The same seed: the same samples and scores.
    let again = wgangp(&["eval", toy_s, "--count", "400"]);
    assert_eq!(again.stdout, o.stdout);

    // Pictures: the sliced Wasserstein distance from the run's 200 held-out digits, or from
    // training digits for a run that held none out.
    for (eval_every, real, count) in [
        ("100", "held-out pictures", 200),
        ("0", "training pictures", 300),
    ] {
        let mnist = dir.path().join(format!("mnist{eval_every}"));
        let mnist_s = mnist.to_str().unwrap();
        let trained = wgangp(&[
            "--no-ui",
            "--steps",
            "1",
            "--batch",
            "8",
            "--n-critic",
            "1",
            "--eval-every",
            eval_every,
            "--out",
            mnist_s,
        ]);
        assert!(trained.status.success());
        let o = wgangp(&["eval", mnist_s, "--count", "300"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["real"], real, "{v}");
        assert_eq!(v["swd"]["pictures"], count, "{v}");
        assert_eq!(v["swd"]["levels"].as_array().unwrap().len(), 2, "{v}");
        assert!(v.get("toy").is_none(), "{v}");
        // The digits' scores on all 300 pictures drawn. An untrained generator's pictures are
        // no digits: far from the real ones, and read as few digits.
        assert_eq!(v["digits"]["pictures"], 300, "{v}");
        assert!(v["digits"]["frechet"].as_f64().unwrap() > 10.0, "{v}");
        let score = v["digits"]["classifier_score"].as_f64().unwrap();
        assert!((1.0..5.0).contains(&score), "{v}");
    }
    assert_bad_input(
        &["eval", dir.path().join("none").to_str().unwrap()],
        "no checkpoint there",
    );
}
