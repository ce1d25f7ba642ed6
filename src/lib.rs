//! wgangp-tui: train a Wasserstein GAN with gradient penalty and watch it learn.
//!
//! Data flows one way: `data` -> `train` (worker thread) -> [`event::TrainEvent`] -> a front
//! end (`headless` or the monitor, `tui`), and [`event::Command`]s flow back. `serve` passes the
//! same events and commands over the run's socket to viewers started with `attach`.

pub mod attach;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod detach;
pub mod device;
pub mod event;
pub mod gpu;
pub mod headless;
pub mod model;
pub mod protocol;
pub mod render;
pub mod runs;
pub mod sample;
pub mod serve;
pub mod signals;
pub mod train;
pub mod tui;

/// The message a panic carried (a `panic!` with a format gives a String, a literal a &str).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn panic_messages_are_read_from_both_payload_kinds() {
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let formatted = std::panic::catch_unwind(|| panic!("CUDA {} failed", "sgemm"));
        let literal = std::panic::catch_unwind(|| panic!("a literal"));
        std::panic::set_hook(quiet);
        let message = |r: std::thread::Result<()>| super::panic_message(r.unwrap_err().as_ref());
        assert_eq!(message(formatted), "CUDA sgemm failed");
        assert_eq!(message(literal), "a literal");
    }
}
