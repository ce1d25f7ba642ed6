//! The three PNGs of `figures`, drawn with plotters from a [`Figures`] (nothing else: a test
//! can draw from a hand-made one). Text uses the DejaVu Sans font embedded from `assets/fonts`.

use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Figures, ValueSurface, WeightFigures};

const FONT: &str = "sans-serif";

/// Registers the embedded font under [`FONT`], once per process.
fn register_font() -> Result<()> {
    static REGISTER: Once = Once::new();
    let mut result = Ok(());
    REGISTER.call_once(|| {
        result = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            include_bytes!("../../assets/fonts/DejaVuSans.ttf"),
        )
        .map_err(|_| anyhow!("the embedded font does not load"));
    });
    result
}

/// Draws into a white `width` x `height` RGB picture and encodes it as PNG.
fn png(
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<()>,
) -> Result<Vec<u8>> {
    register_font()?;
    let mut rgb = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    let picture = image::RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| anyhow!("a picture buffer of the wrong size"))?;
    let mut bytes = Vec::new();
    picture.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    Ok(bytes)
}

/// Viridis, from dark blue (0) through green to yellow (1), by linear steps between 5 anchors.
pub fn viridis(t: f64) -> RGBColor {
    const ANCHORS: [(u8, u8, u8); 5] = [
        (68, 1, 84),
        (59, 82, 139),
        (33, 145, 140),
        (94, 201, 98),
        (253, 231, 37),
    ];
    let t = t.clamp(0.0, 1.0) * (ANCHORS.len() - 1) as f64;
    let i = (t.floor() as usize).min(ANCHORS.len() - 2);
    let f = t - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The 2x3 panel of the article's Figure 2: clipping on the top row, the penalty below.
pub fn value_surfaces(figures: &Figures) -> Result<Vec<u8>> {
    png((1500, 1040), |root| {
        let (title, body) = root.split_vertically(40);
        title.titled(
            "Critic value surfaces, generator fixed at real + N(0, I) (colour: the critic's \
             value, each panel scaled to its own range)",
            (FONT, 18),
        )?;
        for (area, surface) in body
            .split_evenly((2, 3))
            .iter()
            .zip(&figures.value_surfaces)
        {
            surface_panel(area, surface)?;
        }
        Ok(())
    })
}

fn surface_panel(area: &DrawingArea<BitMapBackend, Shift>, s: &ValueSurface) -> Result<()> {
    let (lo, hi) = s
        .values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let method = match s.clip {
        Some(c) => format!("weight clipping c={c}"),
        None => format!("gradient penalty λ={}", s.lambda.unwrap_or(0.0)),
    };
    let caption = format!("{}, {method}  [{lo:.3}, {hi:.3}]", s.data);
    let e = s.extent as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 16))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(36)
        .build_cartesian_2d(-e..e, -e..e)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .label_style((FONT, 12))
        .draw()?;
    let g = s.grid;
    let cell = 2.0 * e / (g - 1) as f64;
    let range = (hi - lo).max(f32::MIN_POSITIVE) as f64;
    chart.draw_series(s.values.iter().enumerate().map(|(i, &v)| {
        let (row, col) = (i / g, i % g);
        let (x, y) = (-e + col as f64 * cell, e - row as f64 * cell);
        let half = cell / 2.0;
        let colour = viridis((v - lo) as f64 / range);
        Rectangle::new(
            [(x - half, y - half), (x + half, y + half)],
            colour.filled(),
        )
    }))?;
    chart.draw_series(s.real.iter().map(|p| {
        Circle::new(
            (p[0] as f64, p[1] as f64),
            2,
            RGBColor(255, 120, 0).filled(),
        )
    }))?;
    Ok(())
}

/// The article's Figure 1 left: gradient norm at each layer's input, log scale.
pub fn gradient_norms(figures: &Figures) -> Result<Vec<u8>> {
    let all = figures.gradient_norms.iter().flat_map(|g| g.norms.iter());
    let positive = all.copied().filter(|&v| v > 0.0 && v.is_finite());
    let (lo, hi) = positive.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo <= hi {
        (lo / 3.0, hi * 3.0)
    } else {
        (1e-3, 1.0)
    };
    let layers = figures
        .gradient_norms
        .iter()
        .map(|g| g.norms.len())
        .max()
        .unwrap_or(1);
    png((1000, 650), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Gradient norm of the critic loss at each layer's input (12-layer critics, Swiss Roll)",
                (FONT, 18),
            )
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0.5f64..layers as f64 + 0.5, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("critic layer (1: the data's side)")
            .y_desc("gradient norm (log scale)")
            .x_labels(layers)
            // One label per decade or so, however many decades the lines span.
            .y_labels(((hi / lo).log10().ceil() as usize + 1).max(2))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0e}"))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 15))
            .draw()?;
        let colours = [RED, BLUE, GREEN, BLACK, MAGENTA, CYAN];
        for (g, &colour) in figures.gradient_norms.iter().zip(colours.iter().cycle()) {
            let points: Vec<(f64, f64)> = g
                .norms
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > 0.0)
                .map(|(i, &v)| ((i + 1) as f64, v))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                .label(g.setting.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, colour.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 17))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        Ok(())
    })
}

/// The article's Figure 1 right: histograms of the critic's weights, one panel per setting
/// shown (clipping at the histogram's c, and the penalty).
pub fn weights(figures: &Figures) -> Result<Vec<u8>> {
    let shown: Vec<&WeightFigures> = figures
        .weights
        .iter()
        .filter(|w| w.setting == "gp" || (w.bound - super::SURFACE_CLIP).abs() < 1e-12)
        .collect();
    png((1300, 520), |root| {
        let (title, body) = root.split_vertically(36);
        title.titled("Critic weights (12-layer critics, Swiss Roll)", (FONT, 18))?;
        let panels = body.split_evenly((1, shown.len().max(1)));
        for (area, w) in panels.iter().zip(shown) {
            weight_panel(area, w)?;
        }
        Ok(())
    })
}

fn weight_panel(area: &DrawingArea<BitMapBackend, Shift>, w: &WeightFigures) -> Result<()> {
    let max = w.counts.iter().copied().max().unwrap_or(1).max(1);
    let caption = format!(
        "{}: {:.1}% of {} weights within 1% of +-{}",
        w.setting,
        100.0 * w.share_near_bound,
        w.count,
        w.bound
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 15))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(w.lo..w.hi, 0u64..max + max / 20 + 1)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("weight")
        .y_desc("count")
        .x_labels(7)
        .x_label_formatter(&|x| format!("{x:.3}"))
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .draw()?;
    let bin = (w.hi - w.lo) / w.counts.len() as f64;
    chart.draw_series(w.counts.iter().enumerate().map(|(i, &c)| {
        let x0 = w.lo + i as f64 * bin;
        Rectangle::new([(x0, 0), (x0 + bin, c)], RGBColor(40, 90, 170).filled())
    }))?;
    Ok(())
}
