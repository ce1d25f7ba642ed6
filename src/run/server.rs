//! Serves a run to viewers over the Unix socket in its run folder (see [`super::protocol`]), so
//! that `wgangp-tui attach` can watch and steer a run from any later terminal.
//!
//! The run folder's writer publishes each event after recording it; every viewer has its own
//! bounded queue and thread, so a slow or vanished viewer is dropped and never slows training.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::protocol::{self, PROTOCOL, ServerMessage};
use crate::event::{Command, TrainEvent};
use crate::util::say;

/// Lines queued for one viewer before it counts as too slow and is dropped (it may attach again).
const QUEUE: usize = 4096;

/// How long the end of a run waits for viewers to receive its last lines.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The bound socket of a run, before the worker exists.
pub struct Listener {
    listener: UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Binds `control.sock` in `dir`, readable and writable by its owner only. Refuses when a
    /// live process serves this run already; a socket left by a killed process is replaced.
    /// `Ok(None)` (with a warning said) when the path is too long for a Unix socket.
    pub fn bind(dir: &Path) -> Result<Option<Listener>> {
        let path = protocol::socket_path(dir);
        if let Some(pid) = live_pid(&path)? {
            bail!(
                "process {pid} is training the run in {} already; watch it with: wgangp-tui attach {}",
                dir.display(),
                dir.display()
            );
        }
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
        // Bound under a temporary name and renamed once its mode is 0600, so that the socket
        // is never reachable with wider permissions.
        let tmp = dir.join(format!(".sock-{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let listener = match UnixListener::bind(&tmp) {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::InvalidInput => {
                say(format_args!(
                    "warning: {} is too long a path for a Unix socket; this run cannot be \
                     attached to (give a shorter --out)",
                    path.display()
                ));
                return Ok(None);
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", tmp.display())),
        };
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
            .and_then(|_| fs::rename(&tmp, &path))
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Some(Listener { listener, path }))
    }
}

/// The pid of the live process serving the socket at `path`, if one does.
pub fn live_pid(path: &Path) -> Result<Option<u32>> {
    let stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot check {}", path.display())),
    };
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    let _ = protocol::read_line(&mut BufReader::new(stream), &mut line);
    Ok(Some(match serde_json::from_str(&line) {
        Ok(ServerMessage::Hello { pid, .. }) => pid,
        _ => 0,
    }))
}

/// The uid of the process at the other end of `stream`.
pub fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(stream)?.uid.as_raw())
}

/// Only the run's owner may watch or steer it (root is refused too: the socket's 0600 mode does
/// not stop root, this check does).
pub fn check_peer(peer: u32, owner: u32) -> Result<(), String> {
    if peer == owner {
        Ok(())
    } else {
        Err(format!(
            "refused: this run belongs to user {owner}, and you are user {peer}"
        ))
    }
}

