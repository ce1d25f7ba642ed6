//! The worker's contract: commands in, events out.

use std::time::Duration;

use clap::Parser;
use wgangp_tui::cli::Cli;
use wgangp_tui::config::PenaltyMode;
use wgangp_tui::data::Dataset;
use wgangp_tui::event::{Command, RunState, TrainEvent};
use wgangp_tui::train::Worker;

fn next(worker: &Worker) -> TrainEvent {
    worker
        .events()
        .recv_timeout(Duration::from_secs(60))
        .expect("an event within a minute")
}

/// A worker training the toy model with one critic step per generator step, plus `extra` flags.
fn toy_worker(extra: &[&str]) -> Worker {
    let mut args = vec![
        "wgangp-tui",
        "--no-ui",
        "--data",
        "toy:8gaussians",
        "--n-critic",
        "1",
    ];
    args.extend_from_slice(extra);
    let config = Cli::try_parse_from(args).unwrap().to_config().unwrap();
    let data = Dataset::load(&config.data).unwrap();
    Worker::spawn(config, data).unwrap()
}

/// Stops the worker and waits for its final state.
fn stop(worker: Worker) {
    worker.commands().send(Command::Stop).unwrap();
    loop {
        if let TrainEvent::State {
            state: RunState::Finished,
            ..
        } = next(&worker)
        {
            break;
        }
    }
    worker.join();
}

#[test]
fn commands_change_the_run_and_are_announced() {
    let worker = toy_worker(&["--seed", "9", "--steps", "1000000"]);
    let commands = worker.commands();
    assert!(matches!(next(&worker), TrainEvent::Started { .. }));
    // The untrained generator's samples come first, then metrics.
    assert!(matches!(next(&worker), TrainEvent::Samples(s) if s.step() == 0));
    assert!(matches!(next(&worker), TrainEvent::Metrics(_)));

    commands.send(Command::SetLambda { lambda: 0.125 }).unwrap();
    commands
        .send(Command::SetPenalty {
            penalty: PenaltyMode::Lp,
        })
        .unwrap();
    commands.send(Command::SetLambda { lambda: -3.0 }).unwrap(); // invalid: refused
    commands.send(Command::Pause).unwrap();
    let (mut changes, mut refused) = (Vec::new(), Vec::new());
    let paused_at = loop {
        match next(&worker) {
            TrainEvent::HyperChanged {
                step,
                hyper,
                change,
            } => changes.push((step, hyper, change)),
            TrainEvent::ChangeRefused { reason, .. } => refused.push(reason),
            TrainEvent::State {
                step,
                state: RunState::Paused,
                ..
            } => break step,
            TrainEvent::Metrics(_) | TrainEvent::Samples(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0].1.lambda, 0.125);
    assert!(changes[0].2.contains("lambda"));
    assert_eq!(changes[1].1.penalty, PenaltyMode::Lp);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains("refused lambda 0.125 -> -3: lambda must be"),
        "{refused:?}"
    );

    // Paused: nothing more arrives until resumed (a pending sample request is answered).
    commands.send(Command::SampleNow).unwrap();
    match next(&worker) {
        TrainEvent::Samples(s) => assert_eq!(s.step(), paused_at),
        other => panic!("expected samples, got {other:?}"),
    }
    // Whatever the worker sent while paused comes before its running state: a step trained
    // while paused would show there as metrics.
    commands.send(Command::Resume).unwrap();
    assert!(
        matches!(
            next(&worker),
            TrainEvent::State {
                state: RunState::Running,
                ..
            }
        ),
        "training went on while paused"
    );
    match next(&worker) {
        TrainEvent::Metrics(m) => {
            assert_eq!(m.step, paused_at + 1);
            assert_eq!((m.lambda, m.penalty_mode), (0.125, PenaltyMode::Lp));
        }
        other => panic!("expected metrics, got {other:?}"),
    }
    stop(worker);
}

/// A non-finite update is not applied: the worker pauses and says why, still takes commands,
/// and stops when told.
#[test]
fn a_nan_pauses_the_run_and_it_still_takes_commands() {
    // A learning rate this large throws the weights far out on the first update; the next loss
    // is not finite.
    let worker = toy_worker(&["--seed", "2", "--lr", "1e30", "--steps", "1000"]);
    let commands = worker.commands();
    let (step, reason) = loop {
        match next(&worker) {
            TrainEvent::State {
                step,
                state: RunState::NonFinite,
                reason,
            } => break (step, reason.unwrap()),
            TrainEvent::State { state, .. } => panic!("unexpected state {state:?}"),
            _ => {}
        }
    };
    assert!(
        reason.contains("not finite") && reason.contains("not applied"),
        "{reason}"
    );
    // Paused: no training, but commands are answered. A step trained after the NaN would
    // arrive (as metrics) before the answer.
    commands.send(Command::SetLambda { lambda: 0.5 }).unwrap();
    match next(&worker) {
        TrainEvent::HyperChanged { step: s, hyper, .. } => {
            assert_eq!((s, hyper.lambda), (step, 0.5))
        }
        other => panic!("expected the change, got {other:?}"),
    }
    stop(worker);
}
