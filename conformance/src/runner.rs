//! The suite runner: selects cases (`--run`/`--skip` globs, the partner), runs them one by one
//! showing progress, applies `--known-failing`, and writes the JSON, JUnit and HTML reports.

use crate::report::{beijing_now, CaseReport, Input, Outcome, RunReport, REPORT_FORMAT};
use crate::requirements::Catalogue;
use crate::suite::{self, glob_match, LoadedCase, Placeholders};
use crate::suites::formats::{FormatsOutcome, FormatsTarget};
use crate::suites::live::{LiveOutcome, LiveTarget};
use crate::suites::samr_intake::{SamrOutcome, SamrTarget};
use crate::suites::samr_push::SamrPushTarget;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a run is aimed at.
#[derive(Debug, Clone)]
pub enum Target {
    /// The `formats` suite.
    Formats(FormatsTarget),
    /// The `gateway` and `tls` suites.
    Live(Box<LiveTarget>),
    /// The `samr-intake` suite.
    Samr(Box<SamrTarget>),
    /// The `samr-push` suite.
    SamrPush(Box<SamrPushTarget>),
    /// The `partner-endpoint` suite.
    PartnerEndpoint(Box<crate::suites::partner_endpoint::PartnerEndpointTarget>),
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The suite (`gateway`).
    pub suite: String,
    /// Where the suites are.
    pub suites_dir: PathBuf,
    /// Where the vectors are.
    pub vectors_dir: PathBuf,
    /// The clause catalogue.
    pub catalogue: PathBuf,
    /// Case-id globs to run (empty: all).
    pub run: Vec<String>,
    /// Case-id globs not to run.
    pub skip: Vec<String>,
    /// Run only cases carrying one of these tags (empty: all).
    pub tags: Vec<String>,
    /// Cases expected to fail.
    pub known_failing: BTreeSet<String>,
    /// The target.
    pub target: Target,
    /// The inputs to show in the report (secrets already redacted).
    pub inputs: Vec<Input>,
    /// Show progress on stderr.
    pub progress: bool,
}

/// Why a run could not give a verdict on the system under test (exit 2): the tool, its
/// configuration or the suite is at fault, or the run would have checked nothing.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A flag, file or folder of the run is wrong.
    #[error("{0}")]
    Config(String),
    /// The suite's case files are broken.
    #[error(transparent)]
    Suite(#[from] suite::SuiteError),
    /// The clause catalogue is broken.
    #[error(transparent)]
    Catalogue(#[from] crate::requirements::CatalogueError),
    /// A `--rerun-failed` or `--known-failing` file is unusable.
    #[error(transparent)]
    Input(#[from] RunInputError),
    /// The suite has no case at all (an empty folder, no vectors found).
    #[error("the {suite} suite has no case: {why}")]
    NoCases {
        /// The suite.
        suite: String,
        /// Where the cases were looked for.
        why: String,
    },
    /// A `--run` glob or `--tag` selects no case (a typo would otherwise check nothing).
    #[error(
        "{flag} {value} matches no case of the {suite} suite (`yrdx conformance list --suite {suite}` lists them)"
    )]
    SelectsNothing {
        /// `--run` or `--tag`.
        flag: &'static str,
        /// The glob or tag.
        value: String,
        /// The suite.
        suite: String,
    },
    /// No case ran to a verdict: every one was omitted or skipped.
    #[error("nothing was checked: {0}")]
    NothingChecked(String),
    /// The target cannot be tested with the given configuration (unreachable, our `--ca`
    /// rejects its certificate, a certificate that is not the partner's …).
    #[error(transparent)]
    Preflight(crate::suites::TargetError),
}