fn own_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The mutex's data even if a thread panicked while holding it: the hub's state (a list of
/// viewers, the latest events) stays usable, and a viewer thread's panic must not take the
/// run down.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

type Line = Option<Arc<str>>;

struct Viewer {
    queue: SyncSender<Line>,
    stream: UnixStream,
}

#[derive(Default)]
struct Hub {
    viewers: Vec<Viewer>,
    /// The latest `started` and `samples` events, for viewers that attach later (kept as
    /// events: with nobody attached, nothing is serialised).
    started: Option<Arc<TrainEvent>>,
    samples: Option<Arc<TrainEvent>>,
    /// Bytes of `metrics.jsonl` written so far: a new viewer replays exactly these.
    recorded: u64,
}

/// A run being served; stops serving (and removes the socket) when dropped.
pub struct Server {
    hub: Arc<Mutex<Hub>>,
    path: PathBuf,
    inode: u64,
    /// The listening socket, shared with the accepting thread: shutting it down wakes that
    /// thread.
    listener: UnixListener,
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    writers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Server {
    /// Starts accepting viewers. `metrics` is the run's `metrics.jsonl`, of which `recorded`
    /// bytes are written; `commands` goes to the worker.
    pub fn start(
        listener: Listener,
        run: &Path,
        metrics: PathBuf,
        recorded: u64,
        commands: Sender<Command>,
    ) -> Result<Server> {
        let Listener { listener, path } = listener;
        let inode = fs::metadata(&path)?.ino();
        let waker = listener.try_clone()?;
        let hub = Arc::new(Mutex::new(Hub {
            recorded,
            ..Hub::default()
        }));
        let stopping = Arc::new(AtomicBool::new(false));
        let writers = Arc::new(Mutex::new(Vec::new()));
        let hello: Arc<str> = serde_json::to_string(&ServerMessage::Hello {
            protocol: PROTOCOL,
            pid: std::process::id(),
            run: run.to_path_buf(),
        })?
        .into();
        let accept = std::thread::Builder::new()
            .name("wgangp-serve".into())
            .spawn({
                let (hub, stopping, writers) = (hub.clone(), stopping.clone(), writers.clone());
                move || {
                    for stream in listener.incoming() {
                        if stopping.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else {
                            // Out of file descriptors, say: do not spin.
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        };
                        let joined = Joined {
                            hub: &hub,
                            hello: &hello,
                            metrics: &metrics,
                            commands: &commands,
                        };
                        if let Ok(Some(writer)) = joined.welcome(stream) {
                            let mut writers = lock(&writers);
                            writers.retain(|w: &JoinHandle<()>| !w.is_finished());
                            writers.push(writer);
                        }
                    }
                }
            })?;
        Ok(Server {
            hub,
            path,
            inode,
            listener: waker,
            stopping,
            accept: Some(accept),
            writers,
        })
    }

    /// Passes an event on to every viewer; `recorded` is the length of `metrics.jsonl` with
    /// the event recorded. A viewer whose queue is full is dropped.
    pub fn publish(&self, event: &TrainEvent, recorded: u64) {
        if matches!(event, TrainEvent::Checkpoint(_)) {
            return; // stays in the process; CheckpointSaved follows
        }
        let mut hub = lock(&self.hub);
        hub.recorded = recorded;
        match event {
            TrainEvent::Started { .. } => hub.started = Some(Arc::new(event.clone())),
            TrainEvent::Samples(_) => hub.samples = Some(Arc::new(event.clone())),
            _ => {}
        }
        if hub.viewers.is_empty() {
            return;
        }
        let Ok(line) = serde_json::to_string(event) else {
            return;
        };
        let line: Arc<str> = line.into();
        hub.viewers
            .retain(|v| match v.queue.try_send(Some(line.clone())) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    let _ = v.stream.shutdown(std::net::Shutdown::Both);
                    false
                }
            });
    }

    /// How many viewers are attached.
    pub fn viewers(&self) -> usize {
        lock(&self.hub).viewers.len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accepting thread so that it sees `stopping`: shutting the listening socket
        // down makes a blocked accept() return on Linux even when the socket's file is gone.
        let _ = rustix::net::shutdown(&self.listener, rustix::net::Shutdown::Both);
        let _ = UnixStream::connect(&self.path);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        // The socket goes unless another process has replaced it meanwhile.
        if fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = fs::remove_file(&self.path);
        }
        let viewers = std::mem::take(&mut lock(&self.hub).viewers);
        for v in &viewers {
            if v.queue.try_send(None).is_err() {
                let _ = v.stream.shutdown(std::net::Shutdown::Both);
            }
        }
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        let writers = std::mem::take(&mut *lock(&self.writers));
        for w in writers {
            while !w.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // A viewer that does not read must not keep its threads (and their command sender,
        // which keeps the worker waiting) alive.
        for v in viewers {
            let _ = v.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// What a new viewer's threads need.
struct Joined<'a> {
    hub: &'a Arc<Mutex<Hub>>,
    hello: &'a Arc<str>,
    metrics: &'a Path,
    commands: &'a Sender<Command>,
}

impl Joined<'_> {
    /// Checks a new connection and starts its two threads; returns the writer's handle.
    fn welcome(&self, mut stream: UnixStream) -> std::io::Result<Option<JoinHandle<()>>> {
        if let Err(why) = peer_uid(&stream)
            .map_err(|e| e.to_string())
            .and_then(|peer| check_peer(peer, own_uid()))
        {
            let reply = serde_json::to_string(&ServerMessage::Error { message: why })?;
            let _ = writeln!(stream, "{reply}");
            return Ok(None);
        }
        let (queue, lines) = sync_channel(QUEUE);
        let (started, samples, recorded) = {
            let mut hub = lock(&self.hub);
            hub.viewers.push(Viewer {
                queue: queue.clone(),
                stream: stream.try_clone()?,
            });
            (hub.started.clone(), hub.samples.clone(), hub.recorded)
        };
        let line = |e: Option<Arc<TrainEvent>>| -> Option<Arc<str>> {
            serde_json::to_string(&*e?).ok().map(Into::into)
        };
        let first = [Some(self.hello.clone()), line(started)];
        let samples = line(samples);
        let writer = ViewerWriter {
            stream: stream.try_clone()?,
            first: first.into_iter().flatten().collect(),
            metrics: self.metrics.to_path_buf(),
            recorded,
            samples,
            lines,
        };
        let commands = self.commands.clone();
        std::thread::Builder::new()
            .name("wgangp-viewer-in".into())
            .spawn(move || read_commands(stream, commands, queue))?;
        std::thread::Builder::new()
            .name("wgangp-viewer-out".into())
            .spawn(move || writer.serve())
            .map(Some)
    }
}

/// Sends one viewer the hello, the run so far, then the live stream.
struct ViewerWriter {
    stream: UnixStream,
    first: Vec<Arc<str>>,
    metrics: PathBuf,
    recorded: u64,
    samples: Option<Arc<str>>,
    lines: Receiver<Line>,
}

impl ViewerWriter {
    fn serve(self) {
        let _ = self.send();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    fn send(&self) -> std::io::Result<()> {
        let mut out = BufWriter::new(&self.stream);
        for line in &self.first {
            writeln!(out, "{line}")?;
        }
        // metrics.jsonl holds event lines of the same protocol: the history is the file's
        // first `recorded` bytes, complete lines all.
        let history = File::open(&self.metrics)?;
        std::io::copy(&mut history.take(self.recorded), &mut out)?;
        if let Some(samples) = &self.samples {
            writeln!(out, "{samples}")?;
        }
        out.flush()?;
        while let Ok(Some(line)) = self.lines.recv() {
            writeln!(out, "{line}")?;
            // Write whatever is queued in one go, then flush.
            while let Ok(Some(line)) = self.lines.try_recv() {
                writeln!(out, "{line}")?;
            }
            out.flush()?;
        }
        out.flush()
    }
}

/// Reads a viewer's commands and passes valid ones to the worker; a bad line gets an error
/// reply and the connection stays open.
fn read_commands(stream: UnixStream, commands: Sender<Command>, replies: SyncSender<Line>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        match protocol::read_line(&mut reader, &mut line) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                let _ = replies.try_send(error_line(&format!("cannot read a command: {e}")));
                return;
            }
        }
        if line.trim().is_empty() {
            continue;
        }
        match protocol::parse_command(&line) {
            Ok(command) => {
                if commands.send(command).is_err() {
                    return;
                }
            }
            Err(why) => {
                let _ = replies.try_send(error_line(&why));
            }
        }
    }
}

