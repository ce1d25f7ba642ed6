//! One WGAN training run in memory: the two nets, their optimizers, the data and the RNG.

use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use super::optim::Optimizer;
use super::penalty::{critic_objective, interpolate};
use crate::checkpoint::{Checkpoint, NamedTensor, OptimizerState};
use crate::config::{Hyper, PenaltyMode, TrainConfig};
use crate::data::Dataset;
use crate::event::{Histogram, LayerStats, SampleSet};
use crate::model::params::{
    load_named_params, named_params, read_params, update_params, visit_params,
};
use crate::model::{Batch, Critic, Generator};

/// Bins of the critic weight histogram.
pub const HISTOGRAM_BINS: usize = 41;
/// Images in the fixed-noise sample grid (8x8).
pub const SAMPLE_IMAGES: usize = 64;
/// Points in the fixed-noise toy scatter.
pub const SAMPLE_POINTS: usize = 512;
/// Lattice of the toy critic surface, and its half-width in data space.
pub const SURFACE_GRID: usize = 64;
pub const SURFACE_EXTENT: f32 = 2.5;

/// A loss or gradient that is NaN or infinite; the update it came from was not applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what} is not finite at step {step}; the update was not applied")]
pub struct NonFinite {
    pub step: u64,
    pub what: String,
}

