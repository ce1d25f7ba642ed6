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
/// tensors, where `||cpu||` is at least [`NORM_FLOOR`] times the largest tensor's norm: a
/// gradient that is zero in exact arithmetic (the critic's last bias: shifting every score
/// leaves D(fake) - D(real) as it is) holds rounding noise of 1e-8 or so on either device, and
/// noise against noise is no measure (measured: 0.5 on every MNIST batch without the floor,
/// while every other tensor agreed to 2e-6).
///
/// Where a pre-activation is within rounding of zero, two devices summing in another order may
/// put it on different sides of a ReLU, which changes the gradient by a finite amount in a few
/// entries: rare at the nets' initial weights (measured with the twin: 4.4e-4 in one deep toy
/// batch of three, 7e-6 and below in every other batch of every family), common in trained
/// deep nets (see tests/device.rs). A real error (a wrong index, a wrong transpose) gives
/// errors of order 1 in every batch.
pub fn max_rel_err(cpu: &[Vec<f32>], other: &[Vec<f32>]) -> f64 {
    assert_eq!(cpu.len(), other.len(), "different parameter counts");
    let norm = |v: &[f32]| {
        v.iter()
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt()
    };
    let largest = cpu.iter().map(|t| norm(t)).fold(0.0, f64::max);
    cpu.iter()
        .zip(other)
        .map(|(a, b)| {
            let diff: Vec<f32> = a.iter().zip(b).map(|(&x, &y)| x - y).collect();
            let diff = norm(&diff);
            // A NaN anywhere is an error, not a pass.
            if diff.is_nan() {
                f64::INFINITY
            } else {
                diff / norm(a).max(NORM_FLOOR * largest).max(1e-30)
            }
        })
        .fold(0.0, f64::max)
}

/// See [`max_rel_err`].
pub const NORM_FLOOR: f64 = 1e-3;

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
        let data = super::bench::reference_data(self.0)?;
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
    for which in [
        BenchConfig::Toy,
        BenchConfig::Mnist,
        BenchConfig::Cifar32,
        BenchConfig::Face64,
    ] {
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

    #[test]
    fn a_gradient_of_rounding_noise_is_judged_against_the_largest() {
        // Noise against noise in a tensor that is zero in exact arithmetic passes...
        let cpu = vec![vec![3.0, -4.0], vec![1e-8]];
        let noise = vec![vec![3.0, -4.0], vec![2e-8]];
        assert!(max_rel_err(&cpu, &noise) < 1e-4);
        // ...a real value where the CPU has none does not.
        let wrong = vec![vec![3.0, -4.0], vec![1e-2]];
        assert!(max_rel_err(&cpu, &wrong) > 1.0);
    }
}
