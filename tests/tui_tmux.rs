//! The real binary with its monitor in a real terminal: tmux at 80x24.

mod common;

use std::path::Path;
use std::process::Command;

use common::{BIN, Tmux, metric_lines, records, wait_for};

fn monitor_session(term: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let bin = env!("CARGO_BIN_EXE_wgangp-tui");
    let script = format!(
        "env TERM={term} {bin} --data toy:8gaussians --seed 3 --n-critic 1 --sample-every 5 --out {out}; \
         echo $? > {dir}/exit; stty -a > {dir}/stty.part; mv {dir}/stty.part {dir}/stty; sleep 60",
        out = out.display(),
        dir = dir.path().display()
    );
    let tmux = Tmux::start(term, &script);

    // Curves (braille) and samples appear.
    tmux.wait("curves and samples", |s| {
        s.contains("RUNNING")
            && s.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c))
            && s.contains("Samples")
            && !s.contains("waiting for the first samples")
    });

    // + raises lambda: on screen and in metrics.jsonl, as an event with its step.
    tmux.keys("+");
    tmux.wait("lambda 0.125 on screen", |s| s.contains("lambda 0.125"));
    wait_for("the lambda change in metrics.jsonl", || {
        metric_lines(&out)
            .iter()
            .any(|l| l["kind"] == "hyper" && l["hyper"]["lambda"] == 0.125 && l["step"].is_u64())
    });
    wait_for("metrics after the change", || {
        metric_lines(&out)
            .iter()
            .any(|l| l["kind"] == "metrics" && l["lambda"] == 0.125)
    });

    // Space pauses: the step counter stops.
    tmux.keys("Space");
    tmux.wait("PAUSED", |s| s.contains("PAUSED"));
    wait_for("the pause recorded", || {
        metric_lines(&out)
            .iter()
            .any(|l| l["kind"] == "state" && l["state"] == "paused")
    });

    // s writes a checkpoint (also while paused), and the status line says so.
    tmux.keys("s");
    wait_for("a checkpoint record", || {
        metric_lines(&out).iter().any(|l| l["kind"] == "checkpoint")
    });
    // The worker records in order: a step trained while paused would lie between the pause
    // and the checkpoint it wrote after it.
    let lines = metric_lines(&out);
    let paused = lines
        .iter()
        .position(|l| l["kind"] == "state" && l["state"] == "paused")
        .unwrap();
    let checkpoint = lines
        .iter()
        .position(|l| l["kind"] == "checkpoint")
        .unwrap();
    assert!(
        lines[paused..checkpoint]
            .iter()
            .all(|l| l["kind"] != "metrics"),
        "training went on while paused: {:?}",
        &lines[paused..checkpoint]
    );
    assert_eq!(lines[checkpoint]["step"], lines[paused]["step"]);
    tmux.wait("ckpt on screen", |s| s.contains("ckpt "));
    assert!(out.join("checkpoints/latest").is_file());

    // q quits with status 0 and the terminal restored (main screen, cooked mode).
    tmux.keys("q");
    wait_for("the monitor to exit", || dir.path().join("stty").exists());
    let code = std::fs::read_to_string(dir.path().join("exit")).unwrap();
    assert_eq!(code.trim(), "0");
    assert_cooked_mode(&dir.path().join("stty"));
    let screen = tmux.screen();
    assert!(
        !screen.contains("Losses"),
        "the alternate screen was not left:\n{screen}"
    );
    let lines = metric_lines(&out);
    assert_eq!(
        lines.last().unwrap()["state"],
        "finished",
        "the run's files were not completed"
    );
    // The monitor's run writes the TensorBoard file as a headless one does.
    let files = wgangp_tui::run::tensorboard::event_files(&out);
    let events = wgangp_tui::run::tensorboard::read_events(&files[0]).unwrap();
    let steps_with_loss = events
        .iter()
        .filter(|e| {
            matches!(&e.what, Some(wgangp_tui::run::tensorboard::What::Summary(s))
            if s.value.iter().any(|v| v.tag == "loss/critic"))
        })
        .count();
    let metrics = lines.iter().filter(|l| l["kind"] == "metrics").count();
    assert_eq!(steps_with_loss, metrics);
}

#[test]
fn monitor_in_tmux_xterm_256color() {
    monitor_session("xterm-256color");
}

#[test]
fn monitor_in_tmux_screen() {
    monitor_session("screen");
}

