//! Headless mode: consumes the worker's events and writes them to files in the run folder,
//! with a progress line on stderr.
//!
//! Run folder: `config.json`, `metrics.jsonl` (one JSON object per line, `"kind"` says which),
//! `samples/step-NNNNNNN.png`.

use std::fs::{self, File};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::{Hyper, TrainConfig};
use crate::data::Dataset;
use crate::event::{RunState, SampleSet, StepMetrics, TrainEvent};
use crate::render;
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
}

/// How a headless run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// Training stopped on a NaN or infinite value; the message says where.
    NonFinite(String),
}

/// Writes a run's files as events arrive.
pub struct RunWriter {
    dir: PathBuf,
    metrics: BufWriter<File>,
}

impl RunWriter {
    /// Creates the run folder and writes `config.json`.
    pub fn create(config: &TrainConfig) -> Result<Self> {
        let dir = config.out.clone();
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
        })
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
pub fn run(config: TrainConfig, data: Dataset) -> Result<Outcome> {
    let mut writer = RunWriter::create(&config)?;
    eprintln!(
        "wgangp-tui: training on {} ({:?} model), writing to {}",
        config.data,
        config.family,
        writer.dir().display()
    );
    let mut progress = Progress {
        tty: std::io::stderr().is_terminal(),
        last: None,
        steps: config.steps,
    };
    let worker = Worker::spawn(config, data).context("cannot start the training thread")?;
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
    if let Some(m) = &last_metrics {
        progress.show(m, true);
    }
    progress.done();
    worker.join();
    outcome.context("the training thread ended unexpectedly")
}
