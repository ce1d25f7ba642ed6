//! The live terminal monitor: ratatui + crossterm on a tokio event loop.
//!
//! Four sources are selected together: terminal input, the session's feed (a run in this
//! process feeds each event after its files have it, whatever the UI does), signals and a
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
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{Event, EventStream};
use tokio::sync::mpsc::UnboundedReceiver;

use super::FrontEnd;
use crate::config::TrainConfig;
use crate::event::{Command, RunState};
use crate::run::session::{Feed, Left, Link};
pub use app::App;
use keys::Action;
pub use view::ColorMode;

/// Frame interval: at most ~15 frames a second.
pub const FRAME: Duration = Duration::from_millis(66);

/// Whether the monitor can run here (stdout and stdin are terminals).
pub fn available() -> bool {
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// The monitor as a front end.
pub struct Monitor {
    pub app: App,
}

impl Monitor {
    pub fn new(config: TrainConfig, ascii: bool) -> Self {
        Self {
            app: App::new(config, ColorMode::from_env(), ascii),
        }
    }
}

impl FrontEnd for Monitor {
    /// Shows the run in the terminal until the person quits; a signal quits as q does. The
    /// terminal is restored whatever happens.
    fn show(
        &mut self,
        link: Link,
        feed: UnboundedReceiver<Feed>,
        signals: UnboundedReceiver<i32>,
        commands: &Sender<Command>,
    ) -> Result<Left> {
        let app = &mut self.app;
        app.link = link;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        // try_init: raw mode, alternate screen, and a panic hook that restores the terminal.
        let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
        let looped = runtime.block_on(event_loop(&mut terminal, app, feed, signals, commands));
        ratatui::restore();
        looped.context("terminal input failed")?;
        Ok(Left {
            detach: app.detach,
            paused: app.detach_paused,
        })
    }
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
                    if app.state != RunState::Finished && app.link != Link::ReadOnly {
                        app.quit = true;
                    }
                }
            },
        }
    }
    Ok(())
}
