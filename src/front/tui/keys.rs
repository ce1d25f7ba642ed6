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

/// (keys as shown in the help, what they do)
pub const HELP: &[(&str, &str)] = &[
    ("space p", "pause / resume training"),
    ("+ -", "lambda x1.25 / /1.25 (0 allowed)"),
    ("] [", "learning rates x2 / /2"),
    ("} {", "critic steps +1 / -1"),
    ("m", "penalty mode gp -> lp -> clip"),
    ("n", "draw samples now"),
    ("s", "write a checkpoint now"),
    ("e", "EMA smoothing on / off"),
    ("l", "log scale on / off"),
    ("w", "full history / recent window"),
    ("tab 1-5", "zoom a pane (esc: all panes)"),
    ("?", "this help"),
    ("d", "detach: keep training in background"),
    ("q ctrl-c", "quit (stops training unless attached)"),
];

pub fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c')).then_some(Action::Quit);
    }
    Some(match key.code {
        KeyCode::Char(' ') | KeyCode::Char('p') => Action::TogglePause,
        KeyCode::Char('+') | KeyCode::Char('=') => Action::LambdaUp,
        KeyCode::Char('-') | KeyCode::Char('_') => Action::LambdaDown,
        KeyCode::Char(']') => Action::LearningRateUp,
        KeyCode::Char('[') => Action::LearningRateDown,
        KeyCode::Char('}') => Action::CriticStepsUp,
        KeyCode::Char('{') => Action::CriticStepsDown,
        KeyCode::Char('m') => Action::CyclePenalty,
        KeyCode::Char('n') => Action::SampleNow,
        KeyCode::Char('s') => Action::Checkpoint,
        KeyCode::Char('e') => Action::ToggleSmoothing,
        KeyCode::Char('l') => Action::ToggleLogScale,
        KeyCode::Char('w') => Action::ToggleWindow,
        KeyCode::Tab => Action::NextPane,
        KeyCode::Char(c @ '1'..='5') => Action::Zoom(Pane::ALL[c as usize - '1' as usize]),
        KeyCode::Char('?') | KeyCode::Char('h') => Action::Help,
        KeyCode::Esc | KeyCode::Char('0') => Action::Back,
        KeyCode::Char('d') => Action::Detach,
        KeyCode::Char('q') => Action::Quit,
        _ => return None,
    })
}
