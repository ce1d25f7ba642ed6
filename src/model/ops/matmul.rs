//! [`matmul`] and [`matmul_bias`] as taped ops: the dense layer op of `layer` without an
//! activation.

use dfdx::prelude::*;

use super::layer::{Activation, layer};
use crate::model::Float;
use crate::model::kernels::LinearMap;

/// A dense row-major matrix of runtime size.
pub type Matrix<E, T> = Tensor<(usize, usize), E, Cpu, T>;

/// `a (m x k) * b (k x n)`, or `a * b^T` for `b (n x k)` when `transpose_b`. Both inputs may be
/// taped (the tape rides on `a`); the backward pass adds `dC * op(b)^T` into `a`'s gradient and
/// the matching product into `b`'s.
pub fn matmul<E: Float, T: Tape<E, Cpu> + Merge<R>, R: Tape<E, Cpu>>(
    a: Matrix<E, T>,
    b: Matrix<E, R>,
    transpose_b: bool,
) -> Matrix<E, T> {
    let map = dense_map(&a, &b, transpose_b);
    let bias = None::<Tensor<(usize,), E, Cpu>>;
    layer(a, b, bias, map, Activation::Identity, false).0
}

/// [`matmul`] plus `bias (n,)` added to every row, in one op: the output starts as the bias
/// rows (no zeroing, no separate broadcast add), and the backward pass adds the column sums of
/// `dC` into the bias's gradient.
pub fn matmul_bias<
    E: Float,
    T: Tape<E, Cpu> + Merge<R> + Merge<Rb>,
    R: Tape<E, Cpu>,
    Rb: Tape<E, Cpu>,
>(
    a: Matrix<E, T>,
    b: Matrix<E, R>,
    bias: Tensor<(usize,), E, Cpu, Rb>,
    transpose_b: bool,
) -> Matrix<E, T> {
    let map = dense_map(&a, &b, transpose_b);
    layer(a, b, Some(bias), map, Activation::Identity, false).0
}

fn dense_map<E: Float, T, R>(a: &Matrix<E, T>, b: &Matrix<E, R>, transpose_b: bool) -> LinearMap {
    let (m, k) = *a.shape();
    let (n, kb) = if transpose_b {
        *b.shape()
    } else {
        let (r, c) = *b.shape();
        (c, r)
    };
    assert_eq!(
        k,
        kb,
        "matmul: inner sizes differ ({m}x{k} times {:?}{})",
        b.shape(),
        if transpose_b { "^T" } else { "" }
    );
    LinearMap::Dense {
        k,
        n,
        w_t: transpose_b,
    }
}
