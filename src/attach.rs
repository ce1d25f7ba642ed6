//! `wgangp-tui attach RUN_DIR`: the monitor on a run that another process trains, through the
//! run's socket (see [`crate::protocol`]); or, when no process serves the run any more, the run
//! as its files left it, read-only.

use std::fs;
use std::io::{BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::TrainConfig;
use crate::event::{RunState, SampleSet, TrainEvent};
use crate::headless::LATEST_SAMPLES;
use crate::protocol::{self, PROTOCOL, ServerMessage};
use crate::tui::app::Link;
use crate::tui::{self, App, ColorMode};

/// How a viewer ended, for the closing message and exit status.
pub struct Viewed {
    pub message: String,
    /// The signal that ended the viewer (0: none).
    pub signal: i32,
}

/// A live connection to a run's process, after its hello.
pub struct Connection {
    pub stream: UnixStream,
    pub reader: BufReader<UnixStream>,
    pub pid: u32,
}

/// Connects to the run in `dir`. `Ok(None)`: no process serves it (finished, or stopped).
pub fn connect(dir: &Path) -> Result<Option<Connection>> {
    let path = protocol::socket_path(dir);
    let stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            return Ok(None);
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            bail!(
                "cannot attach to {}: its socket belongs to another user",
                dir.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot connect to {}", path.display())),
    };
    // A live process answers at once; one that hangs must not hang the viewer.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    protocol::read_line(&mut reader, &mut line)
        .with_context(|| format!("no answer on {}", path.display()))?;
    let pid = match serde_json::from_str(&line) {
        Ok(ServerMessage::Hello { protocol, pid, .. }) if protocol == PROTOCOL => pid,
        Ok(ServerMessage::Hello { protocol, .. }) => bail!(
            "the run speaks protocol {protocol} and this wgangp-tui speaks {PROTOCOL}: attach with \
             the wgangp-tui that trains it"
        ),
        Ok(ServerMessage::Error { message }) => {
            bail!("cannot attach to {}: {message}", dir.display())
        }
        _ => bail!(
            "{} did not answer as a wgangp-tui run: {}",
            path.display(),
            line.trim()
        ),
    };
    stream.set_read_timeout(None)?;
    reader.get_ref().set_read_timeout(None)?;
    Ok(Some(Connection {
        stream,
        reader,
        pid,
    }))
}

/// Opens the monitor on the run in `dir` until the user quits; the training goes on.
pub fn run(dir: &Path, ascii: bool) -> Result<Viewed> {
    let config = read_config(dir)?;
    let conn = connect(dir)?;
    if !tui::available() {
        bail!("attach needs a terminal (stdin and stdout)");
    }
    let mut app = App::new(config, ColorMode::from_env(), ascii);
    let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let (commands, commands_rx) = mpsc::channel();
    let Some(conn) = conn else {
        app.link = Link::ReadOnly;
        replay_files(dir, &events_tx)?;
        drop(events_tx);
        drop(commands_rx);
        let (looped, signal) = tui::watch(&mut app, events, &commands);
        if signal == 0 {
            looped?;
        }
        return Ok(Viewed {
            message: format!(
                "no process trains {} now; it was shown read-only",
                dir.display()
            ),
            signal,
        });
    };
    app.link = Link::Attached { pid: conn.pid };
    let Connection {
        stream,
        mut reader,
        pid,
    } = conn;
    // The server's error replies (none are expected from this viewer's own commands).
    let errors = Arc::new(Mutex::new(None::<String>));
    let lost = Arc::new(AtomicBool::new(false));
    let incoming = std::thread::Builder::new()
        .name("wgangp-attach-in".into())
        .spawn({
            let (errors, lost) = (errors.clone(), lost.clone());
            move || {
                let mut line = String::new();
                while let Ok(true) = protocol::read_line(&mut reader, &mut line) {
                    match serde_json::from_str(&line) {
                        Ok(ServerMessage::Event(event)) => {
                            if events_tx.send(event).is_err() {
                                return;
                            }
                        }
                        Ok(ServerMessage::Error { message }) => {
                            *errors.lock().unwrap() = Some(message)
                        }
                        Ok(ServerMessage::Hello { .. }) | Err(_) => {}
                    }
                }
                lost.store(true, Ordering::SeqCst);
            }
        })?;
    let mut out = stream.try_clone()?;
    std::thread::Builder::new()
        .name("wgangp-attach-out".into())
        .spawn(move || {
            for command in commands_rx {
                let Ok(line) = serde_json::to_string(&command) else {
                    continue;
                };
                if writeln!(out, "{line}").is_err() {
                    return;
                }
            }
        })?;

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
    if let Some(e) = errors.lock().unwrap().take() {
        message.push_str(&format!(" (the run answered: {e})"));
    }
    Ok(Viewed { message, signal })
}

/// The configuration a run folder records.
pub fn read_config(dir: &Path) -> Result<TrainConfig> {
    let path = dir.join("config.json");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "{} is not a run folder (it has no config.json)",
            dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// The events a run's files hold: the metrics history and the latest samples. Lines that are
/// not events (cut off by a kill) are skipped.
pub fn replay_files(dir: &Path, events: &UnboundedSender<TrainEvent>) -> Result<()> {
    let metrics = dir.join("metrics.jsonl");
    let text = fs::read_to_string(&metrics)
        .with_context(|| format!("cannot read {}", metrics.display()))?;
    for line in text.lines() {
        if let Ok(event) = serde_json::from_str::<TrainEvent>(line) {
            let _ = events.send(event);
        }
    }
    let latest = dir.join("samples").join(LATEST_SAMPLES);
    if let Some(samples) = fs::read(latest)
        .ok()
        .and_then(|b| serde_json::from_slice::<SampleSet>(&b).ok())
    {
        let _ = events.send(TrainEvent::Samples(Box::new(samples)));
    }
    Ok(())
}
