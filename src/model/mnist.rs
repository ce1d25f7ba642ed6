//! The paper's MNIST models (DCGAN-like, DIM = 64, noise 128), exactly the architecture of the
//! PyTorch reference benchmark so that speed compares 1:1. Layouts differ from PyTorch's only by
//! fixed permutations (channels-last rows; see `conv`).

use dfdx::nn::modules::Linear;
use dfdx::prelude::*;

use super::device::net::{Act as DeviceAct, LayerSpec, NetSpec};
use super::kernels::conv::ConvGeom;
use super::ops::conv::{Act, Conv2d, ConvTranspose2d};
use super::ops::layer::{Activation, dense};
use super::{Batch, Critic, Float, Generator, flat};

pub use crate::data::MNIST_SIDE;
pub const MNIST_PIXELS: usize = MNIST_SIDE * MNIST_SIDE;
pub const MNIST_NOISE: usize = 128;
/// LeakyReLU slope of the critic (tflib's LeakyReLU).
pub const LEAKY_SLOPE: f64 = 0.2;

/// Critic on square images of `X` values, `CIN` channels a pixel (1: grey, 3: RGB, channels of
/// a pixel together): three k5 s2 p2 convs with `C1`, `C2`, `C3` channels and LeakyReLU, then a
/// linear layer from the `FLAT` features to one score. No normalisation (WGAN-GP forbids batch
/// norm in the critic). The paper's MNIST critic, and its CIFAR-10 critic with `CIN` 3.
#[derive(Clone, Debug)]
pub struct ConvCritic<
    const X: usize,
    const CIN: usize,
    const C1: usize,
    const C2: usize,
    const C3: usize,
    const FLAT: usize,
    E: Dtype,
    D: Storage<E>,
> {
    pub c1: Conv2d<CIN, C1, E, D>,
    pub c2: Conv2d<C1, C2, E, D>,
    pub c3: Conv2d<C2, C3, E, D>,
    pub fc: Linear<FLAT, 1, E, D>,
}

/// The paper's MNIST critic: 1 -> 64 -> 128 -> 256 channels (28 -> 14 -> 7 -> 4), 4096 -> 1.
pub type MnistCritic<E> = ConvCritic<MNIST_PIXELS, 1, 64, 128, 256, 4096, E, Cpu>;

impl<
    const X: usize,
    const CIN: usize,
    const C1: usize,
    const C2: usize,
    const C3: usize,
    const FLAT: usize,
    E: Float,
> TensorCollection<E, Cpu> for ConvCritic<X, CIN, C1, C2, C3, FLAT, E, Cpu>
where
    Cpu: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = ConvCritic<X, CIN, C1, C2, C3, FLAT, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("c1", |s| &s.c1, |s| &mut s.c1),
                Self::module("c2", |s| &s.c2, |s| &mut s.c2),
                Self::module("c3", |s| &s.c3, |s| &mut s.c3),
                Self::module("fc", |s| &s.fc, |s| &mut s.fc),
            ),
            |(c1, c2, c3, fc)| ConvCritic { c1, c2, c3, fc },
        )
    }
}

/// The three conv geometries of a critic on square images of `pixels` pixels.
fn critic_geoms(pixels: usize) -> [ConvGeom; 3] {
    let side = (pixels as f64).sqrt().round() as usize;
    assert_eq!(side * side, pixels, "critic input must be a square image");
    let g1 = ConvGeom::mnist(side);
    let g2 = ConvGeom::mnist(g1.out_h);
    let g3 = ConvGeom::mnist(g2.out_h);
    [g1, g2, g3]
}

impl<
    const X: usize,
    const CIN: usize,
    const C1: usize,
    const C2: usize,
    const C3: usize,
    const FLAT: usize,
    E: Float,
> ConvCritic<X, CIN, C1, C2, C3, FLAT, E, Cpu>
where
    Cpu: Device<E>,
{
    fn slope() -> E {
        E::from_f64(LEAKY_SLOPE).unwrap()
    }

    /// The conv stack; returns the last activation and, with `want_slopes`, the three layers'
    /// LeakyReLU slopes.
    fn features<T: Tape<E, Cpu>>(
        &self,
        x: Batch<X, E, T>,
        want_slopes: bool,
    ) -> (Act<C3, E, T>, [Option<Vec<E>>; 3]) {
        let [g1, g2, g3] = critic_geoms(X / CIN);
        assert_eq!(
            g3.out_pixels() * C3,
            FLAT,
            "FLAT must be the size of the last feature map"
        );
        let n = x.shape().0;
        let leaky = || Activation::Leaky(Self::slope());
        let x = x.reshape_like(&(n * X / CIN, Const::<CIN>));
        let (a1, m1) = self.c1.layer(x, g1, leaky(), want_slopes);
        let (a2, m2) = self.c2.layer(a1, g2, leaky(), want_slopes);
        let (a3, m3) = self.c3.layer(a2, g3, leaky(), want_slopes);
        (a3, [m1, m2, m3])
    }
}

impl<
    const X: usize,
    const CIN: usize,
    const C1: usize,
    const C2: usize,
    const C3: usize,
    const FLAT: usize,
    E: Float,
