//! The watchdog: reads a run's figures as they come and says, in a sentence with something to
//! try, when they look like a run going wrong. Each kind of alert fires once, and again only
//! after the figures were back to normal in between.
//!
//! The thresholds (README, "The watchdog"):
//! - the mean of `||grad D(x_hat)||` over the last [`WINDOW`] records outside
//!   [[`NORM_LOW`], [`NORM_HIGH`]] (penalty modes only; clipping does not aim at 1);
//! - the Wasserstein estimate's mean over the last [`WINDOW`] records below 0;
//! - the Wasserstein estimate's mean over blocks of [`BLOCK`] steps rising [`RISES`] times in a
//!   row to more than [`GROWTH`] times where it started;
//! - the fixed-noise samples' mean pairwise distance below [`SPREAD_LOW`] of the real ones';
//! - the toy measures' share of high-quality points falling at [`FALLS`] evaluations in a row,
//!   by [`QUALITY_DROP`] or more in all.
//!
//! None before step [`WARM_UP`]: the first steps of every run look like trouble. An alert
//! re-arms once the figures are back a [`MARGIN`] inside its threshold (for the estimate below
//! 0: the whole window above 0).

use std::collections::VecDeque;

use crate::config::PenaltyMode;
use crate::event::{Alert, AlertKind, EvalRecord, SampleSet, StepMetrics};

pub const WARM_UP: u64 = 200;
pub const WINDOW: usize = 100;
/// A factor of three either way: the toy runs' default lambda (0.1) keeps the norm near 2.
pub const NORM_LOW: f64 = 1.0 / 3.0;
pub const NORM_HIGH: f64 = 3.0;
/// How far back inside a threshold the figures must come before its alert re-arms (a
/// factor).
pub const MARGIN: f64 = 1.5;
pub const BLOCK: u64 = 250;
pub const RISES: usize = 3;
pub const GROWTH: f64 = 2.0;
pub const SPREAD_LOW: f64 = 0.1;
pub const FALLS: usize = 3;
pub const QUALITY_DROP: f64 = 0.1;

#[derive(Default)]
pub struct Watchdog {
    norms: VecDeque<f64>,
    estimates: VecDeque<f64>,
    /// Means of the Wasserstein estimate over whole blocks of [`BLOCK`] steps, and the block
    /// being summed (its index, sum, count).
    block_means: Vec<f64>,
    block: Option<(u64, f64, usize)>,
    /// The toy measures' share of high-quality points at each evaluation.
    quality: Vec<f64>,
    /// The kinds that fired and have not been back to normal since.
    raised: Vec<AlertKind>,
}

impl Watchdog {
    pub fn new() -> Self {
        Self::default()
    }

    /// An alert of `kind` when `bad` and not raised already; a raised kind re-arms only once the
    /// figures are `normal` again (a margin inside the threshold, so that figures hovering at it
    /// do not alert again and again).
    fn check(
        &mut self,
        (bad, normal): (bool, bool),
        kind: AlertKind,
        step: u64,
        message: impl FnOnce() -> String,
    ) -> Option<Alert> {
        let raised = self.raised.iter().position(|&k| k == kind);
        match (bad, raised) {
            (true, None) => {
                self.raised.push(kind);
                Some(Alert {
                    step,
                    kind,
                    message: message(),
                })
            }
            (false, Some(i)) if normal => {
                self.raised.remove(i);
                None
            }
            _ => None,
        }
    }

