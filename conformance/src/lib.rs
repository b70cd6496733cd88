//! # yrdx-conformance
//!
//! Conformance material for operators and CI: the test vectors of `conformance/vectors/` and the
//! checks that run them against the adapters ([`vectors`]); declarative suites of cases
//! (`conformance/suites/`, [`suite`]) and the runner that executes them ([`runner`]) offline
//! ([`formats`]), against a live gateway ([`live`]) or a SAMR intake ([`samr_intake_suite`]), and a gateway's SAMR docking with yrdx playing SAMR
//! ([`samr_push_suite`]), and a partner's own system with yrdx as its gateway
//! ([`partner_endpoint_suite`]); the reports
//! ([`report`], [`junit`], [`html`]); clause coverage ([`requirements`]); and the simulators: a
//! well-behaved partner ([`simulate`]) and a SAMR intake ([`samr_simulator`]).

#![deny(missing_docs)]

pub mod clock;
pub mod embedded;
pub mod formats;
pub mod html;
pub mod junit;
pub mod live;
pub mod partner_endpoint_suite;
pub mod records;
pub mod report;
pub mod requirements;
pub mod runner;
pub mod samr_intake_suite;
pub mod samr_push_suite;
pub mod samr_simulator;
pub mod simulate;
pub mod suite;
pub mod tls;
pub mod vectors;
