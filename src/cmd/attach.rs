//! `wgangp-tui attach RUN_DIR`: the monitor on a run that another process trains, through the
//! run's socket; or, when no process serves the run any more, the run as its files left it,
//! read-only.

use std::path::Path;

use anyhow::{Result, bail};

use crate::front::drive;
use crate::front::tui::{self, Monitor, OnHangup};
use crate::run::client::{connect, read_config};
use crate::run::viewing::{Attached, ReadOnly, Viewed};

/// Opens the monitor on the run in `dir` until the user quits; the training goes on.
pub fn run(dir: &Path, ascii: bool) -> Result<Viewed> {
    let config = read_config(dir)?;
    let conn = connect(dir)?;
    if !tui::available() {
        bail!("attach needs a terminal (stdin and stdout)");
    }
    // A viewer whose terminal goes away quits; the run goes on in its own process.
    let mut monitor = Monitor::new(config, ascii, OnHangup::Detach);
    match conn {
        Some(conn) => drive(Attached::new(dir, conn)?, &mut monitor),
        None => drive(ReadOnly::new(dir), &mut monitor),
    }
}
