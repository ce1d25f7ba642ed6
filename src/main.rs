use std::process::ExitCode;

use clap::Parser;
use wgangp_tui::cli::Cli;
use wgangp_tui::data::Dataset;
use wgangp_tui::headless::{self, Outcome};
use wgangp_tui::tui;

/// Exit status for bad input (flags, data, output folder), as clap uses for bad flags.
const BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.to_config() {
        Ok(c) => c,
        Err(e) => return fail(&e, BAD_INPUT),
    };
    let data = match Dataset::load(&config.data) {
        Ok(d) => d,
        Err(e) => return fail(&e.to_string(), BAD_INPUT),
    };
    if let Some(n) = data.len().filter(|&n| config.batch > n) {
        return fail(
            &format!(
                "--batch {} is larger than the data set ({n} images)",
                config.batch
            ),
            BAD_INPUT,
        );
    }
    let outcome = if cli.no_ui || !tui::available() {
        headless::run(config, data)
    } else {
        tui::run(config, data, cli.ascii)
    };
    match outcome {
        Ok(Outcome::Finished) => ExitCode::SUCCESS,
        Ok(Outcome::NonFinite(why)) => fail(&format!("training stopped: {why}"), 1),
        Err(e) => fail(&format!("{e:#}"), BAD_INPUT),
    }
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("wgangp-tui: error: {message}");
    ExitCode::from(code)
}
