//! Matrix products with the `gemm` crate's current kernels ([`gemm_add`], behind every layer's
//! products), short products on plain loops, and the count of floating-point work done.
//!
//! dfdx 0.13 multiplies through gemm 0.15, whose AVX-512 kernels exist only on nightly Rust;
//! on stable it runs AVX2 kernels. gemm 0.19 (feature `x86-v4`) has AVX-512 kernels on stable
//! and picks them at run time where the CPU has them (about twice the throughput measured on
//! this project's AVX-512 machines), falling back to AVX2 or scalar code elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};

use gemm::Parallelism;

use super::Float;

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

/// Counts the work of an `(m x k) (k x n)` product, wherever it runs.
pub fn count_flops(m: usize, n: usize, k: usize) {
    FLOPS.fetch_add(2 * (m * n * k) as u64, Ordering::Relaxed);
}

/// `dst (m x n) += lhs (m x k) * rhs (k x n)`, each matrix given by its row and column strides.
pub fn gemm_add<E: Float>(
    shape: (usize, usize, usize),
    dst: &mut [E],
    lhs: &[E],
    lhs_strides: (isize, isize),
    rhs: &[E],
    rhs_strides: (isize, isize),
) {
    gemm_into(shape, dst, true, lhs, lhs_strides, rhs, rhs_strides);
}

/// `dst (m x n) = lhs (m x k) * rhs (k x n)`: what `dst` held is neither read nor kept (so it
/// need not be zeroed first).
pub fn gemm_set<E: Float>(
    shape: (usize, usize, usize),
    dst: &mut [E],
    lhs: &[E],
    lhs_strides: (isize, isize),
    rhs: &[E],
    rhs_strides: (isize, isize),
) {
    gemm_into(shape, dst, false, lhs, lhs_strides, rhs, rhs_strides);
}

#[allow(clippy::too_many_arguments)]
fn gemm_into<E: Float>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [E],
    accumulate: bool,
    lhs: &[E],
    (lhs_rs, lhs_cs): (isize, isize),
    rhs: &[E],
    (rhs_rs, rhs_cs): (isize, isize),
) {
    assert!(dst.len() >= m * n);
    count_flops(m, n, k);
    if m.min(n).min(k) <= SMALL_DIM {
        if !accumulate {
            dst[..m * n].fill(E::zero());
        }
        small_gemm_add((m, n, k), dst, lhs, (lhs_rs, lhs_cs), rhs, (rhs_rs, rhs_cs));
        return;
    }
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
            accumulate,
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

/// Products with a side this short (a 2-d input or output layer, a one-score critic head) run
/// below on plain loops: gemm's blocking and packing cost more than such a product.
const SMALL_DIM: usize = 4;

/// The element of a strided matrix.
fn at<E: Copy>(v: &[E], (rs, cs): (isize, isize), i: usize, j: usize) -> E {
    v[(i as isize * rs + j as isize * cs) as usize]
}

/// `dst += lhs * rhs` for a product with a short side, in two loop forms whose inner loops run
/// over contiguous memory (so they vectorise): dot products along `k` when `n` is short, rows
/// added up (`dst[i, :] += lhs[i, p] * rhs[p, :]`) otherwise. A strided operand is first
/// copied into a dense one; that copy is no larger than the work.
fn small_gemm_add<E: Float>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [E],
    lhs: &[E],
    lhs_strides: (isize, isize),
    rhs: &[E],
    rhs_strides: (isize, isize),
) {
    if n <= SMALL_DIM {
        // rhs^T as n dense rows of k.
        let rhs_t: Vec<E> = (0..n)
            .flat_map(|j| (0..k).map(move |p| at(rhs, rhs_strides, p, j)))
            .collect();
        let mut row = vec![E::zero(); k];
        for (i, out) in dst.chunks_exact_mut(n).take(m).enumerate() {
            for (p, r) in row.iter_mut().enumerate() {
                *r = at(lhs, lhs_strides, i, p);
            }
            for (o, col) in out.iter_mut().zip(rhs_t.chunks_exact(k)) {
                *o += dot(&row, col);
            }
        }
    } else {
        // rhs as k dense rows of n.
        let dense;
        let (rhs_rows, row_stride) = if rhs_strides.1 == 1 && rhs_strides.0 >= n as isize {
            (rhs, rhs_strides.0 as usize)
        } else {
            dense = (0..k)
                .flat_map(|p| (0..n).map(move |j| at(rhs, rhs_strides, p, j)))
                .collect::<Vec<E>>();
            (&dense[..], n)
        };
        for (i, out) in dst.chunks_exact_mut(n).take(m).enumerate() {
            for p in 0..k {
                let a = at(lhs, lhs_strides, i, p);
                let r = &rhs_rows[p * row_stride..][..n];
                for (o, &b) in out.iter_mut().zip(r) {
                    *o += a * b;
                }
            }
        }
    }
}

/// A dot product in 8 independent partial sums (one chain would wait on each add).
fn dot<E: Float>(a: &[E], b: &[E]) -> E {
    let mut acc = [E::zero(); 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: E = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .fold(E::zero(), |s, (&x, &y)| s + x * y);
    for (x, y) in a8.zip(b8) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().fold(tail, |s, &x| s + x)
}
