//! The monitor's state, updated from training events and keys (a reducer). Rendering reads it;
//! nothing here touches the terminal or dfdx.

use std::collections::VecDeque;

use super::history::Series;
use super::keys::{self, Action};
use super::view::{ColorMode, Pane, View};
use crate::config::{Hyper, TrainConfig};
use crate::event::{Alert, Command, EvalRecord, RunState, SampleSet, StepMetrics, TrainEvent};
pub use crate::run::session::{Feed, Link};

/// The curves' series.
#[derive(Clone, Debug)]
pub struct Curves {
    pub critic_loss: Series,
    pub generator_loss: Series,
    pub wasserstein: Series,
    pub penalty: Series,
    pub weighted_penalty: Series,
    pub grad_norm_mean: Series,
    pub grad_norm_std: Series,
    /// The Wasserstein estimate on held-out data (minus the evaluations' held-out critic cost).
    pub held_out_wasserstein: Series,
    /// The evaluations' quality figure (`EvalRecord::headline`), of the averaged generator and
    /// of the raw one.
    pub quality: Series,
    pub quality_raw: Series,
}

impl Default for Curves {
    fn default() -> Self {
        Self {
            critic_loss: Series::new(),
            generator_loss: Series::new(),
            wasserstein: Series::new(),
            penalty: Series::new(),
            weighted_penalty: Series::new(),
            grad_norm_mean: Series::new(),
            grad_norm_std: Series::new(),
            held_out_wasserstein: Series::new(),
            quality: Series::new(),
            quality_raw: Series::new(),
        }
    }
}

pub struct App {
    pub config: TrainConfig,
    pub link: Link,
    /// The hyperparameters the run trains with (as its events last said).
    pub hyper: Hyper,
    /// The hyperparameters this monitor's keys asked for that the run has not confirmed yet,
    /// oldest first. A key computes its change from the newest of them, so that keys pressed
    /// faster than the run answers add up (+ + is two steps, not one twice).
    requested: VecDeque<Hyper>,
    pub state: RunState,
    pub reason: Option<String>,
    pub step: u64,
    pub wall_s: f64,
    pub iters_per_s: f64,
    pub curves: Curves,
    pub latest: Option<StepMetrics>,
    pub samples: Option<SampleSet>,
    /// The newest evaluation (`--eval-every`).
    pub evaluation: Option<EvalRecord>,
    /// The watchdog's newest alert.
    pub alert: Option<Alert>,
    /// An alert came in that the terminal has not been told of yet (bell, window title).
    pub ring: bool,
    /// Steps at which a hyperparameter changed, for the marks on the curves.
    pub marks: Vec<u64>,
    /// Step of the newest checkpoint written.
    pub last_checkpoint: Option<u64>,
    pub view: View,
    /// q was pressed: the worker is finishing; the monitor exits once it has.
    pub stopping: bool,
    /// d was pressed in the in-process monitor: training goes on in a background process.
    pub detach: bool,
    /// The run was paused when d was pressed.
    pub detach_paused: bool,
    pub quit: bool,
    /// Something changed since the last frame.
    pub dirty: bool,
    /// A problem with what the monitor was given, shown on the status line.
    pub problem: Option<String>,
    /// The newest change of hyperparameters refused (by the keys' limits or by the run), and
    /// why: shown on the status line until a change is accepted.
    pub refused: Option<String>,
}

impl App {
    pub fn new(config: TrainConfig, colors: ColorMode, ascii: bool) -> Self {
        Self {
            hyper: config.hyper.clone(),
            requested: VecDeque::new(),
            config,
            link: Link::InProcess,
            state: RunState::Running,
            reason: None,
            step: 0,
            wall_s: 0.0,
            iters_per_s: 0.0,
            curves: Curves::default(),
            latest: None,
            samples: None,
            evaluation: None,
            alert: None,
            ring: false,
            marks: Vec::new(),
            last_checkpoint: None,
            view: View {
                smoothing: false,
                log_scale: false,
                recent_window: false,
                raw_samples: false,
                zoom: None,
                help: false,
                colors,
                ascii,
            },
            stopping: false,
            detach: false,
            detach_paused: false,
            quit: false,
            dirty: true,
            problem: None,
            refused: None,
        }
    }

