//! The operators' web console in a real browser: a gateway with data (a plan, samplings, two
//! nonconforming results opening cases whose due dates are provisional, a SAMR package parked
//! with SAMR's reason, a refused submission, a calendar ending in four days), headless Chromium
//! presenting the operator's certificate from an NSS database, every page loaded and its content
//! asserted; a partner's certificate and no certificate refused; a resend only with its
//! confirmation. Screenshots of each page are written to `$YRDX_CONSOLE_SCREENSHOTS` when set
//! (docs/screenshots/ was made so).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::{self, pki_types::pem::PemObject};
use yrdx_adapters::{Partner, Record};
use yrdx_conformance::samr_simulator::IntakeOptions;
use yrdx_proto::v1::{CaseAction, CaseEvent, CaseFeedback, SubmitRequest};
use yrdx_tests::log::JsonLog;
use yrdx_tests::records::{example_plan as plan, example_result as result, example_sampling as sampling};
use yrdx_tests::samr::{until_all_accepted, TestSamr};
use yrdx_tests::{wait_for, TestGateway};

/// What the test CA is called (the browser's certificate filter names it).
const TEST_CA: &str = "yrdx test CA";
/// SAMR's reason for the rejected package, with markup a page must never run.
const REASON: &str = "抽样单信息不完整 <script>alert('x')</script>";

const ONLY_2024: &str = "[[year]]\nyear = 2024\nholidays = [\"2024-01-01\", \"2024-02-10..2024-02-17\", \
    \"2024-04-04..2024-04-06\", \"2024-05-01..2024-05-05\", \"2024-06-10\", \"2024-09-15..2024-09-17\", \
    \"2024-10-01..2024-10-07\"]\nweekend_workdays = [\"2024-02-04\", \"2024-02-18\", \"2024-04-07\", \
    \"2024-04-28\", \"2024-05-11\", \"2024-09-14\", \"2024-09-29\", \"2024-10-12\"]\n";

fn accept(case_id: &str) -> Record {
    Record::CaseFeedback(CaseFeedback {
        case_id: case_id.into(),
        event: Some(CaseEvent {
            event_id: "FK-0001".into(),
            at: yrdx_proto::civil::parse_rfc3339("2024-12-27T16:00:00+08:00"),
            by_region: "320000".into(),
            action: CaseAction::Accept as i32,
            note: String::new(),
            amount: None,
        }),
    })
}

/// Waits up to 15 s for `f` to give a value.
async fn until<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for(what, Duration::from_secs(15), f).await
}

