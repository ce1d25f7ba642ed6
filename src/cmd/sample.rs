//! `wgangp-tui sample`: draws samples from a checkpoint's generator into a file, the way a user
//! gets results out of a trained model.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::checkpoint::{Checkpoint, NamedTensor};
use crate::cli::SampleArgs;
use crate::data::idx::{IdxImages, encode_images};
use crate::model::params::load_named_params;
use crate::model::{Critic, Generator};
use crate::run::pictures::{MAX_PICTURE_SIDE, grid_columns, grid_size, image_grid, single_picture};
use crate::train::families::{FamilyJob, check_checkpoint, dispatch, picture_shape};
use crate::util::files::write_atomically;
use crate::util::say;

/// Noise vectors per forward pass (bounds the memory whatever `--count`).
const CHUNK: usize = 500;

/// What `--out` asks for.
enum Format {
    Idx {
        gzip: bool,
    },
    Png,
    Csv,
    /// A folder of single PNGs (a path ending in `/`, or an existing folder).
    Folder,
}

fn format_of(path: &Path) -> Result<Format> {
    if path.as_os_str().to_string_lossy().ends_with('/') || path.is_dir() {
        return Ok(Format::Folder);
    }
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
            "--out {}: use a name ending in .idx, .idx.gz or .png for images, .csv for toy \
             points, or a folder ending in / for one PNG a sample",
            path.display()
        )
    })
}

/// Runs the checkpoint's generator on `count` noise vectors drawn from `seed`, handing `sink`
/// the samples a chunk at a time (flattened, one after another).
struct Generate<'a> {
    weights: &'a [NamedTensor],
    count: usize,
    seed: u64,
    sink: &'a mut dyn FnMut(&[f32]) -> Result<()>,
}

impl FamilyJob for Generate<'_> {
    type Output = Result<()>;

    fn with_nets<G, D, const Z: usize, const X: usize>(self) -> Self::Output
    where
        G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
        D: Critic<f32, X> + BuildModule<Cpu, f32>,
    {
        let dev = Cpu::default();
        let mut generator = G::build(&dev);
        load_named_params(&mut generator, self.weights).map_err(anyhow::Error::msg)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut left = self.count;
        while left > 0 {
            let n = left.min(CHUNK);
            let noise: Vec<f32> = (0..n * Z)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect();
            let z = dev.tensor_from_vec(noise, (n, Const::<Z>));
            (self.sink)(&generator.generate(z).as_vec())?;
            left -= n;
        }
        Ok(())
    }
}

/// Which of a checkpoint's generators draws: the averaged one unless `raw` is asked for or
/// the run keeps none. Returns its weights and a word for the messages.
pub fn chosen_generator(ck: &Checkpoint, raw: bool) -> (&[NamedTensor], &'static str) {
    match &ck.averaged {
        Some(averaged) if !raw => (&averaged.generator, "averaged generator"),
        _ => (&ck.generator, "generator"),
    }
}

/// Runs the checkpoint's generator (averaged unless `raw`, see [`chosen_generator`]) on `count`
/// noise vectors drawn from `seed`, handing `sink` the samples a chunk at a time.
pub fn generate(
    ck: &Checkpoint,
    raw: bool,
    count: usize,
    seed: u64,
    sink: &mut dyn FnMut(&[f32]) -> Result<()>,
) -> Result<()> {
    let job = Generate {
        weights: chosen_generator(ck, raw).0,
        count,
        seed,
        sink,
    };
    dispatch(ck.config.family, job)
}

