//! `wgangp-tui eval RUN_OR_CHECKPOINT`: how good a checkpoint's generator is, from samples it
//! draws now ([`crate::quality`]); prints one JSON line.

use anyhow::{Result, bail};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::sample::{chosen_generator, generate};
use crate::checkpoint::Checkpoint;
use crate::cli::EvalArgs;
use crate::config::DataSpec;
use crate::data::Dataset;
use crate::event::{DigitScores, SwdScores, ToyScores};
use crate::quality::digits;
use crate::quality::swd::{Pictures, swd};
use crate::quality::toy::score;
use crate::train::families::{check_checkpoint, picture_shape};
use crate::util::say;

/// The most real pictures a picture checkpoint is compared with.
pub const MAX_REAL_PICTURES: usize = 1000;

/// What `eval` prints.
#[derive(Serialize)]
pub struct Evaluation {
    pub checkpoint: String,
    pub step: u64,
    pub data: String,
    pub seed: u64,
    /// `averaged generator` or `generator` (the raw one).
    pub generator: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toy: Option<ToyScores>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swd: Option<SwdScores>,
    /// Digits (IDX data): the Frechet distance and the classifier score, on `--count`
    /// pictures (the SWD on as many as there are real pictures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digits: Option<DigitScores>,
    /// Which real pictures the SWD compares with: the run's held-out ones, or (a run that held
    /// none out) training pictures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real: Option<&'static str>,
}

pub fn run(args: &EvalArgs) -> Result<Evaluation> {
    let (ck, folder) = Checkpoint::load(&args.checkpoint)?;
    check_checkpoint(&ck).map_err(anyhow::Error::msg)?;
    let mut evaluation = Evaluation {
        checkpoint: folder.display().to_string(),
        step: ck.step,
        data: ck.config.data.to_string(),
        seed: args.seed,
        generator: chosen_generator(&ck, args.raw).1,
        toy: None,
        swd: None,
        digits: None,
        real: None,
    };
    let draw = |count: usize| -> Result<Vec<f32>> {
        let mut values = Vec::new();
        generate(&ck, args.raw, count, args.seed, &mut |chunk| {
            values.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(values)
    };
    if let DataSpec::Toy(set) = ck.config.data {
        let Some(toy) = score(set, &draw(args.count as usize)?) else {
            bail!(
                "{}: {} has no modes to score (the measures are the Gaussian mixtures')",
                folder.display(),
                set.name()
            );
        };
        evaluation.toy = Some(toy);
        return Ok(evaluation);
    }
    let Some((side, channels, _)) = picture_shape(ck.config.family) else {
        bail!(
            "{}: this run's generator makes no pictures",
            folder.display()
        );
    };
    let data = Dataset::load(&ck.config.data)?;
    if ck.data.is_some() && ck.data != data.fingerprint() {
        say(format_args!(
            "note: {} is not the data this run trained on (it had {}): the score compares \
             with the pictures there now",
            ck.config.data,
            ck.data.as_deref().unwrap_or_default()
        ));
    }
    // IDX pictures are taken to be handwritten digits.
    let is_digits = matches!(data, Dataset::Images(_));
    let (training, held_out) = data.held_out_of(&ck.config);
    let (real, which) = match held_out {
        Some(held_out) => (
            held_out.first_pictures(MAX_REAL_PICTURES),
            "held-out pictures",
        ),
        None => {
            let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
            let n = training.len().unwrap_or(0).min(MAX_REAL_PICTURES);
            let mut values = Vec::new();
            training.sample(&mut rng, n, &mut values);
            (values, "training pictures")
        }
    };
    let n = (real.len() / (side * side * channels)).min(args.count as usize);
    if n < 2 {
        bail!(
            "{}: fewer than two real pictures to compare with",
            ck.config.data
        );
    }
    let fakes = draw(if is_digits { args.count as usize } else { n })?;
    if is_digits {
        evaluation.digits = Some(digits::scores(&fakes, &real));
    }
    let fakes = &fakes[..n * side * side * channels];
    let pictures = |values| Pictures {
        values,
        side,
        channels,
    };
    let levels = swd(pictures(fakes), pictures(&real), args.seed);
    let mean = levels.iter().map(|l| l.1).sum::<f64>() / levels.len() as f64;
    evaluation.swd = Some(SwdScores {
        levels,
        mean,
        pictures: n,
    });
    evaluation.real = Some(which);
    Ok(evaluation)
}
