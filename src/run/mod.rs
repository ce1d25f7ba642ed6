//! A run: the `session` a front end drives (training in this process) and the viewers' sessions
//! (`viewing`); the run folder's files (`writer`, `checkpoint_store`, `pictures`,
//! `tensorboard`), its lock, and its socket (`protocol`, `server` for the training process,
//! `client` for viewers); and `detach`, which hands a run to a background process.

pub mod checkpoint_store;
pub mod client;
pub mod detach;
pub mod lock;
pub mod pictures;
pub mod protocol;
pub mod server;
pub mod session;
pub mod tensorboard;
pub mod viewing;
pub mod writer;
