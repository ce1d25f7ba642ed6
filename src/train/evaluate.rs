//! The evaluations of `--eval-every`: the critic's cost on held-out data beside its cost on
//! training data (the paper's `dev disc cost`: a critic that memorises the training data
//! scores it above data it never saw), and the generator's quality measures: the toy
//! mixtures' measures, or the pictures' sliced Wasserstein distance from the held-out ones
//! (and for digits their Frechet distance and classifier score).

use std::time::Instant;

use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{StepError, Trainer};
use crate::data::Dataset;
use crate::event::{EvalRecord, SwdScores};
use crate::model::{Batch, Critic, Generator};
use crate::quality::swd::{self, Pictures};
use crate::quality::{self, toy};

/// Real samples each critic cost is taken on (fewer where fewer pictures are held out).
pub const EVAL_SAMPLES: usize = 256;
/// Points the toy measures are taken on.
pub const TOY_POINTS: usize = 2500;
/// Samples per forward pass.
const CHUNK: usize = 64;

impl<G, D, const Z: usize, const X: usize> Trainer<G, D, Z, X>
where
    G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
{
    /// Evaluates the nets as they are now. Its draws come from a stream of their own, set by
    /// the seed and the step, so that evaluating changes nothing in training and a resumed run
    /// evaluates as the uninterrupted one.
    pub fn evaluate(&self) -> Result<EvalRecord, StepError> {
        let started = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_add(4));
        rng.set_stream(self.step);
        let (generator, critic) = self.host_nets()?;
        let mut held_out = Vec::new();
        match &self.held_out {
            Some(toy @ Dataset::Toy(_)) => toy.sample(&mut rng, EVAL_SAMPLES, &mut held_out),
            // The same held-out pictures each time, so that the curve compares like with like.
            Some(pictures) => held_out = pictures.first_pictures(EVAL_SAMPLES),
            None => {}
        }
        let n = if held_out.is_empty() {
            EVAL_SAMPLES
        } else {
            held_out.len() / X
        };
        let mut train = Vec::with_capacity(n * X);
        self.data.sample(&mut rng, n, &mut train);
        let fakes = self.forward(&noise::<Z>(&mut rng, n), |z| generator.generate(z).as_vec());
        let mean_score = |x: &[f32]| {
            let scores = self.forward(x, |x| critic.score(x).as_vec());
            scores.iter().map(|&s| s as f64).sum::<f64>() / scores.len() as f64
        };
        let d_fake = mean_score(&fakes);
        let cost = |real: &[f32]| d_fake - mean_score(real);
        let held_out_critic_cost = (!held_out.is_empty()).then(|| cost(&held_out));
        let train_critic_cost = cost(&train);

        let (mut swd, mut swd_raw, mut digits, mut digits_raw) = (None, None, None, None);
        if X != 2 && !held_out.is_empty() {
            let side = ((X / self.data.channels()) as f64).sqrt().round() as usize;
            let swd_of = |fakes: &[f32]| {
                let pictures = |values| Pictures {
                    values,
                    side,
                    channels: self.data.channels(),
                };
                let levels = swd::swd(pictures(fakes), pictures(&held_out), self.seed);
                let mean = levels.iter().map(|l| l.1).sum::<f64>() / levels.len() as f64;
                SwdScores {
                    levels,
                    mean,
                    pictures: n,
                }
            };
            // IDX pictures are taken to be handwritten digits.
            let is_digits = matches!(self.data, Dataset::Images(_));
            let digits_of =
                |fakes: &[f32]| is_digits.then(|| quality::digits::scores(fakes, &held_out));
            match &self.averaged {
                Some(averaged) => {
                    let z = noise::<Z>(&mut rng, n);
                    let averaged_fakes = self.forward(&z, |z| averaged.net.generate(z).as_vec());
                    swd = Some(swd_of(&averaged_fakes));
                    digits = digits_of(&averaged_fakes);
                    swd_raw = Some(swd_of(&fakes));
                    digits_raw = digits_of(&fakes);
                }
                None => {
                    swd = Some(swd_of(&fakes));
                    digits = digits_of(&fakes);
                }
            }
        }
        let (mut toy, mut toy_raw) = (None, None);
        if let Dataset::Toy(set) = self.data {
            let z = noise::<Z>(&mut rng, TOY_POINTS);
            let raw = toy::score(set, &self.forward(&z, |z| generator.generate(z).as_vec()));
            match &self.averaged {
                Some(averaged) => {
                    toy = toy::score(
                        set,
                        &self.forward(&z, |z| averaged.net.generate(z).as_vec()),
                    );
                    toy_raw = raw;
                }
                None => toy = raw,
            }
        }
        Ok(EvalRecord {
            step: self.step,
            held_out_critic_cost,
            train_critic_cost,
            samples: n,
            toy,
            toy_raw,
            swd,
            swd_raw,
            digits,
            digits_raw,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// `f` on the rows of `N` values in `input`, [`CHUNK`] rows at a time, the outputs one
    /// after another.
    fn forward<const N: usize>(
        &self,
        input: &[f32],
        f: impl Fn(Batch<N, f32>) -> Vec<f32>,
    ) -> Vec<f32> {
        input
            .chunks(CHUNK * N)
            .flat_map(|rows| f(self.batch_tensor::<N>(rows.to_vec())))
            .collect()
    }
}

/// `n` noise vectors of `Z` values from `rng`, one after another.
fn noise<const Z: usize>(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n * Z).map(|_| StandardNormal.sample(rng)).collect()
}
