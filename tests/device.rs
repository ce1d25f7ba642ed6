//! The device training steps, run on the CPU twin of the GPU (the kernels' own CUDA source
//! compiled by g++, cuBLAS's column-major product), against the dfdx CPU path: the gradients
//! of whole critic and generator steps, training that follows the CPU run, checkpoints that
//! move between the two, and the non-finite gate.

use std::ffi::c_void;
use std::sync::Arc;

use clap::Parser;
use dfdx::prelude::*;
use wgangp_tui::cli::Cli;
use wgangp_tui::cmd::gpu_check::{against_twin, max_rel_err};
use wgangp_tui::config::TrainConfig;
use wgangp_tui::data::Dataset;
use wgangp_tui::data::folder::ImageFolder;
use wgangp_tui::model::device::twin::Twin;
use wgangp_tui::model::device::{Backend, Buffer, Gemm, Ptr, Transfers};
use wgangp_tui::model::params::{read_params, write_params};
use wgangp_tui::model::{Critic, Generator};
use wgangp_tui::train::families::{
    CifarD, CifarG, DeepD, DeepG, FaceD, FaceG, MnistD, MnistG, ToyD, ToyG,
};
use wgangp_tui::train::reference::{BenchConfig, reference};
use wgangp_tui::train::{StepError, Trainer};

/// Largest relative error of a gradient tensor allowed between the twin and the CPU path
/// (measured at the nets' initial weights: at most 1.4e-6, every seed, mode and family).
const GRADIENT_TOLERANCE: f64 = 1e-4;
/// The same for trained deep nets, where ReLU flips happen (see below).
const FLIP_TOLERANCE: f64 = 5e-2;

fn config(args: &[&str]) -> TrainConfig {
    let mut argv = vec!["wgangp-tui", "--no-ui"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).unwrap().to_config().unwrap()
}

fn trainers<G, D, const Z: usize, const X: usize>(
    args: &[&str],
) -> (Trainer<G, D, Z, X>, Trainer<G, D, Z, X>)
where
    G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
{
    let config = config(args);
    let data = || Dataset::load(&config.data).unwrap();
    let cpu = Trainer::new(&config, data());
    let twin = Trainer::new(&config, data())
        .on_device(Arc::new(Twin::new()))
        .unwrap();
    (cpu, twin)
}

/// The critic's and the generator's gradients, each `[cpu, twin]`, agree to
/// [`GRADIENT_TOLERANCE`].
fn assert_close_gradients(label: &str, critic: [&[Vec<f32>]; 2], generator: [&[Vec<f32>]; 2]) {
    let critic_err = max_rel_err(critic[0], critic[1]);
    let generator_err = max_rel_err(generator[0], generator[1]);
    println!("{label}: critic {critic_err:.2e}, generator {generator_err:.2e}");
    assert!(
        critic_err <= GRADIENT_TOLERANCE,
        "{label}: critic gradients off by {critic_err:.2e}"
    );
    assert!(
        generator_err <= GRADIENT_TOLERANCE,
        "{label}: generator gradients off by {generator_err:.2e}"
    );
}

