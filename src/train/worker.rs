//! The training worker: a thread that owns the trainer, takes [`Command`]s and sends
//! [`TrainEvent`]s. Both front ends (monitor and headless) drive training only through this.

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dfdx::prelude::*;

use super::families::{FamilyJob, dispatch};
use super::trainer::{IterationStats, StepError, Trainer};
use crate::checkpoint::{Best, Checkpoint};
use crate::config::{Hyper, MAX_ROLLBACKS, OnNan, TrainConfig};
use crate::data::Dataset;
use crate::event::{Alert, AlertKind, Change, Command, RunState, StepMetrics, TrainEvent};
use crate::model::device;
use crate::model::{Critic, Generator};
use crate::quality::watchdog::Watchdog;

/// A running worker thread and its two channels.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<TrainEvent>,
    handle: JoinHandle<()>,
}

impl Worker {
    /// Starts training on its own thread, with its own pool of `config.threads` threads for
    /// the kernels.
    pub fn spawn(config: TrainConfig, data: Dataset) -> std::io::Result<Worker> {
        Self::start(config, data, None)
    }

    /// Starts training from a checkpoint (check it first with
    /// [`check_checkpoint`](super::families::check_checkpoint)).
    pub fn resume(config: TrainConfig, data: Dataset, from: Checkpoint) -> std::io::Result<Worker> {
        Self::start(config, data, Some(Box::new(from)))
    }

