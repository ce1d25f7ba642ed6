//! The monitor rendered into ratatui's TestBackend from synthetic metric streams: every pane
//! at 80x24 and 160x48, the states, the help overlay, and the keys.

use clap::Parser;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;
use wgangp_tui::cli::Cli;
use wgangp_tui::config::{Hyper, PenaltyMode};
use wgangp_tui::data::{EMBEDDED_MNIST, idx::parse_images};
use wgangp_tui::event::{
    Alert, AlertKind, Command, DigitScores, EvalRecord, Histogram, LayerStats, RunState, SampleSet,
    StepMetrics, TrainEvent,
};
use wgangp_tui::front::tui::app::{App, Link};
use wgangp_tui::front::tui::keys::{Action, action};
use wgangp_tui::front::tui::ui;
use wgangp_tui::front::tui::view::{ColorMode, Pane};

fn app(data: &str, steps: u64) -> App {
    let argv = [
        "wgangp-tui",
        "--data",
        data,
        "--out",
        "runs/demo",
        "--seed",
        "1",
        "--steps",
        "1000",
    ];
    let config = Cli::try_parse_from(argv).unwrap().to_config().unwrap();
    let mut app = App::new(config, ColorMode::TrueColor, false);
    for step in 1..=steps {
        app.on_event(TrainEvent::Metrics(Box::new(metrics(&app.hyper, step))));
    }
    app
}

/// A plausible, deterministic run: the critic's estimate rises then decays, the gradient norm
/// settles near 1.
fn metrics(h: &Hyper, step: u64) -> StepMetrics {
    let t = step as f64;
    let w = 2.0 * (t / 40.0).exp() / (1.0 + (t / 40.0).exp().powi(2)) + 0.05 * (t * 1.7).sin();
    let norm = 1.0 + 0.8 * (-t / 30.0).exp() + 0.05 * (t * 0.9).cos();
    let p = (norm - 1.0).powi(2) + 0.01;
    StepMetrics {
        step,
        wall_s: t * 0.5,
        critic_loss: -w + h.lambda * p,
        generator_loss: 0.5 * w + 0.1 * (t * 0.3).sin(),
        wasserstein: w,
        penalty: p,
        weighted_penalty: h.lambda * p,
        grad_norm_mean: norm,
        grad_norm_std: 0.1 + 0.05 * (t * 0.2).sin().abs(),
        layers: ["c1", "c2", "c3", "fc"]
            .iter()
            .enumerate()
            .map(|(i, n)| LayerStats {
                name: n.to_string(),
                grad_norm: 0.5 / (i + 1) as f64,
                max_abs_weight: 0.1,
                input_grad_norm: None,
            })
            .collect(),
        weight_histogram: Histogram {
            lo: -0.1,
            hi: 0.1,
            counts: (0..41)
                .map(|i: i64| (1000.0 * (-((i - 20) as f64 / 6.0).powi(2)).exp()) as u64)
                .collect(),
        },
        lambda: h.lambda,
        lr_generator: h.lr_generator,
        lr_critic: h.lr_critic,
        n_critic: h.n_critic,
        penalty_mode: h.penalty,
        iters_per_s: 2.0,
    }
}

fn mnist_samples(step: u64) -> SampleSet {
    let images = parse_images(EMBEDDED_MNIST).unwrap();
    let real: Vec<f32> = images.pixels[..64 * 784]
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect();
    // "Generated": the real digits, blurred by shifting, so the two grids differ.
    let generated: Vec<f32> = real
        .iter()
        .enumerate()
        .map(|(i, &v)| 0.5 * v + 0.5 * real[(i + 1) % real.len()])
        .collect();
    SampleSet::Images {
        step,
        side: 28,
        channels: 1,
        count: 64,
        generated,
        real,
        raw: None,
    }
}

fn toy_samples(step: u64) -> SampleSet {
    let ring = |r: f32, n: usize, phase: f32| -> Vec<[f32; 2]> {
        (0..n)
            .map(|i| {
                let a = i as f32 / n as f32 * std::f32::consts::TAU + phase;
                [r * a.cos(), r * a.sin()]
            })
            .collect()
    };
    let grid = 64;
    let critic = (0..grid * grid)
        .map(|i| ((i % grid) as f32 - 32.0) / 32.0)
        .collect();
    SampleSet::Points {
        step,
        generated: ring(1.2, 300, 0.1),
        real: ring(1.414, 300, 0.0),
        extent: 2.5,
        grid,
        critic,
        raw: None,
    }
}

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    terminal.backend().to_string()
}

fn snapshot(name: &str, app: &App) {
    for (w, h) in [(80, 24), (160, 48)] {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), render(app, w, h));
    }
}

/// One letter a named colour; pictures' own colours (RGB, 256-colour) are checked by the tests
/// of the samples pane.
fn colour_letter(c: Color) -> char {
    match c {
        Color::Reset => '.',
        Color::Black => 'k',
        Color::Red => 'r',
        Color::Green => 'g',
        Color::Yellow => 'y',
        Color::Blue => 'b',
        Color::Magenta => 'm',
        Color::Cyan => 'c',
        Color::Gray => 'a',
        Color::DarkGray => 'd',
        Color::LightRed => 'o',
        Color::LightGreen => 'e',
        Color::LightYellow => 'i',
        Color::LightBlue => 'u',
        Color::LightMagenta => 'p',
        Color::LightCyan => 't',
        Color::White => 'w',
        Color::Rgb(..) => '*',
        Color::Indexed(_) => '#',
    }
}

