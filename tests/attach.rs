//! Detach and attach on the real binary: a headless run served on its socket, viewers in tmux
//! (80x24) and raw socket clients, `d` from the in-process monitor, `ls`, and another user.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Tmux, metric_lines, wait_for, wgangp};

use serde_json::Value;

/// A headless training run in the background, killed when the test ends however it ends.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Small and slow enough to be watched: one critic step, one kernel thread.
const TOY: &[&str] = &[
    "--data",
    "toy:8gaussians",
    "--seed",
    "3",
    "--n-critic",
    "1",
    "--threads",
    "1",
    "--steps",
    "100000",
];

fn headless(out: &Path, prefix: &[&str]) -> Background {
    let mut argv: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
    argv.push(BIN.into());
    argv.extend(["--no-ui", "--out"].map(String::from));
    argv.push(out.display().to_string());
    argv.extend(TOY.iter().map(|s| s.to_string()));
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The socket is bound before config.json is written: a viewer needs both.
    let (socket, config) = (out.join("control.sock"), out.join("config.json"));
    wait_for("the run's socket and config.json", || {
        socket.exists() && config.exists()
    });
    Background(child)
}

fn steps(out: &Path) -> u64 {
    metric_lines(out)
        .iter()
        .filter(|l| l["kind"] == "metrics")
        .filter_map(|l| l["step"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Waits until the run has made `n` more steps than now.
fn goes_on(out: &Path, n: u64) {
    let from = steps(out);
    wait_for(&format!("{n} more steps after step {from}"), || {
        steps(out) >= from + n
    });
}

/// A raw protocol client.
struct Client {
    stream: UnixStream,
    lines: BufReader<UnixStream>,
}

impl Client {
    fn connect(out: &Path) -> Client {
        let stream = UnixStream::connect(out.join("control.sock")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let lines = BufReader::new(stream.try_clone().unwrap());
        Client { stream, lines }
    }

    fn next(&mut self) -> Value {
        let mut line = String::new();
        self.lines.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// Reads until a line of `kind`.
    fn until(&mut self, kind: &str) -> Value {
        loop {
            let v = self.next();
            if v["kind"] == kind {
                return v;
            }
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stream, "{line}").unwrap();
    }
}

/// A viewer in its own tmux server; `pidfile` gets the viewer's pid, `exit` its status.
fn viewer(name: &str, out: &Path, dir: &Path) -> Tmux {
    let script = format!(
        "echo $$ > {dir}/{name}.pid; {BIN} attach {out}; echo $? > {dir}/{name}.exit; sleep 60",
        dir = dir.display(),
        out = out.display()
    );
    // `exec` is not used so that the exit status can be written; $$ is the shell's pid and the
    // viewer is its only child.
    Tmux::start(name, &script)
}

fn child_of(shell_pid: &str) -> String {
    let o = Command::new("pgrep")
        .args(["-P", shell_pid.trim()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn headless_run_is_served_to_viewers_who_steer_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = headless(&out, &[]);
    let pid = run.0.id();

    // Owner-only socket.
    let mode = std::fs::metadata(out.join("control.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // The protocol: hello, the run so far, live events.
    let mut client = Client::connect(&out);
    let hello = client.next();
    assert_eq!(hello["kind"], "hello");
    assert_eq!(hello["protocol"], 1);
    assert_eq!(hello["pid"], pid);
    assert_eq!(client.until("started")["config"]["batch"], 256);
    let first = client.until("metrics")["step"].as_u64().unwrap();
    assert_eq!(first, 1, "the history starts at the first step");

    // A malformed message gets an error reply; the connection and the run go on.
    client.send("this is not json");
    let error = client.until("error");
    assert!(
        error["message"].as_str().unwrap().contains("not a command"),
        "{error}"
    );
    client.send(r#"{"command":"set_lambda","lambda":-3}"#);
    assert!(
        client.until("error")["message"]
            .as_str()
            .unwrap()
            .contains("lambda")
    );
    client.send(r#"{"command":"set_lambda","lambda":0.5}"#);
    let hyper = client.until("hyper");
    assert_eq!(hyper["hyper"]["lambda"], 0.5, "{hyper}");
    goes_on(&out, 2);

    // Two viewers at once, at 80x24.
    let v1 = viewer("v1", &out, dir.path());
    let v2 = viewer("v2", &out, dir.path());
    let attached = format!("attached to pid {pid}");
    for v in [&v1, &v2] {
        v.wait("the attached monitor", |s| {
            s.contains(&attached) && s.contains("lambda 0.500") && s.contains("Samples")
        });
    }
    // Keys work as in the in-process monitor: + in one viewer changes the run for all.
    v1.keys("+");
    wait_for("lambda 0.625 in metrics.jsonl", || {
        metric_lines(&out)
            .iter()
            .any(|l| l["kind"] == "hyper" && l["hyper"]["lambda"] == 0.625)
    });
    for v in [&v1, &v2] {
        v.wait("lambda 0.625 on screen", |s| s.contains("lambda 0.625"));
    }

    // A viewer killed with SIGKILL: training goes on, the other viewer too.
    let shell = std::fs::read_to_string(dir.path().join("v1.pid")).unwrap();
    let v1_pid = child_of(&shell);
    assert!(!v1_pid.is_empty(), "the viewer's pid");
    assert!(
        Command::new("kill")
            .args(["-9", &v1_pid])
            .status()
            .unwrap()
            .success()
    );
    goes_on(&out, 5);
    let now = steps(&out);
    v2.wait("the surviving viewer to follow", |s| {
        s.split_whitespace()
            .skip_while(|w| *w != "step")
            .nth(1)
            .and_then(|w| w.split('/').next()?.parse::<u64>().ok())
            .is_some_and(|shown| shown >= now)
    });
    // The raw client also still gets the live stream: a step that was not yet written when
    // the viewer was killed reaches it (its history and earlier lines may still be queued).
    let mut live = 0;
    while live <= now {
        live = client.until("metrics")["step"].as_u64().unwrap();
    }

    // q in a viewer leaves the training alone.
    v2.keys("q");
    v2.wait("the detach message", |s| {
        s.contains("training goes on in process")
    });
    wait_for("the viewer's exit status", || {
        dir.path().join("v2.exit").exists()
    });
    let exit = std::fs::read_to_string(dir.path().join("v2.exit")).unwrap();
    assert_eq!(exit.trim(), "0");
    goes_on(&out, 2);

    // A second process on the same run folder is refused before it touches a file.
    let out_s = out.to_str().unwrap();
    let again = ["--no-ui", "--data", "toy:8gaussians", "--out", out_s];
    common::assert_bad_input(&again, &format!("process {pid} is training the run"));
    client.send(r#"{"command":"checkpoint"}"#);
    assert!(client.until("checkpoint")["step"].as_u64().unwrap() > 0);
    common::assert_bad_input(&["--no-ui", "--resume", out_s], "is training the run");
    goes_on(&out, 2);

    // ls sees it live.
    let ls = wgangp(&["ls", dir.path().to_str().unwrap()]);
    let table = String::from_utf8_lossy(&ls.stdout);
    assert!(ls.status.success(), "{table}");
    assert!(
        table.contains("live") && table.contains(&pid.to_string()),
        "{table}"
    );
    drop(run);
}

/// The in-process monitor in tmux session `name`, training into `out`; its exit status goes to
/// `dir/exit`.
fn monitor(name: &str, dir: &Path, out: &Path) -> Tmux {
    let script = format!(
        "{BIN} {args} --out {out}; echo $? > {dir}/exit; sleep 60",
        args = TOY.join(" "),
        out = out.display(),
        dir = dir.display()
    );
    let monitor = Tmux::start(name, &script);
    monitor.wait("the monitor", |s| {
        s.contains("RUNNING") && s.contains("Samples")
    });
    monitor
}

/// Presses `d` and returns the background process's pid from the message, which starts with
/// `message`.
fn detach(monitor: &Tmux, message: &str) -> u32 {
    monitor.keys("d");
    let screen = monitor.wait("the detach message", |s| s.contains(message));
    screen
        .split("in process ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{screen}"))
}

#[test]
fn d_detaches_the_monitor_and_attach_finds_the_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let monitor = monitor("mon", dir.path(), &out);
    goes_on(&out, 3);
    let pid = detach(&monitor, "detached: training goes on in process");
    // The message comes just before the monitor exits; its status a moment after.
    let exit_file = dir.path().join("exit");
    wait_for("the monitor to exit", || {
        std::fs::read_to_string(&exit_file).is_ok_and(|s| !s.trim().is_empty())
    });
    let exit = std::fs::read_to_string(&exit_file).unwrap();
    assert_eq!(exit.trim(), "0");
    // The terminal closes; the background process is not tied to it.
    drop(monitor);
    let background = Guard(pid);
    goes_on(&out, 3);
    let detached_at = steps(&out);

    // Attach again: the history from before the detach is there, and the keys steer.
    let again = viewer("again", &out, dir.path());
    again.wait("attached again", |s| {
        s.contains(&format!("attached to pid {pid}"))
    });
    again.keys("Space");
    again.wait("PAUSED", |s| s.contains("PAUSED"));
    wait_for("the pause in metrics.jsonl", || {
        metric_lines(&out)
            .iter()
            .any(|l| l["kind"] == "state" && l["state"] == "paused")
    });
    again.keys("q");
    wait_for("the viewer's exit", || {
        dir.path().join("again.exit").exists()
    });
    let records = metric_lines(&out);
    let first: Vec<u64> = records
        .iter()
        .filter(|l| l["kind"] == "metrics")
        .filter_map(|l| l["step"].as_u64())
        .collect();
    assert_eq!(first[0], 1, "one history from the first step");
    assert!(
        first.windows(2).all(|w| w[1] == w[0] + 1),
        "no step lost or repeated across the detach: {first:?}"
    );
    assert!(*first.last().unwrap() >= detached_at);

    // Stopped, the run is shown read-only from its files.
    drop(background);
    wait_for("the socket to go", || !out.join("control.sock").exists());
    let ls = wgangp(&["ls", out.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&ls.stdout).contains("stopped"),
        "{}",
        String::from_utf8_lossy(&ls.stdout)
    );
    let readonly = viewer("readonly", &out, dir.path());
    readonly.wait("the read-only view", |s| {
        s.contains("STOPPED") && s.contains("read-only")
    });
    readonly.keys("q");
    readonly.wait("the closing line", |s| s.contains("shown read-only"));
}

/// Sends SIGTERM to a pid and waits for it to end.
struct Guard(u32);

impl Drop for Guard {
    fn drop(&mut self) {
        let pid = self.0.to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists()
            && start.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Another user's run refuses us, and our run's socket refuses them. Needs root, to run a
/// process as another uid (CI runs as root); elsewhere the owner check is tested in
/// `serve::tests` and the socket mode above.
#[test]
fn another_user_is_refused() {
    let root = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&root.stdout).trim() != "0" {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run as root for this test"
        );
        eprintln!("not root: cannot run a process as another user here; skipped");
        return;
    }
    let other = "4321";
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let as_other = [
        "setpriv",
        "--reuid",
        other,
        "--regid",
        other,
        "--clear-groups",
    ];

    // Their run: root can open the socket file, the server refuses the connection.
    let theirs = dir.path().join("theirs");
    let run = headless(&theirs, &as_other);
    let mut client = Client::connect(&theirs);
    let reply = client.next();
    assert_eq!(reply["kind"], "error", "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("belongs to user {other}")) && message.contains("user 0"),
        "{message}"
    );
    drop(run);

    // Our run: the socket's mode keeps them out.
    let ours: PathBuf = dir.path().join("ours");
    let run = headless(&ours, &[]);
    std::fs::set_permissions(&ours, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut argv = as_other.to_vec();
    argv.extend([BIN, "attach", ours.to_str().unwrap()]);
    let o = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("belongs to another user"), "{stderr}");
    goes_on(&ours, 1);
    drop(run);
}

/// `d` on a paused run: the background process goes on paused (nothing trains behind the
/// user's back), and a viewer resumes it.
#[test]
fn a_paused_run_stays_paused_when_detached() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let monitor = monitor("pmon", dir.path(), &out);
    goes_on(&out, 2);
    monitor.keys("Space");
    monitor.wait("PAUSED", |s| s.contains("PAUSED"));
    let pid = detach(&monitor, "detached: the run waits, paused, in process");
    drop(monitor);
    let _background = Guard(pid);
    // The background process records its own pause (the run's second) before any step.
    let detached_at = steps(&out);
    let pauses = |out: &Path| {
        metric_lines(out)
            .iter()
            .filter(|l| l["kind"] == "state" && l["state"] == "paused")
            .count()
    };
    wait_for("the background process's pause", || pauses(&out) == 2);
    let ls = wgangp(&["ls", out.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&ls.stdout);
    assert!(
        table.contains("live, paused") && table.contains(&pid.to_string()),
        "{table}"
    );

    let viewer = viewer("resume", &out, dir.path());
    viewer.wait("attached, paused", |s| {
        s.contains(&format!("attached to pid {pid}")) && s.contains("PAUSED")
    });
    viewer.keys("Space");
    goes_on(&out, 2);
    viewer.keys("q");
    // The worker records in order: between the background process's pause and the viewer's
    // resume, no step was trained, and the first step after it is the next one.
    let lines = metric_lines(&out);
    let paused = lines
        .iter()
        .rposition(|l| l["kind"] == "state" && l["state"] == "paused")
        .unwrap();
    let resumed = paused
        + lines[paused..]
            .iter()
            .position(|l| l["kind"] == "state" && l["state"] == "running")
            .expect("the resume recorded");
    assert!(
        lines[paused..resumed]
            .iter()
            .all(|l| l["kind"] != "metrics"),
        "steps were trained while paused"
    );
    let first = lines[resumed..]
        .iter()
        .find(|l| l["kind"] == "metrics")
        .unwrap();
    assert_eq!(first["step"].as_u64(), Some(detached_at + 1));
}
