//! The article's 64x64 colour models: gan-zoo-pytorch's WGAN-GP (DCGAN nets with 4x4 kernels,
//! DIM 64, noise 128, no biases, weights from N(0, 0.02)), on 64x64 colour images. Layouts differ
//! from PyTorch's only by fixed permutations (channels-last rows; see `ops::conv`). Pictures are
//! rows of 64*64*3 values in [-1, 1], the channels of a pixel together.
//!
//! Both nets normalise every hidden layer but the critic's first with GroupNorm, one group per
//! channel (gan-zoo's "LayerNorm2d"): statistics per image, so the penalty's per-sample
//! gradients stay per-sample. The critic's input gradient therefore runs back through the
//! normalisation as taped ops (`normalize_adjoint`), not as constant slopes.

use dfdx::prelude::*;

use super::device::net::{Act as DeviceAct, LayerSpec, NetSpec};
use super::kernels::conv::ConvGeom;
use super::mnist::LEAKY_SLOPE;
use super::ops::conv::{Act, Conv2d, ConvTranspose2d};
use super::ops::layer::{Activation, leaky_held};
use super::ops::norm::{ChannelNorm, NORM_EPS, affine, normalize_adjoint, standardize};
use super::{Batch, Critic, Float, Generator, flat};

pub const FACE_SIDE: usize = 64;
pub const FACE_CHANNELS: usize = 3;
pub const FACE_VALUES: usize = FACE_SIDE * FACE_SIDE * FACE_CHANNELS;
pub const FACE_NOISE: usize = 128;
const KERNEL: usize = 4;

/// gan-zoo's conv layers: 4x4 kernels, no bias, N(0, 0.02) init.
type Down<const CI: usize, const CO: usize, E, D> = Conv2d<CI, CO, E, D, KERNEL, false>;
type Up<const CI: usize, const CO: usize, E, D> = ConvTranspose2d<CI, CO, E, D, KERNEL, false>;

/// k4 s2 p1: halves the side.
fn halving(side: usize) -> ConvGeom {
    ConvGeom::conv(side, side, KERNEL, 2, 1)
}

/// k4 s1 p0 on a 4x4 image: one output pixel (the critic's last layer; its transpose is the
/// generator's first, from the noise as a 1x1 image).
fn to_one_pixel() -> ConvGeom {
    ConvGeom::conv(4, 4, KERNEL, 1, 0)
}

/// The critic on 64x64 colour images: conv 3 -> C1 (64 -> 32) LeakyReLU 0.2; C1 -> C2 (16),
/// C2 -> C3 (8), C3 -> C4 (4), each with GroupNorm and LeakyReLU 0.2; conv k4 s1 p0 C4 -> 1.
/// gan-zoo's has 64, 128, 256, 512 channels ([`Face64Critic`]); the tests use fewer.
#[derive(Clone, Debug)]
pub struct FaceCritic<
    const C1: usize,
    const C2: usize,
    const C3: usize,
    const C4: usize,
    E: Dtype,
    D: Storage<E>,
> {
    pub c1: Down<3, C1, E, D>,
    pub c2: Down<C1, C2, E, D>,
    pub n2: ChannelNorm<C2, E, D>,
    pub c3: Down<C2, C3, E, D>,
    pub n3: ChannelNorm<C3, E, D>,
    pub c4: Down<C3, C4, E, D>,
    pub n4: ChannelNorm<C4, E, D>,
    pub c5: Down<C4, 1, E, D>,
}

/// gan-zoo's critic (DIM 64).
pub type Face64Critic<E> = FaceCritic<64, 128, 256, 512, E, Cpu>;

impl<const C1: usize, const C2: usize, const C3: usize, const C4: usize, E: Float>
    TensorCollection<E, Cpu> for FaceCritic<C1, C2, C3, C4, E, Cpu>
