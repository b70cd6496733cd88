//! # yrdx-gateway
//!
//! The exchange server, in the order a submission flows: transport and mutual TLS
//! ([`transport`], [`identity`]), the services ([`services`]), the submission path (`intake`), the
//! workflow rules ([`workflow`]), the store ([`store`]), SAMR docking ([`samr`]); with the shared
//! state ([`state`]), configuration ([`config`]), metrics, traces, the operators' console and the
//! server assembly ([`server`]). `docs/architecture.md` says where each rule lives.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod activity;
pub mod certificate;
pub mod config;
pub mod console;
pub mod faults;
pub mod gauges;
pub mod identity;
mod intake;
pub mod leader;
pub mod metrics;
pub mod otlp;
pub mod progress;
pub mod receipts;
pub mod reload;
pub mod samr;
pub mod server;
pub mod services;
pub mod state;
mod status;
pub mod store;
pub mod trace;
pub mod transport;
pub mod workflow;
