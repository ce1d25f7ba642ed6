//! How good a generator's samples are, measured with nothing to download: the usual 2-d
//! measures of the toy mixtures ([`toy`]), the sliced Wasserstein distance of pictures
//! ([`swd`]), the digits' Frechet distance and classifier score on the project's own MNIST
//! classifier ([`digits`]); and the watchdog that reads a run's figures for signs of trouble
//! ([`watchdog`]).

pub mod digits;
pub mod swd;
pub mod toy;
pub mod watchdog;
