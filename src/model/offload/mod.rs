//! Running the layers' products on another device (a GPU), with the tensors staying where dfdx
//! keeps them.
//!
//! Every layer op (`ops::layer`) spends its time in three products of its [`LinearMap`]: the
//! map itself, its adjoint (the input gradient) and the weight gradient, which it asks for
//! through [`apply`], [`adjoint`] and [`wgrad`] here. With an [`Offload`] installed, those
//! hand the three to it: the product's input is copied to the device, the work (patch
//! matrices, products, scatters back) runs there, and the result comes back and is added on
//! the host. A layer's weight is sent once per change of the weights and kept there (see
//! [`WeightKey`]). The tape, the element-wise work and the optimizer stay on the CPU. dfdx 0.13
//! offers no way to reach a CUDA tensor's memory from a custom op, so this is the one place a
//! GPU can do this project's layers; the copies are of activations and weights only, never of
//! patch matrices.
//!
//! The work is written once, in [`Plan`], over a small [`Backend`] with cuBLAS's semantics
//! (column-major `sgemm`) and two index kernels. [`HostBackend`] runs the same semantics on
//! the CPU, element by element as the GPU's threads do, so the plan's arithmetic (which
//! product, which operand transposed, which leading dimension) is tested on every machine;
//! the CUDA backend (`cuda.rs`, feature `cuda`) only forwards to cuBLAS and to
//! [`plan::KERNELS_CU`], compiled at run time by NVRTC.

#[cfg(feature = "cuda")]
pub mod cuda;
pub mod host;
pub mod plan;

use std::any::TypeId;
use std::sync::{Arc, RwLock};

use crate::model::Float;
use crate::model::kernels::LinearMap;
pub use host::HostBackend;
pub use plan::{Backend, Offload, Plan, Transfers, WeightKey};

/// The installed offload, if any: one per process, like the device it stands for.
static INSTALLED: RwLock<Option<Arc<dyn Offload>>> = RwLock::new(None);

/// Sends every layer's products to `offload` from now on (`None`: back to the CPU kernels).
pub fn install(offload: Option<Arc<dyn Offload>>) {
    *INSTALLED.write().unwrap_or_else(|e| e.into_inner()) = offload;
}

/// The installed offload's name, if one is installed.
pub fn installed_name() -> Option<String> {
    installed().map(|o| o.name().to_string())
}

/// Everything the installed offload has copied between host and device (nothing without one).
pub fn transfers() -> Transfers {
    installed().map(|o| o.transfers()).unwrap_or_default()
}

fn installed() -> Option<Arc<dyn Offload>> {
    INSTALLED.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// `f` on the installed offload with the slices as f32, when one is installed and `E` is f32
/// (the gradient checks run in f64 on the CPU kernels). Whether it ran.
fn with_f32<E: 'static>(
    ins: [&[E]; 2],
    out: &mut [E],
    f: impl FnOnce(&dyn Offload, [&[f32]; 2], &mut [f32]),
) -> bool {
    if TypeId::of::<E>() != TypeId::of::<f32>() {
        return false;
    }
    let Some(offload) = installed() else {
        return false;
    };
    // SAFETY: E is f32 (checked above), so these are the same slices under their own type.
    let (a, b, out) = unsafe {
        (
            std::slice::from_raw_parts(ins[0].as_ptr().cast::<f32>(), ins[0].len()),
            std::slice::from_raw_parts(ins[1].as_ptr().cast::<f32>(), ins[1].len()),
            std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), out.len()),
        )
    };
    f(offload.as_ref(), [a, b], out);
    true
}

/// Whether the layers' products of `E` go to an installed offload.
pub fn offloaded<E: 'static>() -> bool {
    TypeId::of::<E>() == TypeId::of::<f32>() && installed().is_some()
}

/// `y += map(x)`: on the installed offload, or on this CPU. `key` says which weight `w` is
/// (see [`WeightKey`]), so that an offload can keep it.
pub fn apply<E: Float>(map: &LinearMap, x: &[E], w: &[E], key: Option<WeightKey>, y: &mut [E]) {
    if !with_f32([x, w], y, |o, [x, w], y| o.apply(map, x, w, key, y)) {
        map.apply(x, w, y);
    }
}

/// `dx += map^T(dy)`: on the installed offload, or on this CPU.
pub fn adjoint<E: Float>(map: &LinearMap, dy: &[E], w: &[E], key: Option<WeightKey>, dx: &mut [E]) {
    if !with_f32([dy, w], dx, |o, [dy, w], dx| o.adjoint(map, dy, w, key, dx)) {
        map.adjoint(dy, w, dx);
    }
}

/// `dW += d<dy, map(x; W)>/dW`: on the installed offload, or on this CPU.
pub fn wgrad<E: Float>(map: &LinearMap, x: &[E], dy: &[E], dw: &mut [E]) {
    if !with_f32([x, dy], dw, |o, [x, dy], dw| o.wgrad(map, x, dy, dw)) {
        map.wgrad(x, dy, dw);
    }
}
