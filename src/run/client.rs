//! The viewer's side of a run: connecting to its socket (see [`super::protocol`]), and reading
//! what a run folder records (its configuration, metrics history and latest samples).

use std::fs;
use std::io::{BufReader, ErrorKind};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::protocol::{self, PROTOCOL, ServerMessage};
use super::writer::LATEST_SAMPLES;
use crate::config::TrainConfig;
use crate::event::{SampleSet, TrainEvent};

/// A live connection to a run's process, after its hello.
pub struct Connection {
    pub stream: UnixStream,
    pub reader: BufReader<UnixStream>,
    pub pid: u32,
}

/// Connects to the run in `dir`. `Ok(None)`: no process serves it (finished, or stopped).
pub fn connect(dir: &Path) -> Result<Option<Connection>> {
    let path = protocol::socket_path(dir);
    let stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            return Ok(None);
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            bail!(
                "cannot attach to {}: its socket belongs to another user",
                dir.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot connect to {}", path.display())),
    };
    // A live process answers at once; one that hangs must not hang the viewer.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    protocol::read_line(&mut reader, &mut line)
        .with_context(|| format!("no answer on {}", path.display()))?;
    let pid = match serde_json::from_str(&line) {
        Ok(ServerMessage::Hello { protocol, pid, .. }) if protocol == PROTOCOL => pid,
        Ok(ServerMessage::Hello { protocol, .. }) => bail!(
            "the run speaks protocol {protocol} and this wgangp-tui speaks {PROTOCOL}: attach with \
             the wgangp-tui that trains it"
        ),
        Ok(ServerMessage::Error { message }) => {
            bail!("cannot attach to {}: {message}", dir.display())
        }
        _ => bail!(
            "{} did not answer as a wgangp-tui run: {}",
            path.display(),
            line.trim()
        ),
    };
    stream.set_read_timeout(None)?;
    reader.get_ref().set_read_timeout(None)?;
    Ok(Some(Connection {
        stream,
        reader,
        pid,
    }))
}

/// The configuration a run folder records.
pub fn read_config(dir: &Path) -> Result<TrainConfig> {
    let path = dir.join("config.json");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "{} is not a run folder (it has no config.json)",
            dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// What a run's files hold for a viewer.
#[derive(Debug)]
pub struct Recorded {
    /// The metrics history, then the latest samples when they could be read.
    pub events: Vec<TrainEvent>,
    /// Why `samples/latest.json` is not among the events, when it is there but unreadable.
    pub problem: Option<String>,
}

/// The events a run's files hold: the metrics history and the latest samples. Lines that are
/// not events (cut off by a kill) are skipped; samples that cannot be read (a damaged or foreign
/// file) are left out and said why.
pub fn read_recorded(dir: &Path) -> Result<Recorded> {
    let metrics = dir.join("metrics.jsonl");
    let text = fs::read_to_string(&metrics)
        .with_context(|| format!("cannot read {}", metrics.display()))?;
    let mut events: Vec<TrainEvent> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let latest = dir.join("samples").join(LATEST_SAMPLES);
    let samples = match fs::read(&latest) {
        Ok(bytes) => serde_json::from_slice::<SampleSet>(&bytes).map_err(|e| e.to_string()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok(Recorded {
                events,
                problem: None,
            });
        }
        Err(e) => Err(e.to_string()),
    };
    let problem = match samples {
        Ok(samples) => {
            events.push(TrainEvent::Samples(Box::new(samples)));
            None
        }
        Err(why) => Some(format!("samples/{LATEST_SAMPLES} cannot be shown: {why}")),
    };
    Ok(Recorded { events, problem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_latest_samples_are_left_out_and_said_why() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        fs::create_dir(run.join("samples")).unwrap();
        fs::write(run.join("metrics.jsonl"), "").unwrap();
        assert!(
            read_recorded(run).unwrap().problem.is_none(),
            "no samples yet is fine"
        );
        // 64 images of 28x28 claimed, 3 values given.
        let bad =
            r#"{"form":"images","step":5,"side":28,"count":64,"generated":[0,0,0],"real":[]}"#;
        fs::write(run.join("samples").join(LATEST_SAMPLES), bad).unwrap();
        let recorded = read_recorded(run).unwrap();
        assert!(recorded.events.is_empty());
        let problem = recorded.problem.expect("a problem");
        assert!(problem.contains("bad samples"), "{problem}");
        fs::write(run.join("samples").join(LATEST_SAMPLES), "{not json").unwrap();
        assert!(read_recorded(run).unwrap().problem.is_some());
    }
}
