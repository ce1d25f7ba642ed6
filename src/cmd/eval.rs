//! `wgangp-tui eval RUN_OR_CHECKPOINT`: how good a checkpoint's generator is, from samples it
//! draws now ([`crate::quality`]); prints one JSON line.

use anyhow::{Result, bail};
use serde::Serialize;

use super::sample::{chosen_generator, generate};
use crate::checkpoint::Checkpoint;
use crate::cli::EvalArgs;
use crate::config::DataSpec;
use crate::quality::toy::{ToyScores, score};
use crate::train::families::check_checkpoint;

/// What `eval` prints.
#[derive(Serialize)]
pub struct Evaluation {
    pub checkpoint: String,
    pub step: u64,
    pub data: String,
    pub seed: u64,
    /// `averaged generator` or `generator` (the raw one).
    pub generator: &'static str,
    pub toy: ToyScores,
}

pub fn run(args: &EvalArgs) -> Result<Evaluation> {
    let (ck, folder) = Checkpoint::load(&args.checkpoint)?;
    check_checkpoint(&ck).map_err(anyhow::Error::msg)?;
    let DataSpec::Toy(set) = ck.config.data else {
        bail!(
            "{}: eval scores the toy mixtures' checkpoints for now (this run trained on {})",
            folder.display(),
            ck.config.data
        );
    };
    let mut points = Vec::with_capacity(2 * args.count as usize);
    generate(
        &ck,
        args.raw,
        args.count as usize,
        args.seed,
        &mut |chunk| {
            points.extend_from_slice(chunk);
            Ok(())
        },
    )?;
    let Some(toy) = score(set, &points) else {
        bail!(
            "{}: {} has no modes to score (the measures are the Gaussian mixtures')",
            folder.display(),
            set.name()
        );
    };
    Ok(Evaluation {
        checkpoint: folder.display().to_string(),
        step: ck.step,
        data: ck.config.data.to_string(),
        seed: args.seed,
        generator: chosen_generator(&ck, args.raw).1,
        toy,
    })
}
