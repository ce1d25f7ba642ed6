//! Convolution and transposed convolution layers as taped ops on stable dfdx.
//!
//! dfdx 0.13 compiles its conv layers only on nightly, so the MNIST nets use this module.
//! Activations are *rows*: a batch of `B` images of `H x W` pixels with `C` channels is a
//! `(B*H*W, C)` tensor, pixels in row-major order (channels last).
//!
//! The layers run [`FusedConv`] through the layer op of `layer`, which also adds the bias and
//! applies the activation. Because a conv's input gradient is the transposed conv, a taped op
//! on the *same* weight tensor, the gradient penalty can be differentiated w.r.t. the weights
//! (dfdx has no double backward). [`conv`] and [`conv_t`] are the same products as plain taped
//! ops; [`im2col`] and [`col2im`] are the gather route they are tested against.

use dfdx::prelude::*;

use super::layer::{Activation, WithSlopes, layer};
use super::weights::{LayerWeight, LayoutCache};
use crate::model::Float;
use crate::model::kernels::LinearMap;
use crate::model::kernels::conv::{ConvGeom, FusedConv, KERNEL, col2im_add, im2col_add};

type Rows<E, T> = Tensor<(usize, usize), E, Cpu, T>;

/// The shared body of the two index ops: `forward` fills a zeroed output from the input, and
/// the backward pass adds `backward(grad_out)` into the input's gradient.
fn index_op<E: Float, T: Tape<E, Cpu>>(
    x: Rows<E, T>,
    out_shape: (usize, usize),
    forward: impl Fn(&[E], &mut [E]),
    backward: impl Fn(&[E], &mut [E]) + 'static,
) -> Rows<E, T> {
    // copy_into reads raw memory, so the input must be laid out densely.
    let x = x.contiguous();
    let (x, mut tape) = x.split_tape();
    let mut input = vec![E::default(); x.shape().num_elements()];
    x.copy_into(&mut input);
    let mut output = vec![E::default(); out_shape.0 * out_shape.1];
    forward(&input, &mut output);
    drop(input);
    let out = x.device().tensor_from_vec(output, out_shape);
    if T::OWNS_TAPE {
        let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            // Only one gradient buffer can be borrowed at a time: move the output's out and back.
            let grad_out = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            backward(&grad_out, grads.get_or_alloc_mut(&x_ghost)?);
            **grads.get_or_alloc_mut(&out_ghost)? = grad_out;
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// Patches under each output pixel: `(B*in_h*in_w, c)` -> `(B*out_h*out_w, k*k*c)`, patch
/// entries ordered `(kh, kw, channel)`, zeros where the kernel hangs over the padding.
pub fn im2col<E: Float, T: Tape<E, Cpu>>(x: Rows<E, T>, g: ConvGeom) -> Rows<E, T> {
    let (rows, c) = *x.shape();
    assert_eq!(
        rows % g.in_pixels(),
        0,
        "im2col: {rows} rows is not a whole batch of images"
    );
    let batch = rows / g.in_pixels();
    let out_shape = (batch * g.out_pixels(), g.patch_len(c));
    index_op(
        x,
        out_shape,
        move |x, cols| im2col_add(&g, c, x, cols),
        move |grad_cols, grad_x| col2im_add(&g, c, grad_cols, grad_x),
    )
}

/// The adjoint of [`im2col`]: `(B*out_h*out_w, k*k*c)` -> `(B*in_h*in_w, c)`, summing the patch
/// entries that land on the same pixel.
pub fn col2im<E: Float, T: Tape<E, Cpu>>(cols: Rows<E, T>, g: ConvGeom, c: usize) -> Rows<E, T> {
    let (rows, len) = *cols.shape();
    assert_eq!(
        len,
        g.patch_len(c),
        "col2im: patch length does not match kernel and channels"
    );
    assert_eq!(
        rows % g.out_pixels(),
        0,
        "col2im: {rows} rows is not a whole batch"
    );
    let batch = rows / g.out_pixels();
    let out_shape = (batch * g.in_pixels(), c);
    index_op(
        cols,
        out_shape,
        move |cols, x| col2im_add(&g, c, cols, x),
        move |grad_x, grad_cols| im2col_add(&g, c, grad_x, grad_cols),
    )
}

/// A convolution layer with `K x K` kernels (k5 s2 p2 in the paper's nets). Weight layout
/// `(kh, kw, in_channel, out_channel)`. With `BIAS` false it has no bias and its weights start
/// from N(0, 0.02) (the DCGAN layers of gan-zoo's 64x64 nets); with a bias, from PyTorch's
/// default init.
#[derive(Clone, Debug)]
pub struct Conv2d<
    const CIN: usize,
    const COUT: usize,
    E: Dtype,
    D: Storage<E>,
    const K: usize = KERNEL,
    const BIAS: bool = true,
> {
    pub weight: Tensor<Rank4<K, K, CIN, COUT>, E, D>,
    pub bias: Option<Tensor<Rank1<COUT>, E, D>>,
    pub layouts: LayoutCache<E>,
}

/// A transposed convolution layer with `K x K` kernels. Weight layout
/// `(in_channel, kh, kw, out_channel)`. `BIAS` as for [`Conv2d`].
#[derive(Clone, Debug)]
pub struct ConvTranspose2d<
    const CIN: usize,
    const COUT: usize,
    E: Dtype,
    D: Storage<E>,
    const K: usize = KERNEL,
    const BIAS: bool = true,
> {
    pub weight: Tensor<Rank4<CIN, K, K, COUT>, E, D>,
    pub bias: Option<Tensor<Rank1<COUT>, E, D>>,
    pub layouts: LayoutCache<E>,
}

/// gan-zoo's `weights_init`: N(0, 0.02) for every conv weight.
struct DcganInit;

impl<E: Float> rand_distr::Distribution<E> for DcganInit {
    fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> E {
        let z: f64 = rng.sample(rand_distr::StandardNormal);
        E::from_f64(0.02 * z).unwrap()
    }
}

macro_rules! conv_collection {
    ($layer:ident, $fan_in:expr) => {
        impl<const CIN: usize, const COUT: usize, E: Float, const K: usize, const BIAS: bool>
            TensorCollection<E, Cpu> for $layer<CIN, COUT, E, Cpu, K, BIAS>
        where
            Cpu: Device<E>,
        {
            type To<E2: Dtype, D2: Device<E2>> = $layer<CIN, COUT, E2, D2, K, BIAS>;

            fn iter_tensors<V: ModuleVisitor<Self, E, Cpu>>(
                visitor: &mut V,
            ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
                // PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
                macro_rules! torch_init {
                    () => {
                        TensorOptions::reset_with(|t| {
                            let b = E::ONE / E::from_usize($fan_in).unwrap().sqrt();
                            t.try_fill_with_distr(rand_distr::Uniform::new(-b, b))
                        })
                    };
                }
                if !BIAS {
                    let dcgan_init =
                        TensorOptions::reset_with(|t| t.try_fill_with_distr(DcganInit));
                    return visitor.visit_fields(
                        Self::tensor("weight", |s| &s.weight, |s| &mut s.weight, dcgan_init),
                        |weight| $layer {
                            weight,
                            bias: None,
                            layouts: LayoutCache::default(),
                        },
                    );
                }
                visitor.visit_fields(
                    (
                        Self::tensor("weight", |s| &s.weight, |s| &mut s.weight, torch_init!()),
                        Self::tensor(
                            "bias",
                            |s| s.bias.as_ref().expect("a layer with BIAS has a bias"),
                            |s| s.bias.as_mut().expect("a layer with BIAS has a bias"),
                            torch_init!(),
                        ),
                    ),
                    |(weight, bias)| $layer {
                        weight,
                        bias: Some(bias),
                        layouts: LayoutCache::default(),
                    },
                )
            }
        }
    };
}
conv_collection!(Conv2d, CIN * K * K);
// PyTorch computes a transposed conv's fan-in from the weight's second dim: out channels.
conv_collection!(ConvTranspose2d, COUT * K * K);

/// A layer's bias as a taped row, if it has one.
fn bias_row<const C: usize, E: Float, T: Tape<E, Cpu>>(
    bias: &Option<Tensor<Rank1<C>, E, Cpu>>,
) -> Option<Tensor<(usize,), E, Cpu, T>>
where
    Cpu: Device<E>,
{
    bias.as_ref().map(|b| b.retaped::<T>().reshape_like(&(C,)))
}

/// Activation rows with a compile-time channel count.
pub type Act<const C: usize, E, T> = Tensor<(usize, Const<C>), E, Cpu, T>;

/// A conv-shaped layer op on `Const`-width rows.
fn conv_layer<const CI: usize, const CO: usize, E: Float, T: Tape<E, Cpu>>(
    x: Act<CI, E, T>,
    w: LayerWeight<E, T>,
    bias: Option<Tensor<(usize,), E, Cpu, T>>,
    map: LinearMap,
    act: Activation<E>,
    want_slopes: bool,
) -> WithSlopes<Act<CO, E, T>, E> {
    let rows = x.shape().0;
    let (y, slopes) = layer(x.reshape_like(&(rows, CI)), w, bias, map, act, want_slopes);
    let rows = y.shape().0;
    (y.reshape_like(&(rows, Const::<CO>)), slopes)
}

impl<const CIN: usize, const COUT: usize, E: Float, const K: usize, const BIAS: bool>
    Conv2d<CIN, COUT, E, Cpu, K, BIAS>
where
    Cpu: Device<E>,
{
    fn kernels(g: ConvGeom) -> FusedConv {
        debug_assert_eq!(g.kernel, K);
        FusedConv::new(g, CIN, COUT, false)
    }

    fn bias_row<T: Tape<E, Cpu>>(&self) -> Option<Tensor<(usize,), E, Cpu, T>> {
        bias_row(&self.bias)
    }

    fn w<T: Tape<E, Cpu>>(&self) -> LayerWeight<'_, E, T> {
        LayerWeight {
            tensor: self
                .weight
                .retaped::<T>()
                .reshape_like(&(K * K * CIN, COUT)),
            cache: Some(&self.layouts),
        }
    }

    /// `act(conv(x) + b)`: `(B*in_h*in_w, CIN)` -> `(B*out_h*out_w, COUT)`; with `want_slopes`,
    /// also the activation's slope at each output.
    pub fn layer<T: Tape<E, Cpu>>(
        &self,
        x: Act<CIN, E, T>,
        g: ConvGeom,
        act: Activation<E>,
        want_slopes: bool,
    ) -> WithSlopes<Act<COUT, E, T>, E> {
        let map = LinearMap::Conv(Self::kernels(g));
        conv_layer(x, self.w(), self.bias_row(), map, act, want_slopes)
    }

    /// `conv(x) + b`.
    pub fn forward<T: Tape<E, Cpu>>(&self, x: Act<CIN, E, T>, g: ConvGeom) -> Act<COUT, E, T> {
        self.layer(x, g, Activation::Identity, false).0
    }

    /// `act(conv^T(dy))`, the chain rule back through this layer: `(B*out_pixels, COUT)` ->
    /// `(B*in_pixels, CIN)`. A taped op on this layer's own weight.
    pub fn adjoint<T: Tape<E, Cpu>>(
        &self,
        dy: Act<COUT, E, T>,
        g: ConvGeom,
        act: Activation<E>,
    ) -> Act<CIN, E, T> {
        let map = LinearMap::ConvT(Self::kernels(g));
        conv_layer(dy, self.w(), None, map, act, false).0
    }

    /// The gradient of `sum(dy * forward(x))` w.r.t. `x`.
    pub fn input_grad<T: Tape<E, Cpu>>(&self, dy: Act<COUT, E, T>, g: ConvGeom) -> Act<CIN, E, T> {
        self.adjoint(dy, g, Activation::Identity)
    }
}

impl<const CIN: usize, const COUT: usize, E: Float, const K: usize, const BIAS: bool>
    ConvTranspose2d<CIN, COUT, E, Cpu, K, BIAS>
where
    Cpu: Device<E>,
{
    /// `act(conv_t(x) + b)`: `(B*g.out_pixels, CIN)` -> `(B*g.in_pixels, COUT)`, the adjoint
    /// geometry of the conv `g`.
    pub fn layer<T: Tape<E, Cpu>>(
        &self,
        x: Act<CIN, E, T>,
        g: ConvGeom,
        act: Activation<E>,
    ) -> Act<COUT, E, T> {
        let w = LayerWeight {
            tensor: self
                .weight
                .retaped::<T>()
                .reshape_like(&(CIN, K * K * COUT)),
            cache: Some(&self.layouts),
        };
        debug_assert_eq!(g.kernel, K);
        // The weight (CIN, k*k*COUT) is the transpose of the adjoint conv's (k*k*COUT, CIN).
        let map = LinearMap::ConvT(FusedConv::new(g, COUT, CIN, true));
        conv_layer(x, w, bias_row(&self.bias), map, act, false).0
    }

    /// `conv_t(x) + b`.
    pub fn forward<T: Tape<E, Cpu>>(&self, x: Act<CIN, E, T>, g: ConvGeom) -> Act<COUT, E, T> {
        self.layer(x, g, Activation::Identity)
    }
}

/// `im2col(x) W`: `(B*in_pixels, c)` -> `(B*out_pixels, n)`, with `W` of `(k*k*c, n)`, or
/// `(n, k*k*c)` when `w_t`. Both inputs may be taped (the tape rides on `x`).
pub fn conv<E: Float, T: Tape<E, Cpu> + Merge<R>, R: Tape<E, Cpu>>(
    x: Rows<E, T>,
    w: Rows<E, R>,
    g: ConvGeom,
    n: usize,
    w_t: bool,
) -> Rows<E, T> {
    let c = x.shape().1;
    let map = LinearMap::Conv(FusedConv::new(g, c, n, w_t));
    layer(x, w, None::<Bias<E>>, map, Activation::Identity, false).0
}

/// `col2im(y W^T)`, the adjoint of [`conv`] in `x` (the transposed conv, and the input
/// gradient of a conv): `(B*out_pixels, n)` -> `(B*in_pixels, c)`.
pub fn conv_t<E: Float, T: Tape<E, Cpu> + Merge<R>, R: Tape<E, Cpu>>(
    y: Rows<E, T>,
    w: Rows<E, R>,
    g: ConvGeom,
    c: usize,
    w_t: bool,
) -> Rows<E, T> {
    let n = y.shape().1;
    let map = LinearMap::ConvT(FusedConv::new(g, c, n, w_t));
    layer(y, w, None::<Bias<E>>, map, Activation::Identity, false).0
}

type Bias<E> = Tensor<(usize,), E, Cpu>;
