//! The taped layer ops the models are built from: one fused op per layer (`layer`), the
//! convolution layers (`conv`) and plain products (`matmul`), each with its forward pass,
//! input gradient and weight gradient; `weights` keeps a layer's weight in the layouts its
//! products read.

pub mod conv;
pub mod layer;
pub mod matmul;
pub mod norm;
pub mod weights;
