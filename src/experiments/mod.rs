//! The clipping-versus-penalty experiments of the paper's section 3 (the article's Figures 1
//! and 2), run on the real trainer, written as `figures.json` (every number plotted) and three
//! PNGs (see [`plot`]); `wgangp-tui figures` runs them.
//!
//! - Value surfaces: a 4-layer toy critic trained alone against real + N(0, I)
//!   (`--fixed-generator noise`) on 8 Gaussians, 25 Gaussians and Swiss Roll, with weight
//!   clipping (c = 0.01) and with the penalty.
//! - Gradient norms: 12-layer critics (`--deep`) trained as a GAN on Swiss Roll with clipping at
//!   c = 0.1, 0.01, 0.001 and with the penalty; the norm of the critic loss's gradient w.r.t.
//!   each layer's input at the end.
//! - Weights: those deep critics' weights, and the share within 1% of +-c.

pub mod plot;

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{DataSpec, Family, FixedGenerator, PenaltyMode, ToySet, TrainConfig};
use crate::data::Dataset;
use crate::data::toy::centres;
use crate::event::SampleSet;
use crate::model::{Critic, Generator};
use crate::train::Trainer;
use crate::train::families::{FamilyJob, dispatch};
use crate::train::reference::{BenchConfig, reference};
use crate::util::files::write_atomically;
use crate::util::say;

/// The clipping bound of the value surfaces and of the weight histogram (the original WGAN's).
pub const SURFACE_CLIP: f64 = 0.01;
/// The clipping bounds of the gradient-norm experiment.
pub const CLIPS: [f64; 3] = [0.1, 0.01, 0.001];
/// "Near the bound": within this fraction of c of +-c.
pub const NEAR_BOUND: f64 = 0.01;
/// Bins of the weight histograms.
const HISTOGRAM_BINS: usize = 80;

/// Everything the figures show.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Figures {
    /// Generator iterations per experiment (5 critic steps each).
    pub steps: u64,
    pub seed: u64,
    pub value_surfaces: Vec<ValueSurface>,
    pub gradient_norms: Vec<GradientNorms>,
    pub weights: Vec<WeightFigures>,
}

/// One trained critic's value over the plane.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValueSurface {
    pub data: String,
    /// "clip" or "gp".
    pub penalty: String,
    pub clip: Option<f64>,
    pub lambda: Option<f64>,
    /// The critic's value on a `grid` x `grid` lattice over [-extent, extent]^2, row 0 at
    /// y = +extent.
    pub extent: f32,
    pub grid: usize,
    pub values: Vec<f32>,
    /// Real points drawn from the data set.
    pub real: Vec<[f32; 2]>,
    /// For the 8 Gaussians: the value at each mode's centre against the midpoints between it
    /// and its neighbours.
    pub modes: Option<ModeContrast>,
}

/// The critic's values at the 8 Gaussians' centres (in order around the circle) and at the
/// midpoints between neighbouring centres (`midpoints[i]` between centre i and i + 1).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModeContrast {
    pub centres: Vec<f32>,
    pub midpoints: Vec<f32>,
    /// Modes whose value is above both neighbouring midpoints.
    pub modes_above_midpoints: usize,
    /// The mean over the modes of (value at the centre - mean of its two midpoints), divided by
    /// the range of the critic's values over the lattice: how much of its variation the modes
    /// make.
    pub relative_contrast: f64,
}

/// The critic loss's gradient norm at each layer's input, layer 1 (the data) first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GradientNorms {
    /// "clip c=0.1", ..., "gp".
    pub setting: String,
    pub penalty: String,
    pub clip: Option<f64>,
    pub norms: Vec<f64>,
    /// norms[first] / norms[last]: above 1 the gradient grows back through the layers, below 1
    /// it vanishes.
    pub first_over_last: f64,
}

/// A deep critic's weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WeightFigures {
    pub setting: String,
    /// The bound c the share is measured against (a clipped critic's own; for the penalty,
    /// [`SURFACE_CLIP`]).
    pub bound: f64,
    /// The share of weights with |w| within 1% of c of c.
    pub share_near_bound: f64,
    /// The same share in the critic as it was built, before its first step.
    pub share_near_bound_at_start: f64,
    pub count: usize,
    /// Histogram over [lo, hi] (99.5% of the weights and +-1.2 c), equal bins; weights beyond
    /// are counted in the end bins.
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u64>,
}

