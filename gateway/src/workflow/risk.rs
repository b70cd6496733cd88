//! Risk signals go to every partner that takes them (`[[partner]] risk_signals`; by default
//! Shanghai, Jiangsu and Zhejiang) but the sender; a signal's revisions only go up,
//! and WITHDRAWN is final. Nationwide or HIGH signals also go to SAMR ([`super::samr_rule`]).
//! `docs/domain.md` section 6; clauses `domain.6.risk-distribution`, `domain.6.risk-revisions`.

use super::{samr_rule, Route, RouteError, Step};
use yrdx_proto::v1::{RiskSignal, RiskState};

/// Checks a signal's revision against the held one, then routes it.
pub(super) async fn route(sig: &RiskSignal, step: &Step<'_>, r: &mut Route) -> Result<(), RouteError> {
    if let Some(held) = step.lookup.risk_signal(&sig.signal_id).await? {
        if held.state == RiskState::Withdrawn as i32 {
            return Err(step.refuse(format!(
                "signal {} was withdrawn at revision {}: WITHDRAWN is final",
                held.signal_id, held.revision
            )));
        }
        if sig.revision <= held.revision {
            return Err(step.refuse(format!(
                "stale revision {}: revision {} is held; a revision must be higher",
                sig.revision, held.revision
            )));
        }
    }
    for p in step.cx.config.partners.iter().filter(|p| p.takes_risk_signals()) {
        r.add(&p.region, step.from);
    }
    samr_rule::risk_signal(sig, r);
    Ok(())
}
