//! The deep toy nets of the paper's Figure 1b: MLPs of [`DEEP_LAYERS`] fully connected layers
//! (11 hidden layers of [`DEEP_HIDDEN`] ReLU units), no normalisation, on 2-d data. Deep enough
//! that what weight clipping does to the gradient shows layer by layer.
//!
//! The weights start from He (Kaiming) uniform init, U(+-sqrt(6 / fan_in)), biases at 0: each
//! ReLU layer then passes gradients on at about their size, so a level profile at the start is
//! the nets' own, and what clipping does to it shows. (PyTorch's default init, used by the
//! 4-layer toy nets, shrinks a gradient about 2.4 times per layer: 11 layers would hide it.)

use dfdx::prelude::*;
use rand_distr::Uniform;

use super::device::net::{Act, LayerSpec, NetSpec};
use super::ops::layer::{Activation, DenseWeights, dense, dense_adjoint};
use super::toy::TOY_DIM;
use super::{Batch, Critic, Float, Generator, flat};

/// Fully connected layers of a deep net.
pub const DEEP_LAYERS: usize = 12;
/// Width of its hidden layers (the paper's toy width).
pub const DEEP_HIDDEN: usize = 512;
/// Layers between two hidden layers.
const MIDDLE: usize = DEEP_LAYERS - 2;

/// The names of the layers, `l1` (from the input) to `l12`.
const NAMES: [&str; DEEP_LAYERS] = [
    "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9", "l10", "l11", "l12",
];

/// A fully connected layer `I -> O` with He uniform init.
#[derive(Clone, Debug)]
pub struct HeLinear<const I: usize, const O: usize, E: Dtype, D: Storage<E>> {
    pub weight: Tensor<Rank2<O, I>, E, D>,
    pub bias: Tensor<Rank1<O>, E, D>,
}

impl<const I: usize, const O: usize, E: Float> TensorCollection<E, Cpu> for HeLinear<I, O, E, Cpu>
where
    Cpu: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = HeLinear<I, O, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(|t| {
                        let b = (E::from_f64(6.0).unwrap() / E::from_usize(I).unwrap()).sqrt();
                        t.try_fill_with_distr(Uniform::new(-b, b))
                    }),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_to_zeros(),
                ),
            ),
            |(weight, bias)| HeLinear { weight, bias },
        )
    }
}

impl<const I: usize, const O: usize, E: Dtype> DenseWeights<I, O, E> for HeLinear<I, O, E, Cpu> {
    fn weight(&self) -> &Tensor<Rank2<O, I>, E, Cpu> {
        &self.weight
    }

    fn bias(&self) -> &Tensor<Rank1<O>, E, Cpu> {
        &self.bias
    }
}

/// 2 -> H (ReLU) -> ... -> H (ReLU) -> OUT: [`DEEP_LAYERS`] layers in all ([`DEEP_HIDDEN`] wide
/// in the deep family; the tests use fewer).
#[derive(Clone, Debug)]
pub struct DeepMlp<const H: usize, const OUT: usize, E: Dtype, D: Storage<E>> {
    pub first: HeLinear<TOY_DIM, H, E, D>,
    /// Layers 2 to 11.
    pub middle: Vec<HeLinear<H, H, E, D>>,
    pub last: HeLinear<H, OUT, E, D>,
}

pub type DeepCritic<const H: usize, E> = DeepMlp<H, 1, E, Cpu>;
pub type DeepGenerator<const H: usize, E> = DeepMlp<H, TOY_DIM, E, Cpu>;

impl<const H: usize, const OUT: usize, E: Float> TensorCollection<E, Cpu>
    for DeepMlp<H, OUT, E, Cpu>
where
    Cpu: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = DeepMlp<H, OUT, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        let middle = (0..MIDDLE)
            .map(|i| {
                Self::module(
                    NAMES[i + 1],
                    move |s| &s.middle[i],
                    move |s| &mut s.middle[i],
                )
            })
            .collect::<Vec<_>>();
        visitor.visit_fields(
            (
                Self::module(NAMES[0], |s| &s.first, |s| &mut s.first),
                middle,
                Self::module(NAMES[DEEP_LAYERS - 1], |s| &s.last, |s| &mut s.last),
            ),
            |(first, middle, last)| DeepMlp {
                first,
                middle,
                last,
            },
        )
    }
}

fn relu<E: Float>() -> Activation<E> {
    Activation::Leaky(E::zero())
}