/// Draws the samples and writes the file; returns a line saying what was written.
pub fn run(args: &SampleArgs) -> Result<String> {
    let format = format_of(&args.out)?;
    let (ck, folder) = Checkpoint::load(&args.from)?;
    check_checkpoint(&ck).map_err(anyhow::Error::msg)?;
    if ck.config.fixed_generator.is_some() {
        say(format_args!(
            "note: this run trained its critic alone (--fixed-generator): its generator is the \
             untrained one it started with"
        ));
    }
    let count = args.count as usize;
    let family = ck.config.family;
    let picture = picture_shape(family);
    if let (Some((side, _, _)), Format::Png) = (picture, &format) {
        let (width, height) = grid_size(count, side, grid_columns(count));
        if width.max(height) > MAX_PICTURE_SIDE {
            bail!(
                "--count {count}: a grid of {count} images would be a {width}x{height} picture \
                 (at most {MAX_PICTURE_SIDE} pixels a side); draw fewer, or use --out DIR/ for \
                 one PNG a sample"
            );
        }
    }
    let generate = |sink: &mut dyn FnMut(&[f32]) -> Result<()>| {
        generate(&ck, args.raw, count, args.seed, sink)
    };
    let which = chosen_generator(&ck, args.raw).1;
    // Everything, as the pictures' brightness in [0, 1] (the toys' points as they are).
    let collect_all = || -> Result<Vec<f32>> {
        let mut all = Vec::new();
        generate(&mut |chunk| {
            all.extend(chunk.iter().map(|&v| brightness(picture, v)));
            Ok(())
        })?;
        Ok(all)
    };
    let bytes = match (picture, format) {
        (_, Format::Folder) => {
            let Some(shape) = picture else {
                bail!("this checkpoint's generator makes 2-d points: use --out NAME.csv")
            };
            let written = write_folder(&args.out, count, shape, generate)?;
            return Ok(format!(
                "wrote {written} samples of the {which} at step {} ({}) as PNGs in {}",
                ck.step,
                folder.display(),
                args.out.display()
            ));
        }
        (None, Format::Csv) => {
            let mut csv = String::from("x,y\n");
            for p in collect_all()?.chunks(2) {
                csv += &format!("{},{}\n", p[0], p[1]);
            }
            csv.into_bytes()
        }
        (Some((side, 1, _)), Format::Idx { gzip }) => {
            let pixels = collect_all()?;
            let images = IdxImages {
                count,
                rows: side,
                cols: side,
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
        (Some((side, channels, _)), Format::Png) => {
            let pixels = collect_all()?;
            let grid = image_grid(&pixels, count, side, channels, grid_columns(count));
            let mut png = Vec::new();
            grid.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            png
        }
        (None, _) => {
            bail!("this checkpoint's generator makes 2-d points: use --out NAME.csv")
        }
        (Some((_, 1, _)), Format::Csv) => {
            bail!(
                "this checkpoint's generator makes images: use --out NAME.idx, NAME.idx.gz, \
                 NAME.png or DIR/"
            )
        }
        (Some(_), _) => {
            bail!("this checkpoint's generator makes colour pictures: use --out NAME.png or DIR/")
        }
    };
    write_atomically(&args.out, &bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    Ok(format!(
        "wrote {count} samples of the {which} at step {} ({}) to {}",
        ck.step,
        folder.display(),
        args.out.display()
    ))
}

/// A generated value as brightness in [0, 1] (tanh's [-1, 1] mapped; toys' points unchanged).
fn brightness(picture: Option<(usize, usize, bool)>, v: f32) -> f32 {
    match picture {
        Some((_, _, true)) => (v + 1.0) / 2.0,
        _ => v,
    }
}

/// Writes `DIR/000000.png`, `DIR/000001.png`, ... one picture a sample at the model's size (the
/// layout FID tools read), a chunk at a time so that memory does not grow with `count`.
fn write_folder(
    dir: &Path,
    count: usize,
    (side, channels, tanh): (usize, usize, bool),
    generate: impl FnOnce(&mut dyn FnMut(&[f32]) -> Result<()>) -> Result<()>,
) -> Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let digits = count.saturating_sub(1).to_string().len().max(6);
    let len = side * side * channels;
    let mut written = 0;
    generate(&mut |chunk| {
        for sample in chunk.chunks_exact(len) {
            let values: Vec<f32> = sample
                .iter()
                .map(|&v| brightness(Some((side, channels, tanh)), v))
                .collect();
            let path = dir.join(format!("{written:0digits$}.png"));
            let mut png = Vec::new();
            single_picture(&values, side, channels)
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            write_atomically(&path, &png)
                .with_context(|| format!("cannot write {}", path.display()))?;
            written += 1;
        }
        Ok(())
    })?;
    Ok(written)
}
