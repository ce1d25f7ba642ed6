//! Bounded-memory series for the curves: the full history decimated to at most `FULL_POINTS`
//! points (every other point dropped, stride doubled, whenever it fills up) plus a window of
//! the most recent `RECENT_POINTS` points at full resolution.

use std::collections::VecDeque;

pub const FULL_POINTS: usize = 1024;
pub const RECENT_POINTS: usize = 400;

#[derive(Clone, Debug, Default)]
pub struct Series {
    full: Vec<(f64, f64)>,
    /// Only every `stride`-th pushed point enters `full`.
    stride: u64,
    pushed: u64,
    recent: VecDeque<(f64, f64)>,
}

impl Series {
    pub fn new() -> Self {
        Self {
            stride: 1,
            ..Default::default()
        }
    }

    pub fn push(&mut self, x: f64, y: f64) {
        if self.pushed % self.stride == 0 {
            self.full.push((x, y));
            if self.full.len() >= FULL_POINTS {
                self.full = self.full.iter().copied().step_by(2).collect();
                self.stride *= 2;
            }
        }
        self.pushed += 1;
        self.recent.push_back((x, y));
        if self.recent.len() > RECENT_POINTS {
            self.recent.pop_front();
        }
    }

    /// The whole run (decimated) or the recent window.
    pub fn points(&self, recent: bool) -> Vec<(f64, f64)> {
        let mut points: Vec<(f64, f64)> = if recent {
            self.recent.iter().copied().collect()
        } else {
            self.full.clone()
        };
        // The decimated history always ends at the newest point.
        if !recent {
            if let Some(&last) = self.recent.back() {
                if points.last() != Some(&last) {
                    points.push(last);
                }
            }
        }
        points
    }

    pub fn last(&self) -> Option<f64> {
        self.recent.back().map(|p| p.1)
    }

    pub fn len_in_memory(&self) -> usize {
        self.full.len() + self.recent.len()
    }
}

/// TensorBoard's smoothing: an exponential moving average, debiased so that the first points
/// are not pulled towards zero.
pub fn ema(points: &[(f64, f64)], weight: f64) -> Vec<(f64, f64)> {
    let mut last = 0.0;
    let mut n = 0;
    points
        .iter()
        .map(|&(x, y)| {
            if !y.is_finite() {
                return (x, y);
            }
            last = last * weight + (1.0 - weight) * y;
            n += 1;
            (x, last / (1.0 - weight.powi(n)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_is_debiased_and_smooths() {
        let points: Vec<(f64, f64)> = (0..50)
            .map(|i| (i as f64, if i % 2 == 0 { 1.0 } else { 3.0 }))
            .collect();
        let s = ema(&points, 0.9);
        assert_eq!(
            s[0].1, 1.0,
            "the first smoothed point is the first value, not pulled to 0"
        );
        assert!((s[49].1 - 2.0).abs() < 0.2, "{}", s[49].1);
        let spread = |v: &[(f64, f64)]| {
            v[40..]
                .iter()
                .map(|p| p.1)
                .fold(f64::NEG_INFINITY, f64::max)
                - v[40..].iter().map(|p| p.1).fold(f64::INFINITY, f64::min)
        };
        assert!(spread(&s) < spread(&points) / 4.0);
    }

    #[test]
    fn decimation_keeps_the_whole_run_in_bounded_memory() {
        let mut s = Series::new();
        for i in 0..100_000 {
            s.push(i as f64, i as f64);
        }
        assert!(s.len_in_memory() <= FULL_POINTS + RECENT_POINTS);
        let full = s.points(false);
        assert_eq!((full[0].0, full.last().unwrap().0), (0.0, 99_999.0));
        let recent = s.points(true);
        assert_eq!(recent.len(), RECENT_POINTS);
        assert_eq!(recent[0].0, (100_000 - RECENT_POINTS) as f64);
    }
}