/// The screen's colours at 80x24, a letter a cell: a drawn cell shows its foreground's letter,
/// a blank one its background's in capitals (blank on the default background: a space).
fn colours(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..24 {
        for x in 0..80 {
            let cell = &buf[(x, y)];
            out.push(match (cell.symbol().trim().is_empty(), cell.bg) {
                (false, _) => colour_letter(cell.fg),
                (true, Color::Reset) => ' ',
                (true, bg) => colour_letter(bg).to_ascii_uppercase(),
            });
        }
        out.push('\n');
    }
    out
}

/// The text and the colours of a view.
fn snapshot_in_colour(name: &str, app: &App) {
    snapshot(name, app);
    insta::assert_snapshot!(format!("{name}_colours_80x24"), colours(app));
}

fn mnist_app() -> App {
    let mut app = app("mnist", 120);
    app.on_event(TrainEvent::HyperChanged {
        step: 60,
        hyper: Hyper {
            lambda: 12.5,
            ..app.hyper.clone()
        },
        change: "lambda 10 -> 12.5".into(),
    });
    app.on_event(TrainEvent::Samples(Box::new(mnist_samples(100))));
    app
}

#[test]
fn running_mnist() {
    snapshot_in_colour("running_mnist", &mnist_app());
}

#[test]
fn running_toy() {
    let mut app = app("toy:8gaussians", 80);
    app.on_event(TrainEvent::Samples(Box::new(toy_samples(80))));
    snapshot_in_colour("running_toy", &app);
}

#[test]
fn each_pane_zoomed() {
    for pane in Pane::ALL {
        let mut app = mnist_app();
        app.on_action(Action::Zoom(pane));
        snapshot(&format!("zoom_{}", pane.number()), &app);
    }
}

#[test]
fn states_paused_nan_finished() {
    let mut app = mnist_app();
    app.on_event(TrainEvent::State {
        step: 120,
        state: RunState::Paused,
        reason: None,
    });
    snapshot_in_colour("paused", &app);
    app.on_event(TrainEvent::State {
        step: 121,
        state: RunState::NonFinite,
        reason: Some(
            "the critic loss is not finite at step 121; the update was not applied".into(),
        ),
    });
    snapshot_in_colour("nonfinite", &app);
    let mut app = mnist_app();
    app.on_event(TrainEvent::State {
        step: 1000,
        state: RunState::Finished,
        reason: None,
    });
    snapshot_in_colour("finished", &app);
}

#[test]
fn help_overlay() {
    let mut app = mnist_app();
    app.on_action(Action::Help);
    snapshot("help", &app);
}

#[test]
fn view_toggles_smoothing_log_recent_ascii() {
    let mut app = mnist_app();
    for a in [
        Action::ToggleSmoothing,
        Action::ToggleLogScale,
        Action::ToggleWindow,
    ] {
        app.on_action(a);
    }
    snapshot("toggles", &app);
    let mut app = mnist_app();
    app.view.ascii = true;
    app.view.colors = ColorMode::None;
    snapshot("ascii", &app);
}

#[test]
fn too_small_terminal_says_so() {
    let app = mnist_app();
    let screen = render(&app, 50, 12);
    assert!(screen.contains("Terminal too small: 50x12"), "{screen}");
    insta::assert_snapshot!("too_small", screen);
    // 80x23 (80x24 inside tmux, whose status line takes a row) still shows every pane.
    let screen = render(&app, 80, 23);
    for pane in Pane::ALL {
        assert!(
            screen.contains(pane.title()),
            "{} missing at 80x23",
            pane.title()
        );
    }
}

/// A viewer attached to another process, and a run shown read-only from its files: the status
/// line says which; q and d leave the training alone; a read-only view sends nothing.
#[test]
fn attached_and_read_only_views() {
    let mut app = mnist_app();
    app.link = Link::Attached { pid: 4242 };
    snapshot("attached", &app);
    assert!(render(&app, 80, 24).contains("attached to pid 4242 | step 120/1000"));
    let lambda = app.hyper.lambda * 1.25;
    assert_eq!(
        app.on_action(Action::LambdaUp),
        Some(Command::SetLambda { lambda })
    );
    assert_eq!(app.on_action(Action::Detach), None);
    assert!(app.quit && !app.stopping);
    let mut app = mnist_app();
    app.link = Link::Attached { pid: 4242 };
    assert_eq!(app.on_action(action(key('q')).unwrap()), None);
    assert!(app.quit && !app.stopping);

    let mut app = mnist_app();
    app.link = Link::ReadOnly;
    app.on_event(TrainEvent::State {
        step: 120,
        state: RunState::Finished,
        reason: None,
    });
    snapshot("read_only", &app);
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("STOPPED  read-only | step 120/1000"),
        "{screen}"
    );
    for a in [Action::TogglePause, Action::LambdaUp, Action::Checkpoint] {
        assert_eq!(app.on_action(a), None, "{a:?}");
    }
}

