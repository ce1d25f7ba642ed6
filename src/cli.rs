//! Command-line flags, turned into a validated [`TrainConfig`]. Errors name the flag.

use std::path::{Path, PathBuf};

use clap::builder::PossibleValue;
use clap::{Parser, ValueEnum};

use crate::config::{
    CPU_DEVICE, DEFAULT_CHECKPOINT_EVERY, DEFAULT_EMA, DEFAULT_EVAL_EVERY, DEFAULT_KEEP, DataSpec,
    Family, FixedGenerator, Hyper, MAX_CRITIC_STEPS, OnNan, PenaltyMode, ToySet, TrainConfig,
    check_betas, check_clip, check_ema, check_lambda, check_lr, check_n_critic,
};
use crate::front::tui::OnHangup;
use crate::model::device::DeviceChoice;
use crate::train::reference::BenchConfig;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "wgangp-tui",
    version,
    allow_negative_numbers = true,
    args_conflicts_with_subcommands = true,
    about = "Train a Wasserstein GAN with gradient penalty (WGAN-GP) and watch it learn.",
    long_about = "Train a Wasserstein GAN with gradient penalty (WGAN-GP, Gulrajani et al. 2017) on \
                  MNIST, a toy 2-d set or a folder of your own pictures, showing it live in the \
                  terminal, and writing config.json, metrics.jsonl and sample pictures into the \
                  run folder (with --no-ui, or when stdout is not a terminal, only the files)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Sub>,

    /// Training data: `mnist` (the embedded 10k MNIST subset), `toy:8gaussians`,
    /// `toy:25gaussians`, `toy:swissroll`, a folder of pictures (PNG, JPEG, BMP, WebP, GIF,
    /// TIFF; searched recursively; trained in colour at --size), or the path of an IDX image
    /// file (raw or gzipped) of 28x28 images such as MNIST or Fashion-MNIST. The model family
    /// follows from the data.
    #[arg(long, default_value = "mnist", value_name = "DATA")]
    pub data: String,

    /// Side of the square pictures an image folder (`--data DIR`) is trained at: 64 (the
    /// article's gan-zoo nets) or 32 (the paper's CIFAR-10 nets)
    #[arg(long, default_value_t = 64, value_parser = picture_side)]
    pub size: usize,

    /// Toy data only: train 12-layer ReLU MLPs (11 hidden layers of 512, He init) instead of
    /// the paper's 4-layer ones, and record the critic loss's gradient norm at each layer's
    /// input (the paper's Figure 1b)
    #[arg(long)]
    pub deep: bool,

    /// Toy data only: train the critic alone against `noise`, the real batch plus N(0, I)
    /// (the generator is never trained): the critic's value surface of the paper's Figure 1a
    #[arg(long, value_enum, value_name = "noise")]
    pub fixed_generator: Option<FixedGenerator>,

    /// Run folder for config.json, metrics.jsonl and samples/ [default: runs/<UTC date-time>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Generator steps to train for (each after --n-critic critic steps)
    /// (with --resume: the run's total, which may be raised) [default: 200000]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,

    /// Seed of every random choice (weights, data, noise); the same seed repeats a run
    /// exactly, on any number of --threads [default: random, recorded in config.json]
    #[arg(long)]
    pub seed: Option<u64>,

    /// Samples per batch [default: 256 for toy data, 50 for MNIST, 64 for pictures]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..1_000_000))]
    pub batch: Option<u64>,

    /// Penalty weight lambda, >= 0 [default: 0.1 for toy data, 10 for MNIST and pictures]
    #[arg(long, value_parser = lambda)]
    pub lambda: Option<f64>,

    /// Learning rate of both nets, > 0 [default: 1e-4 (Adam); 5e-5 with --penalty clip (RMSprop)]
    #[arg(long, value_parser = learning_rate)]
    pub lr: Option<f64>,

    /// Adam's betas, two numbers in [0, 1) [default: 0.5,0.9, the paper's; 0.9,0.999 at
    /// --size 64, gan-zoo's]
    #[arg(long, value_name = "B1,B2", value_parser = betas)]
    pub betas: Option<[f64; 2]>,

    /// Critic steps per generator step, 1 to 1000
    #[arg(long, default_value_t = 5, value_parser = critic_steps)]
    pub n_critic: u32,

    /// Lipschitz constraint: `gp` gradient penalty, `lp` one-sided penalty, `clip` weight
    /// clipping (the original WGAN, with RMSprop)
    #[arg(long, value_enum, default_value_t = PenaltyMode::Gp)]
    pub penalty: PenaltyMode,

    /// Clipping bound c of --penalty clip: critic weights stay in [-c, c]
    #[arg(long, default_value_t = 0.01, value_parser = clip)]
    pub clip: f64,

    /// Decay of the averaged generator (an exponential moving average of its weights, as
    /// StyleGAN's G_ema), which the samples, `sample` and `eval` use; its decay at update t is
    /// min(BETA, (1 + t) / (10 + t)), so that early samples follow training; 0: none
    #[arg(long, default_value_t = DEFAULT_EMA, value_name = "BETA", value_parser = ema)]
    pub ema: f64,

    /// Evaluate every N generator steps: the critic's cost on data held out of training (2% of
    /// a picture set, at most 1000 pictures; fresh points for toy data) beside its cost on
    /// training data, and the generator's quality measures (toy mixtures: points near a mode;
    /// pictures: the sliced Wasserstein distance; digits: also the Frechet distance and the
    /// classifier score); 0: no evaluation, nothing held out
    #[arg(long, default_value_t = DEFAULT_EVAL_EVERY, value_name = "N")]
    pub eval_every: u64,

    /// Run CMD (with `sh -c`) on each alert of the watchdog, with the alert in its environment:
    /// WGANGP_ALERT (the sentence), WGANGP_ALERT_KIND, WGANGP_STEP and WGANGP_RUN (the run
    /// folder); e.g. a notification to a phone. Its output is discarded
    #[arg(long, value_name = "CMD")]
    pub on_alert: Option<String>,

    /// What a step whose loss or gradient is not finite leads to (nothing of it is applied):
    /// `pause` pauses the run and says why (headless: ends it with status 1); `rollback` goes
    /// back to the newest checkpoint's weights and optimizer state with the learning rates
    /// halved, at most 3 times, then pauses
    #[arg(long, value_enum, default_value = "pause", value_name = "WHAT")]
    pub on_nan: OnNan,

    /// Write sample pictures every N generator steps
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_every: u64,

    /// Write metrics every N generator steps
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_every: u64,

    /// Threads for the training kernels [default: all cores]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,

    /// Where training runs: `cpu`, `cuda` (an NVIDIA GPU; needs a build with --features cuda),
    /// or `twin` (the GPU's code on the CPU: slow, for checking) [default: cuda when built with
    /// it and a GPU is there, else cpu]
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,

    /// Start paused: nothing trains until resumed (space in the monitor or in `attach`)
    #[arg(long)]
    pub paused: bool,

    /// Train without the terminal monitor, writing files only (implied when stdout is not a
    /// terminal)
    #[arg(long)]
    pub no_ui: bool,

    /// What the monitor does when its terminal goes away (an SSH connection that drops, a
    /// closed tmux window): `detach` hands the run to a background process as `d` does
    /// (`wgangp-tui attach` finds it), `stop` stops it with a checkpoint as `q` does
    #[arg(long, value_enum, default_value = "detach", value_name = "WHAT")]
    pub on_hangup: OnHangup,

    /// Draw the monitor with plain ASCII characters only (for fonts without block and braille
    /// characters)
    #[arg(long)]
    pub ascii: bool,

    /// Write a checkpoint every N generator steps; 0: only on quit, on `s` in the monitor and
    /// on SIGINT/SIGTERM/SIGHUP
    #[arg(long, default_value_t = DEFAULT_CHECKPOINT_EVERY, value_name = "N")]
    pub checkpoint_every: u64,

    /// Write no TensorBoard event file into the run folder
    #[arg(long)]
    pub no_tensorboard: bool,

    /// Checkpoints to keep (the newest)
    #[arg(long, default_value_t = DEFAULT_KEEP as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub keep: u64,

    /// Go on with a run from its newest checkpoint (DIR: the run folder) or from a given
    /// checkpoint folder, with the configuration and hyperparameters saved in it. Only
    /// --steps, --threads, --device, --paused, --checkpoint-every, --keep, --no-tensorboard,
    /// --no-ui, --ascii, --on-hangup, --on-alert and --on-nan may be given too
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["data", "size", "deep", "fixed_generator", "betas", "out", "seed", "batch", "lambda", "lr", "n_critic", "penalty", "clip", "ema", "eval_every", "sample_every", "log_every"]
    )]
    pub resume: Option<PathBuf>,
}

