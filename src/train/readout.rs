//! What a trainer shows of itself, read from its nets (on the device, read back first): the
//! critic's weight and gradient statistics per layer, the activation-gradient norms, and the
//! fixed-noise samples (with the toy critic's value surface).

use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::Trainer;
use super::trainer::{
    ACTIVATION_NORM_POINTS, HISTOGRAM_BINS, SAMPLE_IMAGES, SURFACE_EXTENT, SURFACE_GRID,
};
use crate::event::{Histogram, LayerStats, SampleSet};
use crate::model::params::read_params;
use crate::model::{Critic, Generator};

impl<G, D, const Z: usize, const X: usize> Trainer<G, D, Z, X>
where
    G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
{
    /// Each critic layer's weight-gradient norm, from the sums of squares of the tensors.
    pub(super) fn layer_grad_norms(&self, sumsq: &[f64]) -> Vec<(&'static str, f64)> {
        let layers = self.critic_layers.iter();
        layers.map(|&(name, i)| (name, sumsq[i].sqrt())).collect()
    }

    /// Largest |weight| of each critic layer, and a histogram of all critic parameters over
    /// [-m, m], m the largest |parameter| (so clipping shows as mass at the edges).
    pub fn critic_weight_stats(&self) -> (Vec<(&'static str, f64)>, Histogram) {
        Self::weight_stats(self.nets().1.as_ref())
    }

    /// [`Self::critic_weight_stats`] of `critic`.
    fn weight_stats(critic: &D) -> (Vec<(&'static str, f64)>, Histogram) {
        let max_abs = critic
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
        let params = read_params(critic);
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

    /// Per-layer figures for the metrics: last critic step's gradient norms with max |w|, and,
    /// where the critic records them, its input-gradient norms (see
    /// [`Self::activation_gradient_norms`]).
    pub fn layer_stats(&self, grad_norms: &[(&'static str, f64)]) -> (Vec<LayerStats>, Histogram) {
        // The nets read once (from the device, where training runs there) for both figures.
        let (generator, critic) = self.nets();
        let (max_abs, hist) = Self::weight_stats(&critic);
        let mut input_norms = self.activation_norms(&generator, &critic).into_iter();
        let layers = grad_norms
            .iter()
            .zip(max_abs)
            .map(|(&(name, grad_norm), (_, max_abs_weight))| LayerStats {
                name: name.to_string(),
                grad_norm,
                max_abs_weight,
                input_grad_norm: input_norms.next(),
            })
            .collect();
        (layers, hist)
    }

    /// The fakes of the fixed noise: the generator's samples, or with a fixed generator the
    /// fixed real points plus that noise.
    fn fixed_fakes(&self, generator: &G, n: usize) -> Vec<f32> {
        let noise = self.sample_noise[..n * Z].to_vec();
        if self.fixed_generator {
            self.sample_real
                .iter()
                .zip(&noise)
                .map(|(r, e)| r + e)
                .collect()
        } else {
            generator.generate(self.batch_tensor::<Z>(noise)).as_vec()
        }
    }

    /// The norm of the gradient of the Wasserstein part of the critic loss, mean D(fake) -
    /// mean D(real), w.r.t. each critic layer's input (the data first), on
    /// [`ACTIVATION_NORM_POINTS`] of the fixed real points and as many fixed fakes. Empty for a
    /// critic that does not record it.
    pub fn activation_gradient_norms(&self) -> Vec<f64> {
        let (generator, critic) = self.nets();
        self.activation_norms(&generator, &critic)
    }

    /// [`Self::activation_gradient_norms`] of these nets.
    fn activation_norms(&self, generator: &G, critic: &D) -> Vec<f64> {
        if !D::ACTIVATION_NORMS {
            return Vec::new();
        }
        let n = ACTIVATION_NORM_POINTS.min(self.sample_noise.len() / Z);
        let mut x = self.sample_real[..n * X].to_vec();
        x.extend(self.fixed_fakes(generator, n));
        let share = 1.0 / n as f32;
        let d_score: Vec<f32> = (0..2 * n)
            .map(|i| if i < n { -share } else { share })
            .collect();
        critic.activation_gradient_norms(&self.batch_tensor::<X>(x), &d_score)
    }

    /// What the generator makes of the fixed noise (and, for 2-d data, the critic's surface):
    /// the averaged generator's samples where there is one, with the raw generator's beside.
    pub fn samples(&self) -> SampleSet {
        let (generator, critic) = self.nets();
        let count = self.sample_noise.len() / Z;
        let raw = self.fixed_fakes(&generator, count);
        let (generated, raw) = match &self.averaged {
            Some(averaged) => (self.fixed_fakes(&averaged.net, count), Some(raw)),
            None => (raw, None),
        };
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
            let critic = critic.score(self.batch_tensor::<X>(lattice)).as_vec();
            SampleSet::Points {
                step: self.step,
                generated: pairs(&generated),
                real: pairs(&self.sample_real),
                extent: SURFACE_EXTENT,
                grid: g,
                critic,
                raw: raw.as_deref().map(pairs),
            }
        } else {
            let channels = self.data.channels();
            let unit = |v: &[f32]| v.iter().map(|&v| self.data.to_unit(v)).collect();
            SampleSet::Images {
                step: self.step,
                side: ((X / channels) as f64).sqrt().round() as usize,
                channels,
                count: SAMPLE_IMAGES,
                generated: unit(&generated),
                real: unit(&self.sample_real),
                raw: raw.as_deref().map(unit),
            }
        }
    }

    /// The critic's value at each of `points` (rows of `X` values, one after another).
    pub fn critic_values(&self, points: &[f32]) -> Vec<f32> {
        self.nets()
            .1
            .score(self.batch_tensor::<X>(points.to_vec()))
            .as_vec()
    }

    /// Every value of the critic's weight tensors (biases left out).
    pub fn critic_weights(&self) -> Vec<f32> {
        self.nets()
            .1
            .layer_weights()
            .into_iter()
            .flat_map(|(_, w)| w.as_vec())
            .collect()
    }

    /// Draws `n` samples from the generator (the averaged one where there is one) with fresh
    /// noise from `seed` (flattened rows).
    pub fn draw(&self, n: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let noise = (0..n * Z)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        match &self.averaged {
            Some(averaged) => averaged.net.generate(self.batch_tensor::<Z>(noise)),
            None => self.nets().0.generate(self.batch_tensor::<Z>(noise)),
        }
        .as_vec()
    }
}
