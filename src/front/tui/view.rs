//! What the user sees and toggles without changing the training: panes, colour modes, view
//! options.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Curves,
    Penalty,
    Samples,
    Gradients,
    Weights,
    Quality,
}

impl Pane {
    pub const ALL: [Pane; 6] = [
        Pane::Curves,
        Pane::Penalty,
        Pane::Samples,
        Pane::Gradients,
        Pane::Weights,
        Pane::Quality,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Curves => "Losses",
            Pane::Penalty => "Penalty",
            Pane::Samples => "Samples",
            Pane::Gradients => "Critic gradients",
            Pane::Weights => "Critic weights",
            Pane::Quality => "Quality",
        }
    }

    pub fn number(self) -> usize {
        Pane::ALL.iter().position(|&p| p == self).unwrap() + 1
    }
}

/// How colours can be drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorMode {
    TrueColor,
    /// xterm's 256 colours (greys from the 24-step ramp).
    Ansi256,
    /// No colour at all (NO_COLOR, dumb terminals): shades drawn with characters.
    None,
}

impl ColorMode {
    /// From this process's environment.
    pub fn from_env() -> Self {
        let env = |k: &str| std::env::var(k).ok();
        Self::detect(
            env("NO_COLOR").is_some_and(|v| !v.is_empty()),
            env("COLORTERM").as_deref(),
            env("TERM").as_deref(),
        )
    }

    /// From the environment: NO_COLOR wins, then COLORTERM, then TERM.
    pub fn detect(no_color: bool, colorterm: Option<&str>, term: Option<&str>) -> Self {
        if no_color || term.is_some_and(|t| t == "dumb") {
            ColorMode::None
        } else if colorterm.is_some_and(|c| c.contains("truecolor") || c.contains("24bit")) {
            ColorMode::TrueColor
        } else {
            ColorMode::Ansi256
        }
    }
}

/// View options the user toggles; they change the picture, not the training.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    pub smoothing: bool,
    pub log_scale: bool,
    pub recent_window: bool,
    /// The samples pane shows the raw generator, not the averaged one.
    pub raw_samples: bool,
    pub zoom: Option<Pane>,
    pub help: bool,
    pub colors: ColorMode,
    /// Plain ASCII instead of block and braille characters.
    pub ascii: bool,
}