where
    Cpu: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = FaceCritic<C1, C2, C3, C4, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            // Two groups: the fields of one call are at most six.
            (
                (
                    Self::module("c1", |s| &s.c1, |s| &mut s.c1),
                    Self::module("c2", |s| &s.c2, |s| &mut s.c2),
                    Self::module("n2", |s| &s.n2, |s| &mut s.n2),
                    Self::module("c3", |s| &s.c3, |s| &mut s.c3),
                ),
                (
                    Self::module("n3", |s| &s.n3, |s| &mut s.n3),
                    Self::module("c4", |s| &s.c4, |s| &mut s.c4),
                    Self::module("n4", |s| &s.n4, |s| &mut s.n4),
                    Self::module("c5", |s| &s.c5, |s| &mut s.c5),
                ),
            ),
            |((c1, c2, n2, c3), (n3, c4, n4, c5))| FaceCritic {
                c1,
                c2,
                n2,
                c3,
                n3,
                c4,
                n4,
                c5,
            },
        )
    }
}

/// What the input-gradient graph needs of one normalised layer's forward pass: its
/// standardised values (carrying the tape of everything before), the groups' deviations, and
/// the LeakyReLU's slopes.
struct NormTrace<const C: usize, E: Dtype, T> {
    unit: Act<C, E, T>,
    std: Tensor<(usize, Const<C>), E, Cpu, T>,
    slopes: Vec<E>,
}

impl<const C: usize, E: Float> ChannelNorm<C, E, Cpu>
where
    Cpu: Device<E>,
{
    /// GroupNorm per image, then LeakyReLU with its slopes held (see [`leaky_held`]); with
    /// `trace`, also what [`normalize_adjoint`] needs. The tape goes with the trace when there
    /// is one (the input-gradient graph uses it), else with the output.
    fn norm_leaky<T: Tape<E, Cpu> + Merge<T>>(
        &self,
        z: Act<C, E, T>,
        images: usize,
        trace: bool,
    ) -> (Act<C, E, T>, Option<NormTrace<C, E, T>>) {
        let (unit, std) = standardize(z, images, NORM_EPS);
        let (gamma, beta) = (self.gamma.retaped::<T>(), self.beta.retaped::<T>());
        let slope = E::from_f64(LEAKY_SLOPE).unwrap();
        if !trace {
            return (leaky_held(affine(unit, gamma, beta), slope).0, None);
        }
        let (a, slopes) = leaky_held(affine(unit.retaped::<T>(), gamma, beta), slope);
        (a, Some(NormTrace { unit, std, slopes }))
    }
}

impl<const C1: usize, const C2: usize, const C3: usize, const C4: usize, E: Float>
    FaceCritic<C1, C2, C3, C4, E, Cpu>
where
    Cpu: Device<E>,
{
    fn slope() -> E {
        E::from_f64(LEAKY_SLOPE).unwrap()
    }
}

impl<const C1: usize, const C2: usize, const C3: usize, const C4: usize, E: Float>
    Critic<E, FACE_VALUES> for FaceCritic<C1, C2, C3, C4, E, Cpu>
