//! # yrdx-conformance
//!
//! Conformance material for operators and CI, arranged by job:
//!
//! - [`suites`] — one module per suite: [`suites::formats`] (offline: vectors against the adapters
//!   or a partner's translator), [`suites::live`] (`gateway` and `tls`: yrdx acts as a partner),
//!   [`suites::samr_intake`] (yrdx acts as the gateway toward a SAMR intake),
//!   [`suites::samr_push`] (yrdx plays SAMR, a gateway pushes) and [`suites::partner_endpoint`]
//!   (yrdx plays the gateway for a partner's own system);
//! - [`sim`] — the simulators: a well-behaved partner ([`sim::partner`]) and a SAMR intake
//!   ([`sim::samr`]);
//! - [`report`] — the run report and its renderings ([`report::json`], [`report::junit`],
//!   [`report::html`]);
//! - [`suite`] (the case files), [`runner`] (selection and verdict), [`requirements`] (clause
//!   coverage), [`vectors`], [`records`] (a case's input records), [`tls`] (the TLS client every
//!   live suite uses), [`embedded`] (the material built into the binary), [`clock`],
//!   [`toml_file`] (reading a TOML input file).
//!
//! The older flat paths (`live`, `simulate`, `samr_simulator`, `junit`, `html` …) are kept as
//! re-exports for the command line and the tests.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod clock;
pub mod embedded;
pub mod records;
pub mod report;
pub mod requirements;
pub mod runner;
pub mod sim;
pub mod suite;
pub mod suites;
pub mod tls;
pub mod toml_file;
pub mod vectors;

pub use report::{html, junit};
pub use sim::partner as simulate;
pub use sim::samr as samr_simulator;
pub use suites::partner_endpoint as partner_endpoint_suite;
pub use suites::samr_intake as samr_intake_suite;
pub use suites::samr_push as samr_push_suite;
pub use suites::{formats, live};
