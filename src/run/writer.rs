//! Writes a run's files as its events arrive (`RunWriter`).
//!
//! Run folder: `config.json`, `metrics.jsonl` (one JSON object per line, `"kind"` says which),
//! `samples/step-NNNNNNN.png` and `samples/latest.json`, `checkpoints/`, TensorBoard's
//! `events.out.tfevents.*` (one per process that trained the run), and `control.sock` while
//! the run is live.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use anyhow::{Context, Result};

use super::checkpoint_store::newest_step;
use super::pictures;
use super::server::{Listener, Server};
use super::tensorboard::RunEvents;
use crate::config::TrainConfig;
use crate::event::{Alert, Command, RunState, SampleSet, TrainEvent};
use crate::util::files::write_atomically;

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

/// The run's TensorBoard event file, if it has one (`resumed_after`: see [`RunEvents::create`]).
fn tensorboard(config: &TrainConfig, resumed_after: Option<u64>) -> Result<Option<RunEvents>> {
    if !config.tensorboard {
        return Ok(None);
    }
    RunEvents::create(&config.out, config.sample_every, resumed_after).map(Some)
}

/// Writes `config.json` into the run folder.
fn write_config(config: &TrainConfig) -> Result<()> {
    let path = config.out.join("config.json");
    let json = serde_json::to_string_pretty(config)? + "\n";
    write_atomically(&path, json.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
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
    /// The TensorBoard event file, unless `--no-tensorboard`.
    tensorboard: Option<RunEvents>,
    /// The command run on each alert (`--on-alert`).
    on_alert: Option<String>,
}

impl RunWriter {
    /// Creates the run folder and writes `config.json`.
    pub fn create(config: &TrainConfig) -> Result<Self> {
        let dir = config.out.clone();
        // A new run must not mix its checkpoints with another run's (pruning and `latest`
        // would pick between the two).
        if let Some(step) = newest_step(&dir) {
            anyhow::bail!(
                "{} already holds a run with checkpoints (the newest of step {step}): go on with it \
                 with --resume {}, or give another --out",
                dir.display(),
                dir.display()
            );
        }
        fs::create_dir_all(dir.join("samples"))
            .with_context(|| format!("cannot create output folder {}", dir.display()))?;
        write_config(config)?;
        let path = dir.join("metrics.jsonl");
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let tensorboard = tensorboard(config, None)?;
        Ok(Self {
            dir,
            metrics: BufWriter::new(file),
            recorded: 0,
            keep: config.keep,
            server: None,
            last_checkpoint: None,
            tensorboard,
            on_alert: config.on_alert.clone(),
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
        write_atomically(&path, kept.as_bytes())
            .with_context(|| format!("cannot rewrite {}", path.display()))?;
        write_config(config)?;
        fs::create_dir_all(dir.join("samples"))?;
        let file = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let tensorboard = tensorboard(config, Some(step))?;
        Ok(Self {
            dir,
            metrics: BufWriter::new(file),
            recorded,
            keep: config.keep,
            server: None,
            last_checkpoint: None,
            tensorboard,
            on_alert: config.on_alert.clone(),
        })
    }

    /// Serves the run to viewers on `listener` from now on; their commands go to `commands`.
    pub fn serve(&mut self, listener: Listener, commands: Sender<Command>) -> Result<()> {
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

    fn samples(&mut self, samples: &SampleSet) -> Result<PathBuf> {
        let path = self
            .dir
            .join("samples")
            .join(format!("step-{:07}.png", samples.step()));
        let grid = pictures::render(samples);
        grid.save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        if let Some(tensorboard) = &mut self.tensorboard {
            tensorboard.samples(samples.step(), &grid, pictures::render_real(samples))?;
        }
        // The latest set as data too, for a viewer of the finished run.
        let latest = self.dir.join("samples").join(LATEST_SAMPLES);
        write_atomically(&latest, &serde_json::to_vec(samples)?)
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
            TrainEvent::Metrics(m) => {
                self.record(&event)?;
                if let Some(tensorboard) = &mut self.tensorboard {
                    tensorboard.metrics(m)?;
                }
            }
            TrainEvent::Eval(e) => {
                self.record(&event)?;
                if let Some(tensorboard) = &mut self.tensorboard {
                    tensorboard.evaluation(e)?;
                }
            }
            TrainEvent::Alert(alert) => {
                self.record(&event)?;
                if let Some(tensorboard) = &mut self.tensorboard {
                    tensorboard.alert(alert)?;
                }
                if let Some(command) = &self.on_alert {
                    run_on_alert(command, alert, &self.dir);
                }
            }
            TrainEvent::HyperChanged { .. }
            | TrainEvent::ChangeRefused { .. }
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

/// Starts `command` with `sh -c` and the alert in its environment, its output discarded; a
/// thread of its own waits for it so that it leaves no zombie. Whether the command works is its
/// own business: the alert is in `metrics.jsonl` and on screen either way, and nothing is
/// written to a terminal the monitor holds.
fn run_on_alert(command: &str, alert: &Alert, dir: &Path) {
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("WGANGP_ALERT", &alert.message)
        .env("WGANGP_ALERT_KIND", alert.kind.name())
        .env("WGANGP_STEP", alert.step.to_string())
        .env("WGANGP_RUN", dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        let _ = std::thread::Builder::new()
            .name("wgangp-on-alert".into())
            .spawn(move || child.wait());
    }
}
