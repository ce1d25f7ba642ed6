//! `wgangp-tui ls [RUNS_DIR]`: the runs in a folder, from their files and sockets.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use crate::event::{EvalRecord, RunState, TrainEvent};
use crate::run::client::read_config;
use crate::run::protocol;
use crate::run::server::live_pid;
use crate::util::time::format_duration;

/// Only the end of `metrics.jsonl` is read: enough for the last records of a run.
const TAIL: u64 = 1 << 20;

/// One run, as `ls` shows it.
#[derive(Debug, PartialEq)]
pub struct RunSummary {
    pub dir: PathBuf,
    /// The pid of the process training it now.
    pub live: Option<u32>,
    /// The last state recorded.
    pub state: Option<RunState>,
    pub step: Option<u64>,
    /// The steps the run was started for.
    pub steps: Option<u64>,
    pub wasserstein: Option<f64>,
    /// The last evaluation (`--eval-every`).
    pub evaluation: Option<EvalRecord>,
    /// Time since `metrics.jsonl` last changed.
    pub age: Option<Duration>,
}

impl RunSummary {
    /// The last evaluation in a few words: the toy measures, else the held-out estimate.
    pub fn quality(&self) -> String {
        let Some(e) = &self.evaluation else {
            return "-".into();
        };
        match (&e.swd, e.held_out_critic_cost) {
            (Some(swd), Some(cost)) => {
                return format!("SWD {:.1}, held-out W {:.4}", swd.mean, -cost);
            }
            (Some(swd), None) => return format!("SWD {:.1}", swd.mean),
            _ => {}
        }
        match (&e.toy, e.held_out_critic_cost) {
            (Some(t), _) => format!(
                "{:.0}% within 3 std, {}/{} modes",
                100.0 * t.high_quality,
                t.modes_covered,
                t.modes
            ),
            (None, Some(cost)) => format!("held-out W {:.4}", -cost),
            (None, None) => "-".into(),
        }
    }

    /// What the run is doing, in a word or two.
    pub fn status(&self) -> String {
        match (self.live, self.state) {
            (Some(_), Some(RunState::Paused)) => "live, paused".into(),
            (Some(_), Some(RunState::NonFinite)) => "live, NaN".into(),
            (Some(_), _) => "live".into(),
            // Stopped by the user or a signal before its last step: --resume goes on.
            (None, Some(RunState::Finished))
                if self.steps.is_some_and(|n| self.step.unwrap_or(0) < n) =>
            {
                "stopped".into()
            }
            (None, Some(RunState::Finished)) => "finished".into(),
            (None, Some(RunState::NonFinite)) => "stopped: NaN".into(),
            (None, _) => "stopped".into(),
        }
    }
}

/// The runs in `root` (its sub-folders holding a `config.json`, or `root` itself when it is a
/// run folder), by name.
pub fn list(root: &Path) -> Result<Vec<RunSummary>> {
    if root.join("config.json").is_file() {
        return Ok(vec![summarise(root)]);
    }
    let entries = fs::read_dir(root).with_context(|| format!("cannot list {}", root.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("config.json").is_file())
        .collect();
    dirs.sort();
    Ok(dirs.iter().map(|d| summarise(d)).collect())
}

fn summarise(dir: &Path) -> RunSummary {
    let metrics = dir.join("metrics.jsonl");
    let mut summary = RunSummary {
        dir: dir.to_path_buf(),
        live: live_pid(&protocol::socket_path(dir)).ok().flatten(),
        state: None,
        step: None,
        steps: read_config(dir).ok().and_then(|c| c.steps),
        wasserstein: None,
        evaluation: None,
        age: fs::metadata(&metrics)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok()),
    };
    for event in tail_events(&metrics) {
        match event {
            TrainEvent::Metrics(m) => {
                summary.step = Some(m.step);
                summary.wasserstein = Some(m.wasserstein);
            }
            TrainEvent::Eval(e) => summary.evaluation = Some(*e),
            TrainEvent::State { step, state, .. } => {
                summary.state = Some(state);
                summary.step = Some(summary.step.unwrap_or(0).max(step));
            }
            _ => {}
        }
    }
    summary
}

/// The events in the last [`TAIL`] bytes of a `metrics.jsonl`, oldest first.
fn tail_events(path: &Path) -> Vec<TrainEvent> {
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    // The first line may be cut by the seek, the last by a kill: neither parses.
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The table `ls` prints.
pub fn table(runs: &[RunSummary]) -> String {
    let mut rows = vec![[
        "RUN".to_string(),
        "STATUS".into(),
        "PID".into(),
        "STEP".into(),
        "W".into(),
        "QUALITY".into(),
        "AGE".into(),
    ]];
    for r in runs {
        rows.push([
            r.dir.display().to_string(),
            r.status(),
            r.live.map(|p| p.to_string()).unwrap_or("-".into()),
            r.step.map(|s| s.to_string()).unwrap_or("-".into()),
            r.wasserstein
                .map(|w| format!("{w:.4}"))
                .unwrap_or("-".into()),
            r.quality(),
            r.age
                .map(|a| format!("{} ago", format_duration(a.as_secs_f64())))
                .unwrap_or("-".into()),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_string() + "\n"
        })
        .collect()
}
