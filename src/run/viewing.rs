//! The viewers' sessions (`attach`): a live run over its socket ([`Attached`]), or a run that
//! no process serves any more, from its files ([`ReadOnly`]). Quitting a viewer leaves the
//! training alone.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::client::{Connection, read_recorded};
use super::protocol::{self, ServerMessage};
use super::session::{Feed, Left, Link, Session};
use crate::event::{Command, RunState, TrainEvent};

/// How a viewer ended, for the closing message and exit status.
pub struct Viewed {
    pub message: String,
    /// The signal that ended the viewer (0: none).
    pub signal: i32,
}

/// What the viewer has heard from the run, for its closing message.
#[derive(Default)]
struct Heard {
    /// The newest state and step the run reported.
    state: Option<RunState>,
    step: u64,
    /// The server's last error reply (none are expected from this viewer's own commands).
    answered: Option<String>,
    /// The stream ended before this viewer left.
    lost: bool,
}

/// A live run, watched and steered through its socket.
pub struct Attached {
    dir: PathBuf,
    /// What the server sends, until the feed takes it.
    reader: Option<BufReader<UnixStream>>,
    pid: u32,
    stream: UnixStream,
    commands: Sender<Command>,
    heard: Arc<Mutex<Heard>>,
    incoming: Option<JoinHandle<()>>,
}

impl Attached {
    /// The session on `conn`, the connection to the run in `dir`; commands are sent over it
    /// from now on.
    pub fn new(dir: &Path, conn: Connection) -> Result<Self> {
        let Connection {
            stream,
            reader,
            pid,
        } = conn;
        let out = stream.try_clone()?;
        let (commands, commands_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("wgangp-attach-out".into())
            .spawn(move || send_commands(out, commands_rx))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            pid,
            reader: Some(reader),
            stream,
            commands,
            heard: Arc::default(),
            incoming: None,
        })
    }
}

impl Session for Attached {
    type Closed = Viewed;

    fn link(&self) -> Link {
        Link::Attached { pid: self.pid }
    }

    fn feed(&mut self) -> Result<UnboundedReceiver<Feed>> {
        let reader = self
            .reader
            .take()
            .context("the run's feed was taken twice")?;
        let (tx, rx) = unbounded_channel();
        let heard = self.heard.clone();
        self.incoming = Some(
            std::thread::Builder::new()
                .name("wgangp-attach-in".into())
                .spawn(move || {
                    read_server(reader, &tx, &heard);
                    lock(&heard).lost = true;
                })?,
        );
        Ok(rx)
    }

    fn commands(&self) -> Sender<Command> {
        self.commands.clone()
    }

    fn close(self, _left: Left, signal: i32) -> Result<Viewed> {
        // Before this end's shutdown makes the stream end anyway.
        let lost = lock(&self.heard).lost;
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(incoming) = self.incoming {
            let _ = incoming.join();
        }
        let heard = std::mem::take(&mut *lock(&self.heard));
        let (dir, pid) = (self.dir.display(), self.pid);
        let again = format!("wgangp-tui attach {dir}");
        let mut message = if heard.state == Some(RunState::Finished) {
            format!("the run in {dir} has finished (step {})", heard.step)
        } else if lost {
            format!("lost the connection to process {pid}; try again with: {again}")
        } else {
            format!("detached; training goes on in process {pid}; watch it again with: {again}")
        };
        if let Some(e) = heard.answered {
            message.push_str(&format!(" (the run answered: {e})"));
        }
        Ok(Viewed { message, signal })
    }
}

fn lock(heard: &Mutex<Heard>) -> std::sync::MutexGuard<'_, Heard> {
    heard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Feeds the viewer what the server sends until the stream ends. A line that cannot be read
/// is said as a problem and skipped.
fn read_server(
    mut reader: BufReader<UnixStream>,
    feed: &UnboundedSender<Feed>,
    heard: &Mutex<Heard>,
) {
    let mut line = String::new();
    while let Ok(true) = protocol::read_line(&mut reader, &mut line) {
        let item = match serde_json::from_str(&line) {
            Ok(ServerMessage::Event(event)) => {
                if let TrainEvent::State { state, step, .. } = &event {
                    let mut heard = lock(heard);
                    heard.state = Some(*state);
                    heard.step = heard.step.max(*step);
                }
                if let TrainEvent::Metrics(m) = &event {
                    let mut heard = lock(heard);
                    heard.step = heard.step.max(m.step);
                }
                Feed::Event(event)
            }
            Ok(ServerMessage::Error { message }) => {
                lock(heard).answered = Some(message.clone());
                Feed::Problem(format!("the run answered: {message}"))
            }
            Ok(ServerMessage::Hello { .. }) => continue,
            // The untagged event loses the reason; parsing the line as an event gives it.
            Err(e) => {
                let why = serde_json::from_str::<TrainEvent>(&line).err().unwrap_or(e);
                Feed::Problem(format!("a message from the run was skipped: {why}"))
            }
        };
        if feed.send(item).is_err() {
            return;
        }
    }
}

/// Sends the viewer's commands to the server, one JSON line each.
fn send_commands(mut out: UnixStream, commands: mpsc::Receiver<Command>) {
    for command in commands {
        let Ok(line) = serde_json::to_string(&command) else {
            continue;
        };
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
}

/// A run that no process trains, as its files left it; nothing can be changed.
pub struct ReadOnly {
    dir: PathBuf,
}

impl ReadOnly {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }
}

impl Session for ReadOnly {
    type Closed = Viewed;

    fn link(&self) -> Link {
        Link::ReadOnly
    }

    fn feed(&mut self) -> Result<UnboundedReceiver<Feed>> {
        let recorded = read_recorded(&self.dir)?;
        let (tx, rx) = unbounded_channel();
        for event in recorded.events {
            let _ = tx.send(Feed::Recorded(event));
        }
        if let Some(problem) = recorded.problem {
            let _ = tx.send(Feed::Problem(problem));
        }
        Ok(rx)
    }

    /// Nobody takes them: the keys that would send one do nothing in a read-only view.
    fn commands(&self) -> Sender<Command> {
        mpsc::channel().0
    }

    fn close(self, _left: Left, signal: i32) -> Result<Viewed> {
        Ok(Viewed {
            message: format!(
                "no process trains {} now; it was shown read-only",
                self.dir.display()
            ),
            signal,
        })
    }
}
