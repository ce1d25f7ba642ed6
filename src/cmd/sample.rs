//! `wgangp-tui sample`: draws samples from a checkpoint's generator into a file, the way a user
//! gets results out of a trained model.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::checkpoint::Checkpoint;
use crate::cli::SampleArgs;
use crate::config::Family;
use crate::data::MNIST_SIDE;
use crate::data::idx::{IdxImages, encode_images};
use crate::model::cifar::{CIFAR_CHANNELS, CIFAR_SIDE};
use crate::model::params::load_named_params;
use crate::model::{Critic, Generator};
use crate::run::pictures::{MAX_PICTURE_SIDE, grid_columns, grid_size, image_grid};
use crate::train::families::{FamilyJob, check_checkpoint, dispatch};
use crate::util::files::write_atomically;

/// Noise vectors per forward pass (bounds the memory whatever `--count`).
const CHUNK: usize = 500;

/// What the output file's name asks for.
enum Format {
    Idx { gzip: bool },
    Png,
    Csv,
}

fn format_of(path: &Path) -> Result<Format> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    Ok(if name.ends_with(".idx.gz") {
        Format::Idx { gzip: true }
    } else if name.ends_with(".idx") {
        Format::Idx { gzip: false }
    } else if name.ends_with(".png") {
        Format::Png
    } else if name.ends_with(".csv") {
        Format::Csv
    } else {
        bail!(
            "--out {}: use a name ending in .idx, .idx.gz or .png for images, .csv for toy points",
            path.display()
        )
    })
}

/// Runs the checkpoint's generator on `count` noise vectors drawn from `seed`: one flattened
/// sample after another.
struct Generate<'a> {
    ck: &'a Checkpoint,
    count: usize,
    seed: u64,
}

impl FamilyJob for Generate<'_> {
    type Output = Result<Vec<f32>>;

    fn run<G, D, const Z: usize, const X: usize>(self) -> Self::Output
    where
        G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
        D: Critic<f32, X> + BuildModule<Cpu, f32>,
    {
        let dev = Cpu::default();
        let mut generator = G::build(&dev);
        load_named_params(&mut generator, &self.ck.generator).map_err(anyhow::Error::msg)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut out = Vec::with_capacity(self.count * X);
        let mut left = self.count;
        while left > 0 {
            let n = left.min(CHUNK);
            let noise: Vec<f32> = (0..n * Z)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect();
            let z = dev.tensor_from_vec(noise, (n, Const::<Z>));
            out.extend(generator.generate(z).as_vec());
            left -= n;
        }
        Ok(out)
    }
}

/// Draws the samples and writes the file; returns a line saying what was written.
pub fn run(args: &SampleArgs) -> Result<String> {
    let format = format_of(&args.out)?;
    let (ck, folder) = Checkpoint::load(&args.from)?;
    check_checkpoint(&ck).map_err(anyhow::Error::msg)?;
    let count = args.count as usize;
    // Side and channels of the family's pictures.
    let picture = match ck.config.family {
        Family::Mnist => Some((MNIST_SIDE, 1)),
        Family::Cifar32 => Some((CIFAR_SIDE, CIFAR_CHANNELS)),
        Family::Toy => None,
    };
    if let (Some((side, _)), Format::Png) = (picture, &format) {
        let (width, height) = grid_size(count, side, grid_columns(count));
        if width.max(height) > MAX_PICTURE_SIDE {
            bail!(
                "--count {count}: a grid of {count} images would be a {width}x{height} picture \
                 (at most {MAX_PICTURE_SIDE} pixels a side); draw fewer, or use --out NAME.idx \
                 or NAME.idx.gz for many"
            );
        }
    }
    let generate = |count| {
        let job = Generate {
            ck: &ck,
            count,
            seed: args.seed,
        };
        dispatch(ck.config.family, job)
    };
    let bytes = match (ck.config.family, format) {
        (Family::Toy, Format::Csv) => {
            let points = generate(count)?;
            let mut csv = String::from("x,y\n");
            for p in points.chunks(2) {
                csv += &format!("{},{}\n", p[0], p[1]);
            }
            csv.into_bytes()
        }
        (Family::Mnist, Format::Idx { gzip }) => {
            let pixels = generate(count)?;
            let images = IdxImages {
                count,
                rows: MNIST_SIDE,
                cols: MNIST_SIDE,
                pixels: pixels
                    .iter()
                    .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                    .collect(),
            };
            let raw = encode_images(&images);
            if gzip {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(&raw)?;
                gz.finish()?
            } else {
                raw
            }
        }
        (Family::Mnist | Family::Cifar32, Format::Png) => {
            let (side, channels) = picture.expect("a family of pictures");
            let mut pixels = generate(count)?;
            if ck.config.family == Family::Cifar32 {
                // tanh's [-1, 1] to brightness.
                pixels.iter_mut().for_each(|v| *v = (*v + 1.0) / 2.0);
            }
            let grid = image_grid(&pixels, count, side, channels, grid_columns(count));
            let mut png = Vec::new();
            grid.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            png
        }
        (Family::Toy, _) => {
            bail!("this checkpoint's generator makes 2-d points: use --out NAME.csv")
        }
        (Family::Cifar32, _) => {
            bail!("this checkpoint's generator makes colour pictures: use --out NAME.png")
        }
        (Family::Mnist, Format::Csv) => {
            bail!(
                "this checkpoint's generator makes images: use --out NAME.idx, NAME.idx.gz or NAME.png"
            )
        }
    };
    write_atomically(&args.out, &bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    Ok(format!(
        "wrote {count} samples of the generator at step {} ({}) to {}",
        ck.step,
        folder.display(),
        args.out.display()
    ))
}
