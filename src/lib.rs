//! wgangp-tui: train a Wasserstein GAN with gradient penalty and watch it learn.
//!
//! The modules, lowest layer first; each imports only from the layers before it:
//!
//! - `util`: messages, durations, atomic file writes, signals;
//! - `config` (the run's settings and every hyperparameter limit), `checkpoint` (the training
//!   state as data) and `event` (the contract between training and its watchers: events out,
//!   commands in);
//! - `data`: MNIST, IDX files and the toy sets;
//! - `model`: kernels, the taped layer ops, the device (GPU and CPU twin) and the model families;
//! - `quality`: how good a generator's samples are (the toy mixtures' measures);
//! - `train`: the penalty, the optimizers, the trainer, the worker thread and the one dispatch
//!   over the families;
//! - `experiments`: the paper's clipping-versus-penalty experiments and their figures;
//! - `run`: the run folder (writer, lock, checkpoints, socket protocol, server, client, detach);
//! - `front`: the two front ends, `headless` and the monitor `tui`;
//! - `cli` and `cmd`: the command line and one file per subcommand.

pub mod checkpoint;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod data;
pub mod event;
pub mod experiments;
pub mod front;
pub mod model;
pub mod quality;
pub mod run;
pub mod train;
pub mod util;