/// Why a `--rerun-failed` report or a `--known-failing` list is unusable.
#[derive(Debug, thiserror::Error)]
pub enum RunInputError {
    /// The file could not be read.
    #[error("{flag} {path}: {source}")]
    Read {
        /// `--rerun-failed` or `--known-failing`.
        flag: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The report is not JSON.
    #[error("--rerun-failed {path}: {source}")]
    NotJson {
        /// The file.
        path: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The report is of another suite.
    #[error("--rerun-failed {path}: a report of the {found} suite, not {suite}")]
    OtherSuite {
        /// The file.
        path: String,
        /// The suite it reports.
        found: String,
        /// The suite of this run.
        suite: String,
    },
    /// Nothing failed in that run: a rerun would check nothing.
    #[error("--rerun-failed {path}: no case failed or broke in that run")]
    NothingFailed {
        /// The file.
        path: String,
    },
}

/// The ids of the cases that failed the run or broke in a report.json of `suite`, for
/// `--rerun-failed` (known-failing cases that passed too: they failed the run).
pub fn failed_in(path: &Path, suite: &str) -> Result<Vec<String>, RunInputError> {
    let shown = || path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|source| RunInputError::Read { flag: "--rerun-failed", path: shown(), source })?;
    let report: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| RunInputError::NotJson { path: shown(), source })?;
    if report["suite"].as_str() != Some(suite) {
        return Err(RunInputError::OtherSuite {
            path: shown(),
            found: report["suite"].to_string(),
            suite: suite.to_string(),
        });
    }
    let ids: Vec<String> = report["cases"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|c| {
            let outcome = c["outcome"].as_str().unwrap_or_default();
            let known = c["known_failing"].as_bool().unwrap_or(false);
            (outcome == "fail" && !known) || outcome == "error" || (outcome == "pass" && known)
        })
        .filter_map(|c| c["id"].as_str().map(String::from))
        .collect();
    if ids.is_empty() {
        return Err(RunInputError::NothingFailed { path: shown() });
    }
    Ok(ids)
}

/// Reads a `--known-failing` file: one case id per line, `#` comments.
pub fn read_known_failing(path: &Path) -> Result<BTreeSet<String>, RunInputError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunInputError::Read {
        flag: "--known-failing",
        path: path.display().to_string(),
        source,
    })?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// A run's id (Beijing time and token) and its token: 6 characters of `[0-9A-Z]`, unique enough
/// to keep the ids of repeated runs against one target apart.
pub(crate) fn run_token() -> (String, String) {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut n = d.as_nanos() as u64 ^ ((std::process::id() as u64) << 32);
    let alphabet = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut token = String::new();
    for _ in 0..6 {
        token.push(alphabet[(n % alphabet.len() as u64) as usize] as char);
        n /= alphabet.len() as u64;
    }
    let t = yrdx_proto::Timestamp { seconds: d.as_secs() as i64, nanos: 0 };
    let run_id = format!("{}-{token}", yrdx_proto::civil::BeijingTime::of(&t).to_compact());
    (run_id, token)
}

/// The placeholders of a run with `token`, acting as `live.me` when live.
pub(crate) fn placeholders(token: &str, live: Option<&LiveTarget>) -> Placeholders {
    let now = crate::clock::now();
    let today = yrdx_proto::civil::BeijingTime::of(&now).to_rfc3339().chars().take(10).collect::<String>();
    let mut pairs = vec![
        ("RUN", token.to_string()),
        ("EPOCH", now.seconds.to_string()),
        ("TODAY", today),
        ("NOW", yrdx_proto::civil::BeijingTime::of(&now).to_rfc3339()),
    ];
    if let Some(t) = live {
        pairs.push(("REGION", t.me.region.clone()));
        pairs.push(("PARTNER", t.me.name.clone()));
        pairs.push(("PEER_REGION", t.peer.as_ref().map(|p| p.region.clone()).unwrap_or_else(|| "310000".into())));
    }
    Placeholders::new(&pairs)
}

/// The suite's version: a digest of its case files, so a report says exactly which cases ran.
fn suite_version(dir: &Path, suite: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(suite))
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default());
        h.update(std::fs::read(&f).unwrap_or_default());
    }
    format!("{}+{}", env!("CARGO_PKG_VERSION"), &hex::encode(h.finalize())[..12])
}

