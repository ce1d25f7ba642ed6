//! `wgangp-tui bench`: the work of the PyTorch reference benchmark (`wgangp_ref.py` in the
//! project's shared bench folder: same nets, batch sizes, 5 critic steps per generator step,
//! penalty and Adam), timed the same way, printed as one JSON line whose field names match the
//! reference's `RESULT` line so that the two compare as a ratio.

use std::time::Instant;

use anyhow::{Context, Result};
use dfdx::prelude::*;
use serde::Serialize;

use crate::cli::{BenchArgs, BenchConfig};
use crate::config::{
    DEFAULT_CHECKPOINT_EVERY, DEFAULT_KEEP, DataSpec, Family, Hyper, PenaltyMode, ToySet,
    TrainConfig,
};
use crate::data::Dataset;
use crate::model::matmul::{flops, peak_gflops};
use crate::model::mnist::{MNIST_NOISE, MNIST_PIXELS, MnistCritic, MnistGenerator};
use crate::model::toy::{TOY_DIM, TOY_HIDDEN, ToyCritic, ToyGenerator};
use crate::model::{Critic, Generator};
use crate::train::Trainer;

/// The figures, named as in the reference's `RESULT` line.
#[derive(Serialize, Debug)]
pub struct BenchResult {
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    pub config: &'static str,
    /// Where the layers ran: "cpu" or the GPU's name.
    pub device: String,
    pub threads: usize,
    pub batch: usize,
    pub critic_iters: u32,
    pub iters: u64,
    pub warmup: u64,
    pub seed: u64,
    pub gen_iters_per_s_median: f64,
    pub gen_iters_per_s_mean: f64,
    pub critic_steps_per_s_median: f64,
    pub gen_step_ms_median: f64,
    pub critic_step_ms_median: f64,
    pub gen_iter_ms_median: f64,
    pub gen_iter_ms_min: f64,
    pub gen_iter_ms_max: f64,
    /// Peak resident set size of the whole process (VmHWM).
    pub peak_rss_mb: f64,
    /// Floating-point operations of one generator iteration, counted in the matrix products
    /// (every linear and convolution layer, forward and backward, and the penalty's graph;
    /// element-wise work is not counted).
    pub gflop_per_iter: f64,
    /// `gflop_per_iter` at the median iteration time.
    pub achieved_gflops: f64,
    /// The machine's f32 matrix-product throughput on the same threads and kernels (median of
    /// 5 products of 2048^3).
    pub peak_gflops: f64,
    pub fraction_of_peak: f64,
}

/// The median of some figures (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Peak resident memory of this process in MB, from /proc (Linux); 0 where unavailable.
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The reference's settings for a config.
pub fn bench_config(config: BenchConfig, threads: usize, seed: u64) -> TrainConfig {
    let (data, family) = match config {
        BenchConfig::Toy => (DataSpec::Toy(ToySet::EightGaussians), Family::Toy),
        BenchConfig::Mnist => (DataSpec::Mnist, Family::Mnist),
    };
    let (batch, lambda) = family.defaults();
    TrainConfig {
        data,
        family,
        out: Default::default(),
        steps: None,
        seed,
        batch,
        hyper: Hyper {
            lambda,
            lr_generator: 1e-4,
            lr_critic: 1e-4,
            n_critic: 5,
            penalty: PenaltyMode::Gp,
            clip: 0.01,
        },
        sample_every: u64::MAX,
        log_every: 1,
        threads,
        checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
        keep: DEFAULT_KEEP,
        device: crate::device::CPU.into(),
    }
}

/// Seconds of each generator iteration, generator step and critic step.
struct Times {
    /// Matrix-product FLOPs of the timed iterations.
    flops: u64,
    iterations: Vec<f64>,
    generator: Vec<f64>,
    critic: Vec<f64>,
}

fn measure<G, D, const Z: usize, const X: usize>(
    config: &TrainConfig,
    data: Dataset,
    warmup: u64,
    iters: u64,
) -> Result<Times>
where
    G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
{
    let mut trainer = Trainer::<G, D, Z, X>::new(config, data);
    let mut times = Times {
        flops: 0,
        iterations: Vec::new(),
        generator: Vec::new(),
        critic: Vec::new(),
    };
    // As the reference: one generator step, then the critic steps.
    let mut flops_before = flops();
    for i in 0..warmup + iters {
        let timed = i >= warmup;
        if i == warmup {
            flops_before = flops();
        }
        let start = Instant::now();
        trainer.generator_step()?;
        if timed {
            times.generator.push(start.elapsed().as_secs_f64());
        }
        for _ in 0..config.hyper.n_critic {
            let c = Instant::now();
            trainer.critic_step()?;
            if timed {
                times.critic.push(c.elapsed().as_secs_f64());
            }
        }
        if timed {
            times.iterations.push(start.elapsed().as_secs_f64());
        }
    }
    times.flops = flops() - flops_before;
    Ok(times)
}

pub fn run(args: &BenchArgs) -> Result<BenchResult> {
    let threads = args
        .threads
        .map(|t| t as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let iters = args.iters.unwrap_or(match args.config {
        BenchConfig::Toy => 200,
        BenchConfig::Mnist => 30,
    });
    let mut config = bench_config(args.config, threads, args.seed);
    config.device = crate::device::select(args.device)?;
    let data = Dataset::load(&config.data)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start the kernel threads")?;
    let times = pool.install(|| match config.family {
        Family::Toy => measure::<
            ToyGenerator<TOY_HIDDEN, f32>,
            ToyCritic<TOY_HIDDEN, f32>,
            TOY_DIM,
            TOY_DIM,
        >(&config, data, args.warmup, iters),
        Family::Mnist => measure::<
            MnistGenerator<f32, Cpu>,
            MnistCritic<f32>,
            MNIST_NOISE,
            MNIST_PIXELS,
        >(&config, data, args.warmup, iters),
    })?;
    // Before the peak measurement's own 48 MB of matrices.
    let rss = peak_rss_mb();
    let peak_gflops = pool.install(|| peak_gflops(2048, 5));
    let total: f64 = times.iterations.iter().sum();
    let (it, c, g) = (
        median(times.iterations.clone()),
        median(times.critic),
        median(times.generator),
    );
    let min = times
        .iterations
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let max = times.iterations.iter().copied().fold(0.0, f64::max);
    let gflop = times.flops as f64 / iters as f64 / 1e9;
    Ok(BenchResult {
        implementation: "wgangp-tui",
        config: match args.config {
            BenchConfig::Toy => "toy",
            BenchConfig::Mnist => "mnist",
        },
        device: config.device.clone(),
        threads,
        batch: config.batch,
        critic_iters: config.hyper.n_critic,
        iters,
        warmup: args.warmup,
        seed: args.seed,
        gen_iters_per_s_median: 1.0 / it,
        gen_iters_per_s_mean: iters as f64 / total,
        critic_steps_per_s_median: 1.0 / c,
        gen_step_ms_median: g * 1e3,
        critic_step_ms_median: c * 1e3,
        gen_iter_ms_median: it * 1e3,
        gen_iter_ms_min: min * 1e3,
        gen_iter_ms_max: max * 1e3,
        peak_rss_mb: rss,
        gflop_per_iter: gflop,
        achieved_gflops: gflop / it,
        peak_gflops,
        fraction_of_peak: gflop / it / peak_gflops,
    })
}
