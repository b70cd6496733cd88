//! The gRPC services, thin: each handler takes the caller's identity, calls the shared state
//! ([`crate::state`]) or the submission path ([`crate::intake`]), and maps failures to statuses
//! ([`crate::status`]).

pub mod admin;
pub mod exchange;
pub mod records;
