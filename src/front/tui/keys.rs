//! Every key binding of the monitor, in one place (the help overlay is generated from it).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::view::Pane;
use crate::config::{Hyper, PenaltyMode};
use crate::event::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    TogglePause,
    LambdaUp,
    LambdaDown,
    LearningRateUp,
    LearningRateDown,
    CriticStepsUp,
    CriticStepsDown,
    CyclePenalty,
    SampleNow,
    Checkpoint,
    ToggleSmoothing,
    ToggleLogScale,
    ToggleWindow,
    /// The samples pane shows the raw generator's samples instead of the averaged one's.
    ToggleRawSamples,
    NextPane,
    Zoom(Pane),
    Help,
    /// Closes the help or the zoomed pane.
    Back,
    /// Leave training running in the background (in-process), or just quit a viewer.
    Detach,
    Quit,
}

/// Lambda moves by this factor per key press.
pub const LAMBDA_FACTOR: f64 = 1.25;
/// `+` from lambda = 0 goes here; `-` below `LAMBDA_FLOOR` goes to 0.
pub const LAMBDA_FROM_ZERO: f64 = 0.01;
pub const LAMBDA_FLOOR: f64 = 0.001;
/// Learning rates move by this factor per key press.
pub const LR_FACTOR: f64 = 2.0;

/// What a row of [`BINDINGS`] does: one action, or a zoom on the pane its digit names.
#[derive(Clone, Copy, Debug)]
enum Does {
    Act(Action),
    ZoomByDigit,
}

/// One row of the key table: the keys, the label the help shows for them, what they do, what
/// the help says of it, and for a key that changes hyperparameters the command it sends (made
/// from the values the run will have once the changes already asked for are applied).
struct Binding {
    keys: &'static [KeyCode],
    label: &'static str,
    does: Does,
    what: fn() -> String,
    change: Option<fn(&Hyper) -> Command>,
}

const fn bind(
    keys: &'static [KeyCode],
    label: &'static str,
    action: Action,
    what: fn() -> String,
) -> Binding {
    Binding {
        keys,
        label,
        does: Does::Act(action),
        what,
        change: None,
    }
}

/// A row whose keys change hyperparameters: `change` makes the command.
const fn bind_change(
    keys: &'static [KeyCode],
    label: &'static str,
    action: Action,
    what: fn() -> String,
    change: fn(&Hyper) -> Command,
) -> Binding {
    Binding {
        change: Some(change),
        ..bind(keys, label, action, what)
    }
}

use KeyCode::{Char, Esc, Tab};

