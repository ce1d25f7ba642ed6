//! Handwritten digits with their labels (MNIST's IDX image and label files), for the digit
//! classifier of the quality scores.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::MNIST_SIDE;
use super::idx;

/// MNIST's file names: the first 10,000 training digits and the test digits, images then
/// labels (as in `assets/mnist`).
pub const TRAIN: [&str; 2] = [
    "train10k-images-idx3-ubyte.gz",
    "train10k-labels-idx1-ubyte.gz",
];
pub const TEST: [&str; 2] = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
const PIXELS: usize = MNIST_SIDE * MNIST_SIDE;

/// Digits with their labels: `pixels` holds one row of [`PIXELS`] values in [0, 1] per
/// label.
pub struct Digits {
    pub pixels: Vec<f32>,
    pub labels: Vec<u8>,
}

impl Digits {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The `i`th digit's pixels.
    pub fn picture(&self, i: usize) -> &[f32] {
        &self.pixels[i * PIXELS..(i + 1) * PIXELS]
    }

    /// An IDX image file and its label file from `dir`, the pixels in [0, 1].
    pub fn read(dir: &Path, [images, labels]: [&str; 2]) -> Result<Digits> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
        };
        let pictures = idx::parse_images(&read(images)?).with_context(|| images.to_string())?;
        let labels_read = idx::parse_labels(&read(labels)?).with_context(|| labels.to_string())?;
        if (pictures.rows, pictures.cols) != (28, 28) {
            bail!(
                "{images}: pictures of {}x{}, not 28x28",
                pictures.rows,
                pictures.cols
            );
        }
        if pictures.count != labels_read.len() {
            bail!(
                "{images} has {} pictures but {labels} {} labels",
                pictures.count,
                labels_read.len()
            );
        }
        Ok(Digits {
            pixels: pictures.pixels.iter().map(|&p| p as f32 / 255.0).collect(),
            labels: labels_read,
        })
    }
}
