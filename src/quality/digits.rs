//! The digits' quality scores, on the features of the project's own MNIST classifier
//! (`model::classifier`, weights in `assets/mnist/classifier.safetensors`, see the
//! `PROVENANCE.md` there):
//! - the Frechet distance between Gaussians fitted to the features of generated and of real
//!   pictures (FID's formula, Heusel et al. 2017, on this classifier's 128 features);
//! - the classifier score, `exp(mean KL(p(y|x) || p(y)))` (the Inception score's formula,
//!   Salimans et al. 2016): 10 for confident predictions spread evenly over the ten digits, 1
//!   for pictures all read as one digit or read as nothing.

use std::sync::OnceLock;

use dfdx::prelude::*;
use nalgebra::{DMatrix, DVector};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

use crate::checkpoint::NamedTensor;
pub use crate::event::DigitScores;
use crate::model::classifier::{CLASSES, DigitClassifier, FEATURES};
use crate::model::mnist::MNIST_PIXELS;
use crate::model::params::{load_named_params, named_params};

/// The shipped classifier's weights.
static SHIPPED: &[u8] = include_bytes!("../../assets/mnist/classifier.safetensors");
/// Pictures per forward pass.
const CHUNK: usize = 256;

/// The shipped classifier, read once.
pub fn shipped() -> &'static DigitClassifier<f32, Cpu> {
    static MODEL: OnceLock<DigitClassifier<f32, Cpu>> = OnceLock::new();
    MODEL.get_or_init(|| {
        from_safetensors(SHIPPED).expect("the shipped classifier matches its architecture")
    })
}

/// The classifier's weights as safetensors bytes.
pub fn to_safetensors(model: &DigitClassifier<f32, Cpu>) -> Vec<u8> {
    let named = named_params(model);
    let views = named.iter().map(|t| {
        let bytes: &[u8] = bytemuck::cast_slice(&t.values);
        let view = TensorView::new(Dtype::F32, t.shape.clone(), bytes).expect("shape fits data");
        (t.name.clone(), view)
    });
    safetensors::serialize(views, None).expect("f32 tensors serialise")
}

/// A classifier from safetensors bytes; the error says what does not fit.
pub fn from_safetensors(bytes: &[u8]) -> Result<DigitClassifier<f32, Cpu>, String> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(format!("tensor {name} is {:?}, not F32", view.dtype()));
        }
        tensors.push(NamedTensor {
            name,
            shape: view.shape().to_vec(),
            values: bytemuck::pod_collect_to_vec(view.data()),
        });
    }
    let mut model = DigitClassifier::<f32, Cpu>::build(&Cpu::default());
    load_named_params(&mut model, &tensors)?;
    Ok(model)
}

/// The classifier's reading of some pictures: per picture, its features and the ten
/// classes' probabilities.
pub struct Readings {
    pub features: Vec<f32>,
    pub probabilities: Vec<f32>,
}

/// Runs `model` on `pictures` (rows of [`MNIST_PIXELS`] values in [0, 1]).
pub fn read(model: &DigitClassifier<f32, Cpu>, pictures: &[f32]) -> Readings {
    let dev = Cpu::default();
    let mut readings = Readings {
        features: Vec::with_capacity(pictures.len() / MNIST_PIXELS * FEATURES),
        probabilities: Vec::with_capacity(pictures.len() / MNIST_PIXELS * CLASSES),
    };
    for rows in pictures.chunks(CHUNK * MNIST_PIXELS) {
        let n = rows.len() / MNIST_PIXELS;
        let x = dev.tensor_from_vec(rows.to_vec(), (n, Const::<MNIST_PIXELS>));
        let out = model.classify(x, None);
        readings.features.extend(out.features.as_vec());
        readings
            .probabilities
            .extend(out.logits.softmax::<Axis<1>>().as_vec());
    }
    readings
}

impl Readings {
    /// The class each picture is read as.
    pub fn predictions(&self) -> Vec<u8> {
        self.probabilities
            .chunks(CLASSES)
            .map(|p| (0..CLASSES).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap() as u8)
            .collect()
    }
}

/// The share of `labels` the model reads right.
pub fn accuracy(model: &DigitClassifier<f32, Cpu>, pictures: &[f32], labels: &[u8]) -> f64 {
    let predicted = read(model, pictures).predictions();
    let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    right as f64 / labels.len() as f64
}

