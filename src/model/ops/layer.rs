//! One taped op per layer: `act(map(x; W) + b)`, where the map is a matrix product or a
//! (transposed) convolution and the activation is applied in the same pass.
//!
//! Built from dfdx's element-wise ops, a layer is four or five ops, each of which allocates and
//! keeps its own copy of the activation (the product, the bias added, the slopes, the product
//! with the slopes) and walks it once more in the backward pass. Fused, a layer keeps its input
//! (for the weight gradient), one byte per output for the activation's slope, and its output;
//! the backward pass scales the output's gradient by the slopes in place and hands it to the
//! map's two adjoints.
//!
//! The critic's input-gradient graph (see `Critic::input_gradient`) runs the same ops with the
//! adjoint map and [`Activation::Scale`]: the activation slopes of the forward pass, held
//! constant.

use dfdx::nn::modules::Linear;
use dfdx::prelude::*;

use super::weights::{LayerWeight, wants_transposed, weight_values};
use crate::model::Float;
use crate::model::kernels::LinearMap;

/// What follows the map (and the bias).
#[derive(Clone, Debug)]
pub enum Activation<E> {
    Identity,
    /// `z` where `z > 0`, else `slope * z`: ReLU for slope 0, LeakyReLU otherwise.
    Leaky(E),
    Sigmoid,
    /// Times a constant per output element (one slope per element of the output; the chain
    /// rule through a ReLU layer of another pass).
    Scale(Vec<E>),
}

/// What the backward pass needs of the activation.
enum Saved<E> {
    Identity,
    /// Whether each output was positive, and the slope below zero.
    Leaky(Vec<bool>, E),
    /// The outputs, sigmoid(z): the derivative is y (1 - y).
    Sigmoid(Vec<E>),
    Scale(Vec<E>),
}

type Rows<E, T> = Tensor<(usize, usize), E, Cpu, T>;

/// A matrix's data, read out, with the tensor (tape split off) and its tape.
pub(crate) fn read<E: Float, T: Tape<E, Cpu>>(t: Rows<E, T>) -> (Rows<E, NoneTape>, T, Vec<E>) {
    let (t, tape) = t.contiguous().split_tape();
    let mut data = vec![E::zero(); t.shape().num_elements()];
    t.copy_into(&mut data);
    (t, tape, data)
}

thread_local! {
    /// Set while this thread builds layers inside [`with_frozen_weights`].
    static FROZEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the layers it builds holding their weights and biases constant: gradients
/// flow through them to their inputs, but none is computed for the weights or biases. The
/// generator step scores its samples this way: the critic is not updated there (PyTorch's
/// reference sets `requires_grad=False` on it for the same reason), and its weight gradients
/// are a sixth of that step's products.
pub fn with_frozen_weights<R>(f: impl FnOnce() -> R) -> R {
    frozen_while(true, f)
}

/// Runs `f` with no weights frozen, whatever the thread was doing. Work that builds layers on
/// a rayon thread starts this way (`train::trainer`'s shards): a thread waiting inside
/// [`with_frozen_weights`] may meanwhile run a job of another computation (another trainer's
/// critic step in the same pool, as the tests run them), whose weights must still learn.
pub fn unfrozen<R>(f: impl FnOnce() -> R) -> R {
    frozen_while(false, f)
}

/// Runs `f` with this thread's flag at `frozen`, restored however `f` ends, a panic included.
fn frozen_while<R>(frozen: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FROZEN.set(self.0);
        }
    }
    let _restore = Restore(FROZEN.replace(frozen));
    f()
}

/// A layer's output and, when asked for, its activation's slope at each output.
pub type WithSlopes<Y, E> = (Y, Option<Vec<E>>);

