//! [`LinearMap`]: the linear part of a layer (a matrix product, a convolution or a transposed
//! convolution) and its three products on the CPU: the map, its adjoint (the input gradient)
//! and the weight gradient.

use super::Float;
use super::conv::FusedConv;
use super::gemm::gemm_add;

/// The linear part of a layer.
#[derive(Clone, Copy, Debug)]
pub enum LinearMap {
    /// `x (m, k) -> x W (m, n)`, `W` stored as `(k, n)`, or as `(n, k)` (dfdx's `Linear`
    /// layout, `x W^T`) when `w_t`.
    Dense { k: usize, n: usize, w_t: bool },
    /// Image side -> patch side: a convolution.
    Conv(FusedConv),
    /// Patch side -> image side: the transposed convolution (the adjoint of `Conv`).
    ConvT(FusedConv),
}

impl LinearMap {
    /// Columns of the input and the output rows.
    pub fn widths(&self) -> (usize, usize) {
        match *self {
            LinearMap::Dense { k, n, .. } => (k, n),
            LinearMap::Conv(kn) => (kn.c, kn.n),
            LinearMap::ConvT(kn) => (kn.n, kn.c),
        }
    }

    /// Output rows for `rows` input rows.
    pub fn out_rows(&self, rows: usize) -> usize {
        let per_image = |from: usize, to: usize| {
            assert_eq!(
                rows % from,
                0,
                "layer: {rows} rows is not a whole batch of images"
            );
            rows / from * to
        };
        match *self {
            LinearMap::Dense { .. } => rows,
            LinearMap::Conv(kn) => per_image(kn.g.in_pixels(), kn.g.out_pixels()),
            LinearMap::ConvT(kn) => per_image(kn.g.out_pixels(), kn.g.in_pixels()),
        }
    }

    pub fn w_shape(&self) -> (usize, usize) {
        match *self {
            LinearMap::Dense { k, n, w_t } => {
                if w_t {
                    (n, k)
                } else {
                    (k, n)
                }
            }
            LinearMap::Conv(kn) | LinearMap::ConvT(kn) => kn.w_shape(),
        }
    }

    /// Whether the weight is stored transposed (see each variant).
    pub fn w_t(&self) -> bool {
        match *self {
            LinearMap::Dense { w_t, .. } => w_t,
            LinearMap::Conv(kn) | LinearMap::ConvT(kn) => kn.w_t,
        }
    }

    /// The same map over the weight stored the other way round (the transpose of
    /// [`Self::w_shape`]).
    pub fn with_transposed_weight(&self) -> LinearMap {
        match *self {
            LinearMap::Dense { k, n, w_t } => LinearMap::Dense { k, n, w_t: !w_t },
            LinearMap::Conv(kn) => LinearMap::Conv(FusedConv { w_t: !kn.w_t, ..kn }),
            LinearMap::ConvT(kn) => LinearMap::ConvT(FusedConv { w_t: !kn.w_t, ..kn }),
        }
    }

    /// The weight layout (`w_t`) in which [`Self::apply`] (`adjoint` false) or
    /// [`Self::adjoint`] (`adjoint` true) reads the weight fastest. gemm copies each operand
    /// into blocks along the output's contiguous dimension; the weight copies with plain vector
    /// loads where that dimension is contiguous in it too, and one float at a time otherwise.
    pub fn fast_w_t(&self, adjoint: bool) -> bool {
        match self {
            LinearMap::Dense { .. } | LinearMap::Conv(_) => adjoint,
            LinearMap::ConvT(_) => !adjoint,
        }
    }

    /// `W`'s strides as the `(k, n)` matrix of a dense map.
    fn dense_w_strides(k: usize, n: usize, w_t: bool) -> (isize, isize) {
        if w_t {
            (1, k as isize)
        } else {
            (n as isize, 1)
        }
    }

    /// `y += map(x)` on this CPU.
    pub fn apply<E: Float>(&self, x: &[E], w: &[E], y: &mut [E]) {
        match *self {
            LinearMap::Dense { k, n, w_t } => {
                let m = x.len() / k;
                let w_strides = Self::dense_w_strides(k, n, w_t);
                gemm_add((m, n, k), y, x, (k as isize, 1), w, w_strides);
            }
            LinearMap::Conv(kn) => kn.conv(x, w, y),
            LinearMap::ConvT(kn) => kn.conv_t(x, w, y),
        }
    }

    /// `dx += map^T(dy)` on this CPU.
    pub fn adjoint<E: Float>(&self, dy: &[E], w: &[E], dx: &mut [E]) {
        match *self {
            LinearMap::Dense { k, n, w_t } => {
                // dx (m x k) += dy (m x n) * W^T: W's strides swapped.
                let m = dy.len() / n;
                let (rs, cs) = Self::dense_w_strides(k, n, w_t);
                gemm_add((m, k, n), dx, dy, (n as isize, 1), w, (cs, rs));
            }
            LinearMap::Conv(kn) => kn.conv_t(dy, w, dx),
            LinearMap::ConvT(kn) => kn.conv(dy, w, dx),
        }
    }

    /// `dW += d<dy, map(x; W)>/dW`, in the weight tensor's own layout, on this CPU.
    pub fn wgrad<E: Float>(&self, x: &[E], dy: &[E], dw: &mut [E]) {
        match *self {
            LinearMap::Dense { k, n, w_t } => {
                let m = x.len() / k;
                if w_t {
                    // dW (n x k) += dy^T (n x m) * x (m x k).
                    gemm_add((n, k, m), dw, dy, (1, n as isize), x, (k as isize, 1));
                } else {
                    // dW (k x n) += x^T (k x m) * dy (m x n).
                    gemm_add((k, n, m), dw, x, (1, k as isize), dy, (n as isize, 1));
                }
            }
            LinearMap::Conv(kn) => kn.wgrad(x, dy, dw),
            LinearMap::ConvT(kn) => kn.wgrad(dy, x, dw),
        }
    }
}
