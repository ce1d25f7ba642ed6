//! How good a generator's samples are, measured from the samples alone (nothing to download):
//! for now the usual 2-d measures of the toy mixtures ([`toy`]); and the watchdog that reads
//! a run's figures for signs of trouble ([`watchdog`]).

pub mod toy;
pub mod watchdog;