/// Subcommands; without one, `wgangp-tui` trains.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Sub {
    /// Draw samples from a checkpoint's generator into a picture grid, or single pictures into
    /// a folder
    Sample(SampleArgs),
    /// Score a checkpoint's generator on samples it draws now (the toy mixtures: the share of
    /// points within 3 standard deviations of a mode, the modes covered, the KL divergence of
    /// the modes' histogram from uniform; pictures: the sliced Wasserstein distance from the
    /// run's held-out pictures, and for digits the Frechet distance and the classifier score on
    /// the project's MNIST classifier); prints one JSON line
    Eval(EvalArgs),
    /// Time the training work of the PyTorch reference benchmark; prints one JSON line
    Bench(BenchArgs),
    /// Watch and steer a run that another wgangp-tui process trains (e.g. `--no-ui` in the
    /// background); a run no process trains any more is shown read-only
    Attach(AttachArgs),
    /// List the runs in a folder: live or not, step, latest Wasserstein estimate, age
    Ls(LsArgs),
    /// Run the paper's clipping-versus-penalty experiments (the article's Figures 1 and 2): critic
    /// value surfaces on the toy sets, per-layer gradient norms and weight histograms of 12-layer
    /// critics; writes three PNGs and figures.json
    Figures(FiguresArgs),
    /// Check a device against the CPU: one critic step's and one generator step's gradients of
    /// every family that runs on a device, on 3 batches each; prints one JSON line and fails
    /// when any batch's relative error exceeds 1e-3
    GpuCheck(GpuCheckArgs),
    /// Train the MNIST classifier whose features the digits' quality scores use (the one in
    /// assets/mnist/classifier.safetensors); prints its test accuracy
    #[command(hide = true)]
    TrainClassifier(TrainClassifierArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct TrainClassifierArgs {
    /// A folder with MNIST's IDX files: train10k-images-idx3-ubyte.gz and its labels to train
    /// on, t10k-images-idx3-ubyte.gz and its labels to test on (assets/mnist)
    #[arg(long, value_name = "DIR")]
    pub mnist: PathBuf,

    /// Where to write the weights (safetensors)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Passes over the training digits
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub epochs: u64,

    /// Seed of the initial weights, the order and the distortions
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// A checkpoint folder, or a run folder (its newest checkpoint)
    #[arg(value_name = "RUN_OR_CHECKPOINT")]
    pub checkpoint: PathBuf,

    /// Samples to draw (pictures: at most as many as there are real pictures to compare with,
    /// the run's held-out ones or up to 1000)
    #[arg(long, default_value_t = 2500, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    pub count: u64,

    /// Score the raw generator, not the averaged one
    #[arg(long)]
    pub raw: bool,

    /// Seed of the noise
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(clap::Args, Debug, Clone)]
pub struct GpuCheckArgs {
    /// The device to check: `cuda` (needs a build with --features cuda) or `twin` (the
    /// device code on the CPU)
    #[arg(long, value_enum, default_value = "cuda")]
    pub device: DeviceChoice,
}

#[derive(clap::Args, Debug, Clone)]
pub struct AttachArgs {
    /// The run folder (the --out of the run)
    #[arg(value_name = "RUN_DIR")]
    pub dir: PathBuf,

    /// Plain ASCII instead of block and braille characters
    #[arg(long)]
    pub ascii: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LsArgs {
    /// A folder of run folders, or one run folder
    #[arg(value_name = "RUNS_DIR", default_value = "runs")]
    pub dir: PathBuf,
}

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Which of the reference's configurations (all: 5 critic steps, Adam 1e-4)
    #[arg(long, value_enum)]
    pub config: BenchConfig,

    /// Timed generator iterations [default: 200 toy, 30 mnist, 5 cifar32, 3 face64]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub iters: Option<u64>,

    /// Untimed generator iterations first
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,

    /// Threads for the kernels [default: all cores]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,

    /// Seed of the weights, data and noise
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Where training runs: `cpu`, `cuda` or `twin` [default: cuda when built with it and a GPU
    /// is there, else cpu]
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct FiguresArgs {
    /// Folder for fig-value-surfaces.png, fig-gradient-norms.png, fig-weights.png and
    /// figures.json
    #[arg(long, value_name = "DIR", default_value = "figures")]
    pub out: PathBuf,

    /// Generator iterations (5 critic steps each) of each of the 10 trainings
    #[arg(long, default_value_t = DEFAULT_FIGURE_STEPS,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub steps: u64,

    /// Seed of every training (weights, data, noise)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Threads for the kernels [default: all cores]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct SampleArgs {
    /// A checkpoint folder, or a run folder (its newest checkpoint)
    #[arg(long, value_name = "CHECKPOINT")]
    pub from: PathBuf,

    /// How many samples, at most 1000000 (a .png grid: as many as fit 8192x8192 pixels)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub count: u64,

    /// Output. Images: `.idx` or `.idx.gz` (MNIST's IDX layout, grey only), `.png` (a grid),
    /// or a folder `DIR/` (one PNG a sample at the model's size, `000000.png`, ...: what FID
    /// tools read). Toy data: `.csv` (x,y per line)
    #[arg(long, value_name = "FILE|DIR/")]
    pub out: PathBuf,

    /// Seed of the noise
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Draw from the raw generator, not the averaged one (runs with --ema keep both; without
    /// an averaged generator the raw one is used anyway)
    #[arg(long)]
    pub raw: bool,
}

fn number(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(format!("`{s}` is not a finite number"))
    }
}

// The flags of the live hyperparameters take what `config`'s checks take, as the monitor's
// keys and the run's socket do.

fn lambda(s: &str) -> Result<f64, String> {
    number(s).and_then(check_lambda)
}

fn learning_rate(s: &str) -> Result<f64, String> {
    number(s).and_then(check_lr)
}

fn clip(s: &str) -> Result<f64, String> {
    number(s).and_then(check_clip)
}

fn betas(s: &str) -> Result<[f64; 2], String> {
    let parts: Vec<&str> = s.split(',').collect();
    let [b1, b2] = parts[..] else {
        return Err(format!("`{s}` is not two numbers B1,B2"));
    };
    check_betas([number(b1)?, number(b2)?])
}

fn ema(s: &str) -> Result<f64, String> {
    check_ema(number(s)?)
}

fn critic_steps(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number from 1 to {MAX_CRITIC_STEPS}"))?;
    check_n_critic(n)
}

fn picture_side(s: &str) -> Result<usize, String> {
    match s.trim() {
        "32" => Ok(32),
        "64" => Ok(64),
        _ => Err(format!(
            "`{s}` is not a side this program trains at (64 or 32)"
        )),
    }
}

/// Parses `--data`: `mnist`, `toy:NAME`, a folder of pictures (at `side`), or an IDX file.
pub fn parse_data(s: &str, side: usize) -> Result<DataSpec, String> {
    if s == "mnist" {
        return Ok(DataSpec::Mnist);
    }
    if let Some(name) = s.strip_prefix("toy:") {
        return ToySet::from_str(name, true)
            .map(DataSpec::Toy)
            .map_err(|_| {
                format!(
                    "--data: unknown toy set `{name}` (use 8gaussians, 25gaussians or swissroll)"
                )
            });
    }
    let path = PathBuf::from(s);
    if path.is_dir() {
        return Ok(DataSpec::Folder { path, side });
    }
    Ok(DataSpec::Idx(path))
}

/// `runs/<UTC date-time>`, e.g. `runs/20261126-193812`.
pub fn default_out_dir() -> PathBuf {
    let t = time::OffsetDateTime::now_utc();
    PathBuf::from("runs").join(format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

impl Cli {
    /// The run's configuration, with the family's defaults filled in.
    pub fn to_config(&self) -> Result<TrainConfig, String> {
        let data = parse_data(&self.data, self.size)?;
        let toy = matches!(data, DataSpec::Toy(_));
        if self.deep && !toy {
            return Err("--deep: the deep nets train on toy data only (--data toy:NAME)".into());
        }
        if self.fixed_generator.is_some() && !toy {
            return Err(
                "--fixed-generator: a fixed generator exists for toy data only (--data toy:NAME)"
                    .into(),
            );
        }
        let family = if self.deep {
            Family::DeepToy
        } else {
            data.family()
        };
        let (batch, lambda) = family.defaults();
        let lr = self.lr.unwrap_or(self.penalty.default_lr());
        let hyper = Hyper {
            lambda: self.lambda.unwrap_or(lambda),
            lr_generator: lr,
            lr_critic: lr,
            n_critic: self.n_critic,
            penalty: self.penalty,
            clip: self.clip,
        };
        hyper.validate()?;
        let threads = self
            .threads
            .map(|t| t as usize)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Ok(TrainConfig {
            data,
            family,
            out: self.out.clone().unwrap_or_else(default_out_dir),
            steps: Some(self.steps.unwrap_or(DEFAULT_STEPS)),
            seed: self.seed.unwrap_or_else(rand::random),
            batch: self.batch.map_or(batch, |b| b as usize),
            hyper,
            sample_every: self.sample_every,
            log_every: self.log_every,
            threads,
            checkpoint_every: self.checkpoint_every,
            keep: self.keep as usize,
            betas: self.betas.unwrap_or(family.default_betas()),
            device: CPU_DEVICE.into(),
            tensorboard: !self.no_tensorboard,
            fixed_generator: self.fixed_generator,
            ema: self.ema,
            eval_every: self.eval_every,
            on_alert: self.on_alert.clone(),
            on_nan: self.on_nan,
        })
    }

    /// The configuration of a resumed run: the checkpoint's, with the flags that may change on
    /// resuming applied. `run_dir` is the run folder the checkpoint belongs to.
    pub fn resumed_config(&self, saved: &TrainConfig, run_dir: &Path) -> TrainConfig {
        let mut config = saved.clone();
        config.out = run_dir.to_path_buf();
        if let Some(steps) = self.steps {
            config.steps = Some(steps);
        }
        if let Some(threads) = self.threads {
            config.threads = threads as usize;
        }
        // Where the run goes on is chosen afresh (--device), not where it ran before.
        config.device = CPU_DEVICE.into();
        config.checkpoint_every = self.checkpoint_every;
        config.keep = self.keep as usize;
        config.tensorboard = !self.no_tensorboard;
        if self.on_alert.is_some() {
            config.on_alert = self.on_alert.clone();
        }
        config.on_nan = self.on_nan;
        config
    }
}

pub const DEFAULT_STEPS: u64 = 200_000;

/// Generator iterations of each of `figures`' trainings by default.
pub const DEFAULT_FIGURE_STEPS: u64 = 200;

/// Lets clap parse a type of the layers below by its names and say what each means, so that
/// those layers know nothing of the command line.
macro_rules! value_enum {
    ($ty:ty { $($variant:expr => $name:literal $(: $help:literal)?),* $(,)? }) => {
        impl ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($variant),*]
            }
            fn to_possible_value(&self) -> Option<PossibleValue> {
                $(
                    if *self == $variant {
                        return Some(PossibleValue::new($name)$(.help($help))?);
                    }
                )*
                None
            }
        }
    };
}

value_enum!(PenaltyMode {
    PenaltyMode::Gp => "gp": "gradient penalty, lambda * mean((||grad D(x_hat)|| - 1)^2) (WGAN-GP)",
    PenaltyMode::Lp => "lp": "one-sided penalty, lambda * mean(max(0, ||grad D(x_hat)|| - 1)^2)",
    PenaltyMode::Clip => "clip": "no penalty; critic weights clipped to [-c, c] (the original WGAN)",
});

value_enum!(ToySet {
    ToySet::EightGaussians => "8gaussians",
    ToySet::TwentyFiveGaussians => "25gaussians",
    ToySet::Swissroll => "swissroll",
});

value_enum!(FixedGenerator {
    FixedGenerator::Noise => "noise": "the real batch plus N(0, I) noise (toy data only)",
});

value_enum!(DeviceChoice {
    DeviceChoice::Cpu => "cpu",
    DeviceChoice::Cuda => "cuda",
    DeviceChoice::Twin => "twin": "the device code on the CPU (the kernels compiled by g++): slow, for checking",
});

value_enum!(BenchConfig {
    BenchConfig::Toy => "toy": "8gaussians, 3x512 MLPs, batch 256, lambda 0.1",
    BenchConfig::Mnist => "mnist": "embedded MNIST, the DCGAN-like nets, batch 50, lambda 10",
    BenchConfig::Cifar32 => "cifar32": "the paper's CIFAR-10 nets on uniform random 32x32 colour pictures, batch 64, lambda 10",
    BenchConfig::Face64 => "face64": "gan-zoo's 64x64 nets on uniform random colour pictures, batch 64, lambda 10, Adam (0.9, 0.999)",
});

value_enum!(OnNan {
    OnNan::Pause => "pause",
    OnNan::Rollback => "rollback",
});

value_enum!(OnHangup {
    OnHangup::Detach => "detach",
    OnHangup::Stop => "stop",
});
