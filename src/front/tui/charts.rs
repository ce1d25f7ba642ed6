//! The two time-series panes (losses; penalty and gradient norm) as ratatui Charts.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::Borders;
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, LegendPosition};

use super::app::App;
use super::history::{Series, ema};

/// Smoothing weight of the EMA toggle (TensorBoard's slider, at a GAN-friendly setting).
pub const EMA_WEIGHT: f64 = 0.9;
/// Panes shorter than this show no legend.
const LEGEND_MIN_HEIGHT: u16 = 14;

/// Colours of the lines, shared with the panes' titles.
pub const CRITIC_LOSS: Color = Color::Cyan;
pub const GENERATOR_LOSS: Color = Color::Magenta;
pub const WASSERSTEIN: Color = Color::Yellow;
pub const HELD_OUT_WASSERSTEIN: Color = Color::LightBlue;
pub const WEIGHTED_PENALTY: Color = Color::Red;
pub const GRAD_NORM: Color = Color::Green;
pub const QUALITY: Color = Color::LightGreen;
pub const QUALITY_RAW: Color = Color::Gray;

/// One line of a chart.
struct Line {
    name: String,
    color: Color,
    points: Vec<(f64, f64)>,
}

fn series(app: &App, s: &Series, name: &str, color: Color) -> Line {
    let mut points = s.points(app.view.recent_window);
    if app.view.smoothing {
        points = ema(&points, EMA_WEIGHT);
    }
    Line {
        name: name.to_string(),
        color,
        points,
    }
}

pub fn format_value(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        format!("{v}")
    } else if v.abs() >= 1e4 || v.abs() < 1e-2 {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

/// The axes' ranges of `lines` (and a target level): ([x0, x1], [y0, y1]), y padded by 5%;
/// None without a point.
fn bounds(lines: &[Line], target: Option<f64>) -> Option<([f64; 2], [f64; 2])> {
    let span = |values: &mut dyn Iterator<Item = f64>| {
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        })
    };
    let (x0, x1) = span(&mut lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)));
    if !x0.is_finite() {
        return None;
    }
    let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let (mut y0, mut y1) = span(&mut ys.chain(target));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    if y1 <= y0 {
        (y0, y1) = (y0 - 0.5, y1 + 0.5);
    }
    let pad = (y1 - y0) * 0.05;
    Some(([x0, x1], [y0 - pad, y1 + pad]))
}

/// The view options in force, for a chart's bottom edge ("EMA log recent").
fn flags(app: &App, log: bool) -> Option<String> {
    let mut flags = Vec::new();
    if app.view.smoothing {
        flags.push("EMA");
    }
    if app.view.log_scale {
        flags.push(if log { "log" } else { "log n/a" });
    }
    if app.view.recent_window {
        flags.push("recent");
    }
    (!flags.is_empty()).then(|| flags.join(" "))
}

/// Draws `lines` (and the hyperparameter-change marks) in a chart with braille markers.
fn chart(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    block: Block,
    mut lines: Vec<Line>,
    target: Option<f64>,
    show_flags: bool,
) {
    let all_positive =
        lines.iter().flat_map(|l| &l.points).all(|p| p.1 > 0.0) && target.is_none_or(|t| t > 0.0);
    let log = app.view.log_scale && all_positive;
    let tf = |y: f64| if log { y.log10() } else { y };
    for l in &mut lines {
        l.points.retain(|p| p.1.is_finite());
        l.points.iter_mut().for_each(|p| p.1 = tf(p.1));
    }
    let Some(([x0, x1], [y0, y1])) = bounds(&lines, target.map(tf)) else {
        frame.render_widget(block, area);
        return;
    };

    let mut extra: Vec<(Color, Vec<(f64, f64)>)> = Vec::new();
    if let Some(t) = target {
        extra.push((Color::Gray, vec![(x0, tf(t)), (x1, tf(t))]));
    }
    for &m in &app.marks {
        let m = m as f64;
        if (x0..=x1).contains(&m) {
            extra.push((Color::DarkGray, vec![(m, y0), (m, y1)]));
        }
    }
    let marker = if app.view.ascii {
        Marker::Dot
    } else {
        Marker::Braille
    };
    let mut datasets: Vec<Dataset> = extra
        .iter()
        .map(|(c, pts)| {
            Dataset::default()
                .marker(marker)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*c))
                .data(pts)
        })
        .collect();
    datasets.extend(lines.iter().map(|l| {
        let dataset = Dataset::default()
            .marker(marker)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(l.color))
            .data(&l.points);
        if l.name.is_empty() {
            dataset
        } else {
            dataset.name(l.name.clone())
        }
    }));
    let label = |v: f64| Span::raw(format_value(if log { 10f64.powf(v) } else { v }));
    let block = match flags(app, log) {
        Some(flags) if show_flags => block.title_bottom(Span::raw(flags).dim()),
        _ => block,
    };
    // Small panes have no room for a legend over the data: their titles name the lines in the
    // lines' colours instead.
    let legend = (area.height >= LEGEND_MIN_HEIGHT).then_some(LegendPosition::TopRight);
    let chart = Chart::new(datasets)
        .block(block)
        .legend_position(legend)
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)))
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels([Span::raw(format!("{x0:.0}")), Span::raw(format!("{x1:.0}"))]),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels([label(y0), label(y1)]),
        );
    frame.render_widget(chart, area);
}

