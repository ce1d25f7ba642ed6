//! How far a long job over many files is, and how to say it.

/// How far the decoding of a folder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoding {
    pub done: usize,
    pub total: usize,
}

impl Decoding {
    /// `N/M files, R files/s, ETA T`, after `elapsed_s` seconds.
    pub fn line(&self, elapsed_s: f64) -> String {
        let rate = self.done as f64 / elapsed_s.max(1e-3);
        let left = (self.total - self.done) as f64 / rate.max(1e-9);
        format!(
            "{}/{} files, {rate:.0} files/s, ETA {}",
            self.done,
            self.total,
            super::time::format_duration(left)
        )
    }
}