/// One critic step's and one generator step's gradients, twin against CPU, for each seed.
fn gradients_agree<G, D, const Z: usize, const X: usize>(args: &[&str])
where
    G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
{
    for seed in ["1", "2", "3"] {
        let mut args = args.to_vec();
        args.extend(["--seed", seed]);
        let (mut cpu, mut twin) = trainers::<G, D, Z, X>(&args);
        let (c_stats, c_critic, c_loss, c_gen) = cpu.probe_gradients().unwrap();
        let (t_stats, t_critic, t_loss, t_gen) = twin.probe_gradients().unwrap();
        let label = format!("{args:?}");
        assert_close_gradients(&label, [&c_critic, &t_critic], [&c_gen, &t_gen]);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * (1.0 + a.abs());
        for (what, a, b) in [
            ("loss", c_stats.loss, t_stats.loss),
            ("d_real", c_stats.d_real, t_stats.d_real),
            ("penalty", c_stats.penalty, t_stats.penalty),
            (
                "weighted penalty",
                c_stats.weighted_penalty,
                t_stats.weighted_penalty,
            ),
            (
                "mean gradient norm",
                c_stats.grad_norm_mean,
                t_stats.grad_norm_mean,
            ),
            (
                "gradient norm std",
                c_stats.grad_norm_std,
                t_stats.grad_norm_std,
            ),
            ("generator loss", c_loss, t_loss),
        ] {
            assert!(close(a, b), "{args:?}: {what}: CPU {a}, twin {b}");
        }
        for ((name, a), (_, b)) in c_stats
            .layer_grad_norms
            .iter()
            .zip(&t_stats.layer_grad_norms)
        {
            assert!(
                close(*a, *b),
                "{args:?}: {name}'s gradient norm: CPU {a}, twin {b}"
            );
        }
        assert_eq!(
            c_stats.layer_grad_norms.len(),
            t_stats.layer_grad_norms.len()
        );
    }
}

#[test]
fn toy_gradients_match_the_cpu_in_every_penalty_mode() {
    for mode in ["gp", "lp", "clip"] {
        gradients_agree::<ToyG, ToyD, 2, 2>(&[
            "--data",
            "toy:8gaussians",
            "--batch",
            "32",
            "--penalty",
            mode,
        ]);
    }
    gradients_agree::<ToyG, ToyD, 2, 2>(&[
        "--data",
        "toy:swissroll",
        "--batch",
        "16",
        "--lambda",
        "10",
        "--fixed-generator",
        "noise",
    ]);
}

#[test]
fn deep_toy_gradients_match_the_cpu() {
    gradients_agree::<DeepG, DeepD, 2, 2>(&["--data", "toy:swissroll", "--deep", "--batch", "16"]);
    gradients_agree::<DeepG, DeepD, 2, 2>(&[
        "--data",
        "toy:swissroll",
        "--deep",
        "--batch",
        "16",
        "--penalty",
        "clip",
        "--clip",
        "0.1",
    ]);
}

#[test]
fn mnist_gradients_match_the_cpu() {
    gradients_agree::<MnistG, MnistD, 128, 784>(&["--batch", "8"]);
    gradients_agree::<MnistG, MnistD, 128, 784>(&["--batch", "4", "--penalty", "clip"]);
}

/// One critic step's and one generator step's gradients, twin against CPU, of the colour
/// nets of `which` on pictures of random bytes of `side`, as the benchmark trains them.
fn picture_gradients_agree<G, D, const X: usize>(which: BenchConfig, side: usize, batch: usize)
where
    G: Generator<f32, 128, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
{
    for seed in [1, 2, 3] {
        let mut config = reference(which, 2, seed);
        config.batch = batch;
        let data = || Dataset::Folder(ImageFolder::random(side, 4 * batch, seed));
        let mut cpu = Trainer::<G, D, 128, X>::new(&config, data());
        let twin = Trainer::<G, D, 128, X>::new(&config, data());
        let mut twin = twin.on_device(Arc::new(Twin::new())).unwrap();
        let (c_stats, c_critic, c_loss, c_gen) = cpu.probe_gradients().unwrap();
        let (t_stats, t_critic, t_loss, t_gen) = twin.probe_gradients().unwrap();
        let label = format!("{side}x{side} seed {seed}");
        assert_close_gradients(&label, [&c_critic, &t_critic], [&c_gen, &t_gen]);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * (1.0 + a.abs());
        assert!(close(c_stats.loss, t_stats.loss));
        assert!(close(c_stats.penalty, t_stats.penalty));
        assert!(close(c_loss, t_loss));
    }
}

/// The 32x32 nets: the generator's batch norm over the whole batch.
#[test]
fn cifar32_gradients_match_the_cpu() {
    picture_gradients_agree::<CifarG, CifarD, 3072>(BenchConfig::Cifar32, 32, 4);
}