fn selected(def: &suite::CaseDef, opts: &RunOptions) -> bool {
    let id = &def.id;
    (opts.run.is_empty() || opts.run.iter().any(|g| glob_match(g, id)))
        && !opts.skip.iter().any(|g| glob_match(g, id))
        && (opts.tags.is_empty() || opts.tags.iter().any(|t| def.tags.contains(t)))
}

/// Checks that every `--run` glob and `--tag` selects at least one case.
fn check_selection(cases: &[LoadedCase], opts: &RunOptions) -> Result<(), RunError> {
    for g in &opts.run {
        if !cases.iter().any(|c| glob_match(g, &c.def.id)) {
            return Err(RunError::SelectsNothing { flag: "--run", value: g.clone(), suite: opts.suite.clone() });
        }
    }
    for t in &opts.tags {
        if !cases.iter().any(|c| c.def.tags.contains(t)) {
            return Err(RunError::SelectsNothing { flag: "--tag", value: t.clone(), suite: opts.suite.clone() });
        }
    }
    Ok(())
}

/// Why a run checked nothing, from what its cases said.
fn nothing_checked(reports: &[CaseReport]) -> String {
    let mut reasons: Vec<String> = Vec::new();
    for r in reports {
        let why = format!("{} ({})", r.outcome.as_str(), r.message);
        if !reasons.contains(&why) {
            reasons.push(why);
        }
    }
    format!("all {} case(s) were omitted or skipped: {}", reports.len(), reasons.join("; "))
}

/// Loads the cases of `suite`, refusing a suite with none.
pub fn load_cases(
    suites_dir: &Path,
    suite_name: &str,
    vectors_dir: &Path,
    catalogue: &Path,
) -> Result<Vec<LoadedCase>, RunError> {
    if !suite::SUITES.contains(&suite_name) {
        return Err(RunError::Config(format!("--suite {suite_name}: expected one of {}", suite::SUITES.join(", "))));
    }
    let catalogue = Catalogue::load(catalogue)?;
    let cases = suite::load(suites_dir, suite_name, vectors_dir, &catalogue)?;
    if cases.is_empty() {
        let why = if suite_name == "formats" {
            format!("no vectors found in {} (or --suites has no generator)", vectors_dir.display())
        } else {
            format!("no case file in {}", suites_dir.join(suite_name).display())
        };
        return Err(RunError::NoCases { suite: suite_name.to_string(), why });
    }
    Ok(cases)
}

/// Told about each case as a run goes, when [`RunOptions::progress`] is set: the `yrdx` command
/// draws a bar on a terminal; [`CaseLines`] writes a line per case.
pub trait CaseProgress: Send + Sync {
    /// After each case: `done` cases of `total`, the last one's report.
    fn case_done(&self, done: usize, total: usize, report: &CaseReport);
}

/// The progress of a run as lines on stderr: one per case, with the message and first findings
/// of a failed or broken one.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaseLines;

impl CaseLines {
    /// The lines telling that `report`, case `done` of `total`, ended.
    pub fn lines(done: usize, total: usize, report: &CaseReport) -> Vec<String> {
        let mark = match (report.outcome, report.known_failing) {
            (Outcome::Fail, true) => "fail (known)".to_string(),
            (Outcome::Pass, true) => "PASS, but listed as known failing".to_string(),
            (o, _) => o.as_str().to_string(),
        };
        let mut lines = vec![format!("[{done:>3}/{total}] {mark:<5} {} ({} ms)", report.id, report.duration_ms)];
        if matches!(report.outcome, Outcome::Fail | Outcome::Error) {
            if !report.message.is_empty() {
                lines.push(format!("          {}", report.message));
            }
            for f in report.findings.iter().take(5) {
                lines.push(format!(
                    "          {} at {}: expected {}, got {}",
                    f.assertion, f.location, f.expected, f.actual
                ));
            }
        }
        lines
    }
}

impl CaseProgress for CaseLines {
    fn case_done(&self, done: usize, total: usize, report: &CaseReport) {
        let mut err = std::io::stderr().lock();
        for line in CaseLines::lines(done, total, report) {
            let _ = writeln!(err, "{line}");
        }
    }
}

