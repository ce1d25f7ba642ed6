//! `wgangp-tui train-classifier`: trains the MNIST classifier of the digits' quality scores
//! on a folder's training digits and reports its accuracy on the folder's test digits. The
//! shipped weights were made by the command in `assets/mnist/PROVENANCE.md`.

use anyhow::{Context, Result};

use crate::cli::TrainClassifierArgs;
use crate::data::labelled::Digits;
use crate::quality::digits;
use crate::train::classifier::{self, Schedule};
use crate::util::files::write_atomically;
use crate::util::say;

const TRAIN: [&str; 2] = [
    "train10k-images-idx3-ubyte.gz",
    "train10k-labels-idx1-ubyte.gz",
];
const TEST: [&str; 2] = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
const LEARNING_RATE: f64 = 1e-3;

/// What the classifier reached.
#[derive(Debug, serde::Serialize)]
pub struct Trained {
    pub test_accuracy: f64,
    /// The classifier score of the test digits: the ceiling of a generator's.
    pub test_classifier_score: f64,
    pub train_digits: usize,
    pub test_digits: usize,
    pub epochs: u64,
}

pub fn run(args: &TrainClassifierArgs) -> Result<Trained> {
    let train = Digits::read(&args.mnist, TRAIN)?;
    let test = Digits::read(&args.mnist, TEST)?;
    let schedule = Schedule {
        epochs: args.epochs as usize,
        lr: LEARNING_RATE,
        seed: args.seed,
    };
    let model = classifier::train(&train, schedule, |epoch, loss, model| {
        let tested = if epoch % 5 == 0 || epoch == schedule.epochs {
            let accuracy = digits::accuracy(model, &test.pixels, &test.labels);
            format!(", test accuracy {:.2}%", 100.0 * accuracy)
        } else {
            String::new()
        };
        say(format_args!(
            "epoch {epoch}/{}: loss {loss:.4}{tested}",
            schedule.epochs
        ));
    });
    write_atomically(&args.out, &digits::to_safetensors(&model))
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let readings = digits::read(&model, &test.pixels);
    Ok(Trained {
        test_accuracy: digits::accuracy(&model, &test.pixels, &test.labels),
        test_classifier_score: digits::classifier_score(&readings.probabilities),
        train_digits: train.len(),
        test_digits: test.len(),
        epochs: args.epochs,
    })
}