fn error_line(message: &str) -> Line {
    let reply = ServerMessage::Error {
        message: message.to_string(),
    };
    serde_json::to_string(&reply).ok().map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_is_let_in() {
        assert!(check_peer(1000, 1000).is_ok());
        let refused = check_peer(0, 1000).unwrap_err();
        assert!(refused.contains("belongs to user 1000"), "{refused}");
        assert!(check_peer(1001, 1000).is_err());
    }

    #[test]
    fn peer_uid_is_our_own_on_a_socket_pair() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), own_uid());
    }

    #[test]
    fn socket_is_owner_only_and_a_live_run_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let listener = Listener::bind(dir.path()).unwrap().unwrap();
        let path = protocol::socket_path(dir.path());
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let (commands, _rx) = std::sync::mpsc::channel();
        let server = Server::start(
            listener,
            dir.path(),
            dir.path().join("metrics.jsonl"),
            0,
            commands,
        )
        .unwrap();
        let again = Listener::bind(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            again.contains(&format!("process {}", std::process::id())),
            "{again}"
        );
        drop(server);
        assert!(!path.exists(), "the socket is removed at the end");
        // A socket left behind by a killed process is replaced.
        let stale = UnixListener::bind(&path).unwrap();
        drop(stale);
        assert!(Listener::bind(dir.path()).unwrap().is_some());
    }

    /// Closing does not hang when the socket's file was removed meanwhile (the wake-up by
    /// connecting to it cannot work then).
    #[test]
    fn closing_does_not_need_the_socket_file() {
        let dir = tempfile::tempdir().unwrap();
        let listener = Listener::bind(dir.path()).unwrap().unwrap();
        let (commands, _rx) = std::sync::mpsc::channel();
        let metrics = dir.path().join("metrics.jsonl");
        let server = Server::start(listener, dir.path(), metrics, 0, commands).unwrap();
        fs::remove_file(protocol::socket_path(dir.path())).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(server);
            let _ = done_tx.send(());
        });
        assert!(
            done_rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "closing hung"
        );
    }

    /// A thread that panicked while holding the hub's lock does not make publishing, counting
    /// viewers or closing panic.
    #[test]
    fn a_poisoned_hub_still_publishes_and_closes() {
        let dir = tempfile::tempdir().unwrap();
        let listener = Listener::bind(dir.path()).unwrap().unwrap();
        let (commands, _rx) = std::sync::mpsc::channel();
        let metrics = dir.path().join("metrics.jsonl");
        let server = Server::start(listener, dir.path(), metrics, 0, commands).unwrap();
        let hub = server.hub.clone();
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let _ = std::thread::spawn(move || {
            let _held = hub.lock();
            panic!("a viewer thread failed");
        })
        .join();
        std::panic::set_hook(quiet);
        assert!(server.hub.is_poisoned());
        let event = TrainEvent::State {
            step: 1,
            state: crate::event::RunState::Paused,
            reason: None,
        };
        server.publish(&event, 0);
        assert_eq!(server.viewers(), 0);
        drop(server);
    }
}
