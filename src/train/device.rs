//! Training steps that live on a device: both nets' parameters, gradients and optimizer
//! moments stay there, and so does every activation, the penalty's input-gradient graph, the
//! optimizer's update and clipping. Per generator iteration the host sends one buffer (the
//! real batches, the noise and the interpolation weights, drawn on the host from the run's
//! RNG, so that a device run sees the numbers a CPU run sees) and reads one back (each step's
//! figures, the last critic step's per-tensor gradient sums and the non-finite gate): nothing
//! else waits for the device.
//!
//! A step whose loss or gradient is not finite applies nothing, and neither does any step
//! after it in the iteration (the `step_stats` kernel's gate); the host learns of it at the
//! read-back and reports the first such step as the CPU path does.

use std::sync::Arc;

use anyhow::Result;

use super::optim::{EPS, Optimizer, RMSPROP_ALPHA};
use super::stats::CriticStats;
use crate::checkpoint::NamedTensor;
use crate::config::{Hyper, OptimizerKind, PenaltyMode};
use crate::model::device::kernels::{NULL, params as k};
use crate::model::device::net::{DeviceNet, NetSpec, fill};
use crate::model::device::{Backend, Buffer, Ptr};

/// Floats a critic step's record takes in the read-back (see `step_stats` in kernels.cu).
const CRITIC_RECORD: usize = 8;
const GENERATOR_RECORD: usize = 2;
/// The gate: [all finite so far, what failed (1 the loss, 2 a gradient), at which step].
const GATE: usize = 3;

/// The random draws of one iteration, as the CPU path draws them: per critic step a real
/// batch, its noise and its interpolation weights, one after another; then the generator
/// step's noise (none when the generator is fixed).
#[derive(Default)]
pub struct Draws {
    pub real: Vec<f32>,
    pub noise: Vec<f32>,
    pub eps: Vec<f32>,
    pub generator_noise: Vec<f32>,
}

/// What an iteration measured, read back once at its end.
#[derive(Debug)]
pub struct Outcome {
    /// Each critic step's figures (without `layer_grad_norms`).
    pub critic: Vec<CriticStats>,
    /// The last critic step's gradient: the sum of squares of each critic tensor.
    pub critic_sumsq: Vec<f64>,
    pub generator_loss: Option<f64>,
    /// Updates applied to the critic and to the generator.
    pub applied: [u64; 2],
    /// The first step that was not finite: what was not, and the step's number in the
    /// iteration (the critic steps first, then the generator's).
    pub failed: Option<(&'static str, usize)>,
}

pub struct DeviceTraining {
    dev: Arc<dyn Backend>,
    pub generator: DeviceNet,
    pub critic: DeviceNet,
    /// Values of a sample and of a noise vector.
    x: usize,
    z: usize,
    /// The fakes are the real batch plus the noise (`--fixed-generator noise`).
    fixed_generator: bool,
}

impl DeviceTraining {
    /// Both nets on `dev`, with the values of the models' tensors (`named_*`).
    pub fn new(
        dev: Arc<dyn Backend>,
        generator: (&NetSpec, &[NamedTensor]),
        critic: (&NetSpec, &[NamedTensor]),
        (z, x): (usize, usize),
        fixed_generator: bool,
    ) -> Result<Self> {
        let g = DeviceNet::new(&*dev, generator.0, generator.1)?;
        let c = DeviceNet::new(&*dev, critic.0, critic.1)?;
        anyhow::ensure!(c.output_width() == 1, "a critic gives one score");
        Ok(Self {
            dev,
            generator: g,
            critic: c,
            x,
            z,
            fixed_generator,
        })
    }

    pub fn backend(&self) -> &dyn Backend {
        &*self.dev
    }

    /// The tensors of both nets (generator first), read back.
    pub fn read_params(&self) -> Result<[Vec<Vec<f32>>; 2]> {
        let dev = &*self.dev;
        Ok([
            self.generator.read(dev, &self.generator.params)?,
            self.critic.read(dev, &self.critic.params)?,
        ])
    }

    /// A net's optimizer moments, read back (m, v).
    pub fn read_moments(&self, critic: bool) -> Result<[Vec<Vec<f32>>; 2]> {
        let net = if critic {
            &self.critic
        } else {
            &self.generator
        };
        let dev = &*self.dev;
        Ok([net.read(dev, &net.m)?, net.read(dev, &net.v)?])
    }

