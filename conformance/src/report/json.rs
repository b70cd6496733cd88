//! `report.json`: the run report as versioned JSON (`report_format`
//! `yrdx-conformance-report/1`), the form CI systems and `--rerun-failed` read.

use super::RunReport;

/// The report as pretty-printed JSON bytes.
pub fn render(report: &RunReport) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec_pretty(report)
}
