//! The one contract between the training worker and whatever watches it: events out,
//! commands in. The worker knows nothing of terminals; front ends know nothing of dfdx.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::config::{Hyper, PenaltyMode, TrainConfig, check_lambda, check_lr, check_n_critic};

/// Front end -> worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Pause,
    Resume,
    SetLambda {
        lambda: f64,
    },
    SetLearningRates {
        generator: f64,
        critic: f64,
    },
    SetCriticSteps {
        n_critic: u32,
    },
    SetPenalty {
        penalty: PenaltyMode,
    },
    /// Draw the fixed-noise samples now.
    SampleNow,
    /// Write a checkpoint now.
    Checkpoint,
    /// Finish the current step, write a checkpoint, send the last figures and stop.
    Stop,
}

/// What a command that changes hyperparameters does: whether its values are within their
/// limits, the change itself, and how the run's events and log say it.
pub struct Change {
    /// Within the limits (`config`, the same ones the command line applies), or why not.
    pub check: Result<(), String>,
    apply: Box<dyn Fn(&mut Hyper)>,
    describe: Box<dyn Fn(&Hyper) -> String>,
}

impl Change {
    fn new(
        check: Result<(), String>,
        apply: impl Fn(&mut Hyper) + 'static,
        describe: impl Fn(&Hyper) -> String + 'static,
    ) -> Self {
        Self {
            check,
            apply: Box::new(apply),
            describe: Box::new(describe),
        }
    }

    /// The hyperparameters after the change.
    pub fn applied_to(&self, before: &Hyper) -> Hyper {
        let mut after = before.clone();
        (self.apply)(&mut after);
        after
    }

    /// What the change does to `before`, as the run's events and log say it.
    pub fn describe(&self, before: &Hyper) -> String {
        (self.describe)(before)
    }
}

impl Command {
    /// The change of hyperparameters this command makes; `None` for a command that changes
    /// none. Each such command is defined here and nowhere else: the worker, the socket and
    /// the monitor's keys all go through this.
    pub fn change(&self) -> Option<Change> {
        Some(match *self {
            Command::SetLambda { lambda } => Change::new(
                check_lambda(lambda)
                    .map(drop)
                    .map_err(|e| format!("lambda {e}")),
                move |h| h.lambda = lambda,
                move |before| format!("lambda {} -> {lambda}", before.lambda),
            ),
            Command::SetLearningRates { generator, critic } => Change::new(
                check_lr(generator)
                    .map_err(|e| format!("the generator's learning rate {e}"))
                    .and_then(|_| {
                        check_lr(critic).map_err(|e| format!("the critic's learning rate {e}"))
                    })
                    .map(drop),
                move |h| {
                    h.lr_generator = generator;
                    h.lr_critic = critic;
                },
                move |_| format!("learning rates G {generator:e} D {critic:e}"),
            ),
            Command::SetCriticSteps { n_critic } => Change::new(
                check_n_critic(n_critic)
                    .map(drop)
                    .map_err(|e| format!("critic steps {e}")),
                move |h| h.n_critic = n_critic,
                move |before| format!("critic steps {} -> {n_critic}", before.n_critic),
            ),
            Command::SetPenalty { penalty } => Change::new(
                Ok(()),
                move |h| h.penalty = penalty,
                move |before| format!("penalty {} -> {penalty}", before.penalty),
            ),
            Command::Pause
            | Command::Resume
            | Command::SampleNow
            | Command::Checkpoint
            | Command::Stop => return None,
        })
    }

    /// The hyperparameters after this command, for a command that changes them.
    pub fn applied_to(&self, hyper: &Hyper) -> Option<Hyper> {
        self.change().map(|c| c.applied_to(hyper))
    }

    /// What the command changes, from `before`, as the run's events and log say it (`None` for
    /// a command that changes no hyperparameter).
    pub fn describe(&self, before: &Hyper) -> Option<String> {
        self.change().map(|c| c.describe(before))
    }

    /// Checks a command's values against the hyperparameters' limits (`config`), the same ones
    /// the command line applies. The monitor's keys and the run's socket both call this.
    pub fn validate(&self) -> Result<(), String> {
        self.change().map_or(Ok(()), |c| c.check)
    }
}

