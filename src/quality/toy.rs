//! The toy mixtures' measures (as in Srivastava et al. 2017, VEEGAN): each point belongs to its
//! nearest mode and is of high quality when within three standard deviations of it; a mode is
//! covered when it holds at least [`COVERED_SHARE`] of the points as high-quality ones; and the
//! histogram of the high-quality points over the modes is compared with the uniform one (KL).

use crate::config::ToySet;
use crate::data::toy::{centres, mode_std};
pub use crate::event::ToyScores;

/// A mode is covered when this share of all points are high-quality points of it (1%: 25 of
/// 2,500 points, an eighth of what each of 8 modes would hold in a perfect sample).
pub const COVERED_SHARE: f64 = 0.01;

/// How far from its mode a high-quality point may be, in standard deviations.
pub const HIGH_QUALITY_STDS: f64 = 3.0;

/// The scores of `points` (x, y interleaved) against the mixture `set`; `None` for a set
/// without modes (the Swiss roll).
pub fn score(set: ToySet, points: &[f32]) -> Option<ToyScores> {
    let std = mode_std(set)?;
    let centres = centres(set);
    let radius = HIGH_QUALITY_STDS * std as f64;
    let mut per_mode = vec![0usize; centres.len()];
    let n = points.len() / 2;
    for p in points.chunks_exact(2) {
        let distance = |c: &[f32; 2]| (p[0] as f64 - c[0] as f64).hypot(p[1] as f64 - c[1] as f64);
        let (nearest, d) = centres
            .iter()
            .enumerate()
            .map(|(i, c)| (i, distance(c)))
            .min_by(|a, b| a.1.total_cmp(&b.1))?;
        if d <= radius {
            per_mode[nearest] += 1;
        }
    }
    let good: usize = per_mode.iter().sum();
    let modes = centres.len();
    let mode_kl = if good == 0 {
        (modes as f64).ln()
    } else {
        per_mode
            .iter()
            .filter(|&&k| k > 0)
            .map(|&k| {
                let p = k as f64 / good as f64;
                p * (p * modes as f64).ln()
            })
            .sum()
    };
    Some(ToyScores {
        points: n,
        high_quality: good as f64 / n.max(1) as f64,
        modes_covered: per_mode
            .iter()
            .filter(|&&k| k as f64 >= COVERED_SHARE * n as f64 && k > 0)
            .count(),
        modes,
        mode_kl,
        per_mode,
    })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::data::toy::sample;

    fn real(set: ToySet, n: usize) -> Vec<f32> {
        let mut out = Vec::new();
        sample(set, &mut ChaCha8Rng::seed_from_u64(5), n, &mut out);
        out
    }

    #[test]
    fn real_points_cover_every_mode_evenly() {
        for (set, modes) in [
            (ToySet::EightGaussians, 8),
            (ToySet::TwentyFiveGaussians, 25),
        ] {
            let s = score(set, &real(set, 2500)).unwrap();
            assert_eq!((s.modes, s.modes_covered, s.points), (modes, modes, 2500));
            // Within 3 standard deviations in 2-d: 1 - exp(-9/2) = 98.9% of a Gaussian.
            assert!(s.high_quality > 0.97, "{s:?}");
            assert!(s.mode_kl < 0.02, "{s:?}");
        }
        assert_eq!(score(ToySet::Swissroll, &real(ToySet::Swissroll, 10)), None);
    }

    #[test]
    fn a_collapsed_generator_covers_one_mode() {
        let centre = centres(ToySet::EightGaussians)[3];
        let points: Vec<f32> = (0..1000).flat_map(|_| centre).collect();
        let s = score(ToySet::EightGaussians, &points).unwrap();
        assert_eq!(
            (s.modes_covered, s.per_mode[3], s.high_quality),
            (1, 1000, 1.0)
        );
        assert!((s.mode_kl - 8f64.ln()).abs() < 1e-12, "{s:?}");
    }

    #[test]
    fn points_between_the_modes_are_of_low_quality() {
        // The real points pulled halfway to the origin: off every mode.
        let points: Vec<f32> = real(ToySet::EightGaussians, 2500)
            .iter()
            .map(|v| v * 0.5)
            .collect();
        let s = score(ToySet::EightGaussians, &points).unwrap();
        assert_eq!((s.high_quality, s.modes_covered), (0.0, 0));
        // Shifted by one standard deviation: most stay, fewer than unshifted.
        let std = mode_std(ToySet::EightGaussians).unwrap();
        let shifted: Vec<f32> = real(ToySet::EightGaussians, 2500)
            .chunks(2)
            .flat_map(|p| [p[0] + std, p[1]])
            .collect();
        let (near, far) = (
            score(ToySet::EightGaussians, &real(ToySet::EightGaussians, 2500)).unwrap(),
            score(ToySet::EightGaussians, &shifted).unwrap(),
        );
        assert!(
            far.high_quality < near.high_quality - 0.02,
            "{far:?} {near:?}"
        );
        assert_eq!(far.modes_covered, 8);
    }
}
