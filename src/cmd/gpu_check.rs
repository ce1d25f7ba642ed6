//! `wgangp-tui gpu-check`: do a device's gradients agree with the CPU's? For each family (at
//! the benchmark's batch sizes), one whole critic step's gradient (the penalty's included) and
//! one generator step's, computed from the same weights and batches on the CPU path (dfdx, in
//! f32), on the device (`--device cuda`, or the CPU twin), and on the CPU path in f64, the
//! exact reference (`train::exact`). The first command to run on a GPU machine (see
//! scripts/gpu-proof.sh).

use std::sync::Arc;

use anyhow::{Result, bail};
use dfdx::prelude::*;
use serde::Serialize;

use crate::config::{Family, PenaltyMode, TrainConfig};
use crate::model::device::twin::Twin;
use crate::model::device::{Backend, DeviceChoice};
use crate::model::{Critic, Generator};
use crate::train::Trainer;
use crate::train::families::{Exact, FamilyJob, dispatch};
use crate::train::reference::{BenchConfig, reference};
use crate::train::trainer::CriticStats;

/// A batch passes when the device's gradient is within this relative error of the CPU's
/// (f32, sums in another order), or no farther from the exact (f64) gradient than
/// [`AS_EXACT_AS`] times the CPU's own distance from it.
pub const TOLERANCE: f64 = 1e-3;
pub const AS_EXACT_AS: f64 = 2.0;

/// One config's comparison. Errors are the largest relative error of a gradient tensor
/// ([`max_rel_err`]), one per batch.
#[derive(Debug, Serialize)]
pub struct ConfigCheck {
    pub config: &'static str,
    pub batch: usize,
    pub critic: Errors,
    pub generator: Errors,
    /// Whether every batch passed, critic and generator.
    pub ok: bool,
    /// The first batch's figures on both.
    pub critic_loss_cpu: f64,
    pub critic_loss_gpu: f64,
    pub penalty_cpu: f64,
    pub penalty_gpu: f64,
}

/// One net's errors over the batches: the device against the CPU, and each against the
/// exact gradient.
#[derive(Debug, Default, Serialize)]
pub struct Errors {
    pub device_vs_cpu: Vec<f64>,
    pub device_vs_exact: Vec<f64>,
    pub cpu_vs_exact: Vec<f64>,
}

impl Errors {
    fn push(&mut self, cpu: &[Vec<f32>], device: &[Vec<f32>], exact: &[Vec<f32>]) {
        self.device_vs_cpu.push(max_rel_err(cpu, device));
        self.device_vs_exact.push(max_rel_err(exact, device));
        self.cpu_vs_exact.push(max_rel_err(exact, cpu));
    }

    /// Whether every batch passed (see [`TOLERANCE`]).
    fn ok(&self) -> bool {
        let batches = self.device_vs_cpu.iter().zip(&self.device_vs_exact);
        batches
            .zip(&self.cpu_vs_exact)
            .all(|((&to_cpu, &dev), &cpu)| to_cpu <= TOLERANCE || dev <= AS_EXACT_AS * cpu)
    }
}

/// The figures of one check.
#[derive(Debug, Serialize)]
pub struct GpuCheck {
    pub device: String,
    pub configs: Vec<ConfigCheck>,
    /// The device against the twin, where the device is not the twin.
    pub against_twin: Option<TwinCheck>,
    /// The largest error of the device against the CPU, over configs and batches.
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
/// entries: rare in the small nets (measured with the twin: 4.4e-4 in one deep toy batch of
/// three), but at batch 64 the 32x32 and 64x64 generators have millions of normalised
/// pre-activations, and there the twin and the CPU differed by up to 1.6e-3 while each was
/// 1.2e-3 to 2.0e-3 from the exact (f64) gradient. Hence [`TOLERANCE`]'s second test. A real
/// error (a wrong index, a wrong transpose) gives errors of order 1 in every batch.
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

/// The probes of one batch of `config`: on the CPU, on the device, and the exact gradients
/// (critic's, generator's).
type Probes = (Probe, Probe, [Vec<Vec<f32>>; 2]);

/// On the CPU, on the device, and exact; or, with a second device, on the device, on the
/// second, and no exact gradients (empty).
struct ProbeGradients<'a>(&'a TrainConfig, Arc<dyn Backend>, Option<Arc<dyn Backend>>);

