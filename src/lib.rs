//! wgangp-tui: train a Wasserstein GAN with gradient penalty and watch it learn.
//!
//! Data flows one way: `data` -> `train` (worker thread) -> [`event::TrainEvent`] -> a front
//! end (`headless` or the monitor, `tui`), and [`event::Command`]s flow back. `serve` passes the
//! same events and commands over the run's socket to viewers started with `attach`.

pub mod attach;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod detach;
pub mod device;
pub mod event;
pub mod gpu;
pub mod headless;
pub mod model;
pub mod protocol;
pub mod render;
pub mod runs;
pub mod sample;
pub mod serve;
pub mod signals;
pub mod train;
pub mod tui;
