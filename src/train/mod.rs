//! Training: the penalty, the optimizers, the averaged generator, the evaluations, one training run in memory (`trainer`), the worker
//! thread around it, the model families it dispatches over (`families`), and the reference
//! benchmark's configurations (`reference`).

pub mod average;
pub mod classifier;
pub mod device;
pub mod evaluate;
pub mod exact;
pub mod families;
pub mod optim;
pub mod penalty;
pub mod readout;
pub mod reference;
pub mod resume;
pub mod shards;
pub mod stats;
pub mod trainer;
pub mod worker;

pub use trainer::{NonFinite, StepError, Trainer};
pub use worker::Worker;