/// Critic loss, generator loss and the Wasserstein estimate over generator steps, with the
/// estimate on held-out data where the run evaluates (a critic that memorises its training
/// data shows as a gap between the two estimates).
pub fn draw_losses(frame: &mut Frame, area: Rect, app: &App, block: Block) {
    let c = &app.curves;
    let mut lines = vec![
        series(app, &c.critic_loss, "D loss", CRITIC_LOSS),
        series(app, &c.generator_loss, "G loss", GENERATOR_LOSS),
        series(app, &c.wasserstein, "W estimate", WASSERSTEIN),
    ];
    if c.held_out_wasserstein.last().is_some() {
        let mut held_out = series(
            app,
            &c.held_out_wasserstein,
            "W held-out",
            HELD_OUT_WASSERSTEIN,
        );
        // Its points are sparse: only those within the steps the other lines show.
        let first = lines[2].points.first().map_or(f64::INFINITY, |p| p.0);
        held_out.points.retain(|p| p.0 >= first);
        lines.push(held_out);
    }
    chart(frame, area, app, block, lines, None, true);
}

/// The evaluations' quality figure (`EvalRecord::headline`) of the averaged and the raw
/// generator, over the steps; a line saying when the first comes before there is one.
pub fn draw_quality(frame: &mut Frame, area: Rect, app: &App, block: Block) {
    let c = &app.curves;
    if c.quality.last().is_none() {
        let text = match (app.config.eval_every, &app.evaluation) {
            (0, _) => "No evaluations: the run was started with --eval-every 0.".to_string(),
            (_, Some(_)) => "Nothing to score on this data.".to_string(),
            (every, None) => format!("The first evaluation comes at step {every}."),
        };
        let text = ratatui::widgets::Paragraph::new(text)
            .wrap(ratatui::widgets::Wrap { trim: true })
            .dim();
        frame.render_widget(text.block(block), area);
        return;
    }
    let averaged = if c.quality_raw.last().is_some() {
        "averaged G"
    } else {
        "G"
    };
    let mut lines = vec![series(app, &c.quality, averaged, QUALITY)];
    if c.quality_raw.last().is_some() {
        lines.insert(0, series(app, &c.quality_raw, "raw G", QUALITY_RAW));
    }
    chart(frame, area, app, block, lines, None, true);
}

/// Panes at least this tall draw the penalty and the gradient norm as two charts, one above
/// the other; smaller ones share one chart.
const STACK_MIN_HEIGHT: u16 = 16;

/// The penalty (P and lambda*P) and the critic's input-gradient norm, mean +- std, against 1.
pub fn draw_penalty(frame: &mut Frame, area: Rect, app: &App, block: Block) {
    let c = &app.curves;
    let mean = series(app, &c.grad_norm_mean, "|grad D| mean", GRAD_NORM);
    let std = series(app, &c.grad_norm_std, "", GRAD_NORM);
    let band = |sign: f64| -> Vec<(f64, f64)> {
        mean.points
            .iter()
            .zip(&std.points)
            .map(|(m, s)| (m.0, m.1 + sign * s.1))
            .collect()
    };
    let (upper, lower) = (band(1.0), band(-1.0));
    let penalty = vec![
        series(app, &c.weighted_penalty, "lambda*P", WEIGHTED_PENALTY),
        series(app, &c.penalty, "P", Color::LightRed),
    ];
    let norm = vec![
        Line {
            name: "mean +- std".into(),
            color: Color::DarkGray,
            points: upper,
        },
        Line {
            name: String::new(),
            color: Color::DarkGray,
            points: lower,
        },
        mean,
    ];
    if area.height < STACK_MIN_HEIGHT {
        let lines = penalty.into_iter().chain(norm).collect();
        chart(frame, area, app, block, lines, Some(1.0), true);
        return;
    }
    // Tall enough: lambda*P can be far from 1, so the norm gets a scale of its own.
    let [top, bottom] =
        Layout::vertical([Constraint::Ratio(1, 2), Constraint::Fill(1)]).areas(area);
    let top_block = block.borders(Borders::TOP | Borders::LEFT | Borders::RIGHT);
    chart(frame, top, app, top_block, penalty, None, false);
    let bottom_block = Block::bordered()
        .borders(Borders::LEFT | Borders::RIGHT | Borders::BOTTOM)
        .title_top(Span::raw("||grad D(x_hat)|| vs 1").fg(GRAD_NORM));
    chart(frame, bottom, app, bottom_block, norm, Some(1.0), true);
}
