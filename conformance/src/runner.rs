//! The suite runner: selects cases (`--run`/`--skip` globs, the partner), runs them one by one
//! showing progress, applies `--known-failing`, and writes the JSON, JUnit and HTML reports.

use crate::formats::{FormatsOutcome, FormatsTarget};
use crate::live::{LiveOutcome, LiveTarget};
use crate::report::{beijing_now, CaseReport, Input, Outcome, RunReport, REPORT_FORMAT};
use crate::requirements::Catalogue;
use crate::samr_check::{SamrOutcome, SamrTarget};
use crate::suite::{self, glob_match, LoadedCase, Placeholders};
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
    /// Cases expected to fail.
    pub known_failing: BTreeSet<String>,
    /// The target.
    pub target: Target,
    /// The inputs to show in the report (secrets already redacted).
    pub inputs: Vec<Input>,
    /// Show progress on stderr.
    pub progress: bool,
}

/// Reads a `--known-failing` file: one case id per line, `#` comments.
pub fn read_known_failing(path: &Path) -> Result<BTreeSet<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--known-failing {}: {e}", path.display()))?;
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
    let now = crate::live::now();
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

fn selected(id: &str, run: &[String], skip: &[String]) -> bool {
    (run.is_empty() || run.iter().any(|g| glob_match(g, id))) && !skip.iter().any(|g| glob_match(g, id))
}

/// Loads and runs a suite. `Err` is a broken configuration or suite (exit 2), before any case ran.
pub async fn run(opts: &RunOptions) -> Result<RunReport, String> {
    if !suite::SUITES.contains(&opts.suite.as_str()) {
        return Err(format!("--suite {}: expected one of {}", opts.suite, suite::SUITES.join(", ")));
    }
    let catalogue = Catalogue::load(&opts.catalogue)?;
    let cases = suite::load(&opts.suites_dir, &opts.suite, &opts.vectors_dir, &catalogue).map_err(|e| e.to_string())?;
    let known: BTreeSet<&String> = cases.iter().map(|c| &c.def.id).collect();
    if let Some(stale) = opts.known_failing.iter().find(|k| !known.contains(k)) {
        return Err(format!("--known-failing names {stale}, which is no case of the {} suite", opts.suite));
    }
    let (run_id, token) = run_token();
    let live = match &opts.target {
        Target::Live(t) => Some(&**t),
        _ => None,
    };
    let fill = placeholders(&token, live);
    if let Target::Samr(_) = &opts.target {
        crate::samr_check::start_numbering(1 + (token.bytes().map(u32::from).sum::<u32>() * 97) % 9000);
    }
    let (target_text, acting_as) = match &opts.target {
        Target::Formats(FormatsTarget::Adapters) => ("yrdx adapters".to_string(), String::new()),
        Target::Formats(FormatsTarget::Translator { command, format }) => {
            (format!("translator `{command}` (writes {format})"), String::new())
        }
        Target::Live(t) => (t.url.clone(), t.me.name.clone()),
        Target::Samr(t) => (t.url.clone(), String::new()),
    };
    let started_at = beijing_now();
    let started = Instant::now();
    let total = cases.len();
    let mut reports = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let report = run_one(case, opts, &fill).await;
        if opts.progress {
            let mark = match (report.outcome, report.known_failing) {
                (Outcome::Fail, true) => "fail (known)".to_string(),
                (Outcome::Pass, true) => "PASS, but listed as known failing".to_string(),
                (o, _) => o.as_str().to_string(),
            };
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "[{:>3}/{total}] {mark:<5} {} ({} ms)", n + 1, report.id, report.duration_ms);
            if matches!(report.outcome, Outcome::Fail | Outcome::Error) {
                if !report.message.is_empty() {
                    let _ = writeln!(err, "          {}", report.message);
                }
                for f in report.findings.iter().take(5) {
                    let _ = writeln!(
                        err,
                        "          {} at {}: expected {}, got {}",
                        f.assertion, f.location, f.expected, f.actual
                    );
                }
            }
        }
        reports.push(report);
    }
    let mut report = RunReport {
        report_format: REPORT_FORMAT.into(),
        run_id,
        tool: "yrdx conformance".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        suite: opts.suite.clone(),
        suite_version: suite_version(&opts.suites_dir, &opts.suite),
        target: target_text,
        acting_as,
        inputs: opts.inputs.clone(),
        started_at,
        duration_ms: started.elapsed().as_millis() as u64,
        summary: Default::default(),
        verdict: String::new(),
        cases: reports,
    };
    report.finish();
    Ok(report)
}

