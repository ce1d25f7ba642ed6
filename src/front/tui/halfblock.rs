//! Pictures in a terminal: two pixels per cell with the upper half block (foreground = top
//! pixel, background = bottom pixel). Falls back to xterm's 256 colours, or to a ramp of plain
//! characters when there is no colour (or no block characters).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

use super::view::ColorMode;

/// An RGB picture whose height is twice the rows it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Pixels {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<[u8; 3]>,
}

impl Pixels {
    pub fn new(width: usize, height: usize, fill: [u8; 3]) -> Self {
        Self {
            width,
            height,
            rgb: vec![fill; width * height],
        }
    }

    pub fn get(&self, x: usize, y: usize) -> [u8; 3] {
        if x < self.width && y < self.height {
            self.rgb[y * self.width + x]
        } else {
            [0, 0, 0]
        }
    }

    pub fn set(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.width && y < self.height {
            self.rgb[y * self.width + x] = c;
        }
    }
}

/// Darkest to brightest, for terminals without colour.
const RAMP: &[u8] = b" .:-=+*#%@";

fn luma(c: [u8; 3]) -> f32 {
    (0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32) / 255.0
}

/// The nearest xterm-256 colour: the grey ramp for greys, the 6x6x6 cube otherwise.
pub fn ansi256(c: [u8; 3]) -> u8 {
    let [r, g, b] = c.map(|v| v as i32);
    if (r - g).abs() < 12 && (g - b).abs() < 12 && (r - b).abs() < 12 {
        let l = (r + g + b) / 3;
        return match l {
            0..=4 => 16,
            247..=255 => 231,
            _ => 232 + ((l - 8).max(0) * 24 / 240).min(23) as u8,
        };
    }
    let q = |v: i32| ((v as f32 / 255.0 * 5.0).round()) as u8;
    16 + 36 * q(r) + 6 * q(g) + q(b)
}

/// Draws `px` into the top-left of `area` (clipped to it).
pub fn draw(buf: &mut Buffer, area: Rect, px: &Pixels, colors: ColorMode, ascii: bool) {
    let rows = px.height.div_ceil(2).min(area.height as usize);
    let cols = px.width.min(area.width as usize);
    for row in 0..rows {
        for col in 0..cols {
            let (top, bottom) = (px.get(col, 2 * row), px.get(col, 2 * row + 1));
            let Some(cell) = buf.cell_mut((area.x + col as u16, area.y + row as u16)) else {
                continue;
            };
            if ascii || colors == ColorMode::None {
                let l = (luma(top) + luma(bottom)) / 2.0;
                let i = ((l * (RAMP.len() - 1) as f32).round() as usize).min(RAMP.len() - 1);
                cell.set_char(RAMP[i] as char);
                if colors != ColorMode::None {
                    let mid =
                        std::array::from_fn(|k| ((top[k] as u16 + bottom[k] as u16) / 2) as u8);
                    cell.set_fg(color(mid, colors)).set_bg(Color::Reset);
                }
            } else {
                cell.set_char('▀')
                    .set_fg(color(top, colors))
                    .set_bg(color(bottom, colors));
            }
        }
    }
}

fn color(c: [u8; 3], colors: ColorMode) -> Color {
    match colors {
        ColorMode::TrueColor => Color::Rgb(c[0], c[1], c[2]),
        ColorMode::Ansi256 => Color::Indexed(ansi256(c)),
        ColorMode::None => Color::Reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_half_block_has_the_top_pixel_in_front_and_the_bottom_behind() {
        let mut px = Pixels::new(2, 2, [0, 0, 0]);
        px.set(0, 0, [255, 0, 0]);
        px.set(0, 1, [0, 0, 255]);
        let mut buf = Buffer::empty(Rect::new(0, 0, 2, 1));
        draw(
            &mut buf,
            Rect::new(0, 0, 2, 1),
            &px,
            ColorMode::TrueColor,
            false,
        );
        let cell = &buf[(0, 0)];
        assert_eq!(
            (cell.symbol(), cell.fg, cell.bg),
            ("▀", Color::Rgb(255, 0, 0), Color::Rgb(0, 0, 255))
        );
        draw(
            &mut buf,
            Rect::new(0, 0, 2, 1),
            &px,
            ColorMode::Ansi256,
            false,
        );
        assert_eq!(
            (buf[(0, 0)].fg, buf[(0, 0)].bg),
            (Color::Indexed(196), Color::Indexed(21))
        );
    }

    #[test]
    fn greys_use_the_grey_ramp_and_no_colour_uses_characters() {
        assert_eq!(ansi256([0, 0, 0]), 16);
        assert_eq!(ansi256([255, 255, 255]), 231);
        assert!((232..=255).contains(&ansi256([128, 128, 128])));
        let px = Pixels {
            width: 2,
            height: 2,
            rgb: vec![[0; 3], [255; 3], [0; 3], [255; 3]],
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 2, 1));
        draw(&mut buf, Rect::new(0, 0, 2, 1), &px, ColorMode::None, false);
        assert_eq!((buf[(0, 0)].symbol(), buf[(1, 0)].symbol()), (" ", "@"));
    }
}
