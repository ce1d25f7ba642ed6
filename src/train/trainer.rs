//! One WGAN training run in memory: the two nets, their optimizers, the data and the RNG.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use super::average::Averaged;
use super::device::{DeviceTraining, Draws};
use super::optim::Optimizer;
use super::penalty::{critic_objective, interpolate};
use super::shards::{SHARD_VALUES, SHARDS, add_grads, all_finite, for_shards, rows_tensor, shards};
pub use super::stats::{CriticStats, IterationStats, NonFinite, StepError};
use super::stats::{l2, mean_std};
use crate::config::{Hyper, PenaltyMode, TrainConfig};
use crate::data::Dataset;
use crate::model::device::Backend;
use crate::model::ops::layer::with_frozen_weights;
use crate::model::params::{named_params, read_params, take_grads, update_params, write_params};
use crate::model::{Batch, Critic, Generator};

/// Bins of the critic weight histogram.
pub const HISTOGRAM_BINS: usize = 41;
/// Images in the fixed-noise sample grid (8x8).
pub const SAMPLE_IMAGES: usize = 64;
/// Points in the fixed-noise toy scatter.
pub const SAMPLE_POINTS: usize = 512;
/// Real points, and as many fakes, on which the per-layer input-gradient norms are measured.
pub const ACTIVATION_NORM_POINTS: usize = 128;
/// Lattice of the toy critic surface, and its half-width in data space.
pub const SURFACE_GRID: usize = 64;
pub const SURFACE_EXTENT: f32 = 2.5;

