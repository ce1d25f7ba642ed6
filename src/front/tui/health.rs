//! Critic health: per-layer gradient norms (bars) and the histogram of critic weights, so that
//! clipping (mass piled at +-c) and the penalty can be told apart.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::app::App;
use super::charts::format_value;
use crate::config::PenaltyMode;

const EIGHTHS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Per-layer bars: the loss gradient w.r.t. each layer's weight (linear scale) and, for the
/// critics that record it (the deep toy nets), w.r.t. each layer's input on a log scale: side by
/// side where the pane is wide enough (zoomed), else the input gradients alone.
pub fn draw_gradients(frame: &mut Frame, area: Rect, app: &App, block: Block) {
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(m) = &app.latest else { return };
    let weight_norms: Vec<(&str, f64)> = m
        .layers
        .iter()
        .map(|l| (l.name.as_str(), l.grad_norm))
        .collect();
    let input_norms: Vec<(&str, f64)> = m
        .layers
        .iter()
        .filter_map(|l| Some((l.name.as_str(), l.input_grad_norm?)))
        .collect();
    let ascii = app.view.ascii;
    if input_norms.is_empty() {
        let lines = bars(&weight_norms, Scale::Linear, inner.width as usize, ascii);
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    }
    let input_section = |width: u16| {
        let mut lines = vec![Line::styled(
            "|dL/d input| per layer, log scale",
            Style::new().fg(Color::DarkGray),
        )];
        lines.extend(bars(&input_norms, Scale::Log, width as usize, ascii));
        lines
    };
    if inner.width >= SIDE_BY_SIDE_WIDTH {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Fill(1)]).areas(inner);
        let mut lines = vec![Line::styled(
            "|dL/dW| per layer",
            Style::new().fg(Color::DarkGray),
        )];
        lines.extend(bars(
            &weight_norms,
            Scale::Linear,
            left.width as usize - 1,
            ascii,
        ));
        frame.render_widget(Paragraph::new(lines), left);
        frame.render_widget(Paragraph::new(input_section(right.width)), right);
    } else {
        frame.render_widget(Paragraph::new(input_section(inner.width)), inner);
    }
}

/// The inner width from which both kinds of gradient norms are drawn side by side.
const SIDE_BY_SIDE_WIDTH: u16 = 50;

#[derive(Clone, Copy)]
enum Scale {
    Linear,
    /// From the smallest value (one cell) to the largest (all cells), by orders of magnitude.
    Log,
}

/// One line per value: name, bar, value.
fn bars(values: &[(&str, f64)], scale: Scale, width: usize, ascii: bool) -> Vec<Line<'static>> {
    let value_width = 9;
    let bar_width = width.saturating_sub(4 + value_width);
    let full = if ascii { '#' } else { '█' };
    let positive = values.iter().map(|v| v.1).filter(|v| *v > 0.0);
    let max = positive.clone().fold(0.0, f64::max);
    let min = positive.fold(f64::INFINITY, f64::min);
    values
        .iter()
        .map(|&(name, v)| {
            let share = match scale {
                _ if !(v > 0.0 && max > 0.0) => 0.0,
                Scale::Linear => v / max,
                Scale::Log if max > min => {
                    let span = (max / min).log10();
                    (1.0 + (v / min).log10() / span * (bar_width as f64 - 1.0)) / bar_width as f64
                }
                Scale::Log => 1.0,
            };
            let n = ((share * bar_width as f64).round() as usize).min(bar_width);
            Line::from(vec![
                Span::raw(format!("{name:<3} ")),
                Span::styled(full.to_string().repeat(n), Style::new().fg(Color::Cyan)),
                Span::raw(format!(
                    "{:>pad$}",
                    format_value(v),
                    pad = bar_width - n + value_width
                )),
            ])
        })
        .collect()
}

pub fn draw_weights(frame: &mut Frame, area: Rect, app: &App, block: Block) {
    let Some(m) = &app.latest else {
        frame.render_widget(block, area);
        return;
    };
    let h = &m.weight_histogram;
    let mut title = format!("[{}, {}] log count", format_value(h.lo), format_value(h.hi));
    if app.hyper.penalty == PenaltyMode::Clip {
        title += &format!(" c={}", app.hyper.clip);
    }
    let block = block.title_bottom(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let (w, rows) = (inner.width as usize, inner.height as usize);
    if w == 0 || rows == 0 {
        return;
    }
    // Re-bin to the pane's width.
    let mut bins = vec![0u64; w];
    let n = h.counts.len();
    for (i, &c) in h.counts.iter().enumerate() {
        bins[i * w / n] += c;
    }
    // Log heights: most weights sit near 0, and the tails (or the mass clipping piles at +-c)
    // would not show on a linear scale.
    let height = |count: u64| (count as f64).ln_1p();
    let max = height(*bins.iter().max().unwrap_or(&1).max(&1));
    let buf = frame.buffer_mut();
    for (x, &count) in bins.iter().enumerate() {
        // Heights in eighths of a row; any non-empty bin shows at least a sliver.
        let mut eighths = (height(count) / max * (rows * 8) as f64).round() as usize;
        if count > 0 {
            eighths = eighths.max(1);
        }
        for row in 0..rows {
            let level = eighths.saturating_sub(row * 8).min(8);
            if level == 0 {
                break;
            }
            let ch = if app.view.ascii {
                '#'
            } else {
                EIGHTHS[level - 1]
            };
            if let Some(cell) =
                buf.cell_mut((inner.x + x as u16, inner.y + (rows - 1 - row) as u16))
            {
                cell.set_char(ch).set_fg(Color::Yellow);
            }
        }
    }
}
