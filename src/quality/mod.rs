//! How good a generator's samples are, measured from the samples alone (nothing to download):
//! for now the usual 2-d measures of the toy mixtures ([`toy`]).

pub mod toy;
