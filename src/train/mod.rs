//! Training: the penalty, the optimizers, one training run in memory (`trainer`), the worker
//! thread around it, and the model families it dispatches over (`families`).

pub mod device;
pub mod exact;
pub mod families;
pub mod optim;
pub mod penalty;
pub mod readout;
pub mod resume;
pub mod shards;
pub mod stats;
pub mod trainer;
pub mod worker;

pub use trainer::{NonFinite, StepError, Trainer};
pub use worker::Worker;
