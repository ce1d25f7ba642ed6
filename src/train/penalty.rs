//! The critic's objective: D(fake) - D(real) + lambda * P, with the penalty P computed exactly.
//!
//! dfdx cannot differentiate a gradient, so the input gradient grad_x D(x_hat) is built by the
//! critic as ordinary taped ops on its own weights (see `Critic::input_gradient`); one ordinary
//! backward pass of the objective then gives the exact gradient w.r.t. every critic weight.

use dfdx::prelude::*;

use crate::config::PenaltyMode;
use crate::model::{Batch, Critic, Float};

/// The critic objective as a taped scalar, with the figures that went into it.
pub struct CriticObjective<E: Dtype> {
    pub loss: Tensor<Rank0, E, Cpu, OwnedTape<E, Cpu>>,
    pub d_real: E,
    pub d_fake: E,
    /// P, the unweighted penalty (also computed in clip mode, where it is not in the loss).
    pub penalty: E,
    /// lambda * P as it enters the loss.
    pub weighted_penalty: E,
    /// ||grad_x D(x_hat)||_2 for each sample of the batch.
    pub grad_norms: Vec<E>,
}

/// x_hat = eps * real + (1 - eps) * fake, one eps per sample (rows of `dim` values).
pub fn interpolate<E: Float>(real: &[E], fake: &[E], eps: &[E], dim: usize) -> Vec<E> {
    let mut out = Vec::with_capacity(real.len());
    for ((r, f), &e) in real.chunks(dim).zip(fake.chunks(dim)).zip(eps) {
        out.extend(r.iter().zip(f).map(|(&r, &f)| e * r + (E::one() - e) * f));
    }
    out
}

/// The penalty of one gradient norm: (n - 1)^2 for gp, max(0, n - 1)^2 for lp and clip's
/// figure. Used for the figures; the loss computes the same on the tape.
fn penalty_of<E: Float>(mode: PenaltyMode, norm: E) -> E {
    let d = norm - E::one();
    match mode {
        PenaltyMode::Lp => d.max(E::zero()).powi(2),
        PenaltyMode::Gp | PenaltyMode::Clip => d.powi(2),
    }
}

/// Builds the critic objective on `real`, `fake` and the interpolates `x_hat`.
pub fn critic_objective<E: Float, C: Critic<E, X>, const X: usize>(
    critic: &C,
    real: Batch<X, E>,
    fake: Batch<X, E>,
    x_hat: &Batch<X, E>,
    lambda: E,
    mode: PenaltyMode,
) -> CriticObjective<E>
where
    Cpu: Device<E>,
{
    let grads = critic.alloc_grads();
    let dev = real.device().clone();
    let (n_real, n_fake) = (real.shape().0, fake.shape().0);
    // One critic pass over real and fake together: the same sums, half the matrix products,
    // each twice as tall. mean D(fake) - mean D(real) is a weighted sum of the scores.
    let both = (real, fake).concat_along(Axis::<0>);
    let scores = critic.score(both.traced(grads));
    let values = scores.retaped::<NoneTape>().as_vec();
    let d_real_v = mean(values[..n_real].iter().copied());
    let d_fake_v = mean(values[n_real..].iter().copied());
    let weight = |n: usize| E::one() / E::from_usize(n.max(1)).unwrap();
    let weights: Vec<E> = std::iter::repeat_n(-weight(n_real), n_real)
        .chain(std::iter::repeat_n(weight(n_fake), n_fake))
        .collect();
    let weights = dev.tensor_from_vec(weights, (n_real + n_fake,));
    let wasserstein_loss = (scores * weights).sum();

    if mode == PenaltyMode::Clip {
        let norms = row_norms(critic.input_gradient::<NoneTape>(x_hat)).as_vec();
        let penalty = mean(norms.iter().map(|&n| penalty_of(mode, n)));
        return CriticObjective {
            loss: wasserstein_loss,
            d_real: d_real_v,
            d_fake: d_fake_v,
            penalty,
            weighted_penalty: E::zero(),
            grad_norms: norms,
        };
    }

    let norms = row_norms(critic.input_gradient::<OwnedTape<E, Cpu>>(x_hat));
    let grad_norms = norms.as_vec();
    let excess = norms - E::one();
    let excess = if mode == PenaltyMode::Lp {
        excess.relu()
    } else {
        excess
    };
    let penalty = excess.square().mean();
    let penalty_v = penalty.array();
    let weighted = penalty * lambda;
    CriticObjective {
        loss: wasserstein_loss + weighted,
        d_real: d_real_v,
        d_fake: d_fake_v,
        penalty: penalty_v,
        weighted_penalty: lambda * penalty_v,
        grad_norms,
    }
}

fn row_norms<E: Float, T: Tape<E, Cpu>, const X: usize>(
    g: Batch<X, E, T>,
) -> Tensor<(usize,), E, Cpu, T>
where
    Cpu: Device<E>,
{
    g.square().sum::<(usize,), Axis<1>>().sqrt()
}

fn mean<E: Float>(values: impl ExactSizeIterator<Item = E>) -> E {
    let n = E::from_usize(values.len().max(1)).unwrap();
    values.fold(E::zero(), |a, b| a + b) / n
}
