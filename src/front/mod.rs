//! The front ends, side by side: `headless` (a progress line; the files are the session's) and
//! `tui` (the live monitor). Each shows a [`Session`]'s feed and sends it commands; [`drive`]
//! runs one on a session, the one place where signals are caught and a session is closed.

pub mod headless;
pub mod tui;

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::Sender;

use anyhow::{Context, Result};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::event::Command;
use crate::run::session::{Feed, Left, Link, Session};
use crate::util::signals::SignalWatch;

/// A front end: shows what a session feeds it, and sends the session commands.
pub trait FrontEnd {
    /// Shows `feed` until the run ends or the person leaves. Each termination signal caught
    /// (SIGINT, SIGTERM, SIGHUP) arrives on `signals`; what it means is the front end's to say.
    fn show(
        &mut self,
        link: Link,
        feed: UnboundedReceiver<Feed>,
        signals: UnboundedReceiver<i32>,
        commands: &Sender<Command>,
    ) -> Result<Left>;
}

/// Runs `front` on `session` until the person leaves or the run ends, then closes the session.
pub fn drive<S: Session>(mut session: S, front: &mut dyn FrontEnd) -> Result<S::Closed> {
    let caught = Arc::new(AtomicI32::new(0));
    let (signal_tx, signals) = unbounded_channel();
    let watch = SignalWatch::start({
        let caught = caught.clone();
        move |signal| {
            caught.store(signal, Ordering::SeqCst);
            let _ = signal_tx.send(signal);
        }
    })
    .context("cannot watch for signals")?;
    let shown = session.feed().and_then(|feed| {
        let commands = session.commands();
        front.show(session.link(), feed, signals, &commands)
    });
    drop(watch);
    let signal = caught.load(Ordering::SeqCst);
    // A hung-up terminal fails its input: that is the signal's doing, not an error.
    let left = match shown {
        Ok(left) => left,
        Err(_) if signal != 0 => Left::default(),
        Err(e) => {
            let _ = session.close(Left::default(), signal);
            return Err(e);
        }
    };
    session.close(left, signal)
}
