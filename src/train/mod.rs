//! Training: the penalty, one training run in memory, and the worker thread around it.

pub mod optim;
pub mod penalty;
pub mod trainer;
pub mod worker;

pub use trainer::{NonFinite, Trainer};
pub use worker::Worker;