/// A signal to the monitor: a checkpoint is written, the exit is clean (128 + the signal) and
/// the terminal is restored. `flags` go to the monitor.
fn signal_to_the_monitor(name: &str, expected_code: &str, flags: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let bin = env!("CARGO_BIN_EXE_wgangp-tui");
    let script = format!(
        "echo $$ > {dir}/pid; env TERM=xterm-256color {bin} --data toy:8gaussians --seed 3 --n-critic 1 \
         --checkpoint-every 0 {flags} --out {out} 2> {dir}/stderr; echo $? > {dir}/exit; stty -a > {dir}/stty.part; mv {dir}/stty.part {dir}/stty; sleep 60",
        out = out.display(),
        dir = dir.path().display()
    );
    let tmux = Tmux::start(name, &script);
    tmux.wait("training", |s| s.contains("RUNNING") && s.contains("step"));
    wait_for("metrics", || {
        metric_lines(&out).iter().any(|l| l["kind"] == "metrics")
    });
    // The shell's pid is written; the monitor is its only child.
    let shell = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    let pid = child_of(shell.trim().parse().unwrap())
        .expect("the monitor runs")
        .to_string();
    assert!(
        Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for("the monitor to exit", || dir.path().join("stty").exists());
    let code = std::fs::read_to_string(dir.path().join("exit")).unwrap();
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert_eq!(code.trim(), expected_code, "{stderr}");
    assert!(
        stderr.contains(&format!("stopped by SIG{name}")) && stderr.contains("checkpoint of step"),
        "{stderr}"
    );
    assert_cooked_mode(&dir.path().join("stty"));
    assert!(out.join("checkpoints/latest").is_file());
    let lines = metric_lines(&out);
    assert!(lines.iter().any(|l| l["kind"] == "checkpoint"));
}

/// A child process of `parent`, from /proc (the parent id is the 4th field of
/// /proc/PID/stat, after the command name in parentheses).
fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
}

/// The `stty -a` output saved at `path` shows a terminal back in cooked mode with echo.
fn assert_cooked_mode(path: &Path) {
    let stty = std::fs::read_to_string(path).unwrap();
    let flags: Vec<&str> = stty.split_whitespace().collect();
    assert!(
        flags.contains(&"icanon") && flags.contains(&"echo"),
        "terminal left in raw mode: {stty}"
    );
}

#[test]
fn sigterm_to_the_monitor_checkpoints_and_restores_the_terminal() {
    signal_to_the_monitor("TERM", "143", "");
}

/// With `--on-hangup stop`, a hang-up stops the run as SIGTERM does (by default it detaches:
/// `a_hang_up_detaches_and_the_run_goes_on`).
#[test]
fn sighup_to_the_monitor_checkpoints_and_restores_the_terminal() {
    signal_to_the_monitor("HUP", "129", "--on-hangup stop");
}

/// After --resume the monitor's curves start at the run's first step, not at the resume step:
/// the history comes from the run's files.
#[test]
fn resumed_monitor_shows_the_whole_history() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let first = Command::new(env!("CARGO_BIN_EXE_wgangp-tui"))
        .args(["--no-ui", "--data", "toy:8gaussians", "--n-critic", "1"])
        .args(["--steps", "12", "--out", out_s])
        .output()
        .unwrap();
    assert!(first.status.success());
    let script = format!(
        "{} --resume {out_s} --steps 100000; echo $? > {dir}/exit.part; mv {dir}/exit.part {dir}/exit; \
         sleep 60",
        env!("CARGO_BIN_EXE_wgangp-tui"),
        dir = dir.path().display()
    );
    let tmux = Tmux::start("resumed", &script);
    // The x-axis labels of a chart: the first step shown, then the last.
    let axis = |s: &str| {
        s.lines().any(|l| {
            let t: Vec<&str> = l
                .split(|c: char| c == '│' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .collect();
            t.len() >= 2 && t[0] == "1" && t[1].parse::<u64>().is_ok_and(|n| n > 13)
        })
    };
    tmux.wait("curves from step 1 past the resume step", axis);
    tmux.keys("q");
    // Quitting ends the process before its terminal and folder go away with the test.
    wait_for("the monitor to exit", || dir.path().join("exit").exists());
    let code = std::fs::read_to_string(dir.path().join("exit")).unwrap();
    assert_eq!(code.trim(), "0");
}

