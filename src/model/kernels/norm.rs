//! The arithmetic of the per-channel normalisations on plain slices: statistics per group of
//! rows and channel, and the element-wise passes that use them, both spread over the threads
//! in blocks of rows.
//!
//! Activations are rows `(groups * rows, c)`: group `g` is rows `g*rows .. (g+1)*rows`. A
//! statistic is indexed `g * c + channel`.

use rayon::prelude::*;

use super::Float;

/// Rows summed or mapped per task: small enough to spread a batch norm's one group over the
/// threads, large enough that a task is worth its start.
const BLOCK_ROWS: usize = 64;

/// The shape of a normalised activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Groups {
    pub groups: usize,
    /// Rows per group.
    pub rows: usize,
    /// Channels.
    pub c: usize,
}

impl Groups {
    pub fn len(&self) -> usize {
        self.groups * self.rows * self.c
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Statistics: one per group and channel.
    pub fn stats(&self) -> usize {
        self.groups * self.c
    }

    /// Per group and channel, the sum over the group's rows of `value(x, s)`, where `x` holds
    /// the element's values in each of `ins` (one value per element) and `s` its statistic's
    /// values in each of `stats` (one per group and channel). Blocks are added in order, so
    /// the sums do not depend on the threads.
    pub fn sums<E: Float, const I: usize, const S: usize>(
        &self,
        ins: [&[E]; I],
        stats: [&[E]; S],
        value: impl Fn([E; I], [E; S]) -> E + Sync,
    ) -> Vec<E> {
        self.check(&ins, &stats);
        let c = self.c;
        let blocks = self.rows.div_ceil(BLOCK_ROWS).max(1);
        let partials: Vec<Vec<E>> = (0..self.groups * blocks)
            .into_par_iter()
            .map(|k| {
                let (g, b) = (k / blocks, k % blocks);
                let first = g * self.rows + b * BLOCK_ROWS;
                let end = (first + BLOCK_ROWS).min((g + 1) * self.rows);
                let mut acc = vec![E::zero(); c];
                let s = stats.map(|s| &s[g * c..][..c]);
                for row in first..end {
                    let x = ins.map(|x| &x[row * c..][..c]);
                    // Slices of length c indexed below c: no bounds checks, so this vectorises.
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a = *a + value(x.map(|x| x[j]), s.map(|s| s[j]));
                    }
                }
                acc
            })
            .collect();
        let mut out = vec![E::zero(); self.stats()];
        for (k, partial) in partials.iter().enumerate() {
            let g = k / blocks;
            for (o, p) in out[g * c..(g + 1) * c].iter_mut().zip(partial) {
                *o = *o + *p;
            }
        }
        out
    }

    /// The means of [`Self::sums`].
    pub fn means<E: Float, const I: usize, const S: usize>(
        &self,
        ins: [&[E]; I],
        stats: [&[E]; S],
        value: impl Fn([E; I], [E; S]) -> E + Sync,
    ) -> Vec<E> {
        let n = E::from_usize(self.rows).unwrap();
        self.sums(ins, stats, value)
            .into_iter()
            .map(|s| s / n)
            .collect()
    }

    /// `out[i] = f(x, s)` for every element (`x` and `s` as in [`Self::sums`]).
    pub fn fill<E: Float, const I: usize, const S: usize>(
        &self,
        out: &mut [E],
        ins: [&[E]; I],
        stats: [&[E]; S],
        f: impl Fn([E; I], [E; S]) -> E + Sync,
    ) {
        self.each(out, ins, stats, |o, x, s| *o = f(x, s));
    }

    /// `out[i] += f(x, s)` for every element.
    pub fn add<E: Float, const I: usize, const S: usize>(
        &self,
        out: &mut [E],
        ins: [&[E]; I],
        stats: [&[E]; S],
        f: impl Fn([E; I], [E; S]) -> E + Sync,
    ) {
        self.each(out, ins, stats, |o, x, s| *o = *o + f(x, s));
    }

    /// `update(&mut out[i], x, s)` for every element, a block of rows per task.
    fn each<E: Float, const I: usize, const S: usize>(
        &self,
        out: &mut [E],
        ins: [&[E]; I],
        stats: [&[E]; S],
        update: impl Fn(&mut E, [E; I], [E; S]) + Sync,
    ) {
        assert_eq!(out.len(), self.len(), "normalisation: element count");
        self.check(&ins, &stats);
        let c = self.c;
        out.par_chunks_mut((BLOCK_ROWS * c).max(1))
            .enumerate()
            .for_each(|(b, block)| {
                for (r, row) in block.chunks_mut(c).enumerate() {
                    let row_index = b * BLOCK_ROWS + r;
                    let g = row_index / self.rows;
                    let x = ins.map(|x| &x[row_index * c..][..c]);
                    let s = stats.map(|s| &s[g * c..][..c]);
                    for (j, o) in row.iter_mut().enumerate() {
                        update(o, x.map(|x| x[j]), s.map(|s| s[j]));
                    }
                }
            });
    }

    /// Every input has one value per element, every statistic one per group and channel.
    fn check<E>(&self, ins: &[&[E]], stats: &[&[E]]) {
        assert!(
            ins.iter().all(|x| x.len() == self.len()),
            "normalisation: an input's element count"
        );
        assert!(
            stats.iter().all(|s| s.len() == self.stats()),
            "normalisation: a statistic's count"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_fills_follow_groups_and_channels() {
        // 3 groups of 70 rows (two blocks each, the second short) of 2 channels.
        let g = Groups {
            groups: 3,
            rows: 70,
            c: 2,
        };
        let x: Vec<f64> = (0..g.len()).map(|i| i as f64).collect();
        let sums = g.sums([&x], [], |[x], []| x);
        for group in 0..3 {
            for ch in 0..2 {
                let naive: f64 = (0..70).map(|r| x[(group * 70 + r) * 2 + ch]).sum();
                assert_eq!(sums[group * 2 + ch], naive);
            }
        }
        // Each element's statistic index, as a statistic.
        let index: Vec<f64> = (0..g.stats()).map(|k| k as f64).collect();
        let mut out = vec![0.0; g.len()];
        g.fill(&mut out, [], [&index], |[], [k]| k);
        assert_eq!(out[0], 0.0);
        assert_eq!(out[1], 1.0);
        assert_eq!(out[70 * 2], 2.0);
        assert_eq!(out[g.len() - 1], 5.0);
        g.add(&mut out, [&x], [], |[x], []| x);
        assert_eq!(out[70 * 2 + 1], 3.0 + (70 * 2 + 1) as f64);
    }
}