/// What the worker is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Paused,
    /// Paused because a loss or gradient was not finite; the bad update was not applied.
    /// `Resume` retries (after a change of hyperparameters, say); headless runs stop here.
    NonFinite,
    Finished,
}

/// Worker -> front ends. The serialised form is what `metrics.jsonl` records and what the
/// run's socket streams (one JSON object per line, `"kind"` says which); see `protocol`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrainEvent {
    Started {
        config: Box<TrainConfig>,
        generator_params: usize,
        critic_params: usize,
    },
    Metrics(Box<StepMetrics>),
    Samples(Box<SampleSet>),
    Eval(Box<EvalRecord>),
    /// The watchdog (`quality::watchdog`) saw a run going wrong.
    Alert(Alert),
    /// A hyperparameter changed; it takes effect from generator step `step + 1`.
    #[serde(rename = "hyper")]
    HyperChanged {
        step: u64,
        hyper: Hyper,
        change: String,
    },
    /// A change of hyperparameters the run refused (a value out of its limits), and why; the
    /// run goes on with the values it had.
    #[serde(rename = "refused")]
    ChangeRefused {
        step: u64,
        reason: String,
    },
    State {
        step: u64,
        state: RunState,
        reason: Option<String>,
    },
    /// The whole training state at `step`, for the run folder's writer to save. It never
    /// leaves the process: the writer passes [`TrainEvent::CheckpointSaved`] on instead.
    #[serde(skip)]
    Checkpoint(Box<Checkpoint>),
    /// A checkpoint of step `step` is complete in `path`.
    #[serde(rename = "checkpoint")]
    CheckpointSaved {
        step: u64,
        path: PathBuf,
    },
}

/// The toy mixtures' quality measures of a generator's points (`quality::toy`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToyScores {
    pub points: usize,
    /// The share of points within three standard deviations of their nearest mode.
    pub high_quality: f64,
    pub modes_covered: usize,
    pub modes: usize,
    /// KL(p || uniform) of the high-quality points' histogram over the modes: 0 when they are
    /// spread evenly, ln(modes) when all sit at one mode (and when there is none).
    pub mode_kl: f64,
    /// High-quality points per mode, in the order of the data's centres.
    pub per_mode: Vec<usize>,
}

/// The one quality figure the monitor draws for a run, of the averaged generator (of the
/// generator where the run keeps no average) and of the raw one.
#[derive(Clone, Debug, PartialEq)]
pub struct Headline {
    pub name: &'static str,
    pub averaged: f64,
    pub raw: Option<f64>,
}

impl EvalRecord {
    /// The monitor's quality figure: the digits' classifier score (higher better), else the
    /// pictures' SWD (lower better), else the toy share of points near a mode, in % (higher
    /// better); `None` where nothing was measured (the Swiss roll).
    pub fn headline(&self) -> Option<Headline> {
        let headline = |name, averaged, raw| Headline {
            name,
            averaged,
            raw,
        };
        if let Some(d) = &self.digits {
            let raw = self.digits_raw.as_ref().map(|r| r.classifier_score);
            return Some(headline("classifier score", d.classifier_score, raw));
        }
        if let Some(swd) = &self.swd {
            return Some(headline(
                "SWD",
                swd.mean,
                self.swd_raw.as_ref().map(|r| r.mean),
            ));
        }
        let toy = self.toy.as_ref()?;
        let raw = self.toy_raw.as_ref().map(|r| 100.0 * r.high_quality);
        Some(headline("% near a mode", 100.0 * toy.high_quality, raw))
    }

    /// The one number a run's evaluations are ranked by, lower better: the pictures' SWD mean,
    /// or the share of toy points that are not of high quality (`None` for the Swiss roll,
    /// and where nothing was measured).
    pub fn score(&self) -> Option<f64> {
        match (&self.swd, &self.toy) {
            (Some(swd), _) => Some(swd.mean),
            (None, Some(toy)) => Some(1.0 - toy.high_quality),
            (None, None) => None,
        }
    }
}

/// The sliced Wasserstein distance of two sets of pictures (`quality::swd`), x 1000.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwdScores {
    /// Each level of the Laplacian pyramid: its side and the distance there, finest first.
    pub levels: Vec<(usize, f64)>,
    /// The mean over the levels.
    pub mean: f64,
    /// Pictures in each set.
    pub pictures: usize,
}

