//! What a run is: the fixed settings of a training run and the hyperparameters that can be
//! changed while it trains.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the critic is kept (approximately) 1-Lipschitz.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToySet {
    #[serde(rename = "8gaussians")]
    EightGaussians,
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
    /// A folder of pictures (searched recursively), as square colour images of side `side`.
    Folder { path: PathBuf, side: usize },
}

impl DataSpec {
    /// The model family that trains on this data.
    pub fn family(&self) -> Family {
        match self {
            DataSpec::Mnist | DataSpec::Idx(_) => Family::Mnist,
            DataSpec::Toy(_) => Family::Toy,
            DataSpec::Folder { side: 64, .. } => Family::Face64,
            DataSpec::Folder { .. } => Family::Cifar32,
        }
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSpec::Mnist => f.write_str("mnist (embedded)"),
            DataSpec::Idx(p) => write!(f, "{}", p.display()),
            DataSpec::Toy(t) => write!(f, "toy:{}", t.name()),
            DataSpec::Folder { path, side } => write!(f, "{} at {side}x{side}", path.display()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// 2-d data, MLPs with 3 hidden layers of 512 ReLU units.
    Toy,
    /// 2-d data, MLPs of 12 linear layers (11 hidden layers of 512 ReLU units, He init): the
    /// deep nets of the paper's Figure 1b (`--deep`).
    #[serde(rename = "deeptoy")]
    DeepToy,
    /// 28x28 grayscale images, the paper's DCGAN-like conv nets.
    Mnist,
    /// 32x32 colour images, the paper's CIFAR-10 nets (DIM 128).
    Cifar32,
    /// 64x64 colour images, the article's gan-zoo nets (DIM 64, GroupNorm, no biases).
    Face64,
}

impl Family {
    /// The paper's defaults for this family: (batch, lambda).
    pub fn defaults(self) -> (usize, f64) {
        match self {
            Family::Toy | Family::DeepToy => (256, 0.1),
            Family::Mnist => (50, 10.0),
            Family::Cifar32 | Family::Face64 => (64, 10.0),
        }
    }

    /// Adam's betas this family's reference code trains with.
    pub fn default_betas(self) -> [f64; 2] {
        match self {
            Family::Face64 => GAN_ZOO_BETAS,
            _ => DEFAULT_BETAS,
        }
    }
}

/// What the critic is trained against instead of a generator (`--fixed-generator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FixedGenerator {
    /// Fakes are the real batch plus N(0, I) noise, and the generator is never trained: the
    /// critic's value surface of the paper's Figure 1a forms (toy data only).
    Noise,
}

/// What a run does when a step turns a loss or a gradient non-finite (`--on-nan`); nothing of
/// that step is applied either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnNan {
    /// Pause and say why (a headless run ends with status 1).
    #[default]
    Pause,
    /// Go back to the newest checkpoint's weights and optimizer state with the learning rates
    /// halved, at most [`MAX_ROLLBACKS`] times; then pause.
    Rollback,
}

/// Rollbacks a run makes at most (`--on-nan rollback`).
pub const MAX_ROLLBACKS: u32 = 3;

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
    /// Adam's betas (`--betas`).
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Where the layers run: "cpu" or the GPU's name (set when the run starts, `--device`).
    #[serde(default = "default_device")]
    pub device: String,
    /// Whether the run folder gets a TensorBoard event file (`--no-tensorboard`: no).
    #[serde(default = "default_tensorboard")]
    pub tensorboard: bool,
    /// Train the critic alone against a fixed distribution (`--fixed-generator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_generator: Option<FixedGenerator>,
    /// The averaged generator's decay beta (`--ema`); 0: no averaged generator. Runs
    /// configured before it existed have none.
    #[serde(default)]
    pub ema: f64,
    /// An evaluation every this many generator steps (`--eval-every`), on data held out of
    /// training (see `data::held_out_count`); 0: none, and nothing is held out. Runs
    /// configured before it existed have none.
    #[serde(default)]
    pub eval_every: u64,
    /// A shell command run on each alert of the watchdog (`--on-alert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_alert: Option<String>,
    /// What a non-finite step leads to (`--on-nan`).
    #[serde(default)]
    pub on_nan: OnNan,
}

fn default_tensorboard() -> bool {
    true
}

pub const DEFAULT_CHECKPOINT_EVERY: u64 = 500;
pub const DEFAULT_KEEP: usize = 3;

fn default_checkpoint_every() -> u64 {
    DEFAULT_CHECKPOINT_EVERY
}

fn default_keep() -> usize {
    DEFAULT_KEEP
}

fn default_betas() -> [f64; 2] {
    DEFAULT_BETAS
}

