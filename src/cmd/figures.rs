//! `wgangp-tui figures`: runs the clipping-versus-penalty experiments ([`crate::experiments`])
//! and writes their figures into the output folder.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::FiguresArgs;
use crate::experiments::{Settings, experiments, write_figures};
use crate::util::say;
use crate::util::signals::{self, SignalWatch};

/// A `figures` command, checked.
pub struct FiguresRun {
    out: PathBuf,
    settings: Settings,
}

/// Checks the arguments: the output folder must exist or be creatable, and writable (found out
/// now, not after the trainings).
pub fn prepare(args: &FiguresArgs) -> Result<FiguresRun> {
    let out = args.out.clone();
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create the folder {}", out.display()))?;
    tempfile::NamedTempFile::new_in(&out)
        .with_context(|| format!("cannot write into {}", out.display()))?;
    Ok(FiguresRun {
        out,
        settings: Settings {
            steps: args.steps,
            seed: args.seed,
            threads: args
                .threads
                .map(|t| t as usize)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        },
    })
}

/// Runs the experiments, writes the figures into the output folder; returns what to tell the
/// user.
pub fn run(run: &FiguresRun) -> Result<String> {
    // A signal ends the experiments at once, saying so: their results are only in memory until
    // the end, and each file is written whole (atomically) or not at all.
    let _watch = SignalWatch::start(|signal| {
        say(format_args!(
            "figures: stopped by {}; no figures written",
            signals::name(signal)
        ));
        std::process::exit(128 + signal);
    })
    .context("cannot watch for signals")?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(run.settings.threads)
        .build()
        .context("cannot start the kernel threads")?;
    let figures = pool.install(|| experiments(&run.settings))?;
    write_figures(&run.out, &figures)?;
    Ok(format!(
        "figures in {}: fig-value-surfaces.png, fig-gradient-norms.png, fig-weights.png, \
         figures.json",
        run.out.display()
    ))
}