/// Every key of the monitor (and Ctrl-C, which [`action`] reads first). The help overlay is
/// made from this table.
const BINDINGS: &[Binding] = &[
    bind(
        &[Char(' '), Char('p')],
        "space p",
        Action::TogglePause,
        || "pause / resume training".into(),
    ),
    bind_change(
        &[Char('+'), Char('=')],
        "+",
        Action::LambdaUp,
        || format!("lambda x{LAMBDA_FACTOR} (from 0: {LAMBDA_FROM_ZERO})"),
        |h| Command::SetLambda {
            lambda: if h.lambda == 0.0 {
                LAMBDA_FROM_ZERO
            } else {
                h.lambda * LAMBDA_FACTOR
            },
        },
    ),
    bind_change(
        &[Char('-'), Char('_')],
        "-",
        Action::LambdaDown,
        || format!("lambda /{LAMBDA_FACTOR} (below {LAMBDA_FLOOR}: 0)"),
        |h| {
            let lambda = h.lambda / LAMBDA_FACTOR;
            Command::SetLambda {
                lambda: if lambda < LAMBDA_FLOOR { 0.0 } else { lambda },
            }
        },
    ),
    bind_change(
        &[Char(']')],
        "]",
        Action::LearningRateUp,
        || format!("learning rates x{LR_FACTOR}"),
        |h| Command::SetLearningRates {
            generator: h.lr_generator * LR_FACTOR,
            critic: h.lr_critic * LR_FACTOR,
        },
    ),
    bind_change(
        &[Char('[')],
        "[",
        Action::LearningRateDown,
        || format!("learning rates /{LR_FACTOR}"),
        |h| Command::SetLearningRates {
            generator: h.lr_generator / LR_FACTOR,
            critic: h.lr_critic / LR_FACTOR,
        },
    ),
    bind_change(
        &[Char('}')],
        "}",
        Action::CriticStepsUp,
        || "critic steps +1".into(),
        |h| Command::SetCriticSteps {
            n_critic: h.n_critic.saturating_add(1),
        },
    ),
    bind_change(
        &[Char('{')],
        "{",
        Action::CriticStepsDown,
        || "critic steps -1".into(),
        |h| Command::SetCriticSteps {
            n_critic: h.n_critic.saturating_sub(1),
        },
    ),
    bind_change(
        &[Char('m')],
        "m",
        Action::CyclePenalty,
        || "penalty mode gp -> lp -> clip".into(),
        |h| Command::SetPenalty {
            penalty: match h.penalty {
                PenaltyMode::Gp => PenaltyMode::Lp,
                PenaltyMode::Lp => PenaltyMode::Clip,
                PenaltyMode::Clip => PenaltyMode::Gp,
            },
        },
    ),
    bind(&[Char('n')], "n", Action::SampleNow, || {
        "draw samples now".into()
    }),
    bind(&[Char('s')], "s", Action::Checkpoint, || {
        "write a checkpoint now".into()
    }),
    bind(&[Char('e')], "e", Action::ToggleSmoothing, || {
        "EMA smoothing on / off".into()
    }),
    bind(&[Char('l')], "l", Action::ToggleLogScale, || {
        "log scale on / off".into()
    }),
    bind(&[Char('w')], "w", Action::ToggleWindow, || {
        "full history / recent window".into()
    }),
    bind(&[Char('g')], "g", Action::ToggleRawSamples, || {
        "samples: averaged / raw generator".into()
    }),
    bind(&[Tab], "tab", Action::NextPane, || {
        "zoom the next pane".into()
    }),
    Binding {
        keys: &[
            Char('1'),
            Char('2'),
            Char('3'),
            Char('4'),
            Char('5'),
            Char('6'),
        ],
        label: "1-6",
        does: Does::ZoomByDigit,
        what: || "zoom a pane (again, or esc: all panes)".into(),
        change: None,
    },
    bind(&[Esc, Char('0')], "esc", Action::Back, || {
        "close the help or the zoomed pane".into()
    }),
    bind(&[Char('?'), Char('h')], "?", Action::Help, || {
        "this help".into()
    }),
    bind(&[Char('d')], "d", Action::Detach, || {
        "detach: keep training in background".into()
    }),
    bind(&[Char('q')], "q ctrl-c", Action::Quit, || {
        "quit (stops training unless attached)".into()
    }),
];

/// The help overlay's rows: (keys, what they do), one per row of the key table.
pub fn help() -> Vec<(&'static str, String)> {
    BINDINGS.iter().map(|b| (b.label, (b.what)())).collect()
}

/// The command an action's keys send to change hyperparameters, made from `target` (the
/// values the run will have); `None` for an action that changes none.
pub fn change(action: Action, target: &Hyper) -> Option<Command> {
    BINDINGS
        .iter()
        .find(|b| matches!(b.does, Does::Act(a) if a == action))
        .and_then(|b| b.change)
        .map(|change| change(target))
}

pub fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c')).then_some(Action::Quit);
    }
    let binding = BINDINGS.iter().find(|b| b.keys.contains(&key.code))?;
    Some(match binding.does {
        Does::Act(action) => action,
        Does::ZoomByDigit => {
            let i = binding.keys.iter().position(|k| *k == key.code)?;
            Action::Zoom(*Pane::ALL.get(i)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> Option<Action> {
        action(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn every_key_of_the_table_does_what_its_help_row_says_and_no_key_is_bound_twice() {
        let mut seen = Vec::new();
        for (b, (label, _)) in BINDINGS.iter().zip(help()) {
            assert_eq!(b.label, label);
            for (i, &key) in b.keys.iter().enumerate() {
                assert!(!seen.contains(&key), "{key:?} is bound twice");
                seen.push(key);
                let expected = match b.does {
                    Does::Act(a) => a,
                    Does::ZoomByDigit => Action::Zoom(Pane::ALL[i]),
                };
                assert_eq!(press(key), Some(expected), "{key:?}");
            }
        }
        assert_eq!(press(Char('x')), None);
        let ctrl_c = KeyEvent::new(Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(ctrl_c), Some(Action::Quit));
    }
}
