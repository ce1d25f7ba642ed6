//! The samples pane: generated images beside real ones (MNIST), or generated and real points
//! over the critic's value surface (toy data), drawn with half blocks.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Paragraph};

use super::app::App;
use super::halfblock::{self, Pixels};
use crate::event::{SampleSet, ToyPicture};

const GAP: [u8; 3] = [70, 70, 70];
const REAL: [u8; 3] = [0, 170, 0];
const FAKE: [u8; 3] = [255, 140, 0];

pub fn draw(frame: &mut Frame, area: Rect, app: &App, block: Block) {
    let inner = block.inner(area);
    // The averaged generator's samples, or with `g` the raw one's (where the run keeps both).
    let raw = app
        .view
        .raw_samples
        .then(|| app.samples.as_ref().and_then(SampleSet::raw_view))
        .flatten();
    let shown = raw.as_ref().or(app.samples.as_ref());
    let who = match &app.samples {
        Some(set) if set.averaged() && raw.is_some() => "raw G",
        Some(set) if set.averaged() => "averaged G",
        _ => "generated",
    };
    let title = match shown {
        Some(SampleSet::Images { step, .. }) => format!("step {step}: {who} | real"),
        Some(SampleSet::Points { step, .. }) => {
            format!("step {step}: {who} (orange), real (green), critic")
        }
        None => String::new(),
    };
    frame.render_widget(block.title_bottom(title), area);
    let Some(samples) = shown else {
        frame.render_widget(Paragraph::new("waiting for the first samples..."), inner);
        return;
    };
    let px = match samples {
        SampleSet::Images {
            side,
            channels,
            count,
            generated,
            real,
            ..
        } => image_grids(
            generated,
            real,
            (*count, *side, *channels),
            inner.width as usize,
            2 * inner.height as usize,
        ),
        SampleSet::Points { .. } => {
            let side = (inner.width as usize).min(2 * inner.height as usize);
            scatter(&samples.toy_picture(side).expect("a toy set"))
        }
    };
    halfblock::draw(
        frame.buffer_mut(),
        inner,
        &px,
        app.view.colors,
        app.view.ascii,
    );
}

/// Average-pools a square image of `channels` values a pixel (1: grey, 3: RGB) by `factor`
/// into RGB pixels.
fn pooled(image: &[f32], side: usize, channels: usize, factor: usize) -> Vec<[u8; 3]> {
    let s = side / factor;
    let mut sums = vec![[0f32; 3]; s * s];
    for y in 0..s * factor {
        for x in 0..s * factor {
            let at = (y * side + x) * channels;
            let sum = &mut sums[(y / factor) * s + x / factor];
            for (k, v) in sum.iter_mut().enumerate() {
                *v += image[at + k.min(channels - 1)];
            }
        }
    }
    let area = (factor * factor) as f32;
    sums.iter()
        .map(|sum| sum.map(|v| ((v / area).clamp(0.0, 1.0) * 255.0) as u8))
        .collect()
}

/// The whole factor images of `side` are shrunk by in a `width` x `height` picture: 1 when three
/// fit across, else the least that fits one generated and one real image (as small as 1 pixel).
fn shrink_factor(side: usize, width: usize, height: usize) -> usize {
    if width >= 3 * (side + 1) && height >= side {
        return 1;
    }
    (2..side)
        .find(|f| width >= 2 * (side / f + 1) && height >= side / f)
        .unwrap_or(side.max(1))
}

/// Generated images on the left, real ones on the right (a third of the width, at least one
/// image), as many as fit, at full size when three fit across and shrunk by a whole factor
/// otherwise. `(count, side, channels)` as in [`SampleSet::Images`].
pub fn image_grids(
    generated: &[f32],
    real: &[f32],
    (count, side, channels): (usize, usize, usize),
    width: usize,
    height: usize,
) -> Pixels {
    let mut px = Pixels::new(width, height, [0, 0, 0]);
    let factor = shrink_factor(side, width, height);
    let s = side / factor;
    // Real images beside the generated ones whenever two fit across (80x24 has room for one
    // of each).
    let real_width = if width >= 2 * (s + 1) {
        (width / 3).max(s + 1)
    } else {
        0
    };
    let gen_width = width - real_width;
    let len = side * side * channels;
    let mut place = |images: &[f32], x0: usize, w: usize| {
        let (cols, rows) = (w / (s + 1), height / (s + 1));
        for i in 0..(cols * rows).min(count) {
            // A set is checked where it enters (`SampleSet::validate`); a short one still only
            // ends the grid early.
            let Some(image) = images.get(i * len..(i + 1) * len) else {
                break;
            };
            let image = pooled(image, side, channels, factor);
            let (cx, cy) = (x0 + (i % cols) * (s + 1), (i / cols) * (s + 1));
            for y in 0..s {
                for x in 0..s {
                    px.set(cx + x, cy + y, image[y * s + x]);
                }
            }
        }
    };
    place(generated, 0, gen_width);
    if real_width > 0 {
        place(real, gen_width, real_width);
        for y in 0..height {
            px.set(gen_width.saturating_sub(1), y, GAP);
        }
    }
    px
}

/// Blue (low) - grey - red (high).
fn diverging(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let (lo, mid, hi) = ([40.0, 60.0, 150.0], [90.0, 90.0, 90.0], [150.0, 40.0, 40.0]);
    let (a, b, u) = if t < 0.5 {
        (lo, mid, t * 2.0)
    } else {
        (mid, hi, t * 2.0 - 1.0)
    };
    std::array::from_fn(|k| (a[k] + (b[k] - a[k]) * u) as u8)
}

/// Real and generated points over the critic's surface, a pixel each.
pub fn scatter(picture: &ToyPicture) -> Pixels {
    let side = picture.side;
    let mut px = Pixels::new(side, side, [0, 0, 0]);
    for (i, &t) in picture.surface.iter().enumerate() {
        px.set(i % side, i / side, diverging(t));
    }
    for (points, colour) in [(&picture.real, REAL), (&picture.generated, FAKE)] {
        for &(x, y) in points {
            px.set(x, y, colour);
        }
    }
    px
}
