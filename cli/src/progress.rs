//! Progress of the `yrdx` command's long work on stderr (stdout keeps the command's output):
//! [`yrdx_gateway::progress::Progress`] for `yrdx translate` of many files, and the conformance
//! runner's hook ([`CaseProgress`]) for `yrdx conformance run`.

use yrdx_conformance::report::{CaseReport, Outcome};
use yrdx_conformance::runner::{CaseLines, CaseProgress};
use yrdx_gateway::progress::Progress;

/// `yrdx translate` shows progress from this many input files on (below it, stderr carries only
/// the losses and problems, as before).
pub const TRANSLATE_PROGRESS_FROM: usize = 10;

/// The progress of translating `files` input files, when there are enough of them to want it.
pub fn translate(files: usize) -> Option<Progress> {
    (files >= TRANSLATE_PROGRESS_FROM).then(|| Progress::on_stderr("translate", "files", files as u64))
}

/// The progress of a conformance run: on a terminal a bar over the cases, with the lines of a
/// failed or broken case printed above it; elsewhere a line per case ([`CaseLines`]), which a CI
/// log keeps.
#[derive(Debug)]
pub struct ConformanceProgress {
    /// Whether stderr is a terminal (a bar is drawn).
    terminal: bool,
    /// The bar, made at the first case (when the number of cases is known).
    bar: std::sync::OnceLock<Progress>,
}

impl ConformanceProgress {
    /// The progress of a run on this process's stderr.
    pub fn on_stderr() -> ConformanceProgress {
        use std::io::IsTerminal;
        ConformanceProgress { terminal: std::io::stderr().is_terminal(), bar: std::sync::OnceLock::new() }
    }

    /// Clears the bar once the run is over (the summary follows).
    pub fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish();
        }
    }
}

impl CaseProgress for ConformanceProgress {
    fn case_done(&self, done: usize, total: usize, report: &CaseReport) {
        if !self.terminal {
            return CaseLines.case_done(done, total, report);
        }
        let bar = self.bar.get_or_init(|| Progress::on_stderr("conformance", "cases", total as u64));
        let lines = CaseLines::lines(done, total, report);
        // Passing and skipped cases only move the bar; failed, broken and known-failing ones keep
        // their lines, above it.
        if matches!(report.outcome, Outcome::Fail | Outcome::Error) || report.known_failing {
            for line in &lines {
                bar.println(line);
            }
        }
        bar.set(done as u64);
    }
}
