//! The digit classifier shipped in `assets/mnist` and the scores made with it, on MNIST's real
//! test digits.

use std::path::Path;

use wgangp_tui::data::labelled::{Digits, TEST};
use wgangp_tui::model::classifier::FEATURES;
use wgangp_tui::quality::digits::{accuracy, classifier_score, frechet_distance, read, shipped};

fn test_digits() -> Digits {
    Digits::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/mnist")
            .as_path(),
        TEST,
    )
    .expect("assets/mnist holds the test digits")
}

#[test]
fn the_shipped_classifier_reads_at_least_99_percent_of_the_test_digits_right() {
    let digits = test_digits();
    assert_eq!(digits.len(), 10_000);
    let accuracy = accuracy(shipped(), &digits.pixels, &digits.labels);
    assert!(accuracy >= 0.99, "test accuracy {accuracy}");
}

#[test]
fn real_digits_score_near_ten_and_noise_scores_far_from_them() {
    let digits = test_digits();
    let half = 2000 * 784;
    let (a, b) = (&digits.pixels[..half], &digits.pixels[half..2 * half]);
    let (a, b) = (read(shipped(), a), read(shipped(), b));
    // Ten digits, about as many of each, read with confidence.
    let real_score = classifier_score(&a.probabilities);
    assert!(
        real_score > 9.0,
        "classifier score of real digits {real_score}"
    );

    // Strokes of the same digits at random places: no digit in them.
    let mut scrambled = digits.pixels[half..2 * half].to_vec();
    for picture in scrambled.chunks_mut(784) {
        picture.reverse();
        picture.rotate_left(300);
    }
    let scrambled = read(shipped(), &scrambled);
    let real_gap = frechet_distance(&a.features, &b.features, FEATURES);
    let scrambled_gap = frechet_distance(&a.features, &scrambled.features, FEATURES);
    assert!(
        scrambled_gap > 20.0 * real_gap,
        "two halves of the test digits {real_gap}, test digits and scrambled ones {scrambled_gap}"
    );
    let scrambled_score = classifier_score(&scrambled.probabilities);
    assert!(
        scrambled_score < real_score - 1.0,
        "{scrambled_score} vs {real_score}"
    );
}

#[test]
fn an_untrained_generators_pictures_have_a_finite_distance_from_the_digits() {
    use dfdx::prelude::*;
    use wgangp_tui::model::Generator;
    use wgangp_tui::model::mnist::MnistGenerator;
    let digits = test_digits();
    let real = read(shipped(), &digits.pixels[..200 * 784]);
    // Pictures all nearly alike: most of their features' covariance is close to zero.
    for seed in 0..6 {
        let dev = Cpu::seed_from_u64(seed);
        let generator = MnistGenerator::<f32, Cpu>::build(&dev);
        let z: Tensor<(usize, Const<128>), f32, Cpu> = dev.sample_normal_like(&(200, Const));
        let fakes = read(shipped(), &generator.generate(z).as_vec());
        let d = frechet_distance(&fakes.features, &real.features, FEATURES);
        assert!(d.is_finite() && d > 0.0, "seed {seed}: {d}");
    }
}
