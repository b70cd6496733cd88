//! # yrdx-conformance
//!
//! Conformance material for operators and CI: the test vectors of `conformance/vectors/` and the
//! checks that run them against the adapters ([`vectors`]).

#![deny(missing_docs)]

pub mod vectors;