/// A stopped run whose `samples/latest.json` is damaged: `attach` shows the run read-only with a
/// line saying what is wrong with the samples, and q quits with status 0.
#[test]
fn attach_to_a_run_with_damaged_samples_shows_an_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let bin = env!("CARGO_BIN_EXE_wgangp-tui");
    let trained = Command::new(bin)
        .args(["--no-ui", "--data", "toy:8gaussians", "--n-critic", "1"])
        .args(["--steps", "3", "--out", out_s])
        .output()
        .unwrap();
    assert!(trained.status.success());
    // An image set that claims 64 digits of 28x28 and holds 3 values.
    let damaged =
        r#"{"form":"images","step":3,"side":28,"count":64,"generated":[0,0,0],"real":[]}"#;
    std::fs::write(out.join("samples/latest.json"), damaged).unwrap();
    let script = format!(
        "{bin} attach {out_s} 2> {dir}/stderr; echo $? > {dir}/exit; sleep 60",
        dir = dir.path().display()
    );
    let tmux = Tmux::start("damaged", &script);
    tmux.wait("read-only with the error line", |s| {
        s.contains("read-only") && s.contains("latest.json cannot be shown")
    });
    tmux.keys("q");
    wait_for("the viewer's exit status", || {
        dir.path().join("exit").exists()
    });
    wait_for("the exit status written", || {
        std::fs::read_to_string(dir.path().join("exit")).is_ok_and(|s| s.ends_with('\n'))
    });
    let code = std::fs::read_to_string(dir.path().join("exit")).unwrap();
    assert_eq!(code.trim(), "0");
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A folder run in the monitor: a loading screen while the pictures are decoded, then the
/// pictures in colour, generated beside real, at 80x24.
#[test]
fn folder_run_shows_loading_then_colour_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pictures");
    std::fs::create_dir(&data).unwrap();
    // Large pictures of one colour, so that decoding them takes a while and the real samples
    // show that colour exactly. Noise in the low bit keeps the PNGs from compressing to nothing.
    let colour = [30u8, 160, 90];
    let big = image::RgbImage::from_fn(3000, 3000, |x, y| {
        image::Rgb(colour.map(|c| c ^ ((x * 7 + y * 13) % 2) as u8))
    });
    big.save(data.join("0.png")).unwrap();
    for k in 1..24 {
        std::fs::copy(data.join("0.png"), data.join(format!("{k}.png"))).unwrap();
    }
    let out = dir.path().join("run");
    let bin = env!("CARGO_BIN_EXE_wgangp-tui");
    // The monitor starts once everything it writes is recorded (tmux's pipe-pane), so that the
    // loading screen is seen however briefly it shows.
    let script = format!(
        "while [ ! -e {dir}/go ]; do sleep 0.05; done; \
         env TERM=xterm-256color COLORTERM=truecolor WGANGP_CACHE={dir}/cache {bin} --data {data} \
         --size 32 --batch 8 --n-critic 1 --sample-every 1 --seed 2 --out {out} 2> {dir}/stderr; \
         echo $? > {dir}/exit.part; mv {dir}/exit.part {dir}/exit; sleep 60",
        data = data.display(),
        out = out.display(),
        dir = dir.path().display()
    );
    let tmux = Tmux::start("folder", &script);
    let written = dir.path().join("terminal.log");
    let record = format!("cat >> {}", written.display());
    assert!(
        tmux.run(&["pipe-pane", "-t", "t", &record])
            .status
            .success()
    );
    std::fs::write(dir.path().join("go"), "").unwrap();

    wait_for("the loading screen in what the monitor wrote", || {
        let text =
            String::from_utf8_lossy(&std::fs::read(&written).unwrap_or_default()).into_owned();
        text.contains("loading pictures") && text.contains("give up")
    });
    let screen = tmux.wait("the monitor with samples", |s| {
        s.contains("averaged G | real") && s.contains("RUNNING")
    });
    // The real pictures' colour (the low bit of each channel aside), as tmux holds the cells.
    let cells = String::from_utf8_lossy(&tmux.run(&["capture-pane", "-p", "-e", "-t", "t"]).stdout)
        .into_owned();
    // Every 24-bit colour set by an SGR sequence (38;2;r;g;b or 48;2;r;g;b, alone or combined).
    let mut colours = Vec::new();
    for seq in cells.split("\x1b[").skip(1) {
        let params: Vec<i32> = seq
            .split('m')
            .next()
            .unwrap_or("")
            .split(';')
            .map(|n| n.parse().unwrap_or(-1))
            .collect();
        for w in params.windows(5) {
            if (w[0] == 38 || w[0] == 48) && w[1] == 2 {
                colours.push([w[2], w[3], w[4]]);
            }
        }
    }
    let shown = colours
        .iter()
        .filter(|rgb| {
            rgb.iter()
                .zip(colour)
                .all(|(a, b)| (a - b as i32).abs() <= 2)
        })
        .count();
    assert!(shown > 0, "no cell in the pictures' colour:\n{screen}");

    tmux.keys("q");
    wait_for("the monitor to exit", || dir.path().join("exit").exists());
    let code = std::fs::read_to_string(dir.path().join("exit")).unwrap();
    assert_eq!(code.trim(), "0");
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(stderr.contains("24 pictures at 32x32"), "{stderr}");
}

