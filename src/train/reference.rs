//! The configurations of the PyTorch reference benchmark (`shared/bench`'s `wgangp_ref.py`),
//! which `bench`, `gpu-check` and the figures' experiments start from.

use std::path::PathBuf;

use crate::config::{
    CPU_DEVICE, DEFAULT_CHECKPOINT_EVERY, DEFAULT_KEEP, DataSpec, Hyper, OnNan, PenaltyMode,
    ToySet, TrainConfig,
};

/// The configurations of the PyTorch reference benchmark (`wgangp_ref.py`), which `bench` and
/// `gpu-check` run: 5 critic steps, Adam 1e-4 with the reference code's betas, its batch and
/// lambda.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchConfig {
    /// 8gaussians, 3x512 MLPs, batch 256, lambda 0.1
    Toy,
    /// embedded MNIST, the DCGAN-like nets, batch 50, lambda 10
    Mnist,
    /// the paper's CIFAR-10 nets on uniform random 32x32 colour pictures, batch 64, lambda 10
    Cifar32,
    /// gan-zoo's 64x64 nets on uniform random colour pictures, batch 64, lambda 10, Adam
    /// (0.9, 0.999)
    Face64,
}

impl BenchConfig {
    pub fn name(self) -> &'static str {
        match self {
            BenchConfig::Toy => "toy",
            BenchConfig::Mnist => "mnist",
            BenchConfig::Cifar32 => "cifar32",
            BenchConfig::Face64 => "face64",
        }
    }
}

/// What `DataSpec::Folder` names for the reference's random pictures (the benchmark makes them;
/// speed does not depend on what the pictures show).
pub const RANDOM_PICTURES: &str = "(uniform random pictures)";

/// The reference benchmark's settings for `which`.
pub fn reference(which: BenchConfig, threads: usize, seed: u64) -> TrainConfig {
    let data = match which {
        BenchConfig::Toy => DataSpec::Toy(ToySet::EightGaussians),
        BenchConfig::Mnist => DataSpec::Mnist,
        BenchConfig::Cifar32 | BenchConfig::Face64 => DataSpec::Folder {
            path: PathBuf::from(RANDOM_PICTURES),
            side: if which == BenchConfig::Face64 { 64 } else { 32 },
        },
    };
    let family = data.family();
    let (batch, lambda) = family.defaults();
    TrainConfig {
        data,
        family,
        out: Default::default(),
        steps: None,
        seed,
        batch,
        hyper: Hyper {
            lambda,
            lr_generator: 1e-4,
            lr_critic: 1e-4,
            n_critic: 5,
            penalty: PenaltyMode::Gp,
            clip: 0.01,
        },
        sample_every: u64::MAX,
        log_every: 1,
        threads,
        checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
        keep: DEFAULT_KEEP,
        betas: family.default_betas(),
        device: CPU_DEVICE.into(),
        tensorboard: false,
        fixed_generator: None,
        // PyTorch's reference keeps no averaged generator: the benchmark does the same work.
        ema: 0.0,
        eval_every: 0,
        on_alert: None,
        on_nan: OnNan::Pause,
    }
}
