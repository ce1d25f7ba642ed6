//! The configurations of the PyTorch reference benchmark (`shared/bench`'s `wgangp_ref.py`),
//! which `bench`, `gpu-check` and `figures` start from.

use std::path::PathBuf;

pub use crate::cli::BenchConfig;
use crate::config::{
    CPU_DEVICE, DEFAULT_CHECKPOINT_EVERY, DEFAULT_KEEP, DataSpec, Hyper, PenaltyMode, ToySet,
    TrainConfig,
};

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
    }
}
