//! Real samples: the embedded MNIST subset, IDX files, the toy 2-d sets, and folders of
//! pictures.

pub mod cache;
pub mod folder;
pub mod idx;
pub mod toy;

use std::path::Path;

use rand::Rng;
use rand_distr::{Distribution, Uniform};

use crate::config::{DataSpec, ToySet};
pub use crate::util::progress::Decoding;
use crate::util::say;
pub use folder::{FolderError, ImageFolder};
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
    #[error(transparent)]
    Folder(#[from] FolderError),
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
    /// Colour pictures, each row `side * side * 3` values in [-1, 1].
    Folder(ImageFolder),
}

impl Dataset {
    /// Loads the data, saying on stderr how a folder's decoding goes (at most one line a
    /// second) and what it found.
    pub fn load(spec: &DataSpec) -> Result<Self, DataError> {
        let shown = match spec {
            DataSpec::Folder { path, .. } => path.display().to_string(),
            _ => String::new(),
        };
        let started = std::time::Instant::now();
        let last = std::sync::Mutex::new(None::<std::time::Instant>);
        let progress = |decoding: &Decoding| {
            let Ok(mut last) = last.try_lock() else {
                return;
            };
            let finished = decoding.done == decoding.total;
            if !finished && last.is_some_and(|t| t.elapsed().as_secs_f64() < 1.0) {
                return;
            }
            *last = Some(std::time::Instant::now());
            say(format_args!(
                "decoding {shown}: {}",
                decoding.line(started.elapsed().as_secs_f64())
            ));
        };
        let (data, summary) = Self::load_reporting(spec, &progress)?;
        summary.iter().for_each(|line| say(format_args!("{line}")));
        Ok(data)
    }

    /// Loads the data; a folder's decoding calls `progress` as files finish (from the decoding
    /// threads). Also returns the lines that say what a folder held.
    pub fn load_reporting(
        spec: &DataSpec,
        progress: &(dyn Fn(&Decoding) + Sync),
    ) -> Result<(Self, Vec<String>), DataError> {
        let data = match spec {
            DataSpec::Mnist => Dataset::Images(
                idx::parse_images(EMBEDDED_MNIST).expect("embedded MNIST is valid IDX"),
            ),
            DataSpec::Idx(path) => Dataset::Images(load_idx(path)?),
            DataSpec::Toy(set) => Dataset::Toy(*set),
            DataSpec::Folder { path, side } => {
                let (folder, summary) = load_folder(path, *side, progress)?;
                return Ok((Dataset::Folder(folder), summary));
            }
        };
        Ok((data, Vec::new()))
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
            Dataset::Folder(folder) => {
                let pick = Uniform::new(0, folder.count);
                for _ in 0..n {
                    let image = folder.image(pick.sample(rng));
                    out.extend(image.iter().map(|&p| p as f32 / 127.5 - 1.0));
                }
            }
        }
    }

    /// Values per pixel of the pictures (1: grey, 3: colour; the toy sets have none).
    pub fn channels(&self) -> usize {
        match self {
            Dataset::Folder(_) => 3,
            Dataset::Images(_) | Dataset::Toy(_) => 1,
        }
    }

    /// A sample value as a picture's brightness in [0, 1] (MNIST's values are that already,
    /// a folder's are in [-1, 1]).
    pub fn to_unit(&self, v: f32) -> f32 {
        match self {
            Dataset::Folder(_) => (v + 1.0) / 2.0,
            Dataset::Images(_) | Dataset::Toy(_) => v,
        }
    }

    /// Number of samples to choose from (`None` for the endless toy distributions).
    pub fn len(&self) -> Option<usize> {
        match self {
            Dataset::Images(images) => Some(images.count),
            Dataset::Toy(_) => None,
            Dataset::Folder(folder) => Some(folder.count),
        }
    }

    /// What tells one set of pictures from another: their number, size and a CRC-32 of their
    /// pixels (`None` for the toy distributions, which are built in). A checkpoint keeps it so
    /// that `--resume` can tell whether it trains on the pictures the run started with.
    pub fn fingerprint(&self) -> Option<String> {
        let crc = |bytes: &[u8]| {
            let mut crc = flate2::Crc::new();
            crc.update(bytes);
            crc.sum()
        };
        match self {
            Dataset::Images(im) => Some(format!(
                "{} images of {}x{}, CRC-32 {:08x}",
                im.count,
                im.cols,
                im.rows,
                crc(&im.pixels)
            )),
            Dataset::Toy(_) => None,
            Dataset::Folder(f) => Some(format!(
                "{} pictures of {}x{}, CRC-32 {:08x}",
                f.count,
                f.side,
                f.side,
                crc(&f.pixels)
            )),
        }
    }
}

/// Loads a folder of pictures at `side`, from the cache when it has them; returns them and the
/// lines that say what was found and which files were skipped.
fn load_folder(
    path: &Path,
    side: usize,
    progress: &(dyn Fn(&Decoding) + Sync),
) -> Result<(ImageFolder, Vec<String>), DataError> {
    let report = |done, total| progress(&Decoding { done, total });
    let (folder, source) = cache::load(path, side, cache::default_root().as_deref(), &report)?;
    let from = match source {
        cache::Source::Cache => " (decoded before: from the cache)",
        cache::Source::Decoded => "",
    };
    let mut summary = vec![format!(
        "{}: {} pictures at {side}x{side}{from}",
        path.display(),
        folder.count
    )];
    if !folder.skipped.is_empty() {
        summary.push(format!(
            "skipped {} files that are not usable pictures{} (all in the run folder's skipped-files.txt)",
            folder.skipped.len(),
            folder::first_skipped(&folder.skipped, 3)
        ));
    }
    Ok((folder, summary))
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
