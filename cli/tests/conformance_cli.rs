//! `yrdx conformance` as an operator runs it: against a real gateway over mutual TLS, writing the
//! three reports (the HTML one opened in a real browser), with exit codes 0/1/2, picking up a case
//! added as a data file, checking an external translator, and running the simulators.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use yrdx_tests::{temp_dir, TestGateway};

mod common;

use common::{free_port, wait_listening, yrdx};

/// `--cert CERT --key KEY`: the client identity a conformance command presents.
fn identity(cert: PathBuf, key: PathBuf) -> [std::ffi::OsString; 4] {
    ["--cert".into(), cert.into_os_string(), "--key".into(), key.into_os_string()]
}

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("yrdx runs")).await.expect("join")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The README's certification command: every credential from `yrdx pki init`'s folder.
fn readme_run(g: &TestGateway, partner: &str, out: &Path) -> Command {
    let mut cmd = yrdx();
    cmd.args(["conformance", "run", "--suite", "gateway", "--as", partner, "--gateway", &g.url()])
        .arg("--pki")
        .arg(g.dir.join("pki"))
        // The test gateway's visibility timeout (the default, 60, is the gateway's default).
        .args(["--visibility-timeout-secs", "2"])
        .arg("--out")
        .arg(out);
    cmd
}

/// Only the partner's own credentials, as flags: the cases needing a peer or the issuing CA skip.
fn gateway_run(g: &TestGateway, partner: &str, out: &Path) -> Command {
    let pki = g.dir.join("pki");
    let mut cmd = yrdx();
    cmd.args(["conformance", "run", "--suite", "gateway", "--as", partner, "--gateway", &g.url()])
        .args(identity(pki.join(format!("{partner}.pem")), pki.join(format!("{partner}.key"))))
        .arg("--ca")
        .arg(pki.join("ca.pem"))
        .arg("--out")
        .arg(out);
    cmd
}

/// The browser, installed by the project's own script when missing; `None` (a loud skip) when it
/// cannot be installed here.
fn browser() -> Option<PathBuf> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/ensure-chromium.sh");
    let out = Command::new("bash").arg(script).stderr(Stdio::inherit()).output().ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_suite_passes_and_writes_reports_that_open_in_a_browser() {
    let g = TestGateway::start_with(|t| t.replace("visibility_timeout_secs = 60", "visibility_timeout_secs = 2")).await;
    let out = temp_dir("reports");
    let o = run(readme_run(&g, "jiangsu", &out)).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("verdict pass"), "{}", text(&o));
    assert!(text(&o).contains("0 skip"), "every case the README's command runs: {}", text(&o));
    // Progress shows as cases run.
    assert!(String::from_utf8_lossy(&o.stderr).contains("pass  gateway.submit.plan"), "{}", text(&o));

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json")).expect("JSON");
    assert_eq!(json["report_format"], "yrdx-conformance-report/1");
    assert_eq!(json["verdict"], "pass");
    let cases = json["cases"].as_array().expect("cases");
    let ids: Vec<&str> = cases.iter().filter_map(|c| c["id"].as_str()).collect();
    assert!(ids.len() >= 15, "{ids:?}");
    let raw = std::fs::read_to_string(out.join("report.json")).expect("report");
    assert!(!raw.contains("PRIVATE KEY"), "keys never reach a report");
    assert!(raw.contains("<redacted>"));

    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("junit.xml");
    assert_eq!(junit.matches("<testcase ").count(), ids.len() + 1, "every case and the verdict");

    let html = out.join("report.html");
    match browser() {
        None => eprintln!("SKIPPED: no Chromium could be installed; the HTML report was not opened in a browser"),
        Some(chromium) => {
            let o = Command::new(chromium)
                .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
                .arg(format!("file://{}", html.display()))
                .output()
                .expect("chromium runs");
            let dom = String::from_utf8_lossy(&o.stdout);
            for id in &ids {
                assert!(dom.contains(&format!("id=\"{id}\"")), "the browser shows no section for {id}");
            }
            assert!(dom.contains("verdict"), "{dom}");
        }
    }
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_case_added_as_a_data_file_is_picked_up() {
    let g = TestGateway::start().await;
    let suites = temp_dir("suites");
    std::fs::create_dir_all(suites.join("gateway")).expect("dir");
    std::fs::write(
        suites.join("gateway/50-operator.toml"),
        r#"suite = "gateway"
group = "operator"
title = "A case an operator wrote"

[[case]]
id = "gateway.operator.second-plan"
title = "Two plans in a row are both accepted"
checks = "Written as data, without Rust."
requirements = ["gateway.acknowledgement"]

[case.records.plan]
vector = "canonical/valid/plan.json"
set = { planId = "OPS-${RUN}", leadRegion = "${REGION}", channel = "PLAN_CHANNEL_ONLINE", participants = [{ region = "${REGION}", quota = 1 }] }

[[case.step]]
do = "submit"
records = ["plan"]
expect = { status = "OK", records = ["plan OPS-${RUN}"] }
"#,
    )
    .expect("write case");
    let out = temp_dir("reports");
    let mut cmd = gateway_run(&g, "zhejiang", &out);
    cmd.arg("--suites").arg(&suites).args(["--run", "gateway.operator.*"]);
    let o = run(cmd).await;
    assert!(o.status.success(), "{}", text(&o));
    let report = std::fs::read_to_string(out.join("report.json")).expect("report");
    let json: serde_json::Value = serde_json::from_str(&report).expect("JSON");
    let case = json["cases"].as_array().expect("cases").iter().find(|c| c["id"] == "gateway.operator.second-plan");
    assert_eq!(case.expect("the new case ran")["outcome"], "pass");
    g.stop().await;
}