impl<const H: usize, const OUT: usize, E: Float> DeepMlp<H, OUT, E, Cpu>
where
    Cpu: Device<E>,
{
    fn forward<T: Tape<E, Cpu>>(&self, x: Batch<TOY_DIM, E, T>) -> Batch<OUT, E, T> {
        let mut h = dense(&self.first, x, relu(), false).0;
        for layer in &self.middle {
            h = dense(layer, h, relu(), false).0;
        }
        dense(&self.last, h, Activation::Identity, false).0
    }

    /// The same layers for a device: ReLU between them, as [`Self::forward`].
    fn device_net(&self) -> NetSpec {
        let mut layers = vec![LayerSpec::dense(NAMES[0], &self.first, Act::Leaky(0.0))];
        for (i, layer) in self.middle.iter().enumerate() {
            layers.push(LayerSpec::dense(NAMES[i + 1], layer, Act::Leaky(0.0)));
        }
        layers.push(LayerSpec::dense(
            NAMES[DEEP_LAYERS - 1],
            &self.last,
            Act::Identity,
        ));
        NetSpec { layers }
    }

    /// The ReLU slopes of the 11 hidden layers at `x` (untaped), first layer first.
    fn slopes(&self, x: &Batch<TOY_DIM, E>) -> Vec<Vec<E>> {
        let (mut h, m) = dense(&self.first, x.clone(), relu(), true);
        let mut slopes = vec![m.expect("slopes asked for")];
        for layer in &self.middle {
            let (next, m) = dense(layer, h, relu(), true);
            slopes.push(m.expect("slopes asked for"));
            h = next;
        }
        slopes
    }
}

impl<const H: usize, E: Float> Critic<E, TOY_DIM> for DeepCritic<H, E>
where
    Cpu: Device<E>,
{
    const ACTIVATION_NORMS: bool = true;

    fn score<T: Tape<E, Cpu>>(&self, x: Batch<TOY_DIM, E, T>) -> Tensor<(usize,), E, Cpu, T> {
        let n = x.shape().0;
        self.forward(x).reshape_like(&(n,))
    }

    fn input_gradient<T: Tape<E, Cpu>>(&self, x: &Batch<TOY_DIM, E>) -> Batch<TOY_DIM, E, T> {
        let n = x.shape().0;
        let dev = x.device();
        let mut slopes = self.slopes(x);
        // Row-vector chain rule from the score back: g = ((w12 * m11) W11 * m10) ... W1.
        let m11 = slopes.pop().expect("11 hidden layers");
        let w12 = self.last.weight.retaped::<T>().reshape_like(&(Const,));
        let m11 = dev.tensor_from_vec(m11, (n, Const::<H>));
        let mut g = w12.broadcast_like(&(n, Const::<H>)) * m11;
        for layer in self.middle.iter().rev() {
            let m = slopes.pop().expect("one slope set per hidden layer");
            g = dense_adjoint(g, layer, Activation::Scale(m));
        }
        dense_adjoint(g, &self.first, Activation::Identity)
    }

    fn layer_weights(&self) -> Vec<(&'static str, Tensor<(usize,), E, Cpu>)> {
        let mut weights = vec![(NAMES[0], flat(&self.first.weight))];
        for (i, layer) in self.middle.iter().enumerate() {
            weights.push((NAMES[i + 1], flat(&layer.weight)));
        }
        weights.push((NAMES[DEEP_LAYERS - 1], flat(&self.last.weight)));
        weights
    }

    fn activation_gradient_norms(&self, x: &Batch<TOY_DIM, E>, d_score: &[E]) -> Vec<f64> {
        let n = x.shape().0;
        assert_eq!(d_score.len(), n, "one score gradient per row");
        let dev = x.device();
        let norm = |v: Vec<E>| {
            v.iter()
                .map(|&x| x.to_f64().unwrap().powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let mut slopes = self.slopes(x);
        let mut norms = vec![0.0; DEEP_LAYERS];
        // The gradient w.r.t. each layer's input, from the last layer back: a layer's input
        // gradient is its output's, times the ReLU's slopes there, times its weight.
        let g = dev.tensor_from_vec(d_score.to_vec(), (n, Const::<1>));
        let mut a = dense_adjoint(g, &self.last, Activation::Identity);
        norms[DEEP_LAYERS - 1] = norm(a.as_vec());
        let mut times_slopes = |a: Batch<H, E>| {
            let m = slopes.pop().expect("one slope set per hidden layer");
            a * dev.tensor_from_vec(m, (n, Const::<H>))
        };
        for (i, layer) in self.middle.iter().enumerate().rev() {
            a = dense_adjoint(times_slopes(a), layer, Activation::Identity);
            norms[i + 1] = norm(a.as_vec());
        }
        let x_grad = dense_adjoint(times_slopes(a), &self.first, Activation::Identity);
        norms[0] = norm(x_grad.as_vec());
        norms
    }

    fn device_net(&self) -> NetSpec {
        DeepMlp::device_net(self)
    }
}

impl<const H: usize, E: Float> Generator<E, TOY_DIM, TOY_DIM> for DeepGenerator<H, E>
where
    Cpu: Device<E>,
{
    fn generate<T: Tape<E, Cpu>>(&self, z: Batch<TOY_DIM, E, T>) -> Batch<TOY_DIM, E, T> {
        self.forward(z)
    }

    fn device_net(&self) -> NetSpec {
        DeepMlp::device_net(self)
    }
}