/// `act(map(x; w) + bias)`. The input, weight and bias may all be taped (the tape rides on
/// `x`). With `want_slopes`, also returns the activation's slope at each output (1 or the
/// leaky slope; for other activations, nothing).
pub fn layer<'c, E: Float, T, R, Rb>(
    x: Rows<E, T>,
    w: impl Into<LayerWeight<'c, E, R>>,
    bias: Option<Tensor<(usize,), E, Cpu, Rb>>,
    map: LinearMap,
    act: Activation<E>,
    want_slopes: bool,
) -> WithSlopes<Rows<E, T>, E>
where
    T: Tape<E, Cpu> + Merge<R> + Merge<Rb>,
    R: Tape<E, Cpu>,
    Rb: Tape<E, Cpu>,
{
    let LayerWeight { tensor: w, cache } = w.into();
    let (rows, width) = *x.shape();
    let (in_width, out_width) = map.widths();
    assert_eq!(
        width, in_width,
        "layer: input has {width} columns, not {in_width}"
    );
    assert_eq!(*w.shape(), map.w_shape(), "layer: weight shape");
    let out_shape = (map.out_rows(rows), out_width);

    let train_weights = !FROZEN.get();
    let (x, tape_x, x_data) = read(x);
    let (w, tape_w) = w.contiguous().split_tape();
    let keep = T::OWNS_TAPE;
    // The weight transposed, from the layer's cache, when a product of this op reads it so.
    let needs_transposed = wants_transposed(&map, false) || (keep && wants_transposed(&map, true));
    let transposed = cache.filter(|_| needs_transposed).map(|c| c.transposed(&w));
    let mut tape = tape_x.merge(tape_w);
    let mut bias_ghost = None;
    // The output starts as the bias rows (or zeros), and the map is added into it.
    let mut out = match bias {
        Some(bias) => {
            assert_eq!(bias.shape().0, out_width, "layer: bias length");
            let (bias, tape_b) = bias.split_tape();
            tape = tape.merge(tape_b);
            let mut b = vec![E::zero(); out_width];
            bias.copy_into(&mut b);
            bias_ghost = Some(bias.ghost());
            let mut out = Vec::with_capacity(out_shape.0 * out_width);
            for _ in 0..out_shape.0 {
                out.extend_from_slice(&b);
            }
            out
        }
        None => vec![E::zero(); out_shape.0 * out_width],
    };
    {
        let mut scratch = Vec::new();
        let t = transposed.as_deref().map(|t| &t[..]);
        let (map, w_values) = weight_values(&w, &map, false, t, &mut scratch);
        map.apply(&x_data, w_values, &mut out);
    }
    // The input is needed again only for the weight gradient. A weight's own copy is not
    // kept: the backward pass reads the weight tensor again (it does not change before then),
    // so that the passes of a step, a shard each, do not each hold a copy of every weight.
    let x_data = if train_weights { x_data } else { Vec::new() };

    let (saved, slopes) = activate(&mut out, act, want_slopes, keep);
    let out = x.device().tensor_from_vec(out, out_shape);
    if keep {
        let (x_ghost, w_ghost, out_ghost) = (x.ghost(), w.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            // One gradient buffer at a time: move the output's out and back. It is scaled to
            // the pre-activation's gradient in place; nothing reads it after this op.
            let mut dz = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            saved.chain(&mut dz);
            if let Some(bias_ghost) = bias_ghost.as_ref().filter(|_| train_weights) {
                let db = grads.get_or_alloc_mut(bias_ghost)?;
                for row in dz.chunks_exact(out_width) {
                    for (d, g) in db.iter_mut().zip(row) {
                        *d += *g;
                    }
                }
            }
            {
                let mut scratch = Vec::new();
                let t = transposed.as_deref().map(|t| &t[..]);
                let (map, w_values) = weight_values(&w, &map, true, t, &mut scratch);
                let dx = grads.get_or_alloc_mut(&x_ghost)?;
                map.adjoint(&dz, w_values, dx);
            }
            // Into the weight tensor's own layout.
            if train_weights {
                map.wgrad(&x_data, &dz, grads.get_or_alloc_mut(&w_ghost)?);
            }
            **grads.get_or_alloc_mut(&out_ghost)? = dz;
            Ok(())
        });
    }
    (out.put_tape(tape), slopes)
}

/// Applies the activation to the pre-activations `out` in place; returns what the backward
/// pass needs of it (kept only when `keep`) and, with `want_slopes`, the slope at each output.
fn activate<E: Float>(
    out: &mut [E],
    act: Activation<E>,
    want_slopes: bool,
    keep: bool,
) -> (Saved<E>, Option<Vec<E>>) {
    let mut slopes = None;
    let saved = match act {
        Activation::Identity => Saved::Identity,
        Activation::Leaky(s) => {
            // Selects, not branches: the signs are random, and the loops vectorise.
            let mut positive = vec![false; out.len()];
            for (y, p) in out.iter_mut().zip(positive.iter_mut()) {
                *p = *y > E::zero();
                *y *= if *p { E::one() } else { s };
            }
            if want_slopes {
                slopes = Some(
                    positive
                        .iter()
                        .map(|&p| if p { E::one() } else { s })
                        .collect(),
                );
            }
            Saved::Leaky(if keep { positive } else { Vec::new() }, s)
        }
        Activation::Sigmoid => {
            for y in out.iter_mut() {
                *y = E::one() / (E::one() + (-*y).exp());
            }
            Saved::Sigmoid(if keep { out.to_vec() } else { Vec::new() })
        }
        Activation::Scale(m) => {
            assert_eq!(m.len(), out.len(), "layer: one scale per output");
            for (y, &m) in out.iter_mut().zip(&m) {
                *y *= m;
            }
            Saved::Scale(m)
        }
    };
    (saved, slopes)
}

