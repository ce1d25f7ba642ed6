//! The run folder's TensorBoard event file, read back with the project's reader: every record's
//! CRCs, the scalars of every step, the sample grids as PNGs, the weight histograms, and a
//! resumed run's second file.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{records, wgangp};
use wgangp_tui::run::tensorboard::{Event, Kind, SESSION_START, What, event_files, read_events};

fn train(args: &[&str]) {
    let o = wgangp(args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// (step, tag) -> what was written.
fn values(events: &[Event]) -> BTreeMap<(i64, String), Kind> {
    let mut out = BTreeMap::new();
    for e in events {
        if let Some(What::Summary(s)) = &e.what {
            for v in &s.value {
                out.insert((e.step, v.tag.clone()), v.kind.clone().unwrap());
            }
        }
    }
    out
}

fn scalar(kind: &Kind) -> f32 {
    match kind {
        Kind::SimpleValue(v) => *v,
        other => panic!("not a scalar: {other:?}"),
    }
}

#[test]
fn a_run_writes_what_tensorboard_shows_and_a_resumed_run_a_second_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let common = [
        "--no-ui",
        "--data",
        "mnist",
        "--batch",
        "8",
        "--n-critic",
        "1",
    ];
    train(
        &[
            &common[..],
            &[
                "--seed",
                "4",
                "--steps",
                "6",
                "--sample-every",
                "3",
                "--eval-every",
                "3",
                "--out",
                run_s,
            ],
        ]
        .concat(),
    );
    let files = event_files(&run);
    assert_eq!(files.len(), 1, "{files:?}");
    let events = read_events(&files[0]).unwrap();
    assert_eq!(
        events[0].what,
        Some(What::FileVersion("brain.Event:2".into()))
    );
    let written = values(&events);

    // Every step's figures, as metrics.jsonl has them.
    let metrics: Vec<_> = records(&run)
        .into_iter()
        .filter(|r| r["kind"] == "metrics")
        .collect();
    assert_eq!(metrics.len(), 6);
    for m in &metrics {
        let step = m["step"].as_i64().unwrap();
        for (tag, key) in [
            ("loss/critic", "critic_loss"),
            ("loss/generator", "generator_loss"),
            ("loss/wasserstein", "wasserstein"),
            ("penalty/weighted", "weighted_penalty"),
            ("critic_input_grad_norm/mean", "grad_norm_mean"),
            ("hyper/lambda", "lambda"),
        ] {
            // f32 in the event file, a shortest f64 in metrics.jsonl.
            let (got, want) = (
                scalar(&written[&(step, tag.to_string())]),
                m[key].as_f64().unwrap(),
            );
            assert!(
                (got as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{tag} at {step}: {got} vs {want}"
            );
        }
        let layer = m["layers"][0]["name"].as_str().unwrap();
        assert!(written.contains_key(&(step, format!("layer_grad_norm/{layer}"))));
    }

    // Each evaluation's critic costs, as metrics.jsonl has them.
    let evaluations: Vec<_> = records(&run)
        .into_iter()
        .filter(|r| r["kind"] == "eval")
        .collect();
    assert_eq!(evaluations.len(), 2);
    for e in &evaluations {
        let step = e["step"].as_i64().unwrap();
        for (tag, want) in [
            ("eval/held_out_critic_cost", &e["held_out_critic_cost"]),
            ("eval/train_critic_cost", &e["train_critic_cost"]),
            ("quality/swd", &e["swd"]["mean"]),
            ("quality/swd_14", &e["swd"]["levels"][1][1]),
            ("quality_raw/swd", &e["swd_raw"]["mean"]),
            ("quality/frechet", &e["digits"]["frechet"]),
            ("quality/classifier_score", &e["digits"]["classifier_score"]),
            (
                "quality_raw/classifier_score",
                &e["digits_raw"]["classifier_score"],
            ),
        ] {
            let (got, want) = (
                scalar(&written[&(step, tag.to_string())]),
                want.as_f64().unwrap(),
            );
            assert!(
                (got as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{tag} at {step}: {got} vs {want}"
            );
        }
    }

    // The weight histograms: at step 1 and at the samples' cadence, all the critic's weights.
    for step in [1, 3, 6] {
        let Kind::Histo(h) = &written[&(step, "critic/weights".to_string())] else {
            panic!("no histogram at {step}");
        };
        let m = &metrics[step as usize - 1];
        let counts: Vec<f64> = m["weight_histogram"]["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_f64().unwrap())
            .collect();
        assert_eq!(h.bucket, counts);
        assert_eq!(h.num, counts.iter().sum::<f64>());
        assert!(h.num > 1000.0);
        assert_eq!(h.bucket_limit.len(), counts.len());
    }
    assert!(!written.contains_key(&(2, "critic/weights".to_string())));

    // The sample grids, as PNGs like the run folder's.
    for step in [0, 3, 6] {
        let Kind::Image(image) = &written[&(step, "samples/generated".to_string())] else {
            panic!("no image at {step}");
        };
        let png = image::load_from_memory(&image.encoded_image_string).unwrap();
        let saved = image::open(run.join(format!("samples/step-{step:07}.png"))).unwrap();
        assert_eq!((png.width(), png.height()), (saved.width(), saved.height()));
        assert_eq!(png.to_rgb8(), saved.to_rgb8(), "step {step}");
        assert_eq!(
            (image.width as u32, image.height as u32),
            (png.width(), png.height())
        );
    }

    // The real digits, once: a grid of the same size in other pixels.
    let Kind::Image(real) = &written[&(0, "samples/real".to_string())] else {
        panic!("no real pictures");
    };
    let real = image::load_from_memory(&real.encoded_image_string).unwrap();
    let generated = image::open(run.join("samples/step-0000000.png")).unwrap();
    assert_eq!(real.width(), generated.width());
    assert_ne!(real.to_rgb8(), generated.to_rgb8());
    assert!(!written.contains_key(&(3, "samples/real".to_string())));

    // Resumed: a second file that starts a session after the checkpoint, and goes on.
    train(&["--no-ui", "--resume", run_s, "--steps", "8"]);
    let files = event_files(&run);
    assert_eq!(files.len(), 2, "{files:?}");
    let events = read_events(&files[1]).unwrap();
    assert!(
        events.iter().any(|e| e.step == 7
            && matches!(&e.what, Some(What::SessionLog(s)) if s.status == SESSION_START)),
        "{events:?}"
    );
    let written = values(&events);
    for step in [7, 8] {
        assert!(written.contains_key(&(step, "loss/critic".to_string())));
    }
    assert!(!written.contains_key(&(6, "loss/critic".to_string())));

    // --no-tensorboard writes none.
    let quiet = dir.path().join("quiet");
    train(
        &[
            &common[..],
            &[
                "--steps",
                "1",
                "--no-tensorboard",
                "--out",
                quiet.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(event_files(&quiet).is_empty());
    assert!(Path::new(&quiet.join("metrics.jsonl")).is_file());
}

/// A run killed with SIGKILL leaves an event file that reads up to its last whole record:
/// every step metrics.jsonl has, TensorBoard has too (each record is flushed as written).
#[test]
fn a_killed_run_leaves_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = std::process::Command::new(common::BIN)
        .args(["--no-ui", "--data", "toy:8gaussians", "--n-critic", "1"])
        .args(["--steps", "1000000", "--out", run.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for("ten steps", || {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .is_ok_and(|m| m.matches("\"kind\":\"metrics\"").count() >= 10)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // Whole lines only: the kill may have cut the last.
    let steps: Vec<i64> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["kind"] == "metrics")
        .map(|r| r["step"].as_i64().unwrap())
        .collect();
    assert!(steps.len() >= 10);
    let events = read_events(&event_files(&run)[0]).unwrap();
    let written = values(&events);
    // The event file is written after metrics.jsonl, so it may lack the very last step.
    for step in &steps[..steps.len() - 1] {
        assert!(
            written.contains_key(&(*step, "loss/critic".to_string())),
            "step {step} missing"
        );
    }
}

/// The deep toy critic's per-layer input-gradient norms go to TensorBoard too, one scalar per
/// layer and step, as metrics.jsonl has them.
#[test]
fn deep_runs_write_each_layers_input_gradient_norm() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("deep");
    train(&[
        "--no-ui",
        "--data",
        "toy:swissroll",
        "--deep",
        "--steps",
        "2",
        "--out",
        run.to_str().unwrap(),
    ]);
    let files = event_files(&run);
    let written = values(&read_events(&files[0]).unwrap());
    let metrics: Vec<_> = records(&run)
        .into_iter()
        .filter(|r| r["kind"] == "metrics")
        .collect();
    assert_eq!(metrics.len(), 2);
    for m in &metrics {
        let step = m["step"].as_i64().unwrap();
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 12);
        for layer in layers {
            let tag = format!("layer_input_grad_norm/{}", layer["name"].as_str().unwrap());
            let got = scalar(&written[&(step, tag.clone())]) as f64;
            let want = layer["input_grad_norm"].as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-6 * want.abs(),
                "{tag}: {got} vs {want}"
            );
        }
    }
}

/// A file written by TensorBoard's own Python writer (tensorboard 2.21,
/// `scripts/tensorboard-fixture.py`): the reader takes every record of it (so the CRC mask and
/// the framing are TensorFlow's), finds what was written where TensorFlow's field numbers put it,
/// and this crate's record of each event is the very bytes TensorBoard wrote.
#[test]
fn a_file_written_by_tensorboard_reads_and_re_encodes_byte_for_byte() {
    use wgangp_tui::run::tensorboard::record;
    let path = Path::new("tests/data/tensorboard-python.tfevents");
    let bytes = std::fs::read(path).unwrap();
    let events = read_events(path).unwrap();
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(
        events[0].what,
        Some(What::FileVersion("brain.Event:2".into()))
    );
    let values = values(&events);
    assert_eq!(values[&(3, "loss/critic".into())], Kind::SimpleValue(-0.75));
    assert_eq!(values[&(3, "penalty".into())], Kind::SimpleValue(1.5));
    assert_eq!(events[1].wall_time, 1765000000.25);
    assert_eq!(
        events[2].what,
        Some(What::SessionLog(wgangp_tui::run::tensorboard::SessionLog {
            status: SESSION_START
        }))
    );
    assert_eq!(events[2].step, 4);
    let Kind::Histo(h) = &values[&(5, "weights/critic".into())] else {
        panic!("no histogram: {values:?}");
    };
    assert_eq!(
        (h.min, h.max, h.num, h.sum, h.sum_squares),
        (-1.0, 2.0, 3.0, 1.5, 5.25)
    );
    assert_eq!(
        (&h.bucket_limit[..], &h.bucket[..]),
        (&[0.0, 2.0][..], &[1.0, 2.0][..])
    );
    let Kind::Image(image) = &values[&(6, "samples".into())] else {
        panic!("no image: {values:?}");
    };
    assert_eq!((image.height, image.width, image.colorspace), (1, 2, 3));
    assert_eq!(image.encoded_image_string, b"\x89PNG not really");
    // The file-version record also names its writer (a field this crate does not write): the
    // records after it are compared whole.
    let first = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize + 16;
    let written: Vec<u8> = events[1..].iter().flat_map(record).collect();
    assert_eq!(
        written,
        bytes[first..],
        "the records differ from TensorBoard's"
    );
}

/// A run killed past its last checkpoint and resumed: its first file holds steps the resumed
/// process trains again, and the second file's session start makes TensorBoard drop them, so
/// that under TensorBoard's rule (a START at step s drops what was read before at steps >= s)
/// every step shows once, with the values metrics.jsonl keeps.
#[test]
fn a_resumed_run_makes_tensorboard_drop_the_steps_after_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let mut child = std::process::Command::new(common::BIN)
        .args(["--no-ui", "--data", "toy:8gaussians", "--n-critic", "1"])
        .args(["--checkpoint-every", "5", "--steps", "1000000"])
        .args(["--out", run_s])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Past a checkpoint by at least three steps.
    common::wait_for("three steps past a checkpoint", || {
        let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default();
        let saved = text.rfind("\"kind\":\"checkpoint\"");
        saved.is_some_and(|at| text[at..].matches("\"kind\":\"metrics\"").count() >= 3)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let checkpoint = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["kind"] == "checkpoint")
        .map(|r| r["step"].as_i64().unwrap())
        .max()
        .unwrap();
    let first = read_events(&event_files(&run)[0]).unwrap();
    let killed_at = first.iter().map(|e| e.step).max().unwrap();
    assert!(killed_at > checkpoint, "no step to drop: {killed_at}");

    let steps = killed_at + 2;
    train(&["--no-ui", "--resume", run_s, "--steps", &steps.to_string()]);
    let files = event_files(&run);
    assert_eq!(files.len(), 2, "{files:?}");
    // Read as TensorBoard does, file after file.
    let mut shown: BTreeMap<(i64, String), Kind> = BTreeMap::new();
    let mut starts = Vec::new();
    for file in &files {
        for event in read_events(file).unwrap() {
            if let Some(What::SessionLog(s)) = &event.what
                && s.status == SESSION_START
            {
                starts.push(event.step);
                shown.retain(|(step, _), _| *step < event.step);
            }
            shown.extend(values(std::slice::from_ref(&event)));
        }
    }
    assert_eq!(
        starts,
        [checkpoint + 1],
        "the resumed process's session start"
    );
    let metrics: Vec<_> = records(&run)
        .into_iter()
        .filter(|r| r["kind"] == "metrics")
        .collect();
    let kept: Vec<i64> = metrics
        .iter()
        .map(|m| m["step"].as_i64().unwrap())
        .collect();
    assert_eq!(kept, (1..=steps).collect::<Vec<_>>(), "each step once");
    for m in &metrics {
        let step = m["step"].as_i64().unwrap();
        let got = scalar(&shown[&(step, "loss/critic".to_string())]) as f64;
        let want = m["critic_loss"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
            "step {step}: TensorBoard shows {got}, metrics.jsonl has {want}"
        );
    }
}