/// The 64x64 nets: GroupNorm per image in both, so the critic's penalty runs back through the
/// normalisations' adjoints and from them through its forward pass.
#[test]
fn face64_gradients_match_the_cpu() {
    picture_gradients_agree::<FaceG, FaceD, 12288>(BenchConfig::Face64, 64, 2);
}

/// Trains both for `steps` iterations; the largest difference between their figures (critic
/// loss, penalty, D(real), generator loss), each relative to the largest size that figure
/// reached in the CPU run.
fn train_both<G, D, const Z: usize, const X: usize>(
    cpu: &mut Trainer<G, D, Z, X>,
    twin: &mut Trainer<G, D, Z, X>,
    steps: usize,
) -> f64
where
    G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
{
    let mut series = vec![(Vec::new(), Vec::new()); 4];
    for _ in 0..steps {
        let a = cpu.iteration().unwrap();
        let b = twin.iteration().unwrap();
        let pairs = [
            (a.critic.loss, b.critic.loss),
            (a.critic.penalty, b.critic.penalty),
            (a.critic.d_real, b.critic.d_real),
            (a.generator_loss, b.generator_loss),
        ];
        for ((xs, ys), (x, y)) in series.iter_mut().zip(pairs) {
            xs.push(x);
            ys.push(y);
        }
    }
    assert_eq!((cpu.step, cpu.opt_critic.t), (twin.step, twin.opt_critic.t));
    assert_eq!(cpu.opt_generator.t, twin.opt_generator.t);
    let relative = |(xs, ys): &(Vec<f64>, Vec<f64>)| {
        let size = xs.iter().fold(1e-6f64, |m, x| m.max(x.abs()));
        let diff = xs
            .iter()
            .zip(ys)
            .fold(0f64, |m, (x, y)| m.max((x - y).abs()));
        if diff.is_nan() {
            f64::INFINITY
        } else {
            diff / size
        }
    };
    series.iter().map(relative).fold(0.0, f64::max)
}

/// Difference allowed between the figures of a CPU and a twin run over 20 generator steps, as
/// `train_both` measures it. The gradients agree to 1e-6, but Adam's and RMSprop's steps
/// (g / sqrt(v): about lr * sign(g) at first) turn a rounding difference in a gradient near
/// zero into a whole step, and training magnifies it from there. Measured on these runs:
/// 1.6e-2 (toy gp), 4.3e-2 (toy clip, whose figures are of the order of 1e-3).
const TRAINING_TOLERANCE: f64 = 6e-2;

#[test]
fn twenty_steps_on_the_twin_follow_the_cpu() {
    for (mode, seed) in [("gp", "4"), ("clip", "5")] {
        let args = [
            "--data",
            "toy:25gaussians",
            "--batch",
            "32",
            "--penalty",
            mode,
            "--seed",
            seed,
        ];
        let (mut cpu, mut twin) = trainers::<ToyG, ToyD, 2, 2>(&args);
        let worst = train_both(&mut cpu, &mut twin, 20);
        println!("{mode}: the losses differ by at most {worst:.2e}");
        assert!(
            worst <= TRAINING_TOLERANCE,
            "{mode}: the losses drift apart by {worst:.2e}"
        );
        let params = |t: &Trainer<ToyG, ToyD, 2, 2>| {
            let (g, c) = t.host_nets().unwrap();
            [read_params(g.as_ref()), read_params(c.as_ref())]
        };
        let ([cg, cc], [tg, tc]) = (params(&cpu), params(&twin));
        let err = max_rel_err(&cg, &tg).max(max_rel_err(&cc, &tc));
        assert!(
            err <= TRAINING_TOLERANCE,
            "{mode}: the weights drift apart by {err:.2e}"
        );
    }
    let args = ["--batch", "8", "--seed", "4"];
    let (mut cpu, mut twin) = trainers::<MnistG, MnistD, 128, 784>(&args);
    let worst = train_both(&mut cpu, &mut twin, 20);
    println!("mnist: the losses differ by at most {worst:.2e}");
    assert!(
        worst <= TRAINING_TOLERANCE,
        "mnist: the losses drift apart by {worst:.2e}"
    );
}