    /// A step's figures.
    pub fn on_metrics(&mut self, m: &StepMetrics) -> Vec<Alert> {
        let push = |window: &mut VecDeque<f64>, v: f64| {
            window.push_back(v);
            if window.len() > WINDOW {
                window.pop_front();
            }
        };
        push(&mut self.norms, m.grad_norm_mean);
        push(&mut self.estimates, m.wasserstein);
        let block = m.step / BLOCK;
        match &mut self.block {
            Some((index, sum, count)) if *index == block => {
                *sum += m.wasserstein;
                *count += 1;
            }
            current => {
                if let Some((_, sum, count)) = current.take() {
                    self.block_means.push(sum / count as f64);
                }
                *current = Some((block, m.wasserstein, 1));
            }
        }
        let mut alerts = Vec::new();
        if m.step < WARM_UP || self.norms.len() < WINDOW {
            return alerts;
        }
        let mean = |w: &VecDeque<f64>| w.iter().sum::<f64>() / w.len() as f64;
        let norm = mean(&self.norms);
        let penalised = m.penalty_mode != PenaltyMode::Clip;
        let far = penalised && !(NORM_LOW..=NORM_HIGH).contains(&norm);
        let near = !penalised || (NORM_LOW * MARGIN..=NORM_HIGH / MARGIN).contains(&norm);
        alerts.extend(self.check((far, near), AlertKind::GradientNorm, m.step, || {
            let advice = if norm > NORM_HIGH {
                "raise lambda (+) or lower the learning rates ([)"
            } else {
                "lower lambda (-) or give the critic more steps (})"
            };
            format!(
                "the critic's gradient norm on the interpolates has averaged {norm:.2} over the \
                 last {WINDOW} records, far from the 1 the penalty aims at: {advice}"
            )
        }));
        let estimate = mean(&self.estimates);
        let positive = self.estimates.iter().all(|&w| w > 0.0);
        alerts.extend(self.check(
            (estimate < 0.0, positive),
            AlertKind::WassersteinNegative,
            m.step,
            || {
                format!(
                    "the Wasserstein estimate has averaged {estimate:.3} over the last {WINDOW} \
                 records: below 0, the critic scores generated samples above real ones; give it \
                 more steps (}}) or a higher learning rate (])"
                )
            },
        ));
        let recent = &self.block_means[self.block_means.len().saturating_sub(RISES + 1)..];
        let growing = recent.len() == RISES + 1
            && recent.windows(2).all(|w| w[1] > w[0])
            && recent[0] > 0.0
            && recent[RISES] > GROWTH * recent[0];
        let (first, last) = (recent.first().copied(), recent.last().copied());
        alerts.extend(self.check(
            (growing, !growing),
            AlertKind::WassersteinGrowing,
            m.step,
            || {
                format!(
                    "the Wasserstein estimate has grown over {RISES} blocks of {BLOCK} steps in a \
                 row ({:.3} -> {:.3}): the generator is falling behind the critic; lower the \
                 critic's steps ({{) or the learning rates ([)",
                    first.unwrap_or_default(),
                    last.unwrap_or_default()
                )
            },
        ));
        alerts
    }

    /// A fixed-noise sample set: the generated samples' spread against the real ones'.
    pub fn on_samples(&mut self, samples: &SampleSet) -> Vec<Alert> {
        let step = samples.step();
        let Some(ratio) = spread_ratio(samples) else {
            return Vec::new();
        };
        let collapsed = step >= WARM_UP && ratio < SPREAD_LOW;
        let spread = ratio > SPREAD_LOW * MARGIN;
        let alert = self.check((collapsed, spread), AlertKind::Diversity, step, || {
            format!(
                "the generated samples are {:.0}% as spread out as the real ones (mean distance \
                 between pairs): the generator is collapsing to a few outputs; lower the \
                 learning rates ([) or go back to a checkpoint (--resume)",
                100.0 * ratio
            )
        });
        alert.into_iter().collect()
    }

    /// An evaluation: the toy measures getting worse.
    pub fn on_eval(&mut self, e: &EvalRecord) -> Vec<Alert> {
        let Some(toy) = &e.toy else {
            return Vec::new();
        };
        self.quality.push(toy.high_quality);
        let recent = &self.quality[self.quality.len().saturating_sub(FALLS + 1)..];
        let worse = recent.len() == FALLS + 1
            && recent.windows(2).all(|w| w[1] < w[0])
            && recent[0] - recent[FALLS] >= QUALITY_DROP;
        let (first, last) = (recent[0], recent[recent.len() - 1]);
        let alert = self.check((worse, !worse), AlertKind::QualityWorse, e.step, || {
            format!(
                "the share of generated points within 3 standard deviations of a mode fell at \
                 {FALLS} evaluations in a row ({:.0}% -> {:.0}%): lower the learning rates ([) \
                 or go back to a checkpoint (--resume)",
                100.0 * first,
                100.0 * last
            )
        });
        alert.into_iter().collect()
    }
}

