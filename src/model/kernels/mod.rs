//! The arithmetic of the layers on plain slices, free of dfdx's tape: matrix products, the
//! convolution kernels, and the linear map of a layer built from them.

pub mod conv;
pub mod gemm;
pub mod linear_map;
pub mod norm;

pub use linear_map::LinearMap;

/// The float types the models run in: f32 for training, f64 for the gradient checks.
pub trait Float:
    dfdx::prelude::Dtype
    + num_traits::Float
    + rand_distr::uniform::SampleUniform
    + Send
    + Sync
    + 'static
{
}
impl Float for f32 {}
impl Float for f64 {}

/// `dst (cols x rows) = src (rows x cols)^T`, both row-major, in square tiles so that reads and
/// writes both stay within a few cache lines at a time.
pub fn transpose<E: Copy>(src: &[E], rows: usize, cols: usize, dst: &mut [E]) {
    const TILE: usize = 32;
    assert!(
        src.len() == rows * cols && dst.len() == rows * cols,
        "transpose: sizes"
    );
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}