/// Loads and runs a suite. `Err` is a broken configuration or suite, or a run that would check
/// nothing (exit 2). Progress, when asked for, is [`CaseLines`].
pub async fn run(opts: &RunOptions) -> Result<RunReport, RunError> {
    run_with_progress(opts, &CaseLines).await
}

/// [`run`], telling `progress` about each case.
pub async fn run_with_progress(opts: &RunOptions, progress: &dyn CaseProgress) -> Result<RunReport, RunError> {
    run_until(opts, progress, std::future::pending()).await
}

/// [`run_with_progress`], stopped when `interrupt` completes (Ctrl-C): the case running then is
/// abandoned, it and every case after it are reported as not run, and the report says it was
/// interrupted — its verdict is at best `incomplete`, never `pass`.
pub async fn run_until(
    opts: &RunOptions,
    progress: &dyn CaseProgress,
    interrupt: impl std::future::Future<Output = ()>,
) -> Result<RunReport, RunError> {
    let cases = load_cases(&opts.suites_dir, &opts.suite, &opts.vectors_dir, &opts.catalogue)?;
    let known: BTreeSet<&String> = cases.iter().map(|c| &c.def.id).collect();
    if let Some(stale) = opts.known_failing.iter().find(|k| !known.contains(k)) {
        return Err(RunError::Config(format!(
            "--known-failing names {stale}, which is no case of the {} suite",
            opts.suite
        )));
    }
    check_selection(&cases, opts)?;
    // Before any case: a target the tool cannot test properly would make cases fail (or, worse,
    // a refusal case pass) for reasons that are the configuration's, not the target's.
    match &opts.target {
        Target::Live(t) => crate::suites::live::preflight(t).await.map_err(RunError::Preflight)?,
        Target::Samr(t) => crate::suites::samr_intake::preflight(t).await.map_err(RunError::Preflight)?,
        Target::SamrPush(t) => crate::suites::samr_push::preflight(t).await.map_err(RunError::Preflight)?,
        Target::Formats(_) | Target::PartnerEndpoint(_) => {}
    }
    let (run_id, token) = run_token();
    let live = match &opts.target {
        Target::Live(t) => Some(&**t),
        Target::SamrPush(t) => Some(&t.gateway),
        _ => None,
    };
    let fill = match &opts.target {
        Target::PartnerEndpoint(t) => Placeholders::new(&[
            ("RUN", token.clone()),
            ("EPOCH", crate::clock::now().seconds.to_string()),
            ("REGION", t.gateway.region.clone()),
            ("PARTNER", t.partner.clone()),
            ("PEER_REGION", "310000".to_string()),
        ]),
        _ => placeholders(&token, live),
    };
    if let Target::Samr(_) = &opts.target {
        crate::suites::samr_intake::start_numbering(1 + (token.bytes().map(u32::from).sum::<u32>() * 97) % 9000);
    }
    let (target_text, acting_as) = target_names(&opts.target);
    let started_at = beijing_now();
    let started = Instant::now();
    let total = cases.len();
    let mut reports = Vec::new();
    let mut interrupted = None;
    tokio::pin!(interrupt);
    for (n, case) in cases.iter().enumerate() {
        if interrupted.is_none() {
            tokio::select! {
                report = run_one(case, opts, &fill) => {
                    if opts.progress {
                        progress.case_done(n + 1, total, &report);
                    }
                    reports.push(report);
                    continue;
                }
                () = &mut interrupt => {
                    interrupted = Some(format!("interrupted (Ctrl-C) during case {} of {total}, {}", n + 1, case.def.id));
                }
            }
        }
        reports.push(not_run(case, opts, "not run: the run was interrupted"));
    }
    if interrupted.is_none() && !reports.iter().any(|r| r.checked() || r.outcome == Outcome::Error) {
        return Err(RunError::NothingChecked(nothing_checked(&reports)));
    }
    let mut report = RunReport {
        duration_ms: started.elapsed().as_millis() as u64,
        interrupted,
        cases: reports,
        ..unfinished_report(opts, run_id, (target_text, acting_as), started_at)
    };
    report.finish();
    Ok(report)
}

