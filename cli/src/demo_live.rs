//! `yrdx demo`: on a fresh machine, creates a development PKI and an embedded store in a state
//! folder, starts the gateway on localhost, and drives simulated partners over real mutual TLS
//! through a joint spot check (a plan, sampling in two regions, a nonconforming result) and a risk
//! signal, printing what each partner sent and received, in its own format, and the SAMR packages
//! that went out to a local SAMR intake with their receipts.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;
use yrdx_adapters::{DecodeLimits, Partner, Record};
use yrdx_conformance::live::{LiveTarget, PartnerProfile};
use yrdx_conformance::samr_simulator::{IntakeOptions, SamrIntake};
use yrdx_conformance::simulate::PartnerSimulator;
use yrdx_conformance::tls::ClientIdentity;
use yrdx_gateway::config::Config;
use yrdx_gateway::server;
use yrdx_pki as pki;
use yrdx_proto::civil::parse_rfc3339;
use yrdx_proto::v1::*;

const JIANGSU_SAMPLING: &[u8] = include_bytes!("../../conformance/vectors/jiangsu/valid/example-sampling.json");
const JIANGSU_INSPECTION: &[u8] = include_bytes!("../../conformance/vectors/jiangsu/valid/example-inspection.json");
const JIANGSU_RISK: &[u8] = include_bytes!("../../conformance/vectors/jiangsu/valid/risk-signal.json");

/// The partners of the demo: (certificate name, region, format).
const PARTNERS: [(&str, &str, Partner); 4] = [
    ("shanghai", "310000", Partner::Canonical),
    ("jiangsu", "320000", Partner::Jiangsu),
    ("zhejiang", "330000", Partner::Zhejiang),
    ("beijing", "110000", Partner::Beijing),
];

fn first(bytes: &[u8], format: Partner) -> Result<Record, String> {
    format
        .decode(bytes, &DecodeLimits::default())
        .map_err(|e| e.to_string())?
        .records
        .into_iter()
        .next()
        .ok_or_else(|| "empty example".to_string())
}

fn plan() -> Record {
    Record::Plan(SpotCheckPlan {
        plan_id: "YRD-2024-WS-01".into(),
        title: "2024年长三角网络销售电动自行车用锂离子蓄电池联动抽查".into(),
        year: 2024,
        lead_region: "310000".into(),
        participants: ["310000", "320000", "330000", "110000"]
            .iter()
            .map(|r| PlanParticipant { region: r.to_string(), quota: 10 })
            .collect(),
        channel: PlanChannel::Online as i32,
        categories: vec![ProductCategory::EBikeLithiumBattery as i32],
        standards: vec!["GB/T 36972-2018".into()],
        sampling_deadline: yrdx_proto::Date::from_ymd(2024, 6, 30),
        published_at: parse_rfc3339("2024-03-01T09:00:00+08:00"),
    })
}

fn zhejiang_sampling(js: &Record) -> Record {
    let mut r = js.clone();
    if let Record::Sampling(s) = &mut r {
        s.sample_id = "ZJ2024WS0102-0003".into();
        s.sampling_region = "330000".into();
        s.sampling_org = "浙江省产品质量安全科学研究院".into();
        s.sampled_on = yrdx_proto::Date::from_ymd(2024, 3, 14);
        if let Some(shop) = &mut s.shop {
            shop.platform = "京东".into();
            shop.order_no = "JD2024031400981".into();
        }
    }
    r
}

fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = flat.chars().take(88).collect();
    if flat.chars().count() > 88 {
        format!("{cut}…")
    } else {
        cut
    }
}

/// Lets a simulated partner take its deliveries (answering case transfers addressed to it, as a
/// well-behaved partner does) and writes what it received.
async fn drain(sim: &mut PartnerSimulator, out: &mut String) -> Result<usize, String> {
    let received = sim.drain(Duration::from_millis(600)).await.map_err(|e| e.to_string())?;
    for d in &received {
        let kinds: Vec<String> = d.records.iter().map(|r| format!("{} {}", r.kind(), r.id())).collect();
        let _ = writeln!(
            out,
            "    ← {} ({} bytes, {}): {}",
            d.message_id,
            d.document.len(),
            sim.me.format,
            kinds.join(", ")
        );
        let _ = writeln!(out, "      {}", preview(&d.document));
        if let Some(answer) = &d.answered {
            let _ = writeln!(out, "    → {} answers in its own format: {answer} (ACCEPT)", sim.me.name);
        }
    }
    Ok(received.len())
}