    /// The last step's gradients of both nets (generator first), read back.
    pub fn read_grads(&self) -> Result<[Vec<Vec<f32>>; 2]> {
        let dev = &*self.dev;
        Ok([
            self.generator.read(dev, &self.generator.grads)?,
            self.critic.read(dev, &self.critic.grads)?,
        ])
    }

    /// Puts parameters and optimizer moments on the device (empty moments: zeros).
    pub fn write_state(
        &self,
        params: [&[Vec<f32>]; 2],
        optimizers: [&Optimizer<f32>; 2],
    ) -> Result<()> {
        let dev = &*self.dev;
        for ((net, params), opt) in [&self.generator, &self.critic]
            .into_iter()
            .zip(params)
            .zip(optimizers)
        {
            net.write(dev, &net.params, params)?;
            net.write(dev, &net.m, &opt.m)?;
            net.write(dev, &net.v, &opt.v)?;
        }
        Ok(())
    }

    /// Both nets' optimizer moments back to zero (a new optimizer).
    pub fn reset_moments(&self) -> Result<()> {
        let dev = &*self.dev;
        for net in [&self.generator, &self.critic] {
            fill(dev, net.m.ptr(), net.m.len(), 0.0)?;
            fill(dev, net.v.ptr(), net.v.len(), 0.0)?;
        }
        Ok(())
    }

    /// One iteration: a critic step per real batch of `draws`, then the generator step (when
    /// it has noise), each updating its net unless `apply` is false (then they only leave
    /// their gradients in the nets' `grads`). `optimizers`: the critic's, then the
    /// generator's, as they stand before the iteration.
    pub fn iteration(
        &self,
        batch: usize,
        draws: &Draws,
        hyper: &Hyper,
        optimizers: [&Optimizer<f32>; 2],
        apply: bool,
    ) -> Result<Outcome> {
        let dev = &*self.dev;
        let (x, z, b) = (self.x, self.z, batch);
        let steps = draws.eps.len() / b;
        anyhow::ensure!(
            draws.real.len() == steps * b * x && draws.noise.len() == steps * b * z,
            "draws of another size"
        );
        // The one upload: real batches, noise, interpolation weights, the generator's noise.
        let mut staged = Vec::with_capacity(
            draws.real.len() + draws.noise.len() + draws.eps.len() + draws.generator_noise.len(),
        );
        for part in [
            &draws.real,
            &draws.noise,
            &draws.eps,
            &draws.generator_noise,
        ] {
            staged.extend_from_slice(part);
        }
        let input = dev.buffer_from(&staged)?;
        let noise_at = draws.real.len();
        let eps_at = noise_at + draws.noise.len();
        let generator_noise_at = eps_at + draws.eps.len();

        let tensors = self.critic.tensors.len();
        let sumsq_at = steps * CRITIC_RECORD;
        let generator_at = sumsq_at + tensors;
        let gate_at = generator_at + GENERATOR_RECORD;
        let readback = dev.alloc(gate_at + GATE)?;
        let gate = readback.at(gate_at);
        let open = if apply { 1.0 } else { 0.0 };
        dev.launch(
            k::fill2 {
                x: gate,
                first: 1,
                a: open,
                b: 0.0,
            },
            GATE,
        )?;

        for s in 0..steps {
            let inputs = [
                input.at(s * b * x),
                input.at(noise_at + s * b * z),
                input.at(eps_at + s * b),
            ];
            let record = readback.at(s * CRITIC_RECORD);
            let t = optimizers[0].t + s as u64 + 1;
            self.critic_step(b, inputs, hyper, (optimizers[0], t), (record, gate, s))?;
        }
        let sums = k::add {
            out: readback.at(sumsq_at),
            a: self.critic.sumsq.ptr(),
            b: NULL,
        };
        dev.launch(sums, tensors)?;
        let generator = !draws.generator_noise.is_empty();
        if generator {
            let noise = input.at(generator_noise_at);
            let record = readback.at(generator_at);
            let t = optimizers[1].t + 1;
            self.generator_step(b, noise, (optimizers[1], t), (record, gate, steps))?;
        }

        // The one read-back, which waits for the work.
        let back = dev.read(readback.ptr(), readback.len())?;
        let f = |i: usize| back[i] as f64;
        let critic: Vec<CriticStats> = (0..steps)
            .map(|s| {
                let r = s * CRITIC_RECORD;
                CriticStats {
                    loss: f(r),
                    d_real: f(r + 1),
                    d_fake: f(r + 2),
                    penalty: f(r + 3),
                    weighted_penalty: f(r + 4),
                    grad_norm_mean: f(r + 5),
                    grad_norm_std: f(r + 6),
                    layer_grad_norms: Vec::new(),
                }
            })
            .collect();
        let critic_applied = (0..steps)
            .filter(|s| back[s * CRITIC_RECORD + 7] != 0.0)
            .count();
        let generator_applied = generator && back[generator_at + 1] != 0.0;
        let failed = (apply && back[gate_at] == 0.0).then(|| {
            let step = back[gate_at + 2] as usize;
            let gradient = back[gate_at + 1] == 2.0;
            let what = match (step < steps, gradient) {
                (true, false) => "the critic loss",
                (true, true) => "a critic gradient",
                (false, false) => "the generator loss",
                (false, true) => "a generator gradient",
            };
            (what, step)
        });
        Ok(Outcome {
            critic,
            critic_sumsq: (0..tensors).map(|t| f(sumsq_at + t)).collect(),
            generator_loss: generator.then(|| f(generator_at)),
            applied: [critic_applied as u64, generator_applied as u64],
            failed,
        })
    }

