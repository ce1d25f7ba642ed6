//! `wgangp-tui gpu-check`: do a device's gradients agree with the CPU's? For each family that
//! runs on a device (at the benchmark's batch sizes), one whole critic step's gradient (the
//! penalty's included) and one generator step's, computed from the same weights and batches
//! once on the CPU path (dfdx) and once on the device (`--device cuda`, or the CPU twin). The
//! first command to run on a GPU machine (see scripts/gpu-proof.sh).

use std::sync::Arc;

use anyhow::{Result, bail};
use dfdx::prelude::*;
use serde::Serialize;

use crate::config::{BenchConfig, Family, TrainConfig};
use crate::data::Dataset;
use crate::model::device::{Backend, DeviceChoice};
use crate::model::{Critic, Generator};
use crate::train::Trainer;
use crate::train::families::{FamilyJob, dispatch, runs_on_device};
use crate::train::trainer::CriticStats;

/// The gradients are accepted up to this relative error (f32, sums in another order).
pub const TOLERANCE: f64 = 1e-3;

/// One config's comparison.
#[derive(Debug, Serialize)]
pub struct ConfigCheck {
    pub config: &'static str,
    pub batch: usize,
    /// The largest relative error of a critic gradient tensor, `||gpu - cpu|| / ||cpu||`, over
    /// the batches; the same for the generator.
    pub critic_grad_rel_err: f64,
    pub generator_grad_rel_err: f64,
    /// Each batch's.
    pub critic_grad_rel_errs: Vec<f64>,
    pub generator_grad_rel_errs: Vec<f64>,
    /// The first batch's figures on both.
    pub critic_loss_cpu: f64,
    pub critic_loss_gpu: f64,
    pub penalty_cpu: f64,
    pub penalty_gpu: f64,
}

/// The figures of one check.
#[derive(Debug, Serialize)]
pub struct GpuCheck {
    pub device: String,
    pub configs: Vec<ConfigCheck>,
    /// The largest of the configs' relative errors.
    pub grad_rel_err: f64,
    pub ok: bool,
}

/// The largest relative error of a tensor, `||other - cpu|| / ||cpu||` (2-norms), over the
/// tensors. Where a pre-activation is within rounding of zero, two devices summing in another
/// order may put it on different sides of a ReLU, which changes the penalty's gradient by a
/// finite amount in a few entries. Measured on the CPU twin of the GPU backend summing in f32
/// in plain order, MNIST nets at batch 4: one seed in five gave 6e-3 by this measure (8% in
/// the largest entry) and the others 1e-6; the same twin summing in f64 gave 5e-7 on that
/// seed too. At the reference batch sizes (256 toy, 50 MNIST), a twin summing in f32 in
/// reversed order gave 2.0e-3 for one MNIST generator gradient of three and at most 1e-5 for
/// the other eleven gradient sets. So `compare` takes several batches and judges their
/// median: a flip is rare, a real error (a wrong index, a wrong transpose) shows in every
/// batch.
pub fn max_rel_err(cpu: &[Vec<f32>], other: &[Vec<f32>]) -> f64 {
    assert_eq!(cpu.len(), other.len(), "different parameter counts");
    cpu.iter()
        .zip(other)
        .map(|(a, b)| {
            let (diff, norm) = a.iter().zip(b).fold((0f64, 0f64), |(d, n), (&x, &y)| {
                let e = (x - y) as f64;
                (d + e * e, n + (x as f64) * (x as f64))
            });
            // A NaN anywhere is an error, not a pass.
            if diff.is_nan() {
                f64::INFINITY
            } else {
                diff.sqrt() / norm.sqrt().max(1e-30)
            }
        })
        .fold(0.0, f64::max)
}

/// One critic step's figures and gradient, and one generator step's loss and gradient.
type Probe = (CriticStats, Vec<Vec<f32>>, f64, Vec<Vec<f32>>);

/// The gradients of one batch of `config`, on the CPU or on a device.
struct ProbeGradients<'a>(&'a TrainConfig, Option<Arc<dyn Backend>>);

impl FamilyJob for ProbeGradients<'_> {
    type Output = Result<Probe>;

    fn run<G, D, const Z: usize, const X: usize>(self) -> Result<Probe>
    where
        G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
        D: Critic<f32, X> + BuildModule<Cpu, f32>,
    {
        let data = Dataset::load(&self.0.data)?;
        let mut trainer = Trainer::<G, D, Z, X>::new(self.0, data);
        if let Some(dev) = self.1 {
            trainer = trainer.on_device(dev)?;
        }
        Ok(trainer.probe_gradients()?)
    }
}