    fn start(
        config: TrainConfig,
        data: Dataset,
        from: Option<Box<Checkpoint>>,
    ) -> std::io::Result<Worker> {
        let (command_tx, command_rx) = mpsc::channel();
        let (event_tx, event_rx) = mpsc::channel();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("wgangp-kernel-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        let handle = std::thread::Builder::new()
            .name("wgangp-trainer".into())
            .spawn(move || pool.install(|| train(config, data, from, command_rx, event_tx)))?;
        Ok(Worker {
            commands: command_tx,
            events: event_rx,
            handle,
        })
    }

    /// A sender for commands to the worker.
    pub fn commands(&self) -> Sender<Command> {
        self.commands.clone()
    }

    pub fn events(&self) -> &Receiver<TrainEvent> {
        &self.events
    }

    /// The command sender, the event receiver and the thread, for front ends that move the
    /// receiver to a thread of their own.
    pub fn split(self) -> (Sender<Command>, Receiver<TrainEvent>, JoinHandle<()>) {
        (self.commands, self.events, self.handle)
    }

    /// Waits for the worker thread to end (after it sent its final state).
    pub fn join(self) {
        drop(self.commands);
        let _ = self.handle.join();
    }
}

/// Runs the model family the data calls for.
fn train(
    config: TrainConfig,
    data: Dataset,
    from: Option<Box<Checkpoint>>,
    commands: Receiver<Command>,
    events: Sender<TrainEvent>,
) {
    struct Train {
        config: TrainConfig,
        data: Dataset,
        from: Option<Box<Checkpoint>>,
        commands: Receiver<Command>,
        events: Sender<TrainEvent>,
    }
    impl FamilyJob for Train {
        type Output = ();
        fn with_nets<G, D, const Z: usize, const X: usize>(self)
        where
            G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
            D: Critic<f32, X> + BuildModule<Cpu, f32>,
        {
            train_loop::<G, D, Z, X>(
                self.config,
                self.data,
                self.from,
                self.commands,
                self.events,
            )
        }
    }
    let family = config.family;
    let job = Train {
        config,
        data,
        from,
        commands,
        events,
    };
    dispatch(family, job);
}

/// What the loop does after taking the pending commands.
enum Flow {
    Train,
    Stop,
}

/// The worker's state while it trains.
struct TrainingLoop<G, D, const Z: usize, const X: usize> {
    trainer: Trainer<G, D, Z, X>,
    config: TrainConfig,
    events: Sender<TrainEvent>,
    started: Instant,
    paused: bool,
    sample_now: bool,
    last_sampled: Option<u64>,
    last_checkpoint: Option<u64>,
    /// (time, step) of the previous metrics, for iterations per second.
    last_log: (Instant, u64),
    watchdog: Watchdog,
    /// The best evaluation so far; a new best is checkpointed at once.
    best: Option<Best>,
    /// With `--on-nan rollback`: the newest checkpoint, to go back to.
    rollback_point: Option<Box<Checkpoint>>,
    /// Rollbacks made so far.
    rollbacks: u32,
}

fn train_loop<G, D, const Z: usize, const X: usize>(
    config: TrainConfig,
    data: Dataset,
    from: Option<Box<Checkpoint>>,
    commands: Receiver<Command>,
    events: Sender<TrainEvent>,
) where
    G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
{
    let mut trainer = Trainer::<G, D, Z, X>::new(&config, data);
    if let Some(dev) = device::installed() {
        trainer = match trainer.on_device(dev) {
            Ok(trainer) => trainer,
            Err(e) => {
                let why = format!("the device failed before the first step: {e:#}");
                let state = RunState::Finished;
                let _ = events.send(TrainEvent::State {
                    step: 0,
                    state,
                    reason: Some(why),
                });
                return;
            }
        };
    }
    let mut started = Instant::now();
    if let Some(ck) = &from {
        trainer
            .restore(ck)
            .expect("checked by check_checkpoint before");
        // The clock goes on from where the run stopped.
        started = started
            .checked_sub(Duration::from_secs_f64(ck.wall_s.max(0.0)))
            .unwrap_or(started);
    }
    let now = Instant::now();
    let mut run = TrainingLoop {
        events,
        started,
        paused: false,
        sample_now: false,
        last_sampled: None,
        last_checkpoint: from.as_ref().map(|ck| ck.step),
        last_log: (now, trainer.step),
        watchdog: Watchdog::new(),
        best: from.as_ref().and_then(|ck| ck.best),
        rollback_point: None,
        rollbacks: 0,
        config,
        trainer,
    };
    if run.config.on_nan == OnNan::Rollback {
        // Something to go back to before the first checkpoint: the state training starts from.
        let wall_s = run.started.elapsed().as_secs_f64();
        run.rollback_point = run
            .trainer
            .checkpoint(&run.config, wall_s)
            .ok()
            .map(Box::new);
    }
    let _ = run.events.send(TrainEvent::Started {
        config: Box::new(run.config.clone()),
        generator_params: run.trainer.generator.num_trainable_params(),
        critic_params: run.trainer.critic.num_trainable_params(),
    });
    // The untrained generator's samples, so that progress shows from step 0. (Samples use
    // fixed noise and their own real images: drawing them changes nothing in training.)
    run.send_samples();
    run.main_loop(&commands);
}

impl<G, D, const Z: usize, const X: usize> TrainingLoop<G, D, Z, X>
where
    G: Generator<f32, Z, X> + BuildModule<Cpu, f32>,
    D: Critic<f32, X> + BuildModule<Cpu, f32>,
{
    fn send(&self, event: TrainEvent) -> bool {
        self.events.send(event).is_ok()
    }

    fn state(&self, state: RunState, reason: Option<String>) -> bool {
        self.send(TrainEvent::State {
            step: self.trainer.step,
            state,
            reason,
        })
    }

    fn main_loop(&mut self, commands: &Receiver<Command>) {
        loop {
            if let Flow::Stop = self.take_commands(commands) {
                break;
            }
            if self.config.steps.is_some_and(|n| self.trainer.step >= n) {
                break;
            }
            match self.trainer.iteration() {
                Ok(stats) => {
                    if !self.after_iteration(&stats) {
                        return; // nobody listens any more
                    }
                }
                Err(StepError::NonFinite(e)) if self.can_roll_back() => {
                    if !self.roll_back(&e.to_string()) {
                        return;
                    }
                }
                Err(e) => {
                    // Nothing of the bad update was applied: pause, say why, and let the user
                    // change the hyperparameters and resume (or stop).
                    self.paused = true;
                    let state = match &e {
                        StepError::NonFinite(_) => {
                            self.send(TrainEvent::Alert(Alert {
                                step: self.trainer.step + 1,
                                kind: AlertKind::NonFinite,
                                message: format!(
                                    "{e}: nothing of that step was applied; lower the learning \
                                     rates ([) or raise lambda (+), then resume"
                                ),
                            }));
                            RunState::NonFinite
                        }
                        StepError::Device { .. } => RunState::Paused,
                    };
                    if !self.state(state, Some(e.to_string())) {
                        return;
                    }
                }
            }
        }
        if self.last_sampled != Some(self.trainer.step) {
            self.send(TrainEvent::Samples(Box::new(self.trainer.samples())));
        }
        if self.last_checkpoint != Some(self.trainer.step) {
            self.send_checkpoint();
        }
        self.state(RunState::Finished, None);
    }

    /// Applies every pending command; while paused, waits for the next one.
    fn take_commands(&mut self, commands: &Receiver<Command>) -> Flow {
        loop {
            let command = if self.paused {
                match commands.recv() {
                    Ok(c) => c,
                    Err(_) => return Flow::Stop,
                }
            } else {
                match commands.try_recv() {
                    Ok(c) => c,
                    // A front end that dropped its sender leaves the run to finish by itself.
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => return Flow::Train,
                }
            };
            if let Flow::Stop = self.apply(command) {
                return Flow::Stop;
            }
            if self.sample_now {
                self.sample_now = false;
                self.send_samples();
            }
        }
    }

    fn apply(&mut self, command: Command) -> Flow {
        if let Some(change) = command.change() {
            self.change(change);
            return Flow::Train;
        }
        match command {
            Command::Stop => return Flow::Stop,
            Command::Pause | Command::Resume => {
                let pause = command == Command::Pause;
                if pause != self.paused {
                    self.paused = pause;
                    let state = if pause {
                        RunState::Paused
                    } else {
                        RunState::Running
                    };
                    self.state(state, None);
                }
            }
            Command::SampleNow => self.sample_now = true,
            Command::Checkpoint => self.send_checkpoint(),
            // A change of hyperparameters: taken above.
            _ => {}
        }
        Flow::Train
    }

    /// Applies a change of hyperparameters, or refuses it, saying so either way.
    fn change(&mut self, change: Change) {
        let before = &self.trainer.hyper;
        let (hyper, description) = (change.applied_to(before), change.describe(before));
        // The worker's last word on a change (an in-process front end sends its own unchecked).
        if let Err(reason) = change.check.and_then(|()| hyper.validate()) {
            self.send(TrainEvent::ChangeRefused {
                step: self.trainer.step,
                reason: format!("refused {description}: {reason}"),
            });
        } else if hyper != *before {
            self.trainer.set_hyper(hyper.clone());
            self.send(TrainEvent::HyperChanged {
                step: self.trainer.step,
                hyper,
                change: description,
            });
        }
    }

    fn can_roll_back(&self) -> bool {
        self.rollback_point.is_some() && self.rollbacks < MAX_ROLLBACKS
    }

    /// Goes back to the newest checkpoint's weights and optimizer state with the learning
    /// rates in force halved, and trains on; the step count goes on (the steps since that
    /// checkpoint were trained, then undone). False when nobody listens any more.
    fn roll_back(&mut self, what: &str) -> bool {
        let point = self.rollback_point.as_ref().expect("can_roll_back");
        let (step, before) = (self.trainer.step, self.trainer.hyper.clone());
        if let Err(e) = self.trainer.restore(point) {
            self.paused = true;
            return self.state(RunState::Paused, Some(format!("the rollback failed: {e}")));
        }
        self.trainer.step = step;
        self.rollbacks += 1;
        let hyper = Hyper {
            lr_generator: before.lr_generator / 2.0,
            lr_critic: before.lr_critic / 2.0,
            ..before.clone()
        };
        self.trainer.set_hyper(hyper.clone());
        let message = format!(
            "{what}; went back to the weights and optimizer state of step {} and halved the \
             learning rates to {:.3e} (generator) and {:.3e} (critic): rollback {} of {}",
            point.step, hyper.lr_generator, hyper.lr_critic, self.rollbacks, MAX_ROLLBACKS
        );
        self.send(TrainEvent::Alert(Alert {
            step: step + 1,
            kind: AlertKind::NonFinite,
            message,
        }));
        self.send(TrainEvent::HyperChanged {
            step,
            change: format!(
                "rollback to step {}: lr {:.3e}/{:.3e} -> {:.3e}/{:.3e}",
                point.step,
                before.lr_generator,
                before.lr_critic,
                hyper.lr_generator,
                hyper.lr_critic
            ),
            hyper,
        })
    }

    fn send_checkpoint(&mut self) {
        self.last_checkpoint = Some(self.trainer.step);
        let wall_s = self.started.elapsed().as_secs_f64();
        match self.trainer.checkpoint(&self.config, wall_s) {
            Ok(mut ck) => {
                ck.best = self.best;
                if self.config.on_nan == OnNan::Rollback {
                    self.rollback_point = Some(Box::new(ck.clone()));
                }
                self.send(TrainEvent::Checkpoint(Box::new(ck)));
            }
            Err(e) => {
                self.paused = true;
                self.state(
                    RunState::Paused,
                    Some(format!("no checkpoint was written: {e}")),
                );
            }
        }
    }

    fn send_samples(&mut self) {
        self.last_sampled = Some(self.trainer.step);
        let samples = self.trainer.samples();
        let alerts = self.watchdog.on_samples(&samples);
        self.send(TrainEvent::Samples(Box::new(samples)));
        self.send_alerts(alerts);
    }

    fn send_alerts(&self, alerts: Vec<Alert>) {
        for alert in alerts {
            self.send(TrainEvent::Alert(alert));
        }
    }

    /// Sends metrics and samples when due; false when the receiver is gone.
    fn after_iteration(&mut self, stats: &IterationStats) -> bool {
        let step = self.trainer.step;
        if step % self.config.log_every == 0 {
            let metrics = self.metrics(stats);
            let alerts = self.watchdog.on_metrics(&metrics);
            if !self.send(TrainEvent::Metrics(Box::new(metrics))) {
                return false;
            }
            self.send_alerts(alerts);
        }
        if step % self.config.sample_every == 0 {
            self.send_samples();
        }
        if self.config.eval_every > 0 && step % self.config.eval_every == 0 {
            // A device that cannot be read back shows at the next step.
            if let Ok(record) = self.trainer.evaluate() {
                let alerts = self.watchdog.on_eval(&record);
                let score = record.score();
                self.send(TrainEvent::Eval(Box::new(record)));
                self.send_alerts(alerts);
                // A score that is not finite (a generator turned NaN) is never the best.
                let better = |s: f64| s.is_finite() && self.best.is_none_or(|b| s < b.score);
                if let Some(score) = score.filter(|&s| better(s)) {
                    self.best = Some(Best { step, score });
                    self.send_checkpoint();
                }
            }
        }
        let due = self.config.checkpoint_every > 0 && step % self.config.checkpoint_every == 0;
        if due && self.last_checkpoint != Some(step) {
            self.send_checkpoint();
        }
        true
    }

    fn metrics(&mut self, stats: &IterationStats) -> StepMetrics {
        let now = Instant::now();
        let (then, then_step) = self.last_log;
        let step = self.trainer.step;
        let iters_per_s =
            (step - then_step) as f64 / now.duration_since(then).as_secs_f64().max(1e-9);
        self.last_log = (now, step);
        let (layers, weight_histogram) = self.trainer.layer_stats(&stats.critic.layer_grad_norms);
        let c = &stats.critic;
        let h = &self.trainer.hyper;
        StepMetrics {
            step,
            wall_s: now.duration_since(self.started).as_secs_f64(),
            critic_loss: c.loss,
            generator_loss: stats.generator_loss,
            wasserstein: c.d_real - c.d_fake,
            penalty: c.penalty,
            weighted_penalty: c.weighted_penalty,
            grad_norm_mean: c.grad_norm_mean,
            grad_norm_std: c.grad_norm_std,
            layers,
            weight_histogram,
            lambda: h.lambda,
            lr_generator: h.lr_generator,
            lr_critic: h.lr_critic,
            n_critic: h.n_critic,
            penalty_mode: h.penalty,
            iters_per_s,
        }
    }
}