/// A TLS client for the console: the named development certificate, or none.
fn tls_client(g: &TestGateway, name: Option<&str>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls::pki_types::CertificateDer::pem_file_iter(g.pki.ca_file()).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match name {
        Some(name) => {
            let (cert, key) = g.pki.client_files(name);
            let chain =
                rustls::pki_types::CertificateDer::pem_file_iter(cert).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
            builder.with_client_auth_cert(chain, rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap()).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// One HTTP/1.1 exchange with the console: (status code, body), or why it failed.
async fn console_call(
    g: &TestGateway,
    name: Option<&str>,
    method: &str,
    path: &str,
    form: &str,
) -> Result<(u16, String), String> {
    let addr = g.running.as_ref().expect("running").console_addr.expect("[console] configured");
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let server = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(tls_client(g, name)))
        .connect(server, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    tls.write_all(request.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await.map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("not HTTP: {text:?}"))?;
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| head.to_string())?;
    Ok((code, body.to_string()))
}

/// Removes the test's Chromium policy file however the test ends.
struct PolicyFile(PathBuf);

impl Drop for PolicyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Chromium set up to present the operator's certificate to `origin`, by the project's own script
/// (which installs what is missing); `None` (a loud skip) when that cannot be done here.
fn browser(g: &TestGateway, home: &Path, policy: &Path, origin: &str) -> Option<PathBuf> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/console-browser-setup.sh");
    let (cert, key) = g.pki.client_files("ops");
    let out = Command::new("bash")
        .arg(script)
        .arg(home)
        .arg(cert)
        .arg(key)
        .arg(g.pki.ca_file())
        .arg(policy)
        .arg(origin)
        .arg(TEST_CA)
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

/// Loads `url` in headless Chromium: its DOM after loading, and a screenshot when `shot` is given.
fn load(chromium: &Path, home: &Path, url: &str, shot: Option<&Path>) -> String {
    let profile = home.join("profile");
    let run = |extra: &[String]| {
        Command::new("timeout")
            .arg("90")
            .arg(chromium)
            .env("HOME", home)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--window-size=1280,1000",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .output()
            .expect("chromium runs")
    };
    let o = run(&["--dump-dom".to_string()]);
    assert!(o.status.success(), "chromium on {url}: {}", String::from_utf8_lossy(&o.stderr));
    if let Some(shot) = shot {
        let o = run(&[format!("--screenshot={}", shot.display())]);
        assert!(o.status.success() && shot.exists(), "screenshot of {url}: {}", String::from_utf8_lossy(&o.stderr));
    }
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_see_every_page_in_a_browser_and_partners_are_refused() {
    let log = JsonLog::global();
    // SAMR's side: an intake that rejects the package holding JS-REJ-0002 with a reason carrying markup.
    let options =
        IntakeOptions { reject_containing: Some(("JS-REJ-0002".into(), REASON.into())), ..Default::default() };
    let samr = TestSamr::start("console", options).await;
    let dir = &samr.dir;
    std::fs::write(dir.join("calendar.toml"), ONLY_2024).unwrap();
    let extra = samr.section("\n[console]\nlisten = \"127.0.0.1:0\"\n");
    let calendar = format!("calendar_file = \"{}\"\n", dir.join("calendar.toml").display());
    let g = TestGateway::start_with(|t| format!("{calendar}{t}{extra}")).await;
    // Friday 2024-12-27, four days before the calendar's end: the banner shows, and a case's
    // five working days reach into 2025, which the calendar does not cover.
    g.set_time("2024-12-27T16:00:00+08:00");
    g.submit_one("shanghai", Partner::Canonical, "310000", "PLAN-1", plan()).await.unwrap();
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "S-1", sampling("JS-OK-0001")).await.unwrap();
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "S-2", sampling("JS-REJ-0002")).await.unwrap();
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "R-1", result("JS-OK-0001", "JSR-0001")).await.unwrap();
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "R-2", result("JS-REJ-0002", "JSR-0002")).await.unwrap();
    // Jiangsu, responsible for the first case, accepts it: a second stage with its own due date.
    let accepted_case = yrdx_gateway::workflow::case_opening::case_id_for("JS-OK-0001");
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "F-1", accept(&accepted_case)).await.unwrap();
    let refused =
        g.client("jiangsu").await.submit(SubmitRequest { document: b"{\"not\": \"a document\"}".to_vec() }).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::InvalidArgument);
    let store = g.store();
    let parked = until("a parked package", || store.samr_parked().unwrap().into_iter().next()).await;
    assert!(parked.reason.contains("<script>"), "SAMR's reason is kept as sent: {}", parked.reason);

    // Zhejiang holds a Receive stream open: connected while the pages load.
    let mut zhejiang = g.client("zhejiang").await;
    let _stream = zhejiang.receive(yrdx_proto::v1::ReceiveRequest { max_unacked: 1 }).await.unwrap();

    // Refusals, in Rust: no certificate fails the handshake; a partner's certificate gets no page.
    match console_call(&g, None, "GET", "/", "").await {
        Err(e) => assert!(e.contains("handshake") || e.contains("read"), "{e}"),
        Ok((code, body)) => panic!("a client without a certificate got {code}: {body}"),
    }
    let (code, body) = console_call(&g, Some("jiangsu"), "GET", "/", "").await.expect("TLS works for a partner");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("partner jiangsu is not an operator"), "{body}");
    assert!(!body.contains("JS-REJ-0002") && !body.contains("320000"), "no data for a partner: {body}");
    let (code, _) = console_call(&g, Some("jiangsu"), "GET", "/samr", "").await.unwrap();
    assert_eq!(code, 403);

    // A resend never happens without its confirmation.
    let resend_path = format!("/samr/packages/{}/resend", parked.number);
    for form in ["", "confirm=", "confirm=0123456789abcdef"] {
        let (code, body) = console_call(&g, Some("ops"), "POST", &resend_path, form).await.unwrap();
        assert_eq!(code, 403, "{form}: {body}");
        assert!(body.contains("nothing was changed"), "{body}");
    }
    let (code, _) = console_call(&g, Some("jiangsu"), "POST", &resend_path, "confirm=x").await.unwrap();
    assert_eq!(code, 403);
    assert_eq!(store.samr_parked().unwrap().len(), 1, "still parked after unconfirmed posts");
    let unconfirmed = log.with_message("console: resend posted without a valid confirmation; nothing changed");
    assert_eq!(unconfirmed.len(), 3, "each unconfirmed post is logged");
    assert_eq!(unconfirmed[0]["fields"]["operator"], "ops");

    // The browser.
    let port = g.running.as_ref().unwrap().console_addr.unwrap().port();
    let origin = format!("https://localhost:{port}");
    let home = dir.join("browser-home");
    let policy = PathBuf::from(format!("/etc/chromium/policies/managed/yrdx-console-test-{}.json", std::process::id()));
    let _policy = PolicyFile(policy.clone());
    let Some(chromium) = browser(&g, &home, &policy, &origin) else {
        eprintln!("SKIPPED: Chromium with the operator's certificate could not be set up here; the console's pages were not loaded in a browser (the refusals above were checked)");
        g.stop().await;
        return;
    };
    let shots = std::env::var_os("YRDX_CONSOLE_SCREENSHOTS").map(PathBuf::from);
    if let Some(s) = &shots {
        std::fs::create_dir_all(s).unwrap();
    }
    let page = |path: &str, shot: &str| {
        let shot = shots.as_ref().map(|s| s.join(format!("{shot}.png")));
        load(&chromium, &home, &format!("{origin}{path}"), shot.as_deref())
    };
    let banner_and_operator = |dom: &str, page: &str| {
        assert!(dom.contains("id=\"operator\">ops<"), "{page}: the operator's certificate was presented: {dom}");
        assert!(dom.contains("id=\"calendar-banner\""), "{page}: the calendar banner: {dom}");
        assert!(dom.contains("the working-day calendar ends on 2024-12-31 (4 days left)"), "{page}: {dom}");
        assert!(!dom.contains("<script"), "{page}: no script, and partner data never becomes one: {dom}");
    };

    let dom = page("/", "overview");
    banner_and_operator(&dom, "overview");
    for partner in ["jiangsu", "zhejiang", "beijing", "shanghai"] {
        assert!(dom.contains(&format!("id=\"partner-{partner}\"")), "{partner}: {dom}");
    }
    assert!(
        dom.contains("jiangsu: 6 submissions in the last hour, per minute"),
        "chart of jiangsu's submissions: {dom}"
    );
    assert!(dom.contains("invalid 1"), "the refused submission by reason: {dom}");
    let row =
        |p: &str| dom.split(&format!("id=\"partner-{p}\"")).nth(1).and_then(|r| r.split("</tr>").next()).unwrap_or("");
    assert!(row("zhejiang").contains(">yes</span> (1 connection)"), "{}", row("zhejiang"));
    assert!(row("beijing").contains(">no</span>"), "{}", row("beijing"));
    assert!(dom.contains("<svg class=\"chart\""), "{dom}");

    let dom = page("/cases", "cases");
    banner_and_operator(&dom, "cases");
    assert_eq!(
        store.records_of_kind(yrdx_adapters::RecordKind::CaseTransfer).unwrap().len(),
        2,
        "two nonconforming results, two cases"
    );
    for sample in ["JS-OK-0001", "JS-REJ-0002"] {
        let case = yrdx_gateway::workflow::case_opening::case_id_for(sample);
        assert!(dom.contains(&format!("href=\"/cases/{case}\">{case}</a>")), "{case}: {dom}");
    }
    assert!(dom.contains("2025-01-03 <span class=\"provisional\""), "provisional due date marked: {dom}");
    assert!(dom.contains("2 case(s)."), "{dom}");
    let filtered = page("/cases?region=330000", "cases-of-zhejiang");
    assert!(filtered.contains("0 case(s)."), "no case in Zhejiang: {filtered}");
    let filtered = page("/cases?plan=YRD-2024-WS-01&status=TRANSFERRED", "cases-by-plan-and-status");
    assert!(filtered.contains("1 case(s)."), "{filtered}");
    assert!(!filtered.contains(&format!(">{accepted_case}<")), "the accepted case is filtered out: {filtered}");
    let filtered = page("/cases?region=320000&status=open", "cases-of-jiangsu");
    assert!(filtered.contains("2 case(s)."), "{filtered}");

    let dom = page(&format!("/cases/{accepted_case}"), "case");
    banner_and_operator(&dom, "case");
    assert!(dom.contains("id=\"case-status\">ACCEPTED<"), "{dom}");
    assert!(
        dom.contains(
            "<strong>TRANSFER</strong> by 320000 → TRANSFERRED; stage due 2025-01-03 <span class=\"provisional\""
        ),
        "{dom}"
    );
    // 2024-12-27 + 10 working days, counted Monday–Friday past 2024: 2025-01-10.
    assert!(
        dom.contains("<strong>ACCEPT</strong> by 320000 → ACCEPTED; stage due 2025-01-10 <span class=\"provisional\""),
        "{dom}"
    );

    let dom = page("/samr", "samr");
    banner_and_operator(&dom, "samr");
    assert!(dom.contains("id=\"state-parked\">1<"), "{dom}");
    assert!(dom.contains(&parked.number), "{dom}");
    assert!(dom.contains("&lt;script&gt;alert"), "SAMR's reason is shown, escaped: {dom}");

    let dom = page(&format!("/samr/packages/{}", parked.number), "samr-package");
    banner_and_operator(&dom, "samr-package");
    assert!(dom.contains("id=\"package-state\">parked<"), "{dom}");
    assert!(dom.contains("抽样单信息不完整"), "{dom}");
    assert!(dom.contains("JS-REJ-0002"), "its records: {dom}");
    assert!(dom.contains("id=\"resend\""), "{dom}");

    let dom = page(&resend_path, "samr-resend-confirm");
    banner_and_operator(&dom, "samr-resend-confirm");
    assert!(dom.contains("id=\"confirm-resend\""), "{dom}");
    assert!(dom.contains("name=\"confirm\""), "{dom}");
    assert_eq!(store.samr_parked().unwrap().len(), 1, "showing the confirmation changes nothing");

    let dom = page("/plans", "plans");
    banner_and_operator(&dom, "plans");
    assert!(dom.contains("id=\"plan-YRD-2024-WS-01\""), "{dom}");
    assert!(dom.contains("<svg class=\"bar\""), "{dom}");
    assert!(dom.contains("E_BIKE_LITHIUM_BATTERY"), "{dom}");

    let dom = page("/calendar", "calendar");
    banner_and_operator(&dom, "calendar");
    assert!(dom.contains("id=\"covered-years\">2024<"), "{dom}");
    assert!(dom.contains("id=\"days-left\">4<"), "{dom}");
    assert!(dom.contains("2025-01-03 <span class=\"provisional\""), "{dom}");

    // The confirmed resend, with the token of a confirmation form: done once, and SAMR accepts it.
    let (code, form) = console_call(&g, Some("ops"), "GET", &resend_path, "").await.unwrap();
    assert_eq!(code, 200, "{form}");
    let token = form.split("name=\"confirm\" value=\"").nth(1).and_then(|s| s.split('"').next()).expect("token");
    let (code, done) = console_call(&g, Some("ops"), "POST", &resend_path, &format!("confirm={token}")).await.unwrap();
    assert_eq!(code, 200, "{done}");
    assert!(done.contains("is queued for SAMR again (by operator ops)"), "{done}");
    let requeued = log.with_message("parked SAMR package requeued");
    assert_eq!(requeued.len(), 1, "logged once, like the Admin call");
    assert_eq!(requeued[0]["fields"]["operator"], "ops");
    assert_eq!(requeued[0]["fields"]["number"], parked.number.as_str());
    assert_eq!(requeued[0]["fields"]["via"], "console");
    let (code, again) = console_call(&g, Some("ops"), "POST", &resend_path, &format!("confirm={token}")).await.unwrap();
    assert_eq!(code, 403, "a confirmation is used once: {again}");
    until_all_accepted("the resent package's acceptance", Duration::from_secs(15), &store).await;
    g.stop().await;
}
