//! The per-channel normalisation (batch norm with batch statistics, and GroupNorm with one
//! group per channel) against naive f64 loops, and its gradients against central finite
//! differences.

mod common;

use common::random_in;
use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use wgangp_tui::model::ops::norm::normalize;

const C: usize = 3;

/// The definition, loop by loop: each group's each channel to mean 0, variance 1 (biased),
/// then times gamma plus beta.
fn naive(x: &[f64], groups: usize, gamma: &[f64], beta: &[f64], eps: f64) -> Vec<f64> {
    let per = x.len() / C / groups;
    let mut out = vec![0.0; x.len()];
    for g in 0..groups {
        for c in 0..C {
            let at = |r: usize| ((g * per + r) * C) + c;
            let mean = (0..per).map(|r| x[at(r)]).sum::<f64>() / per as f64;
            let var = (0..per).map(|r| (x[at(r)] - mean).powi(2)).sum::<f64>() / per as f64;
            for r in 0..per {
                out[at(r)] = gamma[c] * (x[at(r)] - mean) / (var + eps).sqrt() + beta[c];
            }
        }
    }
    out
}

/// sum(weights * normalize(...)) and its gradients w.r.t. x, gamma and beta.
fn objective(
    x: &[f64],
    groups: usize,
    gamma: &[f64],
    beta: &[f64],
    weights: &[f64],
) -> (f64, [Vec<f64>; 3]) {
    let dev = Cpu::default();
    let rows = x.len() / C;
    let xt = dev.tensor_from_vec(x.to_vec(), (rows, Const::<C>));
    let gt = dev.tensor_from_vec(gamma.to_vec(), (Const::<C>,));
    let bt = dev.tensor_from_vec(beta.to_vec(), (Const::<C>,));
    let wt = dev.tensor_from_vec(weights.to_vec(), (rows, Const::<C>));
    let y = normalize(
        xt.clone().leaky_traced(),
        groups,
        gt.clone().leaky_traced(),
        bt.clone().leaky_traced(),
        1e-5,
    );
    let loss = (y * wt).sum::<Rank0, _>();
    let value = loss.array();
    let grads = loss.backward();
    (
        value,
        [
            grads.get(&xt).as_vec(),
            grads.get(&gt).as_vec(),
            grads.get(&bt).as_vec(),
        ],
    )
}

#[test]
fn forward_matches_the_definition_for_both_groupings() {
    let dev = Cpu::default();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for groups in [1, 4] {
        let x = random_in(&mut rng, 4 * 5 * C, -2.0, 3.0);
        let gamma = random_in(&mut rng, C, 0.5, 2.0);
        let beta = random_in(&mut rng, C, -1.0, 1.0);
        let y = normalize(
            dev.tensor_from_vec(x.clone(), (x.len() / C, Const::<C>)),
            groups,
            dev.tensor_from_vec(gamma.clone(), (Const::<C>,)),
            dev.tensor_from_vec(beta.clone(), (Const::<C>,)),
            1e-5,
        )
        .as_vec();
        let want = naive(&x, groups, &gamma, &beta, 1e-5);
        let err = y
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-12, "groups {groups}: {err}");
    }
}

#[test]
fn gradients_match_central_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for groups in [1, 3] {
        let rows = 3 * 4;
        let x = random_in(&mut rng, rows * C, -2.0, 3.0);
        let gamma = random_in(&mut rng, C, 0.5, 2.0);
        let beta = random_in(&mut rng, C, -1.0, 1.0);
        let weights = random_in(&mut rng, rows * C, -1.0, 1.0);
        let (_, grads) = objective(&x, groups, &gamma, &beta, &weights);
        let h = 1e-6;
        let value = |x: &[f64], gamma: &[f64], beta: &[f64]| {
            naive(x, groups, gamma, beta, 1e-5)
                .iter()
                .zip(&weights)
                .map(|(y, w)| y * w)
                .sum::<f64>()
        };
        let inputs = [x.clone(), gamma.clone(), beta.clone()];
        for (which, (input, grad)) in inputs.iter().zip(&grads).enumerate() {
            for i in 0..input.len() {
                let nudged = |d: f64| {
                    let mut all = inputs.clone();
                    all[which][i] += d;
                    value(&all[0], &all[1], &all[2])
                };
                let numeric = (nudged(h) - nudged(-h)) / (2.0 * h);
                let err = (grad[i] - numeric).abs() / numeric.abs().max(1.0);
                assert!(
                    err < 1e-6,
                    "groups {groups}, input {which}, element {i}: {} vs {numeric}",
                    grad[i]
                );
            }
        }
    }
}