    /// One critic step on the real batch, noise and interpolation weights at `inputs`; its
    /// figures go to `record`, checked by the gate (the step's number: `step`).
    fn critic_step(
        &self,
        b: usize,
        [real, noise, eps]: [Ptr; 3],
        hyper: &Hyper,
        optimizer: (&Optimizer<f32>, u64),
        (record, gate, step): (Ptr, Ptr, usize),
    ) -> Result<()> {
        let (dev, critic, x) = (&*self.dev, &self.critic, self.x);
        // Real rows, then fake rows, in one pass of the critic.
        let both = dev.alloc(2 * b * x)?;
        dev.launch(
            k::add {
                out: both.ptr(),
                a: real,
                b: NULL,
            },
            b * x,
        )?;
        let fake = both.at(b * x);
        if self.fixed_generator {
            dev.launch(
                k::add {
                    out: fake,
                    a: real,
                    b: noise,
                },
                b * x,
            )?;
        } else {
            let pass = self.generator.forward(dev, noise, b, false)?;
            dev.launch(
                k::add {
                    out: fake,
                    a: pass.out().ptr(),
                    b: NULL,
                },
                b * x,
            )?;
        }
        fill(dev, critic.grads.ptr(), critic.grads.len(), 0.0)?;

        // mean D(fake) - mean D(real)
        let pass = critic.forward(dev, both.ptr(), 2 * b, true)?;
        let weights = dev.alloc(2 * b)?;
        let share = 1.0 / b as f32;
        dev.launch(
            k::fill2 {
                x: weights.ptr(),
                first: b as u32,
                a: -share,
                b: share,
            },
            2 * b,
        )?;
        critic.backward(dev, &pass, both.ptr(), weights, true, false)?;

        // lambda * P at x_hat = eps real + (1 - eps) fake
        let x_hat = dev.alloc(b * x)?;
        let points = k::interpolate {
            out: x_hat.ptr(),
            real,
            fake,
            eps,
            cols: x as u32,
        };
        dev.launch(points, b * x)?;
        let at_hat = critic.forward(dev, x_hat.ptr(), b, true)?;
        let ig = critic.input_gradient(dev, &at_hat)?;
        let [norm, term, coef] = [dev.alloc(b)?, dev.alloc(b)?, dev.alloc(b)?];
        let lambda = hyper.lambda as f32;
        let rows = k::penalty_rows {
            g: ig.g.ptr(),
            norm: norm.ptr(),
            term: term.ptr(),
            coef: coef.ptr(),
            cols: x as u32,
            rows: b as u32,
            one_sided: (hyper.penalty == PenaltyMode::Lp) as u32,
            lambda,
        };
        dev.launch(rows, b)?;
        let penalised = hyper.penalty != PenaltyMode::Clip;
        if penalised {
            let dg = dev.alloc(b * x)?;
            let scale = k::scale_rows {
                out: dg.ptr(),
                g: ig.g.ptr(),
                coef: coef.ptr(),
                cols: x as u32,
            };
            dev.launch(scale, b * x)?;
            critic.input_gradient_backward(dev, &at_hat, x_hat.ptr(), &ig, dg)?;
        }

        critic.gradient_sums(dev)?;
        let stats = k::step_stats {
            scores: pass.out().ptr(),
            norms: norm.ptr(),
            terms: term.ptr(),
            sumsq: critic.sumsq.ptr(),
            record,
            ok: gate,
            rows: b as u32,
            gen_rows: 0,
            tensors: critic.tensors.len() as u32,
            penalised: penalised as u32,
            step: step as u32,
            lambda,
        };
        dev.launch(stats, 1)?;
        self.update(critic, optimizer, gate)?;
        if hyper.penalty == PenaltyMode::Clip {
            let c = hyper.clip as f32;
            dev.launch(
                k::clip {
                    p: critic.params.ptr(),
                    ok: gate,
                    c,
                },
                critic.len(),
            )?;
        }
        Ok(())
    }