/// The mean distance between pairs of generated samples over that of the real ones (`None`
/// with fewer than two of either).
pub fn spread_ratio(samples: &SampleSet) -> Option<f64> {
    let (generated, real, dim): (Vec<&[f32]>, Vec<&[f32]>, usize) = match samples {
        SampleSet::Images {
            side,
            channels,
            generated,
            real,
            ..
        } => {
            let dim = side * side * channels;
            (
                generated.chunks_exact(dim).collect(),
                real.chunks_exact(dim).collect(),
                dim,
            )
        }
        SampleSet::Points {
            generated, real, ..
        } => (
            generated.iter().map(|p| p.as_slice()).collect(),
            real.iter().map(|p| p.as_slice()).collect(),
            2,
        ),
    };
    let spread = |rows: &[&[f32]]| -> Option<f64> {
        if rows.len() < 2 || dim == 0 {
            return None;
        }
        let mut sum = 0.0;
        for (i, a) in rows.iter().enumerate() {
            for b in &rows[i + 1..] {
                let d2: f64 = a
                    .iter()
                    .zip(*b)
                    .map(|(x, y)| ((x - y) as f64).powi(2))
                    .sum();
                sum += d2.sqrt();
            }
        }
        Some(sum / (rows.len() * (rows.len() - 1) / 2) as f64)
    };
    let (g, r) = (spread(&generated)?, spread(&real)?);
    (r > 0.0).then(|| g / r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Histogram, ToyScores};

    fn metrics(step: u64, norm: f64, w: f64, mode: PenaltyMode) -> StepMetrics {
        StepMetrics {
            step,
            wall_s: step as f64,
            critic_loss: -w,
            generator_loss: 0.0,
            wasserstein: w,
            penalty: 0.0,
            weighted_penalty: 0.0,
            grad_norm_mean: norm,
            grad_norm_std: 0.1,
            layers: Vec::new(),
            weight_histogram: Histogram {
                lo: -1.0,
                hi: 1.0,
                counts: vec![1],
            },
            lambda: 10.0,
            lr_generator: 1e-4,
            lr_critic: 1e-4,
            n_critic: 5,
            penalty_mode: mode,
            iters_per_s: 1.0,
        }
    }

    /// The alerts of steps `steps`, the figures of each from `f`.
    fn feed(
        dog: &mut Watchdog,
        steps: std::ops::RangeInclusive<u64>,
        f: impl Fn(u64) -> (f64, f64),
    ) -> Vec<Alert> {
        steps
            .flat_map(|s| {
                let (norm, w) = f(s);
                dog.on_metrics(&metrics(s, norm, w, PenaltyMode::Gp))
            })
            .collect()
    }

    #[test]
    fn a_healthy_run_raises_nothing() {
        let mut dog = Watchdog::new();
        // Wild first steps (before the warm-up), then a norm near 1 and an estimate that
        // rises and decays as in a run that learns.
        let alerts = feed(&mut dog, 1..=3000, |s| {
            let t = s as f64;
            let norm = if s < 100 {
                5.0
            } else {
                1.0 + 0.3 * (t * 0.1).sin()
            };
            (norm, 2.0 * (-t / 500.0).exp() + 0.1)
        });
        assert!(alerts.is_empty(), "{alerts:?}");
    }

    /// A norm far from 1 alerts once, when the window past the warm-up says so; back near 1 the
    /// alert re-arms, and fires again on the next stretch. Clipping never aims at 1.
    #[test]
    fn a_norm_far_from_one_alerts_once_a_stretch() {
        let mut dog = Watchdog::new();
        let alerts = feed(&mut dog, 1..=400, |_| (4.0, 1.0));
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(
            (alerts[0].kind, alerts[0].step),
            (AlertKind::GradientNorm, WARM_UP)
        );
        assert!(alerts[0].message.contains("4.00") && alerts[0].message.contains("raise lambda"));
        // Hovering at the threshold: no alert again until clearly back.
        assert!(
            feed(&mut dog, 401..=600, |s| (
                if s % 2 == 0 { 2.9 } else { 3.1 },
                1.0
            ))
            .is_empty()
        );
        assert!(feed(&mut dog, 601..=800, |_| (1.0, 1.0)).is_empty());
        let again = feed(&mut dog, 801..=1000, |_| (0.25, 1.0));
        assert_eq!(again.len(), 1, "{again:?}");
        assert!(
            again[0].message.contains("lower lambda"),
            "{}",
            again[0].message
        );

        let mut clipped = Watchdog::new();
        let alerts: Vec<Alert> = (1..=400)
            .flat_map(|s| clipped.on_metrics(&metrics(s, 4.0, 1.0, PenaltyMode::Clip)))
            .collect();
        assert!(alerts.is_empty(), "{alerts:?}");
    }

    #[test]
    fn a_negative_estimate_for_long_alerts() {
        let mut dog = Watchdog::new();
        // Negative from step 300: the window's mean crosses 0 at step 350.
        let alerts = feed(&mut dog, 1..=600, |s| {
            (1.0, if s < 300 { 0.5 } else { -0.5 })
        });
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(
            (alerts[0].kind, alerts[0].step),
            (AlertKind::WassersteinNegative, 350)
        );
    }

    /// Block means 1, 1.5, 2.25, 3.4: three rises to more than twice the start.
    #[test]
    fn an_estimate_growing_block_after_block_alerts() {
        let mut dog = Watchdog::new();
        let alerts = feed(&mut dog, 1..=1250, |s| {
            (1.0, 1.5f64.powi((s / BLOCK) as i32))
        });
        let kinds: Vec<(AlertKind, u64)> = alerts.iter().map(|a| (a.kind, a.step)).collect();
        // The fourth block (750-999) is complete at the first step of the fifth.
        assert_eq!(kinds, [(AlertKind::WassersteinGrowing, 1000)]);
        assert!(
            alerts[0].message.contains("1.000 -> 3.375"),
            "{}",
            alerts[0].message
        );
        // Slower growth (x1.2 a block: 1.73 in three) is no alarm.
        let mut dog = Watchdog::new();
        assert!(
            feed(&mut dog, 1..=1250, |s| (
                1.0,
                1.2f64.powi((s / BLOCK) as i32)
            ))
            .is_empty()
        );
    }

    fn points(step: u64, generated: Vec<[f32; 2]>) -> SampleSet {
        SampleSet::Points {
            step,
            generated,
            real: vec![[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]],
            extent: 2.5,
            grid: 1,
            critic: vec![0.0],
            raw: None,
        }
    }

    #[test]
    fn the_spread_ratio_of_known_sets() {
        // Real pairs: 2, 2, sqrt 8; generated: 1, 1, sqrt 2. Half as spread.
        let set = points(0, vec![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]);
        assert!((spread_ratio(&set).unwrap() - 0.5).abs() < 1e-6);
        assert_eq!(spread_ratio(&points(0, vec![[1.0, 1.0]; 3])), Some(0.0));
        assert_eq!(spread_ratio(&points(0, vec![[1.0, 1.0]])), None);
    }

    #[test]
    fn samples_all_alike_alert_after_the_warm_up() {
        let mut dog = Watchdog::new();
        let same = vec![[0.3, 0.3]; 8];
        assert!(dog.on_samples(&points(100, same.clone())).is_empty());
        let alerts = dog.on_samples(&points(WARM_UP, same));
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::Diversity);
        assert!(
            alerts[0].message.contains("0% as spread out"),
            "{}",
            alerts[0].message
        );
        let spread = vec![[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]];
        assert!(dog.on_samples(&points(300, spread)).is_empty());
    }

    fn eval(step: u64, high_quality: f64) -> EvalRecord {
        EvalRecord {
            step,
            held_out_critic_cost: None,
            train_critic_cost: 0.0,
            samples: 256,
            toy: Some(ToyScores {
                points: 2500,
                high_quality,
                modes_covered: 8,
                modes: 8,
                mode_kl: 0.0,
                per_mode: vec![0; 8],
            }),
            toy_raw: None,
            swd: None,
            swd_raw: None,
            digits: None,
            digits_raw: None,
            seconds: 0.0,
        }
    }

    #[test]
    fn quality_falling_at_three_evaluations_alerts() {
        let mut dog = Watchdog::new();
        let shares = [0.5, 0.6, 0.55, 0.5, 0.44, 0.45];
        let alerts: Vec<Alert> = shares
            .iter()
            .enumerate()
            .flat_map(|(i, &q)| dog.on_eval(&eval(100 * (i as u64 + 1), q)))
            .collect();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(
            (alerts[0].kind, alerts[0].step),
            (AlertKind::QualityWorse, 500)
        );
        assert!(
            alerts[0].message.contains("60% -> 44%"),
            "{}",
            alerts[0].message
        );
        // Small falls (0.6 -> 0.55 in three) are noise.
        let mut dog = Watchdog::new();
        let small = [0.6, 0.58, 0.56, 0.55];
        let alerts: Vec<Alert> = small
            .iter()
            .flat_map(|&q| dog.on_eval(&eval(100, q)))
            .collect();
        assert!(alerts.is_empty());
    }
}
