//! The paper's toy models: MLPs with 3 hidden layers of ReLU units on 2-d data.

use dfdx::nn::modules::Linear;
use dfdx::prelude::*;

use super::device::net::{Act, LayerSpec, NetSpec};
use super::ops::layer::{Activation, dense, dense_adjoint};
use super::{Batch, Critic, Float, Generator};

/// Noise and data dimension of the toy family.
pub const TOY_DIM: usize = 2;
/// Hidden width used by the paper.
pub const TOY_HIDDEN: usize = 512;

/// 2 -> H -> H -> H -> OUT with ReLU between the linear layers.
#[derive(Clone, Debug)]
pub struct Mlp<const H: usize, const OUT: usize, E: Dtype, D: Storage<E>> {
    pub l1: Linear<TOY_DIM, H, E, D>,
    pub l2: Linear<H, H, E, D>,
    pub l3: Linear<H, H, E, D>,
    pub l4: Linear<H, OUT, E, D>,
}

pub type ToyCritic<const H: usize, E> = Mlp<H, 1, E, Cpu>;
pub type ToyGenerator<const H: usize, E> = Mlp<H, TOY_DIM, E, Cpu>;

impl<const H: usize, const OUT: usize, E: Float> TensorCollection<E, Cpu> for Mlp<H, OUT, E, Cpu>
where
    Cpu: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Mlp<H, OUT, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("l1", |s| &s.l1, |s| &mut s.l1),
                Self::module("l2", |s| &s.l2, |s| &mut s.l2),
                Self::module("l3", |s| &s.l3, |s| &mut s.l3),
                Self::module("l4", |s| &s.l4, |s| &mut s.l4),
            ),
            |(l1, l2, l3, l4)| Mlp { l1, l2, l3, l4 },
        )
    }
}

impl<const H: usize, const OUT: usize, E: Float> Mlp<H, OUT, E, Cpu>
where
    Cpu: Device<E>,
{
    fn forward<T: Tape<E, Cpu>>(&self, x: Batch<TOY_DIM, E, T>) -> Batch<OUT, E, T> {
        let h = dense(&self.l1, x, relu(), false).0;
        let h = dense(&self.l2, h, relu(), false).0;
        let h = dense(&self.l3, h, relu(), false).0;
        dense(&self.l4, h, Activation::Identity, false).0
    }
}

impl<const H: usize, const OUT: usize, E: Float> Mlp<H, OUT, E, Cpu>
where
    Cpu: Device<E>,
{
    /// The same layers for a device: ReLU between them, as [`Self::forward`].
    fn device_net(&self) -> NetSpec {
        NetSpec {
            layers: vec![
                LayerSpec::dense("l1", &self.l1, Act::Leaky(0.0)),
                LayerSpec::dense("l2", &self.l2, Act::Leaky(0.0)),
                LayerSpec::dense("l3", &self.l3, Act::Leaky(0.0)),
                LayerSpec::dense("l4", &self.l4, Act::Identity),
            ],
        }
    }
}

impl<const H: usize, E: Float> Critic<E, TOY_DIM> for ToyCritic<H, E>
where
    Cpu: Device<E>,
{
    fn score<T: Tape<E, Cpu>>(&self, x: Batch<TOY_DIM, E, T>) -> Tensor<(usize,), E, Cpu, T> {
        let n = x.shape().0;
        self.forward(x).reshape_like(&(n,))
    }

    fn input_gradient<T: Tape<E, Cpu>>(&self, x: &Batch<TOY_DIM, E>) -> Batch<TOY_DIM, E, T> {
        let n = x.shape().0;
        // Forward pass (untaped) for the ReLU slopes.
        let (h1, m1) = dense(&self.l1, x.clone(), relu(), true);
        let (h2, m2) = dense(&self.l2, h1, relu(), true);
        let (_, m3) = dense(&self.l3, h2, relu(), true);
        let [m1, m2, m3] = [m1, m2, m3].map(|m| m.expect("slopes asked for"));
        // Row-vector chain rule: g = (((w4 * m3) W3 * m2) W2 * m1) W1.
        let w4 = self.l4.weight.retaped::<T>().reshape_like(&(Const::<H>,));
        let m3 = x.device().tensor_from_vec(m3, (n, Const::<H>));
        let g = w4.broadcast_like(&(n, Const::<H>)) * m3;
        let g = dense_adjoint(g, &self.l3, Activation::Scale(m2));
        let g = dense_adjoint(g, &self.l2, Activation::Scale(m1));
        dense_adjoint(g, &self.l1, Activation::Identity)
    }

    fn layer_weights(&self) -> Vec<(&'static str, Tensor<(usize,), E, Cpu>)> {
        vec![
            ("l1", super::flat(&self.l1.weight)),
            ("l2", super::flat(&self.l2.weight)),
            ("l3", super::flat(&self.l3.weight)),
            ("l4", super::flat(&self.l4.weight)),
        ]
    }

    fn device_net(&self) -> NetSpec {
        Mlp::device_net(self)
    }
}

impl<const H: usize, E: Float> Generator<E, TOY_DIM, TOY_DIM> for ToyGenerator<H, E>
where
    Cpu: Device<E>,
{
    fn generate<T: Tape<E, Cpu>>(&self, z: Batch<TOY_DIM, E, T>) -> Batch<TOY_DIM, E, T> {
        self.forward(z)
    }

    fn device_net(&self) -> NetSpec {
        Mlp::device_net(self)
    }
}

fn relu<E: Float>() -> Activation<E> {
    Activation::Leaky(E::zero())
}
