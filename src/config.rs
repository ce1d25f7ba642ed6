//! What a run is: the fixed settings of a training run and the hyperparameters that can be
//! changed while it trains.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the critic is kept (approximately) 1-Lipschitz.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PenaltyMode {
    /// Gradient penalty: lambda * mean((||grad D(x_hat)|| - 1)^2) (WGAN-GP).
    Gp,
    /// One-sided penalty: lambda * mean(max(0, ||grad D(x_hat)|| - 1)^2).
    Lp,
    /// No penalty; critic weights clipped to [-c, c] after each update (the original WGAN).
    Clip,
}

impl PenaltyMode {
    pub fn name(self) -> &'static str {
        match self {
            PenaltyMode::Gp => "gp",
            PenaltyMode::Lp => "lp",
            PenaltyMode::Clip => "clip",
        }
    }

    /// The optimizer the papers use with this mode: Adam(0.5, 0.9) with a penalty, RMSprop
    /// with clipping (Adam destabilises weight-clipped critics, Arjovsky et al. 2017).
    pub fn optimizer(self) -> OptimizerKind {
        match self {
            PenaltyMode::Gp | PenaltyMode::Lp => OptimizerKind::Adam,
            PenaltyMode::Clip => OptimizerKind::RmsProp,
        }
    }

    /// The default learning rate for this mode.
    pub fn default_lr(self) -> f64 {
        match self.optimizer() {
            OptimizerKind::Adam => 1e-4,
            OptimizerKind::RmsProp => 5e-5,
        }
    }
}

impl fmt::Display for PenaltyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam, betas (0.5, 0.9), eps 1e-8.
    Adam,
    /// RMSprop, alpha 0.99, eps 1e-8 (PyTorch's defaults, as in the WGAN code).
    RmsProp,
}

/// Hyperparameters that may change while training runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    /// Weight of the penalty term.
    pub lambda: f64,
    pub lr_generator: f64,
    pub lr_critic: f64,
    /// Critic updates per generator update.
    pub n_critic: u32,
    pub penalty: PenaltyMode,
    /// Clipping bound c of the `clip` mode.
    pub clip: f64,
}

/// A toy 2-d data set of the paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ToySet {
    #[value(name = "8gaussians")]
    #[serde(rename = "8gaussians")]
    EightGaussians,
    #[value(name = "25gaussians")]
    #[serde(rename = "25gaussians")]
    TwentyFiveGaussians,
    Swissroll,
}

impl ToySet {
    pub fn name(self) -> &'static str {
        match self {
            ToySet::EightGaussians => "8gaussians",
            ToySet::TwentyFiveGaussians => "25gaussians",
            ToySet::Swissroll => "swissroll",
        }
    }
}

/// Where the real samples come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSpec {
    /// The MNIST training subset embedded in the binary.
    Mnist,
    /// An IDX image file (raw or gzipped).
    Idx(PathBuf),
    /// A toy 2-d set.
    Toy(ToySet),
}

impl DataSpec {
    /// The model family that trains on this data.
    pub fn family(&self) -> Family {
        match self {
            DataSpec::Mnist | DataSpec::Idx(_) => Family::Mnist,
            DataSpec::Toy(_) => Family::Toy,
        }
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSpec::Mnist => f.write_str("mnist (embedded)"),
            DataSpec::Idx(p) => write!(f, "{}", p.display()),
            DataSpec::Toy(t) => write!(f, "toy:{}", t.name()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// 2-d data, MLPs with 3 hidden layers of 512 ReLU units.
    Toy,
    /// 28x28 grayscale images, the paper's DCGAN-like conv nets.
    Mnist,
}

impl Family {
    /// The paper's defaults for this family: (batch, lambda).
    pub fn defaults(self) -> (usize, f64) {
        match self {
            Family::Toy => (256, 0.1),
            Family::Mnist => (50, 10.0),
        }
    }
}

/// Everything that defines a training run. Written to `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub data: DataSpec,
    pub family: Family,
    pub out: PathBuf,
    /// Generator steps to train for; `None` trains until stopped.
    pub steps: Option<u64>,
    pub seed: u64,
    pub batch: usize,
    pub hyper: Hyper,
    pub sample_every: u64,
    pub log_every: u64,
    pub threads: usize,
    /// A checkpoint every this many generator steps (0: only on quit, `s` and signals).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Checkpoints kept (the newest).
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Where the layers run: "cpu" or the GPU's name (set when the run starts, `--device`).
    #[serde(default = "default_device")]
    pub device: String,
}

pub const DEFAULT_CHECKPOINT_EVERY: u64 = 500;
pub const DEFAULT_KEEP: usize = 3;

fn default_checkpoint_every() -> u64 {
    DEFAULT_CHECKPOINT_EVERY
}

fn default_keep() -> usize {
    DEFAULT_KEEP
}

fn default_device() -> String {
    crate::device::CPU.into()
}

impl Hyper {
    /// Checks the values, naming the flag of the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(format!(
                "--lambda must be a finite number >= 0, got {}",
                self.lambda
            ));
        }
        for lr in [self.lr_generator, self.lr_critic] {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(format!("--lr must be a finite number > 0, got {lr}"));
            }
        }
        if self.n_critic == 0 {
            return Err("--n-critic must be at least 1".into());
        }
        if !(self.clip.is_finite() && self.clip > 0.0) {
            return Err(format!(
                "--clip must be a finite number > 0, got {}",
                self.clip
            ));
        }
        Ok(())
    }
}
