//! Every key binding of the monitor, in one place (the help overlay is generated from it).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::view::Pane;

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

/// One row of the key table: the keys, the label the help shows for them, what they do.
struct Binding {
    keys: &'static [KeyCode],
    label: &'static str,
    does: Does,
}

const fn bind(keys: &'static [KeyCode], label: &'static str, action: Action) -> Binding {
    Binding {
        keys,
        label,
        does: Does::Act(action),
    }
}

use KeyCode::{Char, Esc, Tab};

/// Every key of the monitor (and Ctrl-C, which [`action`] reads first). The help overlay is
/// made from this table.
const BINDINGS: &[Binding] = &[
    bind(&[Char(' '), Char('p')], "space p", Action::TogglePause),
    bind(&[Char('+'), Char('=')], "+", Action::LambdaUp),
    bind(&[Char('-'), Char('_')], "-", Action::LambdaDown),
    bind(&[Char(']')], "]", Action::LearningRateUp),
    bind(&[Char('[')], "[", Action::LearningRateDown),
    bind(&[Char('}')], "}", Action::CriticStepsUp),
    bind(&[Char('{')], "{", Action::CriticStepsDown),
    bind(&[Char('m')], "m", Action::CyclePenalty),
    bind(&[Char('n')], "n", Action::SampleNow),
    bind(&[Char('s')], "s", Action::Checkpoint),
    bind(&[Char('e')], "e", Action::ToggleSmoothing),
    bind(&[Char('l')], "l", Action::ToggleLogScale),
    bind(&[Char('w')], "w", Action::ToggleWindow),
    bind(&[Tab], "tab", Action::NextPane),
    Binding {
        keys: &[Char('1'), Char('2'), Char('3'), Char('4'), Char('5')],
        label: "1-5",
        does: Does::ZoomByDigit,
    },
    bind(&[Esc, Char('0')], "esc", Action::Back),
    bind(&[Char('?'), Char('h')], "?", Action::Help),
    bind(&[Char('d')], "d", Action::Detach),
    bind(&[Char('q')], "q ctrl-c", Action::Quit),
];

/// What an action does, for the help.
fn describe(does: Does) -> String {
    let Does::Act(action) = does else {
        return "zoom a pane (again, or esc: all panes)".into();
    };
    match action {
        Action::TogglePause => "pause / resume training".into(),
        Action::LambdaUp => format!("lambda x{LAMBDA_FACTOR} (from 0: {LAMBDA_FROM_ZERO})"),
        Action::LambdaDown => format!("lambda /{LAMBDA_FACTOR} (below {LAMBDA_FLOOR}: 0)"),
        Action::LearningRateUp => format!("learning rates x{LR_FACTOR}"),
        Action::LearningRateDown => format!("learning rates /{LR_FACTOR}"),
        Action::CriticStepsUp => "critic steps +1".into(),
        Action::CriticStepsDown => "critic steps -1".into(),
        Action::CyclePenalty => "penalty mode gp -> lp -> clip".into(),
        Action::SampleNow => "draw samples now".into(),
        Action::Checkpoint => "write a checkpoint now".into(),
        Action::ToggleSmoothing => "EMA smoothing on / off".into(),
        Action::ToggleLogScale => "log scale on / off".into(),
        Action::ToggleWindow => "full history / recent window".into(),
        Action::NextPane => "zoom the next pane".into(),
        Action::Zoom(_) => "zoom a pane".into(),
        Action::Help => "this help".into(),
        Action::Back => "close the help or the zoomed pane".into(),
        Action::Detach => "detach: keep training in background".into(),
        Action::Quit => "quit (stops training unless attached)".into(),
    }
}

/// The help overlay's rows: (keys, what they do), one per row of the key table.
pub fn help() -> Vec<(&'static str, String)> {
    BINDINGS
        .iter()
        .map(|b| (b.label, describe(b.does)))
        .collect()
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
