//! The one contract between the training worker and whatever watches it: events out,
//! commands in. The worker knows nothing of terminals; front ends know nothing of dfdx.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::config::{Hyper, PenaltyMode, TrainConfig};

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
    /// A hyperparameter changed; it takes effect from generator step `step + 1`.
    #[serde(rename = "hyper")]
    HyperChanged {
        step: u64,
        hyper: Hyper,
        change: String,
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

/// Per-layer figures of the critic (the article's Figure 1: clipping drives weights to +-c).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    pub name: String,
    /// L2 norm of the loss gradient w.r.t. the layer's weight (last critic step).
    pub grad_norm: f64,
    pub max_abs_weight: f64,
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

/// Pictures of what the generator makes, from a fixed noise batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "form", rename_all = "snake_case")]
pub enum SampleSet {
    /// `count` square grayscale images of `side`x`side` pixels in [0, 1], row-major, one after
    /// another; `real` holds as many real images for comparison.
    Images {
        step: u64,
        side: usize,
        count: usize,
        generated: Vec<f32>,
        real: Vec<f32>,
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
    },
}

impl SampleSet {
    pub fn step(&self) -> u64 {
        match self {
            SampleSet::Images { step, .. } | SampleSet::Points { step, .. } => *step,
        }
    }
}
