//! SAMR docking (`docs/partners/samr.md`, `docs/domain.md` section 7): the records the workflow
//! sends to SAMR ([`crate::workflow::samr_rule`]) wait in the store's outbox, are formed into
//! packages numbered per day ([`numbering`]) and pushed over mutual TLS with retries, `Retry-After`
//! and parking ([`push`]).

pub mod numbering;
pub mod push;

pub use push::{
    read_response, retry_at_ms, AttemptError, PushError, PushReport, ResponseError, SamrPusher, SamrSetupError,
};