/// In the in-process monitor d stops the worker (with a checkpoint) for a background process to
/// go on; the state word says so until the worker has stopped.
#[test]
fn d_detaches_the_in_process_monitor() {
    let mut app = mnist_app();
    assert_eq!(action(key('d')), Some(Action::Detach));
    assert_eq!(app.on_action(Action::Detach), Some(Command::Stop));
    assert!(app.detach && app.stopping && !app.quit);
    assert!(render(&app, 80, 24).contains("DETACHING"));
    app.on_event(TrainEvent::State {
        step: 120,
        state: RunState::Finished,
        reason: None,
    });
    assert!(app.quit);
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// Each key sends the right command, and once the worker confirms, the new value is on screen.
#[test]
fn keys_send_commands_and_the_new_values_show() {
    let mut app = app("mnist", 10);
    let h = app.hyper.clone();
    let cases: Vec<(KeyEvent, Command, Box<dyn Fn(&mut Hyper)>, &str)> = vec![
        (
            key('+'),
            Command::SetLambda { lambda: 12.5 },
            Box::new(|h| h.lambda = 12.5),
            "lambda 12.500",
        ),
        (
            key('-'),
            Command::SetLambda { lambda: 10.0 },
            Box::new(|h| h.lambda = 10.0),
            "lambda 10.000",
        ),
        (
            key(']'),
            Command::SetLearningRates {
                generator: 2e-4,
                critic: 2e-4,
            },
            Box::new(|h| {
                h.lr_generator = 2e-4;
                h.lr_critic = 2e-4
            }),
            "lr 2.00e-4/2.00e-4",
        ),
        (
            key('['),
            Command::SetLearningRates {
                generator: 1e-4,
                critic: 1e-4,
            },
            Box::new(|h| {
                h.lr_generator = 1e-4;
                h.lr_critic = 1e-4
            }),
            "lr 1.00e-4/1.00e-4",
        ),
        (
            key('}'),
            Command::SetCriticSteps { n_critic: 6 },
            Box::new(|h| h.n_critic = 6),
            "ncrit 6",
        ),
        (
            key('{'),
            Command::SetCriticSteps { n_critic: 5 },
            Box::new(|h| h.n_critic = 5),
            "ncrit 5",
        ),
        (
            key('m'),
            Command::SetPenalty {
                penalty: PenaltyMode::Lp,
            },
            Box::new(|h| h.penalty = PenaltyMode::Lp),
            " lp lambda",
        ),
    ];
    assert_eq!(h.lambda, 10.0);
    for (k, want, change, shown) in cases {
        let got = app.on_action(action(k).unwrap());
        assert_eq!(got, Some(want.clone()), "key {k:?}");
        let mut hyper = app.hyper.clone();
        change(&mut hyper);
        app.on_event(TrainEvent::HyperChanged {
            step: app.step,
            hyper,
            change: format!("{want:?}"),
        });
        let screen = render(&app, 80, 24);
        assert!(
            screen.contains(shown),
            "after {k:?} expected `{shown}` on screen:\n{screen}"
        );
    }
    assert_eq!(
        app.on_action(action(key('n')).unwrap()),
        Some(Command::SampleNow)
    );
    assert_eq!(
        app.on_action(action(key('s')).unwrap()),
        Some(Command::Checkpoint)
    );
    assert_eq!(
        app.on_action(action(key(' ')).unwrap()),
        Some(Command::Pause)
    );
    app.on_event(TrainEvent::State {
        step: 10,
        state: RunState::Paused,
        reason: None,
    });
    assert!(render(&app, 80, 24).contains("PAUSED"));
    assert_eq!(
        app.on_action(action(key('p')).unwrap()),
        Some(Command::Resume)
    );
    // A NaN pauses the run and says why; keys still steer it, and space resumes.
    app.on_event(TrainEvent::State {
        step: 11,
        state: RunState::NonFinite,
        reason: Some("the critic loss is not finite at step 11; the update was not applied".into()),
    });
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("PAUSED: NaN")
            && screen.contains("the critic loss is not finite at step 11"),
        "{screen}"
    );
    assert_eq!(
        app.on_action(action(key('-')).unwrap()),
        Some(Command::SetLambda { lambda: 8.0 })
    );
    assert_eq!(
        app.on_action(action(key(' ')).unwrap()),
        Some(Command::Resume)
    );
    app.on_event(TrainEvent::State {
        step: 11,
        state: RunState::Running,
        reason: None,
    });
    assert!(!render(&app, 80, 24).contains("NaN"));
    // lambda steps down to exactly 0 and back up from it.
    let set_lambda = |app: &mut App, lambda: f64| {
        app.on_event(TrainEvent::HyperChanged {
            step: 11,
            hyper: Hyper {
                lambda,
                ..app.hyper.clone()
            },
            change: String::new(),
        })
    };
    set_lambda(&mut app, 0.0011);
    assert_eq!(
        app.on_action(Action::LambdaDown),
        Some(Command::SetLambda { lambda: 0.0 })
    );
    set_lambda(&mut app, 0.0);
    assert_eq!(
        app.on_action(Action::LambdaUp),
        Some(Command::SetLambda { lambda: 0.01 })
    );
    // q stops the worker first; the monitor quits once it has finished.
    assert_eq!(
        app.on_action(action(key('q')).unwrap()),
        Some(Command::Stop)
    );
    assert!(!app.quit && render(&app, 80, 24).contains("STOPPING"));
    app.on_event(TrainEvent::State {
        step: 10,
        state: RunState::Finished,
        reason: None,
    });
    assert!(app.quit);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(action(ctrl_c), Some(Action::Quit));
}

