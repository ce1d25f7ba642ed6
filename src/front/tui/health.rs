//! Critic health: per-layer gradient norms (bars) and the histogram of critic weights, so that
//! clipping (mass piled at +-c) and the penalty can be told apart.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::app::App;
use super::charts::format_value;
use crate::config::PenaltyMode;

const EIGHTHS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn draw_gradients(frame: &mut Frame, area: Rect, app: &App, block: Block) {
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(m) = &app.latest else { return };
    let max = m.layers.iter().map(|l| l.grad_norm).fold(0.0, f64::max);
    let value_width = 9;
    let bar_width = (inner.width as usize).saturating_sub(4 + value_width);
    let full = if app.view.ascii { '#' } else { '█' };
    let lines: Vec<Line> = m
        .layers
        .iter()
        .map(|l| {
            let n = if max > 0.0 {
                (l.grad_norm / max * bar_width as f64).round() as usize
            } else {
                0
            };
            Line::from(vec![
                Span::raw(format!("{:<3} ", l.name)),
                Span::styled(full.to_string().repeat(n), Style::new().fg(Color::Cyan)),
                Span::raw(format!(
                    "{:>pad$}",
                    format_value(l.grad_norm),
                    pad = bar_width - n + value_width
                )),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
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
