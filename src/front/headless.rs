//! Headless mode: a progress line on stderr while the session writes the run's files.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::mpsc::UnboundedReceiver;

use super::FrontEnd;
use crate::config::TrainConfig;
use crate::event::{Alert, Command, StepMetrics, TrainEvent};
use crate::run::session::{Feed, Left, Link};
use crate::util::say;
use crate::util::time::eta;

/// The progress line: rewritten in place on a terminal (at most 4 times a second), one line
/// every 10 seconds otherwise so that a log file does not fill up.
struct Progress {
    tty: bool,
    last: Option<Instant>,
    steps: Option<u64>,
}

impl Progress {
    fn show(&mut self, m: &StepMetrics, force: bool) {
        let every = if self.tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(10)
        };
        if !force && self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let total = self.steps.map(|n| format!("/{n}")).unwrap_or_default();
        let eta = eta(self.steps, m.step, m.iters_per_s)
            .map(|t| format!("  ETA {t}"))
            .unwrap_or_default();
        let line = format!(
            "step {}{total}  {:.2} it/s{eta}  D {:.4}  G {:.4}  W {:.4}  P {:.4}  |grad| {:.3}",
            m.step,
            m.iters_per_s,
            m.critic_loss,
            m.generator_loss,
            m.wasserstein,
            m.penalty,
            m.grad_norm_mean
        );
        // A closed stderr must not stop training.
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    /// An alert on a line of its own (the progress line goes on below it).
    fn alert(&mut self, alert: &Alert) {
        let mut err = std::io::stderr().lock();
        let clear = if self.tty { "\r\x1b[2K" } else { "" };
        let _ = writeln!(
            err,
            "{clear}alert at step {}: {}",
            alert.step, alert.message
        );
        let _ = err.flush();
        // The progress line comes back at once.
        self.last = None;
    }

    fn done(&self) {
        if self.tty && self.last.is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// The front end without a terminal UI: a line saying what trains, then a progress line. A
/// termination signal stops the run.
pub struct Headless {
    progress: Progress,
    started: String,
}

impl Headless {
    pub fn new(config: &TrainConfig) -> Self {
        Self {
            progress: Progress {
                tty: std::io::stderr().is_terminal(),
                last: None,
                steps: config.steps,
            },
            started: format!(
                "training on {} ({:?} model) on {}, writing to {}",
                config.data,
                config.family,
                config.device,
                config.out.display()
            ),
        }
    }
}

impl FrontEnd for Headless {
    fn show(
        &mut self,
        _link: Link,
        mut feed: UnboundedReceiver<Feed>,
        mut signals: UnboundedReceiver<i32>,
        commands: &Sender<Command>,
    ) -> Result<Left> {
        say(format_args!("{}", self.started));
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let mut last_metrics = None;
        runtime.block_on(async {
            loop {
                tokio::select! {
                    event = feed.recv() => match event {
                        Some(Feed::Event(TrainEvent::Metrics(m))) => {
                            self.progress.show(&m, false);
                            last_metrics = Some(m);
                        }
                        Some(Feed::Event(TrainEvent::Alert(alert))) => self.progress.alert(&alert),
                        Some(_) => {}
                        None => return,
                    },
                    Some(_) = signals.recv() => {
                        let _ = commands.send(Command::Stop);
                    }
                }
            }
        });
        if let Some(m) = &last_metrics {
            self.progress.show(m, true);
        }
        self.progress.done();
        Ok(Left::default())
    }
}
