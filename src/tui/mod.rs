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
pub mod samples;
pub mod ui;

use std::io::IsTerminal;
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{Event, EventStream};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::TrainConfig;
use crate::data::Dataset;
use crate::event::{Command, RunState, TrainEvent};
use crate::headless::{Outcome, RunWriter};
use crate::train::Worker;
pub use app::{App, ColorMode};

/// Frame interval: at most ~15 frames a second.
pub const FRAME: Duration = Duration::from_millis(66);

/// Whether the monitor can run here (stdout and stdin are terminals).
pub fn available() -> bool {
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// Trains with the monitor until the user quits.
pub fn run(config: TrainConfig, data: Dataset, ascii: bool) -> Result<Outcome> {
    let mut writer = RunWriter::create(&config)?;
    let (commands, events, handle) = Worker::spawn(config.clone(), data)
        .context("cannot start the training thread")?
        .split();
    let (ui_tx, ui_rx) = tokio::sync::mpsc::unbounded_channel();
    let bridge = std::thread::Builder::new()
        .name("wgangp-writer".into())
        .spawn(move || -> Result<Option<Outcome>> {
            // Unlike headless runs, a non-finite value only pauses the run here: the user may
            // lower lambda or the learning rates and resume. The outcome is the last state's.
            let mut outcome = None;
            for event in events {
                match writer.handle(&event)? {
                    // Stopped while paused by a NaN: that stays the outcome.
                    Some(Outcome::Finished) if outcome.is_some() => {}
                    Some(end) => outcome = Some(end),
                    None if matches!(
                        event,
                        TrainEvent::State {
                            state: RunState::Running,
                            ..
                        }
                    ) =>
                    {
                        outcome = None
                    }
                    None => {}
                }
                let finished = matches!(
                    event,
                    TrainEvent::State {
                        state: RunState::Finished,
                        ..
                    }
                );
                let _ = ui_tx.send(event);
                if finished {
                    break;
                }
            }
            Ok(outcome)
        })?;

    let env = |k: &str| std::env::var(k).ok();
    let colors = ColorMode::detect(
        env("NO_COLOR").is_some_and(|v| !v.is_empty()),
        env("COLORTERM").as_deref(),
        env("TERM").as_deref(),
    );
    let mut app = App::new(config, colors, ascii);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    // try_init: raw mode, alternate screen, and a panic hook that restores the terminal.
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let looped = runtime.block_on(event_loop(&mut terminal, &mut app, ui_rx, &commands));
    ratatui::restore();

    // Whatever ended the loop, the worker stops and the files are complete before we return.
    let _ = commands.send(Command::Stop);
    drop(commands);
    let written = bridge
        .join()
        .map_err(|_| anyhow::anyhow!("the file writer panicked"))?;
    let _ = handle.join();
    looped.context("terminal input failed")?;
    match written? {
        Some(outcome) => Ok(outcome),
        None => Ok(Outcome::Finished),
    }
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    mut train_events: UnboundedReceiver<TrainEvent>,
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
            event = train_events.recv(), if training => match event {
                Some(event) => app.on_event(event),
                None => {
                    // The writer stopped: the run ended (stay to show it) or writing failed.
                    training = false;
                    if app.state != RunState::Finished {
                        app.quit = true;
                    }
                }
            },
        }
    }
    Ok(())
}
