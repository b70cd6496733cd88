//! # yrdx-gateway
//!
//! The `yrdx` command and (with the gateway issue) the exchange server. Today it holds the
//! command-line tools built on the adapters: [`translate`] and [`validate`].

pub mod translate;
pub mod validate;
