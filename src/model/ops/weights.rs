//! A layer's weight in the layout each of its products reads fastest.
//!
//! Of a layer's two products on its weight, the map and its adjoint, one walks the weight
//! along its rows and the other along its columns. gemm reads the weight fastest when the
//! output's contiguous dimension is contiguous in the weight too (see
//! [`LinearMap::fast_w_t`]); the other way round it copies it in a float at a time, which
//! costs a large layer's product a sizeable share of its time. A training step runs each
//! product many times on the same weights (for every shard, on real, fake and interpolated
//! samples, and in the penalty's input-gradient graph), so a layer keeps its weight transposed
//! in a [`LayoutCache`] until any weight changes, and that product reads the copy. The
//! convolution layers keep one; the fully connected layers do not: at this project's sizes
//! (512x512 and smaller, used a few times per change) the copy measured 8-10% slower.
//!
//! Weights change only through `model::params::update_params` (the optimizers, clipping,
//! loading a checkpoint), which calls [`weights_changed`]; a cache made before that call is
//! not used after it. Builds with debug assertions (the tests) check on every use that the
//! cached values are still the tensor's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dfdx::prelude::*;

use crate::model::Float;
use crate::model::kernels::{LinearMap, transpose};

type Rows<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;

/// Bumped each time any model's weights are written.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Says that weights were written: every [`LayoutCache`] copies its tensor again.
pub fn weights_changed() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// The values a product reads of a layer's weight `w` (contiguous), with the map to run: the
/// transposed copy in `transposed` over the map on the transposed weight, where that is the
/// layout this product reads fastest (see [`LinearMap::fast_w_t`]) and the copy is at hand;
/// else the tensor's own values, read into `scratch`.
pub fn weight_values<'a, E: Float>(
    w: &Rows<E>,
    map: &LinearMap,
    adjoint: bool,
    transposed: Option<&'a [E]>,
    scratch: &'a mut Vec<E>,
) -> (LinearMap, &'a [E]) {
    match transposed {
        Some(t) if wants_transposed(map, adjoint) => (map.with_transposed_weight(), t),
        _ => {
            scratch.resize(w.shape().num_elements(), E::zero());
            w.copy_into(scratch);
            (*map, scratch)
        }
    }
}

/// Whether product `adjoint` of `map` reads its weight faster transposed.
pub fn wants_transposed(map: &LinearMap, adjoint: bool) -> bool {
    map.fast_w_t(adjoint) != map.w_t()
}

/// One layer weight's values transposed, kept until weights change. A clone of a model starts
/// with an empty cache of its own.
pub struct LayoutCache<E> {
    slot: Mutex<Option<(u64, Arc<Vec<E>>)>>,
    /// How often the copy was made, and how often a made copy was read again.
    made: AtomicU64,
    reused: AtomicU64,
}

impl<E: Float> LayoutCache<E> {
    /// `w` (contiguous) transposed: the cached copy while no weight has changed since it was
    /// made, else made now. `w` must be the tensor this cache belongs to.
    pub fn transposed(&self, w: &Rows<E>) -> Arc<Vec<E>> {
        let epoch = EPOCH.load(Ordering::Acquire);
        let (rows, cols) = *w.shape();
        let transpose_now = || {
            let mut stored = vec![E::zero(); rows * cols];
            w.copy_into(&mut stored);
            let mut t = vec![E::zero(); rows * cols];
            transpose(&stored, rows, cols, &mut t);
            t
        };
        // Held while making the copy, so that shards running side by side make it once. That
        // runs on this thread alone: no rayon work (which could wait on this lock) inside.
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, copy)) = slot.as_ref()
            && *at == epoch
            && copy.len() == rows * cols
        {
            debug_assert!(
                // The same values, NaN (a diverged run's) included.
                copy.iter()
                    .zip(&transpose_now())
                    .all(|(a, b)| a == b || (a.is_nan() && b.is_nan())),
                "a layer's weight changed without model::params::update_params"
            );
            self.reused.fetch_add(1, Ordering::Relaxed);
            return copy.clone();
        }
        self.made.fetch_add(1, Ordering::Relaxed);
        let copy = Arc::new(transpose_now());
        *slot = Some((epoch, copy.clone()));
        copy
    }
}

impl<E> LayoutCache<E> {
    /// How often the transposed copy was made, and how often it was read again without being
    /// made anew.
    pub fn uses(&self) -> (u64, u64) {
        (
            self.made.load(Ordering::Relaxed),
            self.reused.load(Ordering::Relaxed),
        )
    }
}

impl<E> Default for LayoutCache<E> {
    fn default() -> Self {
        Self {
            slot: Mutex::new(None),
            made: AtomicU64::new(0),
            reused: AtomicU64::new(0),
        }
    }
}

impl<E> Clone for LayoutCache<E> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<E> std::fmt::Debug for LayoutCache<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LayoutCache")
    }
}

/// A layer's weight tensor and, for a layer that keeps one, its [`LayoutCache`].
pub struct LayerWeight<'c, E: Dtype, T> {
    pub tensor: Rows<E, T>,
    pub cache: Option<&'c LayoutCache<E>>,
}

impl<E: Dtype, T> From<Rows<E, T>> for LayerWeight<'static, E, T> {
    fn from(tensor: Rows<E, T>) -> Self {
        Self {
            tensor,
            cache: None,
        }
    }
}
