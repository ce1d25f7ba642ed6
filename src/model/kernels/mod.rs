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
