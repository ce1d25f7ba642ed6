//! One probe batch's gradients in f64: the nets, weights and draws of
//! [`Trainer::probe_gradients`] on the CPU, in double precision. It is the reference that
//! `gpu-check` measures both f32 paths against, the CPU's and a device's. Between two f32
//! paths a pre-activation within rounding of zero can fall on different sides of a ReLU, and
//! then they differ by about 1e-3 at the reference batches, each as far from this as the other.

use dfdx::prelude::*;

use super::Trainer;
use super::families::Exact;
use super::penalty::{critic_objective, interpolate};
use crate::model::ops::layer::with_frozen_weights;
use crate::model::params::read_grads;
use crate::model::{Critic, Generator};

impl<G, D, const Z: usize, const X: usize> Trainer<G, D, Z, X>
where
    G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
    Exact<G>: Generator<f64, Z, X>,
    Exact<D>: Critic<f64, X>,
{
    /// The critic step's and the generator step's gradients that `probe_gradients` would
    /// compute next (the same draws), in f64. For a trainer on the CPU.
    pub fn probe_exact(&mut self) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        assert!(
            self.device_name().is_none(),
            "probe_exact runs on the CPU path"
        );
        let dev = Cpu::default();
        let generator: Exact<G> = self.generator.to_dtype::<f64>();
        let critic: Exact<D> = self.critic.to_dtype::<f64>();
        let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let rows = |v: Vec<f64>, width: usize| {
            let n = v.len() / width;
            dev.tensor_from_vec(v, (n, width))
        };

        let (real, z, eps) = self.critic_batch();
        let (real, z, eps) = (wide(&real), wide(&z), wide(&eps));
        let fake = if self.fixed_generator {
            real.iter().zip(&z).map(|(r, e)| r + e).collect()
        } else {
            let z = rows(z, Z).realize::<(usize, Const<Z>)>();
            generator.generate(z).as_vec()
        };
        let x_hat = interpolate(&real, &fake, &eps, X);
        let batch = |v: Vec<f64>| rows(v, X).realize::<(usize, Const<X>)>();
        let objective = critic_objective(
            &critic,
            batch(real),
            batch(fake),
            &batch(x_hat),
            self.hyper.lambda,
            self.hyper.penalty,
        );
        let critic_grads = read_grads(&critic, &objective.loss.backward());

        let z = wide(&self.noise(self.batch));
        let z = rows(z, Z).realize::<(usize, Const<Z>)>();
        let fake = generator.generate(z.traced(generator.alloc_grads()));
        let loss = -with_frozen_weights(|| critic.score(fake)).mean();
        let generator_grads = read_grads(&generator, &loss.backward());
        let narrow = |v: Vec<Vec<f64>>| -> Vec<Vec<f32>> {
            let tensors = v.into_iter();
            tensors
                .map(|t| t.into_iter().map(|x| x as f32).collect())
                .collect()
        };
        (narrow(critic_grads), narrow(generator_grads))
    }
}