#[test]
fn history_stays_bounded_however_long_the_run() {
    let app = app("toy:8gaussians", 20_000);
    let kept = app.curves.critic_loss.len_in_memory();
    assert!(
        kept <= wgangp_tui::front::tui::history::FULL_POINTS
            + wgangp_tui::front::tui::history::RECENT_POINTS,
        "{kept}"
    );
    let full = app.curves.critic_loss.points(false);
    assert_eq!(full.first().unwrap().0, 1.0);
    assert_eq!(full.last().unwrap().0, 20_000.0);
}

/// The monitor drawn into a buffer, the samples pane zoomed (its inner area starts at (1, 1)).
fn samples_buffer(app: &mut App, width: u16, height: u16) -> ratatui::buffer::Buffer {
    app.view.zoom = Some(Pane::Samples);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    terminal.backend().buffer().clone()
}

fn grey(v: f32) -> Color {
    let v = (v.clamp(0.0, 1.0) * 255.0) as u8;
    Color::Rgb(v, v, v)
}

/// The samples pane shows the digits themselves: the first generated digit, pixel for pixel in
/// the cells' colours (top pixel in the foreground, bottom in the background), and the first
/// real digit's middle row somewhere to its right.
#[test]
fn samples_pane_shows_the_digits_in_the_cells_colours() {
    let mut app = mnist_app();
    let Some(SampleSet::Images {
        generated, real, ..
    }) = app.samples.clone()
    else {
        panic!("mnist_app has images")
    };
    let buf = samples_buffer(&mut app, 160, 48);
    for y in 0..28u16 {
        for x in 0..28u16 {
            let cell = &buf[(1 + x, 1 + y / 2)];
            assert_eq!(cell.symbol(), "▀");
            let want = grey(generated[y as usize * 28 + x as usize]);
            let got = if y % 2 == 0 { cell.fg } else { cell.bg };
            assert_eq!(got, want, "generated digit 0, pixel ({x}, {y})");
        }
    }
    // Image row 14 is the top half of cell row 7.
    let middle: Vec<Color> = real[14 * 28..15 * 28].iter().map(|&v| grey(v)).collect();
    let row: Vec<Color> = (1..159).map(|x| buf[(x, 1 + 7)].fg).collect();
    let found = row.windows(28).position(|w| w == middle.as_slice());
    assert!(
        found.is_some_and(|at| at >= 28),
        "the real digit's middle row is not right of the generated one"
    );
    let bright = row
        .iter()
        .filter(|c| matches!(c, Color::Rgb(r, _, _) if *r > 200))
        .count();
    assert!(bright > 0, "no bright stroke in row 14");
}

/// The toy pane: real points green, generated points orange, over the critic's value, which
/// grows from left (blue) to right (red) in `toy_samples`.
#[test]
fn toy_pane_shows_points_and_the_critic_surface_in_colour() {
    let mut app = app("toy:8gaussians", 50);
    app.on_event(TrainEvent::Samples(Box::new(toy_samples(50))));
    let buf = samples_buffer(&mut app, 160, 48);
    let colours: Vec<Color> = (1..47u16)
        .flat_map(|y| (1..159u16).map(move |x| (x, y)))
        .flat_map(|p| [buf[p].fg, buf[p].bg])
        .collect();
    for (name, c) in [("real", (0, 170, 0)), ("generated", (255, 140, 0))] {
        let n = colours
            .iter()
            .filter(|&&x| x == Color::Rgb(c.0, c.1, c.2))
            .count();
        assert!(n > 20, "{n} cells of {name} points");
    }
    let rgb = |x: u16, y: u16| match buf[(x, y)].bg {
        Color::Rgb(r, g, b) => (r as i32, g as i32, b as i32),
        other => panic!("{other:?} is not a true colour"),
    };
    // Row 2, away from the rings: low values at the left edge of the picture, high at its
    // right edge (the last half block of the row).
    let last = (1..159u16).rfind(|&x| buf[(x, 2)].symbol() == "▀").unwrap();
    assert!(last > 40, "the picture is {last} cells wide");
    let (left, right) = (rgb(1, 2), rgb(last, 2));
    assert!(left.2 > left.0 + 50, "left edge {left:?} is not blue");
    assert!(right.0 > right.2 + 50, "right edge {right:?} is not red");
}

