//! # yrdx-conformance
//!
//! Conformance material for operators and CI: the test vectors of `conformance/vectors/` and the
//! checks that run them against the adapters ([`vectors`]); a SAMR intake simulator
//! ([`samr_intake`]).

#![deny(missing_docs)]

/// The SAMR intake simulator (it lives beside the gateway's SAMR docking, which it answers).
pub use yrdx_gateway::samr_intake;
pub mod vectors;