/// `yrdx translate` from canonical JSON to Jiangsu's format: a translator the formats suite
/// passes.
fn jiangsu_translator() -> String {
    let me = env!("CARGO_BIN_EXE_yrdx");
    format!("{me} translate --from canonical --to jiangsu --message-id X-1 --sent-at 2024-03-12T14:30:00+08:00")
}

/// `good` with one field written wrongly (the brand 恒力 as 恒利): the cases carrying it fail.
fn miswriting_the_brand(good: &str) -> String {
    format!("{good} | sed 's/\"SB\": \"恒力\"/\"SB\": \"恒利\"/'")
}

/// `yrdx conformance run --suite formats` for Jiangsu against the translator command
/// `translator`, the reports written to `out`.
fn run_formats(translator: &str, out: &Path) -> Output {
    yrdx()
        .args(["conformance", "run", "--suite", "formats", "--format", "jiangsu", "--translator", translator, "--out"])
        .arg(out)
        .output()
        .expect("runs")
}

#[test]
fn the_formats_suite_checks_an_external_translator() {
    let good = jiangsu_translator();
    let out = temp_dir("formats");
    let o = run_formats(&good, &out);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report")).expect("JSON");
    assert!(json["summary"]["pass"].as_u64().expect("count") >= 8, "{}", json["summary"]);

    // A translator that maps one field wrongly fails, at that field.
    let o = run_formats(&miswriting_the_brand(&good), &out);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report = std::fs::read_to_string(out.join("report.json")).expect("report");
    assert!(report.contains("\"location\": \"records.0.product.brand\""), "{}", text(&o));
}

