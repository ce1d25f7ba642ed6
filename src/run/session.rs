//! A run as a front end drives it: a stream of what to show ([`Feed`]), a sender for
//! [`Command`]s, and an end ([`Session::close`]). Three kinds: [`Training`] (this process
//! trains: the run folder, its lock, its socket, the writer and the worker), and the viewers'
//! two in [`super::viewing`] (a live run over its socket, a run that no process serves from its
//! files).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::client::read_recorded;
use super::lock::{RunLock, lock_run};
use super::server::Listener;
use super::writer::{Outcome, RunWriter};
use crate::checkpoint::Checkpoint;
use crate::config::TrainConfig;
use crate::data::Dataset;
use crate::data::folder::Skipped;
use crate::event::{Command, RunState, TrainEvent};
use crate::train::Worker;
use crate::util::files::write_atomically;
use crate::util::panic_message;

/// What a front end is fed.
#[derive(Debug)]
pub enum Feed {
    /// An event of the run as it happens.
    Event(TrainEvent),
    /// An event the run's files held before this session began (a resumed run's history).
    Recorded(TrainEvent),
    /// A problem with what the front end was given (a damaged file, a message that could not be
    /// read): to be said, never a crash.
    Problem(String),
}

/// How a front end is connected to the training it shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Training runs in this process: quitting stops it.
    InProcess,
    /// Attached to the run's socket; training runs in process `pid` and goes on after we quit.
    Attached { pid: u32 },
    /// A run that no process serves, shown from its files; nothing can be changed.
    ReadOnly,
}

/// How the person left a front end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Left {
    /// `d`: training is to go on in a background process.
    pub detach: bool,
    /// The run was paused when the person detached: it goes on paused.
    pub paused: bool,
    /// The terminal went away (a hang-up): nothing more can be shown there.
    pub hung_up: bool,
}

/// A run as a front end drives it.
pub trait Session {
    /// What the session says of the run once it is closed.
    type Closed;

    fn link(&self) -> Link;

    /// What to show, in order; it ends when nothing more will come. Taken once.
    fn feed(&mut self) -> Result<UnboundedReceiver<Feed>>;

    /// Where the front end's commands go.
    fn commands(&self) -> Sender<Command>;

    /// Ends the session once its front end has left; `signal` is the termination signal that
    /// ended it (0: none).
    fn close(self, left: Left, signal: i32) -> Result<Self::Closed>;
}

/// What the run does when a value turns non-finite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnNonFinite {
    /// The run ends with the non-finite state as its last record (headless).
    Stop,
    /// The run waits, paused, for a person to change something and resume, or stop (monitor).
    Pause,
}

/// A run trained by this process.
pub struct Training {
    dir: PathBuf,
    /// The run folder's lock, held while this process writes the run.
    _lock: RunLock,
    writer: Option<RunWriter>,
    commands: Sender<Command>,
    events: Option<Receiver<TrainEvent>>,
    worker: JoinHandle<()>,
    /// What the front end is fed before the run's own events: a resumed run's history, notices.
    before: Vec<Feed>,
    on_non_finite: OnNonFinite,
    writing: Option<JoinHandle<Result<(Option<Outcome>, RunWriter)>>>,
}

/// How a run trained by this process ended, for the closing message.
#[derive(Debug)]
pub struct Ended {
    pub outcome: Outcome,
    pub dir: PathBuf,
    /// The newest checkpoint written in this process: (step, folder).
    pub checkpoint: Option<(u64, PathBuf)>,
    /// How the person left the front end.
    pub left: Left,
}

