//! The run's wire protocol, version [`PROTOCOL`]: newline-delimited JSON over the Unix socket
//! `control.sock` in the run folder. It carries the same two types as the in-process channels:
//!
//! - server -> viewer: first `{"kind":"hello","protocol":1,"pid":..,"run":".."}`, then
//!   [`TrainEvent`]s (`started`, the history so far as recorded in `metrics.jsonl`, the latest
//!   `samples`, then the live stream), and `{"kind":"error","message":".."}` in reply to a line
//!   that is not a command. The stream ends when the run ends.
//! - viewer -> server: [`Command`]s, e.g. `{"command":"set_lambda","lambda":5.0}`.
//!
//! `metrics.jsonl` holds the same event lines (all but `started` and `samples`).

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::{Command, TrainEvent};

/// Bumped on any change a viewer of the previous version could not read.
pub const PROTOCOL: u32 = 1;

/// The socket's name inside the run folder.
pub const SOCKET: &str = "control.sock";

/// The longest line either side accepts (a sample set of 64 MNIST digits is ~1 MB).
pub const MAX_LINE: u64 = 16 << 20;

/// One line from the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServerMessage {
    Hello {
        protocol: u32,
        pid: u32,
        run: PathBuf,
    },
    Error {
        message: String,
    },
    #[serde(untagged)]
    Event(TrainEvent),
}

/// The socket of the run in `dir`.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET)
}

/// Parses one line from a viewer.
pub fn parse_command(line: &str) -> Result<Command, String> {
    let command: Command = serde_json::from_str(line.trim())
        .map_err(|e| format!("not a command ({e}): {}", clip(line)))?;
    command
        .validate()
        .map_err(|bad| format!("{bad}: {}", clip(line)))?;
    Ok(command)
}

/// Reads one line of at most [`MAX_LINE`] bytes into `buf` (cleared first); false at the end.
pub fn read_line(reader: &mut impl BufRead, buf: &mut String) -> std::io::Result<bool> {
    buf.clear();
    let n = reader.take(MAX_LINE).read_line(buf)?;
    if n as u64 == MAX_LINE && !buf.ends_with('\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line too long",
        ));
    }
    Ok(n > 0)
}

/// A line, shortened for an error message.
fn clip(line: &str) -> String {
    let line = line.trim();
    match line.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{RunState, SampleSet};

    #[test]
    fn events_and_hello_round_trip() {
        let messages = [
            ServerMessage::Hello {
                protocol: PROTOCOL,
                pid: 7,
                run: "runs/a".into(),
            },
            ServerMessage::Error {
                message: "no".into(),
            },
            ServerMessage::Event(TrainEvent::State {
                step: 3,
                state: RunState::Paused,
                reason: None,
            }),
            ServerMessage::Event(TrainEvent::CheckpointSaved {
                step: 3,
                path: "runs/a/checkpoints/step-0000003".into(),
            }),
            ServerMessage::Event(TrainEvent::Samples(Box::new(SampleSet::Images {
                step: 1,
                side: 2,
                channels: 1,
                count: 1,
                generated: vec![0.0, 0.25, 0.5, 1.0],
                real: vec![1.0, 0.5, 0.25, 0.0],
                raw: None,
            }))),
        ];
        for m in messages {
            let line = serde_json::to_string(&m).unwrap();
            assert!(line.contains("\"kind\":"), "{line}");
            let back: ServerMessage = serde_json::from_str(&line).unwrap();
            assert_eq!(back, m, "{line}");
        }
    }

    #[test]
    fn bad_commands_are_errors_not_panics() {
        assert_eq!(
            parse_command(r#"{"command":"set_lambda","lambda":2.5}"#),
            Ok(Command::SetLambda { lambda: 2.5 })
        );
        for bad in [
            "",
            "garbage",
            "{}",
            r#"{"command":"fly"}"#,
            "[1,2]",
            "\u{0}",
            r#"{"command":"set_lambda","lambda":-1}"#,
            r#"{"command":"set_learning_rates","generator":0,"critic":1e-4}"#,
            r#"{"command":"set_critic_steps","n_critic":0}"#,
            r#"{"command":"set_critic_steps","n_critic":4000000000}"#,
            r#"{"command":"set_critic_steps","n_critic":1001}"#,
        ] {
            assert!(parse_command(bad).is_err(), "{bad:?}");
        }
        let long = "x".repeat(500);
        assert!(parse_command(&long).unwrap_err().len() < 200);
    }

    #[test]
    fn long_lines_are_refused() {
        let mut input = std::io::Cursor::new(vec![b'x'; MAX_LINE as usize + 10]);
        let mut buf = String::new();
        assert!(read_line(&mut input, &mut buf).is_err());
        let mut input = std::io::Cursor::new(b"a\nb".to_vec());
        assert!(read_line(&mut input, &mut buf).unwrap());
        assert_eq!(buf, "a\n");
        assert!(read_line(&mut input, &mut buf).unwrap());
        assert!(!read_line(&mut input, &mut buf).unwrap());
    }
}