/// Trains `cpu` and `twin` together for `follow` generator steps (their figures within
/// [`TRAINING_TOLERANCE`]), then the CPU alone to step 20; from the CPU's state there, one
/// step's gradients on both agree to [`FLIP_TOLERANCE`]. Returns the two measures.
fn follow_then_probe<G, D, const Z: usize, const X: usize>(
    run: &TrainConfig,
    (mut cpu, mut twin): (Trainer<G, D, Z, X>, Trainer<G, D, Z, X>),
    follow: usize,
) -> (f64, f64)
where
    G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
{
    let worst = train_both(&mut cpu, &mut twin, follow);
    for _ in follow..20 {
        cpu.iteration().unwrap();
    }
    twin.restore(&cpu.checkpoint(run, 0.0).unwrap()).unwrap();
    let (_, c_critic, _, c_gen) = cpu.probe_gradients().unwrap();
    let (_, t_critic, _, t_gen) = twin.probe_gradients().unwrap();
    let err = max_rel_err(&c_critic, &t_critic).max(max_rel_err(&c_gen, &t_gen));
    (worst, err)
}

/// The colour nets (their normalisations on the device) on pictures of random bytes, as the
/// benchmark trains them, at small batches and one critic step per generator step. The 32x32
/// generator's batch norm over 4 pictures makes its training chaotic, as the deep toy nets'
/// (below): its CPU and twin runs part by 1.3e-1 over 20 steps (7.0e-2 with 5 critic steps),
/// so they are held together for 5, then compared where the CPU run has got to.
#[test]
fn the_colour_nets_on_the_twin_follow_the_cpu() {
    let config = |which, batch| {
        let mut config = reference(which, 2, 6);
        config.batch = batch;
        config.hyper.n_critic = 1;
        config
    };

    let cifar = config(BenchConfig::Cifar32, 4);
    let data = || Dataset::Folder(ImageFolder::random(32, 16, 6));
    let new = || Trainer::<CifarG, CifarD, 128, 3072>::new(&cifar, data());
    let twin = new().on_device(Arc::new(Twin::new())).unwrap();
    let (worst, err) = follow_then_probe(&cifar, (new(), twin), 5);
    println!("cifar32: the figures differ by {worst:.2e}, the gradients at 20 by {err:.2e}");
    assert!(worst <= TRAINING_TOLERANCE, "cifar32: figures {worst:.2e}");
    assert!(err <= FLIP_TOLERANCE, "cifar32: gradients {err:.2e}");

    let face = config(BenchConfig::Face64, 2);
    let data = || Dataset::Folder(ImageFolder::random(64, 8, 6));
    let new = || Trainer::<FaceG, FaceD, 128, 12288>::new(&face, data());
    let twin = new().on_device(Arc::new(Twin::new())).unwrap();
    let (worst, err) = follow_then_probe(&face, (new(), twin), 20);
    println!("face64: the figures differ by {worst:.2e}, the gradients at 20 by {err:.2e}");
    assert!(worst <= TRAINING_TOLERANCE, "face64: figures {worst:.2e}");
    assert!(err <= FLIP_TOLERANCE, "face64: gradients {err:.2e}");
}

