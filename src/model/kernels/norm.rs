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

    /// Per group and channel, the sum over the group's rows of `value(i, k)` (`i` the
    /// element's flat index, `k` its statistic). Blocks are added in order, so the sums do not
    /// depend on the threads.
    pub fn sums<E: Float>(&self, value: impl Fn(usize, usize) -> E + Sync) -> Vec<E> {
        let c = self.c;
        let blocks = self.rows.div_ceil(BLOCK_ROWS).max(1);
        let partials: Vec<Vec<E>> = (0..self.groups * blocks)
            .into_par_iter()
            .map(|k| {
                let (g, b) = (k / blocks, k % blocks);
                let first = g * self.rows + b * BLOCK_ROWS;
                let end = (first + BLOCK_ROWS).min((g + 1) * self.rows);
                let mut acc = vec![E::zero(); c];
                for row in first..end {
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a = *a + value(row * c + j, g * c + j);
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
    pub fn means<E: Float>(&self, value: impl Fn(usize, usize) -> E + Sync) -> Vec<E> {
        let n = E::from_usize(self.rows).unwrap();
        self.sums(value).into_iter().map(|s| s / n).collect()
    }

    /// `out[i] = f(i, statistic of i)` for every element.
    pub fn fill<E: Float>(&self, out: &mut [E], f: impl Fn(usize, usize) -> E + Sync) {
        self.each(out, |o, i, k| *o = f(i, k));
    }

    /// `out[i] += f(i, statistic of i)` for every element.
    pub fn add<E: Float>(&self, out: &mut [E], f: impl Fn(usize, usize) -> E + Sync) {
        self.each(out, |o, i, k| *o = *o + f(i, k));
    }

    /// `update(&mut out[i], i, statistic of i)` for every element, a block of rows per task.
    fn each<E: Float>(&self, out: &mut [E], update: impl Fn(&mut E, usize, usize) + Sync) {
        assert_eq!(out.len(), self.len(), "normalisation: element count");
        let c = self.c;
        out.par_chunks_mut((BLOCK_ROWS * c).max(1))
            .enumerate()
            .for_each(|(b, block)| {
                for (r, row) in block.chunks_mut(c).enumerate() {
                    let row_index = b * BLOCK_ROWS + r;
                    let (first, stats) = (row_index * c, row_index / self.rows * c);
                    for (j, o) in row.iter_mut().enumerate() {
                        update(o, first + j, stats + j);
                    }
                }
            });
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
        let sums = g.sums(|i, _| x[i]);
        for group in 0..3 {
            for ch in 0..2 {
                let naive: f64 = (0..70).map(|r| x[(group * 70 + r) * 2 + ch]).sum();
                assert_eq!(sums[group * 2 + ch], naive);
            }
        }
        let mut out = vec![0.0; g.len()];
        g.fill(&mut out, |_, s| s as f64);
        assert_eq!(out[0], 0.0);
        assert_eq!(out[1], 1.0);
        assert_eq!(out[70 * 2], 2.0);
        assert_eq!(out[g.len() - 1], 5.0);
        g.add(&mut out, |i, _| x[i]);
        assert_eq!(out[70 * 2 + 1], 3.0 + (70 * 2 + 1) as f64);
    }
}
