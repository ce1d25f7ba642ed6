//! `d` in the in-process monitor: the run goes on in a background process.
//!
//! A process cannot hand its threads to another, and a terminal's foreground process cannot
//! give the shell back while it lives; so the monitor stops its worker with a checkpoint and
//! starts `wgangp-tui --no-ui --resume RUN_DIR` in a new session (no controlling terminal, so
//! the terminal's hang-up does not reach it), which goes on from that checkpoint exactly (the
//! resume is tested to match an uninterrupted run) and serves the run on its socket.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::protocol;
use super::server::live_pid;
use crate::config::TrainConfig;
use crate::model::device;

/// The background process's stdout and stderr, in the run folder.
pub const LOG: &str = "train.log";

/// How long the new process may take to load the data and checkpoint and open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts the background process going on with the run in `dir` (`paused`: paused, as the run
/// was) and waits until it serves the run; returns its pid and log file. `why`, if given, is
/// written to the log first (the person may not see this process's own messages).
pub fn continue_in_background(
    config: &TrainConfig,
    dir: &Path,
    paused: bool,
    why: Option<&str>,
) -> Result<(u32, PathBuf)> {
    let log_path = dir.join(LOG);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    if let Some(why) = why {
        writeln!(log, "wgangp-tui: {why}")
            .with_context(|| format!("cannot write {}", log_path.display()))?;
    }
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let mut command = Command::new(exe);
    command
        .arg("--no-ui")
        .arg("--resume")
        .arg(dir)
        .args(["--threads", &config.threads.to_string()])
        .args(["--device", device::flag_value(&config.device)])
        .args(["--checkpoint-every", &config.checkpoint_every.to_string()])
        .args(["--keep", &config.keep.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(steps) = config.steps {
        command.args(["--steps", &steps.to_string()]);
    }
    if paused {
        command.arg("--paused");
    }
    // SAFETY: setsid is async-signal-safe, as code between fork and exec must be.
    unsafe {
        command.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .context("cannot start the background process")?;
    let pid = child.id();
    let socket = protocol::socket_path(dir);
    let start = Instant::now();
    loop {
        if live_pid(&socket).ok().flatten() == Some(pid) {
            return Ok((pid, log_path));
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "the background process ended at once ({status}); see {}",
                log_path.display()
            );
        }
        if start.elapsed() > START_TIMEOUT {
            // Never two trainers on one run.
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the background process (pid {pid}) did not open {} in {} s; see {}",
                socket.display(),
                START_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
