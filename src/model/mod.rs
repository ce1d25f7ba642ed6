//! The model families and what the trainer needs of them. Lowest first: `kernels` (arithmetic
//! on slices), `ops` (the taped layer ops on dfdx's CPU tensors), `device` (the GPU: device
//! buffers, one kernel source and its CPU twin, the nets' passes there), then the families
//! (`toy`, `deep`, `mnist`, `cifar`, `dcgan64`) and `params` (their tensors as plain slices).
//!
//! Compile-time shapes live here and nowhere else: a batch of samples is a
//! `(usize, Const<X>)` tensor (X = 2 for the toy sets, 784 for MNIST), noise is
//! `(usize, Const<Z>)`. Critics use only piecewise-linear activations so that the exact input
//! gradient can be written as ordinary taped ops (see [`Critic::input_gradient`]).

pub mod cifar;
pub mod classifier;
pub mod dcgan64;
pub mod deep;
pub mod device;
pub mod kernels;
pub mod mnist;
pub mod ops;
pub mod params;
pub mod toy;

use dfdx::prelude::*;

pub use kernels::Float;

/// A batch of samples or noise vectors, one per row.
pub type Batch<const N: usize, E, T = NoneTape> = Tensor<(usize, Const<N>), E, Cpu, T>;

/// A critic D: R^X -> R.
pub trait Critic<E: Float, const X: usize>: TensorCollection<E, Cpu> + Clone + Send + Sync
where
    Cpu: Device<E>,
{
    /// D(x), one score per row.
    fn score<T: Tape<E, Cpu>>(&self, x: Batch<X, E, T>) -> Tensor<(usize,), E, Cpu, T>;

    /// The exact gradient of D w.r.t. its input at `x`, one row per sample, built as ordinary
    /// ops on the critic's own weight tensors with the activation slopes at `x` held constant
    /// (exact wherever no pre-activation is exactly zero). Differentiating a function of it
    /// w.r.t. the weights therefore gives the exact gradient-penalty gradient, which dfdx
    /// (having no double backward) could not give otherwise.
    fn input_gradient<T: Tape<E, Cpu>>(&self, x: &Batch<X, E>) -> Batch<X, E, T>;

    /// The weight tensors (biases left out), by layer name, for per-layer figures.
    fn layer_weights(&self) -> Vec<(&'static str, Tensor<(usize,), E, Cpu>)>;

    /// Whether [`Self::activation_gradient_norms`] records anything.
    const ACTIVATION_NORMS: bool = false;

    /// For a loss whose gradient w.r.t. the scores of the rows of `x` is `d_score`: the L2 norm
    /// of its gradient w.r.t. each layer's input (the input first, the last layer's input
    /// last), over the whole batch. Empty for a family that does not record it.
    fn activation_gradient_norms(&self, _x: &Batch<X, E>, _d_score: &[E]) -> Vec<f64> {
        Vec::new()
    }

    /// The critic's layers for a device (`device::net`), from its own typed layers.
    fn device_net(&self) -> device::net::NetSpec;
}

/// A generator G: R^Z -> R^X.
pub trait Generator<E: Float, const Z: usize, const X: usize>:
    TensorCollection<E, Cpu> + Clone + Send + Sync
where
    Cpu: Device<E>,
{
    /// Whether a sample depends on the others of its batch (batch norm with batch
    /// statistics): such a generator is run on the whole batch at once, never in shards.
    const BATCH_STATISTICS: bool = false;

    fn generate<T: Tape<E, Cpu>>(&self, z: Batch<Z, E, T>) -> Batch<X, E, T>;

    /// The generator's layers for a device, as [`Critic::device_net`].
    fn device_net(&self) -> device::net::NetSpec;
}

/// A flat view of a tensor that shares its data and id (reshape of a dense tensor is free).
pub(crate) fn flat<S: Shape, E: Float>(t: &Tensor<S, E, Cpu>) -> Tensor<(usize,), E, Cpu>
where
    Cpu: Device<E>,
{
    let n = t.shape().num_elements();
    t.clone().reshape_like(&(n,))
}