pub struct Trainer<G, D, const Z: usize, const X: usize> {
    pub(super) dev: Cpu,
    pub generator: G,
    pub critic: D,
    /// The averaged generator (`--ema`), updated after each generator step of
    /// [`Self::iteration`].
    pub averaged: Option<Averaged<G>>,
    pub opt_generator: Optimizer<f32>,
    pub opt_critic: Optimizer<f32>,
    pub hyper: Hyper,
    pub batch: usize,
    pub(super) data: Dataset,
    /// The data held out of training for the evaluations (`--eval-every`; see
    /// `Dataset::split_held_out`).
    pub(super) held_out: Option<Dataset>,
    pub(super) seed: u64,
    pub(super) rng: ChaCha8Rng,
    /// Generator steps done.
    pub step: u64,
    /// Fixed noise and real samples for the pictures, drawn once from their own stream.
    pub(super) sample_noise: Vec<f32>,
    pub(super) sample_real: Vec<f32>,
    /// Each critic layer's name and the index of its weight among the critic's parameters.
    pub(super) critic_layers: Vec<(&'static str, usize)>,
    /// The data's fingerprint, for the checkpoints.
    pub(super) data_fingerprint: Option<String>,
    /// Shards a batch is split into, when a test sets it (see [`Self::shard_ranges`]).
    pub(super) shards: Option<usize>,
    /// Whether the fakes are the real batch plus N(0, I) noise (`--fixed-generator noise`):
    /// the generator is then neither used nor trained.
    pub(super) fixed_generator: bool,
    /// The nets on a device, where training then happens; `generator` and `critic` above are
    /// then what the device held when last read back (see [`Self::host_nets`]).
    pub(super) device: Option<DeviceTraining>,
}

fn finite(x: f64) -> bool {
    x.is_finite()
}

impl<G, D, const Z: usize, const X: usize> Trainer<G, D, Z, X>
where
    G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
{
    /// Fresh nets (PyTorch's default init) and optimizers; everything random follows `seed`.
    pub fn new(config: &TrainConfig, data: Dataset) -> Self {
        // Weights come from the device's RNG, data/noise/eps from ours, pictures from a third.
        let dev = Cpu::seed_from_u64(config.seed);
        let generator = G::build(&dev);
        let critic = D::build(&dev);
        let hyper = config.hyper.clone();
        let kind = hyper.penalty.optimizer();
        let mut picture_rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(2));
        let count = if X == 2 { SAMPLE_POINTS } else { SAMPLE_IMAGES };
        let sample_noise = (0..count * Z)
            .map(|_| StandardNormal.sample(&mut picture_rng))
            .collect();
        // The fingerprint is the whole set's, however much of it is held out.
        let data_fingerprint = data.fingerprint();
        let (data, held_out) = data.held_out_of(config);
        let mut sample_real = Vec::with_capacity(count * X);
        data.sample(&mut picture_rng, count, &mut sample_real);
        let names = named_params(&critic);
        let critic_layers = critic
            .layer_weights()
            .into_iter()
            .map(|(layer, _)| {
                let weight = format!("{layer}.weight");
                let index = names.iter().position(|t| t.name == weight);
                (layer, index.expect("each critic layer has a weight"))
            })
            .collect();
        let fixed_generator = config.fixed_generator.is_some();
        assert!(
            !fixed_generator || Z == X,
            "a fixed generator adds noise of the data's size"
        );
        let averaged =
            (config.ema > 0.0 && !fixed_generator).then(|| Averaged::new(&generator, config.ema));
        Self {
            device: None,
            averaged,
            critic_layers,
            fixed_generator,
            shards: None,
            data_fingerprint,
            opt_generator: Optimizer::new(kind, hyper.lr_generator, config.betas),
            opt_critic: Optimizer::new(kind, hyper.lr_critic, config.betas),
            dev,
            generator,
            critic,
            hyper,
            batch: config.batch,
            data,
            held_out,
            seed: config.seed,
            rng: ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(1)),
            step: 0,
            sample_noise,
            sample_real,
        }
    }

    /// This trainer with its nets, their gradients and optimizer moments on `dev`, where its
    /// steps then run. Fails when the device does.
    pub fn on_device(mut self, dev: Arc<dyn Backend>) -> anyhow::Result<Self> {
        let (g, c) = (self.generator.device_net(), self.critic.device_net());
        let (gn, cn) = (named_params(&self.generator), named_params(&self.critic));
        let device = DeviceTraining::new(dev, (&g, &gn), (&c, &cn), (Z, X), self.fixed_generator)?;
        let params = [read_params(&self.generator), read_params(&self.critic)];
        device.write_state(
            [&params[0], &params[1]],
            [&self.opt_generator, &self.opt_critic],
        )?;
        self.device = Some(device);
        Ok(self)
    }

    /// The device's name, when training runs on one.
    pub fn device_name(&self) -> Option<&str> {
        self.device.as_ref().map(|d| d.backend().name())
    }

    /// The nets as they are now: on the CPU, the trainer's own; on a device, copies with the
    /// device's parameters read back.
    pub fn host_nets(&self) -> Result<(Cow<'_, G>, Cow<'_, D>), StepError> {
        let Some(device) = &self.device else {
            return Ok((Cow::Borrowed(&self.generator), Cow::Borrowed(&self.critic)));
        };
        let [g, c] = device.read_params().map_err(|e| self.device_failed(e))?;
        let (mut generator, mut critic) = (self.generator.clone(), self.critic.clone());
        write_params(&mut generator, &g);
        write_params(&mut critic, &c);
        Ok((Cow::Owned(generator), Cow::Owned(critic)))
    }

    /// The nets as they are now, for the figures: where the device cannot be read, the last
    /// ones read back (the failure shows at the next step).
    pub(super) fn nets(&self) -> (Cow<'_, G>, Cow<'_, D>) {
        self.host_nets()
            .unwrap_or((Cow::Borrowed(&self.generator), Cow::Borrowed(&self.critic)))
    }

    pub(super) fn device_failed(&self, e: anyhow::Error) -> StepError {
        StepError::Device {
            step: self.step + 1,
            why: format!("{e:#}"),
        }
    }

    /// Evaluates against `held_out` from now on (`bench` measures an evaluation with it).
    pub fn set_held_out(&mut self, held_out: Dataset) {
        self.held_out = Some(held_out);
    }

    pub(super) fn batch_tensor<const N: usize>(&self, values: Vec<f32>) -> Batch<N, f32> {
        let n = values.len() / N;
        self.dev.tensor_from_vec(values, (n, Const::<N>))
    }

    /// `n` noise vectors, one after another.
    pub(super) fn noise(&mut self, n: usize) -> Vec<f32> {
        (0..n * Z)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect()
    }

    /// Changes hyperparameters; a new penalty mode that uses another optimizer starts both
    /// optimizers afresh (Adam moments mean nothing to RMSprop).
    pub fn set_hyper(&mut self, hyper: Hyper) {
        let kind = hyper.penalty.optimizer();
        if kind != self.opt_critic.kind {
            let betas = self.opt_critic.betas;
            self.opt_critic = Optimizer::new(kind, hyper.lr_critic, betas);
            self.opt_generator = Optimizer::new(kind, hyper.lr_generator, betas);
            if let Some(device) = &self.device {
                // A failure here shows at the next step, which reads the device back.
                let _ = device.reset_moments();
            }
        }
        self.opt_critic.lr = hyper.lr_critic;
        self.opt_generator.lr = hyper.lr_generator;
        self.hyper = hyper;
    }

    /// A critic step's random draws: real samples, noise, and the interpolation points.
    pub(super) fn critic_batch(&mut self) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let b = self.batch;
        let mut real = Vec::with_capacity(b * X);
        self.data.sample(&mut self.rng, b, &mut real);
        let z = self.noise(b);
        let unit = Uniform::new(0.0f32, 1.0);
        let eps: Vec<f32> = (0..b).map(|_| unit.sample(&mut self.rng)).collect();
        (real, z, eps)
    }

    /// One critic update on a fresh real batch and a fresh fake batch.
    pub fn critic_step(&mut self) -> Result<CriticStats, StepError> {
        if self.device.is_some() {
            let (mut stats, _) = self.device_steps(1, false)?;
            return Ok(stats.remove(0));
        }
        let (real, z, eps) = self.critic_batch();
        let (stats, grads) = self.critic_gradients(&real, &z, &eps)?;
        self.opt_critic.step(&mut self.critic, &grads);
        if self.hyper.penalty == PenaltyMode::Clip {
            let c = self.hyper.clip as f32;
            update_params(&mut self.critic, None, |_, p, _| {
                p.iter_mut().for_each(|w| *w = w.clamp(-c, c))
            });
        }
        Ok(stats)
    }

    fn non_finite(&self, what: &str) -> NonFinite {
        NonFinite {
            step: self.step + 1,
            what: what.to_string(),
        }
    }

    /// The critic objective's figures and its gradient (one vector per critic parameter) on
    /// real samples, the generator's samples of noise `z`, and interpolates at `eps`, computed
    /// shard by shard.
    fn critic_gradients(
        &self,
        real: &[f32],
        z: &[f32],
        eps: &[f32],
    ) -> Result<(CriticStats, Vec<Vec<f32>>), NonFinite> {
        let b = eps.len();
        let (lambda, mode) = (self.hyper.lambda as f32, self.hyper.penalty);
        let (generator, critic, dev) = (&self.generator, &self.critic, &self.dev);
        // A generator with batch statistics makes the fakes of the whole batch at once; a fixed
        // one adds the noise to the real batch.
        let whole_fake = if self.fixed_generator {
            Some(real.iter().zip(z).map(|(r, e)| r + e).collect())
        } else {
            G::BATCH_STATISTICS.then(|| {
                generator
                    .generate(rows_tensor::<Z>(dev, z, &(0..b)))
                    .as_vec()
            })
        };
        let mut parts = Vec::new();
        let mut grads = None;
        for_shards(
            self.shard_ranges(b, X),
            |rows| {
                let fake = match &whole_fake {
                    Some(fake) => rows_tensor::<X>(dev, fake, &rows),
                    None => generator.generate(rows_tensor::<Z>(dev, z, &rows)),
                };
                let real = &real[rows.start * X..rows.end * X];
                let x_hat = interpolate(real, &fake.as_vec(), &eps[rows.clone()], X);
                let all = 0..rows.len();
                let objective = critic_objective(
                    critic,
                    rows_tensor::<X>(dev, real, &all),
                    fake,
                    &rows_tensor::<X>(dev, &x_hat, &all),
                    lambda,
                    mode,
                );
                // This shard's mean loss weighted by its share of the batch: the shards' losses
                // and gradients then add up to those of the whole batch.
                let share = rows.len() as f32 / b as f32;
                let loss = objective.loss * share;
                let loss_v = loss.array();
                let shard_grads = take_grads(critic, loss.backward());
                let figures = CriticShard {
                    share: share as f64,
                    loss: loss_v as f64,
                    d_real: objective.d_real as f64,
                    d_fake: objective.d_fake as f64,
                    penalty: objective.penalty as f64,
                    weighted_penalty: objective.weighted_penalty as f64,
                    grad_norms: objective.grad_norms,
                };
                (figures, shard_grads)
            },
            |(figures, shard_grads)| {
                parts.push(figures);
                add_grads(&mut grads, shard_grads);
            },
        );
        let grads = grads.expect("at least one shard");

        let loss: f64 = parts.iter().map(|p| p.loss).sum();
        if !finite(loss) {
            return Err(self.non_finite("the critic loss"));
        }
        let weighted = |f: fn(&CriticShard) -> f64| parts.iter().map(|p| p.share * f(p)).sum();
        let (d_real, d_fake) = (weighted(|p| p.d_real), weighted(|p| p.d_fake));
        let (penalty, weighted_penalty) =
            (weighted(|p| p.penalty), weighted(|p| p.weighted_penalty));
        let norms: Vec<f64> = parts
            .iter()
            .flat_map(|p| p.grad_norms.iter().map(|&n| n as f64))
            .collect();
        if !all_finite(&grads) {
            return Err(self.non_finite("a critic gradient"));
        }
        let layer_grad_norms = self
            .critic_layers
            .iter()
            .map(|&(name, i)| (name, l2(&grads[i])))
            .collect();
        let (grad_norm_mean, grad_norm_std) = mean_std(&norms);
        let stats = CriticStats {
            loss,
            d_real,
            d_fake,
            penalty,
            weighted_penalty,
            grad_norm_mean,
            grad_norm_std,
            layer_grad_norms,
        };
        Ok((stats, grads))
    }

    /// The row ranges of the shards of a batch of `b` samples of `values` each: [`SHARDS`],
    /// or more so that none holds over [`SHARD_VALUES`] input values (unless the count was set
    /// by a test).
    fn shard_ranges(&self, b: usize, values: usize) -> Vec<Range<usize>> {
        let count = self
            .shards
            .unwrap_or_else(|| SHARDS.max((b * values).div_ceil(SHARD_VALUES)));
        shards(b, count)
    }

    /// One generator update: minimise -mean D(G(z)).
    pub fn generator_step(&mut self) -> Result<f64, StepError> {
        if self.device.is_some() {
            let (_, loss) = self.device_steps(0, true)?;
            return Ok(loss.expect("a generator step"));
        }
        let z = self.noise(self.batch);
        let (loss, grads) = self.generator_gradients(&z)?;
        self.opt_generator.step(&mut self.generator, &grads);
        Ok(loss)
    }

    /// The generator's loss -mean D(G(z)) and its gradient (one vector per generator
    /// parameter), computed shard by shard (in one piece for a generator with batch
    /// statistics).
    fn generator_gradients(&self, z: &[f32]) -> Result<(f64, Vec<Vec<f32>>), NonFinite> {
        let b = z.len() / Z;
        let (generator, critic, dev) = (&self.generator, &self.critic, &self.dev);
        let ranges = if G::BATCH_STATISTICS {
            shards(b, 1)
        } else {
            self.shard_ranges(b, X)
        };
        let mut loss = 0.0;
        let mut grads = None;
        for_shards(
            ranges,
            |rows| {
                let z = rows_tensor::<Z>(dev, z, &rows).traced(generator.alloc_grads());
                let share = rows.len() as f32 / b as f32;
                let fake = generator.generate(z);
                let loss = -with_frozen_weights(|| critic.score(fake)).mean() * share;
                let loss_v = loss.array() as f64;
                (loss_v, take_grads(generator, loss.backward()))
            },
            |(shard_loss, shard_grads)| {
                loss += shard_loss;
                add_grads(&mut grads, shard_grads);
            },
        );
        let grads = grads.expect("at least one shard");
        if !finite(loss) {
            return Err(self.non_finite("the generator loss"));
        }
        if !all_finite(&grads) {
            return Err(self.non_finite("a generator gradient"));
        }
        Ok((loss, grads))
    }

    /// The gradients a critic step and a generator step would apply, on fresh batches, without
    /// applying them: the critic's figures and gradient, the generator's loss and gradient (one
    /// vector per parameter). For checking one device against another (`gpu-check`).
    #[allow(clippy::type_complexity)]
    pub fn probe_gradients(
        &mut self,
    ) -> Result<(CriticStats, Vec<Vec<f32>>, f64, Vec<Vec<f32>>), StepError> {
        if self.device.is_some() {
            let draws = self.draws(1, true);
            let device = self.device.as_ref().expect("checked");
            let optimizers = [&self.opt_critic, &self.opt_generator];
            let (mut out, [g, c]) = device
                .iteration(self.batch, &draws, &self.hyper, optimizers, false)
                .and_then(|out| Ok((out, device.read_grads()?)))
                .map_err(|e| self.device_failed(e))?;
            let mut stats = out.critic.remove(0);
            stats.layer_grad_norms = self.layer_grad_norms(&out.critic_sumsq);
            return Ok((stats, c, out.generator_loss.expect("a generator step"), g));
        }
        let (real, z, eps) = self.critic_batch();
        let (stats, critic_grads) = self.critic_gradients(&real, &z, &eps)?;
        let z = self.noise(self.batch);
        let (loss, generator_grads) = self.generator_gradients(&z)?;
        Ok((stats, critic_grads, loss, generator_grads))
    }

    /// n_critic critic steps, then one generator step.
    pub fn iteration(&mut self) -> Result<IterationStats, StepError> {
        let n = self.hyper.n_critic.max(1);
        let (steps, device_generator_loss) = if self.device.is_some() {
            self.device_steps(n as usize, !self.fixed_generator)?
        } else {
            let mut steps = Vec::new();
            for _ in 0..n {
                steps.push(self.critic_step()?);
            }
            (steps, None)
        };
        let mut sum = CriticStats::default();
        for s in steps {
            sum.loss += s.loss;
            sum.d_real += s.d_real;
            sum.d_fake += s.d_fake;
            sum.penalty += s.penalty;
            sum.weighted_penalty += s.weighted_penalty;
            sum.grad_norm_mean += s.grad_norm_mean;
            sum.grad_norm_std += s.grad_norm_std;
            sum.layer_grad_norms = s.layer_grad_norms;
        }
        let k = n as f64;
        let critic = CriticStats {
            loss: sum.loss / k,
            d_real: sum.d_real / k,
            d_fake: sum.d_fake / k,
            penalty: sum.penalty / k,
            weighted_penalty: sum.weighted_penalty / k,
            grad_norm_mean: sum.grad_norm_mean / k,
            grad_norm_std: sum.grad_norm_std / k,
            layer_grad_norms: sum.layer_grad_norms,
        };
        // A fixed generator is not trained; its loss is still -mean D(fake).
        let generator_loss = if self.fixed_generator {
            -critic.d_fake
        } else if let Some(loss) = device_generator_loss {
            loss
        } else {
            self.generator_step()?
        };
        if !self.fixed_generator {
            self.update_average()?;
        }
        self.step += 1;
        Ok(IterationStats {
            critic,
            generator_loss,
        })
    }

    /// Moves the averaged generator towards the generator as it is now (on a device, read back
    /// first).
    fn update_average(&mut self) -> Result<(), StepError> {
        if self.averaged.is_none() {
            return Ok(());
        }
        let read_back = match self.device {
            Some(_) => Some(self.host_nets()?.0.into_owned()),
            None => None,
        };
        let generator = read_back.as_ref().unwrap_or(&self.generator);
        if let Some(averaged) = &mut self.averaged {
            averaged.update(generator);
        }
        Ok(())
    }

    /// One iteration's draws from the run's RNG, in the CPU path's order: `critic_steps`
    /// critic batches, then (with `generator`) the generator step's noise.
    fn draws(&mut self, critic_steps: usize, generator: bool) -> Draws {
        let mut draws = Draws::default();
        for _ in 0..critic_steps {
            let (real, z, eps) = self.critic_batch();
            draws.real.extend(real);
            draws.noise.extend(z);
            draws.eps.extend(eps);
        }
        if generator {
            draws.generator_noise = self.noise(self.batch);
        }
        draws
    }

    /// `critic_steps` critic steps and (with `generator`) a generator step on the device,
    /// with one read-back: each critic step's figures (the last with its per-layer gradient
    /// norms) and the generator's loss.
    fn device_steps(
        &mut self,
        critic_steps: usize,
        generator: bool,
    ) -> Result<(Vec<CriticStats>, Option<f64>), StepError> {
        let draws = self.draws(critic_steps, generator);
        let device = self.device.as_ref().expect("on a device");
        let optimizers = [&self.opt_critic, &self.opt_generator];
        let out = device
            .iteration(self.batch, &draws, &self.hyper, optimizers, true)
            .map_err(|e| self.device_failed(e))?;
        self.opt_critic.t += out.applied[0];
        self.opt_generator.t += out.applied[1];
        if let Some((what, _)) = out.failed {
            return Err(self.non_finite(what).into());
        }
        let mut critic = out.critic;
        if let Some(last) = critic.last_mut() {
            last.layer_grad_norms = self.layer_grad_norms(&out.critic_sumsq);
        }
        Ok((critic, out.generator_loss))
    }
}

