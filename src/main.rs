use std::process::ExitCode;

use clap::Parser;
use wgangp_tui::{cli::Cli, cmd};

fn main() -> ExitCode {
    cmd::run(&Cli::parse())
}
