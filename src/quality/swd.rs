//! The sliced Wasserstein distance between two sets of pictures, as Progressive GAN measures
//! them (Karras et al. 2018, section 5 and appendix D): each picture becomes a Laplacian
//! pyramid; [`PATCHES_PER_PICTURE`] random 7x7 patches of each level, each channel normalised
//! over the set, are the level's descriptors; the distance between two sets' descriptors is
//! the mean, over [`DIRECTIONS`] random unit directions, of the 1-d Wasserstein distance of
//! their projections. Small is close; per level, fine detail first; reported x 1000 as in the
//! paper. The paper draws 128 patches a picture and 512 directions; half and half as many here
//! keep a score during training to a quarter of the work, on the CPU.
//!
//! Pictures are `count` squares of `side` x `side` pixels of `channels` values, row-major with
//! a pixel's channels together, one after another.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// The side of the patches.
pub const PATCH: usize = 7;
/// Patches drawn from each picture at each level.
pub const PATCHES_PER_PICTURE: usize = 64;
/// Random directions the descriptors are projected on.
pub const DIRECTIONS: usize = 256;

/// A set of pictures.
#[derive(Clone, Copy, Debug)]
pub struct Pictures<'a> {
    pub values: &'a [f32],
    pub side: usize,
    pub channels: usize,
}

impl Pictures<'_> {
    pub fn count(&self) -> usize {
        self.values.len() / (self.side * self.side * self.channels)
    }

    fn picture(&self, i: usize) -> &[f32] {
        let n = self.side * self.side * self.channels;
        &self.values[i * n..(i + 1) * n]
    }
}

/// The distance at each level of the pyramid: (the level's side, distance x 1000), the finest
/// first. The sets are cut to the smaller one's count; the patches and directions follow
/// `seed`.
pub fn swd(a: Pictures, b: Pictures, seed: u64) -> Vec<(usize, f64)> {
    assert_eq!(
        (a.side, a.channels),
        (b.side, b.channels),
        "pictures of one shape"
    );
    let n = a.count().min(b.count());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pyramids = |set: Pictures| -> Vec<Vec<Vec<f32>>> {
        (0..n)
            .map(|i| laplacian_pyramid(set.picture(i), set.side, set.channels))
            .collect()
    };
    let (pa, pb) = (pyramids(a), pyramids(b));
    let sides = level_sides(a.side);
    let channels = a.channels;
    let dim = PATCH * PATCH * channels;
    sides
        .iter()
        .enumerate()
        .map(|(level, &side)| {
            let mut describe = |pyramids: &[Vec<Vec<f32>>]| {
                let levels: Vec<&[f32]> = pyramids.iter().map(|p| p[level].as_slice()).collect();
                let mut d = descriptors(&levels, side, channels, &mut rng);
                normalise(&mut d, channels);
                d
            };
            let (da, db) = (describe(&pa), describe(&pb));
            let directions = random_directions(dim, DIRECTIONS, &mut rng);
            (
                side,
                1000.0 * sliced_wasserstein(&da, &db, dim, &directions),
            )
        })
        .collect()
}

/// The sides of the pyramid's levels: halving down to the smallest side of at least twice a
/// patch (64: 64, 32, 16; 32: 32, 16; MNIST's 28: 28, 14).
pub fn level_sides(side: usize) -> Vec<usize> {
    let mut sides = vec![side];
    let mut s = side;
    while s % 2 == 0 && s / 2 >= 2 * PATCH {
        s /= 2;
        sides.push(s);
    }
    sides
}

/// The 5-tap binomial filter of the Gaussian pyramid (Burt and Adelson), applied along rows and
/// columns, with the picture mirrored at its edges.
const KERNEL: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

fn mirror(i: isize, side: usize) -> usize {
    let last = side as isize - 1;
    let i = if i < 0 { -i } else { i };
    (if i > last { 2 * last - i } else { i }) as usize
}

/// `image` filtered with [`KERNEL`] along both axes, times `gain`.
fn blur(image: &[f32], side: usize, channels: usize, gain: f32) -> Vec<f32> {
    let at = |y: usize, x: usize, c: usize| (y * side + x) * channels + c;
    let mut rows = vec![0.0; image.len()];
    for y in 0..side {
        for x in 0..side {
            for c in 0..channels {
                rows[at(y, x, c)] = (0..5)
                    .map(|k| KERNEL[k] * image[at(y, mirror(x as isize + k as isize - 2, side), c)])
                    .sum();
            }
        }
    }
    let mut out = vec![0.0; image.len()];
    for y in 0..side {
        for x in 0..side {
            for c in 0..channels {
                out[at(y, x, c)] = gain
                    * (0..5)
                        .map(|k| {
                            KERNEL[k] * rows[at(mirror(y as isize + k as isize - 2, side), x, c)]
                        })
                        .sum::<f32>();
            }
        }
    }
    out
}

