//! `yrdx conformance` as an operator runs it: against a real gateway over mutual TLS, writing the
//! three reports (the HTML one opened in a real browser), with exit codes 0/1/2, picking up a case
//! added as a data file, checking an external translator, and running the simulators.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use yrdx_tests::{temp_dir, TestGateway};

fn yrdx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_yrdx"))
}

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("yrdx runs")).await.expect("join")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn gateway_run(g: &TestGateway, partner: &str, out: &Path) -> Command {
    let pki = g.dir.join("pki");
    let mut cmd = yrdx();
    cmd.args(["conformance", "run", "--suite", "gateway", "--as", partner, "--gateway", &g.url()])
        .arg("--cert")
        .arg(pki.join(format!("{partner}.pem")))
        .arg("--key")
        .arg(pki.join(format!("{partner}.key")))
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
    let g = TestGateway::start().await;
    let out = temp_dir("reports");
    let o = run(gateway_run(&g, "jiangsu", &out)).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("verdict pass"), "{}", text(&o));
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
    assert_eq!(junit.matches("<testcase ").count(), ids.len());

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
    let source = yrdx_conformance::suite::default_dir();
    for s in ["gateway"] {
        std::fs::create_dir_all(suites.join(s)).expect("dir");
        for f in std::fs::read_dir(source.join(s)).expect("suite dir") {
            let f = f.expect("entry").path();
            std::fs::copy(&f, suites.join(s).join(f.file_name().expect("name"))).expect("copy");
        }
    }
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

#[test]
fn the_formats_suite_checks_an_external_translator() {
    let me = env!("CARGO_BIN_EXE_yrdx");
    let good =
        format!("{me} translate --from canonical --to jiangsu --message-id X-1 --sent-at 2024-03-12T14:30:00+08:00");
    let out = temp_dir("formats");
    let o = yrdx()
        .args(["conformance", "run", "--suite", "formats", "--format", "jiangsu", "--translator", &good, "--out"])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report")).expect("JSON");
    assert!(json["summary"]["pass"].as_u64().expect("count") >= 8, "{}", json["summary"]);

    // A translator that maps one field wrongly fails, at that field.
    let bad = format!("{good} | sed 's/\"SB\": \"恒力\"/\"SB\": \"恒利\"/'");
    let o = yrdx()
        .args(["conformance", "run", "--suite", "formats", "--format", "jiangsu", "--translator", &bad, "--out"])
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report = std::fs::read_to_string(out.join("report.json")).expect("report");
    assert!(report.contains("\"location\": \"records.0.product.brand\""), "{}", text(&o));
}

#[test]
fn a_broken_configuration_exits_2_and_coverage_lists_the_gaps() {
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
    assert!(text(&o).contains("clauses have at least one case"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulators_run() {
    let g = TestGateway::start().await;
    let pki = g.dir.join("pki");
    let mut cmd = yrdx();
    cmd.args(["conformance", "simulate", "--partner", "beijing", "--gateway", &g.url(), "--listen-secs", "1"])
        .arg("--cert")
        .arg(pki.join("beijing.pem"))
        .arg("--key")
        .arg(pki.join("beijing.key"))
        .arg("--ca")
        .arg(pki.join("ca.pem"));
    let o = run(cmd).await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(text(&o).matches("→ submitted").count(), 3, "{}", text(&o));
    g.stop().await;

    // The SAMR intake simulator, checked by the samr-intake suite.
    let dir = temp_dir("samr");
    let ca = yrdx_gateway::pki::CertificateAuthority::new("SAMR CA").expect("ca");
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
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut intake = yrdx()
        .args(["conformance", "samr-intake", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--cert")
        .arg(dir.join("server.pem"))
        .arg("--key")
        .arg(dir.join("server.key"))
        .arg("--client-ca")
        .arg(dir.join("ca.pem"))
        .stdout(Stdio::null())
        .spawn()
        .expect("intake starts");
    let mut up = false;
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(up, "the intake listens");
    let mut cmd = yrdx();
    cmd.args([
        "conformance",
        "run",
        "--suite",
        "samr-intake",
        "--intake",
        &format!("https://127.0.0.1:{port}/v1/packages"),
    ])
    .arg("--cert")
    .arg(dir.join("gw.pem"))
    .arg("--key")
    .arg(dir.join("gw.key"))
    .arg("--ca")
    .arg(dir.join("ca.pem"))
    .arg("--out")
    .arg(dir.join("reports"));
    let o = run(cmd).await;
    let _ = intake.kill();
    let _ = intake.wait();
    assert!(o.status.success(), "{}", text(&o));
}
