//! Matrix products on dfdx's tape with the `gemm` crate's current kernels.
//!
//! dfdx 0.13 multiplies through gemm 0.15, whose AVX-512 kernels exist only on nightly Rust;
//! on stable it runs AVX2 kernels. gemm 0.19 (feature `x86-v4`) has AVX-512 kernels on stable
//! and picks them at run time where the CPU has them (about twice the throughput measured on
//! this project's AVX-512 machines), falling back to AVX2 or scalar code elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};

use dfdx::prelude::*;
use gemm::Parallelism;

use dfdx::nn::modules::Linear;

use super::Float;

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
    product(
        a,
        b,
        None::<Tensor<(usize,), E, Cpu, NoneTape>>,
        transpose_b,
    )
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
    product(a, b, Some(bias), transpose_b)
}

fn product<E: Float, T: Tape<E, Cpu> + Merge<R> + Merge<Rb>, R: Tape<E, Cpu>, Rb: Tape<E, Cpu>>(
    a: Matrix<E, T>,
    b: Matrix<E, R>,
    bias: Option<Tensor<(usize,), E, Cpu, Rb>>,
    transpose_b: bool,
) -> Matrix<E, T> {
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
    let (a, tape_a, a_data) = read(a);
    let (b, tape_b, b_data) = read(b);
    // op(b) as a k x n matrix: row stride, column stride.
    let b_strides = if transpose_b {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    let (bias, tape_bias, bias_data) = match bias {
        Some(bias) => {
            assert_eq!(
                bias.shape().0,
                n,
                "matmul: bias of {} for {n} columns",
                bias.shape().0
            );
            let (bias, tape) = bias.split_tape();
            let mut data = vec![E::zero(); n];
            bias.copy_into(&mut data);
            (Some(bias), Some(tape), data)
        }
        None => (None, None, Vec::new()),
    };
    let mut c = if bias_data.is_empty() {
        vec![E::zero(); m * n]
    } else {
        let mut c = Vec::with_capacity(m * n);
        for _ in 0..m {
            c.extend_from_slice(&bias_data);
        }
        c
    };
    gemm_add(
        (m, n, k),
        &mut c,
        &a_data,
        (k as isize, 1),
        &b_data,
        b_strides,
    );
    let out = a.device().tensor_from_vec(c, (m, n));
    let mut tape = tape_a.merge(tape_b);
    if let Some(tape_bias) = tape_bias {
        tape = tape.merge(tape_bias);
    }
    if T::OWNS_TAPE {
        let (a_ghost, b_ghost, out_ghost) = (a.ghost(), b.ghost(), out.ghost());
        let bias_ghost = bias.as_ref().map(|b| b.ghost());
        tape.add_backward_op(move |grads| {
            // One gradient buffer at a time: move the output's out and back.
            let dc = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            // dA (m x k) += dC (m x n) * op(b)^T (n x k).
            let opb_t = if transpose_b {
                (k as isize, 1)
            } else {
                (1, n as isize)
            };
            let da = grads.get_or_alloc_mut(&a_ghost)?;
            gemm_add((m, k, n), &mut da[..], &dc, (n as isize, 1), &b_data, opb_t);
            let db = grads.get_or_alloc_mut(&b_ghost)?;
            if transpose_b {
                // dB (n x k) += dC^T (n x m) * A (m x k).
                gemm_add(
                    (n, k, m),
                    &mut db[..],
                    &dc,
                    (1, n as isize),
                    &a_data,
                    (k as isize, 1),
                );
            } else {
                // dB (k x n) += A^T (k x m) * dC (m x n).
                gemm_add(
                    (k, n, m),
                    &mut db[..],
                    &a_data,
                    (1, k as isize),
                    &dc,
                    (n as isize, 1),
                );
            }
            if let Some(bias_ghost) = &bias_ghost {
                let db = grads.get_or_alloc_mut(bias_ghost)?;
                for row in dc.chunks_exact(n) {
                    for (d, g) in db.iter_mut().zip(row) {
                        *d += *g;
                    }
                }
            }
            **grads.get_or_alloc_mut(&out_ghost)? = dc;
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// `x W^T + b` for a dfdx `Linear` layer (weight `(O, I)`, bias `(O,)`), through [`matmul`].
pub fn linear<const I: usize, const O: usize, E: Float, T: Tape<E, Cpu>>(
    layer: &Linear<I, O, E, Cpu>,
    x: Tensor<(usize, Const<I>), E, Cpu, T>,
) -> Tensor<(usize, Const<O>), E, Cpu, T> {
    let n = x.shape().0;
    let w = layer.weight.retaped::<T>().reshape_like(&(O, I));
    let bias = layer.bias.retaped::<T>().reshape_like(&(O,));
    matmul_bias(x.reshape_like(&(n, I)), w, bias, true).reshape_like(&(n, Const::<O>))
}

/// `g W` for a row of gradients `g (n, O)` and a `Linear` layer's weight `(O, I)`: the chain
/// rule through the layer, as a taped product.
pub fn through_linear<const I: usize, const O: usize, E: Float, T: Tape<E, Cpu>>(
    g: Tensor<(usize, Const<O>), E, Cpu, T>,
    layer: &Linear<I, O, E, Cpu>,
) -> Tensor<(usize, Const<I>), E, Cpu, T> {
    let n = g.shape().0;
    let w = layer.weight.retaped::<T>().reshape_like(&(O, I));
    matmul(g.reshape_like(&(n, O)), w, false).reshape_like(&(n, Const::<I>))
}
