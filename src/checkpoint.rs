//! What a checkpoint holds: everything a run needs to go on exactly where it stopped, as plain
//! data. The trainer makes one, the run folder writes and reads it (`run::checkpoint_store`).

use rand_chacha::ChaCha8Rng;

use crate::config::{OptimizerKind, TrainConfig};

/// One parameter tensor with its name and shape.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// An optimizer's state: moments aligned with the model's tensors (empty before the first
/// update).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    pub kind: OptimizerKind,
    pub lr: f64,
    pub t: u64,
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
}

/// The averaged generator (`--ema`): its weights and how many updates made them (the decay's
/// warm-up depends on it).
#[derive(Clone, Debug, PartialEq)]
pub struct AveragedState {
    pub generator: Vec<NamedTensor>,
    pub updates: u64,
}

/// The best evaluation of a run so far: its step and score (lower is better; see
/// `EvalRecord::score`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Best {
    pub step: u64,
    pub score: f64,
}

/// Everything a run needs to go on exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub step: u64,
    /// Seconds trained so far, so that a resumed run's clock goes on.
    pub wall_s: f64,
    /// The configuration with the hyperparameters in force at `step`.
    pub config: TrainConfig,
    pub generator: Vec<NamedTensor>,
    pub critic: Vec<NamedTensor>,
    pub opt_generator: OptimizerState,
    pub opt_critic: OptimizerState,
    pub rng: ChaCha8Rng,
    /// The averaged generator, in runs that keep one.
    pub averaged: Option<AveragedState>,
    /// The best evaluation so far (`--eval-every`), whose step's checkpoint `checkpoints/best`
    /// names.
    pub best: Option<Best>,
    /// The training data's fingerprint (its number of pictures, their size, a CRC of their
    /// pixels; see `Dataset::fingerprint`), if it has one.
    pub data: Option<String>,
}