/// `exp(mean_x KL(p(y|x) || p(y)))`, `p(y)` the mean of the rows of `probabilities` (rows of
/// [`CLASSES`]).
pub fn classifier_score(probabilities: &[f32]) -> f64 {
    let rows = probabilities.len() / CLASSES;
    let mut marginal = [0.0f64; CLASSES];
    for p in probabilities.chunks(CLASSES) {
        for (m, &q) in marginal.iter_mut().zip(p) {
            *m += q as f64 / rows as f64;
        }
    }
    let mut kl = 0.0;
    for p in probabilities.chunks(CLASSES) {
        for (&q, &m) in p.iter().zip(&marginal) {
            let q = q as f64;
            if q > 0.0 {
                kl += q * (q.ln() - m.ln());
            }
        }
    }
    (kl / rows as f64).exp()
}

/// The squared Frechet distance between Gaussians fitted to two sets of rows of `dim` values:
/// `|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`.
pub fn frechet_distance(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let (mu_a, s_a) = gaussian(a, dim);
    let (mu_b, s_b) = gaussian(b, dim);
    // tr (S_a S_b)^(1/2) = tr (R S_b R)^(1/2) with R = S_a^(1/2), which is symmetric: its
    // square root's trace is the sum of the square roots of its eigenvalues.
    let root_a = symmetric_sqrt(&s_a);
    let middle = &root_a * &s_b * &root_a;
    let middle = (&middle + middle.transpose()) * 0.5;
    let cross: f64 = symmetric_eigen(middle)
        .0
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .sum();
    (mu_a - mu_b).norm_squared() + s_a.trace() + s_b.trace() - 2.0 * cross
}

/// The mean and the covariance (divided by n - 1) of rows of `dim` values.
fn gaussian(rows: &[f32], dim: usize) -> (DVector<f64>, DMatrix<f64>) {
    let n = rows.len() / dim;
    assert!(n >= 2, "a covariance needs two rows");
    let x = DMatrix::from_row_iterator(n, dim, rows.iter().map(|&v| v as f64));
    let mean = x.row_mean().transpose();
    let mut centred = x;
    for mut row in centred.row_iter_mut() {
        row -= mean.transpose();
    }
    let cov = centred.transpose() * &centred / (n as f64 - 1.0);
    (mean, cov)
}

/// The symmetric square root of a symmetric positive semi-definite matrix (eigenvalues below
/// zero, rounding's, taken as zero).
fn symmetric_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let (values, vectors) = symmetric_eigen(m.clone());
    let roots = values.map(|l| l.max(0.0).sqrt());
    &vectors * DMatrix::from_diagonal(&roots) * vectors.transpose()
}

/// The eigenvalues and eigenvectors (columns) of a symmetric matrix, by cyclic Jacobi
/// rotations. nalgebra's `symmetric_eigen` (QR with implicit shifts) returned NaN and infinite
/// eigenvalues on covariances of real features (many near-zero variances:
/// `tests/digits.rs` has such a case); Jacobi rotations only ever shrink the off-diagonal and
/// converge on any symmetric matrix.
fn symmetric_eigen(mut a: DMatrix<f64>) -> (DVector<f64>, DMatrix<f64>) {
    let n = a.nrows();
    let mut v = DMatrix::identity(n, n);
    let scale = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[(i, j)] * a[(i, j)])
            .sum();
        if off.sqrt() <= 1e-14 * scale || scale == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[(p, q)];
                if apq == 0.0 {
                    continue;
                }
                // The rotation that zeroes a[p][q] (Numerical Recipes' stable form).
                let theta = (a[(q, q)] - a[(p, p)]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[(k, p)], a[(k, q)]);
                    a[(k, p)] = c * akp - s * akq;
                    a[(k, q)] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[(p, k)], a[(q, k)]);
                    a[(p, k)] = c * apk - s * aqk;
                    a[(q, k)] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[(k, p)], v[(k, q)]);
                    v[(k, p)] = c * vkp - s * vkq;
                    v[(k, q)] = s * vkp + c * vkq;
                }
            }
        }
    }
    (a.diagonal(), v)
}

