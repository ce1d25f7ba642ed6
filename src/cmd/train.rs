//! Training, the command without a subcommand: the run's configuration (new, or resumed from a
//! checkpoint), the device and data, the front end (the monitor, or headless), and what
//! happens at the end: the closing message, or going on in the background after `d`.

use std::process::ExitCode;

use super::exit::{BAD_INPUT, FAILED, fail, signal_status};
use crate::checkpoint::Checkpoint;
use crate::cli::Cli;
use crate::config::{DataSpec, TrainConfig};
use crate::data::{Dataset, held_out_count};
use crate::front::headless::Headless;
use crate::front::tui::loading::{self, Loaded};
use crate::front::tui::{self, Monitor};
use crate::front::{self, FrontEnd};
use crate::model::device;
use crate::run::checkpoint_store::run_dir_of;
use crate::run::detach;
use crate::run::session::{Ended, OnNonFinite, Training};
use crate::run::writer::Outcome;
use crate::train::families::check_checkpoint;
use crate::util::{say, signals};

/// Trains as the command line says until the run ends.
pub fn run(cli: &Cli) -> ExitCode {
    let (mut config, from) = match setup(cli) {
        Ok(setup) => setup,
        Err(e) => return fail(&e, BAD_INPUT),
    };
    config.device = match device::select(cli.device) {
        Ok(name) => name,
        Err(e) => return fail(&format!("{e:#}"), BAD_INPUT),
    };
    let monitor = !cli.no_ui && tui::available();
    let data = match load(&config.data, monitor) {
        Ok(data) => data,
        Err(exit) => return exit,
    };
    if let Some(total) = data.len() {
        // The pictures held out for the evaluations are never in a batch.
        let held = if config.eval_every > 0 {
            held_out_count(total)
        } else {
            0
        };
        let n = total - held;
        if config.batch > n {
            // Refused rather than shrunk: the batch size is part of what the person tuned.
            let held = match held {
                0 => String::new(),
                held => format!(", {held} more held out for --eval-every"),
            };
            let why = format!(
                "--batch {} is larger than the data set ({n} images to train on{held}): give \
                 --batch {n} or less, or more images",
                config.batch
            );
            return fail(&why, BAD_INPUT);
        }
    }
    let changed = from.as_ref().and_then(|ck| data_changed(ck, &data));
    if let Some(changed) = &changed {
        say(format_args!("{changed}"));
    }
    // The monitor lets a person mend a run that turned non-finite; headless, it ends there.
    let (mut front, on_non_finite): (Box<dyn FrontEnd>, _) = if monitor {
        (
            Box::new(Monitor::new(config.clone(), cli.ascii, cli.on_hangup)),
            OnNonFinite::Pause,
        )
    } else {
        (Box::new(Headless::new(&config)), OnNonFinite::Stop)
    };
    let ended = Training::open(
        config.clone(),
        data,
        from,
        cli.paused,
        on_non_finite,
        changed,
    )
    .and_then(|session| front::drive(session, front.as_mut()));
    match ended {
        Ok(ended) if ended.left.detach => go_on_in_background(&ended, &config),
        Ok(ended) => report(&ended),
        Err(e) => fail(&format!("{e:#}"), BAD_INPUT),
    }
}

/// The data; a folder with the monitor's loading screen when the run has a monitor. The exit
/// status when there is none, or when the user gave up.
fn load(spec: &DataSpec, monitor: bool) -> Result<Dataset, ExitCode> {
    let loaded = match spec {
        DataSpec::Folder { path, .. } if monitor => {
            let spec = spec.clone();
            loading::load(path.display().to_string(), move |report| {
                Dataset::load_reporting(&spec, report)
            })
            .map_err(|e| fail(&format!("{e:#}"), FAILED))?
        }
        _ => return Dataset::load(spec).map_err(|e| fail(&e.to_string(), BAD_INPUT)),
    };
    match loaded {
        Loaded::Done(Ok((data, summary))) => {
            summary.iter().for_each(|line| say(format_args!("{line}")));
            Ok(data)
        }
        Loaded::Done(Err(e)) => Err(fail(&e.to_string(), BAD_INPUT)),
        Loaded::GivenUp(0) => {
            say(format_args!(
                "gave up loading the pictures; no run was started"
            ));
            Err(ExitCode::SUCCESS)
        }
        Loaded::GivenUp(signal) => {
            say(format_args!(
                "stopped by {} while loading the pictures; no run was started",
                signals::name(signal)
            ));
            Err(signal_status(signal))
        }
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

/// A line saying that `data` is not what the checkpoint's run trained on, if so: training goes
/// on with it (that may be what the user wants), but the run is no longer one run on one data
/// set.
fn data_changed(ck: &Checkpoint, data: &Dataset) -> Option<String> {
    let then = ck.data.as_ref()?;
    let now = data.fingerprint()?;
    (*then != now).then(|| {
        format!(
            "note: the data is not what this run trained on until step {} (then: {then}; now: \
             {now}); training goes on with it",
            ck.step
        )
    })
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
    let why = ended.left.hung_up.then(|| {
        format!(
            "the terminal hung up at step {}: the run goes on here from its checkpoint; watch it \
             with: wgangp-tui attach {}",
            ended.checkpoint.as_ref().map_or(0, |(step, _)| *step),
            ended.dir.display()
        )
    });
    match detach::continue_in_background(config, &ended.dir, ended.left.paused, why.as_deref()) {
        Ok((pid, log)) => {
            let (what, how) = if ended.left.paused {
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
            FAILED,
        ),
    }
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
        Outcome::NonFinite(why) => fail(&format!("training stopped: {why}; {saved}"), FAILED),
        Outcome::Interrupted(signal) => {
            say(format_args!(
                "stopped by {}; {saved}; go on with: {resume}",
                signals::name(*signal)
            ));
            signal_status(*signal)
        }
    }
}