/// The 12-layer nets' training is chaotic at the start (penalties of 3 to 20 from one
/// generator step to the next): a difference of rounding, magnified by Adam's first steps,
/// takes the CPU and twin runs apart within 2 generator steps (measured: 1e-3 after the
/// first, 0.3 after the second). So the twin is checked where the CPU run has got to: from
/// its state after 20 steps, one more step's gradients agree, to [`FLIP_TOLERANCE`].
///
/// Trained, these nets have many pre-activations within rounding of zero, where two devices
/// summing in other orders may put one on different sides of a ReLU, which changes the
/// gradient by a finite amount. Measured from the states after 10, 19 and 20 steps of seeds
/// 6 to 9: 1e-6 in five of eight gradient sets, 2.9e-3, 8.1e-3 and 1.9e-2 in the others (a
/// wrong index or transpose gives errors of order 1).
#[test]
fn deep_toy_gradients_match_after_twenty_steps_of_training() {
    let args = [
        "--data",
        "toy:swissroll",
        "--deep",
        "--batch",
        "16",
        "--seed",
        "6",
    ];
    let run = config(&args);
    let (mut cpu, mut twin) = trainers::<DeepG, DeepD, 2, 2>(&args);
    let first = train_both(&mut cpu, &mut twin, 1);
    assert!(first <= 5e-3, "deep: the first step differs by {first:.2e}");
    for _ in 0..19 {
        cpu.iteration().unwrap();
    }
    twin.restore(&cpu.checkpoint(&run, 0.0).unwrap()).unwrap();
    let (_, c_critic, _, c_gen) = cpu.probe_gradients().unwrap();
    let (_, t_critic, _, t_gen) = twin.probe_gradients().unwrap();
    let err = max_rel_err(&c_critic, &t_critic).max(max_rel_err(&c_gen, &t_gen));
    println!("deep, after 20 steps: gradients differ by {err:.2e}");
    assert!(
        err <= FLIP_TOLERANCE,
        "deep, after 20 steps: gradients off by {err:.2e}"
    );
}

#[test]
fn checkpoints_move_between_the_twin_and_the_cpu() {
    let args = ["--data", "toy:8gaussians", "--batch", "32", "--seed", "7"];
    let run = config(&args);
    let (mut cpu, mut twin) = trainers::<ToyG, ToyD, 2, 2>(&args);
    train_both(&mut cpu, &mut twin, 3);
    // The twin's state resumes on the CPU, the CPU's on the twin.
    let from_twin = twin.checkpoint(&run, 0.0).unwrap();
    let from_cpu = cpu.checkpoint(&run, 0.0).unwrap();
    assert_eq!(from_twin.opt_critic.t, from_cpu.opt_critic.t);
    assert_eq!(from_twin.opt_critic.m.len(), from_cpu.opt_critic.m.len());
    let (mut cpu_resumed, mut twin_resumed) = trainers::<ToyG, ToyD, 2, 2>(&args);
    cpu_resumed.restore(&from_twin).unwrap();
    twin_resumed.restore(&from_cpu).unwrap();
    // Each resumed run goes on as the run it came from would have.
    let worst = train_both(&mut twin, &mut cpu_resumed, 3);
    assert!(
        worst <= TRAINING_TOLERANCE,
        "a twin checkpoint on the CPU: off by {worst:.2e}"
    );
    let worst = train_both(&mut cpu, &mut twin_resumed, 3);
    assert!(
        worst <= TRAINING_TOLERANCE,
        "a CPU checkpoint on the twin: off by {worst:.2e}"
    );
}

/// No kernel's result depends on the order its threads run in (no atomics, no thread reads
/// what another writes in the same launch): two twins running every launch's threads in other
/// shuffled orders train to the same bits, as a GPU repeats a run on the same card.
#[test]
fn the_thread_order_changes_no_bit() {
    fn bits(t: &Trainer<MnistG, MnistD, 128, 784>) -> Vec<Vec<u32>> {
        let (g, c) = t.host_nets().unwrap();
        let all = [read_params(g.as_ref()), read_params(c.as_ref())].concat();
        all.iter()
            .map(|v| v.iter().map(|x| x.to_bits()).collect())
            .collect()
    }
    let config = config(&["--batch", "4", "--seed", "9", "--n-critic", "2"]);
    let run = |order_seed: u64| {
        let data = Dataset::load(&config.data).unwrap();
        let twin = Arc::new(Twin::with_order_seed(order_seed));
        let mut trainer = Trainer::<MnistG, MnistD, 128, 784>::new(&config, data)
            .on_device(twin)
            .unwrap();
        let losses: Vec<u64> = (0..2)
            .map(|_| trainer.iteration().unwrap().critic.loss.to_bits())
            .collect();
        (losses, bits(&trainer))
    };
    let (first, second) = (run(1), run(2));
    assert!(first == second, "the thread order changed the result");
}

