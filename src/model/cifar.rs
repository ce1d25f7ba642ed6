//! The paper's CIFAR-10 models (`gan_cifar.py`, DIM = 128, noise 128) on 32x32 colour images.
//! Layouts differ from PyTorch's only by fixed permutations (channels-last rows; see `ops::conv`).
//! Pictures are rows of 32*32*3 values in [-1, 1], the channels of a pixel together.

use dfdx::nn::modules::Linear;
use dfdx::prelude::*;

use super::device::net::{Act, LayerSpec, NetSpec};
use super::kernels::conv::ConvGeom;
use super::mnist::ConvCritic;
use super::ops::conv::ConvTranspose2d;
use super::ops::layer::{Activation, dense};
use super::ops::norm::ChannelNorm;
use super::{Batch, Float, Generator};

pub const CIFAR_SIDE: usize = 32;
pub const CIFAR_CHANNELS: usize = 3;
pub const CIFAR_VALUES: usize = CIFAR_SIDE * CIFAR_SIDE * CIFAR_CHANNELS;
pub const CIFAR_NOISE: usize = 128;

/// The critic: 3 -> 128 -> 256 -> 512 channels (32 -> 16 -> 8 -> 4), 8192 -> 1, LeakyReLU 0.2,
/// no normalisation.
pub type CifarCritic<E> = ConvCritic<CIFAR_VALUES, 3, 128, 256, 512, 8192, E, Cpu>;

/// The generator: Linear(128 -> 4*4*512), batch norm, ReLU; transposed convs k5 s2
/// 512 -> 256 (4 -> 8), 256 -> 128 (8 -> 16), each with batch norm and ReLU, and 128 -> 3
/// (16 -> 32), tanh.
#[derive(Clone, Debug)]
pub struct CifarGenerator<E: Dtype, D: Storage<E>> {
    pub fc: Linear<CIFAR_NOISE, 8192, E, D>,
    pub n0: ChannelNorm<8192, E, D>,
    pub d1: ConvTranspose2d<512, 256, E, D>,
    pub n1: ChannelNorm<256, E, D>,
    pub d2: ConvTranspose2d<256, 128, E, D>,
    pub n2: ChannelNorm<128, E, D>,
    pub d3: ConvTranspose2d<128, 3, E, D>,
}

impl<E: Float> TensorCollection<E, Cpu> for CifarGenerator<E, Cpu>
where
    Cpu: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = CifarGenerator<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            // Two groups: the fields of one call are at most six.
            (
                (
                    Self::module("fc", |s| &s.fc, |s| &mut s.fc),
                    Self::module("n0", |s| &s.n0, |s| &mut s.n0),
                    Self::module("d1", |s| &s.d1, |s| &mut s.d1),
                ),
                (
                    Self::module("n1", |s| &s.n1, |s| &mut s.n1),
                    Self::module("d2", |s| &s.d2, |s| &mut s.d2),
                    Self::module("n2", |s| &s.n2, |s| &mut s.n2),
                    Self::module("d3", |s| &s.d3, |s| &mut s.d3),
                ),
            ),
            |((fc, n0, d1), (n1, d2, n2, d3))| CifarGenerator {
                fc,
                n0,
                d1,
                n1,
                d2,
                n2,
                d3,
            },
        )
    }
}

impl<E: Float> Generator<E, CIFAR_NOISE, CIFAR_VALUES> for CifarGenerator<E, Cpu>
where
    Cpu: Device<E>,
{
    const BATCH_STATISTICS: bool = true;

    fn generate<T: Tape<E, Cpu>>(&self, z: Batch<CIFAR_NOISE, E, T>) -> Batch<CIFAR_VALUES, E, T> {
        let n = z.shape().0;
        let h = dense(&self.fc, z, Activation::Identity, false).0;
        let h = self
            .n0
            .batch_norm(h)
            .relu()
            .reshape_like(&(n * 16, Const::<512>));
        // Each transposed conv is the adjoint of the k5 s2 p2 conv from its output size to its
        // input size: TF's "SAME" transposed conv, doubling the side.
        let h = self.d1.forward(h, ConvGeom::mnist(8));
        let h = self.n1.batch_norm(h).relu();
        let h = self.d2.forward(h, ConvGeom::mnist(16));
        let h = self.n2.batch_norm(h).relu();
        let h = self.d3.forward(h, ConvGeom::mnist(CIFAR_SIDE)).tanh();
        h.reshape_like(&(n, Const::<CIFAR_VALUES>))
    }

    /// The same layers for a device, as [`Self::generate`] runs them: each batch norm over
    /// the whole batch's rows, `n0` over the linear layer's 8192 features.
    fn device_net(&self) -> NetSpec {
        let (relu, identity) = (Act::Leaky(0.0), Act::Identity);
        NetSpec {
            layers: vec![
                LayerSpec::dense("fc", &self.fc, identity),
                LayerSpec::norm("n0", &self.n0, 1, false, relu),
                LayerSpec::conv_t("d1", &self.d1, ConvGeom::mnist(8), identity),
                LayerSpec::norm("n1", &self.n1, 8 * 8, false, relu),
                LayerSpec::conv_t("d2", &self.d2, ConvGeom::mnist(16), identity),
                LayerSpec::norm("n2", &self.n2, 16 * 16, false, relu),
                LayerSpec::conv_t("d3", &self.d3, ConvGeom::mnist(CIFAR_SIDE), Act::Tanh),
            ],
        }
    }
}
