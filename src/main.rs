use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use wgangp_tui::checkpoint::{Checkpoint, run_dir_of};
use wgangp_tui::cli::{Cli, Sub};
use wgangp_tui::config::TrainConfig;
use wgangp_tui::data::Dataset;
use wgangp_tui::headless::{self, Ended, Outcome, say};
use wgangp_tui::train::worker::check_checkpoint;
use wgangp_tui::{attach, bench, detach, device, gpu, runs, sample, signals, tui};

/// Exit status for bad input (flags, data, output folder), as clap uses for bad flags.
const BAD_INPUT: u8 = 2;
/// Exit status when training stopped on a NaN or infinite value.
const NON_FINITE: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Sub::Sample(args)) => {
            return match sample::run(args) {
                Ok(done) => {
                    say(format_args!("{done}"));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("{e:#}"), BAD_INPUT),
            };
        }
        Some(Sub::Bench(args)) => {
            return match bench::run(args) {
                Ok(result) => {
                    println!(
                        "{}",
                        serde_json::to_string(&result).expect("figures serialise")
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("{e:#}"), NON_FINITE),
            };
        }
        Some(Sub::Attach(args)) => {
            return match attach::run(&args.dir, args.ascii) {
                Ok(viewed) => {
                    say(format_args!("{}", viewed.message));
                    signal_status(viewed.signal)
                }
                Err(e) => fail(&format!("{e:#}"), BAD_INPUT),
            };
        }
        Some(Sub::Ls(args)) => {
            return match runs::list(&args.dir) {
                Ok(list) if list.is_empty() => {
                    say(format_args!("no runs in {}", args.dir.display()));
                    ExitCode::SUCCESS
                }
                Ok(list) => {
                    let _ = std::io::stdout().write_all(runs::table(&list).as_bytes());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("{e:#}"), BAD_INPUT),
            };
        }
        Some(Sub::GpuCheck) => {
            let checked = gpu::run(0).and_then(|check| {
                println!(
                    "{}",
                    serde_json::to_string(&check).expect("figures serialise")
                );
                gpu::verdict(&check)
            });
            return match checked {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("{e:#}"), NON_FINITE),
            };
        }
        None => {}
    }
    let (mut config, from) = match setup(&cli) {
        Ok(setup) => setup,
        Err(e) => return fail(&e, BAD_INPUT),
    };
    config.device = match device::select(cli.device) {
        Ok(name) => name,
        Err(e) => return fail(&format!("{e:#}"), BAD_INPUT),
    };
    let data = match Dataset::load(&config.data) {
        Ok(d) => d,
        Err(e) => return fail(&e.to_string(), BAD_INPUT),
    };
    if let Some(n) = data.len().filter(|&n| config.batch > n) {
        let why = format!(
            "--batch {} is larger than the data set ({n} images)",
            config.batch
        );
        return fail(&why, BAD_INPUT);
    }
    let ended = if cli.no_ui || !tui::available() {
        headless::run(config.clone(), data, from, cli.paused)
    } else {
        tui::run(config.clone(), data, from, cli.paused, cli.ascii)
    };
    match ended {
        Ok(ended) if ended.detached => go_on_in_background(&ended, &config),
        Ok(ended) => report(&ended),
        Err(e) => fail(&format!("{e:#}"), BAD_INPUT),
    }
}

/// After `d`: a background process goes on from the checkpoint the monitor just wrote.
fn go_on_in_background(ended: &Ended, config: &TrainConfig) -> ExitCode {
    let more_to_do = match (&ended.checkpoint, config.steps) {
        (Some((step, _)), Some(steps)) => *step < steps,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if ended.outcome != Outcome::Finished || !more_to_do {
        return report(ended);
    }
    match detach::continue_in_background(config, &ended.dir, ended.paused) {
        Ok((pid, log)) => {
            let (what, how) = if ended.paused {
                ("the run waits, paused,", "resume it (space) in")
            } else {
                ("training goes on", "watch it with")
            };
            say(format_args!(
                "detached: {what} in process {pid} (log: {}); {how}: wgangp-tui attach {}",
                log.display(),
                ended.dir.display()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => fail(
            &format!(
                "{e:#}; the run is saved: go on with wgangp-tui --resume {}",
                ended.dir.display()
            ),
            NON_FINITE,
        ),
    }
}

/// The shell's convention for a process ended by a signal; success without one.
fn signal_status(signal: i32) -> ExitCode {
    if signal == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(128 + signal as u8)
    }
}

/// The run's configuration, and the checkpoint it goes on from with `--resume`.
fn setup(cli: &Cli) -> Result<(TrainConfig, Option<Checkpoint>), String> {
    let Some(path) = &cli.resume else {
        return Ok((cli.to_config()?, None));
    };
    let (ck, folder) = Checkpoint::load(path).map_err(|e| format!("--resume: {e}"))?;
    check_checkpoint(&ck).map_err(|e| format!("--resume {}: {e}", folder.display()))?;
    let run_dir = run_dir_of(&folder).unwrap_or_else(|| ck.config.out.clone());
    let config = cli.resumed_config(&ck.config, &run_dir);
    if config.steps.is_some_and(|n| n <= ck.step) {
        return Err(format!(
            "--resume: the checkpoint is at step {} already; give a larger --steps to go on",
            ck.step
        ));
    }
    say(format_args!(
        "going on from step {} ({})",
        ck.step,
        folder.display()
    ));
    Ok((config, Some(ck)))
}

/// The closing message and exit status.
fn report(ended: &Ended) -> ExitCode {
    let resume = format!("wgangp-tui --resume {}", ended.dir.display());
    let saved = match &ended.checkpoint {
        Some((step, folder)) => format!("checkpoint of step {step} in {}", folder.display()),
        None => "no checkpoint written".into(),
    };
    match &ended.outcome {
        Outcome::Finished => {
            say(format_args!("done; {saved}"));
            ExitCode::SUCCESS
        }
        Outcome::NonFinite(why) => fail(&format!("training stopped: {why}; {saved}"), NON_FINITE),
        Outcome::Interrupted(signal) => {
            say(format_args!(
                "stopped by {}; {saved}; go on with: {resume}",
                signals::name(*signal)
            ));
            signal_status(*signal)
        }
    }
}

fn fail(message: &str, code: u8) -> ExitCode {
    say(format_args!("error: {message}"));
    ExitCode::from(code)
}
