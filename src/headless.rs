//! Headless mode: consumes the worker's events and writes them to files in the run folder,
//! with a progress line on stderr.
//!
//! Run folder: `config.json`, `metrics.jsonl` (one JSON object per line, `"kind"` says which),
//! `samples/step-NNNNNNN.png`.

use std::fs::{self, File};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::checkpoint::{self, Checkpoint};
use crate::config::{Hyper, TrainConfig};
use crate::data::Dataset;
use crate::event::Command;
use crate::event::{RunState, SampleSet, StepMetrics, TrainEvent};
use crate::render;
use crate::signals::SignalWatch;
use crate::train::Worker;

/// One line of `metrics.jsonl`.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record<'a> {
    Metrics(&'a StepMetrics),
    /// A hyperparameter change, effective from generator step `step + 1`.
    Hyper {
        step: u64,
        change: &'a str,
        hyper: &'a Hyper,
    },
    State {
        step: u64,
        state: RunState,
        reason: Option<&'a str>,
    },
    /// A checkpoint of step `step` is complete in `path`.
    Checkpoint {
        step: u64,
        path: &'a Path,
    },
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All steps done, or stopped by the user.
    Finished,
    /// Training stopped on a NaN or infinite value; the message says where.
    NonFinite(String),
    /// Stopped by this signal (SIGINT, SIGTERM, SIGHUP).
    Interrupted(i32),
}

/// A run's end, for the closing message.
#[derive(Debug)]
pub struct Ended {
    pub outcome: Outcome,
    pub dir: PathBuf,
    /// The newest checkpoint written in this process: (step, folder).
    pub checkpoint: Option<(u64, PathBuf)>,
}

/// Opens the run folder (anew, or to go on from `from`) and starts the worker.
pub fn start(
    config: TrainConfig,
    data: Dataset,
    from: Option<Checkpoint>,
) -> Result<(RunWriter, Worker)> {
    let writer = match &from {
        Some(ck) => RunWriter::resume(&config, ck.step)?,
        None => RunWriter::create(&config)?,
    };
    let worker = match from {
        Some(ck) => Worker::resume(config, data, ck),
        None => Worker::spawn(config, data),
    }
    .context("cannot start the training thread")?;
    Ok((writer, worker))
}

/// Watches for termination signals: each one is recorded in `caught` and stops the worker.
pub fn stop_on_signals(commands: Sender<Command>, caught: Arc<AtomicI32>) -> Result<SignalWatch> {
    SignalWatch::start(move |signal| {
        caught.store(signal, Ordering::SeqCst);
        let _ = commands.send(Command::Stop);
    })
    .context("cannot watch for signals")
}

/// Writes a run's files as events arrive.
pub struct RunWriter {
    dir: PathBuf,
    metrics: BufWriter<File>,
    keep: usize,
    /// The newest checkpoint written: (step, folder).
    last_checkpoint: Option<(u64, PathBuf)>,
}

