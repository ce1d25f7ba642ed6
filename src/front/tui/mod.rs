//! The live terminal monitor: ratatui + crossterm on a tokio event loop.
//!
//! Three sources are selected together: terminal input, the worker's events (after the run
//! folder's writer has taken them, so the files get every event whatever the UI does) and a
//! render tick. A frame is drawn only when something changed, at most 15 times a second.

pub mod app;
pub mod charts;
pub mod halfblock;
pub mod health;
pub mod history;
pub mod keys;
pub mod loading;
pub mod samples;
pub mod ui;
pub mod view;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{Event, EventStream};
use tokio::sync::mpsc::UnboundedReceiver;

use super::Ended;
use crate::checkpoint::Checkpoint;
use crate::config::TrainConfig;
use crate::data::Dataset;
use crate::event::{Command, RunState, TrainEvent};
use crate::run::client::read_recorded;
use crate::run::writer::{Outcome, RunWriter, start};
use crate::util::panic_message;
use crate::util::signals::SignalWatch;
pub use app::{App, Feed};
use keys::Action;
pub use view::ColorMode;

/// Frame interval: at most ~15 frames a second.
pub const FRAME: Duration = Duration::from_millis(66);

/// Whether the monitor can run here (stdout and stdin are terminals).
pub fn available() -> bool {
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// Trains with the monitor until the user quits; `notice`, if any, shows in the problem line.
pub fn run(
    config: TrainConfig,
    data: Dataset,
    from: Option<Checkpoint>,
    paused: bool,
    ascii: bool,
    notice: Option<String>,
) -> Result<Ended> {
    let resumed = from.is_some();
    let (writer, worker) = start(config.clone(), data, from, paused)?;
    let (commands, events, handle) = worker.split();
    let (ui_tx, ui_rx) = tokio::sync::mpsc::unbounded_channel();
    // A resumed run's curves start from its first step: the history its files hold first.
    if resumed {
        let recorded = read_recorded(writer.dir())?;
        for event in recorded.events {
            let _ = ui_tx.send(Feed::Event(event));
        }
        if let Some(problem) = recorded.problem {
            let _ = ui_tx.send(Feed::Problem(problem));
        }
    }
    if let Some(notice) = notice {
        let _ = ui_tx.send(Feed::Problem(notice));
    }
    let bridge = std::thread::Builder::new()
        .name("wgangp-writer".into())
        .spawn(move || write_and_forward(writer, events, ui_tx))?;

    let mut app = App::new(config, ColorMode::from_env(), ascii);
    let (looped, signal) = watch(&mut app, ui_rx, &commands);

    // Whatever ended the loop, the worker stops and the files are complete before we return.
    let _ = commands.send(Command::Stop);
    drop(commands);
    let written = bridge
        .join()
        .map_err(|_| anyhow::anyhow!("the file writer panicked"))?;
    let trained = handle.join();
    // A hung-up terminal fails its input; that is the signal's doing, not an error.
    if signal == 0 {
        looped?;
    }
    // The worker always ends with a final state; without one it died.
    let (outcome, writer) = written?;
    let outcome = match (outcome, trained) {
        (_, Err(panic)) => anyhow::bail!(
            "the training thread failed: {}",
            panic_message(panic.as_ref())
        ),
        (None, Ok(())) => anyhow::bail!("the training thread ended unexpectedly"),
        (Some(Outcome::Finished), Ok(())) if signal != 0 => Outcome::Interrupted(signal),
        (Some(outcome), Ok(())) => outcome,
    };
    Ok(Ended {
        outcome,
        dir: writer.dir().to_path_buf(),
        checkpoint: writer.last_checkpoint().cloned(),
        detached: app.detach,
        paused: app.detach_paused,
    })
}

/// Writes the run's files as events arrive and passes each event on to the monitor, until the
/// run finishes; returns its outcome and the writer.
///
/// Unlike headless runs, a non-finite value only pauses the run here: the user may lower lambda
/// or the learning rates and resume. The outcome is the last state's.
fn write_and_forward(
    mut writer: RunWriter,
    events: std::sync::mpsc::Receiver<TrainEvent>,
    ui: tokio::sync::mpsc::UnboundedSender<Feed>,
) -> Result<(Option<Outcome>, RunWriter)> {
    let mut outcome = None;
    for event in events {
        let (event, ended) = writer.handle(event)?;
        let state = match &event {
            TrainEvent::State { state, .. } => Some(*state),
            _ => None,
        };
        match ended {
            // Stopped while paused by a NaN: that stays the outcome.
            Some(Outcome::Finished) if outcome.is_some() => {}
            Some(end) => outcome = Some(end),
            None if state == Some(RunState::Running) => outcome = None,
            None => {}
        }
        let _ = ui.send(Feed::Event(event));
        if state == Some(RunState::Finished) {
            break;
        }
    }
    writer.stop_serving();
    Ok((outcome, writer))
}

/// Shows `app` in the terminal, fed by `events`, until the user quits or a signal (SIGINT,
/// SIGTERM, SIGHUP) comes, which quits as q does. The terminal is restored whatever happens.
/// Returns how the loop ended and the signal caught (0: none).
pub fn watch(
    app: &mut App,
    events: UnboundedReceiver<Feed>,
    commands: &Sender<Command>,
) -> (Result<()>, i32) {
    let caught = Arc::new(AtomicI32::new(0));
    let (signal_tx, signal_rx) = tokio::sync::mpsc::unbounded_channel();
    let signals = SignalWatch::start({
        let caught = caught.clone();
        move |signal| {
            caught.store(signal, Ordering::SeqCst);
            let _ = signal_tx.send(signal);
        }
    })
    .context("cannot watch for signals");
    let looped = signals.and_then(|signals| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        // try_init: raw mode, alternate screen, and a panic hook that restores the terminal.
        let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
        let looped = runtime.block_on(event_loop(&mut terminal, app, events, signal_rx, commands));
        ratatui::restore();
        drop(signals);
        looped.context("terminal input failed")
    });
    (looped, caught.load(Ordering::SeqCst))
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    mut train_events: UnboundedReceiver<Feed>,
    mut signals: UnboundedReceiver<i32>,
    commands: &Sender<Command>,
) -> std::io::Result<()> {
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut training = true;
    while !app.quit {
        tokio::select! {
            _ = tick.tick() => {
                if app.dirty {
                    terminal.draw(|frame| ui::draw(frame, app))?;
                    app.dirty = false;
                }
            }
            event = input.next() => match event {
                Some(Ok(Event::Key(key))) => {
                    if let Some(command) = keys::action(key).and_then(|a| app.on_action(a)) {
                        let _ = commands.send(command);
                    }
                }
                Some(Ok(Event::Resize(..))) => app.dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            Some(_) = signals.recv() => {
                if let Some(command) = app.on_action(Action::Quit) {
                    let _ = commands.send(command);
                }
            }
            event = train_events.recv(), if training => match event {
                Some(feed) => app.on_feed(feed),
                None => {
                    // The stream ended: the run finished (stay to show it), or writing failed
                    // or the connection was lost (nothing more will come: quit). A read-only
                    // view has all it will get.
                    training = false;
                    if app.state != RunState::Finished && app.link != app::Link::ReadOnly {
                        app.quit = true;
                    }
                }
            },
        }
    }
    Ok(())
}