where
    Cpu: Device<E>,
{
    fn score<T: Tape<E, Cpu>>(&self, x: Batch<FACE_VALUES, E, T>) -> Tensor<(usize,), E, Cpu, T> {
        let n = x.shape().0;
        let x = x.reshape_like(&(n * FACE_SIDE * FACE_SIDE, Const::<FACE_CHANNELS>));
        let leaky = Activation::Leaky(Self::slope());
        let a = self.c1.layer(x, halving(64), leaky, false).0;
        let a = self
            .n2
            .norm_leaky(self.c2.forward(a, halving(32)), n, false)
            .0;
        let a = self
            .n3
            .norm_leaky(self.c3.forward(a, halving(16)), n, false)
            .0;
        let a = self
            .n4
            .norm_leaky(self.c4.forward(a, halving(8)), n, false)
            .0;
        self.c5.forward(a, to_one_pixel()).reshape_like(&(n,))
    }

    fn input_gradient<T: Tape<E, Cpu>>(
        &self,
        x: &Batch<FACE_VALUES, E>,
    ) -> Batch<FACE_VALUES, E, T> {
        let n = x.shape().0;
        // The forward pass, taped: the normalisations' statistics depend on the weights.
        let x = x
            .clone()
            .retaped::<T>()
            .reshape_like(&(n * FACE_SIDE * FACE_SIDE, Const::<FACE_CHANNELS>));
        let leaky = Activation::Leaky(Self::slope());
        let (a1, m1) = self.c1.layer(x, halving(64), leaky, true);
        let (a2, t2) = self
            .n2
            .norm_leaky(self.c2.forward(a1, halving(32)), n, true);
        let (a3, t3) = self
            .n3
            .norm_leaky(self.c3.forward(a2, halving(16)), n, true);
        let (a4, t4) = self.n4.norm_leaky(self.c4.forward(a3, halving(8)), n, true);
        // The last activation's own tape holds only its affine and slopes, which the gradient
        // w.r.t. the input does not depend on.
        drop(a4);
        let (t2, t3, t4) = (
            t2.expect("traced"),
            t3.expect("traced"),
            t4.expect("traced"),
        );
        // Back from the score (one per image) to the image, row-vector chain rule: each
        // conv's adjoint, then the slopes of the LeakyReLU before it, then back through the
        // normalisation before that.
        let ones = x_ones::<E, T>(n);
        let g = self
            .c5
            .adjoint(ones, to_one_pixel(), Activation::Scale(t4.slopes));
        let g = normalize_adjoint(g, t4.unit, t4.std, self.n4.gamma.retaped::<T>());
        let g = self.c4.adjoint(g, halving(8), Activation::Scale(t3.slopes));
        let g = normalize_adjoint(g, t3.unit, t3.std, self.n3.gamma.retaped::<T>());
        let g = self
            .c3
            .adjoint(g, halving(16), Activation::Scale(t2.slopes));
        let g = normalize_adjoint(g, t2.unit, t2.std, self.n2.gamma.retaped::<T>());
        let g = self.c2.adjoint(
            g,
            halving(32),
            Activation::Scale(m1.expect("slopes asked for")),
        );
        self.c1
            .adjoint(g, halving(64), Activation::Identity)
            .reshape_like(&(n, Const::<FACE_VALUES>))
    }

    fn layer_weights(&self) -> Vec<(&'static str, Tensor<(usize,), E, Cpu>)> {
        vec![
            ("c1", flat(&self.c1.weight)),
            ("c2", flat(&self.c2.weight)),
            ("c3", flat(&self.c3.weight)),
            ("c4", flat(&self.c4.weight)),
            ("c5", flat(&self.c5.weight)),
        ]
    }

    /// The same layers for a device, as [`Self::score`] runs them: each GroupNorm over one
    /// image's pixels.
    fn device_net(&self) -> NetSpec {
        let leaky = DeviceAct::Leaky(LEAKY_SLOPE as f32);
        let identity = DeviceAct::Identity;
        NetSpec {
            layers: vec![
                LayerSpec::conv("c1", &self.c1, halving(64), leaky),
                LayerSpec::conv("c2", &self.c2, halving(32), identity),
                LayerSpec::norm("n2", &self.n2, 16 * 16, true, leaky),
                LayerSpec::conv("c3", &self.c3, halving(16), identity),
                LayerSpec::norm("n3", &self.n3, 8 * 8, true, leaky),
                LayerSpec::conv("c4", &self.c4, halving(8), identity),
                LayerSpec::norm("n4", &self.n4, 4 * 4, true, leaky),
                LayerSpec::conv("c5", &self.c5, to_one_pixel(), identity),
            ],
        }
    }
}

/// d score / d score: one per image, the seed of the chain rule.
fn x_ones<E: Float, T: Tape<E, Cpu>>(n: usize) -> Act<1, E, T>
where
    Cpu: Device<E>,
{
    Cpu::default().ones_like(&(n, Const::<1>)).retaped::<T>()
}