/// Without true colour the same pictures use xterm's 256 colours, and with NO_COLOR a ramp of
/// characters whose darkness follows the digit.
#[test]
fn samples_fall_back_to_256_colours_and_to_characters() {
    let mut app = mnist_app();
    app.view.colors = ColorMode::Ansi256;
    let buf = samples_buffer(&mut app, 160, 48);
    let indexed = (1..100u16)
        .filter(|&x| matches!(buf[(x, 8)].fg, Color::Indexed(231)))
        .count();
    assert!(indexed > 0, "no white (231) cells in the middle row");
    app.view.colors = ColorMode::None;
    let buf = samples_buffer(&mut app, 160, 48);
    let row: String = (1..29u16)
        .map(|x| buf[(x, 8)].symbol().to_string())
        .collect();
    assert!(row.contains('@') || row.contains('%'), "{row:?}");
    assert!(row.contains(' '), "{row:?}");
}

/// `count` colour images of `side`: image `i` has pixel (x, y) = (x / side, y / side, i / count).
fn colour_samples(side: usize, count: usize) -> SampleSet {
    let images = |shift: f32| -> Vec<f32> {
        (0..count)
            .flat_map(|i| {
                (0..side * side).flat_map(move |p| {
                    let (x, y) = ((p % side) as f32, (p / side) as f32);
                    [
                        x / side as f32,
                        y / side as f32,
                        (i as f32 + shift) / count as f32,
                    ]
                })
            })
            .collect()
    };
    SampleSet::Images {
        step: 7,
        side,
        channels: 3,
        count,
        generated: images(0.0),
        real: images(0.5),
        raw: None,
    }
}

/// Colour pictures keep their colours in the cells: pixel for pixel at full size.
#[test]
fn colour_samples_show_their_colours() {
    let mut app = app("mnist", 10);
    let (side, count) = (16, 8);
    let set = colour_samples(side, count);
    let SampleSet::Images { generated, .. } = &set else {
        unreachable!()
    };
    let generated = generated.clone();
    app.on_event(TrainEvent::Samples(Box::new(set)));
    let buf = samples_buffer(&mut app, 160, 48);
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0) as u8;
    for y in 0..side as u16 {
        for x in 0..side as u16 {
            let at = (y as usize * side + x as usize) * 3;
            let want = Color::Rgb(
                byte(generated[at]),
                byte(generated[at + 1]),
                byte(generated[at + 2]),
            );
            let cell = &buf[(1 + x, 1 + y / 2)];
            let got = if y % 2 == 0 { cell.fg } else { cell.bg };
            assert_eq!(got, want, "pixel ({x}, {y}) of the first picture");
        }
    }
}

/// At 80x24, 64x64 colour pictures are shrunk by a whole factor until a generated and a real
/// one fit side by side; each is the average of its pixels.
#[test]
fn large_colour_pictures_fit_an_80x24_terminal() {
    let mut app = app("mnist", 10);
    app.on_event(TrainEvent::Samples(Box::new(colour_samples(64, 4))));
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| ui::draw(f, &app)).unwrap();
    let buf = terminal.backend().buffer().clone();
    // Blue, the third channel, tells the pictures apart: image 0 of the generated ones has
    // 0, image 0 of the real ones 0.5 / 4 of full (31 after rounding down).
    let blues: std::collections::BTreeSet<u8> = (0..24u16)
        .flat_map(|y| (0..80u16).map(move |x| (x, y)))
        .filter(|&p| buf[p].symbol() == "▀")
        .filter_map(|p| match buf[p].fg {
            Color::Rgb(r, g, b) if r > 0 || g > 0 => Some(b),
            _ => None,
        })
        .collect();
    assert!(blues.contains(&0), "no generated picture: {blues:?}");
    assert!(blues.contains(&31), "no real picture: {blues:?}");
    // Red grows with x within a picture: the top row of generated picture 0 (blue 0) is, cell
    // by cell, the mean red of the block of pixels it stands for, not any one pixel's.
    let (top, first) = (0..24u16)
        .flat_map(|y| (0..80u16).map(move |x| (y, x)))
        .find(|&(y, x)| {
            buf[(x, y)].symbol() == "▀"
                && matches!(buf[(x, y)].fg, Color::Rgb(r, g, 0) if r > 0 && g > 0)
        })
        .expect("picture 0's first cell");
    let reds: Vec<u8> = (first..80)
        .map_while(|x| match buf[(x, top)].fg {
            Color::Rgb(r, _, 0) if r > 0 && buf[(x, top)].symbol() == "▀" => Some(r),
            _ => None,
        })
        .collect();
    let factor = 64 / reds.len();
    assert!(factor > 1, "not shrunk: {} cells across", reds.len());
    for (j, &red) in reds.iter().enumerate() {
        let mean = (0..factor)
            .map(|i| (j * factor + i) as f64 / 64.0)
            .sum::<f64>()
            / factor as f64;
        let want = (mean * 255.0) as i32;
        assert!(
            (red as i32 - want).abs() <= 1,
            "cell {j}: red {red}, the block's mean {want} (factor {factor}, row {reds:?})"
        );
    }
}

