//! Headless mode: consumes the worker's events and writes them to files in the run folder,
//! with a progress line on stderr.
//!
//! Run folder: `config.json`, `metrics.jsonl` (one JSON object per line, `"kind"` says which),
//! `samples/step-NNNNNNN.png` and `samples/latest.json`, `checkpoints/`, and `control.sock`
//! while the run is live.

use std::fs::{self, File};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::checkpoint::{self, Checkpoint};
use crate::config::TrainConfig;
use crate::data::Dataset;
use crate::event::Command;
use crate::event::{RunState, SampleSet, StepMetrics, TrainEvent};
use crate::render;
use crate::serve::{self, Server};
use crate::signals::SignalWatch;
use crate::train::Worker;

/// The latest sample set as JSON (a [`SampleSet`]), in the run's `samples` folder.
pub const LATEST_SAMPLES: &str = "latest.json";

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
    /// The user detached (`d`): a background process is to go on from the checkpoint.
    pub detached: bool,
    /// The run was paused when the user detached: the background process starts paused.
    pub paused: bool,
}

/// Opens the run folder (anew, or to go on from `from`), starts the worker (`paused`: before
/// its first step) and serves the run on its socket.
pub fn start(
    config: TrainConfig,
    data: Dataset,
    from: Option<Checkpoint>,
    paused: bool,
) -> Result<(RunWriter, Worker)> {
    let dir = &config.out;
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output folder {}", dir.display()))?;
    // First, so that a live run in this folder is refused before any of its files is touched.
    let lock = serve::lock_run(dir)?;
    let listener = serve::Listener::bind(dir)?;
    let mut writer = match &from {
        Some(ck) => RunWriter::resume(&config, ck.step)?,
        None => RunWriter::create(&config)?,
    };
    writer.lock = Some(lock);
    let worker = match from {
        Some(ck) => Worker::resume(config, data, ck),
        None => Worker::spawn(config, data),
    }
    .context("cannot start the training thread")?;
    if paused {
        // Taken before the first step: the worker reads its commands before each step.
        let _ = worker.commands().send(Command::Pause);
    }
    if let Some(listener) = listener {
        writer.serve(listener, worker.commands())?;
    }
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
    /// Bytes of `metrics.jsonl` written (complete lines).
    recorded: u64,
    keep: usize,
    server: Option<Server>,
    /// The newest checkpoint written: (step, folder).
    last_checkpoint: Option<(u64, PathBuf)>,
    /// The run folder's lock, held while this process writes the run.
    lock: Option<serve::RunLock>,
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
            recorded: 0,
            keep: config.keep,
            server: None,
            last_checkpoint: None,
            lock: None,
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
        let recorded = kept.len() as u64;
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
            recorded,
            keep: config.keep,
            server: None,
            last_checkpoint: None,
            lock: None,
        })
    }

    /// Serves the run to viewers on `listener` from now on; their commands go to `commands`.
    pub fn serve(&mut self, listener: serve::Listener, commands: Sender<Command>) -> Result<()> {
        let metrics = self.dir.join("metrics.jsonl");
        let server = Server::start(listener, &self.dir, metrics, self.recorded, commands)
            .context("cannot serve the run on its socket")?;
        self.server = Some(server);
        Ok(())
    }

    /// Ends the stream to viewers (they get everything sent so far) and removes the socket.
    pub fn stop_serving(&mut self) {
        self.server = None;
    }

    /// How many viewers are attached over the socket.
    pub fn viewers(&self) -> usize {
        self.server.as_ref().map_or(0, Server::viewers)
    }

    /// The newest checkpoint this writer saved: (step, folder).
    pub fn last_checkpoint(&self) -> Option<&(u64, PathBuf)> {
        self.last_checkpoint.as_ref()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn record(&mut self, event: &TrainEvent) -> Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        self.metrics.write_all(&line)?;
        // One line at a time reaches the disk: a killed run keeps every finished step.
        self.metrics.flush().context("cannot write metrics.jsonl")?;
        self.recorded += line.len() as u64;
        Ok(())
    }

    fn samples(&self, samples: &SampleSet) -> Result<PathBuf> {
        let path = self
            .dir
            .join("samples")
            .join(format!("step-{:07}.png", samples.step()));
        render::render(samples)
            .save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        // The latest set as data too, for a viewer of the finished run.
        let latest = self.dir.join("samples").join(LATEST_SAMPLES);
        let tmp = latest.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec(samples)?)
            .and_then(|_| fs::rename(&tmp, &latest))
            .with_context(|| format!("cannot write {}", latest.display()))?;
        Ok(path)
    }

    /// Handles one event: records it, passes it on to attached viewers, and returns it as the
    /// front ends see it (a checkpoint's tensors become its folder) with the outcome once the
    /// run has ended.
    pub fn handle(&mut self, event: TrainEvent) -> Result<(TrainEvent, Option<Outcome>)> {
        let mut outcome = None;
        let event = match event {
            TrainEvent::Checkpoint(ck) => {
                let path = ck
                    .save(&self.dir, self.keep)
                    .with_context(|| format!("cannot write the checkpoint of step {}", ck.step))?;
                self.last_checkpoint = Some((ck.step, path.clone()));
                TrainEvent::CheckpointSaved {
                    step: ck.step,
                    path,
                }
            }
            event => event,
        };
        match &event {
            TrainEvent::Started { .. } | TrainEvent::Checkpoint(_) => {}
            TrainEvent::Samples(s) => {
                self.samples(s)?;
            }
            TrainEvent::Metrics(_)
            | TrainEvent::HyperChanged { .. }
            | TrainEvent::CheckpointSaved { .. } => self.record(&event)?,
            TrainEvent::State { state, reason, .. } => {
                self.record(&event)?;
                outcome = match state {
                    RunState::Finished => Some(Outcome::Finished),
                    RunState::NonFinite => Some(Outcome::NonFinite(
                        reason
                            .clone()
                            .unwrap_or_else(|| "a value is not finite".into()),
                    )),
                    RunState::Running | RunState::Paused => None,
                };
            }
        }
        if let Some(server) = &self.server {
            server.publish(&event, self.recorded);
        }
        Ok((event, outcome))
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
