//! The monitor while a folder of pictures is decoded, before training starts: a gauge of the
//! files done, their rate and the time left. q (or ctrl-c, or a signal) gives up.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use ratatui::crossterm::event::{Event, EventStream};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Gauge, Paragraph, Wrap};
use ratatui::{DefaultTerminal, Frame};

use super::FRAME;
use super::keys::{Action, action};
use crate::util::progress::Decoding;
use crate::util::signals::SignalWatch;
use crate::util::time::format_duration;

/// What the loading screen shows.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadingView {
    /// The folder.
    pub what: String,
    /// How far the decoding is; `None` while the files are listed or the cache is read.
    pub decoding: Option<Decoding>,
    pub elapsed_s: f64,
}

pub fn draw(frame: &mut Frame, view: &LoadingView) {
    let area = centred(frame.area(), 72, 7);
    let block = Block::bordered().title(" wgangp-tui: loading pictures ".bold());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [name, gauge, figures, _, help] = Layout::vertical([Constraint::Length(1); 5]).areas(inner);
    frame.render_widget(Paragraph::new(view.what.as_str()), name);
    let (ratio, label, figures_line) = match view.decoding {
        Some(d) if d.total > 0 => (
            d.done as f64 / d.total as f64,
            format!("{}/{} files decoded", d.done, d.total),
            d.line(view.elapsed_s),
        ),
        _ => (
            0.0,
            "looking for pictures".into(),
            format!(
                "listing files, or reading the pictures decoded before ({})",
                format_duration(view.elapsed_s)
            ),
        ),
    };
    frame.render_widget(
        Gauge::default()
            .gauge_style(Style::default().fg(Color::Green))
            .ratio(ratio.clamp(0.0, 1.0))
            .label(label),
        gauge,
    );
    frame.render_widget(
        Paragraph::new(figures_line).wrap(Wrap { trim: true }),
        figures,
    );
    frame.render_widget(Line::from("q: give up").dim(), help);
}

/// A `width` x `height` rectangle in the middle of `area` (smaller when `area` is).
fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let (w, h) = (width.min(area.width), height.min(area.height));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// How loading ended.
pub enum Loaded<T> {
    /// What the loading job returned.
    Done(T),
    /// Given up with q (0) or by this signal.
    GivenUp(i32),
}

/// How the loading job reports its progress, from any of its threads.
pub type Report<'a> = &'a (dyn Fn(&Decoding) + Sync);

/// Runs `job` on a thread of its own while the terminal shows how far it is. The terminal is
/// restored whatever happens.
pub fn load<T: Send + 'static>(
    what: String,
    job: impl FnOnce(Report) -> T + Send + 'static,
) -> Result<Loaded<T>> {
    let progress = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    {
        let progress = progress.clone();
        std::thread::Builder::new()
            .name("wgangp-loader".into())
            .spawn(move || {
                let report = |d: &Decoding| {
                    progress.1.store(d.total, Ordering::Relaxed);
                    // Files finish on several threads: the count only grows.
                    progress.0.fetch_max(d.done, Ordering::Relaxed);
                };
                let _ = done_tx.send(job(&report));
            })
            .context("cannot start the loading thread")?;
    }
    let (signal_tx, signal_rx) = tokio::sync::mpsc::unbounded_channel();
    let signals = SignalWatch::start(move |signal| {
        let _ = signal_tx.send(signal);
    })
    .context("cannot watch for signals")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let looped = runtime.block_on(show(&mut terminal, what, &progress, done_rx, signal_rx));
    ratatui::restore();
    drop(signals);
    looped
}

async fn show<T>(
    terminal: &mut DefaultTerminal,
    what: String,
    progress: &(AtomicUsize, AtomicUsize),
    mut done: tokio::sync::oneshot::Receiver<T>,
    mut signals: tokio::sync::mpsc::UnboundedReceiver<i32>,
) -> Result<Loaded<T>> {
    let started = Instant::now();
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let total = progress.1.load(Ordering::Relaxed);
                let view = LoadingView {
                    what: what.clone(),
                    decoding: (total > 0).then(|| Decoding {
                        done: progress.0.load(Ordering::Relaxed).min(total),
                        total,
                    }),
                    elapsed_s: started.elapsed().as_secs_f64(),
                };
                terminal.draw(|frame| draw(frame, &view))?;
            }
            loaded = &mut done => {
                return Ok(Loaded::Done(loaded.context("the loading thread failed")?));
            }
            Some(signal) = signals.recv() => return Ok(Loaded::GivenUp(signal)),
            event = input.next() => match event {
                Some(Ok(Event::Key(key))) if action(key) == Some(Action::Quit) => {
                    return Ok(Loaded::GivenUp(0));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).context("terminal input failed"),
                None => return Ok(Loaded::GivenUp(0)),
            },
        }
    }
}