/// The screen while a folder is decoded: the files done, their rate and the time left, and a
/// gauge filled in proportion.
#[test]
fn loading_screen_shows_the_decoding() {
    use wgangp_tui::data::Decoding;
    use wgangp_tui::front::tui::loading::{LoadingView, draw};
    let view = LoadingView {
        what: "/data/celeba/img_align_celeba".into(),
        decoding: Some(Decoding {
            done: 50_000,
            total: 200_000,
        }),
        elapsed_s: 100.0,
    };
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| draw(f, &view)).unwrap();
    let text = terminal.backend().to_string();
    insta::assert_snapshot!("loading_80x24", text);
    assert!(
        text.contains("50000/200000 files, 500 files/s, ETA 5m00s"),
        "{text}"
    );
    // A quarter of the gauge's row is green.
    let buf = terminal.backend().buffer().clone();
    let green_in = |y: u16| {
        (0..80u16)
            .filter(|&x| buf[(x, y)].symbol() == "█" && buf[(x, y)].fg == Color::Green)
            .count()
    };
    let row = (0..24u16).find(|&y| green_in(y) > 0).expect("a gauge row");
    let green = green_in(row);
    // The gauge spans the box inside its borders: 72 - 2 columns.
    let inner = 70;
    assert!(
        (inner / 4 - 2..=inner / 4 + 2).contains(&green),
        "{green} green cells of {inner}:\n{text}"
    );
}

/// The deep toy critic's metrics: per-layer input-gradient norms falling by 10x per layer from
/// the last layer back to the first (as under weight clipping at c = 0.01).
fn deep_app() -> App {
    let argv = [
        "wgangp-tui",
        "--data",
        "toy:swissroll",
        "--deep",
        "--out",
        "runs/deep",
        "--seed",
        "1",
    ];
    let config = Cli::try_parse_from(argv).unwrap().to_config().unwrap();
    let mut app = App::new(config, ColorMode::TrueColor, false);
    for step in 1..=20 {
        let mut m = metrics(&app.hyper, step);
        m.layers = (1..=12)
            .map(|k| LayerStats {
                name: format!("l{k}"),
                grad_norm: 0.01 * k as f64,
                max_abs_weight: 0.01,
                input_grad_norm: Some(10f64.powi(k - 12)),
            })
            .collect();
        app.on_event(TrainEvent::Metrics(Box::new(m)));
    }
    app
}

/// Zoomed, the gradients pane shows the weight gradients (linear) beside the input gradients
/// (log scale): every layer's input-gradient bar is one cell longer than the layer's before, where
/// a linear scale would leave all but the last two empty.
#[test]
fn deep_critic_input_gradients_show_on_a_log_scale() {
    let mut app = deep_app();
    app.on_action(Action::Zoom(Pane::Gradients));
    snapshot("deep_gradients_zoomed", &app);
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    terminal.draw(|f| ui::draw(f, &app)).unwrap();
    let buf = terminal.backend().buffer().clone();
    // The right half holds the log-scale section; its header is on the first inner row.
    let header_row = (1..47u16)
        .find(|&y| {
            let line: String = (80..159u16)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect();
            line.contains("log scale")
        })
        .expect("a log-scale section");
    let bar = |y: u16| {
        (80..159u16)
            .filter(|&x| buf[(x, y)].symbol() == "█" && buf[(x, y)].fg == Color::Cyan)
            .count()
    };
    let lengths: Vec<usize> = (1..=12u16).map(|k| bar(header_row + k)).collect();
    assert_eq!(
        lengths[0], 1,
        "the smallest norm gets one cell: {lengths:?}"
    );
    for k in 1..12 {
        assert!(
            lengths[k] > lengths[k - 1],
            "bars do not grow with log norm: {lengths:?}"
        );
    }
}

/// A critic trained alone (`--fixed-generator noise`) says so in the status line.
#[test]
fn a_fixed_generator_run_says_critic_only() {
    let argv = [
        "wgangp-tui",
        "--data",
        "toy:8gaussians",
        "--fixed-generator",
        "noise",
        "--out",
        "runs/fixed",
    ];
    let config = Cli::try_parse_from(argv).unwrap().to_config().unwrap();
    let app = App::new(config, ColorMode::TrueColor, false);
    assert!(render(&app, 80, 24).contains("batch 256 critic-only on cpu"));
    assert!(!render(&deep_app(), 80, 24).contains("critic-only"));
}

