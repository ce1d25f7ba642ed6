//! One set of limits for the hyperparameters that change while a run trains: the command line,
//! the monitor's keys and the run's socket accept and refuse the same values.

mod common;

use clap::Parser;
use wgangp_tui::cli::Cli;
use wgangp_tui::config::MAX_CRITIC_STEPS;
use wgangp_tui::event::Command;
use wgangp_tui::front::tui::app::App;
use wgangp_tui::front::tui::keys::Action;
use wgangp_tui::front::tui::view::ColorMode;
use wgangp_tui::run::protocol::parse_command;

fn app_with_critic_steps(n: u32) -> App {
    let argv = [
        "wgangp-tui",
        "--data",
        "toy:8gaussians",
        "--n-critic",
        &n.to_string(),
    ];
    let config = Cli::try_parse_from(argv).unwrap().to_config().unwrap();
    App::new(config, ColorMode::TrueColor, false)
}

fn socket_takes(n_critic: u32) -> bool {
    parse_command(&format!(
        r#"{{"command":"set_critic_steps","n_critic":{n_critic}}}"#
    ))
    .is_ok()
}

/// A run started with `--n-critic 500` may be raised by `}` and by a viewer alike, up to the
/// same limit; one past it is refused by all three.
#[test]
fn command_line_keys_and_socket_agree_on_critic_steps() {
    let top = MAX_CRITIC_STEPS;
    for n in [1, 500, top - 1] {
        let mut app = app_with_critic_steps(n);
        assert_eq!(
            app.on_action(Action::CriticStepsUp),
            Some(Command::SetCriticSteps { n_critic: n + 1 }),
            "}} from {n}"
        );
        assert!(socket_takes(n + 1), "the socket refuses {}", n + 1);
    }
    // At the top: the key sends nothing, the socket refuses one more, the command line too.
    let mut app = app_with_critic_steps(top);
    assert_eq!(app.on_action(Action::CriticStepsUp), None);
    assert!(!socket_takes(top + 1));
    assert!(Cli::try_parse_from(["wgangp-tui", "--n-critic", &(top + 1).to_string()]).is_err());
    // At the bottom: likewise.
    let mut app = app_with_critic_steps(1);
    assert_eq!(app.on_action(Action::CriticStepsDown), None);
    assert!(!socket_takes(0));
    assert!(Cli::try_parse_from(["wgangp-tui", "--n-critic", "0"]).is_err());
}

/// The real binary takes the top value and refuses one past it, naming the limit.
#[test]
fn the_binary_names_the_limit() {
    let top = MAX_CRITIC_STEPS.to_string();
    let past = (MAX_CRITIC_STEPS + 1).to_string();
    common::assert_bad_input(
        &["--n-critic", &past, "--no-ui"],
        &format!("from 1 to {top}"),
    );
}

/// Lambda and the learning rates: what the command line refuses, the socket refuses too.
#[test]
fn command_line_and_socket_agree_on_lambda_and_learning_rates() {
    for lambda in ["0", "2.5", "-1", "1e400"] {
        let cli = Cli::try_parse_from(["wgangp-tui", "--lambda", lambda]).is_ok();
        let socket = parse_command(&format!(r#"{{"command":"set_lambda","lambda":{lambda}}}"#));
        assert_eq!(cli, socket.is_ok(), "lambda {lambda}: {socket:?}");
    }
    for lr in ["1e-4", "0", "-1e-4"] {
        let cli = Cli::try_parse_from(["wgangp-tui", "--lr", lr]).is_ok();
        let line = format!(r#"{{"command":"set_learning_rates","generator":{lr},"critic":{lr}}}"#);
        assert_eq!(cli, parse_command(&line).is_ok(), "lr {lr}");
    }
}

/// `--betas`: two numbers in [0, 1), recorded in the run's configuration.
#[test]
fn betas_are_checked_and_recorded() {
    let config = |betas: &str| {
        Cli::try_parse_from(["wgangp-tui", "--betas", betas])
            .map_err(|e| e.to_string())
            .and_then(|cli| cli.to_config())
    };
    assert_eq!(config("0.9,0.999").unwrap().betas, [0.9, 0.999]);
    assert_eq!(config("0,0").unwrap().betas, [0.0, 0.0]);
    for bad in ["1,0.9", "0.5", "0.5,0.9,0.1", "-0.1,0.9", "a,b", "nan,0.9"] {
        assert!(config(bad).is_err(), "{bad}");
    }
    let default = Cli::try_parse_from(["wgangp-tui"])
        .unwrap()
        .to_config()
        .unwrap();
    assert_eq!(default.betas, [0.5, 0.9]);
}

/// `--ema`: 0 (none) or a decay in (0, 1), recorded in the run's configuration; the binary
/// names the range.
#[test]
fn ema_is_checked_and_recorded() {
    let config = |beta: &str| {
        Cli::try_parse_from(["wgangp-tui", "--ema", beta])
            .map_err(|e| e.to_string())
            .and_then(|cli| cli.to_config())
    };
    assert_eq!(config("0.99").unwrap().ema, 0.99);
    assert_eq!(config("0").unwrap().ema, 0.0);
    for bad in ["1", "1.5", "-0.1", "nan", "x"] {
        assert!(config(bad).is_err(), "{bad}");
    }
    let default = Cli::try_parse_from(["wgangp-tui"])
        .unwrap()
        .to_config()
        .unwrap();
    assert_eq!(default.ema, 0.999);
    common::assert_bad_input(&["--ema", "1", "--no-ui"], ">= 0 and < 1");
}