/// Blurred, then every other pixel: a picture of half the side.
fn downsample(image: &[f32], side: usize, channels: usize) -> Vec<f32> {
    let blurred = blur(image, side, channels, 1.0);
    let half = side / 2;
    let mut out = Vec::with_capacity(half * half * channels);
    for y in 0..half {
        for x in 0..half {
            let at = (2 * y * side + 2 * x) * channels;
            out.extend_from_slice(&blurred[at..at + channels]);
        }
    }
    out
}

/// Twice the side: the pixels at even places, zeros between, blurred with gain 4 (which keeps
/// the brightness).
fn upsample(image: &[f32], side: usize, channels: usize) -> Vec<f32> {
    let double = 2 * side;
    let mut spread = vec![0.0; double * double * channels];
    for y in 0..side {
        for x in 0..side {
            let from = (y * side + x) * channels;
            let to = (2 * y * double + 2 * x) * channels;
            spread[to..to + channels].copy_from_slice(&image[from..from + channels]);
        }
    }
    blur(&spread, double, channels, 4.0)
}

/// The Laplacian pyramid of a picture at [`level_sides`]: each level the picture at that side
/// less the next smaller one brought back up, the last the smallest picture itself.
pub fn laplacian_pyramid(image: &[f32], side: usize, channels: usize) -> Vec<Vec<f32>> {
    let sides = level_sides(side);
    let mut gaussian = vec![image.to_vec()];
    for &s in &sides[..sides.len() - 1] {
        let smaller = downsample(gaussian.last().expect("one level"), s, channels);
        gaussian.push(smaller);
    }
    let mut levels = Vec::with_capacity(sides.len());
    for (l, &s) in sides.iter().enumerate() {
        if l + 1 == sides.len() {
            levels.push(gaussian[l].clone());
        } else {
            let up = upsample(&gaussian[l + 1], s / 2, channels);
            levels.push(gaussian[l].iter().zip(&up).map(|(g, u)| g - u).collect());
        }
    }
    levels
}

/// [`PATCHES_PER_PICTURE`] patches of [`PATCH`] x [`PATCH`] at random places of each of
/// `pictures` (one level each, of `side`), flattened one after another.
fn descriptors(
    pictures: &[&[f32]],
    side: usize,
    channels: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let dim = PATCH * PATCH * channels;
    let mut out = Vec::with_capacity(pictures.len() * PATCHES_PER_PICTURE * dim);
    for picture in pictures {
        for _ in 0..PATCHES_PER_PICTURE {
            let (y0, x0) = (
                rng.gen_range(0..=side - PATCH),
                rng.gen_range(0..=side - PATCH),
            );
            for y in y0..y0 + PATCH {
                let at = (y * side + x0) * channels;
                out.extend_from_slice(&picture[at..at + PATCH * channels]);
            }
        }
    }
    out
}

/// Each channel of the descriptors brought to mean 0 and standard deviation 1 over the set.
fn normalise(descriptors: &mut [f32], channels: usize) {
    for c in 0..channels {
        let values = || descriptors.iter().skip(c).step_by(channels);
        let n = values().count() as f64;
        let mean = values().map(|&v| v as f64).sum::<f64>() / n;
        let var = values().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let std = var.sqrt().max(1e-8);
        for v in descriptors.iter_mut().skip(c).step_by(channels) {
            *v = ((*v as f64 - mean) / std) as f32;
        }
    }
}

/// `count` random unit vectors of `dim` values, one after another.
fn random_directions(dim: usize, count: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut out = Vec::with_capacity(dim * count);
    for _ in 0..count {
        let v: Vec<f32> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        out.extend(v.iter().map(|x| x / norm));
    }
    out
}

/// The mean over `directions` of the 1-d Wasserstein distance between the projections of the
/// rows of `a` and of `b` (rows of `dim` values, as many in each).
pub fn sliced_wasserstein(a: &[f32], b: &[f32], dim: usize, directions: &[f32]) -> f64 {
    let project = |rows: &[f32], direction: &[f32]| -> Vec<f32> {
        rows.chunks_exact(dim)
            .map(|row| dot(row, direction))
            .collect()
    };
    let count = directions.len() / dim;
    let total: f64 = directions
        .chunks_exact(dim)
        .map(|direction| wasserstein_1d(project(a, direction), project(b, direction)))
        .sum();
    total / count as f64
}

