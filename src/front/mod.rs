//! The front ends, side by side: `headless` (files and a progress line) and `tui` (the live
//! monitor). Both consume the worker's events through the run folder's writer.

pub mod headless;
pub mod tui;

use std::path::PathBuf;

use crate::run::writer::Outcome;

/// A run's end, for the closing message.
#[derive(Debug)]
pub struct Ended {
    pub outcome: Outcome,
    pub dir: PathBuf,
    /// The newest checkpoint written in this process: (step, folder).
    pub checkpoint: Option<(u64, PathBuf)>,
    /// The user detached (`d`): a background process is to go on from the checkpoint.
    pub detached: bool,
    /// The run was paused when the user detached: the background process starts paused.
    pub paused: bool,
}