/// Runs the live demonstration in `state_dir` (recreated); returns the account.
pub async fn run(state_dir: &Path) -> Result<String, String> {
    let _ = std::fs::remove_dir_all(state_dir);
    let dev = pki::init(state_dir, "127.0.0.1:0").map_err(|e| e.to_string())?;
    // SAMR's side: its own CA, an intake on localhost, and the gateway's client certificate for it.
    let samr_ca = pki::CertificateAuthority::new("SAMR demo CA").map_err(|e| e.to_string())?;
    let intake_cert = samr_ca.issue_server().map_err(|e| e.to_string())?;
    let gateway_cert = samr_ca.issue_client("urn:yrdx:gateway:310000", false).map_err(|e| e.to_string())?;
    let intake =
        SamrIntake::start(&intake_cert.cert_pem, &intake_cert.key_pem, &samr_ca.cert_pem, IntakeOptions::default())
            .await
            .map_err(|e| e.to_string())?;
    let samr_dir = state_dir.join("samr");
    std::fs::create_dir_all(&samr_dir).map_err(|e| e.to_string())?;
    for (name, text) in
        [("ca.pem", &samr_ca.cert_pem), ("gateway.pem", &gateway_cert.cert_pem), ("gateway.key", &gateway_cert.key_pem)]
    {
        std::fs::write(samr_dir.join(name), text).map_err(|e| e.to_string())?;
    }
    let mut toml = std::fs::read_to_string(&dev.config).map_err(|e| e.to_string())?;
    toml.push_str(&format!(
        "\n[samr]\nintake_url = \"{}\"\nserver_name = \"localhost\"\nca = \"samr/ca.pem\"\ncert = \"samr/gateway.pem\"\nkey = \"samr/gateway.key\"\nbatch_max_age_secs = 0\n",
        intake.url()
    ));
    std::fs::write(&dev.config, toml).map_err(|e| e.to_string())?;
    let config = Config::load(&dev.config).map_err(|e| e.to_string())?;
    // The demo's story happens in spring 2024: the gateway's clock says so, and due dates follow.
    let clock = std::sync::Arc::new(yrdx_clock::ManualClock::running(
        parse_rfc3339("2024-04-02T09:20:00+08:00").ok_or("bad demo time")?,
    ));
    let running = server::start_with_clock(config, clock).await.map_err(|e| e.to_string())?;
    let url = format!("https://127.0.0.1:{}", running.addr.port());
    let ca = std::fs::read_to_string(dev.ca_file()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    let _ = writeln!(out, "yrdx demo — state in {}", state_dir.display());
    let _ = writeln!(out, "  development PKI: CA, server certificate for localhost, client certificates for shanghai, jiangsu, zhejiang, beijing and operator ops");
    let _ = writeln!(
        out,
        "  gateway listening on {url} (mutual TLS required, SQLite store {})\n",
        dev.dir.join("yrdx.sqlite").display()
    );
    // Every partner is a conformance simulator: it submits in its own format, receives and
    // acknowledges, and answers case transfers addressed to it.
    let demo_time = parse_rfc3339("2024-04-03T10:00:00+08:00").ok_or("bad demo time")?;
    let mut sims = Vec::new();
    for (name, _, _) in PARTNERS {
        let (cert, key) = dev.client_files(name);
        let identity = ClientIdentity {
            cert_pem: std::fs::read_to_string(cert).map_err(|e| e.to_string())?,
            key_pem: std::fs::read_to_string(key).map_err(|e| e.to_string())?,
        };
        let me = PartnerProfile::known(name, identity).ok_or_else(|| format!("{name}: not a known partner"))?;
        let target = LiveTarget::partner(url.clone(), "localhost".into(), ca.clone(), me);
        let mut sim = PartnerSimulator::connect(&target).await.map_err(|e| format!("{name}: {e}"))?;
        sim.event_time = Some(demo_time);
        sims.push(sim);
    }
    let js_sampling = first(JIANGSU_SAMPLING, Partner::Jiangsu)?;
    let zj_sampling = zhejiang_sampling(&js_sampling);
    let mut inspection = first(JIANGSU_INSPECTION, Partner::Jiangsu)?;
    if let Record::Inspection(i) = &mut inspection {
        i.sample_id = "ZJ2024WS0102-0003".into();
        i.report_no = "ZJZJ-2024-WS-00112".into();
        i.lab_name = "浙江省产品质量安全科学研究院".into();
    }
    let mut risk = first(JIANGSU_RISK, Partner::Jiangsu)?;
    if let Record::RiskSignal(r) = &mut risk {
        r.signal_id = "FX-2024-320000-0031".into();
        r.revision = 1;
        r.state = RiskState::New as i32;
    }
    // (who sends, message id, record, step title)
    let steps: Vec<(usize, &str, Record, &str)> = vec![
        (0, "SH-20240301-0001", plan(), "Shanghai (lead region) publishes the joint online spot-check plan"),
        (1, "JS-20240312-0045", js_sampling.clone(), "Jiangsu submits its sampling record"),
        (2, "ZJ-20240314-0007", zj_sampling, "Zhejiang submits its sampling record"),
        (
            2,
            "ZJ-20240402-0124",
            inspection,
            "Zhejiang's lab reports the result: NONCONFORMING (2 of 4 items fail); the producer is in Jiangsu, so a disposal case opens and is transferred there; Jiangsu, the responsible region, accepts it",
        ),
        (1, "JS-20240403-0009", risk, "Jiangsu raises a risk signal (HIGH, nationwide)"),
    ];
    let mut received = [0usize; 4];
    for (i, (who, message_id, record, title)) in steps.iter().enumerate() {
        let (name, _, format) = PARTNERS[*who];
        let _ = writeln!(out, "{}. {title}", i + 1);
        let (bytes, reply) =
            sims[*who].submit(std::slice::from_ref(record), message_id).await.map_err(|e| e.to_string())?;
        let _ = writeln!(out, "    → {name} sends {message_id} ({} bytes, {format}): {}", bytes.len(), preview(&bytes));
        let refs: Vec<String> = reply.records.iter().map(|r| format!("{} {}", r.kind, r.id)).collect();
        let _ = writeln!(out, "    ✓ accepted: {}", refs.join(", "));
        for w in &reply.warnings {
            let _ = writeln!(out, "    ! {w}");
        }
        for (j, (pname, _, _)) in PARTNERS.iter().enumerate() {
            let mut section = String::new();
            let n = drain(&mut sims[j], &mut section).await?;
            if n > 0 {
                let _ = writeln!(out, "  {pname} receives:");
                out.push_str(&section);
                received[j] += n;
            }
        }
        let _ = writeln!(out);
    }
    // SAMR docking: the spot-check result (CCJG) and the HIGH nationwide risk (FXBS) go out as
    // packages over mutual TLS; SAMR's intake checks GB18030, SM3 and numbering and answers receipts.
    let _ = writeln!(out, "SAMR docking (pushed over HTTPS with mutual TLS to {}):", intake.url());
    let mut accepted = Vec::new();
    for _ in 0..50 {
        accepted = intake.events().into_iter().filter(|e| e.accepted).collect();
        if accepted.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let store = yrdx_gateway::store::SqliteStore::open(&dev.dir.join("yrdx.sqlite")).map_err(|e| e.to_string())?;
    for pkg in store.samr_packages().map_err(|e| e.to_string())? {
        let receipt = intake.events().into_iter().find(|e| e.number.as_deref() == Some(pkg.number.as_str()));
        let answer = match receipt {
            Some(e) if e.accepted => "receipt JSZT=1 (accepted)".to_string(),
            Some(e) => format!("receipt JSZT=0: {}", e.reason),
            None => "no receipt yet".to_string(),
        };
        let _ =
            writeln!(out, "    ⇒ {} {} ({} GB18030 bytes): {answer}", pkg.number, pkg.package_type, pkg.bytes.len());
    }
    intake.stop();
    running.stop().await.map_err(|e| e.to_string())?;
    if accepted.len() < 2 {
        return Err(format!("{out}\nexpected SAMR to accept 2 packages (CCJG, FXBS), it accepted {}", accepted.len()));
    }
    let _ = writeln!(
        out,
        "deliveries received: shanghai {}, jiangsu {}, zhejiang {}, beijing {}",
        received[0], received[1], received[2], received[3]
    );
    // Expected: Shanghai (lead) both samples, the result and the risk; every participant the plan;
    // Jiangsu the case transfer; Zhejiang (origin) the case, Jiangsu's acceptance and the risk.
    let expected = [4, 2, 4, 1];
    if received != expected {
        return Err(format!("{out}\nexpected deliveries {expected:?}, got {received:?}"));
    }
    let _ = writeln!(out, "everything flowed.");
    Ok(out)
}