/// The digits' scores on the project's MNIST classifier (`quality::digits`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DigitScores {
    /// The squared Frechet distance of the classifier's features from the real pictures'
    /// (lower is better).
    pub frechet: f64,
    /// `exp(mean KL(p(y|x) || p(y)))` of the generated pictures, 1 to 10 (higher is better).
    pub classifier_score: f64,
    /// Generated pictures scored.
    pub pictures: usize,
}

/// How good the run is at `step`, measured every `--eval-every` steps: the critic's cost on
/// held-out data beside its cost on training data, and the generator's quality measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub step: u64,
    /// mean D(G(z)) - mean D(x) over held-out real samples (the paper's `dev disc cost`,
    /// without the penalty); `None` when nothing is held out.
    pub held_out_critic_cost: Option<f64>,
    /// The same on as many training samples, with the same fakes.
    pub train_critic_cost: f64,
    /// Real samples each cost was taken on.
    pub samples: usize,
    /// The toy mixtures' measures of the averaged generator (of the generator where the run
    /// keeps no average), and of the raw generator where there is an average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toy: Option<ToyScores>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toy_raw: Option<ToyScores>,
    /// Pictures: the sliced Wasserstein distance of the averaged generator's pictures (the
    /// generator's where the run keeps no average) from the held-out ones, and of the raw
    /// generator's where there is an average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swd: Option<SwdScores>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swd_raw: Option<SwdScores>,
    /// MNIST: the digits' scores of the averaged generator's pictures against the held-out
    /// ones (the generator's where the run keeps no average), and of the raw generator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits: Option<DigitScores>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits_raw: Option<DigitScores>,
    /// Seconds the evaluation took.
    pub seconds: f64,
}

/// What the watchdog saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The critic's gradient norm on the interpolates far from 1 for long.
    GradientNorm,
    /// The Wasserstein estimate below 0 for long.
    WassersteinNegative,
    /// The Wasserstein estimate growing for long.
    WassersteinGrowing,
    /// The generated samples far less spread out than the real ones.
    Diversity,
    /// The quality measures getting worse over several evaluations.
    QualityWorse,
    /// A loss or gradient that is not finite.
    NonFinite,
}

impl AlertKind {
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::GradientNorm => "gradient_norm",
            AlertKind::WassersteinNegative => "wasserstein_negative",
            AlertKind::WassersteinGrowing => "wasserstein_growing",
            AlertKind::Diversity => "diversity",
            AlertKind::QualityWorse => "quality_worse",
            AlertKind::NonFinite => "non_finite",
        }
    }
}

/// A sentence saying what was seen at `step` and what to try.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub step: u64,
    #[serde(rename = "alert")]
    pub kind: AlertKind,
    pub message: String,
}

/// Per-layer figures of the critic (the article's Figure 1: clipping drives weights to +-c).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    pub name: String,
    /// L2 norm of the loss gradient w.r.t. the layer's weight (last critic step).
    pub grad_norm: f64,
    pub max_abs_weight: f64,
    /// L2 norm of the gradient of mean D(fake) - mean D(real) w.r.t. the layer's input, on
    /// fixed points (the deep toy nets only: the paper's Figure 1b).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_grad_norm: Option<f64>,
}

/// A histogram of all critic weights over `[lo, hi]`, equal-width bins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u64>,
}

/// The figures of one generator step. Critic figures are means over its critic steps.
/// Field names are the `metrics.jsonl` keys (see README).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: u64,
    /// Seconds since training started (excluding nothing: pauses count).
    pub wall_s: f64,
    pub critic_loss: f64,
    pub generator_loss: f64,
    /// mean D(real) - mean D(fake).
    pub wasserstein: f64,
    /// P, the penalty before weighting (computed in every mode, added to the loss only in gp/lp).
    pub penalty: f64,
    /// lambda * P as added to the critic loss (0 in clip mode).
    pub weighted_penalty: f64,
    /// Mean and std over the batch of ||grad_x D(x_hat)||_2; the penalty pulls it to 1.
    pub grad_norm_mean: f64,
    pub grad_norm_std: f64,
    pub layers: Vec<LayerStats>,
    pub weight_histogram: Histogram,
    pub lambda: f64,
    pub lr_generator: f64,
    pub lr_critic: f64,
    pub n_critic: u32,
    pub penalty_mode: PenaltyMode,
    /// Generator iterations per second over the last logging interval.
    pub iters_per_s: f64,
}