/// A case that did not run, and why (its outcome `skip`, so a required one keeps the run from
/// passing).
fn not_run(case: &LoadedCase, opts: &RunOptions, why: &str) -> CaseReport {
    case_report(case, opts, Outcome::Skip, why.to_string())
}

/// A case's report before it runs: what the case file says of it, with `outcome` and `message`,
/// no findings and no evidence yet.
fn case_report(case: &LoadedCase, opts: &RunOptions, outcome: Outcome, message: String) -> CaseReport {
    let def = &case.def;
    CaseReport {
        id: def.id.clone(),
        title: def.title.clone(),
        suite: case.suite.clone(),
        group: case.group.clone(),
        checks: def.checks.clone(),
        requirements: def.requirements.clone(),
        tags: def.tags.clone(),
        required: def.required,
        outcome,
        known_failing: opts.known_failing.contains(&def.id),
        deselected: false,
        message,
        findings: vec![],
        evidence: vec![],
        duration_ms: 0,
    }
}

/// What a report calls the target, and the partner acted as.
fn target_names(target: &Target) -> (String, String) {
    match target {
        Target::Formats(FormatsTarget::Adapters) => ("yrdx adapters".to_string(), String::new()),
        Target::Formats(FormatsTarget::Translator { command, format, .. }) => {
            (format!("translator `{command}` (writes {format})"), String::new())
        }
        Target::Live(t) => (t.url.clone(), t.me.name.clone()),
        Target::Samr(t) => (t.url.clone(), String::new()),
        Target::SamrPush(t) => (
            format!("{} (pushing to yrdx's SAMR intake at {})", t.gateway.url, t.intake.url()),
            t.gateway.me.name.clone(),
        ),
        Target::PartnerEndpoint(t) => (
            format!("{}'s system (connecting to yrdx as the gateway at {})", t.partner, t.gateway.url()),
            t.partner.clone(),
        ),
    }
}

/// A report's header for `opts` with no cases yet: what ran, against what, with which inputs;
/// [`RunReport::finish`] fills in the summary and the verdict.
fn unfinished_report(
    opts: &RunOptions,
    run_id: String,
    (target, acting_as): (String, String),
    started_at: String,
) -> RunReport {
    RunReport {
        report_format: REPORT_FORMAT.into(),
        run_id,
        tool: "yrdx conformance".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        tool_sha256: crate::report::own_binary_sha256(),
        suite: opts.suite.clone(),
        suite_version: suite_version(&opts.suites_dir, &opts.suite),
        target,
        acting_as,
        inputs: opts.inputs.clone(),
        started_at,
        duration_ms: 0,
        summary: Default::default(),
        verdict: String::new(),
        verdict_reason: String::new(),
        interrupted: None,
        cases: vec![],
        requirements: Vec::new(),
    }
}

/// The report of a run that gave no verdict on the system under test (`error`, exit 2), saying
/// why — so a CI system reading the report files sees the configuration's fault, not a gap.
pub fn error_report(opts: &RunOptions, error: &RunError) -> RunReport {
    let (run_id, _) = run_token();
    let mut report = unfinished_report(opts, run_id, target_names(&opts.target), beijing_now());
    report.finish();
    report.verdict_reason = format!("the tool or its configuration failed: {error}");
    report
}

