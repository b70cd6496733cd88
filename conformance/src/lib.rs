//! # yrdx-conformance
//!
//! Conformance material for operators and CI: the test vectors of `conformance/vectors/` and the
//! checks that run them against the adapters ([`vectors`]); a SAMR intake simulator
//! ([`samr_intake`]).

#![deny(missing_docs)]

pub mod samr_intake;
pub mod vectors;