/// The largest sample pictures a viewer accepts (a run folder or a socket may hold anything).
pub const MAX_SAMPLE_SIDE: usize = 512;
pub const MAX_SAMPLE_COUNT: usize = 4096;
pub const MAX_SURFACE_GRID: usize = 1024;

/// Pictures of what the generator makes, from a fixed noise batch. A set read from outside (a
/// socket, `samples/latest.json`) is checked as it is parsed: one whose sizes do not match its
/// data does not parse (see [`SampleSet::validate`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "form",
    rename_all = "snake_case",
    try_from = "UncheckedSampleSet"
)]
pub enum SampleSet {
    /// `count` square images of `side`x`side` pixels of `channels` values (1: grey, 3: RGB)
    /// in [0, 1], row-major with the channels of a pixel together, one image after another;
    /// `real` holds whole real images for comparison.
    Images {
        step: u64,
        side: usize,
        #[serde(default = "grey")]
        channels: usize,
        count: usize,
        generated: Vec<f32>,
        real: Vec<f32>,
        /// The raw (not averaged) generator's images of the same noise, where `generated`
        /// comes from the averaged generator (`--ema`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw: Option<Vec<f32>>,
    },
    /// Generated and real 2-d points, and the critic's value on a `grid`x`grid` lattice over
    /// `[-extent, extent]^2` (row 0 at y = +extent).
    Points {
        step: u64,
        generated: Vec<[f32; 2]>,
        real: Vec<[f32; 2]>,
        extent: f32,
        grid: usize,
        critic: Vec<f32>,
        /// The raw generator's points, as for images.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw: Option<Vec<[f32; 2]>>,
    },
}

/// A toy [`SampleSet`] laid out on a `side` x `side` picture, for any renderer (the monitor's
/// half blocks, the PNG files): each pixel's critic value scaled to [0, 1] over the surface
/// (low to high), row-major from the top (y = +extent), and the pixels the real and generated
/// points fall on (those inside the picture).
#[derive(Clone, Debug, PartialEq)]
pub struct ToyPicture {
    pub side: usize,
    pub surface: Vec<f32>,
    pub real: Vec<(usize, usize)>,
    pub generated: Vec<(usize, usize)>,
}

impl SampleSet {
    /// A toy set laid out on a `side` x `side` picture (`None` for pictures).
    pub fn toy_picture(&self, side: usize) -> Option<ToyPicture> {
        let SampleSet::Points {
            generated,
            real,
            extent,
            grid,
            critic,
            ..
        } = self
        else {
            return None;
        };
        Some(ToyPicture::new(
            generated, real, *extent, *grid, critic, side,
        ))
    }
}

impl ToyPicture {
    fn new(
        generated: &[[f32; 2]],
        real: &[[f32; 2]],
        extent: f32,
        grid: usize,
        critic: &[f32],
        side: usize,
    ) -> Self {
        let (lo, hi) = critic
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        let cell = |p: usize| (p * grid / side).min(grid.saturating_sub(1));
        let surface = (0..side * side)
            .map(|i| (critic[cell(i / side) * grid + cell(i % side)] - lo) / span)
            .collect();
        let pixel = |p: &[f32; 2]| {
            let x = (p[0] + extent) / (2.0 * extent) * side as f32;
            let y = (extent - p[1]) / (2.0 * extent) * side as f32;
            let inside = |v: f32| (0.0..side as f32).contains(&v);
            (inside(x) && inside(y)).then_some((x as usize, y as usize))
        };
        Self {
            side,
            surface,
            real: real.iter().filter_map(pixel).collect(),
            generated: generated.iter().filter_map(pixel).collect(),
        }
    }
}