impl FamilyJob for ProbeGradients<'_> {
    type Output = Result<Probes>;

    fn with_nets<G, D, const Z: usize, const X: usize>(self) -> Result<Probes>
    where
        G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
        D: Critic<f32, X> + BuildModule<Cpu, f32>,
        Exact<G>: Generator<f64, Z, X>,
        Exact<D>: Critic<f64, X>,
    {
        let trainer = || -> Result<Trainer<G, D, Z, X>> {
            let data = super::bench::reference_data(self.0)?;
            Ok(Trainer::new(self.0, data))
        };
        let device = trainer()?.on_device(self.1)?.probe_gradients()?;
        if let Some(second) = self.2 {
            let other = trainer()?.on_device(second)?.probe_gradients()?;
            return Ok((device, other, [Vec::new(), Vec::new()]));
        }
        let cpu = trainer()?.probe_gradients()?;
        let (critic, generator) = trainer()?.probe_exact();
        Ok((cpu, device, [critic, generator]))
    }
}

/// Compares `device` with the CPU path and both with the exact gradients, for every family
/// (at `batch`, or the reference's batch sizes), on one batch per seed in `seeds`.
pub fn compare(device: Arc<dyn Backend>, batch: Option<usize>, seeds: &[u64]) -> Result<GpuCheck> {
    assert!(!seeds.is_empty());
    let name = device.name().to_string();
    let mut configs = Vec::new();
    // Every family at its reference batch: the benchmark's configs, and the deep toy nets on
    // the toy config's data.
    let mut checks = Vec::new();
    for which in [
        BenchConfig::Toy,
        BenchConfig::Mnist,
        BenchConfig::Cifar32,
        BenchConfig::Face64,
    ] {
        checks.push((which.name(), reference(which, 2, 0)));
    }
    let mut deep = reference(BenchConfig::Toy, 2, 0);
    deep.family = Family::DeepToy;
    checks.push(("deeptoy", deep));
    for (label, reference) in checks {
        let (mut critic, mut generator) = (Errors::default(), Errors::default());
        let mut first = None;
        for &seed in seeds {
            let mut config = TrainConfig {
                seed,
                ..reference.clone()
            };
            if let Some(b) = batch {
                config.batch = b;
            }
            let probes = dispatch(config.family, ProbeGradients(&config, device.clone(), None))?;
            let ((c_stats, c_critic, _, c_gen), (g_stats, g_critic, _, g_gen), [e_critic, e_gen]) =
                probes;
            critic.push(&c_critic, &g_critic, &e_critic);
            generator.push(&c_gen, &g_gen, &e_gen);
            first.get_or_insert((config.batch, c_stats, g_stats));
        }
        let (batch, c_stats, g_stats) = first.expect("at least one seed");
        configs.push(ConfigCheck {
            config: label,
            batch,
            ok: critic.ok() && generator.ok(),
            critic,
            generator,
            critic_loss_cpu: c_stats.loss,
            critic_loss_gpu: g_stats.loss,
            penalty_cpu: c_stats.penalty,
            penalty_gpu: g_stats.penalty,
        });
    }
    let grad_rel_err = configs
        .iter()
        .flat_map(|c| {
            c.critic
                .device_vs_cpu
                .iter()
                .chain(&c.generator.device_vs_cpu)
        })
        .fold(0.0, |m, &e| f64::max(m, e));
    Ok(GpuCheck {
        device: name,
        ok: configs.iter().all(|c| c.ok),
        configs,
        against_twin: None,
        grad_rel_err,
    })
}