impl RunWriter {
    /// Creates the run folder and writes `config.json`.
    pub fn create(config: &TrainConfig) -> Result<Self> {
        let dir = config.out.clone();
        // A new run must not mix its checkpoints with another run's (pruning and `latest`
        // would pick between the two).
        if let Some(step) = checkpoint::newest_step(&dir) {
            anyhow::bail!(
                "{} already holds a run with checkpoints (the newest of step {step}): go on with it \
                 with --resume {}, or give another --out",
                dir.display(),
                dir.display()
            );
        }
        fs::create_dir_all(dir.join("samples"))
            .with_context(|| format!("cannot create output folder {}", dir.display()))?;
        let json = serde_json::to_string_pretty(config)?;
        fs::write(dir.join("config.json"), json + "\n")
            .with_context(|| format!("cannot write {}", dir.join("config.json").display()))?;
        let path = dir.join("metrics.jsonl");
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self {
            dir,
            metrics: BufWriter::new(file),
            keep: config.keep,
            last_checkpoint: None,
        })
    }

    /// Reopens a run folder to go on from a checkpoint of step `step`: `metrics.jsonl` keeps
    /// what was recorded up to that step (later records belong to the lost part of the run) and
    /// grows from there; `config.json` gets the resumed configuration.
    pub fn resume(config: &TrainConfig, step: u64) -> Result<Self> {
        let dir = config.out.clone();
        let path = dir.join("metrics.jsonl");
        let kept: String = fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter(|line| {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    return false; // a line cut off by a kill
                };
                let finished = v["kind"] == "state" && v["state"] == "finished";
                v["step"].as_u64().is_some_and(|s| s <= step) && !finished
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let tmp = dir.join(".metrics.jsonl.tmp");
        fs::write(&tmp, kept)
            .and_then(|_| fs::rename(&tmp, &path))
            .with_context(|| format!("cannot rewrite {}", path.display()))?;
        let json = serde_json::to_string_pretty(config)?;
        fs::write(dir.join("config.json"), json + "\n")
            .with_context(|| format!("cannot write {}", dir.join("config.json").display()))?;
        fs::create_dir_all(dir.join("samples"))?;
        let file = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self {
            dir,
            metrics: BufWriter::new(file),
            keep: config.keep,
            last_checkpoint: None,
        })
    }

    /// The newest checkpoint this writer saved: (step, folder).
    pub fn last_checkpoint(&self) -> Option<&(u64, PathBuf)> {
        self.last_checkpoint.as_ref()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn record(&mut self, record: Record) -> Result<()> {
        serde_json::to_writer(&mut self.metrics, &record)?;
        self.metrics.write_all(b"\n")?;
        // One line at a time reaches the disk: a killed run keeps every finished step.
        self.metrics.flush().context("cannot write metrics.jsonl")
    }

    fn samples(&self, samples: &SampleSet) -> Result<PathBuf> {
        let path = self
            .dir
            .join("samples")
            .join(format!("step-{:07}.png", samples.step()));
        render::render(samples)
            .save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// Handles one event; returns the outcome once the run has ended.
    pub fn handle(&mut self, event: &TrainEvent) -> Result<Option<Outcome>> {
        match event {
            TrainEvent::Started { .. } => {}
            TrainEvent::Metrics(m) => self.record(Record::Metrics(m))?,
            TrainEvent::Samples(s) => {
                self.samples(s)?;
            }
            TrainEvent::HyperChanged {
                step,
                hyper,
                change,
            } => self.record(Record::Hyper {
                step: *step,
                change,
                hyper,
            })?,
            TrainEvent::State {
                step,
                state,
                reason,
            } => {
                self.record(Record::State {
                    step: *step,
                    state: *state,
                    reason: reason.as_deref(),
                })?;
                match state {
                    RunState::Finished => return Ok(Some(Outcome::Finished)),
                    RunState::NonFinite => {
                        let why = reason
                            .clone()
                            .unwrap_or_else(|| "a value is not finite".into());
                        return Ok(Some(Outcome::NonFinite(why)));
                    }
                    RunState::Running | RunState::Paused => {}
                }
            }
            TrainEvent::Checkpoint(ck) => {
                let path = ck
                    .save(&self.dir, self.keep)
                    .with_context(|| format!("cannot write the checkpoint of step {}", ck.step))?;
                self.record(Record::Checkpoint {
                    step: ck.step,
                    path: &path,
                })?;
                self.last_checkpoint = Some((ck.step, path));
            }
        }
        Ok(None)
    }
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

/// A line to the user on stderr. A closed or broken stderr (a pipe whose reader quit, a
/// terminal that hung up) must not stop training, so errors are ignored.
pub fn say(message: std::fmt::Arguments) {
    let _ = writeln!(std::io::stderr(), "wgangp-tui: {message}");
}

/// The time left to `total` steps at the current pace, formatted; None when unknown.
pub fn eta(total: Option<u64>, step: u64, iters_per_s: f64) -> Option<String> {
    match total {
        Some(n) if iters_per_s > 0.0 && n > step => {
            Some(format_duration((n - step) as f64 / iters_per_s))
        }
        _ => None,
    }
}

pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Trains without a terminal UI until the run ends, writing its files.
pub fn run(config: TrainConfig, data: Dataset, from: Option<Checkpoint>) -> Result<Ended> {
    let mut progress = Progress {
        tty: std::io::stderr().is_terminal(),
        last: None,
        steps: config.steps,
    };
    let (mut writer, worker) = start(config.clone(), data, from)?;
    say(format_args!(
        "training on {} ({:?} model), writing to {}",
        config.data,
        config.family,
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
        if let Some(end) = writer.handle(&event)? {
            outcome = Some(end);
            break;
        }
    }
    drop(signals);
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
    })
}