> Critic<E, X> for ConvCritic<X, CIN, C1, C2, C3, FLAT, E, Cpu>
where
    Cpu: Device<E>,
{
    fn score<T: Tape<E, Cpu>>(&self, x: Batch<X, E, T>) -> Tensor<(usize,), E, Cpu, T> {
        let n = x.shape().0;
        let (a3, _) = self.features(x, false);
        let a3 = a3.reshape_like(&(n, Const::<FLAT>));
        dense(&self.fc, a3, Activation::Identity, false)
            .0
            .reshape_like(&(n,))
    }

    fn input_gradient<T: Tape<E, Cpu>>(&self, x: &Batch<X, E>) -> Batch<X, E, T> {
        let [g1, g2, g3] = critic_geoms(X / CIN);
        let n = x.shape().0;
        let (_, slopes) = self.features(x.clone(), true);
        let [m1, m2, m3] = slopes.map(|m| m.expect("slopes asked for"));
        // Row-vector chain rule from the score back to the image, with each layer's slopes
        // (constants) applied after its adjoint.
        let w = self
            .fc
            .weight
            .retaped::<T>()
            .reshape_like(&(Const::<FLAT>,));
        let rows = n * g3.out_pixels();
        let m3 = x.device().tensor_from_vec(m3, (n, Const::<FLAT>));
        let g = (w.broadcast_like(&(n, Const::<FLAT>)) * m3).reshape_like(&(rows, Const::<C3>));
        let g = self.c3.adjoint(g, g3, Activation::Scale(m2));
        let g = self.c2.adjoint(g, g2, Activation::Scale(m1));
        self.c1
            .adjoint(g, g1, Activation::Identity)
            .reshape_like(&(n, Const::<X>))
    }

    fn layer_weights(&self) -> Vec<(&'static str, Tensor<(usize,), E, Cpu>)> {
        vec![
            ("c1", flat(&self.c1.weight)),
            ("c2", flat(&self.c2.weight)),
            ("c3", flat(&self.c3.weight)),
            ("fc", flat(&self.fc.weight)),
        ]
    }

    /// The same layers for a device, as [`Self::features`] and [`Self::score`] run them.
    fn device_net(&self) -> NetSpec {
        let [g1, g2, g3] = critic_geoms(X / CIN);
        let leaky = DeviceAct::Leaky(LEAKY_SLOPE as f32);
        NetSpec {
            layers: vec![
                LayerSpec::conv("c1", &self.c1, g1, leaky),
                LayerSpec::conv("c2", &self.c2, g2, leaky),
                LayerSpec::conv("c3", &self.c3, g3, leaky),
                LayerSpec::dense("fc", &self.fc, DeviceAct::Identity),
            ],
        }
    }
}

/// The paper's MNIST generator: Linear(128 -> 4*4*256) ReLU, then transposed convs
/// 256 -> 128 (4 -> 8, cropped to 7) ReLU, 128 -> 64 (7 -> 14) ReLU, 64 -> 1 (14 -> 28) sigmoid.
#[derive(Clone, Debug)]
pub struct MnistGenerator<E: Dtype, D: Storage<E>> {
    pub fc: Linear<MNIST_NOISE, 4096, E, D>,
    pub d1: ConvTranspose2d<256, 128, E, D>,
    pub d2: ConvTranspose2d<128, 64, E, D>,
    pub d3: ConvTranspose2d<64, 1, E, D>,
}

impl<E: Float> TensorCollection<E, Cpu> for MnistGenerator<E, Cpu>
where
    Cpu: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = MnistGenerator<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("fc", |s| &s.fc, |s| &mut s.fc),
                Self::module("d1", |s| &s.d1, |s| &mut s.d1),
                Self::module("d2", |s| &s.d2, |s| &mut s.d2),
                Self::module("d3", |s| &s.d3, |s| &mut s.d3),
            ),
            |(fc, d1, d2, d3)| MnistGenerator { fc, d1, d2, d3 },
        )
    }
}

impl<E: Float> Generator<E, MNIST_NOISE, MNIST_PIXELS> for MnistGenerator<E, Cpu>
where
    Cpu: Device<E>,
{
    fn generate<T: Tape<E, Cpu>>(&self, z: Batch<MNIST_NOISE, E, T>) -> Batch<MNIST_PIXELS, E, T> {
        let n = z.shape().0;
        let relu = || Activation::Leaky(E::zero());
        let h = dense(&self.fc, z, relu(), false)
            .0
            .reshape_like(&(n * 16, Const::<256>));
        // Each transposed conv is the adjoint of the conv from its output size to its input size;
        // 7 -> 4 is TF's "SAME" 4 -> 8 followed by the crop to 7x7.
        let h = self.d1.layer(h, ConvGeom::mnist(7), relu());
        let h = self.d2.layer(h, ConvGeom::mnist(14), relu());
        let h = self
            .d3
            .layer(h, ConvGeom::mnist(MNIST_SIDE), Activation::Sigmoid);
        h.reshape_like(&(n, Const::<MNIST_PIXELS>))
    }

    /// The same layers for a device, as [`Self::generate`] runs them.
    fn device_net(&self) -> NetSpec {
        let relu = DeviceAct::Leaky(0.0);
        NetSpec {
            layers: vec![
                LayerSpec::dense("fc", &self.fc, relu),
                LayerSpec::conv_t("d1", &self.d1, ConvGeom::mnist(7), relu),
                LayerSpec::conv_t("d2", &self.d2, ConvGeom::mnist(14), relu),
                LayerSpec::conv_t(
                    "d3",
                    &self.d3,
                    ConvGeom::mnist(MNIST_SIDE),
                    DeviceAct::Sigmoid,
                ),
            ],
        }
    }
}
