//! # yrdx-gateway
//!
//! The exchange server: mutual-TLS identity ([`identity`]), the Exchange
//! service ([`exchange`]), the durable store ([`store`]), routing ([`routing`]), configuration
//! ([`config`]), the development PKI ([`pki`]) and the server assembly ([`server`]); plus the
//! command-line tools [`translate`], [`validate`] and [`demo`].

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod admin;
pub mod calendar_watch;
pub mod certificate;
pub mod config;
pub mod console;
pub mod disposal;
pub mod exchange;
pub mod faults;
pub mod gauges;
pub mod identity;
mod intake;
pub mod leader;
pub mod metrics;
pub mod otlp;
pub mod overdue;
pub mod progress;
pub mod receipts;
pub mod records_api;
pub mod reload;
pub mod routing;
pub mod samr_push;
pub mod server;
pub mod state;
mod status;
pub mod store;
pub mod trace;
pub mod transport;