/// `a . b`, summed in eight lanes (so that it vectorises).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The Wasserstein-1 distance between two equal-sized samples of a line: the mean gap between
/// their sorted values.
pub fn wasserstein_1d(mut a: Vec<f32>, mut b: Vec<f32>) -> f64 {
    assert_eq!(a.len(), b.len(), "samples of one size");
    a.sort_unstable_by(f32::total_cmp);
    b.sort_unstable_by(f32::total_cmp);
    let sum: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).abs() as f64).sum();
    sum / a.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{EMBEDDED_MNIST, idx::parse_images};

    /// A picture of one colour has no detail: every level but the last is zero, and the last
    /// is the colour (the filters keep brightness, at the edges too).
    #[test]
    fn a_flat_picture_has_only_its_coarsest_level() {
        let image: Vec<f32> = (0..32 * 32).flat_map(|_| [0.2, 0.5, 0.9]).collect();
        let levels = laplacian_pyramid(&image, 32, 3);
        assert_eq!(levels.len(), 2);
        assert!(levels[0].iter().all(|v| v.abs() < 1e-6));
        assert_eq!(levels[1].len(), 16 * 16 * 3);
        for px in levels[1].chunks(3) {
            assert!(
                (px[0] - 0.2).abs() < 1e-6 && (px[2] - 0.9).abs() < 1e-6,
                "{px:?}"
            );
        }
        assert_eq!(level_sides(64), [64, 32, 16]);
        assert_eq!(level_sides(28), [28, 14]);
    }

    /// The mean gap of the sorted samples is the area between their distribution functions,
    /// computed here step by step over the merged values.
    #[test]
    fn the_1d_distance_is_the_area_between_the_distribution_functions() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let a: Vec<f32> = (0..200)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        let b: Vec<f32> = (0..200)
            .map(|_| 0.7 + 2.0 * rng.sample::<f32, _>(StandardNormal))
            .collect();
        let mut merged: Vec<f32> = a.iter().chain(&b).copied().collect();
        merged.sort_unstable_by(f32::total_cmp);
        let cdf = |s: &[f32], x: f32| s.iter().filter(|&&v| v <= x).count() as f64 / s.len() as f64;
        let area: f64 = merged
            .windows(2)
            .map(|w| (cdf(&a, w[0]) - cdf(&b, w[0])).abs() * (w[1] - w[0]) as f64)
            .sum();
        let got = wasserstein_1d(a, b);
        assert!((got - area).abs() < 1e-4 * area, "{got} vs {area}");
    }

    /// A set against itself moved by t: along direction d every projection moves by t.d, so
    /// the distance is the mean of |t.d| over the directions.
    #[test]
    fn a_moved_set_is_as_far_as_its_move_along_each_direction() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let dim = 6;
        let a: Vec<f32> = (0..300 * dim).map(|_| rng.sample(StandardNormal)).collect();
        let t = [0.5f32, -1.0, 0.0, 2.0, 0.25, -0.3];
        let b: Vec<f32> = a
            .chunks(dim)
            .flat_map(|r| r.iter().zip(&t).map(|(x, s)| x + s))
            .collect();
        let directions = random_directions(dim, 64, &mut rng);
        let expected: f64 = directions
            .chunks(dim)
            .map(|d| d.iter().zip(&t).map(|(x, s)| x * s).sum::<f32>().abs() as f64)
            .sum::<f64>()
            / 64.0;
        let got = sliced_wasserstein(&a, &b, dim, &directions);
        assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
    }

    /// `count` MNIST digits from `first`, in [0, 1].
    fn digits(first: usize, count: usize) -> Vec<f32> {
        let images = parse_images(EMBEDDED_MNIST).unwrap();
        images.pixels[first * 784..(first + count) * 784]
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect()
    }

    /// Each digit averaged over a (2r+1)^2 box.
    fn box_blur(values: &[f32], r: isize) -> Vec<f32> {
        values
            .chunks(784)
            .flat_map(|img| {
                (0..784).map(move |i| {
                    let (y, x) = ((i / 28) as isize, (i % 28) as isize);
                    let mut sum = 0.0;
                    for dy in -r..=r {
                        for dx in -r..=r {
                            let (yy, xx) = ((y + dy).clamp(0, 27), (x + dx).clamp(0, 27));
                            sum += img[(yy * 28 + xx) as usize];
                        }
                    }
                    sum / ((2 * r + 1) * (2 * r + 1)) as f32
                })
            })
            .collect()
    }

    /// Two samples of MNIST are close; blurred digits are further, the more blurred the
    /// further; noisy digits far.
    #[test]
    fn mnist_against_mnist_blurred_and_noisy() {
        let (real, other) = (digits(0, 300), digits(5000, 300));
        fn set(values: &[f32]) -> Pictures<'_> {
            Pictures {
                values,
                side: 28,
                channels: 1,
            }
        }
        let mean = |d: Vec<(usize, f64)>| d.iter().map(|l| l.1).sum::<f64>() / d.len() as f64;
        let same = mean(swd(set(&real), set(&other), 1));
        let blurred: Vec<f64> = [1, 2, 3]
            .iter()
            .map(|&r| mean(swd(set(&real), set(&box_blur(&other, r)), 1)))
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let noisy: Vec<f32> = other
            .iter()
            .map(|v| v + 0.3 * rng.sample::<f32, _>(StandardNormal))
            .collect();
        let noise = mean(swd(set(&real), set(&noisy), 1));
        assert!(blurred[0] > 2.0 * same, "same {same}, blurred {blurred:?}");
        assert!(blurred.windows(2).all(|w| w[1] > w[0]), "{blurred:?}");
        assert!(noise > 2.0 * same, "same {same}, noise {noise}");
    }
}