/// Adam's betas of WGAN-GP (Gulrajani et al. 2017).
pub const DEFAULT_BETAS: [f64; 2] = [0.5, 0.9];

/// Adam's betas of gan-zoo-pytorch's WGAN-GP (the article's code, the 64x64 nets).
pub const GAN_ZOO_BETAS: [f64; 2] = [0.9, 0.999];

/// Adam's betas: each in [0, 1).
pub fn check_betas(betas: [f64; 2]) -> Result<[f64; 2], String> {
    if betas.iter().all(|b| (0.0..1.0).contains(b)) {
        Ok(betas)
    } else {
        Err(format!(
            "each beta must be >= 0 and < 1, got {},{}",
            betas[0], betas[1]
        ))
    }
}

fn default_device() -> String {
    CPU_DEVICE.into()
}

/// What a run's configuration records for the CPU.
pub const CPU_DEVICE: &str = "cpu";

/// The most critic steps per generator step, wherever they are set: `--n-critic`, the monitor's
/// keys and the run's socket.
pub const MAX_CRITIC_STEPS: u32 = 1000;

// The one check of each hyperparameter that can change while a run trains. The command line's
// parsers, `Hyper::validate` (the worker's last word) and `Command::validate` (the monitor's
// keys and the socket) all call these, so they agree on what may be set.

/// Lambda, the penalty's weight: finite and >= 0.
pub fn check_lambda(lambda: f64) -> Result<f64, String> {
    if lambda.is_finite() && lambda >= 0.0 {
        Ok(lambda)
    } else {
        Err(format!("must be a finite number >= 0, got {lambda}"))
    }
}

/// A learning rate: finite and > 0.
pub fn check_lr(lr: f64) -> Result<f64, String> {
    if lr.is_finite() && lr > 0.0 {
        Ok(lr)
    } else {
        Err(format!("must be a finite number > 0, got {lr}"))
    }
}

/// Critic steps per generator step: 1 to [`MAX_CRITIC_STEPS`].
pub fn check_n_critic(n_critic: u32) -> Result<u32, String> {
    if (1..=MAX_CRITIC_STEPS).contains(&n_critic) {
        Ok(n_critic)
    } else {
        Err(format!(
            "must be from 1 to {MAX_CRITIC_STEPS}, got {n_critic}"
        ))
    }
}

/// The averaged generator's decay (`--ema`): 0 (none) or in (0, 1).
pub fn check_ema(beta: f64) -> Result<f64, String> {
    if (0.0..1.0).contains(&beta) {
        Ok(beta)
    } else {
        Err(format!("must be >= 0 and < 1 (0: none), got {beta}"))
    }
}

/// The default `--eval-every`.
pub const DEFAULT_EVAL_EVERY: u64 = 100;

/// The default `--ema`: StyleGAN's and Yazici et al.'s order of magnitude.
pub const DEFAULT_EMA: f64 = 0.999;

/// The clipping bound c: finite and > 0.
pub fn check_clip(clip: f64) -> Result<f64, String> {
    if clip.is_finite() && clip > 0.0 {
        Ok(clip)
    } else {
        Err(format!("must be a finite number > 0, got {clip}"))
    }
}

impl Hyper {
    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        check_lambda(self.lambda).map_err(|e| format!("lambda {e}"))?;
        check_lr(self.lr_generator).map_err(|e| format!("the generator's learning rate {e}"))?;
        check_lr(self.lr_critic).map_err(|e| format!("the critic's learning rate {e}"))?;
        check_n_critic(self.n_critic).map_err(|e| format!("critic steps {e}"))?;
        check_clip(self.clip).map_err(|e| format!("the clipping bound {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_takes_its_edge_and_refuses_past_it() {
        assert_eq!(check_n_critic(1), Ok(1));
        assert_eq!(check_n_critic(MAX_CRITIC_STEPS), Ok(MAX_CRITIC_STEPS));
        assert!(check_n_critic(0).is_err());
        assert!(check_n_critic(MAX_CRITIC_STEPS + 1).is_err());
        assert_eq!(check_lambda(0.0), Ok(0.0));
        for bad in [-1e-9, f64::NAN, f64::INFINITY] {
            assert!(check_lambda(bad).is_err(), "{bad}");
            assert!(check_lr(bad).is_err(), "{bad}");
            assert!(check_clip(bad).is_err(), "{bad}");
        }
        assert!(check_lr(0.0).is_err());
        assert_eq!(check_ema(0.0), Ok(0.0));
        assert!(
            check_ema(1.0).is_err() && check_ema(-0.1).is_err() && check_ema(f64::NAN).is_err()
        );
        assert!(check_clip(0.0).is_err());
    }
}