fn probe_config(config: &TrainConfig, dev: Option<Arc<dyn Backend>>) -> Result<Probe> {
    dispatch(config.family, ProbeGradients(config, dev))
}

/// Compares `device` with the CPU kernels on both configs (at `batch`, or the reference's
/// batch sizes), on one batch per seed in `seeds`, judging the median error.
pub fn compare(device: Arc<dyn Backend>, batch: Option<usize>, seeds: &[u64]) -> Result<GpuCheck> {
    assert!(!seeds.is_empty());
    let name = device.name().to_string();
    let mut configs = Vec::new();
    // Every family that runs on a device, at its reference batch: the benchmark's toy and
    // MNIST configs, and the deep toy nets on the toy config's data.
    let mut checks = Vec::new();
    for which in [BenchConfig::Toy, BenchConfig::Mnist] {
        checks.push((which.name(), TrainConfig::reference(which, 2, 0)));
    }
    let mut deep = TrainConfig::reference(BenchConfig::Toy, 2, 0);
    deep.family = Family::DeepToy;
    checks.push(("deeptoy", deep));
    checks.retain(|(_, config)| runs_on_device(config.family));
    for (label, reference) in checks {
        let mut critic_errs = Vec::new();
        let mut generator_errs = Vec::new();
        let mut first = None;
        for &seed in seeds {
            let mut config = TrainConfig {
                seed,
                ..reference.clone()
            };
            if let Some(b) = batch {
                config.batch = b;
            }
            let cpu = probe_config(&config, None);
            let gpu = probe_config(&config, Some(device.clone()));
            let ((c_stats, c_critic, _, c_gen), (g_stats, g_critic, _, g_gen)) = (cpu?, gpu?);
            critic_errs.push(max_rel_err(&c_critic, &g_critic));
            generator_errs.push(max_rel_err(&c_gen, &g_gen));
            first.get_or_insert((config.batch, c_stats, g_stats));
        }
        let (batch, c_stats, g_stats) = first.expect("at least one seed");
        configs.push(ConfigCheck {
            config: label,
            batch,
            critic_grad_rel_err: critic_errs.iter().copied().fold(0.0, f64::max),
            generator_grad_rel_err: generator_errs.iter().copied().fold(0.0, f64::max),
            critic_grad_rel_errs: critic_errs,
            generator_grad_rel_errs: generator_errs,
            critic_loss_cpu: c_stats.loss,
            critic_loss_gpu: g_stats.loss,
            penalty_cpu: c_stats.penalty,
            penalty_gpu: g_stats.penalty,
        });
    }
    let grad_rel_err = configs
        .iter()
        .map(|c| c.critic_grad_rel_err.max(c.generator_grad_rel_err))
        .fold(0.0, f64::max);
    Ok(GpuCheck {
        device: name,
        configs,
        grad_rel_err,
        ok: grad_rel_err <= TOLERANCE,
    })
}

/// Compares the device `choice` names (the first GPU, or the CPU twin) with the CPU on 3
/// batches from `seed` on.
pub fn run(choice: DeviceChoice, seed: u64) -> Result<GpuCheck> {
    let device: Arc<dyn Backend> = match choice {
        DeviceChoice::Cpu => {
            bail!("gpu-check compares a device with the CPU: --device cuda or twin")
        }
        DeviceChoice::Cuda => crate::model::device::open_cuda()?,
        DeviceChoice::Twin => Arc::new(crate::model::device::twin::Twin::new()),
    };
    compare(device, None, &[seed, seed + 1, seed + 2])
}

/// `run`, failing when the gradients disagree beyond [`TOLERANCE`] (the figures still printed
/// by the caller).
pub fn verdict(check: &GpuCheck) -> Result<()> {
    if !check.ok {
        bail!(
            "the gradients on {} differ from the CPU's by {:.2e} (more than {TOLERANCE:.0e})",
            check.device,
            check.grad_rel_err
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_error_is_per_tensor_and_nan_fails() {
        let cpu = vec![vec![3.0, -4.0], vec![0.01, 0.0]];
        let same = max_rel_err(&cpu, &cpu.clone());
        assert_eq!(same, 0.0);
        // 1e-3 off in the small tensor is 10% of its norm.
        let off = vec![vec![3.0, -4.0], vec![0.011, 0.0]];
        assert!((max_rel_err(&cpu, &off) - 0.1).abs() < 1e-4);
        let off = vec![vec![3.0, -4.5], vec![0.01, 0.0]];
        assert!((max_rel_err(&cpu, &off) - 0.1).abs() < 1e-4);
        let nan = vec![vec![1.0, f32::NAN], vec![0.01, 0.0]];
        assert!(max_rel_err(&cpu, &nan).is_infinite());
    }
}