impl<E: Float> Saved<E> {
    /// Turns the output's gradient into the pre-activation's, in place.
    fn chain(&self, dz: &mut [E]) {
        match self {
            Saved::Identity => {}
            Saved::Leaky(positive, s) => {
                for (d, &p) in dz.iter_mut().zip(positive) {
                    *d *= if p { E::one() } else { *s };
                }
            }
            Saved::Sigmoid(y) => {
                for (d, &y) in dz.iter_mut().zip(y) {
                    *d *= y * (E::one() - y);
                }
            }
            Saved::Scale(m) => {
                for (d, &m) in dz.iter_mut().zip(m) {
                    *d *= m;
                }
            }
        }
    }
}

/// A fully connected layer's tensors: weight `(O, I)` and bias `(O,)`, as in dfdx's `Linear`.
pub trait DenseWeights<const I: usize, const O: usize, E: Dtype> {
    fn weight(&self) -> &Tensor<Rank2<O, I>, E, Cpu>;
    fn bias(&self) -> &Tensor<Rank1<O>, E, Cpu>;
}

impl<const I: usize, const O: usize, E: Dtype> DenseWeights<I, O, E> for Linear<I, O, E, Cpu> {
    fn weight(&self) -> &Tensor<Rank2<O, I>, E, Cpu> {
        &self.weight
    }

    fn bias(&self) -> &Tensor<Rank1<O>, E, Cpu> {
        &self.bias
    }
}

/// `act(x W^T + b)` for a fully connected layer (weight `(O, I)`, bias `(O,)`); with
/// `want_slopes`, also the activation's slope at each output.
pub fn dense<const I: usize, const O: usize, E: Float, T: Tape<E, Cpu>>(
    linear: &impl DenseWeights<I, O, E>,
    x: Tensor<(usize, Const<I>), E, Cpu, T>,
    act: Activation<E>,
    want_slopes: bool,
) -> WithSlopes<Tensor<(usize, Const<O>), E, Cpu, T>, E> {
    let n = x.shape().0;
    let w = linear.weight().retaped::<T>().reshape_like(&(O, I));
    let bias = linear.bias().retaped::<T>().reshape_like(&(O,));
    let map = LinearMap::Dense {
        k: I,
        n: O,
        w_t: true,
    };
    let (y, slopes) = layer(
        x.reshape_like(&(n, I)),
        w,
        Some(bias),
        map,
        act,
        want_slopes,
    );
    (y.reshape_like(&(n, Const::<O>)), slopes)
}

/// `act(g W)` for rows of gradients `g (n, O)` and a `Linear` layer's weight `(O, I)`: the
/// chain rule back through the layer, as a taped op on its weight.
pub fn dense_adjoint<const I: usize, const O: usize, E: Float, T: Tape<E, Cpu>>(
    g: Tensor<(usize, Const<O>), E, Cpu, T>,
    linear: &impl DenseWeights<I, O, E>,
    act: Activation<E>,
) -> Tensor<(usize, Const<I>), E, Cpu, T> {
    let n = g.shape().0;
    let w = linear.weight().retaped::<T>().reshape_like(&(O, I));
    let map = LinearMap::Dense {
        k: O,
        n: I,
        w_t: false,
    };
    let bias = None::<Tensor<(usize,), E, Cpu, T>>;
    let (y, _) = layer(g.reshape_like(&(n, O)), w, bias, map, act, false);
    y.reshape_like(&(n, Const::<I>))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_weights_end_with_their_closure_even_on_a_panic() {
        assert!(!FROZEN.get());
        assert!(with_frozen_weights(|| FROZEN.get()));
        assert!(!FROZEN.get());
        let caught = std::panic::catch_unwind(|| with_frozen_weights(|| panic!("in a layer")));
        assert!(caught.is_err());
        assert!(!FROZEN.get(), "the flag outlived a panic");
    }

    #[test]
    fn unfrozen_work_inside_frozen_work_learns_and_the_freeze_resumes_after_it() {
        let (inside, after) = with_frozen_weights(|| (unfrozen(|| FROZEN.get()), FROZEN.get()));
        assert!(!inside);
        assert!(after);
        assert!(!FROZEN.get());
    }
}

/// LeakyReLU as `y * m`, with the slopes `m` (1 where `y > 0`, else `slope`) read from `y` and
/// held constant: the same values and, wherever no `y` is exactly 0, the same derivative. Also
/// returns the slopes, which the critic's input-gradient graph applies after each adjoint.
pub fn leaky_held<S: Shape, E: Float, T: Tape<E, Cpu>>(
    y: Tensor<S, E, Cpu, T>,
    slope: E,
) -> (Tensor<S, E, Cpu, T>, Vec<E>)
where
    Cpu: Device<E>,
{
    let y = y.contiguous();
    let mut slopes = vec![E::zero(); y.shape().num_elements()];
    y.copy_into(&mut slopes);
    for m in &mut slopes {
        *m = if *m > E::zero() { E::ONE } else { slope };
    }
    let m = y.device().tensor_from_vec(slopes.clone(), *y.shape());
    (y * m, slopes)
}
