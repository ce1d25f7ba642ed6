//! The deep toy critic's per-layer input-gradient norms (the paper's Figure 1b) against plain
//! f64 backpropagation written out here, on the critic's own weights.

use dfdx::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgangp_tui::model::Critic;
use wgangp_tui::model::deep::{DEEP_LAYERS, DeepCritic};
use wgangp_tui::model::params::read_params;

const H: usize = 16;
const ROWS: usize = 6;

/// Each layer's weight (out x in, row-major), bias, and sizes, in order from the input.
fn layers(critic: &DeepCritic<H, f64>) -> Vec<(Vec<f64>, Vec<f64>, usize, usize)> {
    let params = read_params(critic);
    assert_eq!(
        params.len(),
        2 * DEEP_LAYERS,
        "a weight and a bias per layer"
    );
    params
        .chunks(2)
        .map(|wb| {
            let (w, b) = (wb[0].clone(), wb[1].clone());
            let (out, inp) = (b.len(), w.len() / b.len());
            (w, b, out, inp)
        })
        .collect()
}

/// Textbook backpropagation: the gradient of sum_i d_i D(x_i) w.r.t. each layer's input.
fn naive_norms(critic: &DeepCritic<H, f64>, x: &[f64], d_score: &[f64]) -> Vec<f64> {
    let layers = layers(critic);
    let mut norms = vec![0.0; DEEP_LAYERS];
    for (row, &d) in x.chunks(2).zip(d_score) {
        // Forward, keeping each layer's input and pre-activation.
        let mut inputs = vec![row.to_vec()];
        let mut pre = Vec::new();
        for (k, (w, b, out, inp)) in layers.iter().enumerate() {
            let a = inputs.last().unwrap();
            let z: Vec<f64> = (0..*out)
                .map(|o| b[o] + (0..*inp).map(|i| w[o * inp + i] * a[i]).sum::<f64>())
                .collect();
            if k + 1 < DEEP_LAYERS {
                inputs.push(z.iter().map(|&v| v.max(0.0)).collect());
            }
            pre.push(z);
        }
        // Backward from dL/dD = d.
        let mut g = vec![d];
        for k in (0..DEEP_LAYERS).rev() {
            let (w, _, out, inp) = &layers[k];
            if k + 1 < DEEP_LAYERS {
                for (gi, &z) in g.iter_mut().zip(&pre[k]) {
                    if z <= 0.0 {
                        *gi = 0.0;
                    }
                }
            }
            let input_grad: Vec<f64> = (0..*inp)
                .map(|i| (0..*out).map(|o| g[o] * w[o * inp + i]).sum())
                .collect();
            norms[k] += input_grad.iter().map(|v| v * v).sum::<f64>();
            g = input_grad;
        }
    }
    norms.iter().map(|s| s.sqrt()).collect()
}

#[test]
fn input_gradient_norms_match_plain_backpropagation() {
    let dev = Cpu::seed_from_u64(21);
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let critic = DeepCritic::<H, f64>::build(&dev);
    let x: Vec<f64> = (0..ROWS * 2).map(|_| rng.gen_range(-1.5..1.5)).collect();
    let d_score: Vec<f64> = (0..ROWS)
        .map(|i| if i < ROWS / 2 { -1.0 } else { 1.0 } / (ROWS / 2) as f64)
        .collect();
    let ours = critic.activation_gradient_norms(
        &dev.tensor_from_vec(x.clone(), (ROWS, Const::<2>)),
        &d_score,
    );
    let naive = naive_norms(&critic, &x, &d_score);
    assert_eq!(ours.len(), DEEP_LAYERS);
    for (k, (a, b)) in ours.iter().zip(&naive).enumerate() {
        assert!(*b > 1e-6, "layer {}: a vanishing reference {b}", k + 1);
        assert!(
            (a - b).abs() <= 1e-9 * b.max(1.0),
            "layer {}: {a} vs {b}",
            k + 1
        );
    }
}
