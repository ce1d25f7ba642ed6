//! The model families: which generator and critic each [`Family`] trains, and the one dispatch
//! from a run's family (known at run time) to those types (compile-time shapes). Adding a family
//! touches its model file, [`Family`] and this file.

use dfdx::prelude::*;

use crate::checkpoint::Checkpoint;
use crate::config::Family;
use crate::model::cifar::{
    CIFAR_CHANNELS, CIFAR_NOISE, CIFAR_SIDE, CIFAR_VALUES, CifarCritic, CifarGenerator,
};
use crate::model::dcgan64::{
    FACE_CHANNELS, FACE_NOISE, FACE_SIDE, FACE_VALUES, Face64Critic, FaceGenerator,
};
use crate::model::deep::{DEEP_HIDDEN, DeepCritic, DeepGenerator};
use crate::model::mnist::{MNIST_NOISE, MNIST_PIXELS, MNIST_SIDE, MnistCritic, MnistGenerator};
use crate::model::params::load_named_params;
use crate::model::toy::{TOY_DIM, TOY_HIDDEN, ToyCritic, ToyGenerator};
use crate::model::{Critic, Generator};

pub type ToyG = ToyGenerator<TOY_HIDDEN, f32>;
pub type ToyD = ToyCritic<TOY_HIDDEN, f32>;
pub type DeepG = DeepGenerator<DEEP_HIDDEN, f32>;
pub type DeepD = DeepCritic<DEEP_HIDDEN, f32>;
pub type MnistG = MnistGenerator<f32, Cpu>;
pub type MnistD = MnistCritic<f32>;
pub type CifarG = CifarGenerator<f32, Cpu>;
pub type CifarD = CifarCritic<f32>;
pub type FaceG = FaceGenerator<f32, Cpu>;
pub type FaceD = Face64Critic<f32>;

/// A family's net in f64 (`exact`).
pub type Exact<M> = <M as TensorCollection<f32, Cpu>>::To<f64, Cpu>;

/// Work written once for any family: [`dispatch`] runs it with the family's generator `G`,
/// critic `D`, noise size `Z` and sample size `X`.
pub trait FamilyJob {
    type Output;

    fn with_nets<G, D, const Z: usize, const X: usize>(self) -> Self::Output
    where
        G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
        D: Critic<f32, X> + BuildModule<Cpu, f32>,
        Exact<G>: Generator<f64, Z, X>,
        Exact<D>: Critic<f64, X>;
}

/// Runs `job` with the types of `family`.
pub fn dispatch<J: FamilyJob>(family: Family, job: J) -> J::Output {
    match family {
        Family::Toy => job.with_nets::<ToyG, ToyD, TOY_DIM, TOY_DIM>(),
        Family::DeepToy => job.with_nets::<DeepG, DeepD, TOY_DIM, TOY_DIM>(),
        Family::Mnist => job.with_nets::<MnistG, MnistD, MNIST_NOISE, MNIST_PIXELS>(),
        Family::Cifar32 => job.with_nets::<CifarG, CifarD, CIFAR_NOISE, CIFAR_VALUES>(),
        Family::Face64 => job.with_nets::<FaceG, FaceD, FACE_NOISE, FACE_VALUES>(),
    }
}

/// A family's pictures: side, channels, and whether the generator's values are tanh's
/// [-1, 1] (else sigmoid's [0, 1]). `None` for the 2-d toys.
pub fn picture_shape(family: Family) -> Option<(usize, usize, bool)> {
    match family {
        Family::Toy | Family::DeepToy => None,
        Family::Mnist => Some((MNIST_SIDE, 1, false)),
        Family::Cifar32 => Some((CIFAR_SIDE, CIFAR_CHANNELS, true)),
        Family::Face64 => Some((FACE_SIDE, FACE_CHANNELS, true)),
    }
}

/// Whether a checkpoint fits the models of its family (names and shapes of every tensor).
pub fn check_checkpoint(ck: &Checkpoint) -> Result<(), String> {
    struct Check<'a>(&'a Checkpoint);
    impl FamilyJob for Check<'_> {
        type Output = Result<(), String>;
        fn with_nets<G, D, const Z: usize, const X: usize>(self) -> Self::Output
        where
            G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
            D: Critic<f32, X> + BuildModule<Cpu, f32>,
        {
            let dev = Cpu::default();
            load_named_params(&mut G::build(&dev), &self.0.generator)
                .map_err(|e| format!("generator: {e}"))?;
            load_named_params(&mut D::build(&dev), &self.0.critic)
                .map_err(|e| format!("critic: {e}"))
        }
    }
    dispatch(ck.config.family, Check(ck)).map_err(|e| {
        format!(
            "the checkpoint does not fit the {:?} model: {e}",
            ck.config.family
        )
    })
}
