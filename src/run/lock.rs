//! The run folder's lock (`RUN_DIR/.lock`), held while a process trains the run.

use std::fs::{self, File};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::protocol;
use super::server::live_pid;

/// An exclusive lock on a run folder (its `.lock` file), held while a process trains the run,
/// so that two processes never write one run: the socket check in [`Listener::bind`] alone
/// leaves a moment between checking and binding in which a second start could pass.
pub struct RunLock {
    _file: File,
}

/// Takes the run folder's lock, or says which process holds it.
pub fn lock_run(dir: &Path) -> Result<RunLock> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(".lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            let who = match live_pid(&protocol::socket_path(dir)).ok().flatten() {
                Some(pid) => format!("process {pid}"),
                None => "another wgangp-tui process".into(),
            };
            bail!(
                "{who} is training the run in {} already; watch it with: wgangp-tui attach {}",
                dir.display(),
                dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_run_folder_is_refused_until_the_lock_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let lock = lock_run(dir.path()).unwrap();
        let refused = lock_run(dir.path()).err().expect("refused").to_string();
        assert!(refused.contains("is training the run in"), "{refused}");
        drop(lock);
        assert!(lock_run(dir.path()).is_ok());
    }
}
