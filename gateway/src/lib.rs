//! # yrdx-gateway
//!
//! The `yrdx` command and (with the gateway issue) the exchange server. Today it holds the
//! command-line tools built on the adapters: [`translate`] and [`validate`].

#![deny(missing_docs)]

pub mod demo;
pub mod translate;
pub mod validate;