/// The scores of generated `fakes` against `reals` (rows of [`MNIST_PIXELS`] values in
/// [0, 1]), on the shipped classifier.
pub fn scores(fakes: &[f32], reals: &[f32]) -> DigitScores {
    let model = shipped();
    let (fake, real) = (read(model, fakes), read(model, reals));
    DigitScores {
        frechet: frechet_distance(&fake.features, &real.features, FEATURES),
        classifier_score: classifier_score(&fake.probabilities),
        pictures: fakes.len() / MNIST_PIXELS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    /// `n` rows drawn from N(mean, L L^T), `lower` the rows of L.
    fn normal_rows(n: usize, mean: &[f64], lower: &[&[f64]], seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = mean.len();
        let mut out = Vec::with_capacity(n * d);
        for _ in 0..n {
            let z: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
            for i in 0..d {
                let lz: f64 = (0..d).map(|j| lower[i][j] * z[j]).sum();
                out.push((mean[i] + lz) as f32);
            }
        }
        out
    }

    #[test]
    fn frechet_distance_of_diagonal_gaussians_is_the_mean_gap_plus_the_spread_gap() {
        // Commuting covariances: |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2.
        let a = normal_rows(
            40_000,
            &[0.0, 1.0, -1.0],
            &[&[1.0, 0.0, 0.0], &[0.0, 2.0, 0.0], &[0.0, 0.0, 0.5]],
            1,
        );
        let b = normal_rows(
            40_000,
            &[1.0, 1.0, 1.0],
            &[&[3.0, 0.0, 0.0], &[0.0, 2.0, 0.0], &[0.0, 0.0, 1.5]],
            2,
        );
        let want = 1.0 + 4.0 + 4.0 + 1.0;
        let got = frechet_distance(&a, &b, 3);
        assert!((got - want).abs() < 0.03 * want, "{got} vs {want}");
    }

    #[test]
    fn frechet_distance_of_correlated_gaussians_matches_the_two_by_two_closed_form() {
        // S_a = L L^T with L = [[1, 0], [1, 1]]: [[1, 1], [1, 2]]; S_b = diag(4, 1). For a 2x2
        // M with positive eigenvalues, tr M^(1/2) = sqrt(tr M + 2 sqrt(det M)).
        let a = normal_rows(60_000, &[0.0, 0.0], &[&[1.0, 0.0], &[1.0, 1.0]], 3);
        let b = normal_rows(60_000, &[0.0, 0.5], &[&[2.0, 0.0], &[0.0, 1.0]], 4);
        let m = [[4.0, 1.0], [4.0, 2.0]]; // S_a S_b
        let (tr, det) = (m[0][0] + m[1][1], m[0][0] * m[1][1] - m[0][1] * m[1][0]);
        let want = 0.25 + 3.0 + 5.0 - 2.0 * (tr + 2.0 * f64::sqrt(det)).sqrt();
        let got = frechet_distance(&a, &b, 2);
        assert!((got - want).abs() < 0.03 * want.max(1.0), "{got} vs {want}");
    }

    #[test]
    fn frechet_distance_of_a_set_from_itself_is_zero() {
        let a = normal_rows(
            500,
            &[1.0, 2.0, 3.0, 4.0],
            &[
                &[1.0, 0.0, 0.0, 0.0],
                &[0.5, 1.0, 0.0, 0.0],
                &[0.0, 0.3, 1.0, 0.0],
                &[0.2, 0.0, 0.1, 1.0],
            ],
            5,
        );
        assert!(frechet_distance(&a, &a, 4).abs() < 1e-6);
    }

    #[test]
    fn features_that_are_zero_on_every_row_change_nothing() {
        // Dead ReLU features: their covariance rows and columns are exact zeros.
        let lower: Vec<Vec<f64>> = (0..6)
            .map(|i| {
                (0..6)
                    .map(|j| {
                        if j <= i {
                            1.0 / (1 + i + j) as f64
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect();
        let lower: Vec<&[f64]> = lower.iter().map(|r| r.as_slice()).collect();
        let a = normal_rows(300, &[0.0; 6], &lower, 6);
        let b = normal_rows(300, &[0.5; 6], &lower, 7);
        let padded = |rows: &[f32]| -> Vec<f32> {
            rows.chunks(6)
                .flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(0.0, 122)))
                .collect()
        };
        let small = frechet_distance(&a, &b, 6);
        let padded = frechet_distance(&padded(&a), &padded(&b), 128);
        assert!((small - padded).abs() < 1e-3, "{small} vs {padded}");
    }

    #[test]
    fn classifier_score_is_ten_for_confident_even_readings_and_one_for_a_single_digit() {
        let one_hot = |class: usize| (0..CLASSES).map(move |c| if c == class { 1.0 } else { 0.0 });
        let even: Vec<f32> = (0..100).flat_map(|i| one_hot(i % CLASSES)).collect();
        assert!((classifier_score(&even) - 10.0).abs() < 1e-9);
        let single: Vec<f32> = (0..100).flat_map(|_| one_hot(3)).collect();
        assert!((classifier_score(&single) - 1.0).abs() < 1e-9);
        let unsure = vec![0.1f32; 100 * CLASSES];
        assert!((classifier_score(&unsure) - 1.0).abs() < 1e-6);
        // Half the pictures read as 0, half as 1: two classes' worth.
        let two: Vec<f32> = (0..100).flat_map(|i| one_hot(i % 2)).collect();
        assert!((classifier_score(&two) - 2.0).abs() < 1e-9);
    }
}