    /// Takes a training event into the state.
    pub fn on_event(&mut self, event: TrainEvent) {
        self.dirty = true;
        match event {
            TrainEvent::Started { .. } => {}
            TrainEvent::Metrics(m) => {
                let x = m.step as f64;
                let c = &mut self.curves;
                c.critic_loss.push(x, m.critic_loss);
                c.generator_loss.push(x, m.generator_loss);
                c.wasserstein.push(x, m.wasserstein);
                c.penalty.push(x, m.penalty);
                c.weighted_penalty.push(x, m.weighted_penalty);
                c.grad_norm_mean.push(x, m.grad_norm_mean);
                c.grad_norm_std.push(x, m.grad_norm_std);
                self.step = m.step;
                self.wall_s = m.wall_s;
                self.iters_per_s = m.iters_per_s;
                self.latest = Some(*m);
            }
            TrainEvent::Samples(s) => self.samples = Some(*s),
            TrainEvent::Eval(e) => {
                let (c, x) = (&mut self.curves, e.step as f64);
                if let Some(cost) = e.held_out_critic_cost {
                    c.held_out_wasserstein.push(x, -cost);
                }
                if let Some(h) = e.headline() {
                    c.quality.push(x, h.averaged);
                    if let Some(raw) = h.raw {
                        c.quality_raw.push(x, raw);
                    }
                }
                self.evaluation = Some(*e);
            }
            TrainEvent::Alert(alert) => {
                self.alert = Some(alert);
                self.ring = true;
            }
            TrainEvent::Checkpoint(ck) => self.last_checkpoint = Some(ck.step),
            TrainEvent::CheckpointSaved { step, .. } => self.last_checkpoint = Some(step),
            TrainEvent::HyperChanged { step, hyper, .. } => {
                // Our oldest request, confirmed; anything else (another viewer's change, or one
                // of ours the run did not apply) makes the run's values the base again.
                if self.requested.front() == Some(&hyper) {
                    self.requested.pop_front();
                } else {
                    self.requested.clear();
                }
                self.hyper = hyper;
                self.marks.push(step);
                self.refused = None;
            }
            TrainEvent::ChangeRefused { reason, .. } => {
                // The run keeps its values: they are the base of the next key again.
                self.requested.clear();
                self.refused = Some(reason);
            }
            TrainEvent::State {
                step,
                state,
                reason,
            } => {
                self.step = self.step.max(step);
                self.state = state;
                self.reason = reason;
                if self.stopping && state == RunState::Finished {
                    self.quit = true;
                }
            }
        }
    }

    /// Takes a problem with what the monitor was given (a damaged file, a message it could
    /// not read): shown on the status line, never a crash.
    pub fn on_problem(&mut self, problem: String) {
        self.dirty = true;
        self.problem = Some(problem);
    }

    /// Takes what the monitor is fed.
    pub fn on_feed(&mut self, feed: Feed) {
        match feed {
            Feed::Event(event) | Feed::Recorded(event) => self.on_event(event),
            Feed::Problem(problem) => self.on_problem(problem),
        }
    }

    /// Takes a key's action; returns the command to send to the worker, if any.
    pub fn on_action(&mut self, action: Action) -> Option<Command> {
        self.dirty = true;
        // A run paused by a NaN still takes commands: change something, then resume.
        let running = self.state != RunState::Finished && self.link != Link::ReadOnly;
        match action {
            // A viewer's quit leaves the training alone.
            Action::Quit | Action::Detach if !running || self.link != Link::InProcess => {
                self.quit = true;
                None
            }
            Action::Quit => {
                self.stopping = true;
                Some(Command::Stop)
            }
            // The worker stops with a checkpoint; a background process goes on from it.
            Action::Detach => {
                self.detach = true;
                // A paused run (or one paused on a NaN) stays paused in the background.
                self.detach_paused = matches!(self.state, RunState::Paused | RunState::NonFinite);
                self.stopping = true;
                Some(Command::Stop)
            }
            Action::TogglePause if running => Some(match self.state {
                RunState::Paused | RunState::NonFinite => Command::Resume,
                _ => Command::Pause,
            }),
            Action::SampleNow if running => Some(Command::SampleNow),
            Action::Checkpoint if running => Some(Command::Checkpoint),
            // A change the limits refuse (config) is not sent but said on the status line: the
            // keys, the command line and the socket accept the same values.
            _ if running => {
                let command = self.hyper_command(action)?;
                if let Err(reason) = command.validate() {
                    let what = command.describe(self.target()).unwrap_or_default();
                    self.refused = Some(format!("refused {what}: {reason}"));
                    return None;
                }
                let target = self.target();
                if let Some(next) = command.applied_to(target).filter(|h| h != target) {
                    self.requested.push_back(next);
                }
                Some(command)
            }
            _ => {
                self.on_view_action(action);
                None
            }
        }
    }

    /// The hyperparameters once the run has applied every change asked for here.
    fn target(&self) -> &Hyper {
        self.requested.back().unwrap_or(&self.hyper)
    }

    /// The change of hyperparameters a key asks for, if it asks for one (the key table makes
    /// it); any other action changes the view.
    fn hyper_command(&mut self, action: Action) -> Option<Command> {
        let command = keys::change(action, self.target());
        if command.is_none() {
            self.on_view_action(action);
        }
        command
    }

    /// Toggles of the view: they change the picture, not the training.
    fn on_view_action(&mut self, action: Action) {
        let view = &mut self.view;
        match action {
            Action::ToggleSmoothing => view.smoothing = !view.smoothing,
            Action::ToggleLogScale => view.log_scale = !view.log_scale,
            Action::ToggleRawSamples => view.raw_samples = !view.raw_samples,
            Action::ToggleWindow => view.recent_window = !view.recent_window,
            Action::NextPane => {
                let next = match view.zoom {
                    None => 0,
                    Some(p) => p.number() % Pane::ALL.len(),
                };
                view.zoom = Some(Pane::ALL[next]);
            }
            Action::Zoom(p) => view.zoom = if view.zoom == Some(p) { None } else { Some(p) },
            Action::Help => view.help = !view.help,
            Action::Back if view.help => view.help = false,
            Action::Back => view.zoom = None,
            _ => {}
        }
    }
}
