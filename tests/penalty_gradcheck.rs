//! The penalty's gradients w.r.t. every critic parameter against central finite differences,
//! in f64, for small versions of both critics (MLP and conv) and for both penalty modes.

use dfdx::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgangp_tui::config::PenaltyMode;
use wgangp_tui::model::dcgan64::{FACE_VALUES, FaceCritic};
use wgangp_tui::model::deep::DeepCritic;
use wgangp_tui::model::mnist::ConvCritic;
use wgangp_tui::model::params::{read_grads, read_params, write_params};
use wgangp_tui::model::toy::ToyCritic;
use wgangp_tui::model::{Batch, Critic};
use wgangp_tui::train::penalty::{critic_objective, interpolate};

const BATCH: usize = 4;
const LAMBDA: f64 = 3.0;
const H: f64 = 1e-6;
/// Gradients smaller than this are compared absolutely (FD round-off is ~1e-9 here).
const FLOOR: f64 = 1e-3;

struct Inputs<const X: usize> {
    real: Vec<f64>,
    fake: Vec<f64>,
    x_hat: Vec<f64>,
}

fn inputs<const X: usize>(rng: &mut ChaCha8Rng, scale: f64) -> Inputs<X> {
    let real: Vec<f64> = (0..BATCH * X)
        .map(|_| rng.gen_range(-1.0..1.0) * scale)
        .collect();
    let fake: Vec<f64> = (0..BATCH * X)
        .map(|_| rng.gen_range(-1.0..1.0) * scale)
        .collect();
    let eps: Vec<f64> = (0..BATCH).map(|_| rng.gen_range(0.0..1.0)).collect();
    let x_hat = interpolate(&real, &fake, &eps, X);
    Inputs { real, fake, x_hat }
}

fn batch<const X: usize>(dev: &Cpu, v: &[f64]) -> Batch<X, f64> {
    dev.tensor_from_vec(v.to_vec(), (v.len() / X, Const::<X>))
}

fn loss<C: Critic<f64, X>, const X: usize>(
    dev: &Cpu,
    c: &C,
    i: &Inputs<X>,
    mode: PenaltyMode,
) -> f64 {
    let o = critic_objective(
        c,
        batch(dev, &i.real),
        batch(dev, &i.fake),
        &batch(dev, &i.x_hat),
        LAMBDA,
        mode,
    );
    o.loss.array()
}

/// Max relative error over every parameter; also returns the gradient norms at x_hat.
fn check<C: Critic<f64, X>, const X: usize>(
    dev: &Cpu,
    critic: &mut C,
    i: &Inputs<X>,
    mode: PenaltyMode,
) -> (f64, Vec<f64>) {
    let o = critic_objective(
        critic,
        batch(dev, &i.real),
        batch(dev, &i.fake),
        &batch(dev, &i.x_hat),
        LAMBDA,
        mode,
    );
    let norms = o.grad_norms.clone();
    let grads = o.loss.backward();
    let analytic = read_grads(critic, &grads);
    let params = read_params(critic);
    let mut worst: f64 = 0.0;
    let mut largest: f64 = 0.0;
    for t in 0..params.len() {
        for j in 0..params[t].len() {
            let mut p = params.clone();
            p[t][j] += H;
            write_params(critic, &p);
            let plus = loss(dev, critic, i, mode);
            p[t][j] -= 2.0 * H;
            write_params(critic, &p);
            let minus = loss(dev, critic, i, mode);
            let numeric = (plus - minus) / (2.0 * H);
            let a = analytic[t][j];
            largest = largest.max(a.abs());
            worst = worst.max((a - numeric).abs() / a.abs().max(numeric.abs()).max(FLOOR));
        }
    }
    write_params(critic, &params);
    assert!(
        largest > 1e-2,
        "gradients are suspiciously small ({largest})"
    );
    (worst, norms)
}

/// Scales every parameter so that some gradient norms at x_hat exceed 1 and some do not: the
/// one-sided penalty is then active for part of the batch only.
fn straddle_one<C: Critic<f64, X>, const X: usize>(dev: &Cpu, critic: &mut C, i: &Inputs<X>) {
    let base = read_params(critic);
    for k in 0..200 {
        let s = 1.0 + 0.05 * k as f64;
        let scaled: Vec<Vec<f64>> = base
            .iter()
            .map(|t| t.iter().map(|x| x * s).collect())
            .collect();
        write_params(critic, &scaled);
        let o = critic_objective(
            critic,
            batch(dev, &i.real),
            batch(dev, &i.fake),
            &batch(dev, &i.x_hat),
            LAMBDA,
            PenaltyMode::Lp,
        );
        let above = o.grad_norms.iter().filter(|&&n| n > 1.0).count();
        if above > 0 && above < BATCH {
            return;
        }
    }
    panic!("no scale puts the gradient norms on both sides of 1");
}

#[test]
fn mlp_critic_penalty_gradients_match_finite_differences() {
    let dev = Cpu::seed_from_u64(3);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut critic = ToyCritic::<8, f64>::build(&dev);
    let i = inputs::<2>(&mut rng, 1.5);
    let (gp, _) = check(&dev, &mut critic, &i, PenaltyMode::Gp);
    assert!(gp <= 1e-4, "gp: max relative error {gp:e}");
    straddle_one(&dev, &mut critic, &i);
    let (lp, norms) = check(&dev, &mut critic, &i, PenaltyMode::Lp);
    assert!(
        norms.iter().any(|&n| n > 1.0) && norms.iter().any(|&n| n < 1.0),
        "{norms:?}"
    );
    assert!(lp <= 1e-4, "lp: max relative error {lp:e}");
    println!("MLP critic: max relative error gp {gp:e}, lp {lp:e}");
}

