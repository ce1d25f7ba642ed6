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

/// A normalisation's scale and shift, one of each per channel (PyTorch's init: 1 and 0).
#[derive(Clone, Debug)]
pub struct ChannelNorm<const C: usize, E: Dtype, D: Storage<E>> {
    pub gamma: Tensor<Rank1<C>, E, D>,
    pub beta: Tensor<Rank1<C>, E, D>,
}

impl<const C: usize, E: Float> TensorCollection<E, Cpu> for ChannelNorm<C, E, Cpu>
where
    Cpu: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = ChannelNorm<C, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.gamma,
                    |s| &mut s.gamma,
                    TensorOptions::reset_to_ones(),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.beta,
                    |s| &mut s.beta,
                    TensorOptions::reset_to_zeros(),
                ),
            ),
            |(gamma, beta)| ChannelNorm { gamma, beta },
        )
    }
}

impl<const C: usize, E: Float> ChannelNorm<C, E, Cpu>
where
    Cpu: Device<E>,
{
    /// Batch norm with the batch's own statistics.
    pub fn batch_norm<T: Tape<E, Cpu> + Merge<T>>(&self, x: Act<C, E, T>) -> Act<C, E, T> {
        self.groups_of(x, 1)
    }

    /// GroupNorm with one group per channel: each of the `images` images on its own.
    pub fn per_image<T: Tape<E, Cpu> + Merge<T>>(
        &self,
        x: Act<C, E, T>,
        images: usize,
    ) -> Act<C, E, T> {
        self.groups_of(x, images)
    }

    fn groups_of<T: Tape<E, Cpu> + Merge<T>>(
        &self,
        x: Act<C, E, T>,
        groups: usize,
    ) -> Act<C, E, T> {
        let (gamma, beta) = (self.gamma.retaped::<T>(), self.beta.retaped::<T>());
        normalize(x, groups, gamma, beta, NORM_EPS)
    }
}

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
    affine(standardize(x, groups, eps).0, gamma, beta)
}

/// `(x - mean) / std` per group of rows and channel, and the groups' `std = sqrt(var + eps)`
/// (`(groups, C)`). The tape rides on `unit`, which is made from `std`; `std` comes back with
/// an empty tape (gradients that reach it flow on through `unit`'s tape).
pub fn standardize<const C: usize, E: Float, T: Tape<E, Cpu> + Merge<T>>(
    x: Act<C, E, T>,
    groups: usize,
    eps: f64,
) -> (Act<C, E, T>, Tensor<(usize, Const<C>), E, Cpu, T>)
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
    let std = (var + E::from_f64(eps).unwrap()).sqrt();
    let std_out = std.retaped::<T>();
    let unit = centred / std.broadcast_like::<_, Axis<1>>(&shape);
    (unit.reshape_like(&(rows, Const::<C>)), std_out)
}

/// `gamma * unit + beta`, per channel.
pub fn affine<const C: usize, E: Float, T: Tape<E, Cpu> + Merge<T>>(
    unit: Act<C, E, T>,
    gamma: Tensor<Rank1<C>, E, Cpu, T>,
    beta: Tensor<Rank1<C>, E, Cpu, T>,
) -> Act<C, E, T>
where
    Cpu: Device<E>,
{
    let shape = *unit.shape();
    unit * gamma.broadcast_like::<_, Axis<0>>(&shape) + beta.broadcast_like::<_, Axis<0>>(&shape)
}

/// The chain rule back through [`normalize`]: given `dy`, the gradient w.r.t. its output, the
/// gradient w.r.t. its input, `gamma / std * (dy - mean(dy) - unit * mean(dy * unit))` with
/// the means over each group's rows. Every factor is taped, so a function of the result can
/// be differentiated w.r.t. whatever made `unit`, `std` and `gamma` (the critic's weights, in
/// the gradient penalty).
pub fn normalize_adjoint<const C: usize, E: Float, T: Tape<E, Cpu> + Merge<T>>(
    dy: Act<C, E, T>,
    unit: Act<C, E, T>,
    std: Tensor<(usize, Const<C>), E, Cpu, T>,
    gamma: Tensor<Rank1<C>, E, Cpu, T>,
) -> Act<C, E, T>
where
    Cpu: Device<E>,
{
    let rows = dy.shape().0;
    let groups = std.shape().0;
    let shape = (groups, rows / groups, Const::<C>);
    let group_mean = |t: Tensor<(usize, usize, Const<C>), E, Cpu, T>| {
        t.mean::<(usize, Const<C>), Axis<1>>()
            .broadcast_like::<_, Axis<1>>(&shape)
    };
    let dy = dy.reshape_like(&shape);
    let unit = unit.reshape_like(&shape);
    let mean_dy = group_mean(dy.retaped::<T>());
    let mean_dy_unit = group_mean(dy.retaped::<T>() * unit.retaped::<T>());
    let inner = dy - mean_dy - unit * mean_dy_unit;
    let scale =
        gamma.broadcast_like::<_, Axes2<0, 1>>(&shape) / std.broadcast_like::<_, Axis<1>>(&shape);
    (inner * scale).reshape_like(&(rows, Const::<C>))
}
