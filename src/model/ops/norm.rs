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
use crate::model::kernels::norm::Groups;

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

/// A group's statistic per channel, `(groups, C)`.
pub type Stats<const C: usize, E, T> = Tensor<(usize, Const<C>), E, Cpu, T>;

/// The groups of `rows` rows of `C` channels.
fn groups_of<const C: usize>(rows: usize, groups: usize) -> Groups {
    assert!(
        groups > 0 && rows % groups == 0,
        "normalize: {rows} rows is not {groups} equal groups"
    );
    Groups {
        groups,
        rows: rows / groups,
        c: C,
    }
}

/// A dense tensor's values.
fn data<S: Shape, E: Float, T>(t: &Tensor<S, E, Cpu, T>) -> Vec<E> {
    let mut v = vec![E::zero(); t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}

/// `t`'s values after splitting off its tape (made dense first: a copy is a taped op, so the
/// gradient still reaches the original).
fn split<S: Shape, E: Float, T: Tape<E, Cpu>>(
    t: Tensor<S, E, Cpu, T>,
) -> (Tensor<S, E, Cpu>, T, Vec<E>) {
    let (t, tape) = t.contiguous().split_tape();
    let values = data(&t);
    (t, tape, values)
}

/// `(x - mean) / std` per group of rows and channel, and the groups' `std = sqrt(var + eps)`
/// (`(groups, C)`). One taped op with two outputs: the tape rides on `unit`, and `std` comes
/// back with an empty tape (gradients that reach it are read by this op's backward pass,
/// which runs after those of every op that used `std`: it was recorded before them).
pub fn standardize<const C: usize, E: Float, T: Tape<E, Cpu> + Merge<T>>(
    x: Act<C, E, T>,
    groups: usize,
    eps: f64,
) -> (Act<C, E, T>, Stats<C, E, T>) {
    let rows = x.shape().0;
    let g = groups_of::<C>(rows, groups);
    let (x, mut tape, xs) = split(x);
    let mean = g.means([&xs], [], |[x], []| x);
    let var = g.means([&xs], [&mean], |[x], [m]| (x - m) * (x - m));
    let eps = E::from_f64(eps).unwrap();
    let std: Vec<E> = var.into_iter().map(|v| (v + eps).sqrt()).collect();
    let mut unit = vec![E::zero(); g.len()];
    g.fill(&mut unit, [&xs], [&mean, &std], |[x], [m, s]| (x - m) / s);
    drop(xs);
    let dev = x.device().clone();
    let unit = dev.tensor_from_vec(unit, (rows, Const::<C>));
    let std = dev.tensor_from_vec(std, (groups, Const::<C>));
    if T::OWNS_TAPE {
        let (x_ghost, unit_ghost, std_ghost) = (x.ghost(), unit.ghost(), std.ghost());
        let (unit_kept, std_kept) = (unit.clone(), std.clone());
        tape.add_backward_op(move |grads| {
            let (u, s) = (data(&unit_kept), data(&std_kept));
            let du = std::mem::take(&mut **grads.get_or_alloc_mut(&unit_ghost)?);
            let ds = std::mem::take(&mut **grads.get_or_alloc_mut(&std_ghost)?);
            // Through unit: (du - mean(du) - unit * mean(du * unit)) / std; through std:
            // ds * unit / n.
            let m1 = g.means([&du], [], |[d], []| d);
            let m2 = g.means([&du, &u], [], |[d, u], []| d * u);
            let n = E::from_usize(g.rows).unwrap();
            let dx = &mut **grads.get_or_alloc_mut(&x_ghost)?;
            g.add(
                dx,
                [&du, &u],
                [&m1, &m2, &s, &ds],
                |[d, u], [m1, m2, s, ds]| (d - m1 - u * m2) / s + ds * u / n,
            );
            **grads.get_or_alloc_mut(&unit_ghost)? = du;
            **grads.get_or_alloc_mut(&std_ghost)? = ds;
            Ok(())
        });
    }
    (unit.put_tape(tape), std.retaped::<T>())
}

/// `gamma * unit + beta`, per channel.
pub fn affine<const C: usize, E: Float, T: Tape<E, Cpu> + Merge<T>>(
    unit: Act<C, E, T>,
    gamma: Tensor<Rank1<C>, E, Cpu, T>,
    beta: Tensor<Rank1<C>, E, Cpu, T>,
) -> Act<C, E, T> {
    let rows = unit.shape().0;
    // One group: the sums for gamma's and beta's gradients run over all rows.
    let g = groups_of::<C>(rows, 1);
    let (unit, tape_u, u) = split(unit);
    let (gamma, tape_g, gs) = split(gamma);
    let (beta, tape_b, bs) = split(beta);
    let mut tape = tape_u.merge(tape_g).merge(tape_b);
    let mut y = vec![E::zero(); g.len()];
    g.fill(&mut y, [&u], [&gs, &bs], |[u], [g, b]| g * u + b);
    let y = unit.device().tensor_from_vec(y, (rows, Const::<C>));
    if T::OWNS_TAPE {
        let ghosts = (unit.ghost(), gamma.ghost(), beta.ghost(), y.ghost());
        let (u_ghost, gamma_ghost, beta_ghost, y_ghost) = ghosts;
        tape.add_backward_op(move |grads| {
            let u = data(&unit);
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let du = &mut **grads.get_or_alloc_mut(&u_ghost)?;
            g.add(du, [&dy], [&gs], |[d], [g]| d * g);
            let dgamma = g.sums([&dy, &u], [], |[d, u], []| d * u);
            add_into(&mut **grads.get_or_alloc_mut(&gamma_ghost)?, &dgamma);
            let dbeta = g.sums([&dy], [], |[d], []| d);
            add_into(&mut **grads.get_or_alloc_mut(&beta_ghost)?, &dbeta);
            **grads.get_or_alloc_mut(&y_ghost)? = dy;
            Ok(())
        });
    }
    y.put_tape(tape)
}

fn add_into<E: Float>(total: &mut [E], part: &[E]) {
    for (t, p) in total.iter_mut().zip(part) {
        *t = *t + *p;
    }
}

/// The chain rule back through [`normalize`]: given `dy`, the gradient w.r.t. its output, the
/// gradient w.r.t. its input, `gamma / std * (dy - mean(dy) - unit * mean(dy * unit))` with
/// the means over each group's rows. One taped op of all four inputs, so a function of the
/// result can be differentiated w.r.t. whatever made `unit`, `std` and `gamma` (the critic's
/// weights, in the gradient penalty).
pub fn normalize_adjoint<const C: usize, E: Float, T: Tape<E, Cpu> + Merge<T>>(
    dy: Act<C, E, T>,
    unit: Act<C, E, T>,
    std: Stats<C, E, T>,
    gamma: Tensor<Rank1<C>, E, Cpu, T>,
) -> Act<C, E, T> {
    let rows = dy.shape().0;
    let g = groups_of::<C>(rows, std.shape().0);
    let (dy, tape_dy, d) = split(dy);
    let (unit, tape_u, u) = split(unit);
    let (std, tape_s, s) = split(std);
    let (gamma, tape_g, gs) = split(gamma);
    let mut tape = tape_dy.merge(tape_u).merge(tape_s).merge(tape_g);
    let m1 = g.means([&d], [], |[d], []| d);
    let m2 = g.means([&d, &u], [], |[d, u], []| d * u);
    // gamma / std per group and channel.
    let scale: Vec<E> = (0..g.stats()).map(|k| gs[k % C] / s[k]).collect();
    let mut out = vec![E::zero(); g.len()];
    g.fill(
        &mut out,
        [&d, &u],
        [&scale, &m1, &m2],
        |[d, u], [c, m1, m2]| c * (d - m1 - u * m2),
    );
    let out = dy.device().tensor_from_vec(out, (rows, Const::<C>));
    if T::OWNS_TAPE {
        let ghosts = (
            dy.ghost(),
            unit.ghost(),
            std.ghost(),
            gamma.ghost(),
            out.ghost(),
        );
        let (dy_ghost, u_ghost, std_ghost, gamma_ghost, out_ghost) = ghosts;
        tape.add_backward_op(move |grads| {
            let (d, u) = (data(&dy), data(&unit));
            let dout = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            // out = scale * inner, inner = d - m1 - u * m2, m1 = mean(d), m2 = mean(d * u).
            let dscale = g.sums([&dout, &d, &u], [&m1, &m2], |[o, d, u], [m1, m2]| {
                o * (d - m1 - u * m2)
            });
            // The gradients of m1 and m2, over n: -mean(dinner) and -mean(dinner * u).
            let dm1 = g.means([&dout], [&scale], |[o], [c]| -(c * o));
            let dm2 = g.means([&dout, &u], [&scale], |[o, u], [c]| -(c * o * u));
            let ddy = &mut **grads.get_or_alloc_mut(&dy_ghost)?;
            g.add(
                ddy,
                [&dout, &u],
                [&scale, &dm1, &dm2],
                |[o, u], [c, dm1, dm2]| c * o + dm1 + dm2 * u,
            );
            let du = &mut **grads.get_or_alloc_mut(&u_ghost)?;
            g.add(
                du,
                [&dout, &d],
                [&scale, &m2, &dm2],
                |[o, d], [c, m2, dm2]| -c * o * m2 + dm2 * d,
            );
            let dstd: Vec<E> = (0..g.stats())
                .map(|k| -dscale[k] * scale[k] / s[k])
                .collect();
            add_into(&mut **grads.get_or_alloc_mut(&std_ghost)?, &dstd);
            let mut dgamma = vec![E::zero(); C];
            for k in 0..g.stats() {
                dgamma[k % C] = dgamma[k % C] + dscale[k] / s[k];
            }
            add_into(&mut **grads.get_or_alloc_mut(&gamma_ghost)?, &dgamma);
            **grads.get_or_alloc_mut(&out_ghost)? = dout;
            Ok(())
        });
    }
    out.put_tape(tape)
}
