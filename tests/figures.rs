//! `wgangp-tui figures` through the real binary, at a small step count: what the paper's
//! section 3 claims must show in `figures.json`, and the PNGs must be the pictures.

use serde_json::Value;

mod common;
use common::{assert_bad_input, wgangp};

/// Iterations per experiment: enough for the penalised critic to rise at the 8 Gaussians' modes
/// (it does from about 30; at the default 200 it is clearer), short enough for CI (about 90 s in
/// all on 2 cores).
const STEPS: &str = "50";

fn setting<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|v| v["setting"] == name)
        .unwrap_or_else(|| panic!("no setting {name} in {list}"))
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Count of pixels of `picture` within 12 of `rgb` in each channel.
fn pixels_near(picture: &image::RgbImage, rgb: [u8; 3]) -> usize {
    picture
        .pixels()
        .filter(|p| (0..3).all(|c| (p.0[c] as i32 - rgb[c] as i32).abs() <= 12))
        .count()
}

#[test]
fn figures_show_what_the_paper_claims() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figs");
    let o = wgangp(&[
        "figures",
        "--steps",
        STEPS,
        "--threads",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("deep critic, swissroll, clip c=0.001: step 50/50"),
        "{stderr}"
    );
    let f: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("figures.json")).unwrap()).unwrap();

    // Gradient norms at each of the 12 layers' inputs.
    let grads = &f["gradient_norms"];
    let gp = numbers(&setting(grads, "gp")["norms"]);
    assert_eq!(gp.len(), 12);
    let (lo, hi) = gp.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    assert!(
        hi / lo < 10.0,
        "penalty: not within one order of magnitude: {gp:?}"
    );
    let tiny = numbers(&setting(grads, "clip c=0.001")["norms"]);
    assert!(
        tiny[11] / tiny[0] > 100.0,
        "c=0.001: the gradient does not vanish towards the input: {tiny:?}"
    );
    // From the last layer's input back to the first hidden layer's output (layer 2's input):
    // the data's own 2 values make layer 1's input gradient smaller than the activations'.
    let big = numbers(&setting(grads, "clip c=0.1")["norms"]);
    assert!(
        big[1] > 5.0 * big[11],
        "c=0.1: the gradient does not grow towards the input: {big:?}"
    );
    println!(
        "layer 2 / layer 12 input: gp {:.2}, c=0.1 {:.2}, c=0.01 {:.2e}, c=0.001 {:.2e}",
        gp[1] / gp[11],
        big[1] / big[11],
        {
            let n = numbers(&setting(grads, "clip c=0.01")["norms"]);
            n[1] / n[11]
        },
        tiny[1] / tiny[11]
    );

    // Weights: clipping piles them at +-c, the penalty does not; both measured against the
    // same critics as they were built.
    let weights = &f["weights"];
    let share = |name: &str, key: &str| setting(weights, name)[key].as_f64().unwrap();
    let (clipped, clipped_at_start) = (
        share("clip c=0.01", "share_near_bound"),
        share("clip c=0.01", "share_near_bound_at_start"),
    );
    let (penalised, penalised_at_start) = (
        share("gp", "share_near_bound"),
        share("gp", "share_near_bound_at_start"),
    );
    assert!(
        clipped > 0.5 && clipped > 10.0 * clipped_at_start,
        "clip: {clipped} of the weights at +-c (at step 0: {clipped_at_start})"
    );
    assert!(
        penalised < 0.05 && penalised < 3.0 * penalised_at_start,
        "gp: {penalised} of the weights at +-0.01 (at step 0: {penalised_at_start})"
    );
    println!(
        "weights within 1% of +-c: clip {clipped:.3} (step 0: {clipped_at_start:.4}), gp \
         {penalised:.4} (step 0: {penalised_at_start:.4})"
    );

    // 8 Gaussians: the penalised critic peaks at every mode; the clipped one does not, or far
    // less.
    let surfaces = f["value_surfaces"].as_array().unwrap();
    assert_eq!(surfaces.len(), 6);
    let modes = |penalty: &str| {
        &surfaces
            .iter()
            .find(|s| s["data"] == "8gaussians" && s["penalty"] == penalty)
            .unwrap()["modes"]
    };
    let (gp_modes, clip_modes) = (modes("gp"), modes("clip"));
    assert_eq!(gp_modes["modes_above_midpoints"], 8, "{gp_modes}");
    let (gp_c, clip_c) = (
        gp_modes["relative_contrast"].as_f64().unwrap(),
        clip_modes["relative_contrast"].as_f64().unwrap(),
    );
    assert!(
        clip_modes["modes_above_midpoints"].as_u64().unwrap() < 8 || clip_c < gp_c / 3.0,
        "clipping peaks at the modes as much: {clip_modes} vs {gp_modes}"
    );
    println!(
        "8 gaussians, modes above their midpoints: gp 8 (contrast {gp_c:.3}), clip {} \
         (contrast {clip_c:.3})",
        clip_modes["modes_above_midpoints"]
    );
    for s in surfaces {
        let grid = s["grid"].as_u64().unwrap() as usize;
        assert_eq!(s["values"].as_array().unwrap().len(), grid * grid);
    }

    // The pictures: their sizes, and the colours of what they draw.
    let open = |name: &str| image::open(out.join(name)).unwrap().to_rgb8();
    let surfaces_png = open("fig-value-surfaces.png");
    assert_eq!(surfaces_png.dimensions(), (1500, 1040));
    // Viridis' two ends (the lowest and highest value of each panel) and the orange points.
    for (what, rgb, least) in [
        ("dark blue", [68, 1, 84], 50),
        ("yellow", [253, 231, 37], 50),
        ("orange points", [255, 120, 0], 500),
    ] {
        let n = pixels_near(&surfaces_png, rgb);
        assert!(n >= least, "{n} pixels of {what} in the value surfaces");
    }
    let norms_png = open("fig-gradient-norms.png");
    assert_eq!(norms_png.dimensions(), (1000, 650));
    for (what, rgb) in [
        ("red", [255, 0, 0]),
        ("blue", [0, 0, 255]),
        ("green", [0, 255, 0]),
    ] {
        let n = pixels_near(&norms_png, rgb);
        assert!(n >= 200, "{n} pixels of the {what} line");
    }
    let weights_png = open("fig-weights.png");
    assert_eq!(weights_png.dimensions(), (1300, 520));
    let bars = pixels_near(&weights_png, [40, 90, 170]);
    assert!(bars >= 5000, "{bars} pixels of histogram bars");
}

#[test]
fn figures_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    assert_bad_input(
        &["figures", "--out", file.to_str().unwrap()],
        "cannot create the folder",
    );
    assert_bad_input(&["figures", "--steps", "0"], "--steps");
    assert_bad_input(&["figures", "--threads", "0"], "--threads");
}

/// A signal stops the experiments at once with a line saying so and the shell's status for
/// it; no figure file is left behind.
#[test]
fn figures_stop_on_a_signal_and_say_so() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgangp-tui"))
        .args(["figures", "--steps", "40", "--threads", "1", "--out"])
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    // The first progress line: training is under way.
    while !line.contains("figures: value surface") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no progress line");
    }
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15), "{rest}");
    assert!(
        rest.contains("figures: stopped by SIGTERM; no figures written"),
        "{rest}"
    );
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