/// The generator: the noise as a 128-channel 1x1 image; transposed convs k4 s1 p0 128 -> 512
/// (4x4), then k4 s2 p1 512 -> 256 (8), 256 -> 128 (16), 128 -> 64 (32), each with GroupNorm
/// and ReLU; 64 -> 3 (64), tanh.
#[derive(Clone, Debug)]
pub struct FaceGenerator<E: Dtype, D: Storage<E>> {
    pub d0: Up<FACE_NOISE, 512, E, D>,
    pub n0: ChannelNorm<512, E, D>,
    pub d1: Up<512, 256, E, D>,
    pub n1: ChannelNorm<256, E, D>,
    pub d2: Up<256, 128, E, D>,
    pub n2: ChannelNorm<128, E, D>,
    pub d3: Up<128, 64, E, D>,
    pub n3: ChannelNorm<64, E, D>,
    pub d4: Up<64, 3, E, D>,
}

impl<E: Float> TensorCollection<E, Cpu> for FaceGenerator<E, Cpu>
where
    Cpu: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = FaceGenerator<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                (
                    Self::module("d0", |s| &s.d0, |s| &mut s.d0),
                    Self::module("n0", |s| &s.n0, |s| &mut s.n0),
                    Self::module("d1", |s| &s.d1, |s| &mut s.d1),
                    Self::module("n1", |s| &s.n1, |s| &mut s.n1),
                    Self::module("d2", |s| &s.d2, |s| &mut s.d2),
                ),
                (
                    Self::module("n2", |s| &s.n2, |s| &mut s.n2),
                    Self::module("d3", |s| &s.d3, |s| &mut s.d3),
                    Self::module("n3", |s| &s.n3, |s| &mut s.n3),
                    Self::module("d4", |s| &s.d4, |s| &mut s.d4),
                ),
            ),
            |((d0, n0, d1, n1, d2), (n2, d3, n3, d4))| FaceGenerator {
                d0,
                n0,
                d1,
                n1,
                d2,
                n2,
                d3,
                n3,
                d4,
            },
        )
    }
}

impl<E: Float> Generator<E, FACE_NOISE, FACE_VALUES> for FaceGenerator<E, Cpu>
where
    Cpu: Device<E>,
{
    fn generate<T: Tape<E, Cpu>>(&self, z: Batch<FACE_NOISE, E, T>) -> Batch<FACE_VALUES, E, T> {
        let n = z.shape().0;
        // Each transposed conv is the adjoint of the conv from its output size to its input size.
        let h = self.d0.forward(z, to_one_pixel());
        let h = self.n0.per_image(h, n).relu();
        let h = self.d1.forward(h, halving(8));
        let h = self.n1.per_image(h, n).relu();
        let h = self.d2.forward(h, halving(16));
        let h = self.n2.per_image(h, n).relu();
        let h = self.d3.forward(h, halving(32));
        let h = self.n3.per_image(h, n).relu();
        let h = self.d4.forward(h, halving(FACE_SIDE)).tanh();
        h.reshape_like(&(n, Const::<FACE_VALUES>))
    }

    /// The same layers for a device, as [`Self::generate`] runs them.
    fn device_net(&self) -> NetSpec {
        let (relu, identity) = (DeviceAct::Leaky(0.0), DeviceAct::Identity);
        NetSpec {
            layers: vec![
                LayerSpec::conv_t("d0", &self.d0, to_one_pixel(), identity),
                LayerSpec::norm("n0", &self.n0, 4 * 4, true, relu),
                LayerSpec::conv_t("d1", &self.d1, halving(8), identity),
                LayerSpec::norm("n1", &self.n1, 8 * 8, true, relu),
                LayerSpec::conv_t("d2", &self.d2, halving(16), identity),
                LayerSpec::norm("n2", &self.n2, 16 * 16, true, relu),
                LayerSpec::conv_t("d3", &self.d3, halving(32), identity),
                LayerSpec::norm("n3", &self.n3, 32 * 32, true, relu),
                LayerSpec::conv_t("d4", &self.d4, halving(FACE_SIDE), DeviceAct::Tanh),
            ],
        }
    }
}