#[test]
fn a_failing_report_opens_with_the_failing_case_and_the_requirement_matrix() {
    let me = env!("CARGO_BIN_EXE_yrdx");
    // A translator that writes one field wrongly: the cases carrying it fail, the others pass.
    let bad = miswriting_the_brand(&jiangsu_translator());
    let out = temp_dir("failing-report");
    let o = run_formats(&bad, &out);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report")).expect("JSON");
    // The binary that ran is named by its SHA-256.
    let sum = Command::new("sha256sum").arg(me).output().expect("sha256sum runs");
    let sum = String::from_utf8_lossy(&sum.stdout).split_whitespace().next().unwrap_or_default().to_string();
    assert_eq!(r["tool_sha256"], sum.as_str());
    // Every flag that shaped the run is listed, defaults included.
    let inputs = r["inputs"].as_array().expect("inputs");
    for flag in ["--translator", "--format", "--translator-timeout-secs", "--step-timeout-secs", "--vectors", "--out"] {
        assert!(inputs.iter().any(|i| i["name"] == flag), "{flag} not in {inputs:?}");
    }
    let cases = r["cases"].as_array().expect("cases");
    let failing: Vec<&str> = cases.iter().filter(|c| c["outcome"] == "fail").filter_map(|c| c["id"].as_str()).collect();
    assert!(!failing.is_empty() && failing.len() < cases.len(), "some cases fail, not all: {failing:?}");
    // The matrix: every clause of a failing case has a row naming that case as failed.
    let rows = r["requirements"].as_array().expect("requirements matrix");
    let failed_case = cases.iter().find(|c| c["id"] == failing[0]).expect("the failing case");
    for clause in failed_case["requirements"].as_array().expect("its clauses") {
        let row = rows.iter().find(|row| row["clause"] == *clause).unwrap_or_else(|| panic!("no row for {clause}"));
        assert!(
            row["cases"].as_array().expect("cells").iter().any(|c| c["id"] == failing[0] && c["outcome"] == "fail"),
            "{row}"
        );
    }
    match browser() {
        None => eprintln!("SKIPPED: no Chromium could be installed; the failing report was not shown in a browser"),
        Some(chromium) => {
            let html = format!("file://{}", out.join("report.html").display());
            let png = out.join("failing-report.png");
            let shot = Command::new(&chromium)
                .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1600"])
                .arg(format!("--screenshot={}", png.display()))
                .arg(&html)
                .output()
                .expect("chromium runs");
            let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot ({e}): {}", text(&shot)));
            assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "a real screenshot: {} bytes", bytes.len());
            let dom = Command::new(&chromium)
                .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
                .arg(&html)
                .output()
                .expect("chromium runs");
            let dom = String::from_utf8_lossy(&dom.stdout);
            // The first case the reader meets is a failing one.
            let first = dom.split("<a href=\"#").nth(1).and_then(|t| t.split('"').next()).unwrap_or_default();
            assert!(failing.contains(&first), "first case shown is {first}, failing: {failing:?}");
            let matrix = dom.split("Requirements × cases").nth(1).expect("the requirement matrix is shown");
            assert!(matrix.contains(failing[0]) && matrix.contains(">fail<"), "the matrix shows the failing case");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_without_the_peer_or_a_selection_is_incomplete_not_pass() {
    let g = TestGateway::start().await;
    let out = temp_dir("reports");
    let mut cmd = gateway_run(&g, "jiangsu", &out);
    cmd.args(["--run", "gateway.submit.plan", "--run", "gateway.negative.other-mailbox"]);
    let o = run(cmd).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("verdict incomplete"), "{}", text(&o));
    assert!(text(&o).contains("gateway.negative.other-mailbox — needs a second partner"), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report")).expect("JSON");
    assert_eq!(json["verdict"], "incomplete");
    assert!(json["verdict_reason"].as_str().expect("reason").contains("--run"), "{}", json["verdict_reason"]);
    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("junit");
    assert!(junit.contains("<failure message=\"verdict incomplete"), "{junit}");
    let html = std::fs::read_to_string(out.join("report.html")).expect("html");
    assert!(html.contains("verdict incomplete"), "{html}");

    // Every selected case skipped: nothing was checked, exit 2 naming why.
    let mut cmd = gateway_run(&g, "jiangsu", &out);
    cmd.args(["--run", "gateway.deliver.plan-to-participant", "--run", "gateway.deliver.sampling-to-lead"]);
    let o = run(cmd).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nothing was checked") && text(&o).contains("--peer-cert"), "{}", text(&o));
    // A --run glob matching no case.
    let mut cmd = gateway_run(&g, "jiangsu", &out);
    cmd.args(["--run", "gateway.sbumit.*"]);
    let o = run(cmd).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--run gateway.sbumit.* matches no case"), "{}", text(&o));
    // A certificate that is not the --as partner's.
    let pki = g.dir.join("pki");
    let mut cmd = yrdx();
    cmd.args(["conformance", "run", "--suite", "gateway", "--as", "jiangsu", "--gateway", &g.url(), "--pki"])
        .arg(&pki)
        .args(identity(pki.join("zhejiang.pem"), pki.join("zhejiang.key")))
        .arg("--out")
        .arg(&out);
    let o = run(cmd).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not the jiangsu partner"), "{}", text(&o));
    // The reports say so too.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report")).expect("JSON");
    assert_eq!(json["verdict"], "error");
    assert!(json["verdict_reason"].as_str().expect("reason").contains("not the jiangsu partner"), "{json}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("junit");
    assert!(junit.contains("<error message=\"verdict error: the tool or its configuration failed"), "{junit}");
    g.stop().await;
}

/// Writes an executable translator script into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write script");
    format!("python3 {}", path.display())
}

fn formats_run(translator: &str, format: &str, out: &Path, extra: &[&str]) -> Output {
    yrdx()
        .args(["conformance", "run", "--suite", "formats", "--format", format, "--translator", translator])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .expect("runs")
}

fn case<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["cases"].as_array().expect("cases").iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no case {id}"))
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report")).expect("JSON")
}

#[test]
fn broken_translators_fail_the_formats_suite() {
    let me = env!("CARGO_BIN_EXE_yrdx");
    let dir = temp_dir("translators");
    let out = dir.join("reports");
    let translate = |to: &str| {
        format!("{me} translate --from canonical --to {to} --message-id X-1 --sent-at 2024-03-12T14:30:00+08:00")
    };
    // The real translator passes every case, the batch cases too.
    let o = formats_run(&translate("jiangsu"), "jiangsu", &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let r = report(&out);
    assert_eq!(case(&r, "formats.jiangsu.batch.sampling")["outcome"], "pass", "{}", text(&o));
    let o = formats_run(&translate("canonical"), "canonical", &out, &[]);
    assert!(o.status.success(), "{}", text(&o));

    // Converts only the first record of a batch.
    let first_only = script(
        &dir,
        "first-only.py",
        "import json, subprocess, sys\n\
         doc = json.load(sys.stdin)\n\
         doc['records'] = doc['records'][:1]\n\
         r = subprocess.run(sys.argv[1:], input=json.dumps(doc).encode(), capture_output=True)\n\
         sys.stdout.buffer.write(r.stdout)\n\
         sys.exit(r.returncode)\n",
    );
    let o = formats_run(&format!("{first_only} {}", translate("jiangsu")), "jiangsu", &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&out);
    let batch = case(&r, "formats.jiangsu.batch.sampling");
    assert_eq!(batch["outcome"], "fail");
    let finding = &batch["findings"][0];
    assert_eq!(finding["location"], "records", "{finding}");
    assert_eq!(finding["expected"], "2 record(s)", "{finding}");
    assert_eq!(finding["actual"], "1 record(s)", "{finding}");
    assert_eq!(case(&r, "formats.jiangsu.valid.plan")["outcome"], "pass", "single records still translate");
    // Rerunning only what failed, with the translator fixed: those pass, and the run is
    // incomplete (the rest did not run this time), not pass.
    let rerun = out.join("report.json").display().to_string();
    let o = formats_run(&translate("jiangsu"), "jiangsu", &dir.join("rerun"), &["--rerun-failed", &rerun]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&dir.join("rerun"));
    assert_eq!(r["verdict"], "incomplete", "{}", text(&o));
    assert_eq!(case(&r, "formats.jiangsu.batch.sampling")["outcome"], "pass");
    assert_eq!(case(&r, "formats.jiangsu.valid.plan")["outcome"], "omit");

    // Sender and receiver swapped.
    let swapped = script(
        &dir,
        "swap.py",
        "import json, subprocess, sys\n\
         r = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True)\n\
         doc = json.loads(r.stdout)\n\
         doc['HEAD']['FSF'], doc['HEAD']['JSF'] = doc['HEAD']['JSF'], doc['HEAD']['FSF']\n\
         sys.stdout.write(json.dumps(doc, ensure_ascii=False))\n",
    );
    let o = formats_run(&format!("{swapped} {}", translate("jiangsu")), "jiangsu", &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&out);
    let plan = case(&r, "formats.jiangsu.valid.plan");
    assert_eq!(plan["outcome"], "fail");
    let f = &plan["findings"][0];
    assert_eq!(
        (f["location"].as_str(), f["expected"].as_str(), f["actual"].as_str()),
        (Some("envelope.sender"), Some("310000"), Some("320000")),
        "{f}"
    );

    // Garbage, for every target, canonical included: every applicable case fails, none passes.
    for format in ["canonical", "jiangsu", "zhejiang", "beijing"] {
        let o = formats_run("printf 'not a document'", format, &out, &[]);
        assert_eq!(o.status.code(), Some(1), "{format}: {}", text(&o));
        let r = report(&out);
        assert_eq!(r["summary"]["pass"], 0, "{format}: {}", r["summary"]);
        assert!(r["summary"]["fail"].as_u64().expect("count") >= 5, "{format}: {}", r["summary"]);
    }

    // A translator that never answers is killed after the timeout and fails the case.
    let o = formats_run(
        "sleep 30",
        "canonical",
        &out,
        &["--translator-timeout-secs", "1", "--run", "formats.canonical.valid.plan"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&out);
    let plan = case(&r, "formats.canonical.valid.plan");
    assert_eq!(plan["outcome"], "fail");
    assert!(
        plan["findings"][0]["actual"].as_str().expect("actual").contains("no answer within 1000 ms"),
        "{}",
        plan["findings"]
    );
}

#[test]
fn closed_pipes_do_not_panic_and_list_shows_the_cases() {
    // `yrdx conformance coverage | head -1`: the reader is gone before yrdx writes.
    for args in [
        &["conformance", "coverage"][..],
        &["conformance", "list", "--suite", "formats"][..],
        &["conformance", "run", "--suite", "formats", "--run", "formats.jiangsu.*"][..],
    ] {
        let out = temp_dir("pipes");
        let mut child =
            yrdx().args(args).current_dir(&out).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starts");
        drop(child.stdout.take());
        drop(child.stderr.take());
        let status = child.wait().expect("waits");
        assert_ne!(status.code(), Some(101), "{args:?} panicked");
        assert!(status.code().is_some(), "{args:?} was killed: {status:?}");
    }
    let o = yrdx().args(["conformance", "list", "--suite", "gateway"]).output().expect("runs");
    assert!(o.status.success(), "{}", text(&o));
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(listing.contains("gateway.deliver.sampling-to-lead\trequired\tneeds=peer"), "{listing}");
    let o = yrdx().args(["conformance", "list", "--suite", "tls", "--tag", "versions"]).output().expect("runs");
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(listing.contains("tls.version.1-1-refused") && !listing.contains("tls.client."), "{listing}");
}

#[test]
fn pki_init_refuses_to_replace_a_ca_without_force() {
    let dir = temp_dir("pki");
    let init = |force: bool| {
        let mut cmd = yrdx();
        cmd.args(["pki", "init", "--dir"]).arg(&dir);
        if force {
            cmd.arg("--force");
        }
        cmd.output().expect("runs")
    };
    let o = init(false);
    assert!(o.status.success(), "{}", text(&o));
    let ca = std::fs::read_to_string(dir.join("pki/ca.pem")).expect("ca");
    let o = init(false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(dir.join("pki/ca.pem")).expect("ca"), ca, "the CA is kept");
    let o = init(true);
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(std::fs::read_to_string(dir.join("pki/ca.pem")).expect("ca"), ca, "--force replaces it");
}

#[test]
fn a_broken_configuration_exits_2_and_coverage_lists_the_gaps() {
    let o = yrdx().args(["conformance", "run", "--suite", "formats", "--no-such-flag"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(2), "an unknown flag: {}", text(&o));
    let o = yrdx()
        .args(["conformance", "run", "--suite", "gateway", "--as", "jiangsu", "--gateway", "https://127.0.0.1:1"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--cert"), "{}", text(&o));
    let o = yrdx().args(["conformance", "run", "--suite", "nonsense"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = yrdx().args(["conformance", "coverage"]).output().expect("runs");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("clauses are checked by an assertion of some case"), "{}", text(&o));
    // Every clause of the catalogue is checked by an assertion of some case (the samr-push suite
    // asserts the last two: results joined to SAMR, SAMR docking with parking).
    assert!(text(&o).contains("Every clause is covered."), "{}", text(&o));
    assert!(!text(&o).contains("domain.4.3.results"), "{}", text(&o));
}

/// docs/conformance.md's SAMR-push certification: the gateway's `[samr]` section points at the
/// address yrdx listens on, with the development PKI's files; every credential comes from `--pki`.
#[tokio::test(flavor = "multi_thread")]
async fn the_samr_push_suite_certifies_a_gateway_from_the_command_line() {
    let port = free_port();
    let section = format!(
        "\n[samr]\nintake_url = \"https://127.0.0.1:{port}/v1/packages\"\nserver_name = \"localhost\"\nca = \"pki/ca.pem\"\ncert = \"pki/shanghai.pem\"\nkey = \"pki/shanghai.key\"\nbatch_max_age_secs = 0\nretry_base_secs = 1\n"
    );
    let g = TestGateway::start_with(|t| t + &section).await;
    let out = temp_dir("samr-push-reports");
    let mut cmd = yrdx();
    cmd.args(["conformance", "run", "--suite", "samr-push", "--as", "jiangsu", "--gateway", &g.url()])
        .arg("--pki")
        .arg(g.dir.join("pki"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--package-wait-secs", "20"])
        .arg("--out")
        .arg(&out);
    let o = run(cmd).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("verdict pass"), "{}", text(&o));
    assert!(text(&o).contains("0 skip"), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json")).expect("JSON");
    let inputs = json["inputs"].as_array().expect("inputs");
    assert!(inputs.iter().any(|i| i["name"] == "--operator-cert"), "{inputs:?}");
    assert!(inputs.iter().any(|i| i["name"] == "--listen"), "{inputs:?}");
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulators_run() {
    let g = TestGateway::start().await;
    let pki = g.dir.join("pki");
    let mut cmd = yrdx();
    cmd.args(["conformance", "simulate", "--partner", "beijing", "--gateway", &g.url(), "--listen-secs", "1"])
        .args(identity(pki.join("beijing.pem"), pki.join("beijing.key")))
        .arg("--ca")
        .arg(pki.join("ca.pem"));
    let o = run(cmd).await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(text(&o).matches("→ submitted").count(), 3, "{}", text(&o));
    g.stop().await;

    // The SAMR intake simulator, checked by the samr-intake suite.
    let dir = temp_dir("samr");
    let ca = yrdx_pki::CertificateAuthority::new("SAMR CA").expect("ca");
    let server = ca.issue_server().expect("server");
    let client = ca.issue_client("urn:yrdx:gateway:310000", false).expect("client");
    for (name, body) in [
        ("ca.pem", &ca.cert_pem),
        ("server.pem", &server.cert_pem),
        ("server.key", &server.key_pem),
        ("gw.pem", &client.cert_pem),
        ("gw.key", &client.key_pem),
    ] {
        std::fs::write(dir.join(name), body).expect("write");
    }
    let port = free_port();
    let mut intake = yrdx()
        .args(["conformance", "samr-intake", "--listen", &format!("127.0.0.1:{port}")])
        .args(identity(dir.join("server.pem"), dir.join("server.key")))
        .arg("--client-ca")
        .arg(dir.join("ca.pem"))
        .stdout(Stdio::null())
        .spawn()
        .expect("intake starts");
    wait_listening(port, "the intake").await;
    let mut cmd = yrdx();
    cmd.args([
        "conformance",
        "run",
        "--suite",
        "samr-intake",
        "--intake",
        &format!("https://127.0.0.1:{port}/v1/packages"),
    ])
    .args(identity(dir.join("gw.pem"), dir.join("gw.key")))
    .arg("--ca")
    .arg(dir.join("ca.pem"))
    .arg("--out")
    .arg(dir.join("reports"));
    let o = run(cmd).await;
    let _ = intake.kill();
    let _ = intake.wait();
    assert!(o.status.success(), "{}", text(&o));
}

/// An installed `yrdx`: the binary copied elsewhere, run from another folder, finds its suites,
/// vectors, catalogue and scenarios inside itself — no source path is baked in — and leaves
/// nothing behind in the temporary folder it unpacked them in.
#[test]
fn an_installed_binary_carries_its_suites_vectors_and_catalogue() {
    let source_tree = std::fs::canonicalize(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")).expect("tree");
    let install = temp_dir("installed");
    let binary = install.join("yrdx");
    std::fs::copy(env!("CARGO_BIN_EXE_yrdx"), &binary).expect("copy the binary");
    let bytes = std::fs::read(&binary).expect("binary");
    for material in ["conformance/suites", "conformance/vectors", "conformance/requirements.toml"] {
        let baked = source_tree.join(material).display().to_string();
        assert!(!bytes.windows(baked.len()).any(|w| w == baked.as_bytes()), "{baked} is baked into the binary");
    }
    let cwd = temp_dir("elsewhere");
    let tmp = temp_dir("tmp");
    let installed = |args: &[&str]| {
        Command::new(&binary).args(args).current_dir(&cwd).env("TMPDIR", &tmp).output().expect("installed yrdx runs")
    };
    let o = installed(&["conformance", "list", "--suite", "samr-push"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("samr-push.numbering\trequired"), "{}", text(&o));
    let o = installed(&["conformance", "coverage"]);
    assert!(o.status.success() && text(&o).contains("Every clause is covered."), "{}", text(&o));
    let o = installed(&["conformance", "run", "--suite", "formats", "--out", "reports"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("verdict pass"), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.join("reports/report.json")).expect("report")).expect("JSON");
    assert!(json["cases"].as_array().expect("cases").len() > 100, "every vector became a case");
    // The unpacked copy went with the command.
    let left: Vec<_> = std::fs::read_dir(&tmp).expect("tmp").filter_map(|e| e.ok()).map(|e| e.path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // --suites overrides the built-in suites (here: a folder with no gateway suite).
    let o = installed(&["conformance", "list", "--suite", "gateway", "--suites", "."]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    for d in [install, cwd, tmp] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// docs/conformance.md's partner certification: yrdx listens as the gateway, the partner's system
/// (here the simulator, as a stand-in) connects with its development certificate.
#[tokio::test(flavor = "multi_thread")]
async fn the_partner_endpoint_suite_certifies_a_partner_system_from_the_command_line() {
    let dir = temp_dir("partner-endpoint");
    let o = yrdx().args(["pki", "init", "--dir"]).arg(&dir).output().expect("pki init");
    assert!(o.status.success(), "{}", text(&o));
    let pki = dir.join("pki");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let suite = yrdx()
        .args(["conformance", "run", "--suite", "partner-endpoint", "--as", "zhejiang", "--listen", &listen])
        .arg("--pki")
        .arg(&pki)
        .args(["--partner-wait-secs", "20"])
        .arg("--out")
        .arg(dir.join("reports"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("suite starts");
    wait_listening(port, "yrdx as the gateway").await;
    let mut partner = yrdx()
        .args(["conformance", "simulate", "--partner", "zhejiang", "--gateway", &format!("https://{listen}")])
        .args(identity(pki.join("zhejiang.pem"), pki.join("zhejiang.key")))
        .arg("--ca")
        .arg(pki.join("ca.pem"))
        .args(["--listen-secs", "90"])
        .stdout(Stdio::null())
        .spawn()
        .expect("the partner's system starts");
    let o = tokio::task::spawn_blocking(move || suite.wait_with_output().expect("suite ends")).await.expect("join");
    let _ = partner.kill();
    let _ = partner.wait();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("7 pass, 0 fail") && text(&o).contains("verdict pass"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C (SIGINT) during a run writes the partial report, marked interrupted: the cases not run
/// are listed as such and the verdict is `incomplete` (exit 1), never `pass`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_writes_a_partial_report_marked_interrupted() {
    let g = TestGateway::start_with(|t| t.replace("visibility_timeout_secs = 60", "visibility_timeout_secs = 2")).await;
    let out = yrdx_tests::temp_dir("conformance-interrupt");
    let mut cmd = readme_run(&g, "jiangsu", &out);
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("yrdx runs");
    // Let a few cases run, then interrupt.
    tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().expect("kill runs");
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || child.wait().expect("exits")).await.expect("join");
    assert_eq!(status.code(), Some(1), "an interrupted run is incomplete (exit 1)");
    let r = report(&out);
    assert_eq!(r["verdict"], "incomplete", "{}", r["verdict_reason"]);
    assert!(r["interrupted"].as_str().is_some_and(|s| s.starts_with("interrupted (Ctrl-C)")), "{}", r["interrupted"]);
    let cases = r["cases"].as_array().expect("cases");
    let not_run = cases.iter().filter(|c| c["message"] == "not run: the run was interrupted").count();
    assert!(
        not_run >= 1 && not_run < cases.len(),
        "some cases ran, the rest are marked not run ({not_run} of {})",
        cases.len()
    );
    assert!(out.join("report.html").exists() && out.join("junit.xml").exists());
    g.stop().await;
}