/// Keys pressed faster than the run answers add up: each starts from what the keys before it
/// asked for. A change from elsewhere (another viewer) becomes the base again.
#[test]
fn quick_key_presses_add_up_before_the_run_answers() {
    let mut app = app("mnist", 10);
    let lambda = |c: Option<Command>| match c {
        Some(Command::SetLambda { lambda }) => lambda,
        other => panic!("{other:?}"),
    };
    let plus = |app: &mut App| lambda(app.on_action(action(key('+')).unwrap()));
    assert_eq!(plus(&mut app), 12.5);
    assert_eq!(plus(&mut app), 15.625);
    let changed = |app: &mut App, lambda: f64| {
        app.on_event(TrainEvent::HyperChanged {
            step: 10,
            hyper: Hyper {
                lambda,
                ..app.hyper.clone()
            },
            change: String::new(),
        })
    };
    // The first is confirmed: the second is still the base.
    changed(&mut app, 12.5);
    assert_eq!(plus(&mut app), 19.53125);
    // Someone else sets lambda: that is the base now.
    changed(&mut app, 3.0);
    assert_eq!(plus(&mut app), 3.75);
    // m twice: gp -> lp -> clip, not lp twice.
    let penalty = |c: Option<Command>| match c {
        Some(Command::SetPenalty { penalty }) => penalty,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        penalty(app.on_action(Action::CyclePenalty)),
        PenaltyMode::Lp
    );
    assert_eq!(
        penalty(app.on_action(Action::CyclePenalty)),
        PenaltyMode::Clip
    );
}

/// A key whose change the limits refuse sends nothing and says why on the status line, as a
/// change the run refuses does; an accepted change clears it.
#[test]
fn a_refused_change_is_said_on_the_status_line() {
    let mut app = mnist_app();
    app.hyper.n_critic = 1;
    assert_eq!(app.on_action(Action::CriticStepsDown), None);
    let said = render(&app, 80, 24);
    assert!(
        said.contains("refused critic steps 1 -> 0: critic steps must be from 1"),
        "{said}"
    );
    let reason = "refused lambda 10 -> -1: lambda must be a finite number >= 0".to_string();
    app.on_event(TrainEvent::ChangeRefused { step: 5, reason });
    assert!(render(&app, 80, 24).contains("refused lambda 10 -> -1"));
    let mut hyper = app.hyper.clone();
    hyper.lambda = 12.5;
    app.on_event(TrainEvent::HyperChanged {
        step: 6,
        hyper,
        change: "lambda 10 -> 12.5".into(),
    });
    assert!(!render(&app, 80, 24).contains("refused"));
}

/// With an averaged generator the pane shows its pictures, titled so; `g` shows the raw
/// generator's (in their own colours), and `g` again the averaged ones.
#[test]
fn g_switches_the_samples_between_the_averaged_and_the_raw_generator() {
    let mut app = app("mnist", 10);
    let (side, count) = (16, 8);
    let mut set = colour_samples(side, count);
    let SampleSet::Images { generated, raw, .. } = &mut set else {
        unreachable!()
    };
    // The raw pictures: the averaged ones with their blue channel full.
    let mut raw_pictures = generated.clone();
    raw_pictures
        .iter_mut()
        .skip(2)
        .step_by(3)
        .for_each(|b| *b = 1.0);
    *raw = Some(raw_pictures);
    app.on_event(TrainEvent::Samples(Box::new(set)));
    let shown = |app: &mut App| {
        let buf = samples_buffer(app, 160, 48);
        let title: String = (0..48u16)
            .flat_map(|y| (0..160u16).map(move |x| (x, y)))
            .map(|p| buf[p].symbol().to_string())
            .collect();
        let blue = match buf[(1, 1)].fg {
            Color::Rgb(_, _, b) => b,
            other => panic!("{other:?} is not a true colour"),
        };
        (title, blue)
    };
    let (title, blue) = shown(&mut app);
    assert!(title.contains("averaged G | real"), "{title}");
    assert_eq!(blue, 0, "the first averaged picture has no blue");
    assert_eq!(app.on_action(Action::ToggleRawSamples), None);
    let (title, blue) = shown(&mut app);
    assert!(title.contains("raw G | real"), "{title}");
    assert_eq!(blue, 255, "the raw pictures' blue is full");
    app.on_action(Action::ToggleRawSamples);
    assert_eq!(shown(&mut app).1, 0);
}

/// The held-out Wasserstein estimate of the evaluations is a line of its own in the losses
/// pane (light blue), drawn only once there is one, at the steps it was taken; in the recent
/// window, only its points within the window.
#[test]
fn the_losses_pane_draws_the_held_out_estimate() {
    let light_blue_cells = |app: &mut App| {
        app.view.zoom = Some(Pane::Curves);
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
        terminal.draw(|f| ui::draw(f, app)).unwrap();
        let buf = terminal.backend().buffer().clone();
        (0..40u16)
            .flat_map(|y| (0..120u16).map(move |x| (x, y)))
            .filter(|&p| buf[p].fg == Color::LightBlue && buf[p].symbol() != " ")
            .count()
    };
    let mut app = app("mnist", 1000);
    assert_eq!(light_blue_cells(&mut app), 0);
    for step in [100, 200, 300] {
        app.on_event(TrainEvent::Eval(Box::new(digits_eval(step, 5.0, 4.0))));
    }
    // The line from step 100 to 300 and its legend.
    let full = light_blue_cells(&mut app);
    assert!(full > 20, "{full} light blue cells");
    // The recent window (the last 400 steps, 601 to 1000) holds none of its points.
    app.on_action(Action::ToggleWindow);
    let recent = light_blue_cells(&mut app);
    assert!(
        recent < full / 2,
        "{recent} light blue cells in the recent window, {full} in all"
    );
}

