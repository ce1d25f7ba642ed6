use std::process::ExitCode;

use clap::Parser;
use wgangp_tui::{cli::Cli, cmd};

fn main() -> ExitCode {
    one_malloc_arena();
    cmd::run(&Cli::parse())
}

/// Training allocates its large buffers from the kernel threads too; glibc gives each thread
/// its own arena and keeps what is freed there, which took the peak memory of a colour run a
/// quarter above what it uses at once. One arena costs nothing measurable in speed here
/// (`bench`).
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it runs before any other thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