#[test]
fn deep_mlp_critic_penalty_gradients_match_finite_differences() {
    let dev = Cpu::seed_from_u64(5);
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut critic = DeepCritic::<8, f64>::build(&dev);
    let i = inputs::<2>(&mut rng, 1.5);
    let (gp, _) = check(&dev, &mut critic, &i, PenaltyMode::Gp);
    assert!(gp <= 1e-4, "gp: max relative error {gp:e}");
    println!("deep MLP critic: max relative error gp {gp:e}");
}

/// The MNIST critic's architecture at a small size: 8x8 images, 2/3/4 channels (8 -> 4 -> 2 -> 1).
type SmallConvCritic = ConvCritic<64, 1, 2, 3, 4, 4, f64, Cpu>;

/// The CIFAR-10 critic's architecture at a small size: 8x8 RGB images, 2/3/4 channels.
type SmallRgbCritic = ConvCritic<192, 3, 2, 3, 4, 4, f64, Cpu>;

#[test]
fn rgb_conv_critic_penalty_gradients_match_finite_differences() {
    let dev = Cpu::seed_from_u64(9);
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let mut critic = SmallRgbCritic::build(&dev);
    let i = inputs::<192>(&mut rng, 1.0);
    let (gp, _) = check(&dev, &mut critic, &i, PenaltyMode::Gp);
    assert!(gp <= 1e-4, "gp: max relative error {gp:e}");
    println!("RGB conv critic: max relative error gp {gp:e}");
}

/// gan-zoo's 64x64 critic with 2/3/3/4 channels: every layer and GroupNorm of the real one.
type SmallFaceCritic = FaceCritic<2, 3, 3, 4, f64, Cpu>;

/// A critic whose normalisations have non-trivial scales and shifts, so that their gradients
/// (and the penalty's dependence on them) are checked away from gamma 1, beta 0.
fn small_face_critic(dev: &Cpu, rng: &mut ChaCha8Rng) -> SmallFaceCritic {
    let mut critic = SmallFaceCritic::build(dev);
    let mut params = read_params(&critic);
    for t in &mut params {
        for p in t.iter_mut() {
            *p += rng.gen_range(-0.3..0.3);
        }
    }
    write_params(&mut critic, &params);
    critic
}

#[test]
fn face64_critic_penalty_gradients_match_finite_differences() {
    let dev = Cpu::seed_from_u64(11);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut critic = small_face_critic(&dev, &mut rng);
    let i = inputs::<FACE_VALUES>(&mut rng, 1.0);
    let (gp, _) = check(&dev, &mut critic, &i, PenaltyMode::Gp);
    assert!(gp <= 1e-4, "gp: max relative error {gp:e}");
    println!("64x64 critic (GroupNorm): max relative error gp {gp:e}");
}

#[test]
fn conv_critic_penalty_gradients_match_finite_differences() {
    let dev = Cpu::seed_from_u64(5);
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut critic = SmallConvCritic::build(&dev);
    let i = inputs::<64>(&mut rng, 1.0);
    let (gp, _) = check(&dev, &mut critic, &i, PenaltyMode::Gp);
    assert!(gp <= 1e-4, "gp: max relative error {gp:e}");
    straddle_one(&dev, &mut critic, &i);
    let (lp, norms) = check(&dev, &mut critic, &i, PenaltyMode::Lp);
    assert!(
        norms.iter().any(|&n| n > 1.0) && norms.iter().any(|&n| n < 1.0),
        "{norms:?}"
    );
    assert!(lp <= 1e-4, "lp: max relative error {lp:e}");
    println!("conv critic: max relative error gp {gp:e}, lp {lp:e}");
}

/// The input gradient itself (the penalty's building block) against finite differences of D.
#[test]
fn input_gradient_matches_finite_differences_of_the_critic() {
    /// Checks every `step`-th entry.
    fn run<C: Critic<f64, X>, const X: usize>(dev: &Cpu, critic: &C, x: Vec<f64>, step: usize) {
        let g = critic
            .input_gradient::<NoneTape>(&batch::<X>(dev, &x))
            .as_vec();
        let score = |v: &[f64]| critic.score(batch::<X>(dev, v)).as_vec();
        for j in (0..x.len()).step_by(step) {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[j] += H;
            minus[j] -= H;
            let numeric = (score(&plus)[j / X] - score(&minus)[j / X]) / (2.0 * H);
            let err = (g[j] - numeric).abs() / g[j].abs().max(numeric.abs()).max(FLOOR);
            assert!(
                err < 1e-5,
                "input gradient entry {j}: {} vs {numeric}",
                g[j]
            );
        }
    }
    let dev = Cpu::seed_from_u64(7);
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let toy = ToyCritic::<8, f64>::build(&dev);
    run::<_, 2>(
        &dev,
        &toy,
        (0..BATCH * 2).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        1,
    );

    let deep = DeepCritic::<8, f64>::build(&dev);
    run::<_, 2>(
        &dev,
        &deep,
        (0..BATCH * 2).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        1,
    );

    let conv = SmallConvCritic::build(&dev);
    run::<_, 64>(
        &dev,
        &conv,
        (0..BATCH * 64).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        1,
    );

    let rgb = SmallRgbCritic::build(&dev);
    run::<_, 192>(
        &dev,
        &rgb,
        (0..BATCH * 192).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        1,
    );
    let mut rng_face = ChaCha8Rng::seed_from_u64(13);
    let face = small_face_critic(&dev, &mut rng_face);
    run::<_, FACE_VALUES>(
        &dev,
        &face,
        (0..2 * FACE_VALUES)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect(),
        41,
    );
}
