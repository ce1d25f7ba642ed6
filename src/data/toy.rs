//! The paper's toy 2-d data sets, sampled on the fly the way its code does
//! (`gan_toy.py` of Gulrajani et al.).

use rand::Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::config::ToySet;

/// The mixtures as the paper's code builds them: centres before scaling, noise std, and the
/// divisor applied to every point afterwards.
fn mixture(set: ToySet) -> (Vec<(f64, f64)>, f64, f64) {
    match set {
        ToySet::EightGaussians => {
            let s = std::f64::consts::FRAC_1_SQRT_2;
            let unit = [
                (1.0, 0.0),
                (-1.0, 0.0),
                (0.0, 1.0),
                (0.0, -1.0),
                (s, s),
                (s, -s),
                (-s, s),
                (-s, -s),
            ];
            (
                unit.iter().map(|&(x, y)| (2.0 * x, 2.0 * y)).collect(),
                0.02,
                1.414,
            )
        }
        ToySet::TwentyFiveGaussians => {
            let grid =
                (-2..=2).flat_map(|i| (-2..=2).map(move |j| ((2 * i) as f64, (2 * j) as f64)));
            (grid.collect(), 0.05, 2.828)
        }
        ToySet::Swissroll => (Vec::new(), 0.25, 7.5),
    }
}

/// The mode centres of the Gaussian mixtures in data space (empty for the swiss roll).
pub fn centres(set: ToySet) -> Vec<[f32; 2]> {
    let (centres, _, scale) = mixture(set);
    centres
        .iter()
        .map(|&(x, y)| [(x / scale) as f32, (y / scale) as f32])
        .collect()
}

/// The standard deviation of each mode of a Gaussian mixture in data space (`None` for the
/// swiss roll).
pub fn mode_std(set: ToySet) -> Option<f32> {
    let (centres, std, scale) = mixture(set);
    (!centres.is_empty()).then_some((std / scale) as f32)
}

fn normal<R: Rng>(rng: &mut R) -> f64 {
    StandardNormal.sample(rng)
}

/// Appends `n` points (x, y interleaved) to `out`.
pub fn sample<R: Rng>(set: ToySet, rng: &mut R, n: usize, out: &mut Vec<f32>) {
    match set {
        ToySet::EightGaussians | ToySet::TwentyFiveGaussians => {
            let (centres, std, scale) = mixture(set);
            let pick = Uniform::new(0, centres.len());
            for _ in 0..n {
                let (cx, cy) = centres[pick.sample(rng)];
                let x = cx + std * normal(rng);
                let y = cy + std * normal(rng);
                out.extend([(x / scale) as f32, (y / scale) as f32]);
            }
        }
        ToySet::Swissroll => {
            // sklearn's make_swiss_roll(noise=0.25), columns [0, 2], divided by 7.5.
            let (_, noise, scale) = mixture(set);
            let u = Uniform::new(0.0, 1.0);
            for _ in 0..n {
                let t = 1.5 * std::f64::consts::PI * (1.0 + 2.0 * u.sample(rng));
                let x = t * t.cos() + noise * normal(rng);
                let y = t * t.sin() + noise * normal(rng);
                out.extend([(x / scale) as f32, (y / scale) as f32]);
            }
        }
    }
}
