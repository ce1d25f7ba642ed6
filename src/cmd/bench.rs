//! `wgangp-tui bench`: the work of the PyTorch reference benchmark (`wgangp_ref.py` in the
//! project's shared bench folder: same nets, batch sizes, 5 critic steps per generator step,
//! penalty and Adam), timed the same way, printed as one JSON line whose field names match the
//! reference's `RESULT` line so that the two compare as a ratio.

use std::time::Instant;

use anyhow::{Context, Result};
use dfdx::prelude::*;
use serde::Serialize;

use crate::cli::BenchArgs;
use crate::config::{DEFAULT_EMA, DEFAULT_EVAL_EVERY, DataSpec, TrainConfig};
use crate::data::Dataset;
use crate::data::folder::ImageFolder;
use crate::model::device::{Transfers, transfers};
use crate::model::kernels::gemm::{flops, peak_gflops};
use crate::model::{Critic, Generator, device};
use crate::train::Trainer;
use crate::train::average::Averaged;
use crate::train::evaluate::EVAL_SAMPLES;
use crate::train::families::{FamilyJob, dispatch};
use crate::train::reference::{BenchConfig, reference};
use crate::util::median;

/// Random pictures the colour configurations draw their batches from.
const RANDOM_PICTURE_COUNT: usize = 1024;

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
    /// The steps timed apart: null on a device, where whole iterations are timed.
    pub critic_steps_per_s_median: f64,
    pub gen_step_ms_median: f64,
    pub critic_step_ms_median: f64,
    pub gen_iter_ms_median: f64,
    pub gen_iter_ms_min: f64,
    pub gen_iter_ms_max: f64,
    /// Peak resident set size of the whole process (VmHWM) while it trained: before the
    /// evaluations and the peak measurement.
    pub peak_rss_mb: f64,
    /// The most device memory the run held at once (0 on the CPU).
    pub device_peak_mb: f64,
    /// Floating-point operations of one generator iteration, counted in the matrix products
    /// (every linear and convolution layer, forward and backward, and the penalty's graph;
    /// element-wise work is not counted).
    pub gflop_per_iter: f64,
    /// `gflop_per_iter` at the median iteration time.
    pub achieved_gflops: f64,
    /// This CPU's f32 matrix-product throughput through the CPU kernels on the same threads
    /// (median of 5 products of 2048^3). With `--device cuda` the training's products ran on
    /// the GPU, so `fraction_of_peak` is then a fraction of the CPU's peak, not the GPU's.
    pub peak_gflops: f64,
    pub fraction_of_peak: f64,
    /// Megabytes (10^6 bytes) copied from host to device and back per generator iteration, and
    /// the number of copies (each a blocking transfer): 0 on the CPU.
    pub host_to_device_mb_per_iter: f64,
    pub device_to_host_mb_per_iter: f64,
    pub copies_per_iter: f64,
    /// One evaluation as a run at the defaults makes it (`--eval-every 100`, `--ema 0.999`:
    /// the critic's costs, the averaged and the raw generator's quality measures, on
    /// `eval_samples` held-out samples: the embedded MNIST's 200 held-out digits, 256 fresh
    /// random pictures for the picture configs): the median of 3, in ms.
    pub eval_ms_median: f64,
    pub eval_samples: usize,
    /// The evaluations' share of a run's time at the defaults: one evaluation against it plus
    /// 100 generator iterations.
    pub eval_share_at_defaults: f64,
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

/// Seconds of each generator iteration, generator step and critic step.
struct Times {
    /// Matrix-product FLOPs of the timed iterations.
    flops: u64,
    /// Host-device copies of the timed iterations.
    transfers: Transfers,
    iterations: Vec<f64>,
    generator: Vec<f64>,
    critic: Vec<f64>,
    evaluations: Vec<f64>,
    eval_samples: usize,
    training_rss_mb: f64,
}

/// Times the reference's work: one generator step, then the critic steps, `warmup` untimed
/// iterations then `iters` timed ones.
struct Measure<'a> {
    config: &'a TrainConfig,
    data: Dataset,
    /// What the evaluations are measured against.
    held_out: Dataset,
    warmup: u64,
    iters: u64,
}

