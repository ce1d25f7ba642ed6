//! A trainer's whole state as a checkpoint, and back.

use dfdx::prelude::*;

use super::average::Averaged;
use super::optim::Optimizer;
use super::{StepError, Trainer};
use crate::checkpoint::{AveragedState, Checkpoint, NamedTensor, OptimizerState};
use crate::config::{OptimizerKind, TrainConfig};
use crate::model::params::{load_named_params, named_params, read_params};
use crate::model::{Critic, Generator};

impl<G, D, const Z: usize, const X: usize> Trainer<G, D, Z, X>
where
    G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
{
    /// The whole training state, for a checkpoint. `config` is the run's; the hyperparameters
    /// in it are replaced by the live ones.
    pub fn checkpoint(&self, config: &TrainConfig, wall_s: f64) -> Result<Checkpoint, StepError> {
        let (generator, critic) = self.host_nets()?;
        let moments = |o: &Optimizer<f32>, critic: bool| -> Result<_, StepError> {
            match &self.device {
                // Moments exist once a net was updated (as the CPU optimizer's).
                Some(device) if o.t > 0 => {
                    let [m, v] = device
                        .read_moments(critic)
                        .map_err(|e| self.device_failed(e))?;
                    Ok((
                        if o.kind == OptimizerKind::Adam {
                            m
                        } else {
                            Vec::new()
                        },
                        v,
                    ))
                }
                Some(_) => Ok((Vec::new(), Vec::new())),
                None => Ok((o.m.clone(), o.v.clone())),
            }
        };
        let opt = |o: &Optimizer<f32>, critic: bool| -> Result<_, StepError> {
            let (m, v) = moments(o, critic)?;
            Ok(OptimizerState {
                kind: o.kind,
                lr: o.lr,
                t: o.t,
                m,
                v,
            })
        };
        Ok(Checkpoint {
            step: self.step,
            wall_s,
            config: TrainConfig {
                hyper: self.hyper.clone(),
                ..config.clone()
            },
            generator: named_params(generator.as_ref()),
            critic: named_params(critic.as_ref()),
            opt_generator: opt(&self.opt_generator, false)?,
            opt_critic: opt(&self.opt_critic, true)?,
            rng: self.rng.clone(),
            averaged: self.averaged.as_ref().map(|a| AveragedState {
                generator: named_params(&a.net),
                updates: a.updates,
            }),
            // The worker fills it in: it keeps the evaluations' best.
            best: None,
            data: self.data_fingerprint.clone(),
        })
    }

    /// Puts a checkpoint's state into this trainer. A checkpoint of another model (names or
    /// shapes differ) is refused; after an error the trainer is half restored and must be
    /// dropped.
    pub fn restore(&mut self, ck: &Checkpoint) -> Result<(), String> {
        load_named_params(&mut self.generator, &ck.generator)
            .map_err(|e| format!("generator: {e}"))?;
        load_named_params(&mut self.critic, &ck.critic).map_err(|e| format!("critic: {e}"))?;
        let betas = ck.config.betas;
        let opt_generator = optimizer(
            &ck.opt_generator,
            &ck.generator,
            &named_params(&self.generator),
            betas,
        )?;
        let critic = named_params(&self.critic);
        let opt_critic = optimizer(&ck.opt_critic, &ck.critic, &critic, betas)?;
        self.opt_generator = opt_generator;
        self.opt_critic = opt_critic;
        self.rng = ck.rng.clone();
        self.step = ck.step;
        // A checkpoint without an average (made before runs kept one) starts one at its
        // generator.
        if let Some(averaged) = &mut self.averaged {
            match &ck.averaged {
                Some(saved) => {
                    load_named_params(&mut averaged.net, &saved.generator)
                        .map_err(|e| format!("averaged generator: {e}"))?;
                    averaged.updates = saved.updates;
                }
                None => *averaged = Averaged::new(&self.generator, averaged.beta),
            }
        }
        self.hyper = ck.config.hyper.clone();
        if let Some(device) = &self.device {
            let params = [read_params(&self.generator), read_params(&self.critic)];
            device
                .write_state(
                    [&params[0], &params[1]],
                    [&self.opt_generator, &self.opt_critic],
                )
                .map_err(|e| format!("putting the checkpoint on the device: {e:#}"))?;
        }
        Ok(())
    }
}

/// An optimizer from saved state whose moments follow `saved`'s tensor order, reordered to the
/// model's order (`model`).
fn optimizer(
    state: &OptimizerState,
    saved: &[NamedTensor],
    model: &[NamedTensor],
    betas: [f64; 2],
) -> Result<Optimizer<f32>, String> {
    let reorder = |moments: &[Vec<f32>]| -> Result<Vec<Vec<f32>>, String> {
        if moments.is_empty() {
            return Ok(Vec::new());
        }
        model
            .iter()
            .map(|t| {
                saved
                    .iter()
                    .position(|s| s.name == t.name)
                    .and_then(|i| moments.get(i))
                    .filter(|m| m.len() == t.values.len())
                    .cloned()
                    .ok_or_else(|| format!("optimizer state for {} is missing", t.name))
            })
            .collect()
    };
    Ok(Optimizer {
        kind: state.kind,
        lr: state.lr,
        betas,
        t: state.t,
        m: reorder(&state.m)?,
        v: reorder(&state.v)?,
    })
}
