//! The IDX image format of MNIST and Fashion-MNIST, raw or gzipped: big-endian u32 magic
//! 0x00000803, u32 count, rows, cols, then count*rows*cols u8 pixels, row-major.

use std::io::Read;

/// Images read from an IDX file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    /// `count * rows * cols` bytes, 0 = background.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdxError {
    #[error("corrupt gzip data: {0}")]
    Gzip(String),
    #[error("too short for an IDX header: {0} bytes, need 16")]
    TooShort(usize),
    #[error("bad magic number 0x{0:08x}: not an IDX image file (expected 0x00000803)")]
    BadMagic(u32),
    #[error(
        "the header says {count} images of {rows}x{cols} pixels ({expected} bytes), but {actual} bytes follow it"
    )]
    SizeMismatch {
        count: usize,
        rows: usize,
        cols: usize,
        expected: u128,
        actual: usize,
    },
    #[error("no images in the file")]
    Empty,
    #[error("bad magic number 0x{0:08x}: not an IDX label file (expected 0x00000801)")]
    BadLabelMagic(u32),
    #[error("the header says {count} labels, but {actual} bytes follow it")]
    LabelCount { count: usize, actual: usize },
    #[error("label {0} is not a digit 0-9")]
    NotADigit(u8),
}

pub const IMAGE_MAGIC: u32 = 0x0000_0803;
pub const LABEL_MAGIC: u32 = 0x0000_0801;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Parses IDX image bytes, gunzipping first when they start with the gzip magic.
pub fn parse_images(bytes: &[u8]) -> Result<IdxImages, IdxError> {
    parse_raw(&gunzipped(bytes)?)
}

/// Parses IDX label bytes (raw or gzipped): big-endian u32 magic 0x00000801, u32 count, then
/// one byte per label, each a digit 0-9.
pub fn parse_labels(bytes: &[u8]) -> Result<Vec<u8>, IdxError> {
    let raw = gunzipped(bytes)?;
    if raw.len() < 8 {
        return Err(IdxError::TooShort(raw.len()));
    }
    let word = |i: usize| u32::from_be_bytes(raw[i * 4..i * 4 + 4].try_into().unwrap());
    if word(0) != LABEL_MAGIC {
        return Err(IdxError::BadLabelMagic(word(0)));
    }
    let (count, labels) = (word(1) as usize, &raw[8..]);
    if count != labels.len() {
        return Err(IdxError::LabelCount {
            count,
            actual: labels.len(),
        });
    }
    if let Some(&bad) = labels.iter().find(|&&l| l > 9) {
        return Err(IdxError::NotADigit(bad));
    }
    Ok(labels.to_vec())
}

/// The bytes, gunzipped when they start with the gzip magic.
fn gunzipped(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, IdxError> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(bytes.into());
    }
    let mut raw = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut raw)
        .map_err(|e| IdxError::Gzip(e.to_string()))?;
    Ok(raw.into())
}

fn parse_raw(bytes: &[u8]) -> Result<IdxImages, IdxError> {
    if bytes.len() < 16 {
        return Err(IdxError::TooShort(bytes.len()));
    }
    let word = |i: usize| u32::from_be_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
    let magic = word(0);
    if magic != IMAGE_MAGIC {
        return Err(IdxError::BadMagic(magic));
    }
    let (count, rows, cols) = (word(1) as usize, word(2) as usize, word(3) as usize);
    let body = &bytes[16..];
    // u128: a corrupt header must not overflow the size check.
    let expected = count as u128 * rows as u128 * cols as u128;
    if expected != body.len() as u128 {
        return Err(IdxError::SizeMismatch {
            count,
            rows,
            cols,
            expected,
            actual: body.len(),
        });
    }
    if expected == 0 {
        return Err(IdxError::Empty);
    }
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: body.to_vec(),
    })
}

/// Writes images as raw IDX bytes (the inverse of [`parse_images`] on raw input).
pub fn encode_images(images: &IdxImages) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + images.pixels.len());
    for word in [
        IMAGE_MAGIC,
        images.count as u32,
        images.rows as u32,
        images.cols as u32,
    ] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    out
}
