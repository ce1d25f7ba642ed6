//! Layout of the monitor: five panes (six where the run evaluates) and a status line, one pane zoomed on request, the help
//! overlay, and a clear message when the terminal is too small.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::app::{App, Link};
use super::charts::{self, format_value};
use super::view::Pane;
use super::{health, keys, samples};
use crate::event::{AlertKind, RunState};
use crate::util::time::{eta, format_duration};

/// Below this the panes cannot show anything useful (80x23 fits: an 80x24 session with tmux's
/// status line).
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let quit = match app.link {
            Link::InProcess => "press q to stop and quit, or d to detach",
            Link::Attached { .. } | Link::ReadOnly => "press q to quit",
        };
        let text = format!(
            "Terminal too small: {}x{}. The monitor needs at least {MIN_WIDTH}x{MIN_HEIGHT}. \
             Training goes on; enlarge the window, or {quit}.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let status_lines = status_lines(app, area.width);
    let [main, status] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(status_lines.len() as u16),
    ])
    .areas(area);
    match app.view.zoom {
        Some(pane) => draw_pane(frame, main, app, pane),
        None => {
            let [top, bottom] =
                Layout::vertical([Constraint::Percentage(58), Constraint::Fill(1)]).areas(main);
            let [curves, samples] =
                Layout::horizontal([Constraint::Percentage(60), Constraint::Fill(1)]).areas(top);
            // The quality pane takes a share of the bottom row where the run evaluates.
            let row: &[(Pane, Constraint)] = if app.config.eval_every > 0 {
                &[
                    (Pane::Penalty, Constraint::Percentage(28)),
                    (Pane::Gradients, Constraint::Percentage(25)),
                    (Pane::Weights, Constraint::Percentage(22)),
                    (Pane::Quality, Constraint::Fill(1)),
                ]
            } else {
                &[
                    (Pane::Penalty, Constraint::Percentage(40)),
                    (Pane::Gradients, Constraint::Percentage(30)),
                    (Pane::Weights, Constraint::Fill(1)),
                ]
            };
            let rects = Layout::horizontal(row.iter().map(|r| r.1)).split(bottom);
            let mut panes = vec![(Pane::Curves, curves), (Pane::Samples, samples)];
            panes.extend(row.iter().map(|r| r.0).zip(rects.iter().copied()));
            for (pane, rect) in panes {
                draw_pane(frame, rect, app, pane);
            }
        }
    }
    frame.render_widget(Paragraph::new(status_lines), status);
    if app.view.help {
        draw_help(frame, main);
    }
}