#[test]
fn a_non_finite_step_on_the_twin_applies_nothing() {
    let args = [
        "--data",
        "toy:8gaussians",
        "--batch",
        "16",
        "--seed",
        "8",
        "--n-critic",
        "2",
    ];
    let (_, mut twin) = trainers::<ToyG, ToyD, 2, 2>(&args);
    twin.iteration().unwrap();
    let (g, c) = twin.host_nets().unwrap();
    let (g, mut c) = (g.into_owned(), c.into_owned());
    let mut params = read_params(&c);
    let last_weight = params.len() - 2;
    params[last_weight][0] = f32::NAN;
    write_params(&mut c, &params);
    // The poisoned critic goes back on the device through a checkpoint of it.
    let run = config(&args);
    let mut ck = twin.checkpoint(&run, 0.0).unwrap();
    ck.critic = wgangp_tui::model::params::named_params(&c);
    twin.restore(&ck).unwrap();
    let bits = |v: Vec<Vec<f32>>| -> Vec<Vec<u32>> {
        v.iter()
            .map(|t| t.iter().map(|x| x.to_bits()).collect())
            .collect()
    };
    let before = (twin.opt_critic.t, twin.opt_generator.t);
    let StepError::NonFinite(err) = twin.iteration().unwrap_err() else {
        panic!("a NaN is a non-finite step");
    };
    assert_eq!(err.what, "the critic loss", "{err}");
    assert_eq!(err.step, 2);
    let (g_after, c_after) = twin.host_nets().unwrap();
    assert_eq!(bits(read_params(c_after.as_ref())), bits(read_params(&c)));
    assert_eq!(read_params(g_after.as_ref()), read_params(&g));
    assert_eq!((twin.opt_critic.t, twin.opt_generator.t), before);
}

/// A twin that gets one thing wrong: its products are 1% too large, or it skips the clipping
/// kernel.
struct Faulty {
    twin: Twin,
    skewed_products: bool,
}

impl Backend for Faulty {
    fn name(&self) -> &str {
        "faulty"
    }
    fn alloc(&self, len: usize) -> anyhow::Result<Buffer> {
        self.twin.alloc(len)
    }
    fn upload(&self, to: Ptr, words: &[u32]) -> anyhow::Result<()> {
        self.twin.upload(to, words)
    }
    fn download(&self, from: Ptr, out: &mut [u32]) -> anyhow::Result<()> {
        self.twin.download(from, out)
    }
    fn gemm(&self, g: &Gemm) -> anyhow::Result<()> {
        let scale = if self.skewed_products { 1.01 } else { 1.0 };
        let alpha = g.alpha * scale;
        self.twin.gemm(&Gemm { alpha, ..*g })
    }
    fn launch_raw(
        &self,
        name: &'static str,
        twin: unsafe extern "C" fn(*const c_void, *const u32, u32),
        params: *const c_void,
        n: u32,
    ) -> anyhow::Result<()> {
        if name == "clip" && !self.skewed_products {
            return Ok(());
        }
        self.twin.launch_raw(name, twin, params, n)
    }
    fn transfers(&self) -> Transfers {
        self.twin.transfers()
    }
    fn peak_bytes(&self) -> u64 {
        self.twin.peak_bytes()
    }
}

/// What `gpu-check --device cuda` runs against the twin: two twins that run their threads in
/// other orders agree; a backend with one fault does not.
#[test]
fn the_kernel_check_against_the_twin_finds_a_fault() {
    let twin = || Arc::new(Twin::new());
    let same = against_twin(Arc::new(Twin::with_order_seed(3)), twin()).unwrap();
    println!("{same:?}");
    assert!(same.ok);
    assert_eq!(same.gradients.len(), 7);
    assert!(same.updates.iter().all(|(_, e)| *e == 0.0));
    for skewed_products in [true, false] {
        let faulty = Faulty {
            twin: Twin::new(),
            skewed_products,
        };
        let check = against_twin(Arc::new(faulty), twin()).unwrap();
        println!("{check:?}");
        assert!(!check.ok, "a fault passed: {check:?}");
    }
}