/// The figures of one shard of a critic step.
struct CriticShard {
    share: f64,
    loss: f64,
    d_real: f64,
    d_fake: f64,
    penalty: f64,
    weighted_penalty: f64,
    grad_norms: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageFolder;
    use crate::event::SampleSet;
    use crate::model::cifar::{CIFAR_NOISE, CIFAR_SIDE, CIFAR_VALUES};
    use crate::model::toy::{TOY_DIM, ToyCritic, ToyGenerator};
    use crate::train::families::{CifarD, CifarG};
    use crate::train::reference::{BenchConfig, reference};

    /// Trains `trainer` a little, then computes the gradients of one batch of `b` on one shard
    /// and on three: the figures and gradients must agree.
    fn assert_sharding_changes_nothing<G, D, const Z: usize, const X: usize>(
        trainer: &mut Trainer<G, D, Z, X>,
        b: usize,
    ) where
        G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
        D: Critic<f32, X> + BuildModule<Cpu, f32>,
    {
        // Trained a little first, so that no gradient is trivially small.
        for _ in 0..3 {
            trainer.iteration().unwrap();
        }
        let mut real = Vec::new();
        trainer.data.sample(&mut trainer.rng, b, &mut real);
        let z = trainer.noise(b);
        let eps: Vec<f32> = (0..b).map(|i| i as f32 / (b - 1) as f32).collect();
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-5 * (1.0 + x.abs());
        let same_grads = |a: &[Vec<f32>], b: &[Vec<f32>]| {
            let diff: f32 = a
                .iter()
                .flatten()
                .zip(b.iter().flatten())
                .map(|(p, q)| (p - q).powi(2))
                .sum();
            let norm: f32 = a.iter().flatten().map(|p| p * p).sum();
            assert!(norm > 0.0);
            assert!(
                diff.sqrt() <= 1e-5 * norm.sqrt(),
                "gradients differ: {diff} of {norm}"
            );
        };

        trainer.shards = Some(1);
        let (whole, whole_grads) = trainer.critic_gradients(&real, &z, &eps).unwrap();
        let (whole_g, whole_g_grads) = trainer.generator_gradients(&z).unwrap();
        trainer.shards = Some(3);
        let (split, split_grads) = trainer.critic_gradients(&real, &z, &eps).unwrap();
        let (split_g, split_g_grads) = trainer.generator_gradients(&z).unwrap();

        for (a, b) in [
            (whole.loss, split.loss),
            (whole.d_real, split.d_real),
            (whole.d_fake, split.d_fake),
            (whole.penalty, split.penalty),
            (whole.weighted_penalty, split.weighted_penalty),
            (whole.grad_norm_mean, split.grad_norm_mean),
            (whole.grad_norm_std, split.grad_norm_std),
            (whole_g, split_g),
        ] {
            assert!(
                close(a, b),
                "{whole:?} ({whole_g}) vs {split:?} ({split_g})"
            );
        }
        same_grads(&whole_grads, &split_grads);
        same_grads(&whole_g_grads, &split_g_grads);
    }