/// The device's kernels against the twin's, the same source compiled by g++: every family's
/// gradients (one critic step, the penalty's included, and one generator step) at a small
/// batch, the toy nets in each penalty mode, and the update kernels (Adam, RMSprop, clipping)
/// on the same random state.
#[derive(Debug, Serialize)]
pub struct TwinCheck {
    /// `(case, the largest relative error of a gradient tensor)`.
    pub gradients: Vec<(String, f64)>,
    /// `(kernel, the largest difference of an output, relative to the largest output)`.
    pub updates: Vec<(&'static str, f64)>,
    pub ok: bool,
}

/// Every kernel of a step runs in these cases, at small batches (where a ReLU is rarely
/// within rounding of zero).
fn twin_cases() -> Vec<(String, TrainConfig)> {
    let mut cases = Vec::new();
    for (which, batch) in [
        (BenchConfig::Toy, 32),
        (BenchConfig::Mnist, 8),
        (BenchConfig::Cifar32, 4),
        (BenchConfig::Face64, 2),
    ] {
        let mut config = reference(which, 2, 0);
        config.batch = batch;
        cases.push((which.name().to_string(), config));
    }
    let toy = cases[0].1.clone();
    for mode in [PenaltyMode::Lp, PenaltyMode::Clip] {
        let mut config = toy.clone();
        config.hyper.penalty = mode;
        cases.push((format!("toy {mode:?}").to_lowercase(), config));
    }
    let mut deep = toy;
    deep.family = Family::DeepToy;
    cases.push(("deeptoy".to_string(), deep));
    cases
}

/// Compares `device` with `twin` (see [`TwinCheck`]).
pub fn against_twin(device: Arc<dyn Backend>, twin: Arc<dyn Backend>) -> Result<TwinCheck> {
    let mut gradients = Vec::new();
    for (case, config) in twin_cases() {
        let ((_, d_critic, _, d_gen), (_, t_critic, _, t_gen), _) = dispatch(
            config.family,
            ProbeGradients(&config, device.clone(), Some(twin.clone())),
        )?;
        let err = max_rel_err(&t_critic, &d_critic).max(max_rel_err(&t_gen, &d_gen));
        gradients.push((case, err));
    }
    let updates = update_kernels(&*device, &*twin)?;
    let ok = gradients.iter().all(|(_, e)| *e <= TOLERANCE)
        && updates.iter().all(|(_, e)| *e <= UPDATE_TOLERANCE);
    Ok(TwinCheck {
        gradients,
        updates,
        ok,
    })
}

/// The update kernels are element-wise IEEE arithmetic (`--fmad=false`, no fast math): the
/// GPU and the twin should agree to the last bit or two.
const UPDATE_TOLERANCE: f64 = 1e-6;

/// Adam, RMSprop and clipping on one random state (10,000 parameters, gradients and moments)
/// on both backends: the largest difference of their outputs.
fn update_kernels(a: &dyn Backend, b: &dyn Backend) -> Result<Vec<(&'static str, f64)>> {
    use crate::model::device::kernels::params as k;
    use rand::{Rng, SeedableRng};
    let n = 10_000;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut random =
        |scale: f32| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-scale..scale)).collect() };
    let (p, g, m) = (random(0.1), random(1.0), random(0.1));
    let v: Vec<f32> = random(0.1).iter().map(|x| x.abs()).collect();
    let mut results = Vec::new();
    for kernel in ["adam", "rmsprop", "clip"] {
        let mut outputs = Vec::new();
        for dev in [a, b] {
            let [bp, bg, bm, bv] = [&p, &g, &m, &v].map(|x| dev.buffer_from(x));
            let (bp, bg, bm, bv) = (bp?, bg?, bm?, bv?);
            let ok = dev.buffer_from(&[1.0])?;
            let (p, g, m, v, ok) = (bp.ptr(), bg.ptr(), bm.ptr(), bv.ptr(), ok.ptr());
            match kernel {
                "adam" => {
                    let (b1, b2) = (0.5f32, 0.9f32);
                    let (bc1, bc2) = (1.0 - b1.powi(3), 1.0 - b2.powi(3));
                    let (lr, eps) = (1e-3, 1e-8);
                    let params = k::adam {
                        p,
                        g,
                        m,
                        v,
                        ok,
                        lr,
                        b1,
                        b2,
                        bc1,
                        bc2,
                        eps,
                    };
                    dev.launch(params, n)?
                }
                "rmsprop" => {
                    let (lr, alpha, eps) = (5e-5, 0.99, 1e-8);
                    let params = k::rmsprop {
                        p,
                        g,
                        v,
                        ok,
                        lr,
                        alpha,
                        eps,
                    };
                    dev.launch(params, n)?
                }
                _ => dev.launch(k::clip { p, ok, c: 0.05 }, n)?,
            }
            let mut out = dev.read(p, n)?;
            out.extend(dev.read(m, n)?);
            out.extend(dev.read(v, n)?);
            outputs.push(out);
        }
        let largest = outputs[1].iter().fold(0f32, |l, x| l.max(x.abs())) as f64;
        let diff = outputs[0].iter().zip(&outputs[1]);
        let diff = diff.fold(0f64, |d, (x, y)| d.max((x - y).abs() as f64));
        results.push((
            kernel,
            if diff.is_nan() {
                f64::INFINITY
            } else {
                diff / largest
            },
        ));
    }
    Ok(results)
}

