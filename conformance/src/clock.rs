//! The wall clock the tool stamps its documents, evidence and reports with.

/// Now, as a protobuf timestamp in whole seconds (what every partner's envelope carries).
pub fn now() -> yrdx_proto::Timestamp {
    use yrdx_gateway::clock::Clock;
    yrdx_gateway::clock::whole_seconds(yrdx_gateway::clock::SystemClock.now())
}
