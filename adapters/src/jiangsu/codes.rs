//! Jiangsu's code dictionaries (interface v2.1 appendix; `docs/partners/jiangsu.md`): each
//! Jiangsu code with the canonical value it stands for.

use yrdx_proto::v1::*;

pub(super) const CHANNEL_PLAN: &[(&str, i32)] = &[("1", 1), ("2", 2), ("3", 3)];
pub(super) const CHANNEL_SAMPLE: &[(&str, i32)] = &[("1", 1), ("2", 2)];
pub(super) const CONCLUSION: &[(&str, i32)] = &[("1", 1), ("2", 2)];
pub(super) const VERDICT: &[(&str, i32)] = &[("1", 1), ("2", 2)];
pub(super) const SEVERITY: &[(&str, i32)] = &[("A", Severity::Serious as i32), ("B", Severity::General as i32)];
pub(super) const ACTION: &[(&str, i32)] = &[
    ("01", CaseAction::Accept as i32),
    ("02", CaseAction::Return as i32),
    ("03", CaseAction::Notify as i32),
    ("04", CaseAction::Objection as i32),
    ("05", CaseAction::RecheckPass as i32),
    ("06", CaseAction::RecheckFail as i32),
    ("07", CaseAction::RectifyOrder as i32),
    ("08", CaseAction::RectifyVerified as i32),
    ("09", CaseAction::Penalty as i32),
    ("10", CaseAction::Close as i32),
];
pub(super) const STATE: &[(&str, i32)] = &[("1", 1), ("2", 2), ("3", 3)];
pub(super) const SOURCE: &[(&str, i32)] =
    &[("1", 1), ("2", 2), ("3", 3), ("4", 4), ("5", 5), ("6", 6), ("7", 7), ("8", 8)];
pub(super) const LEVEL: &[(&str, i32)] = &[("1", 1), ("2", 2), ("3", 3), ("4", 4)];
pub(super) const HAZARD: &[(&str, i32)] = &[
    ("01", Hazard::ElectricShock as i32),
    ("02", Hazard::Fire as i32),
    ("03", Hazard::Burn as i32),
    ("04", Hazard::Chemical as i32),
    ("05", Hazard::Mechanical as i32),
    ("06", Hazard::Choking as i32),
    ("07", Hazard::Explosion as i32),
    ("08", Hazard::Environment as i32),
    ("99", Hazard::Other as i32),
];
