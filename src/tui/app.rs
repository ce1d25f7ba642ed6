//! The monitor's state, updated from training events and keys (a reducer). Rendering reads it;
//! nothing here touches the terminal or dfdx.

use crate::config::{Hyper, PenaltyMode, TrainConfig};
use crate::event::{Command, RunState, SampleSet, StepMetrics, TrainEvent};

use super::history::Series;
use super::keys::Action;

/// Lambda moves by this factor per key press.
pub const LAMBDA_FACTOR: f64 = 1.25;
/// `+` from lambda = 0 goes here; `-` below `LAMBDA_FLOOR` goes to 0.
pub const LAMBDA_FROM_ZERO: f64 = 0.01;
pub const LAMBDA_FLOOR: f64 = 0.001;
/// Learning rates move by this factor per key press.
pub const LR_FACTOR: f64 = 2.0;
pub const MAX_CRITIC_STEPS: u32 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Curves,
    Penalty,
    Samples,
    Gradients,
    Weights,
}

impl Pane {
    pub const ALL: [Pane; 5] = [
        Pane::Curves,
        Pane::Penalty,
        Pane::Samples,
        Pane::Gradients,
        Pane::Weights,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Curves => "Losses",
            Pane::Penalty => "Penalty",
            Pane::Samples => "Samples",
            Pane::Gradients => "Critic gradients",
            Pane::Weights => "Critic weights",
        }
    }

    pub fn number(self) -> usize {
        Pane::ALL.iter().position(|&p| p == self).unwrap() + 1
    }
}

/// How colours can be drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorMode {
    TrueColor,
    /// xterm's 256 colours (greys from the 24-step ramp).
    Ansi256,
    /// No colour at all (NO_COLOR, dumb terminals): shades drawn with characters.
    None,
}

impl ColorMode {
    /// From this process's environment.
    pub fn from_env() -> Self {
        let env = |k: &str| std::env::var(k).ok();
        Self::detect(
            env("NO_COLOR").is_some_and(|v| !v.is_empty()),
            env("COLORTERM").as_deref(),
            env("TERM").as_deref(),
        )
    }

    /// From the environment: NO_COLOR wins, then COLORTERM, then TERM.
    pub fn detect(no_color: bool, colorterm: Option<&str>, term: Option<&str>) -> Self {
        if no_color || term.is_some_and(|t| t == "dumb") {
            ColorMode::None
        } else if colorterm.is_some_and(|c| c.contains("truecolor") || c.contains("24bit")) {
            ColorMode::TrueColor
        } else {
            ColorMode::Ansi256
        }
    }
}

/// View options the user toggles; they change the picture, not the training.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    pub smoothing: bool,
    pub log_scale: bool,
    pub recent_window: bool,
    pub zoom: Option<Pane>,
    pub help: bool,
    pub colors: ColorMode,
    /// Plain ASCII instead of block and braille characters.
    pub ascii: bool,
}

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
        }
    }
}

/// How the monitor is connected to the training it shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Training runs in this process: quitting stops it.
    InProcess,
    /// Attached to the run's socket; training runs in process `pid` and goes on after we quit.
    Attached { pid: u32 },
    /// A run that no process serves, shown from its files; nothing can be changed.
    ReadOnly,
}

pub struct App {
    pub config: TrainConfig,
    pub link: Link,
    pub hyper: Hyper,
    pub state: RunState,
    pub reason: Option<String>,
    pub step: u64,
    pub wall_s: f64,
    pub iters_per_s: f64,
    pub curves: Curves,
    pub latest: Option<StepMetrics>,
    pub samples: Option<SampleSet>,
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
}

impl App {
    pub fn new(config: TrainConfig, colors: ColorMode, ascii: bool) -> Self {
        Self {
            hyper: config.hyper.clone(),
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
            marks: Vec::new(),
            last_checkpoint: None,
            view: View {
                smoothing: false,
                log_scale: false,
                recent_window: false,
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
            TrainEvent::Checkpoint(ck) => self.last_checkpoint = Some(ck.step),
            TrainEvent::CheckpointSaved { step, .. } => self.last_checkpoint = Some(step),
            TrainEvent::HyperChanged { step, hyper, .. } => {
                self.hyper = hyper;
                self.marks.push(step);
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

    /// Takes a key's action; returns the command to send to the worker, if any.
    pub fn on_action(&mut self, action: Action) -> Option<Command> {
        self.dirty = true;
        let h = &self.hyper;
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
            Action::LambdaUp if running => {
                let lambda = if h.lambda == 0.0 {
                    LAMBDA_FROM_ZERO
                } else {
                    h.lambda * LAMBDA_FACTOR
                };
                Some(Command::SetLambda { lambda })
            }
            Action::LambdaDown if running => {
                let lambda = h.lambda / LAMBDA_FACTOR;
                Some(Command::SetLambda {
                    lambda: if lambda < LAMBDA_FLOOR { 0.0 } else { lambda },
                })
            }
            Action::LearningRateUp if running => Some(Command::SetLearningRates {
                generator: h.lr_generator * LR_FACTOR,
                critic: h.lr_critic * LR_FACTOR,
            }),
            Action::LearningRateDown if running => Some(Command::SetLearningRates {
                generator: h.lr_generator / LR_FACTOR,
                critic: h.lr_critic / LR_FACTOR,
            }),
            Action::CriticStepsUp if running && h.n_critic < MAX_CRITIC_STEPS => {
                Some(Command::SetCriticSteps {
                    n_critic: h.n_critic + 1,
                })
            }
            Action::CriticStepsDown if running && h.n_critic > 1 => Some(Command::SetCriticSteps {
                n_critic: h.n_critic - 1,
            }),
            Action::CyclePenalty if running => {
                let penalty = match h.penalty {
                    PenaltyMode::Gp => PenaltyMode::Lp,
                    PenaltyMode::Lp => PenaltyMode::Clip,
                    PenaltyMode::Clip => PenaltyMode::Gp,
                };
                Some(Command::SetPenalty { penalty })
            }
            Action::SampleNow if running => Some(Command::SampleNow),
            Action::Checkpoint if running => Some(Command::Checkpoint),
            Action::ToggleSmoothing => {
                self.view.smoothing = !self.view.smoothing;
                None
            }
            Action::ToggleLogScale => {
                self.view.log_scale = !self.view.log_scale;
                None
            }
            Action::ToggleWindow => {
                self.view.recent_window = !self.view.recent_window;
                None
            }
            Action::NextPane => {
                let next = match self.view.zoom {
                    None => 0,
                    Some(p) => p.number() % Pane::ALL.len(),
                };
                self.view.zoom = Some(Pane::ALL[next]);
                None
            }
            Action::Zoom(p) => {
                self.view.zoom = if self.view.zoom == Some(p) {
                    None
                } else {
                    Some(p)
                };
                None
            }
            Action::Help => {
                self.view.help = !self.view.help;
                None
            }
            Action::Back => {
                if self.view.help {
                    self.view.help = false;
                } else {
                    self.view.zoom = None;
                }
                None
            }
            _ => None,
        }
    }
}
