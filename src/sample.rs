//! `wgangp-tui sample`: draws samples from a checkpoint's generator into a file, the way a user
//! gets results out of a trained model.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::checkpoint::Checkpoint;
use crate::cli::SampleArgs;
use crate::config::Family;
use crate::data::idx::{IdxImages, encode_images};
use crate::model::Generator;
use crate::model::mnist::{MNIST_NOISE, MNIST_PIXELS, MNIST_SIDE, MnistGenerator};
use crate::model::params::load_named_params;
use crate::model::toy::{TOY_DIM, TOY_HIDDEN, ToyGenerator};
use crate::render::image_grid;
use crate::train::worker::check_checkpoint;

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

/// Runs the generator on `count` noise vectors drawn from `seed`.
fn generate<G: Generator<f32, Z, X> + BuildModule<Cpu, f32>, const Z: usize, const X: usize>(
    ck: &Checkpoint,
    count: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    let dev = Cpu::default();
    let mut generator = G::build(&dev);
    load_named_params(&mut generator, &ck.generator).map_err(anyhow::Error::msg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count * X);
    let mut left = count;
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

/// Writes `bytes` next to `path`, then renames it into place: a half-written file never has
/// the name the user asked for.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Draws the samples and writes the file; returns a line saying what was written.
pub fn run(args: &SampleArgs) -> Result<String> {
    let format = format_of(&args.out)?;
    let (ck, folder) = Checkpoint::load(&args.from)?;
    check_checkpoint(&ck).map_err(anyhow::Error::msg)?;
    let count = args.count as usize;
    let bytes = match (ck.config.family, format) {
        (Family::Toy, Format::Csv) => {
            let points =
                generate::<ToyGenerator<TOY_HIDDEN, f32>, TOY_DIM, TOY_DIM>(&ck, count, args.seed)?;
            let mut csv = String::from("x,y\n");
            for p in points.chunks(2) {
                csv += &format!("{},{}\n", p[0], p[1]);
            }
            csv.into_bytes()
        }
        (Family::Mnist, Format::Idx { gzip }) => {
            let pixels = generate::<MnistGenerator<f32, Cpu>, MNIST_NOISE, MNIST_PIXELS>(
                &ck, count, args.seed,
            )?;
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
        (Family::Mnist, Format::Png) => {
            let pixels = generate::<MnistGenerator<f32, Cpu>, MNIST_NOISE, MNIST_PIXELS>(
                &ck, count, args.seed,
            )?;
            let columns = (count as f64).sqrt().ceil() as usize;
            let grid = image_grid(&pixels, count, MNIST_SIDE, columns);
            let mut png = Vec::new();
            grid.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            png
        }
        (Family::Toy, _) => {
            bail!("this checkpoint's generator makes 2-d points: use --out NAME.csv")
        }
        (Family::Mnist, Format::Csv) => {
            bail!(
                "this checkpoint's generator makes images: use --out NAME.idx, NAME.idx.gz or NAME.png"
            )
        }
    };
    write_atomically(&args.out, &bytes)?;
    Ok(format!(
        "wrote {count} samples of the generator at step {} ({}) to {}",
        ck.step,
        folder.display(),
        args.out.display()
    ))
}
