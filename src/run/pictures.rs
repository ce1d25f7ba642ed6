//! Sample pictures as PNG: an image grid (grey or colour), a scatter over the critic's value
//! surface for the toy sets. Pure functions from a [`SampleSet`] to pixels.

use image::{DynamicImage, GrayImage, Rgb, RgbImage};

use crate::event::{SampleSet, ToyPicture};

/// Gap between grid cells, in pixels.
pub const GRID_GAP: u32 = 2;
/// Side of the toy scatter picture.
pub const SCATTER_SIDE: u32 = 512;

/// The longest side of a picture this program writes (a grid of ~75,000 MNIST digits).
pub const MAX_PICTURE_SIDE: u64 = 8192;

/// Columns of a near-square grid of `count` images.
pub fn grid_columns(count: usize) -> usize {
    ((count as f64).sqrt().ceil() as usize).max(1)
}

/// The (width, height) in pixels of a grid of `count` images of side `side` in `columns`.
pub fn grid_size(count: usize, side: usize, columns: usize) -> (u64, u64) {
    let rows = count.div_ceil(columns) as u64;
    let (cols, s, gap) = (columns as u64, side as u64, GRID_GAP as u64);
    (cols * s + (cols + 1) * gap, rows * s + (rows + 1) * gap)
}

/// Lays out `count` square images of side `side` with `channels` values a pixel (1: grey,
/// 3: RGB; values in [0, 1], channels of a pixel together) in rows of `columns`, with a grey
/// gap: a grey picture for grey images, a colour one for colour.
/// One picture of `side x side` pixels from values in [0, 1] (`channels` a pixel together).
pub fn single_picture(values: &[f32], side: usize, channels: usize) -> DynamicImage {
    let bytes: Vec<u8> = values[..side * side * channels]
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let s = side as u32;
    match channels {
        1 => GrayImage::from_raw(s, s, bytes).map(DynamicImage::from),
        _ => RgbImage::from_raw(s, s, bytes).map(DynamicImage::from),
    }
    .expect("the buffer is the picture's size")
}

pub fn image_grid(
    images: &[f32],
    count: usize,
    side: usize,
    channels: usize,
    columns: usize,
) -> DynamicImage {
    let (width, height) = grid_size(count, side, columns);
    let (w, s, gap) = (width as usize, side, GRID_GAP as usize);
    let mut bytes = vec![96u8; w * height as usize * channels];
    let len = side * side * channels;
    for (i, image) in images.chunks_exact(len).take(count).enumerate() {
        let (x0, y0) = (
            gap + (i % columns) * (s + gap),
            gap + (i / columns) * (s + gap),
        );
        for (y, row) in image.chunks_exact(side * channels).enumerate() {
            let at = ((y0 + y) * w + x0) * channels;
            for (out, &v) in bytes[at..at + side * channels].iter_mut().zip(row) {
                *out = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
    let (w, h) = (width as u32, height as u32);
    match channels {
        1 => GrayImage::from_raw(w, h, bytes).map(DynamicImage::from),
        _ => RgbImage::from_raw(w, h, bytes).map(DynamicImage::from),
    }
    .expect("the buffer is the picture's size")
}

/// Blue (low critic value) through white to red (high), on t in [0, 1].
fn diverging(t: f32) -> Rgb<u8> {
    let t = t.clamp(0.0, 1.0);
    let (lo, mid, hi) = (
        [59.0, 76.0, 192.0],
        [221.0, 221.0, 221.0],
        [180.0, 4.0, 38.0],
    );
    let (a, b, u) = if t < 0.5 {
        (lo, mid, t * 2.0)
    } else {
        (mid, hi, t * 2.0 - 1.0)
    };
    Rgb(std::array::from_fn(|k| (a[k] + (b[k] - a[k]) * u) as u8))
}

/// Renders a [`SampleSet`] as a picture.
pub fn render(samples: &SampleSet) -> image::DynamicImage {
    match samples {
        SampleSet::Images {
            side,
            channels,
            count,
            generated,
            ..
        } => image_grid(generated, *count, *side, *channels, grid_columns(*count)),
        SampleSet::Points { .. } => {
            let side = SCATTER_SIDE as usize;
            scatter(&samples.toy_picture(side).expect("a toy set")).into()
        }
    }
}

/// The real pictures a [`SampleSet`] shows beside the generated ones, as a grid like theirs
/// (`None` for the toy sets, whose plot holds both).
pub fn render_real(samples: &SampleSet) -> Option<image::DynamicImage> {
    match samples {
        SampleSet::Images {
            side,
            channels,
            real,
            ..
        } => {
            let count = real.len() / (side * side * channels).max(1);
            (count > 0).then(|| image_grid(real, count, *side, *channels, grid_columns(count)))
        }
        SampleSet::Points { .. } => None,
    }
}

/// Real points (green) and generated points (orange), dots of 3x3 pixels, over the critic's
/// value surface.
pub fn scatter(picture: &ToyPicture) -> RgbImage {
    let side = picture.side as u32;
    let mut img = RgbImage::from_fn(side, side, |x, y| {
        diverging(picture.surface[(y * side + x) as usize])
    });
    let mut dot = |(cx, cy): (usize, usize), colour: Rgb<u8>| {
        for y in cy.saturating_sub(1)..=cy + 1 {
            for x in cx.saturating_sub(1)..=cx + 1 {
                if x < side as usize && y < side as usize {
                    img.put_pixel(x as u32, y as u32, colour);
                }
            }
        }
    };
    for &p in &picture.real {
        dot(p, Rgb([0, 140, 0]));
    }
    for &p in &picture.generated {
        dot(p, Rgb([255, 140, 0]));
    }
    img
}
