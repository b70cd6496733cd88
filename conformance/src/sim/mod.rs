//! The simulators: a well-behaved partner ([`partner`], `yrdx conformance simulate`, `yrdx demo`)
//! and a SAMR intake ([`samr`], `yrdx conformance samr-intake`, the `samr-push` suite).

pub mod partner;
pub mod samr;
