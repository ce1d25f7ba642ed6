//! Real samples: the embedded MNIST subset, IDX files, and the toy 2-d sets.

pub mod cache;
pub mod folder;
pub mod idx;
pub mod toy;

use std::path::Path;

use rand::Rng;
use rand_distr::{Distribution, Uniform};

use crate::config::{DataSpec, ToySet};
pub use idx::{IdxError, IdxImages};

/// Side of an MNIST image (and of every image an IDX file may hold here).
pub const MNIST_SIDE: usize = 28;

/// The first 10,000 MNIST training images (gzipped IDX); see `assets/mnist/PROVENANCE.md`.
pub static EMBEDDED_MNIST: &[u8] =
    include_bytes!("../../assets/mnist/train10k-images-idx3-ubyte.gz");

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read data file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("data file {path}: {source}")]
    Idx { path: String, source: IdxError },
    #[error(
        "data file {path}: images are {rows}x{cols}, but the MNIST model takes {MNIST_SIDE}x{MNIST_SIDE}"
    )]
    ImageSize {
        path: String,
        rows: usize,
        cols: usize,
    },
}

/// A source of real samples, each a row of `dim()` floats.
#[derive(Clone, Debug)]
pub enum Dataset {
    Images(IdxImages),
    Toy(ToySet),
}

impl Dataset {
    pub fn load(spec: &DataSpec) -> Result<Self, DataError> {
        match spec {
            DataSpec::Mnist => Ok(Dataset::Images(
                idx::parse_images(EMBEDDED_MNIST).expect("embedded MNIST is valid IDX"),
            )),
            DataSpec::Idx(path) => load_idx(path).map(Dataset::Images),
            DataSpec::Toy(set) => Ok(Dataset::Toy(*set)),
        }
    }

    /// Appends `n` samples drawn with replacement (images scaled to [0, 1]).
    pub fn sample<R: Rng>(&self, rng: &mut R, n: usize, out: &mut Vec<f32>) {
        match self {
            Dataset::Images(images) => {
                let pick = Uniform::new(0, images.count);
                for _ in 0..n {
                    let image = images.image(pick.sample(rng));
                    out.extend(image.iter().map(|&p| p as f32 / 255.0));
                }
            }
            Dataset::Toy(set) => toy::sample(*set, rng, n, out),
        }
    }

    /// Number of samples to choose from (`None` for the endless toy distributions).
    pub fn len(&self) -> Option<usize> {
        match self {
            Dataset::Images(images) => Some(images.count),
            Dataset::Toy(_) => None,
        }
    }
}

/// Reads an IDX image file the MNIST model can take.
pub fn load_idx(path: &Path) -> Result<IdxImages, DataError> {
    let shown = path.display().to_string();
    if path.is_dir() {
        let source = std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory");
        return Err(DataError::Io {
            path: shown,
            source,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: shown.clone(),
        source,
    })?;
    let images = idx::parse_images(&bytes).map_err(|source| DataError::Idx {
        path: shown.clone(),
        source,
    })?;
    if images.rows != MNIST_SIDE || images.cols != MNIST_SIDE {
        return Err(DataError::ImageSize {
            path: shown,
            rows: images.rows,
            cols: images.cols,
        });
    }
    Ok(images)
}
