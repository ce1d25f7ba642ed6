//! How good a generator's samples are, measured from the samples alone (nothing to download):
//! the usual 2-d measures of the toy mixtures ([`toy`]), the sliced Wasserstein distance of
//! pictures ([`swd`]); and the watchdog that reads
//! a run's figures for signs of trouble ([`watchdog`]).

pub mod swd;
pub mod toy;
pub mod watchdog;