fn draw_pane(frame: &mut Frame, area: Rect, app: &App, pane: Pane) {
    // The latest values, each in its line's colour, so that small panes need no legend.
    let value = |name: &str, v: f64, color: Color| {
        Span::styled(
            format!(" {name} {}", format_value(v)),
            Style::new().fg(color),
        )
    };
    let values = match (pane, &app.latest) {
        (Pane::Curves, Some(m)) => vec![
            value("D", m.critic_loss, charts::CRITIC_LOSS),
            value("G", m.generator_loss, charts::GENERATOR_LOSS),
            value("W", m.wasserstein, charts::WASSERSTEIN),
        ],
        (Pane::Penalty, Some(m)) => vec![
            value("lambda*P", m.weighted_penalty, charts::WEIGHTED_PENALTY),
            value("|grad|", m.grad_norm_mean, charts::GRAD_NORM),
            Span::styled(
                format!("+-{}", format_value(m.grad_norm_std)),
                Style::new().fg(charts::GRAD_NORM),
            ),
        ],
        (Pane::Quality, _) => match app.evaluation.as_ref().and_then(|e| e.headline()) {
            Some(h) => vec![value(h.name, h.averaged, charts::QUALITY)],
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    let mut title = vec![
        Span::styled(
            format!("{} ", pane.number()),
            Style::new().fg(Color::DarkGray),
        ),
        Span::raw(pane.title()).bold(),
    ];
    title.extend(values);
    let block = Block::bordered().title(Line::from(title));
    match pane {
        Pane::Curves => charts::draw_losses(frame, area, app, block),
        Pane::Penalty => charts::draw_penalty(frame, area, app, block),
        Pane::Samples => samples::draw(frame, area, app, block),
        Pane::Gradients => health::draw_gradients(frame, area, app, block),
        Pane::Weights => health::draw_weights(frame, area, app, block),
        Pane::Quality => charts::draw_quality(frame, area, app, block),
    }
}

/// The state word and its colour.
pub fn state_label(app: &App) -> (&'static str, Color) {
    if app.stopping && app.state != RunState::Finished {
        return (
            if app.detach { "DETACHING" } else { "STOPPING" },
            Color::Yellow,
        );
    }
    let cut_short = app.config.steps.is_some_and(|n| app.step < n);
    if app.link == Link::ReadOnly && (app.state != RunState::Finished || cut_short) {
        return ("STOPPED", Color::Gray);
    }
    match app.state {
        RunState::Running => ("RUNNING", Color::Green),
        RunState::Paused => ("PAUSED", Color::Yellow),
        RunState::NonFinite => ("PAUSED: NaN", Color::Red),
        RunState::Finished => ("FINISHED", Color::Cyan),
    }
}

/// Terminals at least this wide get the status on one line; narrower ones on two.
const ONE_LINE_STATUS: u16 = 150;

/// The status line(s): progress, then the hyperparameters and the output folder, and under
/// them why the run paused on a non-finite value, when it did.
fn status_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let (label, color) = state_label(app);
    let h = &app.hyper;
    let steps = app
        .config
        .steps
        .map(|n| format!("/{n}"))
        .unwrap_or_default();
    let eta = eta(app.config.steps, app.step, app.iters_per_s)
        .filter(|_| app.state == RunState::Running)
        .map(|t| format!(" ETA {t}"))
        .unwrap_or_default();
    let checkpoint = app
        .last_checkpoint
        .map(|s| format!("ckpt {s} "))
        .unwrap_or_default();
    let link = match app.link {
        Link::InProcess => String::new(),
        Link::Attached { pid } => format!("attached to pid {pid} | "),
        Link::ReadOnly => "read-only | ".into(),
    };
    let progress = format!(
        " {link}step {}{steps} {:.2}it/s{eta} {} {checkpoint}",
        app.step,
        app.iters_per_s,
        format_duration(app.wall_s)
    );
    // A critic trained alone against real + noise (`--fixed-generator`).
    let fixed = if app.config.fixed_generator.is_some() {
        " critic-only"
    } else {
        ""
    };
    let settings = format!(
        " {} lambda {} lr {}/{} ncrit {} batch {}{fixed} on {} | {} ",
        h.penalty,
        format_value(h.lambda),
        format_value(h.lr_generator),
        format_value(h.lr_critic),
        h.n_critic,
        app.config.batch,
        // "cuda:0", not the GPU's whole name: the line has to fit 80 columns.
        app.config.device.split(' ').next().unwrap_or_default(),
        app.config.out.display(),
    );
    let label = Span::styled(
        format!(" {label} "),
        Style::new().fg(Color::Black).bg(color).bold(),
    );
    let help = Span::styled("?:help", Style::new().fg(Color::DarkGray));
    let mut lines = if width >= ONE_LINE_STATUS {
        vec![Line::from(vec![
            label,
            Span::raw(progress),
            Span::raw("|"),
            Span::raw(settings),
            help,
        ])]
    } else {
        vec![
            Line::from(vec![label, Span::raw(progress), help]),
            Line::from(Span::raw(settings)),
        ]
    };
    if app.state == RunState::NonFinite {
        let why = app.reason.as_deref().unwrap_or("a value is not finite");
        let red = Style::new().fg(Color::Red);
        lines.push(Line::from(Span::styled(format!(" {why}."), red)));
        lines.push(Line::from(Span::styled(
            " Lower lambda (-) or the learning rates ([), then space to resume; q quits.",
            red,
        )));
    }
    for message in [&app.refused, &app.problem].into_iter().flatten() {
        let text = format!(" {message}");
        lines.push(Line::from(Span::styled(text, Style::new().fg(Color::Red))));
    }
    // The watchdog's newest alert, whole (a non-finite value is said above already).
    if let Some(alert) = app
        .alert
        .as_ref()
        .filter(|a| a.kind != AlertKind::NonFinite)
    {
        let text = format!("! step {}: {}", alert.step, alert.message);
        let style = Style::new().fg(Color::Yellow);
        let width = (width as usize).saturating_sub(2).max(20);
        let wrapped = wrap(&text, width);
        let shown = wrapped.len().min(ALERT_LINES);
        for line in wrapped.into_iter().take(shown) {
            lines.push(Line::from(Span::styled(format!(" {line}"), style)));
        }
    }
    lines
}

/// The most lines an alert takes on the status line (its sentence is cut after them).
const ALERT_LINES: usize = 3;

/// `text` broken into lines of at most `width` characters at spaces (a longer word is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > width {
            let rest: String = line.chars().skip(width).collect();
            lines.push(line.chars().take(width).collect());
            line = rest;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let width = 52.min(area.width);
    let help = keys::help();
    let height = (help.len() as u16 + 2).min(area.height);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line> = help
        .into_iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>10}  "), Style::new().bold()),
                Span::raw(what),
            ])
        })
        .collect();
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title("Keys (esc closes)")),
        rect,
    );
}
