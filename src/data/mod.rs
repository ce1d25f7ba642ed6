//! Real samples: the embedded MNIST subset, IDX files, the toy 2-d sets, and folders of
//! pictures.

pub mod cache;
pub mod folder;
pub mod idx;
pub mod labelled;
pub mod toy;

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Uniform};

use crate::config::{DataSpec, ToySet, TrainConfig};
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
                    out.extend(image.iter().map(|&p| grey_value(p)));
                }
            }
            Dataset::Toy(set) => toy::sample(*set, rng, n, out),
            Dataset::Folder(folder) => {
                let pick = Uniform::new(0, folder.count);
                for _ in 0..n {
                    let image = folder.image(pick.sample(rng));
                    out.extend(image.iter().map(|&p| colour_value(p)));
                }
            }
        }
    }

    /// Values per pixel of the pictures (1: grey, 3: colour; the toy sets have none).
    /// Splits off the part held out of training for the evaluations (`--eval-every`),
    /// [`held_out_count`] pictures chosen at random by `seed`: (training, held out). A toy set
    /// is not split (its held-out points are fresh draws), so both are the set itself; a
    /// picture set too small to spare one gives `None`.
    pub fn split_held_out(self, seed: u64) -> (Dataset, Option<Dataset>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut choose = |count: usize| {
            let mut held =
                rand::seq::index::sample(&mut rng, count, held_out_count(count)).into_vec();
            held.sort_unstable();
            held
        };
        match self {
            Dataset::Toy(set) => (Dataset::Toy(set), Some(Dataset::Toy(set))),
            Dataset::Images(images) => {
                let held = choose(images.count);
                if held.is_empty() {
                    return (Dataset::Images(images), None);
                }
                let size = images.rows * images.cols;
                let (train, out) = split_rows(&images.pixels, size, images.count, &held);
                let part = |pixels: Vec<u8>| IdxImages {
                    count: pixels.len() / size,
                    pixels,
                    ..images
                };
                (
                    Dataset::Images(part(train)),
                    Some(Dataset::Images(part(out))),
                )
            }
            Dataset::Folder(folder) => {
                let held = choose(folder.count);
                if held.is_empty() {
                    return (Dataset::Folder(folder), None);
                }
                let size = folder.image_len();
                let (train, out) = split_rows(&folder.pixels, size, folder.count, &held);
                let held_out = ImageFolder {
                    side: folder.side,
                    count: out.len() / size,
                    pixels: out,
                    skipped: Vec::new(),
                };
                let training = ImageFolder {
                    count: train.len() / size,
                    pixels: train,
                    ..folder
                };
                (Dataset::Folder(training), Some(Dataset::Folder(held_out)))
            }
        }
    }

    /// The run's split of this set (`config`'s): with evaluations, the held-out part as
    /// `split_held_out` chooses it by the run's seed; without, the whole set and none.
    pub fn held_out_of(self, config: &TrainConfig) -> (Dataset, Option<Dataset>) {
        if config.eval_every > 0 {
            self.split_held_out(config.seed.wrapping_add(3))
        } else {
            (self, None)
        }
    }

    /// The first `max` pictures in order, as the nets take them (MNIST in [0, 1], colour in
    /// [-1, 1]), one after another; nothing for a toy set.
    pub fn first_pictures(&self, max: usize) -> Vec<f32> {
        match self {
            Dataset::Images(images) => {
                let n = images.count.min(max) * images.rows * images.cols;
                images.pixels[..n].iter().map(|&p| grey_value(p)).collect()
            }
            Dataset::Folder(folder) => {
                let n = folder.count.min(max) * folder.image_len();
                folder.pixels[..n]
                    .iter()
                    .map(|&p| colour_value(p))
                    .collect()
            }
            Dataset::Toy(_) => Vec::new(),
        }
    }

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
/// A grey pixel as the MNIST nets take it: [0, 1] (their generator ends in a sigmoid).
fn grey_value(p: u8) -> f32 {
    p as f32 / 255.0
}

/// A colour channel as the colour nets take it: [-1, 1] (their generator ends in tanh).
fn colour_value(p: u8) -> f32 {
    p as f32 / 127.5 - 1.0
}

/// Pictures of a set of `total` held out of training when the run evaluates: 2%, at least one
/// of a set of two or more, at most 1,000.
pub fn held_out_count(total: usize) -> usize {
    if total < 2 {
        0
    } else {
        (total * 2 / 100).clamp(1, 1000)
    }
}

/// The rows of `pixels` (`count` rows of `size`) not in `held` (sorted), and those in it.
fn split_rows(pixels: &[u8], size: usize, count: usize, held: &[usize]) -> (Vec<u8>, Vec<u8>) {
    let (mut train, mut out) = (Vec::new(), Vec::new());
    let mut next = held.iter().peekable();
    for (i, row) in pixels.chunks_exact(size).take(count).enumerate() {
        if next.next_if_eq(&&i).is_some() {
            out.extend_from_slice(row);
        } else {
            train.extend_from_slice(row);
        }
    }
    (train, out)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// 2% held out, at least one of two or more, at most 1,000.
    #[test]
    fn the_held_out_share_has_its_floor_and_ceiling() {
        let counts: Vec<usize> = [0, 1, 2, 49, 100, 10_000, 49_999, 50_000, 1_000_000]
            .map(held_out_count)
            .to_vec();
        assert_eq!(counts, [0, 0, 1, 1, 2, 200, 999, 1000, 1000]);
    }

    /// The held-out pictures and the training ones are the set's pictures, each once, chosen
    /// by the seed: the same seed holds out the same ones, another seed others.
    #[test]
    fn a_split_puts_each_picture_on_one_side() {
        // Picture i is 4 bytes of value i.
        let images = IdxImages {
            count: 150,
            rows: 2,
            cols: 2,
            pixels: (0..150u8).flat_map(|i| [i; 4]).collect(),
        };
        let split = |seed| match Dataset::Images(images.clone()).split_held_out(seed) {
            (Dataset::Images(train), Some(Dataset::Images(held))) => (train, held),
            other => panic!("{other:?}"),
        };
        let (train, held) = split(1);
        assert_eq!((train.count, held.count), (147, 3));
        let ids = |set: &IdxImages| -> Vec<u8> { set.pixels.chunks(4).map(|p| p[0]).collect() };
        let mut all: Vec<u8> = ids(&train).into_iter().chain(ids(&held)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..150u8).collect::<Vec<_>>());
        assert!(
            images
                .pixels
                .chunks(4)
                .all(|p| p.iter().all(|&b| b == p[0]))
        );
        assert_eq!(split(1).1, held);
        assert_ne!(split(2).1, held);
        // One picture cannot spare one.
        let one = IdxImages {
            count: 1,
            pixels: vec![7; 4],
            ..images
        };
        assert!(Dataset::Images(one).split_held_out(1).1.is_none());
    }
}
