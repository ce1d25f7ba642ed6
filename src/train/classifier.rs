//! Training the digit classifier of the MNIST quality scores (`wgangp-tui train-classifier`):
//! Adam on the cross-entropy, batches of [`BATCH`], every training digit moved by a random
//! small rotation, scaling and shift each time it is seen (10,000 digits are few for a
//! convolutional net: without it the net learns them by heart), dropout on the features, and a
//! learning rate falling linearly to a tenth over the epochs.

use dfdx::prelude::*;
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

use super::optim::Optimizer;
use crate::config::OptimizerKind;
use crate::data::labelled::Digits;
use crate::model::classifier::{CLASSES, DigitClassifier, FEATURES};
use crate::model::mnist::{MNIST_PIXELS, MNIST_SIDE};
use crate::model::params::take_grads;

pub const BATCH: usize = 64;
/// Share of the features dropped in each training pass.
const DROPOUT: f32 = 0.3;
const BETAS: [f64; 2] = [0.9, 0.999];

#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub epochs: usize,
    pub lr: f64,
    pub seed: u64,
}

/// Trains a classifier from scratch on `digits`; `after_epoch(epoch, mean loss, &model)` is
/// called after each epoch (1-based).
pub fn train(
    digits: &Digits,
    schedule: Schedule,
    mut after_epoch: impl FnMut(usize, f64, &DigitClassifier<f32, Cpu>),
) -> DigitClassifier<f32, Cpu> {
    let dev = Cpu::seed_from_u64(schedule.seed);
    let mut model = DigitClassifier::<f32, Cpu>::build(&dev);
    let mut optimizer = Optimizer::new(OptimizerKind::Adam, schedule.lr, BETAS);
    let mut rng = ChaCha8Rng::seed_from_u64(schedule.seed.wrapping_add(1));
    let mut order: Vec<usize> = (0..digits.len()).collect();
    let steps = schedule.epochs * digits.len().div_ceil(BATCH);
    let mut step = 0;
    for epoch in 1..=schedule.epochs {
        order.shuffle(&mut rng);
        let (mut loss_sum, mut batches) = (0.0, 0);
        for chunk in order.chunks(BATCH) {
            let n = chunk.len();
            let mut x = Vec::with_capacity(n * MNIST_PIXELS);
            let mut targets = vec![0.0f32; n * CLASSES];
            for (row, &i) in chunk.iter().enumerate() {
                x.extend(jitter(digits.picture(i), &mut rng));
                targets[row * CLASSES + digits.labels[i] as usize] = 1.0;
            }
            let keep = 1.0 / (1.0 - DROPOUT);
            let mask: Vec<f32> = (0..n * FEATURES)
                .map(|_| {
                    if rng.r#gen::<f32>() < DROPOUT {
                        0.0
                    } else {
                        keep
                    }
                })
                .collect();
            let x = dev.tensor_from_vec(x, (n, Const::<MNIST_PIXELS>));
            let targets = dev.tensor_from_vec(targets, (n, Const::<CLASSES>));
            let mask = dev.tensor_from_vec(mask, (n, Const::<FEATURES>));
            let logits = model
                .classify(x.traced(model.alloc_grads()), Some(mask))
                .logits;
            let loss = cross_entropy_with_logits_loss(logits, targets);
            loss_sum += loss.array() as f64;
            batches += 1;
            let grads = take_grads(&model, loss.backward());
            optimizer.lr = schedule.lr * (1.0 - 0.9 * step as f64 / steps as f64);
            optimizer.step(&mut model, &grads);
            step += 1;
        }
        after_epoch(epoch, loss_sum / batches as f64, &model);
    }
    model
}

/// `picture` turned by up to 12 degrees, scaled by 0.9 to 1.1 and shifted by up to 2 pixels
/// each way, about its centre, sampled bilinearly (outside the picture: background).
fn jitter(picture: &[f32], rng: &mut ChaCha8Rng) -> Vec<f32> {
    let angle = rng.gen_range(-12f64..12.0).to_radians();
    let scale = rng.gen_range(0.9..1.1);
    let (dx, dy) = (rng.gen_range(-2.0..2.0), rng.gen_range(-2.0..2.0));
    let (sin, cos) = angle.sin_cos();
    let centre = (MNIST_SIDE as f64 - 1.0) / 2.0;
    let at = |x: isize, y: isize| {
        let inside = (0..MNIST_SIDE as isize).contains(&x) && (0..MNIST_SIDE as isize).contains(&y);
        if inside {
            picture[y as usize * MNIST_SIDE + x as usize] as f64
        } else {
            0.0
        }
    };
    let mut out = Vec::with_capacity(MNIST_PIXELS);
    for y in 0..MNIST_SIDE {
        for x in 0..MNIST_SIDE {
            // The source of the output pixel: the inverse of the move.
            let (u, v) = (x as f64 - centre - dx, y as f64 - centre - dy);
            let sx = (cos * u + sin * v) / scale + centre;
            let sy = (-sin * u + cos * v) / scale + centre;
            let (x0, y0) = (sx.floor() as isize, sy.floor() as isize);
            let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
            let value = at(x0, y0) * (1.0 - fx) * (1.0 - fy)
                + at(x0 + 1, y0) * fx * (1.0 - fy)
                + at(x0, y0 + 1) * (1.0 - fx) * fy
                + at(x0 + 1, y0 + 1) * fx * fy;
            out.push(value as f32);
        }
    }
    out
}
