//! A small MNIST classifier: the feature extractor of the digits' quality scores (the Frechet
//! distance and the classifier score in `quality::digits`), trained by `wgangp-tui
//! train-classifier` and shipped in `assets/mnist/` (see its `PROVENANCE.md`).
//!
//! Four ReLU convolutions (28 -> 28 -> 14 -> 7 -> 4 pixels, 32, 64, 128, 128 channels), a
//! 128-wide ReLU layer whose outputs are the features, and a linear layer to the ten classes'
//! logits. Pictures are rows of 784 values in [0, 1], as the MNIST generator makes them.

use dfdx::nn::modules::Linear;
use dfdx::prelude::*;

use super::kernels::conv::ConvGeom;
use super::mnist::MNIST_PIXELS;
use super::ops::conv::Conv2d;
use super::ops::layer::{Activation, dense};
use super::{Batch, Float};

pub const CLASSES: usize = 10;
/// Width of the feature layer (the Frechet distance's space).
pub const FEATURES: usize = 128;
/// The last conv's output: 4 x 4 pixels of 128 channels.
const FLAT: usize = 4 * 4 * 128;

#[derive(Clone, Debug)]
pub struct DigitClassifier<E: Dtype, D: Storage<E>> {
    pub c1: Conv2d<1, 32, E, D, 3>,
    pub c2: Conv2d<32, 64, E, D, 4>,
    pub c3: Conv2d<64, 128, E, D, 4>,
    pub c4: Conv2d<128, 128, E, D, 3>,
    pub fc1: Linear<FLAT, FEATURES, E, D>,
    pub fc2: Linear<FEATURES, CLASSES, E, D>,
}

impl<E: Float> TensorCollection<E, Cpu> for DigitClassifier<E, Cpu>
where
    Cpu: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = DigitClassifier<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("c1", |s| &s.c1, |s| &mut s.c1),
                Self::module("c2", |s| &s.c2, |s| &mut s.c2),
                Self::module("c3", |s| &s.c3, |s| &mut s.c3),
                Self::module("c4", |s| &s.c4, |s| &mut s.c4),
                Self::module("fc1", |s| &s.fc1, |s| &mut s.fc1),
                Self::module("fc2", |s| &s.fc2, |s| &mut s.fc2),
            ),
            |(c1, c2, c3, c4, fc1, fc2)| DigitClassifier {
                c1,
                c2,
                c3,
                c4,
                fc1,
                fc2,
            },
        )
    }
}

/// What one pass gives: the features and the logits, one row per picture.
pub struct Classified<E: Dtype, T> {
    pub features: Tensor<(usize, Const<FEATURES>), E, Cpu>,
    pub logits: Tensor<(usize, Const<CLASSES>), E, Cpu, T>,
}

impl<E: Float> DigitClassifier<E, Cpu>
where
    Cpu: Device<E>,
{
    /// The features and logits of the pictures `x`. `keep`, in training, multiplies the
    /// features before the last layer (dropout's mask, already scaled); `None` at inference.
    pub fn classify<T: Tape<E, Cpu>>(
        &self,
        x: Batch<MNIST_PIXELS, E, T>,
        keep: Option<Tensor<(usize, Const<FEATURES>), E, Cpu>>,
    ) -> Classified<E, T> {
        let n = x.shape().0;
        let relu = || Activation::Leaky(E::zero());
        let g1 = ConvGeom::conv(28, 28, 3, 1, 1);
        let g2 = ConvGeom::conv(g1.out_h, g1.out_w, 4, 2, 1);
        let g3 = ConvGeom::conv(g2.out_h, g2.out_w, 4, 2, 1);
        let g4 = ConvGeom::conv(g3.out_h, g3.out_w, 3, 2, 1);
        assert_eq!(g4.out_pixels() * 128, FLAT, "FLAT is the last feature map");
        let x = x.reshape_like(&(n * MNIST_PIXELS, Const::<1>));
        let (a, _) = self.c1.layer(x, g1, relu(), false);
        let (a, _) = self.c2.layer(a, g2, relu(), false);
        let (a, _) = self.c3.layer(a, g3, relu(), false);
        let (a, _) = self.c4.layer(a, g4, relu(), false);
        let a = a.reshape_like(&(n, Const::<FLAT>));
        let (features, _) = dense(&self.fc1, a, relu(), false);
        // The features are read out untaped: the scores need their values, training only the
        // logits' gradient.
        let (features, tape) = features.split_tape();
        let hidden = features.clone().put_tape(tape);
        let hidden = match keep {
            Some(mask) => hidden * mask,
            None => hidden,
        };
        let (logits, _) = dense(&self.fc2, hidden, Activation::Identity, false);
        Classified { features, logits }
    }
}