    /// One generator step on the noise at `noise`: minimise -mean D(G(z)), the critic's
    /// weights held (only its input gradient is computed).
    fn generator_step(
        &self,
        b: usize,
        noise: Ptr,
        optimizer: (&Optimizer<f32>, u64),
        (record, gate, step): (Ptr, Ptr, usize),
    ) -> Result<()> {
        let (dev, generator, critic) = (&*self.dev, &self.generator, &self.critic);
        fill(dev, generator.grads.ptr(), generator.grads.len(), 0.0)?;
        let made = generator.forward(dev, noise, b, true)?;
        let scored = critic.forward(dev, made.out().ptr(), b, true)?;
        let d_score: Buffer = dev.alloc(b)?;
        fill(dev, d_score.ptr(), b, -1.0 / b as f32)?;
        let d_fake = critic
            .backward(dev, &scored, made.out().ptr(), d_score, false, true)?
            .expect("asked for the input gradient");
        generator.backward(dev, &made, noise, d_fake, true, false)?;
        generator.gradient_sums(dev)?;
        let stats = k::step_stats {
            scores: scored.out().ptr(),
            norms: NULL,
            terms: NULL,
            sumsq: generator.sumsq.ptr(),
            record,
            ok: gate,
            rows: 0,
            gen_rows: b as u32,
            tensors: generator.tensors.len() as u32,
            penalised: 0,
            step: step as u32,
            lambda: 0.0,
        };
        dev.launch(stats, 1)?;
        self.update(generator, optimizer, gate)
    }

    /// The optimizer's update of `net` from its gradient, as the `t`-th update, unless the
    /// gate is closed. The arithmetic is the CPU optimizer's, in f32.
    fn update(&self, net: &DeviceNet, (opt, t): (&Optimizer<f32>, u64), gate: Ptr) -> Result<()> {
        let dev = &*self.dev;
        let (lr, eps) = (opt.lr as f32, EPS as f32);
        match opt.kind {
            OptimizerKind::Adam => {
                let (b1, b2) = (opt.betas[0] as f32, opt.betas[1] as f32);
                let t = t as i32;
                let params = k::adam {
                    p: net.params.ptr(),
                    g: net.grads.ptr(),
                    m: net.m.ptr(),
                    v: net.v.ptr(),
                    ok: gate,
                    lr,
                    b1,
                    b2,
                    bc1: 1.0 - b1.powi(t),
                    bc2: 1.0 - b2.powi(t),
                    eps,
                };
                dev.launch(params, net.len())
            }
            OptimizerKind::RmsProp => {
                let params = k::rmsprop {
                    p: net.params.ptr(),
                    g: net.grads.ptr(),
                    v: net.v.ptr(),
                    ok: gate,
                    lr,
                    alpha: RMSPROP_ALPHA as f32,
                    eps,
                };
                dev.launch(params, net.len())
            }
        }
    }
}
