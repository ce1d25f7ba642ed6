//! Headless mode: consumes the worker's events and writes them to files in the run folder,
//! with a progress line on stderr.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Ended;
use crate::checkpoint::Checkpoint;
use crate::config::TrainConfig;
use crate::data::Dataset;
use crate::event::{Command, StepMetrics, TrainEvent};
use crate::run::writer::{Outcome, start};
use crate::util::say;
use crate::util::signals::SignalWatch;
use crate::util::time::eta;

/// Watches for termination signals: each one is recorded in `caught` and stops the worker.
fn stop_on_signals(commands: Sender<Command>, caught: Arc<AtomicI32>) -> Result<SignalWatch> {
    SignalWatch::start(move |signal| {
        caught.store(signal, Ordering::SeqCst);
        let _ = commands.send(Command::Stop);
    })
    .context("cannot watch for signals")
}

/// The progress line: rewritten in place on a terminal (at most 4 times a second), one line
/// every 10 seconds otherwise so that a log file does not fill up.
struct Progress {
    tty: bool,
    last: Option<Instant>,
    steps: Option<u64>,
}

impl Progress {
    fn show(&mut self, m: &StepMetrics, force: bool) {
        let every = if self.tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(10)
        };
        if !force && self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let total = self.steps.map(|n| format!("/{n}")).unwrap_or_default();
        let eta = eta(self.steps, m.step, m.iters_per_s)
            .map(|t| format!("  ETA {t}"))
            .unwrap_or_default();
        let line = format!(
            "step {}{total}  {:.2} it/s{eta}  D {:.4}  G {:.4}  W {:.4}  P {:.4}  |grad| {:.3}",
            m.step,
            m.iters_per_s,
            m.critic_loss,
            m.generator_loss,
            m.wasserstein,
            m.penalty,
            m.grad_norm_mean
        );
        // A closed stderr must not stop training.
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    fn done(&self) {
        if self.tty && self.last.is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Trains without a terminal UI until the run ends, writing its files.
pub fn run(
    config: TrainConfig,
    data: Dataset,
    from: Option<Checkpoint>,
    paused: bool,
) -> Result<Ended> {
    let mut progress = Progress {
        tty: std::io::stderr().is_terminal(),
        last: None,
        steps: config.steps,
    };
    let (mut writer, worker) = start(config.clone(), data, from, paused)?;
    say(format_args!(
        "training on {} ({:?} model) on {}, writing to {}",
        config.data,
        config.family,
        config.device,
        writer.dir().display()
    ));
    let caught = Arc::new(AtomicI32::new(0));
    let signals = stop_on_signals(worker.commands(), caught.clone())?;
    let mut outcome = None;
    let mut last_metrics = None;
    while let Ok(event) = worker.events().recv() {
        if let TrainEvent::Metrics(m) = &event {
            progress.show(m, false);
            last_metrics = Some(m.clone());
        }
        if let (_, Some(end)) = writer.handle(event)? {
            outcome = Some(end);
            break;
        }
    }
    drop(signals);
    writer.stop_serving();
    if let Some(m) = &last_metrics {
        progress.show(m, true);
    }
    progress.done();
    worker.join();
    let mut outcome = outcome.context("the training thread ended unexpectedly")?;
    let signal = caught.load(Ordering::SeqCst);
    if signal != 0 && outcome == Outcome::Finished {
        outcome = Outcome::Interrupted(signal);
    }
    Ok(Ended {
        outcome,
        dir: writer.dir().to_path_buf(),
        checkpoint: writer.last_checkpoint().cloned(),
        detached: false,
        paused: false,
    })
}
