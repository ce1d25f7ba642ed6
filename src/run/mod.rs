//! The run folder: its files (`writer`, `checkpoint_store`, `pictures`), its lock, and its socket
//! (`protocol`, `server` for the training process, `client` for viewers), and `detach`, which
//! hands a run to a background process.

pub mod checkpoint_store;
pub mod client;
pub mod detach;
pub mod lock;
pub mod pictures;
pub mod protocol;
pub mod server;
pub mod tensorboard;
pub mod writer;