/// An MNIST evaluation at `step` whose classifier scores are `averaged` and `raw`.
fn digits_eval(step: u64, averaged: f64, raw: f64) -> EvalRecord {
    let digits = |classifier_score| {
        Some(DigitScores {
            frechet: 100.0 / classifier_score,
            classifier_score,
            pictures: 200,
        })
    };
    EvalRecord {
        step,
        held_out_critic_cost: Some(-0.5),
        train_critic_cost: -0.6,
        samples: 200,
        toy: None,
        toy_raw: None,
        swd: None,
        swd_raw: None,
        digits: digits(averaged),
        digits_raw: digits(raw),
        seconds: 0.1,
    }
}

/// The cells of `app` drawn at `w`x`h` whose symbol is not blank, by colour.
fn cells_of(app: &App, w: u16, h: u16, color: Color) -> usize {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    let buf = terminal.backend().buffer().clone();
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&p| buf[p].fg == color && buf[p].symbol() != " ")
        .count()
}

/// The quality pane: before the first evaluation a line saying when it comes; then the
/// classifier score of the averaged generator (light green) and of the raw one (grey) over the
/// steps, the newest averaged score in the title; without evaluations, why there are none.
#[test]
fn the_quality_pane_draws_the_averaged_and_the_raw_generators_scores() {
    let mut app = app("mnist", 500);
    app.view.zoom = Some(Pane::Quality);
    assert!(render(&app, 80, 24).contains("The first evaluation comes at step 100."));
    assert_eq!(cells_of(&app, 80, 24, Color::LightGreen), 0);
    for (i, step) in [100, 200, 300, 400, 500].into_iter().enumerate() {
        let averaged = 2.0 + 1.5 * i as f64;
        app.on_event(TrainEvent::Eval(Box::new(digits_eval(
            step,
            averaged,
            averaged - 1.0,
        ))));
    }
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("6 Quality classifier score 8.000"),
        "{screen}"
    );
    assert!(cells_of(&app, 80, 24, Color::LightGreen) > 30);
    assert!(cells_of(&app, 80, 24, Color::Gray) > 30);
    snapshot_in_colour("quality_zoomed", &app);
    // Beside the other panes at 80x24.
    app.view.zoom = None;
    snapshot_in_colour("quality_beside", &app);

    let argv = ["wgangp-tui", "--eval-every", "0", "--out", "runs/demo"];
    let config = Cli::try_parse_from(argv).unwrap().to_config().unwrap();
    let mut app = App::new(config, ColorMode::TrueColor, false);
    app.view.zoom = Some(Pane::Quality);
    assert!(render(&app, 80, 24).contains("--eval-every 0"));
    // Without evaluations, no quality pane among the others.
    app.view.zoom = None;
    assert!(!render(&app, 80, 24).contains("Quality"));
}

/// The rows of the monitor drawn at 80x24 from its status line down (the line saying
/// RUNNING), each with whether any of its characters is yellow.
fn status_rows(app: &App) -> Vec<(String, bool)> {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    let buf = terminal.backend().buffer().clone();
    let rows: Vec<(String, bool)> = (0..24u16)
        .map(|y| {
            let text = (0..80u16)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect();
            let yellow =
                (0..80u16).any(|x| buf[(x, y)].fg == Color::Yellow && buf[(x, y)].symbol() != " ");
            (text, yellow)
        })
        .collect();
    let status = rows
        .iter()
        .position(|(text, _)| text.contains("RUNNING"))
        .unwrap();
    rows[status..].to_vec()
}

/// A watchdog alert shows under the status line in yellow, its sentence wrapped to the width
/// (at most three lines), and asks for the bell; a non-finite alert is said by the red lines of
/// that state instead.
#[test]
fn an_alert_shows_in_yellow_under_the_status_line() {
    let mut alerted = app("toy:8gaussians", 250);
    let message = "the critic's gradient norm on the interpolates has averaged 208.39 over the \
                   last 100 records, far from the 1 the penalty aims at: raise lambda (+) or lower \
                   the learning rates ([)";
    alerted.on_event(TrainEvent::Alert(Alert {
        step: 200,
        kind: AlertKind::GradientNorm,
        message: message.into(),
    }));
    assert!(alerted.ring);
    let rows = status_rows(&alerted);
    let yellow: Vec<&str> = rows.iter().filter(|r| r.1).map(|r| r.0.trim()).collect();
    // The two status lines, then the alert's three.
    assert_eq!((rows.len(), yellow.len()), (5, 3), "{rows:?}");
    let shown = yellow.join(" ");
    assert!(
        shown.starts_with("! step 200: the critic's gradient norm"),
        "{shown}"
    );
    assert!(
        shown.ends_with("raise lambda (+) or lower the learning rates ([)"),
        "{shown}"
    );

    let mut non_finite = app("toy:8gaussians", 250);
    non_finite.on_event(TrainEvent::Alert(Alert {
        step: 251,
        kind: AlertKind::NonFinite,
        message: "a critic gradient is not finite".into(),
    }));
    let rows = status_rows(&non_finite);
    assert!(rows.iter().all(|r| !r.1), "{rows:?}");
}
