//! How failures become gRPC statuses: a clear message for the partner, never an internal error's
//! text (the source goes to the log).

use crate::store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::warn;
use yrdx_adapters::DecodeError;

/// `UNAVAILABLE`, logged with its source: the store failed. The partner learns that nothing was
/// stored and that it may retry, never the store's own text.
pub(crate) fn store_unavailable(e: StoreError) -> Status {
    if matches!(e, StoreError::Corrupt { .. }) {
        // A row that does not read back: retrying will not help; the operator must look.
        return internal(e);
    }
    warn!(error = %e, source = ?std::error::Error::source(&e), "store unavailable");
    Status::unavailable("the exchange's store is unavailable: nothing was stored; retry later")
}

/// `INTERNAL`, logged: a failure of the gateway itself, not of the caller's request. The partner
/// learns only that; the cause goes to the gateway's log.
pub(crate) fn internal(e: impl std::fmt::Display) -> Status {
    warn!(error = %e, "internal error");
    Status::internal("internal gateway error: the cause is in the gateway's log; tell the exchange's operators")
}

/// `INVALID_ARGUMENT` with a `google.rpc.BadRequest` carrying the first problems by the sender's
/// path, as many as fit in `budget` bytes of trailer (`grpc-status-details-bin`, base64, plus the
/// percent-encoded `grpc-message`), then one violation counting the rest and pointing to
/// `Exchange.Check`. Every problem in the trailer made a large batch's answer exceed the 16 KiB
/// metadata limit of default grpcio clients, which then saw only RESOURCE_EXHAUSTED.
pub(crate) fn invalid_document(e: &DecodeError, budget: usize, max_problems: usize) -> Status {
    let problems = e.problems();
    let truncated = problems.len() > max_problems;
    let count = if truncated {
        format!("more than {max_problems} problems (reporting stopped there)")
    } else {
        format!("{} problem(s)", problems.len())
    };
    let first = problems.first().map(|p| shorten(&p.to_string(), 200)).unwrap_or_default();
    let message = format!("{count} in the document; first: {first}");
    // Percent-encoding can triple the message; base64 makes 4 of every 3 bytes of details.
    let room = budget.saturating_sub(3 * message.len()).saturating_mul(3) / 4;
    let room = room.saturating_sub(message.len() + 160);
    let described: Vec<(String, String)> = problems
        .iter()
        .map(|p| {
            let description = match &p.record_id {
                Some(id) if !id.is_empty() => format!("{} (record {id})", p.message),
                _ => p.message.clone(),
            };
            (shorten(&p.path, 200), shorten(&description, 400))
        })
        .collect();
    let mut listed = 0;
    let mut used = 0;
    for (path, description) in &described {
        // Each violation costs its text and a few bytes of protobuf framing.
        let cost = path.len() + description.len() + 8;
        if used + cost > room {
            break;
        }
        used += cost;
        listed += 1;
    }
    let build = |listed: usize| {
        let mut details = ErrorDetails::new();
        for (path, description) in &described[..listed] {
            details.add_bad_request_violation(path.clone(), description.clone());
        }
        let rest = described.len() - listed;
        if rest > 0 {
            details.add_bad_request_violation(
                "/",
                format!("{rest} more problem(s) not listed here; Exchange.Check returns every problem of the document"),
            );
        }
        Status::with_error_details(Code::InvalidArgument, message.clone(), details)
    };
    let mut status = build(listed);
    // The estimate errs on the small side; the encoded size decides.
    while listed > 0 && status.details().len().div_ceil(3) * 4 + 3 * message.len() > budget {
        listed -= 1;
        status = build(listed);
    }
    status
}

/// `text` cut to at most `max` bytes at a character boundary, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
