//! Matrix products on dfdx's tape with the `gemm` crate's current kernels.
//!
//! dfdx 0.13 multiplies through gemm 0.15, whose AVX-512 kernels exist only on nightly Rust;
//! on stable it runs AVX2 kernels. gemm 0.19 (feature `x86-v4`) has AVX-512 kernels on stable
//! and picks them at run time where the CPU has them (about twice the throughput measured on
//! this project's AVX-512 machines), falling back to AVX2 or scalar code elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};

use dfdx::prelude::*;
use gemm::Parallelism;

use super::Float;
use super::layer::{Activation, Map, layer};

/// A dense row-major matrix of runtime size.
pub type Matrix<E, T> = Tensor<(usize, usize), E, Cpu, T>;

/// Products smaller than this many multiply-adds run on one thread.
const PARALLEL_MIN_WORK: usize = 64 * 64 * 64;

/// Floating-point operations done by [`gemm_add`] in this process (2 per multiply-add), for
/// the benchmark's achieved GFLOP/s. One relaxed add per product: nothing next to the product.
static FLOPS: AtomicU64 = AtomicU64::new(0);

/// Floating-point operations of every matrix product so far (all the models' linear and
/// convolution work, forward and backward, and the penalty's input-gradient graph).
pub fn flops() -> u64 {
    FLOPS.load(Ordering::Relaxed)
}

/// This machine's f32 matrix-product throughput in GFLOP/s through the same kernels, on the
/// current rayon pool's threads: the median of `reps` products of `size`^3.
pub fn peak_gflops(size: usize, reps: usize) -> f64 {
    let a: Vec<f32> = (0..size * size).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..size * size).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut c = vec![0f32; size * size];
    let strides = (size as isize, 1);
    let mut rates: Vec<f64> = (0..reps + 1)
        .map(|_| {
            let start = std::time::Instant::now();
            gemm_add((size, size, size), &mut c, &a, strides, &b, strides);
            2.0 * (size as f64).powi(3) / start.elapsed().as_secs_f64() / 1e9
        })
        .skip(1) // warm-up
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// `dst (m x n) += lhs (m x k) * rhs (k x n)`, each matrix given by its row and column strides.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_add<E: Float>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [E],
    lhs: &[E],
    (lhs_rs, lhs_cs): (isize, isize),
    rhs: &[E],
    (rhs_rs, rhs_cs): (isize, isize),
) {
    assert!(dst.len() >= m * n);
    FLOPS.fetch_add(2 * (m * n * k) as u64, Ordering::Relaxed);
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 && m * n * k >= PARALLEL_MIN_WORK {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: the slices hold every element the sizes and strides address (asserted by the
    // callers' shapes), and dst does not overlap the inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            true,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            E::one(),
            E::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

pub(crate) fn read<E: Float, T: Tape<E, Cpu>>(t: Matrix<E, T>) -> (Matrix<E, NoneTape>, T, Vec<E>) {
    let (t, tape) = t.contiguous().split_tape();
    let mut data = vec![E::zero(); t.shape().num_elements()];
    t.copy_into(&mut data);
    (t, tape, data)
}

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

fn dense_map<E: Float, T, R>(a: &Matrix<E, T>, b: &Matrix<E, R>, transpose_b: bool) -> Map {
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
    Map::Dense {
        k,
        n,
        w_t: transpose_b,
    }
}
