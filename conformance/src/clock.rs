//! The wall clock the tool stamps its documents, evidence and reports with.

/// Now, as a protobuf timestamp in whole seconds (what every partner's envelope carries).
pub fn now() -> yrdx_proto::Timestamp {
    use yrdx_clock::Clock;
    yrdx_clock::whole_seconds(yrdx_clock::SystemClock.now())
}
