//! The suites, one module each; their cases are the TOML files of `conformance/suites/<suite>/`
//! ([`crate::suite`]), run by [`crate::runner`].

pub mod formats;
pub mod live;
pub mod partner_endpoint;
pub mod samr_intake;
pub mod samr_push;
