//! A batch cut into shards whose passes run in parallel (data parallelism on the CPU), and
//! their gradients added up in shard order.

use std::ops::Range;

use dfdx::prelude::*;
use rayon::prelude::*;

use crate::model::Batch;
use crate::model::ops::layer::unfrozen;

/// Shards of the batch whose forward and backward passes run in parallel, one per pool thread
/// at a time (data parallelism: every op of a shard, not only the matrix products, runs beside
/// the other shard's). Their number is fixed, not the thread count, so that a run's numbers do
/// not depend on `--threads`.
pub const SHARDS: usize = 2;

/// The most input values a shard holds (eight 64x64 colour pictures): a bigger batch is cut
/// into more shards, run [`SHARDS`] at a time, so that the activations a shard keeps for its
/// backward pass, the largest memory of a step, stay bounded whatever the batch.
pub const SHARD_VALUES: usize = 8 * 64 * 64 * 3;

/// The rows of each of `parts` shards of a batch of `n`: contiguous, sizes differing by at
/// most one (fewer shards when `n` is smaller).
pub fn shards(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.min(n).max(1);
    (0..parts)
        .map(|i| i * n / parts..(i + 1) * n / parts)
        .collect()
}

/// Runs `work` on each shard, [`SHARDS`] at a time in parallel, and hands the results to
/// `fold` in shard order (so that sums over them are the same every run).
pub fn for_shards<R: Send>(
    ranges: Vec<Range<usize>>,
    work: impl Fn(Range<usize>) -> R + Sync,
    mut fold: impl FnMut(R),
) {
    for wave in ranges.chunks(SHARDS) {
        // Each shard starts unfrozen: see `unfrozen`.
        let shard = |rows: &Range<usize>| unfrozen(|| work(rows.clone()));
        let results: Vec<R> = wave.par_iter().map(shard).collect();
        results.into_iter().for_each(&mut fold);
    }
}

/// Rows `rows` of a row-major batch, as a tensor.
pub fn rows_tensor<const N: usize>(
    dev: &Cpu,
    values: &[f32],
    rows: &Range<usize>,
) -> Batch<N, f32> {
    let data = values[rows.start * N..rows.end * N].to_vec();
    dev.tensor_from_vec(data, (rows.len(), Const::<N>))
}

/// Adds one shard's gradients into the running total (the first shard's become it).
pub fn add_grads(total: &mut Option<Vec<Vec<f32>>>, part: Vec<Vec<f32>>) {
    match total {
        None => *total = Some(part),
        Some(total) => {
            for (t, p) in total.iter_mut().zip(&part) {
                t.iter_mut().zip(p).for_each(|(t, p)| *t += *p);
            }
        }
    }
}

pub fn all_finite(grads: &[Vec<f32>]) -> bool {
    grads.iter().flatten().all(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_once() {
        for n in 1..40 {
            for parts in 1..5 {
                let s = shards(n, parts);
                assert_eq!(s.len(), parts.min(n));
                assert_eq!(s[0].start, 0);
                assert_eq!(s.last().unwrap().end, n);
                assert!(s.windows(2).all(|w| w[0].end == w[1].start));
                let sizes: Vec<usize> = s.iter().map(|r| r.len()).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{n} in {parts}: {sizes:?}");
            }
        }
    }
}
