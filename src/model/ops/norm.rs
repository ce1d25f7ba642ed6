//! Per-channel normalisation of activation rows, as ordinary taped dfdx ops (so it is
//! differentiated exactly, once, like any other op): the rows are split into `groups` equal
//! groups, and in each group every channel is shifted to mean 0 and scaled to variance 1
//! (biased variance, plus `eps`), then multiplied by `gamma` and shifted by `beta`.
//!
//! - Batch norm with batch statistics (the paper's CIFAR-10 generator): one group, all
//!   `B*H*W` rows of the batch.
//! - GroupNorm with one group per channel (gan-zoo's "LayerNorm2d" in the 64x64 nets): one
//!   group per image, its `H*W` rows.

use dfdx::prelude::*;

use super::conv::Act;
use crate::model::Float;

/// PyTorch's default epsilon for both norms.
pub const NORM_EPS: f64 = 1e-5;

/// `gamma * (x - mean) / sqrt(var + eps) + beta`, per group of rows and channel.
pub fn normalize<const C: usize, E: Float, T: Tape<E, Cpu> + Merge<T>>(
    x: Act<C, E, T>,
    groups: usize,
    gamma: Tensor<Rank1<C>, E, Cpu, T>,
    beta: Tensor<Rank1<C>, E, Cpu, T>,
    eps: f64,
) -> Act<C, E, T>
where
    Cpu: Device<E>,
{
    let rows = x.shape().0;
    assert!(
        groups > 0 && rows % groups == 0,
        "normalize: {rows} rows is not {groups} equal groups"
    );
    let shape = (groups, rows / groups, Const::<C>);
    let x = x.reshape_like(&shape);
    let mean = x
        .retaped::<T>()
        .mean::<(usize, Const<C>), Axis<1>>()
        .broadcast_like::<_, Axis<1>>(&shape);
    let centred = x - mean;
    let var = centred
        .retaped::<T>()
        .square()
        .mean::<(usize, Const<C>), Axis<1>>();
    let std = (var + E::from_f64(eps).unwrap())
        .sqrt()
        .broadcast_like::<_, Axis<1>>(&shape);
    let unit = centred / std;
    let gamma = gamma.broadcast_like::<_, Axes2<0, 1>>(&shape);
    let beta = beta.broadcast_like::<_, Axes2<0, 1>>(&shape);
    (unit * gamma + beta).reshape_like(&(rows, Const::<C>))
}