/// What an experiment keeps of its trained critic.
struct Trained {
    samples: SampleSet,
    probe_values: Vec<f32>,
    input_norms: Vec<f64>,
    weights: Vec<f32>,
    /// The critic's weights before its first step.
    weights_at_start: Vec<f32>,
}

/// Trains one configuration for `steps` generator iterations, then reads its critic.
struct Experiment<'a> {
    config: TrainConfig,
    steps: u64,
    /// Points (x, y interleaved) to read the critic's value at.
    probes: &'a [f32],
    label: &'a str,
}

impl FamilyJob for Experiment<'_> {
    type Output = Result<Trained>;

    fn with_nets<G, D, const Z: usize, const X: usize>(self) -> Result<Trained>
    where
        G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
        D: Critic<f32, X> + BuildModule<Cpu, f32>,
    {
        let data = Dataset::load(&self.config.data)?;
        let mut trainer = Trainer::<G, D, Z, X>::new(&self.config, data);
        let weights_at_start = trainer.critic_weights();
        let quarter = (self.steps / 4).max(1);
        for step in 1..=self.steps {
            trainer
                .iteration()
                .map_err(|e| anyhow!("{}: {e}", self.label))?;
            if step % quarter == 0 || step == self.steps {
                say(format_args!(
                    "figures: {}: step {step}/{}",
                    self.label, self.steps
                ));
            }
        }
        Ok(Trained {
            samples: trainer.samples(),
            probe_values: if self.probes.is_empty() {
                Vec::new()
            } else {
                trainer.critic_values(self.probes)
            },
            input_norms: trainer.activation_gradient_norms(),
            weights: trainer.critic_weights(),
            weights_at_start,
        })
    }
}

/// A toy run's configuration: the paper's toy settings (batch 256, 5 critic steps, lambda 0.1;
/// Adam 1e-4 with the penalty, RMSprop 5e-5 with clipping).
fn toy_config(
    set: ToySet,
    family: Family,
    penalty: PenaltyMode,
    clip: f64,
    fixed: bool,
    args: &Settings,
) -> TrainConfig {
    let mut config = reference(BenchConfig::Toy, args.threads, args.seed);
    config.data = DataSpec::Toy(set);
    config.family = family;
    config.steps = Some(args.steps);
    config.hyper.penalty = penalty;
    config.hyper.clip = clip;
    config.hyper.lr_generator = penalty.default_lr();
    config.hyper.lr_critic = penalty.default_lr();
    config.fixed_generator = fixed.then_some(FixedGenerator::Noise);
    config
}

/// What the experiments are run with.
pub struct Settings {
    /// Generator iterations of each training.
    pub steps: u64,
    pub seed: u64,
    /// Threads of the kernels.
    pub threads: usize,
}