/// The device `choice` names: the first GPU, or the CPU twin.
pub fn open(choice: DeviceChoice) -> Result<Arc<dyn Backend>> {
    Ok(match choice {
        DeviceChoice::Cpu => {
            bail!("gpu-check compares a device with the CPU: --device cuda or twin")
        }
        DeviceChoice::Cuda => crate::model::device::open_cuda()?,
        DeviceChoice::Twin => Arc::new(Twin::new()),
    })
}

/// Compares `device` (opened from `choice`) with the CPU on 3 batches from `seed` on; a GPU
/// also with the twin.
pub fn run(device: Arc<dyn Backend>, choice: DeviceChoice, seed: u64) -> Result<GpuCheck> {
    let mut check = compare(device.clone(), None, &[seed, seed + 1, seed + 2])?;
    if choice != DeviceChoice::Twin {
        let twin = against_twin(device, Arc::new(Twin::new()))?;
        check.ok &= twin.ok;
        check.against_twin = Some(twin);
    }
    Ok(check)
}

/// `run`, failing when a config's gradients disagree (see [`TOLERANCE`]; the figures still
/// printed by the caller).
pub fn verdict(check: &GpuCheck) -> Result<()> {
    let failed: Vec<&str> = check
        .configs
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.config)
        .collect();
    if let Some(twin) = check.against_twin.as_ref().filter(|t| !t.ok) {
        bail!(
            "the kernels on {} differ from the twin's: gradients {:?}, updates {:?}",
            check.device,
            twin.gradients,
            twin.updates
        );
    }
    if !failed.is_empty() {
        bail!(
            "the gradients on {} differ from the CPU's (by up to {:.2e}, more than \
             {TOLERANCE:.0e}) and are farther from the exact ones than {AS_EXACT_AS} times the \
             CPU's, in: {}",
            check.device,
            check.grad_rel_err,
            failed.join(", ")
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
    fn a_batch_passes_close_to_the_cpu_or_as_close_to_exact_as_the_cpu() {
        let errors = |to_cpu: f64, dev: f64, cpu: f64| Errors {
            device_vs_cpu: vec![1e-6, to_cpu],
            device_vs_exact: vec![1e-6, dev],
            cpu_vs_exact: vec![1e-6, cpu],
        };
        assert!(errors(5e-4, 9e-4, 9e-4).ok());
        assert!(errors(1.6e-3, 2.0e-3, 1.2e-3).ok());
        // Off the CPU and twice as far from exact as the CPU in one batch: a failure.
        assert!(!errors(1.6e-3, 2.5e-3, 1.2e-3).ok());
        assert!(!errors(0.5, 0.5, 1e-6).ok());
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