impl SampleSet {
    /// This set with the raw generator's samples in place of the averaged ones (`None` where
    /// the set has no raw samples).
    pub fn raw_view(&self) -> Option<SampleSet> {
        let mut view = self.clone();
        match &mut view {
            SampleSet::Images { generated, raw, .. } => *generated = raw.take()?,
            SampleSet::Points { generated, raw, .. } => *generated = raw.take()?,
        }
        Some(view)
    }

    /// Whether `generated` comes from the averaged generator (the set also holds the raw one's).
    pub fn averaged(&self) -> bool {
        match self {
            SampleSet::Images { raw, .. } => raw.is_some(),
            SampleSet::Points { raw, .. } => raw.is_some(),
        }
    }

    pub fn step(&self) -> u64 {
        match self {
            SampleSet::Images { step, .. } | SampleSet::Points { step, .. } => *step,
        }
    }

    /// Whether the sizes fit the data, within the limits above.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            SampleSet::Images {
                side,
                channels,
                count,
                generated,
                real,
                raw,
                ..
            } => {
                if !(1..=MAX_SAMPLE_SIDE).contains(side) || *count > MAX_SAMPLE_COUNT {
                    return Err(format!(
                        "{count} images of side {side} (at most {MAX_SAMPLE_COUNT} of side \
                         1 to {MAX_SAMPLE_SIDE})"
                    ));
                }
                if ![1, 3].contains(channels) {
                    return Err(format!("{channels} channels (1: grey, 3: RGB)"));
                }
                let pixels = side * side * channels;
                if generated.len() != count * pixels {
                    return Err(format!(
                        "{count} images of {side}x{side} need {} values, not {}",
                        count * pixels,
                        generated.len()
                    ));
                }
                if raw.as_ref().is_some_and(|raw| raw.len() != generated.len()) {
                    return Err("the raw generator's images are not as many as the others".into());
                }
                if real.len() % pixels != 0 || real.len() / pixels > MAX_SAMPLE_COUNT {
                    return Err(format!(
                        "{} real values are not whole images of {side}x{side}",
                        real.len()
                    ));
                }
            }
            SampleSet::Points {
                extent,
                grid,
                critic,
                generated,
                raw,
                ..
            } => {
                if raw.as_ref().is_some_and(|raw| raw.len() != generated.len()) {
                    return Err("the raw generator's points are not as many as the others".into());
                }
                if !(extent.is_finite() && *extent > 0.0) {
                    return Err(format!("the extent {extent} is not a finite number > 0"));
                }
                if !(1..=MAX_SURFACE_GRID).contains(grid) || critic.len() != grid * grid {
                    return Err(format!(
                        "a {grid}x{grid} critic grid (at most {MAX_SURFACE_GRID}) with {} values",
                        critic.len()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Images without a `channels` field are grey (sets written before colour).
fn grey() -> usize {
    1
}

/// [`SampleSet`] as parsed, before its sizes are checked.
#[derive(Deserialize)]
#[serde(tag = "form", rename_all = "snake_case")]
enum UncheckedSampleSet {
    Images {
        step: u64,
        side: usize,
        #[serde(default = "grey")]
        channels: usize,
        count: usize,
        generated: Vec<f32>,
        real: Vec<f32>,
        /// The raw (not averaged) generator's images of the same noise, where `generated`
        /// comes from the averaged generator (`--ema`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw: Option<Vec<f32>>,
    },
    Points {
        step: u64,
        generated: Vec<[f32; 2]>,
        real: Vec<[f32; 2]>,
        extent: f32,
        grid: usize,
        critic: Vec<f32>,
        /// The raw generator's points, as for images.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw: Option<Vec<[f32; 2]>>,
    },
}

impl TryFrom<UncheckedSampleSet> for SampleSet {
    type Error = String;

    fn try_from(raw: UncheckedSampleSet) -> Result<Self, String> {
        let set = match raw {
            UncheckedSampleSet::Images {
                step,
                side,
                channels,
                count,
                generated,
                real,
                raw,
            } => SampleSet::Images {
                step,
                side,
                channels,
                count,
                generated,
                real,
                raw,
            },
            UncheckedSampleSet::Points {
                step,
                generated,
                real,
                extent,
                grid,
                critic,
                raw,
            } => SampleSet::Points {
                step,
                generated,
                real,
                extent,
                grid,
                critic,
                raw,
            },
        };
        set.validate().map_err(|e| format!("bad samples: {e}"))?;
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_toy_picture_puts_the_corners_centre_and_surface_where_they_are() {
        // A 2x2 lattice over [-2, 2]^2: top left lowest, bottom right highest.
        let critic = [0.0, 1.0, 3.0, 5.0];
        let points = [
            [-2.0, 2.0],
            [0.0, 0.0],
            [1.99, -1.99],
            [2.5, 0.0],
            [0.0, -2.0],
        ];
        let set = SampleSet::Points {
            step: 0,
            generated: points.to_vec(),
            real: vec![[-1.0, 1.0]],
            extent: 2.0,
            grid: 2,
            critic: critic.to_vec(),
            raw: None,
        };
        let p = set.toy_picture(8).unwrap();
        // Inside: the top-left corner, the centre, the bottom-right pixel; outside: x > 2 and
        // the bottom edge y = -2 itself.
        assert_eq!(p.generated, vec![(0, 0), (4, 4), (7, 7)]);
        assert_eq!(p.real, vec![(2, 2)]);
        assert_eq!(p.surface.len(), 64);
        // Each 4x4 quarter shows its lattice cell, scaled from the lowest (0) to the highest (1).
        assert_eq!((p.surface[0], p.surface[3], p.surface[4]), (0.0, 0.0, 0.2));
        assert_eq!((p.surface[4 * 8], p.surface[63]), (0.6, 1.0));
    }

    use super::*;

    fn images(side: usize, count: usize, generated: usize, real: usize) -> SampleSet {
        SampleSet::Images {
            step: 1,
            side,
            channels: 1,
            count,
            generated: vec![0.5; generated],
            real: vec![0.5; real],
            raw: None,
        }
    }

    fn with_raw(mut set: SampleSet, values: usize) -> SampleSet {
        if let SampleSet::Images { raw, .. } = &mut set {
            *raw = Some(vec![0.5; values]);
        }
        set
    }

    #[test]
    fn sample_sets_whose_sizes_do_not_match_their_data_do_not_parse() {
        for good in [images(2, 3, 12, 8), with_raw(images(2, 3, 12, 8), 12)] {
            let json = serde_json::to_string(&good).unwrap();
            assert_eq!(serde_json::from_str::<SampleSet>(&json).unwrap(), good);
        }
        for bad in [
            images(2, 4, 12, 8),              // count larger than the data
            images(3, 3, 12, 8),              // side larger than the data
            images(0, 0, 0, 0),               // no side
            images(2, 3, 12, 7),              // a partial real image
            images(100_000, 0, 0, 0),         // an absurd side
            with_raw(images(2, 3, 12, 8), 8), // fewer raw images than averaged ones
        ] {
            let json = serde_json::to_string(&bad).unwrap();
            let err = serde_json::from_str::<SampleSet>(&json).unwrap_err();
            assert!(err.to_string().contains("bad samples"), "{err}");
        }
        let points = |grid: usize, values: usize, extent: f32| SampleSet::Points {
            step: 0,
            generated: vec![[0.0, 1.0]],
            real: vec![],
            extent,
            grid,
            critic: vec![0.0; values],
            raw: None,
        };
        assert!(points(3, 9, 2.5).validate().is_ok());
        for bad in [points(3, 8, 2.5), points(0, 0, 2.5), points(3, 9, f32::NAN)] {
            let json = serde_json::to_string(&bad).unwrap();
            assert!(serde_json::from_str::<SampleSet>(&json).is_err(), "{json}");
        }
    }

    #[test]
    fn commands_are_checked_against_the_config_limits() {
        use crate::config::MAX_CRITIC_STEPS;
        let steps = |n_critic| Command::SetCriticSteps { n_critic };
        assert!(steps(MAX_CRITIC_STEPS).validate().is_ok());
        assert!(steps(MAX_CRITIC_STEPS + 1).validate().is_err());
        assert!(steps(0).validate().is_err());
        assert!(Command::SetLambda { lambda: -1.0 }.validate().is_err());
        let lrs = Command::SetLearningRates {
            generator: 1e-4,
            critic: f64::INFINITY,
        };
        assert!(lrs.validate().is_err());
        assert!(Command::Pause.validate().is_ok());
    }
}