/// Figures of one critic step.
#[derive(Clone, Debug, Default)]
pub struct CriticStats {
    pub loss: f64,
    pub d_real: f64,
    pub d_fake: f64,
    pub penalty: f64,
    pub weighted_penalty: f64,
    pub grad_norm_mean: f64,
    pub grad_norm_std: f64,
    /// (layer, L2 norm of the loss gradient w.r.t. its weight)
    pub layer_grad_norms: Vec<(&'static str, f64)>,
}

/// Figures of one generator iteration (n_critic critic steps and one generator step).
#[derive(Clone, Debug)]
pub struct IterationStats {
    /// Means over the critic steps, except `layer_grad_norms`: those of the last one.
    pub critic: CriticStats,
    pub generator_loss: f64,
}

pub struct Trainer<G, D, const Z: usize, const X: usize> {
    dev: Cpu,
    pub generator: G,
    pub critic: D,
    pub opt_generator: Optimizer<f32>,
    pub opt_critic: Optimizer<f32>,
    pub hyper: Hyper,
    pub batch: usize,
    data: Dataset,
    rng: ChaCha8Rng,
    /// Generator steps done.
    pub step: u64,
    /// Fixed noise and real samples for the pictures, drawn once from their own stream.
    sample_noise: Vec<f32>,
    sample_real: Vec<f32>,
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
        let mut sample_real = Vec::with_capacity(count * X);
        data.sample(&mut picture_rng, count, &mut sample_real);
        Self {
            opt_generator: Optimizer::new(kind, hyper.lr_generator),
            opt_critic: Optimizer::new(kind, hyper.lr_critic),
            dev,
            generator,
            critic,
            hyper,
            batch: config.batch,
            data,
            rng: ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(1)),
            step: 0,
            sample_noise,
            sample_real,
        }
    }

    fn batch_tensor<const N: usize>(&self, values: Vec<f32>) -> Batch<N, f32> {
        let n = values.len() / N;
        self.dev.tensor_from_vec(values, (n, Const::<N>))
    }

    fn noise(&mut self, n: usize) -> Batch<Z, f32> {
        let values = (0..n * Z)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect();
        self.batch_tensor(values)
    }

    /// Changes hyperparameters; a new penalty mode that uses another optimizer starts both
    /// optimizers afresh (Adam moments mean nothing to RMSprop).
    pub fn set_hyper(&mut self, hyper: Hyper) {
        let kind = hyper.penalty.optimizer();
        if kind != self.opt_critic.kind {
            self.opt_critic = Optimizer::new(kind, hyper.lr_critic);
            self.opt_generator = Optimizer::new(kind, hyper.lr_generator);
        }
        self.opt_critic.lr = hyper.lr_critic;
        self.opt_generator.lr = hyper.lr_generator;
        self.hyper = hyper;
    }

    /// One critic update on a fresh real batch and a fresh fake batch.
    pub fn critic_step(&mut self) -> Result<CriticStats, NonFinite> {
        let b = self.batch;
        let mut real = Vec::with_capacity(b * X);
        self.data.sample(&mut self.rng, b, &mut real);
        let z = self.noise(b);
        let fake = self.generator.generate(z);
        let fake_v = fake.as_vec();
        let unit = Uniform::new(0.0f32, 1.0);
        let eps: Vec<f32> = (0..b).map(|_| unit.sample(&mut self.rng)).collect();
        let x_hat = self.batch_tensor::<X>(interpolate(&real, &fake_v, &eps, X));
        let real = self.batch_tensor::<X>(real);

        let objective = critic_objective(
            &self.critic,
            real,
            fake,
            &x_hat,
            self.hyper.lambda as f32,
            self.hyper.penalty,
        );
        let loss = objective.loss.array() as f64;
        let what = |what: &str| NonFinite {
            step: self.step + 1,
            what: what.to_string(),
        };
        if !finite(loss) {
            return Err(what("the critic loss"));
        }
        let grads = objective.loss.backward();
        if !all_finite(&self.critic, &grads) {
            return Err(what("a critic gradient"));
        }
        let layer_grad_norms = self
            .critic
            .layer_weights()
            .into_iter()
            .map(|(name, w)| (name, l2(&grads.get(&w).as_vec())))
            .collect();
        self.opt_critic.step(&mut self.critic, &grads);
        if self.hyper.penalty == PenaltyMode::Clip {
            let c = self.hyper.clip as f32;
            update_params(&mut self.critic, None, |_, p, _| {
                p.iter_mut().for_each(|w| *w = w.clamp(-c, c))
            });
        }
        let norms: Vec<f64> = objective.grad_norms.iter().map(|&n| n as f64).collect();
        let (grad_norm_mean, grad_norm_std) = mean_std(&norms);
        Ok(CriticStats {
            loss,
            d_real: objective.d_real as f64,
            d_fake: objective.d_fake as f64,
            penalty: objective.penalty as f64,
            weighted_penalty: objective.weighted_penalty as f64,
            grad_norm_mean,
            grad_norm_std,
            layer_grad_norms,
        })
    }

    /// One generator update: minimise -mean D(G(z)).
    pub fn generator_step(&mut self) -> Result<f64, NonFinite> {
        let z = self.noise(self.batch);
        let grads = self.generator.alloc_grads();
        let fake = self.generator.generate(z.traced(grads));
        let loss = -self.critic.score(fake).mean();
        let loss_v = loss.array() as f64;
        let what = |what: &str| NonFinite {
            step: self.step + 1,
            what: what.to_string(),
        };
        if !finite(loss_v) {
            return Err(what("the generator loss"));
        }
        let grads = loss.backward();
        if !all_finite(&self.generator, &grads) {
            return Err(what("a generator gradient"));
        }
        self.opt_generator.step(&mut self.generator, &grads);
        Ok(loss_v)
    }

    /// n_critic critic steps, then one generator step.
    pub fn iteration(&mut self) -> Result<IterationStats, NonFinite> {
        let n = self.hyper.n_critic.max(1);
        let mut sum = CriticStats::default();
        for _ in 0..n {
            let s = self.critic_step()?;
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
        let generator_loss = self.generator_step()?;
        self.step += 1;
        Ok(IterationStats {
            critic,
            generator_loss,
        })
    }

    /// Largest |weight| of each critic layer, and a histogram of all critic parameters over
    /// [-m, m], m the largest |parameter| (so clipping shows as mass at the edges).
    pub fn critic_weight_stats(&self) -> (Vec<(&'static str, f64)>, Histogram) {
        let max_abs = self
            .critic
            .layer_weights()
            .into_iter()
            .map(|(name, w)| {
                (
                    name,
                    w.as_vec()
                        .iter()
                        .fold(0.0f64, |m, &x| m.max(x.abs() as f64)),
                )
            })
            .collect();
        let params = read_params(&self.critic);
        let m = params
            .iter()
            .flatten()
            .fold(0.0f32, |m, &x| m.max(x.abs()))
            .max(f32::MIN_POSITIVE);
        let mut counts = vec![0u64; HISTOGRAM_BINS];
        for &x in params.iter().flatten() {
            let bin = ((x + m) / (2.0 * m) * HISTOGRAM_BINS as f32) as usize;
            counts[bin.min(HISTOGRAM_BINS - 1)] += 1;
        }
        (
            max_abs,
            Histogram {
                lo: -m as f64,
                hi: m as f64,
                counts,
            },
        )
    }

    /// Per-layer figures for the metrics: last critic step's gradient norms with max |w|.
    pub fn layer_stats(&self, grad_norms: &[(&'static str, f64)]) -> (Vec<LayerStats>, Histogram) {
        let (max_abs, hist) = self.critic_weight_stats();
        let layers = grad_norms
            .iter()
            .zip(max_abs)
            .map(|(&(name, grad_norm), (_, max_abs_weight))| LayerStats {
                name: name.to_string(),
                grad_norm,
                max_abs_weight,
            })
            .collect();
        (layers, hist)
    }

    /// The whole training state, for a checkpoint. `config` is the run's; the hyperparameters
    /// in it are replaced by the live ones.
    pub fn checkpoint(&self, config: &TrainConfig, wall_s: f64) -> Checkpoint {
        let opt = |o: &Optimizer<f32>| OptimizerState {
            kind: o.kind,
            lr: o.lr,
            t: o.t,
            m: o.m.clone(),
            v: o.v.clone(),
        };
        Checkpoint {
            step: self.step,
            wall_s,
            config: TrainConfig {
                hyper: self.hyper.clone(),
                ..config.clone()
            },
            generator: named_params(&self.generator),
            critic: named_params(&self.critic),
            opt_generator: opt(&self.opt_generator),
            opt_critic: opt(&self.opt_critic),
            rng: self.rng.clone(),
        }
    }

    /// Puts a checkpoint's state into this trainer. A checkpoint of another model (names or
    /// shapes differ) is refused; after an error the trainer is half restored and must be
    /// dropped.
    pub fn restore(&mut self, ck: &Checkpoint) -> Result<(), String> {
        load_named_params(&mut self.generator, &ck.generator)
            .map_err(|e| format!("generator: {e}"))?;
        load_named_params(&mut self.critic, &ck.critic).map_err(|e| format!("critic: {e}"))?;
        let opt_generator = optimizer(
            &ck.opt_generator,
            &ck.generator,
            &named_params(&self.generator),
        )?;
        let opt_critic = optimizer(&ck.opt_critic, &ck.critic, &named_params(&self.critic))?;
        self.opt_generator = opt_generator;
        self.opt_critic = opt_critic;
        self.rng = ck.rng.clone();
        self.step = ck.step;
        self.hyper = ck.config.hyper.clone();
        Ok(())
    }

    /// What the generator makes of the fixed noise (and, for 2-d data, the critic's surface).
    pub fn samples(&self) -> SampleSet {
        let z = self.batch_tensor::<Z>(self.sample_noise.clone());
        let generated = self.generator.generate(z).as_vec();
        if X == 2 {
            let pairs = |v: &[f32]| v.chunks(2).map(|p| [p[0], p[1]]).collect::<Vec<_>>();
            let g = SURFACE_GRID;
            let cell = 2.0 * SURFACE_EXTENT / (g - 1) as f32;
            let lattice: Vec<f32> = (0..g * g)
                .flat_map(|i| {
                    let (row, col) = (i / g, i % g);
                    [
                        -SURFACE_EXTENT + col as f32 * cell,
                        SURFACE_EXTENT - row as f32 * cell,
                    ]
                })
                .collect();
            let critic = self.critic.score(self.batch_tensor::<X>(lattice)).as_vec();
            SampleSet::Points {
                step: self.step,
                generated: pairs(&generated),
                real: pairs(&self.sample_real),
                extent: SURFACE_EXTENT,
                grid: g,
                critic,
            }
        } else {
            SampleSet::Images {
                step: self.step,
                side: (X as f64).sqrt().round() as usize,
                count: SAMPLE_IMAGES,
                generated,
                real: self.sample_real.clone(),
            }
        }
    }

    /// Draws `n` samples from the generator with fresh noise from `seed` (flattened rows).
    pub fn draw(&self, n: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let noise = (0..n * Z)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        self.generator
            .generate(self.batch_tensor::<Z>(noise))
            .as_vec()
    }
}

fn all_finite<M: TensorCollection<f32, Cpu>>(model: &M, grads: &Gradients<f32, Cpu>) -> bool {
    let mut ok = true;
    visit_params(model, Some(grads), |_, _, g| {
        ok &= g.unwrap().iter().all(|x| x.is_finite())
    });
    ok
}

fn l2(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt()
}

pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// An optimizer from saved state whose moments follow `saved`'s tensor order, reordered to the
/// model's order (`model`).
fn optimizer(
    state: &OptimizerState,
    saved: &[NamedTensor],
    model: &[NamedTensor],
) -> Result<Optimizer<f32>, String> {
    let reorder = |moments: &[Vec<f32>]| -> Result<Vec<Vec<f32>>, String> {
        if moments.is_empty() {
            return Ok(Vec::new());
        }
        model
            .iter()
            .map(|t| {
                saved
                    .iter()
                    .position(|s| s.name == t.name)
                    .and_then(|i| moments.get(i))
                    .filter(|m| m.len() == t.values.len())
                    .cloned()
                    .ok_or_else(|| format!("optimizer state for {} is missing", t.name))
            })
            .collect()
    };
    Ok(Optimizer {
        kind: state.kind,
        lr: state.lr,
        t: state.t,
        m: reorder(&state.m)?,
        v: reorder(&state.v)?,
    })
}