async fn run_one(case: &LoadedCase, opts: &RunOptions, fill: &Placeholders) -> CaseReport {
    let def = &case.def;
    let mut report = case_report(case, opts, Outcome::Omit, String::new());
    if !selected(def, opts) {
        report.message = "deselected by --run/--skip/--tag".into();
        report.deselected = true;
        return report;
    }
    let started = Instant::now();
    let (outcome, message, findings, evidence) = match &opts.target {
        Target::Formats(t) => match crate::suites::formats::run_case(case, t) {
            FormatsOutcome::Ran(f, e) => {
                (if f.is_empty() { Outcome::Pass } else { Outcome::Fail }, String::new(), f, e)
            }
            FormatsOutcome::Omit(m) => (Outcome::Omit, m, vec![], vec![]),
            FormatsOutcome::Error(m) => (Outcome::Error, m, vec![], vec![]),
        },
        Target::Live(t) => match crate::suites::live::run_case(case, t, fill, &opts.vectors_dir).await {
            LiveOutcome::Ran(f, e) => (if f.is_empty() { Outcome::Pass } else { Outcome::Fail }, String::new(), f, e),
            LiveOutcome::Skip(m) => (Outcome::Skip, m, vec![], vec![]),
            LiveOutcome::Omit(m) => (Outcome::Omit, m, vec![], vec![]),
            LiveOutcome::Error(m, e) => (Outcome::Error, m, vec![], e),
        },
        Target::Samr(t) => match crate::suites::samr_intake::run_case(case, t, fill, &opts.vectors_dir).await {
            SamrOutcome::Ran(f, e) => (if f.is_empty() { Outcome::Pass } else { Outcome::Fail }, String::new(), f, e),
            SamrOutcome::Error(m, e) => (Outcome::Error, m, vec![], e),
        },
        Target::PartnerEndpoint(t) => {
            match crate::suites::partner_endpoint::run_case(case, t, fill, &opts.vectors_dir).await {
                LiveOutcome::Ran(f, e) => {
                    (if f.is_empty() { Outcome::Pass } else { Outcome::Fail }, String::new(), f, e)
                }
                LiveOutcome::Skip(m) => (Outcome::Skip, m, vec![], vec![]),
                LiveOutcome::Omit(m) => (Outcome::Omit, m, vec![], vec![]),
                LiveOutcome::Error(m, e) => (Outcome::Error, m, vec![], e),
            }
        }
        Target::SamrPush(t) => match crate::suites::samr_push::run_case(case, t, fill, &opts.vectors_dir).await {
            LiveOutcome::Ran(f, e) => (if f.is_empty() { Outcome::Pass } else { Outcome::Fail }, String::new(), f, e),
            LiveOutcome::Skip(m) => (Outcome::Skip, m, vec![], vec![]),
            LiveOutcome::Omit(m) => (Outcome::Omit, m, vec![], vec![]),
            LiveOutcome::Error(m, e) => (Outcome::Error, m, vec![], e),
        },
    };
    report.outcome = outcome;
    report.message = match (outcome, findings.first()) {
        (Outcome::Fail, Some(f)) => format!("{} ({} finding(s))", f.assertion, findings.len()),
        _ => message,
    };
    if report.known_failing && outcome == Outcome::Pass {
        report.message = "listed in --known-failing but passed: remove it from the list".into();
    }
    report.findings = findings;
    report.evidence = evidence;
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// The files a run wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// `report.json`.
    pub json: PathBuf,
    /// `junit.xml`.
    pub junit: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
}

/// Writes the three reports into `dir` (created).
pub fn write_reports(report: &RunReport, dir: &Path) -> Result<Written, RunError> {
    let io = |p: &Path, e: std::io::Error| RunError::Config(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let written =
        Written { json: dir.join("report.json"), junit: dir.join("junit.xml"), html: dir.join("report.html") };
    let json = crate::report::json::render(report).map_err(|e| RunError::Config(e.to_string()))?;
    for (path, bytes) in [
        (&written.json, json),
        (&written.junit, crate::report::junit::render(report).into_bytes()),
        (&written.html, crate::report::html::render(report).into_bytes()),
    ] {
        std::fs::write(path, bytes).map_err(|e| io(path, e))?;
    }
    Ok(written)
}

/// Every clause named by a case of any suite, for `yrdx conformance coverage`.
pub fn covered_clauses(
    suites_dir: &Path,
    vectors_dir: &Path,
    catalogue: &Catalogue,
) -> Result<BTreeSet<String>, suite::SuiteError> {
    let mut covered = BTreeSet::new();
    for s in suite::SUITES {
        if !suites_dir.join(s).is_dir() {
            continue;
        }
        for c in suite::load(suites_dir, s, vectors_dir, catalogue)? {
            covered.extend(c.def.requirements.iter().cloned());
        }
    }
    Ok(covered)
}