async fn run_one(case: &LoadedCase, opts: &RunOptions, fill: &Placeholders) -> CaseReport {
    let def = &case.def;
    let mut report = CaseReport {
        id: def.id.clone(),
        title: def.title.clone(),
        suite: case.suite.clone(),
        group: case.group.clone(),
        checks: def.checks.clone(),
        requirements: def.requirements.clone(),
        tags: def.tags.clone(),
        required: def.required,
        outcome: Outcome::Omit,
        known_failing: opts.known_failing.contains(&def.id),
        message: String::new(),
        findings: vec![],
        evidence: vec![],
        duration_ms: 0,
    };
    if !selected(&def.id, &opts.run, &opts.skip) {
        report.message = "deselected by --run/--skip".into();
        return report;
    }
    let started = Instant::now();
    let (outcome, message, findings, evidence) = match &opts.target {
        Target::Formats(t) => match crate::formats::run_case(case, t) {
            FormatsOutcome::Ran(f, e) => {
                (if f.is_empty() { Outcome::Pass } else { Outcome::Fail }, String::new(), f, e)
            }
            FormatsOutcome::Omit(m) => (Outcome::Omit, m, vec![], vec![]),
            FormatsOutcome::Error(m) => (Outcome::Error, m, vec![], vec![]),
        },
        Target::Live(t) => match crate::live::run_case(case, t, fill).await {
            LiveOutcome::Ran(f, e) => (if f.is_empty() { Outcome::Pass } else { Outcome::Fail }, String::new(), f, e),
            LiveOutcome::Skip(m) => (Outcome::Skip, m, vec![], vec![]),
            LiveOutcome::Omit(m) => (Outcome::Omit, m, vec![], vec![]),
            LiveOutcome::Error(m, e) => (Outcome::Error, m, vec![], e),
        },
        Target::Samr(t) => match crate::samr_check::run_case(case, t, fill).await {
            SamrOutcome::Ran(f, e) => (if f.is_empty() { Outcome::Pass } else { Outcome::Fail }, String::new(), f, e),
            SamrOutcome::Error(m, e) => (Outcome::Error, m, vec![], e),
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
pub fn write_reports(report: &RunReport, dir: &Path) -> Result<Written, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let written =
        Written { json: dir.join("report.json"), junit: dir.join("junit.xml"), html: dir.join("report.html") };
    let json = serde_json::to_vec_pretty(report).map_err(|e| e.to_string())?;
    for (path, bytes) in [
        (&written.json, json),
        (&written.junit, crate::junit::render(report).into_bytes()),
        (&written.html, crate::html::render(report).into_bytes()),
    ] {
        std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(written)
}

/// Every clause named by a case of any suite, for `yrdx conformance coverage`.
pub fn covered_clauses(
    suites_dir: &Path,
    vectors_dir: &Path,
    catalogue: &Catalogue,
) -> Result<BTreeSet<String>, String> {
    let mut covered = BTreeSet::new();
    for s in suite::SUITES {
        if !suites_dir.join(s).is_dir() {
            continue;
        }
        for c in suite::load(suites_dir, s, vectors_dir, catalogue).map_err(|e| e.to_string())? {
            covered.extend(c.def.requirements.iter().cloned());
        }
    }
    Ok(covered)
}
