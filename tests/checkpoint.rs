//! Nothing lost: checkpoints through the real binary (exact resume after kill -9, repeated
//! kill -9 during checkpoint writes, SIGTERM and SIGHUP), `sample` from a checkpoint, and
//! the errors of --resume and sample.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{BIN, assert_bad_input, records, wgangp};
use wgangp_tui::checkpoint::Checkpoint;
use wgangp_tui::data::idx::parse_images;

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs")
}

/// A small, quick toy run (1 thread: the same seed repeats it exactly).
fn toy_args<'a>(out: &'a str, steps: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--no-ui",
        "--data",
        "toy:8gaussians",
        "--seed",
        "11",
        "--threads",
        "1",
        "--batch",
        "32",
        "--n-critic",
        "2",
        "--steps",
        steps,
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

/// The training figures of each step, without the clock.
fn figures(run: &Path) -> Vec<Value> {
    records(run)
        .into_iter()
        .filter(|r| r["kind"] == "metrics")
        .map(|mut r| {
            let o = r.as_object_mut().unwrap();
            o.remove("wall_s");
            o.remove("iters_per_s");
            r
        })
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn latest_step(run: &Path) -> Option<u64> {
    let name = std::fs::read_to_string(run.join("checkpoints/latest")).ok()?;
    name.trim().strip_prefix("step-")?.parse().ok()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn killed_and_resumed_run_matches_an_uninterrupted_one_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    // Betas other than the default: a resumed run must take them from the checkpoint.
    let out = wgangp(&toy_args(
        straight.to_str().unwrap(),
        "60",
        &["--checkpoint-every", "30", "--betas", "0.8,0.95"],
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The same run, killed with SIGKILL once its checkpoint of step 30 is complete.
    let broken = dir.path().join("broken");
    let mut child = spawn(&toy_args(
        broken.to_str().unwrap(),
        "60",
        &["--checkpoint-every", "30", "--betas", "0.8,0.95"],
    ));
    wait_until(
        "the checkpoint of step 30",
        Duration::from_secs(120),
        || latest_step(&broken) == Some(30),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed = wgangp(&["--no-ui", "--resume", broken.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("going on from step 30"), "{stderr}");

    let (a, _) = Checkpoint::load(&straight).unwrap();
    let (b, _) = Checkpoint::load(&broken).unwrap();
    assert_eq!(a.step, 60);
    assert_eq!(b.step, 60);
    assert!(
        a.generator == b.generator && a.critic == b.critic,
        "weights differ after resuming"
    );
    assert_eq!(a.opt_critic, b.opt_critic);
    assert_eq!(a.rng, b.rng);
    // The averaged generator (on by default) goes on exactly too, with its update count.
    let averaged = a
        .averaged
        .as_ref()
        .expect("an averaged generator by default");
    assert_eq!(averaged.updates, 60);
    assert!(
        averaged.generator != a.generator,
        "the average is the generator itself"
    );
    assert!(
        a.averaged == b.averaged,
        "the averaged generators differ after resuming"
    );
    // The metrics file holds each step once, with the same figures.
    assert_eq!(figures(&straight), figures(&broken));
    // The safetensors files are byte for byte the same.
    for file in [
        "generator.safetensors",
        "critic.safetensors",
        "optimizer.safetensors",
        "generator_ema.safetensors",
    ] {
        let read =
            |run: &Path| std::fs::read(run.join("checkpoints/step-0000060").join(file)).unwrap();
        assert!(read(&straight) == read(&broken), "{file} differs");
    }
}

#[test]
fn kill_9_at_random_moments_always_leaves_a_loadable_latest() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap().to_string();
    // A checkpoint every step: the process spends much of its time writing them.
    let first = toy_args(
        &run_s,
        "100000",
        &["--checkpoint-every", "1", "--keep", "2"],
    );
    let again = [
        "--no-ui",
        "--resume",
        &run_s,
        "--checkpoint-every",
        "1",
        "--keep",
        "2",
    ];
    let mut seen = Vec::new();
    for round in 0..8u64 {
        let mut child = spawn(if round == 0 { &first } else { &again });
        if round == 0 {
            wait_until("a first checkpoint", Duration::from_secs(60), || {
                latest_step(&run).is_some()
            });
        }
        // Pseudo-random delays from 0 to ~1 s: start-up, training, or mid-write.
        std::thread::sleep(Duration::from_millis((round * 7919) % 1013));
        child.kill().unwrap();
        child.wait().unwrap();
        let (ck, folder) = Checkpoint::load(&run).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(folder.join("state.json").is_file());
        seen.push(ck.step);
    }
    // Never a step back: no checkpoint was lost.
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(
        seen.last() > seen.first(),
        "no progress over the rounds: {seen:?}"
    );
}

fn stops_cleanly_on(name: &str, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = spawn(&toy_args(
        run.to_str().unwrap(),
        "100000",
        &["--checkpoint-every", "0"],
    ));
    wait_until("training to start", Duration::from_secs(60), || {
        run.join("metrics.jsonl").exists() && records(&run).iter().any(|r| r["kind"] == "metrics")
    });
    signal(&child, name);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(&format!("stopped by SIG{name}")) && stderr.contains("--resume"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (ck, _) = Checkpoint::load(&run).unwrap();
    let last_metrics = records(&run)
        .iter()
        .filter(|r| r["kind"] == "metrics")
        .last()
        .unwrap()["step"]
        .as_u64();
    assert_eq!(
        Some(ck.step),
        last_metrics,
        "the checkpoint is not of the last step"
    );
}

#[test]
fn sigterm_writes_a_checkpoint_and_exits_cleanly() {
    stops_cleanly_on("TERM", 143);
}

#[test]
fn sighup_writes_a_checkpoint_and_exits_cleanly() {
    stops_cleanly_on("HUP", 129);
}

fn trained(dir: &Path, data: &str) -> PathBuf {
    let run = dir.join(data.replace(':', "-"));
    let out = wgangp(&[
        "--no-ui",
        "--data",
        data,
        "--seed",
        "1",
        "--steps",
        "1",
        "--n-critic",
        "1",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run
}

#[test]
fn sample_writes_images_the_idx_loader_reads_and_toy_points() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = trained(dir.path(), "mnist");
    for name in ["s.idx", "s.idx.gz"] {
        let file = dir.path().join(name);
        let out = wgangp(&[
            "sample",
            "--from",
            mnist.to_str().unwrap(),
            "--count",
            "37",
            "--out",
            file.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let images = parse_images(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (37, 28, 28));
        // An untrained generator's sigmoid output sits near grey, not all black.
        let mean =
            images.pixels.iter().map(|&p| p as f64).sum::<f64>() / images.pixels.len() as f64;
        assert!(mean > 20.0, "mean pixel {mean}");
    }
    // Same seed, same samples; another seed, others.
    let draw = |seed: &str| {
        let file = dir.path().join(format!("seed{seed}.idx"));
        let folder = mnist.join("checkpoints/step-0000001");
        let out = wgangp(&[
            "sample",
            "--from",
            folder.to_str().unwrap(),
            "--count",
            "4",
            "--seed",
            seed,
            "--out",
            file.to_str().unwrap(),
        ]);
        assert!(out.status.success());
        std::fs::read(file).unwrap()
    };
    assert_eq!(draw("5"), draw("5"));
    assert_ne!(draw("5"), draw("6"));
    let png = dir.path().join("grid.png");
    assert!(
        wgangp(&[
            "sample",
            "--from",
            mnist.to_str().unwrap(),
            "--count",
            "16",
            "--out",
            png.to_str().unwrap()
        ])
        .status
        .success()
    );
    assert_eq!(
        image::open(&png).unwrap().to_luma8().dimensions(),
        (4 * 28 + 5 * 2, 4 * 28 + 5 * 2)
    );
    // A grid too large for a picture (274^2 digits would be 8222 pixels a side) is refused
    // before anything is drawn, naming the way out; the largest that fits is not.
    let huge = dir.path().join("huge.png");
    let mnist_s = mnist.to_str().unwrap();
    let huge_s = huge.to_str().unwrap();
    assert_bad_input(
        &[
            "sample", "--from", mnist_s, "--count", "75000", "--out", huge_s,
        ],
        "8192 pixels a side",
    );
    assert!(!huge.exists());
    assert_bad_input(
        &[
            "sample", "--from", mnist_s, "--count", "1000001", "--out", huge_s,
        ],
        "--count",
    );

    let toy = trained(dir.path(), "toy:8gaussians");
    let csv = dir.path().join("points.csv");
    let out = wgangp(&[
        "sample",
        "--from",
        toy.to_str().unwrap(),
        "--count",
        "250",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "x,y");
    assert_eq!(rows.len(), 251);
    for row in &rows[1..] {
        let xy: Vec<f32> = row.split(',').map(|v| v.parse().unwrap()).collect();
        assert!(xy.len() == 2 && xy.iter().all(|v| v.is_finite()), "{row}");
    }
    // The wrong kind of file for the model is refused.
    let bad = wgangp(&[
        "sample",
        "--from",
        toy.to_str().unwrap(),
        "--count",
        "5",
        "--out",
        "x.idx",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("2-d points"));
}

#[test]
fn bad_resume_and_sample_requests_get_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    assert_bad_input(
        &["--no-ui", "--resume", missing.to_str().unwrap()],
        "no checkpoint there",
    );
    assert_bad_input(
        &["--no-ui", "--resume", "x", "--lambda", "3"],
        "cannot be used with",
    );
    assert_bad_input(
        &[
            "sample",
            "--from",
            missing.to_str().unwrap(),
            "--count",
            "3",
            "--out",
            "a.png",
        ],
        "no checkpoint there",
    );
    assert_bad_input(
        &["sample", "--from", "x", "--count", "3", "--out", "a.txt"],
        "use a name ending in",
    );
    assert_bad_input(
        &["sample", "--from", "x", "--count", "0", "--out", "a.png"],
        "--count",
    );

    let toy = trained(dir.path(), "toy:8gaussians");
    assert_bad_input(
        &["--no-ui", "--resume", toy.to_str().unwrap(), "--steps", "1"],
        "at step 1 already",
    );
    // A new run does not start in a folder holding another run's checkpoints.
    assert_bad_input(
        &[
            "--no-ui",
            "--data",
            "toy:8gaussians",
            "--steps",
            "2",
            "--out",
            toy.to_str().unwrap(),
        ],
        "already holds a run with checkpoints (the newest of step 1)",
    );
    // A corrupt checkpoint: weights cut short. `latest` falls back to no other, so it fails.
    let folder = toy.join("checkpoints/step-0000001");
    let weights = folder.join("critic.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    assert_bad_input(
        &[
            "--no-ui",
            "--resume",
            folder.to_str().unwrap(),
            "--steps",
            "5",
        ],
        "not a valid checkpoint",
    );
    // A checkpoint whose tensors do not fit the model is refused.
    let (mut ck, _) = Checkpoint::load(&trained(dir.path(), "toy:25gaussians")).unwrap();
    ck.critic[0].name = "l9.bias".into();
    let other = dir.path().join("other");
    ck.save(&other, 1).unwrap();
    assert_bad_input(
        &[
            "--no-ui",
            "--resume",
            other.to_str().unwrap(),
            "--steps",
            "5",
        ],
        "does not fit",
    );
}

/// `sample` draws from the averaged generator unless `--raw`; a run with `--ema 0` keeps none,
/// and its samples are the raw generator's whichever is asked for.
#[test]
fn sample_draws_from_the_averaged_generator_unless_raw() {
    let dir = tempfile::tempdir().unwrap();
    let draw = |run: &Path, raw: bool| {
        let file = dir
            .path()
            .join(format!("{}-{raw}.csv", run.display()).replace('/', "_"));
        let mut args = vec!["sample", "--from", run.to_str().unwrap(), "--count", "50"];
        args.extend(["--out", file.to_str().unwrap()]);
        if raw {
            args.push("--raw");
        }
        let out = wgangp(&args);
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        (std::fs::read_to_string(file).unwrap(), said)
    };
    let averaged_run = dir.path().join("averaged");
    let out = wgangp(&toy_args(averaged_run.to_str().unwrap(), "5", &[]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let step = averaged_run.join("checkpoints/step-0000005");
    assert!(step.join("generator_ema.safetensors").is_file());
    let (averaged, said) = draw(&averaged_run, false);
    let (raw, said_raw) = draw(&averaged_run, true);
    assert!(said.contains("of the averaged generator"), "{said}");
    assert!(said_raw.contains("of the generator"), "{said_raw}");
    assert_ne!(averaged, raw);

    let plain_run = dir.path().join("plain");
    let out = wgangp(&toy_args(plain_run.to_str().unwrap(), "5", &["--ema", "0"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !plain_run
            .join("checkpoints/step-0000005/generator_ema.safetensors")
            .exists()
    );
    let (plain, said) = draw(&plain_run, false);
    assert!(said.contains("of the generator"), "{said}");
    // The same seed and steps: the raw generators of both runs are the same net.
    assert_eq!(plain, raw);
    assert_eq!(draw(&plain_run, true).0, plain);
}