/// The paper's Figure 1 experiments, live: a deep critic trained alone against real + noise.
/// The status line says so, `4` zooms the gradients pane to the per-layer input-gradient norms
/// on a log scale, and `m` switches the penalty to clipping while it trains.
#[test]
fn fixed_generator_deep_critic_shows_its_layers_and_switches_to_clipping() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let bin = env!("CARGO_BIN_EXE_wgangp-tui");
    let script = format!(
        "env TERM=xterm-256color {bin} --data toy:8gaussians --deep --fixed-generator noise \
         --seed 3 --n-critic 1 --sample-every 5 --out {out}; echo $? > {dir}/exit.part; \
         mv {dir}/exit.part {dir}/exit; sleep 60",
        out = out.display(),
        dir = dir.path().display()
    );
    let tmux = Tmux::start("fixed", &script);
    tmux.wait("a critic-only run", |s| {
        s.contains("RUNNING") && s.contains("critic-only")
    });
    tmux.keys("4");
    tmux.wait("the layers' input gradients", |s| {
        s.contains("|dL/d input| per layer, log scale") && s.contains("l12")
    });
    // gp -> lp -> clip.
    tmux.keys("m");
    tmux.keys("m");
    tmux.wait("clipping on screen", |s| s.contains(" clip lambda"));
    wait_for("metrics trained with clipping", || {
        metric_lines(&out)
            .iter()
            .any(|l| l["kind"] == "metrics" && l["penalty_mode"] == "clip")
    });
    tmux.keys("q");
    wait_for("the monitor to exit", || dir.path().join("exit").exists());
    let code = std::fs::read_to_string(dir.path().join("exit")).unwrap();
    assert_eq!(code.trim(), "0");
}

/// The pid that serves the run in `out` on its socket (its hello), if one does.
fn serving_pid(out: &Path) -> Option<u64> {
    use std::io::BufRead;
    let stream = std::os::unix::net::UnixStream::connect(out.join("control.sock")).ok()?;
    let mut hello = String::new();
    std::io::BufReader::new(stream).read_line(&mut hello).ok()?;
    serde_json::from_str::<serde_json::Value>(&hello).ok()?["pid"].as_u64()
}

/// A hang-up (the tmux session killed, as when an SSH connection drops) hands the run to a
/// background process as `d` does: training goes on from the step it had reached with no step
/// twice, `train.log` says why, nothing is said to the terminal that is gone, and `attach`
/// finds the run.
#[test]
fn a_hang_up_detaches_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let bin = env!("CARGO_BIN_EXE_wgangp-tui");
    let script = format!(
        "{bin} --data toy:8gaussians --n-critic 1 --steps 100000 --checkpoint-every 0 \
         --out {out} 2> {dir}/stderr; sleep 60",
        out = out.display(),
        dir = dir.path().display()
    );
    let tmux = Tmux::start("hangup", &script);
    tmux.wait("training", |s| s.contains("RUNNING") && s.contains("step"));
    let steps = || -> Vec<u64> {
        metric_lines(&out)
            .iter()
            .filter(|l| l["kind"] == "metrics")
            .map(|l| l["step"].as_u64().unwrap())
            .collect()
    };
    wait_for("five steps", || steps().len() >= 5);
    let monitor = serving_pid(&out).expect("the monitor serves its run");
    assert!(tmux.run(&["kill-session", "-t", "t"]).status.success());

    let mut background = None;
    wait_for("another process serving the run", || {
        background = serving_pid(&out).filter(|&pid| pid != monitor);
        background.is_some()
    });
    let background = background.unwrap();
    // Ended when the test ends, whether it passes or not.
    struct Terminated(u64);
    impl Drop for Terminated {
        fn drop(&mut self) {
            if let Some(pid) = rustix::process::Pid::from_raw(self.0 as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
    }
    let _guard = Terminated(background);
    let handed_on = std::fs::read_to_string(out.join("train.log")).unwrap();
    assert!(
        handed_on.contains("the terminal hung up at step")
            && handed_on.contains("wgangp-tui attach"),
        "{handed_on}"
    );
    let reached = *steps().last().unwrap();
    wait_for("training past the hang-up", || {
        steps().last().is_some_and(|&s| s >= reached + 5)
    });
    let all = steps();
    assert!(
        all.windows(2).all(|w| w[1] == w[0] + 1) && all[0] == 1,
        "a step lost or twice: {all:?}"
    );
    let said = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(!said.contains("Failed to"), "{said}");

    let viewer = Tmux::start(
        "viewer",
        &format!("{bin} attach {}; sleep 60", out.display()),
    );
    viewer.wait("the run attached", |s| {
        s.contains(&format!("attached to pid {background}"))
    });
    viewer.keys("q");
    drop(_guard);
    wait_for("the background process to end", || {
        !Path::new(&format!("/proc/{background}")).exists()
    });
}

/// An alert reaches a person looking at another tmux window: the monitor's window gets the
/// bell flag and the pane the alert in its title, and the sentence is on the screen.
#[test]
fn an_alert_rings_the_bell_and_names_itself_in_the_title() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // Lambda 0: the critic's gradient norm runs away, alerting at step 200.
    let script = format!(
        "env TERM=xterm-256color {BIN} --data toy:8gaussians --lambda 0 --batch 32 --seed 1 \
         --steps 100000 --out {}; echo $? > {}/exit",
        out.display(),
        dir.path().display()
    );
    let tmux = Tmux::start("alert", &script);
    assert!(tmux.run(&["new-window", "-d", "-t", "t"]).status.success());
    tmux.wait("the alert under the status line", |s| {
        s.contains("! step 200: the critic's")
    });
    let windows = tmux.run(&[
        "list-windows",
        "-t",
        "t",
        "-F",
        "#{window_index} #{window_bell_flag} #{pane_title}",
    ]);
    let windows = String::from_utf8_lossy(&windows.stdout).into_owned();
    assert_eq!(
        windows.lines().next(),
        Some("0 1 wgangp-tui: alert at step 200 (gradient_norm)"),
        "{windows}"
    );
    tmux.keys("q");
    wait_for("the monitor's exit", || dir.path().join("exit").exists());
}