impl FamilyJob for Measure<'_> {
    type Output = Result<Times>;

    fn with_nets<G, D, const Z: usize, const X: usize>(self) -> Result<Times>
    where
        G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
        D: Critic<f32, X> + BuildModule<Cpu, f32>,
    {
        let Measure {
            config,
            data,
            held_out,
            warmup,
            iters,
        } = self;
        let mut trainer = Trainer::<G, D, Z, X>::new(config, data);
        if let Some(dev) = device::installed() {
            trainer = trainer.on_device(dev)?;
        }
        let mut times = Times {
            flops: 0,
            transfers: Transfers::default(),
            iterations: Vec::new(),
            generator: Vec::new(),
            critic: Vec::new(),
            evaluations: Vec::new(),
            eval_samples: 0,
            training_rss_mb: 0.0,
        };
        let (mut flops_before, mut transfers_before) = (flops(), transfers());
        for i in 0..warmup + iters {
            let timed = i >= warmup;
            if i == warmup {
                (flops_before, transfers_before) = (flops(), transfers());
            }
            let start = Instant::now();
            if trainer.device_name().is_some() {
                // On a device an iteration is one queue of work and one read-back: timing its
                // steps apart would add a wait for the device after each.
                trainer.iteration()?;
            } else {
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
            }
            if timed {
                times.iterations.push(start.elapsed().as_secs_f64());
            }
        }
        times.flops = flops() - flops_before;
        times.transfers = transfers().since(transfers_before);
        // The training's peak memory, before the evaluations' (reported apart from it).
        times.training_rss_mb = peak_rss_mb();
        // The reference keeps no average; a run at the defaults does, and scores both.
        trainer.averaged = Some(Averaged::new(&trainer.generator, DEFAULT_EMA));
        trainer.set_held_out(held_out);
        for _ in 0..3 {
            let evaluation = trainer.evaluate()?;
            times.evaluations.push(evaluation.seconds);
            times.eval_samples = evaluation.samples;
        }
        Ok(times)
    }
}

pub fn run(args: &BenchArgs) -> Result<BenchResult> {
    let threads = args
        .threads
        .map(|t| t as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let iters = args.iters.unwrap_or(match args.config {
        BenchConfig::Toy => 200,
        BenchConfig::Mnist => 30,
        BenchConfig::Cifar32 => 5,
        BenchConfig::Face64 => 3,
    });
    let mut config = reference(args.config, threads, args.seed);
    config.device = device::select(args.device)?;
    let data = reference_data(&config)?;
    let held_out = match &config.data {
        DataSpec::Folder { side, .. } => {
            let seed = config.seed.wrapping_add(1);
            Dataset::Folder(ImageFolder::random(*side, EVAL_SAMPLES, seed))
        }
        DataSpec::Toy(set) => Dataset::Toy(*set),
        _ => {
            let (_, held_out) = Dataset::load(&config.data)?.split_held_out(config.seed);
            held_out.context("the data holds nothing out")?
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start the kernel threads")?;
    let job = Measure {
        config: &config,
        data,
        held_out,
        warmup: args.warmup,
        iters,
    };
    let times = pool.install(|| dispatch(config.family, job))?;
    let rss = times.training_rss_mb;
    let peak_gflops = pool.install(|| peak_gflops(2048, 5));
    let total: f64 = times.iterations.iter().sum();
    let (it, c, g) = (
        median(times.iterations.clone()),
        median_or_nan(times.critic),
        median_or_nan(times.generator),
    );
    let min = times
        .iterations
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let max = times.iterations.iter().copied().fold(0.0, f64::max);
    let gflop = times.flops as f64 / iters as f64 / 1e9;
    let per_iter = |total: u64| total as f64 / iters as f64;
    let eval = median(times.evaluations);
    Ok(BenchResult {
        implementation: "wgangp-tui",
        config: args.config.name(),
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
        device_peak_mb: device::installed().map_or(0.0, |d| d.peak_bytes() as f64 / 1e6),
        gflop_per_iter: gflop,
        achieved_gflops: gflop / it,
        peak_gflops,
        fraction_of_peak: gflop / it / peak_gflops,
        host_to_device_mb_per_iter: per_iter(times.transfers.to_device_bytes) / 1e6,
        device_to_host_mb_per_iter: per_iter(times.transfers.from_device_bytes) / 1e6,
        copies_per_iter: per_iter(times.transfers.copies),
        eval_ms_median: eval * 1e3,
        eval_samples: times.eval_samples,
        eval_share_at_defaults: eval / (eval + DEFAULT_EVAL_EVERY as f64 * it),
    })
}

/// The median, or NaN (null in the JSON) for steps not timed apart (on a device).
fn median_or_nan(v: Vec<f64>) -> f64 {
    if v.is_empty() { f64::NAN } else { median(v) }
}

/// The data of a reference config: its own, or for the picture configs pictures of random
/// bytes from the config's seed (the benchmark's stand-in for a folder).
pub fn reference_data(config: &TrainConfig) -> Result<Dataset> {
    Ok(match config.data {
        DataSpec::Folder { side, .. } => {
            Dataset::Folder(ImageFolder::random(side, RANDOM_PICTURE_COUNT, config.seed))
        }
        _ => Dataset::load(&config.data)?,
    })
}