    /// Splitting the batch into shards changes the order of some sums, nothing else.
    #[test]
    fn sharded_gradients_match_the_whole_batch() {
        type Toy = Trainer<ToyGenerator<16, f32>, ToyCritic<16, f32>, TOY_DIM, TOY_DIM>;
        let mut config = reference(BenchConfig::Toy, 1, 7);
        config.batch = 10;
        config.hyper.lambda = 10.0;
        let data = Dataset::load(&config.data).unwrap();
        assert_sharding_changes_nothing(&mut Toy::new(&config, data), 10);
    }

    /// The CIFAR-10 generator's batch norm takes its statistics over the whole batch, however
    /// the critic's work is sharded.
    #[test]
    fn batch_norm_sees_the_whole_batch_whatever_the_shards() {
        type Cifar = Trainer<CifarG, CifarD, CIFAR_NOISE, CIFAR_VALUES>;
        let mut config = reference(BenchConfig::Cifar32, 1, 7);
        config.batch = 6;
        let data = Dataset::Folder(ImageFolder::random(CIFAR_SIDE, 12, 7));
        let mut trainer = Cifar::new(&config, data);
        assert_sharding_changes_nothing(&mut trainer, 6);
    }

    /// With a fixed generator the critic trains against real + N(0, I): the generator's
    /// weights never change, and the fakes a critic step sees are its real batch plus the
    /// noise it drew.
    #[test]
    fn a_fixed_generator_is_the_real_batch_plus_noise_and_never_trains() {
        type Toy = Trainer<ToyGenerator<16, f32>, ToyCritic<16, f32>, TOY_DIM, TOY_DIM>;
        let mut config = reference(BenchConfig::Toy, 1, 3);
        config.batch = 8;
        config.fixed_generator = Some(crate::config::FixedGenerator::Noise);
        let data = Dataset::load(&config.data).unwrap();
        let mut trainer = Toy::new(&config, data);
        let generator_before = read_params(&trainer.generator);
        let critic_before = read_params(&trainer.critic);
        for _ in 0..3 {
            trainer.iteration().unwrap();
        }
        assert_eq!(read_params(&trainer.generator), generator_before);
        assert_ne!(read_params(&trainer.critic), critic_before);

        // D(fake) of a critic step is the critic's mean on real + noise of that step's draws.
        let mut rng = trainer.rng.clone();
        let mut real = Vec::new();
        trainer.data.sample(&mut rng, 8, &mut real);
        let (real_again, z, eps) = trainer.critic_batch();
        assert_eq!(real, real_again);
        let (stats, _) = trainer.critic_gradients(&real, &z, &eps).unwrap();
        let fakes: Vec<f32> = real.iter().zip(&z).map(|(r, e)| r + e).collect();
        let expected = trainer.critic_values(&fakes).iter().sum::<f32>() as f64 / 8.0;
        assert!(
            (stats.d_fake - expected).abs() < 1e-5,
            "{} vs {expected}",
            stats.d_fake
        );
        // The pictures' fakes are the fixed real points plus the fixed noise.
        let SampleSet::Points {
            generated, real, ..
        } = trainer.samples()
        else {
            panic!("toy data gives points");
        };
        let noise = &trainer.sample_noise;
        for (i, (g, r)) in generated.iter().zip(&real).enumerate() {
            assert_eq!(g[0], r[0] + noise[2 * i]);
            assert_eq!(g[1], r[1] + noise[2 * i + 1]);
        }
    }
}
