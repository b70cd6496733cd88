//! Risk signals go to every partner that takes them (`[[partner]] risk_signals`; by default
//! Shanghai, Jiangsu and Zhejiang) but the sender; a signal's revisions only go up,
//! and WITHDRAWN is final. Nationwide or HIGH signals also go to SAMR ([`super::samr_rule`]).
//! `docs/domain.md` section 6; clauses `domain.6.risk-distribution`, `domain.6.risk-revisions`.

use super::{precondition, samr_rule, RecordLookup, Route, RouteError};
use crate::config::Config;
use yrdx_proto::v1::{RiskSignal, RiskState};

/// Checks a signal's revision against the held one, then routes it.
pub(super) async fn route(
    sig: &RiskSignal,
    from: &str,
    l: &dyn RecordLookup,
    config: &Config,
    what: &str,
    r: &mut Route,
) -> Result<(), RouteError> {
    if let Some(held) = l.risk_signal(&sig.signal_id).await? {
        if held.state == RiskState::Withdrawn as i32 {
            return Err(precondition(
                what,
                format!("signal {} was withdrawn at revision {}: WITHDRAWN is final", held.signal_id, held.revision),
            ));
        }
        if sig.revision <= held.revision {
            return Err(precondition(
                what,
                format!(
                    "stale revision {}: revision {} is held; a revision must be higher",
                    sig.revision, held.revision
                ),
            ));
        }
    }
    for p in config.partners.iter().filter(|p| p.takes_risk_signals()) {
        r.add(&p.region, from);
    }
    samr_rule::risk_signal(sig, r);
    Ok(())
}