/// The quality pane in a real terminal: a toy run evaluating every 20 steps shows the share of
/// points near a mode in the pane's title at 80x24; zoomed (`6`), the averaged generator's
/// line in light green and the raw one's in grey, named in the legend.
#[test]
fn the_quality_pane_draws_the_evaluations_in_colour() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let script = format!(
        "env TERM=xterm-256color {BIN} --data toy:8gaussians --eval-every 20 --seed 1 \
         --steps 100000 --out {}; echo $? > {}/exit",
        out.display(),
        dir.path().display()
    );
    let tmux = Tmux::start("quality", &script);
    tmux.wait("the quality figure in the pane's title", |s| {
        s.contains("6 Quality % near")
    });
    // Two evaluations make a line.
    wait_for("a second evaluation", || {
        records(&out).iter().filter(|r| r["kind"] == "eval").count() >= 2
    });
    tmux.keys("6");
    tmux.wait("the zoomed pane's legend", |s| {
        s.contains("raw G") && s.contains("averaged G")
    });
    let coloured = tmux.run(&["capture-pane", "-e", "-p", "-t", "t"]);
    let coloured = String::from_utf8_lossy(&coloured.stdout).into_owned();
    // Braille cells by foreground colour, following the SGR sequences: ratatui's light green
    // and grey are the 16 colours' bright green and white (92 or 38;5;10, 37 or 38;5;7).
    let (mut light_green, mut grey, mut fg) = (0, 0, "");
    for piece in coloured.split("\x1b[") {
        let (params, text) = piece.split_once('m').unwrap_or(("", piece));
        let params: Vec<&str> = params.split(';').collect();
        for (i, p) in params.iter().enumerate() {
            let next = |k: usize| params.get(i + k).copied();
            fg = match (*p, next(1), next(2)) {
                ("92", ..) | ("38", Some("5"), Some("10")) => "light green",
                ("37", ..) | ("38", Some("5"), Some("7")) => "grey",
                ("0" | "" | "39", ..) => "",
                (p, ..) if p.len() == 2 && (p.starts_with('3') || p.starts_with('9')) => "other",
                _ => fg,
            };
        }
        let braille = text
            .chars()
            .filter(|c| ('\u{2800}'..='\u{28ff}').contains(c))
            .count();
        match fg {
            "light green" => light_green += braille,
            "grey" => grey += braille,
            _ => {}
        }
    }
    assert!(
        light_green > 10 && grey > 10,
        "{light_green} {grey}:\n{coloured}"
    );
    tmux.keys("q");
    wait_for("the monitor's exit", || dir.path().join("exit").exists());
}