impl Training {
    /// Opens the run folder (anew, or to go on from `from`), starts the worker (`paused`: before
    /// its first step) and serves the run on its socket. `notice`, if any, is the first thing
    /// the front end is told.
    pub fn open(
        config: TrainConfig,
        data: Dataset,
        from: Option<Checkpoint>,
        paused: bool,
        on_non_finite: OnNonFinite,
        notice: Option<String>,
    ) -> Result<Self> {
        let dir = config.out.clone();
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create output folder {}", dir.display()))?;
        // First, so that a live run in this folder is refused before any of its files is touched.
        let lock = lock_run(&dir)?;
        let listener = Listener::bind(&dir)?;
        let mut writer = match &from {
            Some(ck) => RunWriter::resume(&config, ck.step)?,
            None => RunWriter::create(&config)?,
        };
        if let Dataset::Folder(folder) = &data {
            write_skipped(&dir, &folder.skipped)?;
        }
        let resumed = from.is_some();
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
        let mut before = Vec::new();
        // A resumed run's curves start from its first step: read before anything new is written.
        if resumed {
            let recorded = read_recorded(writer.dir())?;
            before.extend(recorded.events.into_iter().map(Feed::Recorded));
            before.extend(recorded.problem.map(Feed::Problem));
        }
        before.extend(notice.map(Feed::Problem));
        let (commands, events, worker) = worker.split();
        Ok(Self {
            dir,
            _lock: lock,
            writer: Some(writer),
            commands,
            events: Some(events),
            worker,
            before,
            on_non_finite,
            writing: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Session for Training {
    type Closed = Ended;

    fn link(&self) -> Link {
        Link::InProcess
    }

    /// Starts writing the run's files on a thread of its own; every event reaches the files
    /// first and the front end after, whatever the front end does with it.
    fn feed(&mut self) -> Result<UnboundedReceiver<Feed>> {
        let (tx, rx) = unbounded_channel();
        for feed in self.before.drain(..) {
            let _ = tx.send(feed);
        }
        let (Some(writer), Some(events)) = (self.writer.take(), self.events.take()) else {
            anyhow::bail!("the run's feed was taken twice");
        };
        let on_non_finite = self.on_non_finite;
        self.writing = Some(
            std::thread::Builder::new()
                .name("wgangp-writer".into())
                .spawn(move || write_and_forward(writer, events, tx, on_non_finite))?,
        );
        Ok(rx)
    }

    fn commands(&self) -> Sender<Command> {
        self.commands.clone()
    }

    /// The worker stops (with a checkpoint, unless the run already ended) and the files are
    /// complete before this returns.
    fn close(self, left: Left, signal: i32) -> Result<Ended> {
        let _ = self.commands.send(Command::Stop);
        drop(self.commands);
        // A feed never taken: the run's events were never read, and nothing was written.
        let written = match self.writing {
            Some(writing) => writing
                .join()
                .map_err(|_| anyhow::anyhow!("the file writer panicked"))
                .and_then(|written| written),
            None => Ok((None, self.writer.context("the run has no writer")?)),
        };
        drop(self.events);
        let trained = self.worker.join();
        let (outcome, writer) = written?;
        let outcome = match (outcome, trained) {
            (_, Err(panic)) => anyhow::bail!(
                "the training thread failed: {}",
                panic_message(panic.as_ref())
            ),
            (None, Ok(())) => anyhow::bail!("the training thread ended unexpectedly"),
            // A run handed on (`d`, or a hang-up that detaches) is not interrupted.
            (Some(Outcome::Finished), Ok(())) if signal != 0 && !left.detach => {
                Outcome::Interrupted(signal)
            }
            (Some(outcome), Ok(())) => outcome,
        };
        Ok(Ended {
            outcome,
            dir: self.dir,
            checkpoint: writer.last_checkpoint().cloned(),
            left,
        })
    }
}

/// Writes the run's files as events arrive and passes each event on, until the run finishes
/// (or, with [`OnNonFinite::Stop`], turns non-finite); returns its outcome and the writer.
///
/// With [`OnNonFinite::Pause`] the outcome is the last state's: a run stopped while paused by a
/// non-finite value keeps that as its outcome.
fn write_and_forward(
    mut writer: RunWriter,
    events: Receiver<TrainEvent>,
    feed: UnboundedSender<Feed>,
    on_non_finite: OnNonFinite,
) -> Result<(Option<Outcome>, RunWriter)> {
    let mut outcome = None;
    for event in events {
        let (event, ended) = writer.handle(event)?;
        let state = match &event {
            TrainEvent::State { state, .. } => Some(*state),
            _ => None,
        };
        let last = state == Some(RunState::Finished)
            || (state == Some(RunState::NonFinite) && on_non_finite == OnNonFinite::Stop);
        match ended {
            Some(Outcome::Finished) if outcome.is_some() => {}
            Some(end) => outcome = Some(end),
            None if state == Some(RunState::Running) => outcome = None,
            None => {}
        }
        let _ = feed.send(Feed::Event(event));
        if last {
            break;
        }
    }
    writer.stop_serving();
    Ok((outcome, writer))
}

/// The files of an image folder that were not used, one per line with why, in the run folder.
pub const SKIPPED: &str = "skipped-files.txt";

/// Writes [`SKIPPED`] (empty when every file was used).
fn write_skipped(dir: &Path, skipped: &[Skipped]) -> Result<()> {
    let text: String = skipped
        .iter()
        .map(|s| format!("{}\t{}\n", s.path.display(), s.why))
        .collect();
    let path = dir.join(SKIPPED);
    write_atomically(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
