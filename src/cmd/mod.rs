//! One file per subcommand; [`run`] picks the one the command line names and turns its outcome
//! into an exit status.

pub mod attach;
pub mod bench;
pub mod eval;
pub mod exit;
pub mod figures;
pub mod gpu_check;
pub mod ls;
pub mod sample;
pub mod train;
pub mod train_classifier;

use std::io::Write;
use std::process::ExitCode;

use crate::cli::{Cli, Sub};
use crate::util::say;
use exit::{BAD_INPUT, FAILED, fail, signal_status};

/// Runs what the command line asks for.
pub fn run(cli: &Cli) -> ExitCode {
    let Some(sub) = &cli.command else {
        return train::run(cli);
    };
    match sub {
        Sub::Sample(args) => match sample::run(args) {
            Ok(done) => {
                say(format_args!("{done}"));
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("{e:#}"), BAD_INPUT),
        },
        Sub::Eval(args) => match eval::run(args) {
            Ok(evaluation) => print_json(&evaluation),
            Err(e) => fail(&format!("{e:#}"), BAD_INPUT),
        },
        Sub::Bench(args) => match bench::run(args) {
            Ok(result) => print_json(&result),
            Err(e) => fail(&format!("{e:#}"), FAILED),
        },
        Sub::Attach(args) => match attach::run(&args.dir, args.ascii) {
            Ok(viewed) => {
                say(format_args!("{}", viewed.message));
                signal_status(viewed.signal)
            }
            Err(e) => fail(&format!("{e:#}"), BAD_INPUT),
        },
        Sub::Ls(args) => match ls::list(&args.dir) {
            Ok(list) if list.is_empty() => {
                say(format_args!("no runs in {}", args.dir.display()));
                ExitCode::SUCCESS
            }
            Ok(list) => {
                let _ = std::io::stdout().write_all(ls::table(&list).as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("{e:#}"), BAD_INPUT),
        },
        Sub::Figures(args) => match figures::prepare(args) {
            Ok(run) => match figures::run(&run) {
                Ok(done) => {
                    say(format_args!("{done}"));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("{e:#}"), FAILED),
            },
            Err(e) => fail(&format!("{e:#}"), BAD_INPUT),
        },
        Sub::TrainClassifier(args) => match train_classifier::run(args) {
            Ok(trained) => print_json(&trained),
            Err(e) => fail(&format!("{e:#}"), BAD_INPUT),
        },
        Sub::GpuCheck(args) => {
            // No device to check is a bad environment (exit 2); a check that fails, exit 1.
            let device = match gpu_check::open(args.device) {
                Ok(device) => device,
                Err(e) => return fail(&format!("{e:#}"), BAD_INPUT),
            };
            let checked = gpu_check::run(device, args.device, 0).and_then(|check| {
                print_json(&check);
                gpu_check::verdict(&check)
            });
            match checked {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("{e:#}"), FAILED),
            }
        }
    }
}

/// One JSON line on stdout.
fn print_json(figures: &impl serde::Serialize) -> ExitCode {
    match serde_json::to_string(figures) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("cannot write the figures: {e}"), FAILED),
    }
}
