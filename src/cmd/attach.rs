//! `wgangp-tui attach RUN_DIR`: the monitor on a run that another process trains, through the
//! run's socket; or, when no process serves the run any more, the run as its files left it,
//! read-only.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Result, bail};
use tokio::sync::mpsc::UnboundedSender;

use crate::event::{Command, RunState, TrainEvent};
use crate::front::tui::app::Link;
use crate::front::tui::{self, App, ColorMode, Feed};
use crate::run::client::{Connection, connect, read_config, read_recorded};
use crate::run::protocol::{self, ServerMessage};

/// How a viewer ended, for the closing message and exit status.
pub struct Viewed {
    pub message: String,
    /// The signal that ended the viewer (0: none).
    pub signal: i32,
}

/// Opens the monitor on the run in `dir` until the user quits; the training goes on.
pub fn run(dir: &Path, ascii: bool) -> Result<Viewed> {
    let config = read_config(dir)?;
    let conn = connect(dir)?;
    if !tui::available() {
        bail!("attach needs a terminal (stdin and stdout)");
    }
    let app = App::new(config, ColorMode::from_env(), ascii);
    match conn {
        Some(conn) => view_live(dir, app, conn),
        None => view_read_only(dir, app),
    }
}

/// Shows a run that no process trains, from its files.
fn view_read_only(dir: &Path, mut app: App) -> Result<Viewed> {
    app.link = Link::ReadOnly;
    let recorded = read_recorded(dir)?;
    let (feed, events) = tokio::sync::mpsc::unbounded_channel();
    for event in recorded.events {
        let _ = feed.send(Feed::Event(event));
    }
    if let Some(problem) = recorded.problem {
        let _ = feed.send(Feed::Problem(problem));
    }
    drop(feed);
    let (commands, _) = mpsc::channel();
    let (looped, signal) = tui::watch(&mut app, events, &commands);
    if signal == 0 {
        looped?;
    }
    Ok(Viewed {
        message: format!(
            "no process trains {} now; it was shown read-only",
            dir.display()
        ),
        signal,
    })
}

/// Watches and steers a run through its socket until the user quits or the run ends.
fn view_live(dir: &Path, mut app: App, conn: Connection) -> Result<Viewed> {
    let Connection {
        stream,
        reader,
        pid,
    } = conn;
    app.link = Link::Attached { pid };
    let (feed, events) = tokio::sync::mpsc::unbounded_channel();
    let (commands, commands_rx) = mpsc::channel();
    // The server's last error reply (none are expected from this viewer's own commands).
    let answered = Arc::new(Mutex::new(None::<String>));
    let lost = Arc::new(AtomicBool::new(false));
    let incoming = std::thread::Builder::new()
        .name("wgangp-attach-in".into())
        .spawn({
            let (answered, lost) = (answered.clone(), lost.clone());
            move || {
                read_server(reader, &feed, &answered);
                lost.store(true, Ordering::SeqCst);
            }
        })?;
    let out = stream.try_clone()?;
    std::thread::Builder::new()
        .name("wgangp-attach-out".into())
        .spawn(move || send_commands(out, commands_rx))?;

    let (looped, signal) = tui::watch(&mut app, events, &commands);
    // Before this end's shutdown makes the stream end anyway.
    let lost = lost.load(Ordering::SeqCst);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = incoming.join();
    if signal == 0 {
        looped?;
    }
    let again = format!("wgangp-tui attach {}", dir.display());
    let mut message = if app.state == RunState::Finished {
        format!(
            "the run in {} has finished (step {})",
            dir.display(),
            app.step
        )
    } else if lost {
        format!("lost the connection to process {pid}; try again with: {again}")
    } else {
        format!("detached; training goes on in process {pid}; watch it again with: {again}")
    };
    let answered = answered
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(e) = answered {
        message.push_str(&format!(" (the run answered: {e})"));
    }
    Ok(Viewed { message, signal })
}

/// Feeds the monitor what the server sends until the stream ends. A line that cannot be read
/// is shown as a problem and skipped.
fn read_server(
    mut reader: BufReader<UnixStream>,
    feed: &UnboundedSender<Feed>,
    answered: &Mutex<Option<String>>,
) {
    let mut line = String::new();
    while let Ok(true) = protocol::read_line(&mut reader, &mut line) {
        let item = match serde_json::from_str(&line) {
            Ok(ServerMessage::Event(event)) => Feed::Event(event),
            Ok(ServerMessage::Error { message }) => {
                *answered.lock().unwrap_or_else(PoisonError::into_inner) = Some(message.clone());
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

/// Sends the monitor's commands to the server, one JSON line each.
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