/// Writes `figures.json` and the three PNGs into `out`, each file whole or not at all.
pub fn write_figures(out: &Path, figures: &Figures) -> Result<()> {
    let json = serde_json::to_vec_pretty(figures).context("cannot write the figures")?;
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        write_atomically(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    write("figures.json", &json)?;
    write("fig-value-surfaces.png", &plot::value_surfaces(figures)?)?;
    write("fig-gradient-norms.png", &plot::gradient_norms(figures)?)?;
    write("fig-weights.png", &plot::weights(figures)?)?;
    Ok(())
}

/// Runs every experiment in the current thread pool, saying how far each is on stderr.
pub fn experiments(run: &Settings) -> Result<Figures> {
    let sets = [
        ToySet::EightGaussians,
        ToySet::TwentyFiveGaussians,
        ToySet::Swissroll,
    ];
    let mut value_surfaces = Vec::new();
    for penalty in [PenaltyMode::Clip, PenaltyMode::Gp] {
        for set in sets {
            let config = toy_config(set, Family::Toy, penalty, SURFACE_CLIP, true, run);
            value_surfaces.push(value_surface(config, run.steps)?);
        }
    }

    let mut gradient_norms = Vec::new();
    let mut weights = Vec::new();
    let settings = CLIPS
        .iter()
        .map(|&c| (PenaltyMode::Clip, c))
        .chain([(PenaltyMode::Gp, SURFACE_CLIP)]);
    for (penalty, clip) in settings {
        let config = toy_config(
            ToySet::Swissroll,
            Family::DeepToy,
            penalty,
            clip,
            false,
            run,
        );
        let setting = setting_name(penalty, clip);
        let label = format!("deep critic, swissroll, {setting}");
        let trained = train(config, run.steps, &[], &label)?;
        let norms = trained.input_norms;
        let first_over_last = norms[0] / norms[norms.len() - 1];
        gradient_norms.push(GradientNorms {
            setting: setting.clone(),
            penalty: penalty.name().into(),
            clip: (penalty == PenaltyMode::Clip).then_some(clip),
            norms,
            first_over_last,
        });
        weights.push(weight_figures(
            setting,
            clip,
            &trained.weights,
            &trained.weights_at_start,
        ));
    }
    Ok(Figures {
        steps: run.steps,
        seed: run.seed,
        value_surfaces,
        gradient_norms,
        weights,
    })
}

fn setting_name(penalty: PenaltyMode, clip: f64) -> String {
    match penalty {
        PenaltyMode::Clip => format!("clip c={clip}"),
        other => other.name().into(),
    }
}

fn train(config: TrainConfig, steps: u64, probes: &[f32], label: &str) -> Result<Trained> {
    let family = config.family;
    dispatch(
        family,
        Experiment {
            config,
            steps,
            probes,
            label,
        },
    )
}

/// Trains a fixed-generator toy critic and reads its value surface (and, on the 8 Gaussians,
/// its values at the modes and between them).
fn value_surface(config: TrainConfig, steps: u64) -> Result<ValueSurface> {
    let DataSpec::Toy(set) = config.data else {
        unreachable!("value surfaces are of toy data");
    };
    let penalty = config.hyper.penalty;
    let clip = config.hyper.clip;
    let lambda = config.hyper.lambda;
    let ring = (set == ToySet::EightGaussians).then(|| ring_probes(&centres(set)));
    let probes = ring.as_ref().map_or(&[][..], |r| &r[..]);
    let label = format!(
        "value surface, {}, {}",
        set.name(),
        setting_name(penalty, clip)
    );
    let trained = train(config, steps, probes, &label)?;
    let SampleSet::Points {
        real,
        extent,
        grid,
        critic,
        ..
    } = trained.samples
    else {
        unreachable!("toy data gives points");
    };
    let modes = ring.map(|_| mode_contrast(&trained.probe_values, &critic));
    Ok(ValueSurface {
        data: set.name().into(),
        penalty: penalty.name().into(),
        clip: (penalty == PenaltyMode::Clip).then_some(clip),
        lambda: (penalty != PenaltyMode::Clip).then_some(lambda),
        extent,
        grid,
        values: critic,
        real,
        modes,
    })
}

/// The centres in order around the circle, then the midpoint after each (x, y interleaved).
fn ring_probes(centres: &[[f32; 2]]) -> Vec<f32> {
    let mut ring = centres.to_vec();
    ring.sort_by(|a, b| a[1].atan2(a[0]).total_cmp(&b[1].atan2(b[0])));
    let n = ring.len();
    let midpoints = (0..n).map(|i| {
        let (a, b) = (ring[i], ring[(i + 1) % n]);
        [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
    });
    let all: Vec<[f32; 2]> = ring.iter().copied().chain(midpoints).collect();
    all.into_iter().flatten().collect()
}

fn mode_contrast(values: &[f32], lattice: &[f32]) -> ModeContrast {
    let n = values.len() / 2;
    let (centres, midpoints) = values.split_at(n);
    let before = |i: usize| midpoints[(i + n - 1) % n];
    let above = (0..n)
        .filter(|&i| centres[i] > before(i) && centres[i] > midpoints[i])
        .count();
    let mean_excess = (0..n)
        .map(|i| centres[i] as f64 - (before(i) as f64 + midpoints[i] as f64) / 2.0)
        .sum::<f64>()
        / n as f64;
    let (lo, hi) = lattice
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let range = (hi - lo) as f64;
    ModeContrast {
        centres: centres.to_vec(),
        midpoints: midpoints.to_vec(),
        modes_above_midpoints: above,
        relative_contrast: if range > 0.0 {
            mean_excess / range
        } else {
            0.0
        },
    }
}

/// The share of `weights` within [`NEAR_BOUND`] of `bound` of +-`bound`.
fn share_near(bound: f64, weights: &[f32]) -> f64 {
    let near = weights
        .iter()
        .filter(|&&w| ((w.abs() as f64) - bound).abs() <= NEAR_BOUND * bound)
        .count();
    near as f64 / weights.len().max(1) as f64
}

/// The figures of a critic's `weights`, and of the same critic's `at_start`.
fn weight_figures(setting: String, bound: f64, weights: &[f32], at_start: &[f32]) -> WeightFigures {
    // The range holds 99.5% of the weights and the bound: a few large ones (the first layer's,
    // say) would otherwise squeeze the rest into a few bins.
    let mut sizes: Vec<f64> = weights.iter().map(|&w| w.abs() as f64).collect();
    sizes.sort_by(f64::total_cmp);
    let quantile = sizes.get(sizes.len() * 995 / 1000).copied().unwrap_or(0.0);
    let m = quantile.max(1.2 * bound);
    let mut counts = vec![0u64; HISTOGRAM_BINS];
    for &w in weights {
        let bin = ((w as f64 + m) / (2.0 * m) * HISTOGRAM_BINS as f64).max(0.0) as usize;
        counts[bin.min(HISTOGRAM_BINS - 1)] += 1;
    }
    WeightFigures {
        setting,
        bound,
        share_near_bound: share_near(bound, weights),
        share_near_bound_at_start: share_near(bound, at_start),
        count: weights.len(),
        lo: -m,
        hi: m,
        counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_probes_go_round_the_circle_with_midpoints_between_neighbours() {
        let ring = ring_probes(&centres(ToySet::EightGaussians));
        let points: Vec<[f32; 2]> = ring.chunks(2).map(|p| [p[0], p[1]]).collect();
        let (centres, midpoints) = points.split_at(8);
        let angle = |p: &[f32; 2]| p[1].atan2(p[0]);
        for i in 1..8 {
            let step = angle(&centres[i]) - angle(&centres[i - 1]);
            assert!(
                (step - std::f32::consts::FRAC_PI_4).abs() < 1e-3,
                "{centres:?}"
            );
        }
        // Each midpoint is as far from its two centres, and nearer the origin than they are.
        for i in 0..8 {
            let d = |a: &[f32; 2], b: &[f32; 2]| (a[0] - b[0]).hypot(a[1] - b[1]);
            let (a, b, m) = (centres[i], centres[(i + 1) % 8], midpoints[i]);
            assert!((d(&a, &m) - d(&b, &m)).abs() < 1e-5);
            assert!(m[0].hypot(m[1]) < a[0].hypot(a[1]));
        }
    }

    #[test]
    fn mode_contrast_counts_modes_above_both_neighbouring_midpoints() {
        // Centres 1.0 each; midpoints 0.5 except between centres 2 and 3 (index 2), at 1.5:
        // modes 2 and 3 lose.
        let centres = [1.0f32; 8];
        let mut midpoints = [0.5f32; 8];
        midpoints[2] = 1.5;
        let values: Vec<f32> = centres.iter().chain(&midpoints).copied().collect();
        let lattice = [0.0, 2.0];
        let c = mode_contrast(&values, &lattice);
        assert_eq!(c.modes_above_midpoints, 6);
        // Mean excess: six modes at 0.5, two at 0.5 - (1.5 - 0.5) / 2 = 0; range 2.
        assert!((c.relative_contrast - (6.0 * 0.5 / 8.0) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn weight_share_counts_within_one_percent_of_the_bound() {
        let weights = [0.01, -0.01, 0.00995, -0.01005, 0.0098, 0.0, 0.5, -0.0102];
        let w = weight_figures("clip c=0.01".into(), 0.01, &weights, &weights[..4]);
        // 0.01, -0.01, 0.00995 and -0.01005 are within 1e-4 of 0.01; 0.0098 and -0.0102 not.
        assert!((w.share_near_bound - 4.0 / 8.0).abs() < 1e-12);
        assert_eq!(w.share_near_bound_at_start, 1.0);
        assert_eq!(w.counts.iter().sum::<u64>(), weights.len() as u64);
        assert!(w.hi >= 0.012 && w.lo == -w.hi);
    }
}
