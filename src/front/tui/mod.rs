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

use std::io::{IsTerminal, Write};
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{Event, EventStream};
use signal_hook::consts::SIGHUP;
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

/// What the monitor does when its terminal goes away (SIGHUP, or its input ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnHangup {
    /// A run trained in this process goes on in a background process, as after `d`.
    Detach,
    /// The run stops with a checkpoint, as after `q`.
    Stop,
}

/// The monitor as a front end.
pub struct Monitor {
    pub app: App,
    on_hangup: OnHangup,
}

impl Monitor {
    pub fn new(config: TrainConfig, ascii: bool, on_hangup: OnHangup) -> Self {
        Self {
            app: App::new(config, ColorMode::from_env(), ascii),
            on_hangup,
        }
    }
}

impl FrontEnd for Monitor {
    /// Shows the run in the terminal until the person quits; SIGINT and SIGTERM quit as q does,
    /// a hang-up as [`OnHangup`] says. The terminal is restored whatever happens, unless it is
    /// gone: then nothing more is written to it.
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
        let mut watch = Watch {
            app,
            commands,
            on_hangup: self.on_hangup,
            hung_up: false,
        };
        let looped = runtime.block_on(event_loop(&mut terminal, &mut watch, feed, signals));
        if watch.hung_up {
            // The terminal may be gone: restored if it is there, and nothing said if not
            // (ratatui's own restore and its terminal's drop print their failures).
            let _ = terminal.show_cursor();
            let _ = ratatui::try_restore();
            std::mem::forget(terminal);
        } else {
            drop(terminal);
            ratatui::restore();
            looped.context("terminal input failed")?;
        }
        Ok(Left {
            detach: watch.app.detach,
            paused: watch.app.detach_paused,
            hung_up: watch.hung_up,
        })
    }
}

/// The monitor's state in its event loop.
struct Watch<'a> {
    app: &'a mut App,
    commands: &'a Sender<Command>,
    on_hangup: OnHangup,
    /// The terminal went away: nothing is drawn or read any more.
    hung_up: bool,
}

impl Watch<'_> {
    fn act(&mut self, action: Action) {
        if let Some(command) = self.app.on_action(action) {
            let _ = self.commands.send(command);
        }
    }

    /// The terminal went away: a run trained here detaches (or stops, as asked); a viewer
    /// quits.
    fn hang_up(&mut self) {
        if self.hung_up {
            return;
        }
        self.hung_up = true;
        let detach = self.on_hangup == OnHangup::Detach && self.app.link == Link::InProcess;
        self.act(if detach { Action::Detach } else { Action::Quit });
    }
}

/// Tells a person looking elsewhere of the newest alert: the terminal's bell, and the window
/// title (tmux shows both on the window's tab).
fn ring(terminal: &mut DefaultTerminal, app: &App) -> std::io::Result<()> {
    let Some(alert) = &app.alert else {
        return Ok(());
    };
    let title = format!(
        "wgangp-tui: alert at step {} ({})",
        alert.step,
        alert.kind.name()
    );
    let backend = terminal.backend_mut();
    ratatui::crossterm::execute!(backend, ratatui::crossterm::terminal::SetTitle(title))?;
    backend.write_all(b"\x07")?;
    backend.flush()
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    watch: &mut Watch<'_>,
    mut train_events: UnboundedReceiver<Feed>,
    mut signals: UnboundedReceiver<i32>,
) -> std::io::Result<()> {
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut training = true;
    while !watch.app.quit {
        tokio::select! {
            _ = tick.tick(), if !watch.hung_up => {
                if watch.app.dirty {
                    terminal.draw(|frame| ui::draw(frame, watch.app))?;
                    watch.app.dirty = false;
                }
                if std::mem::take(&mut watch.app.ring) {
                    ring(terminal, watch.app)?;
                }
            }
            event = input.next(), if !watch.hung_up => match event {
                Some(Ok(Event::Key(key))) => {
                    if let Some(action) = keys::action(key) {
                        watch.act(action);
                    }
                }
                Some(Ok(Event::Resize(..))) => watch.app.dirty = true,
                Some(Ok(_)) => {}
                // The terminal's input ended or failed: it went away.
                Some(Err(_)) | None => watch.hang_up(),
            },
            Some(signal) = signals.recv() => {
                if signal == SIGHUP {
                    watch.hang_up();
                } else {
                    watch.act(Action::Quit);
                }
            }
            event = train_events.recv(), if training => match event {
                Some(feed) => watch.app.on_feed(feed),
                None => {
                    // The stream ended: the run finished (stay to show it), or writing failed
                    // or the connection was lost (nothing more will come: quit). A read-only
                    // view has all it will get.
                    training = false;
                    let app = &mut watch.app;
                    if watch.hung_up
                        || (app.state != RunState::Finished && app.link != Link::ReadOnly)
                    {
                        app.quit = true;
                    }
                }
            },
        }
    }
    Ok(())
}
