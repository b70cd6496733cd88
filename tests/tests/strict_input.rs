//! Strict input end to end (issue 14), against a real gateway over real mutual TLS: duplicate JSON
//! keys refused by path, a refusal's trailer bounded for default clients (Rust and Python grpcio)
//! with every problem available from `Exchange.Check`, documents of a million items refused by the
//! value and element bounds, problem collection capped, and canonical refusals naming what was
//! expected and what was found.

use std::path::PathBuf;
use std::process::Command;
use tonic::Code;
use tonic_types::StatusExt;
use yrdx_adapters::{Partner, Record};
use yrdx_proto::v1::{CheckReply, CheckRequest, SubmitReply, SubmitRequest};
use yrdx_tests::records::example_plan as plan;
use yrdx_tests::{document, python_grpc_venv, vector_record, TestGateway};

async fn submit(g: &TestGateway, who: &str, bytes: Vec<u8>) -> Result<SubmitReply, tonic::Status> {
    g.client(who).await.submit(SubmitRequest { document: bytes }).await.map(|r| r.into_inner())
}

async fn check(g: &TestGateway, who: &str, bytes: Vec<u8>) -> CheckReply {
    g.client(who).await.check(CheckRequest { document: bytes }).await.expect("check answers").into_inner()
}

/// `text` with `from` replaced once (fails when `from` is not there).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the document");
    text.replacen(from, to, 1)
}

/// The fields named by the BadRequest of a refusal.
fn violations(err: &tonic::Status) -> Vec<(String, String)> {
    err.get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| (v.field.clone(), v.description.clone())).collect())
        .unwrap_or_default()
}

/// 100 Jiangsu sampling records with two bad codes each (channel and product category).
fn many_problems() -> Vec<u8> {
    let sampling = vector_record(Partner::Jiangsu, "jiangsu/valid/example-sampling.json");
    let records: Vec<Record> = (0..100)
        .map(|i| {
            let mut r = sampling.clone();
            if let Record::Sampling(s) = &mut r {
                s.sample_id = format!("JS2024WS0102-{i:04}");
            }
            r
        })
        .collect();
    let text = String::from_utf8(document(Partner::Jiangsu, "320000", "JS-MANY-1", &records)).expect("UTF-8");
    assert!(text.contains("\"QD\": \"2\"") && text.contains("\"CPFL\": \"0102\""));
    text.replace("\"QD\": \"2\"", "\"QD\": \"7\"").replace("\"CPFL\": \"0102\"", "\"CPFL\": \"9999\"").into_bytes()
}

#[tokio::test]
async fn duplicate_keys_are_refused_by_path_and_nothing_is_stored() {
    let g = TestGateway::start().await;
    let clean = String::from_utf8(document(Partner::Canonical, "310000", "SH-DUP-1", &[plan()])).expect("UTF-8");
    let dup = edit(
        &clean,
        "\"planId\": \"YRD-2024-WS-01\",",
        "\"planId\": \"YRD-2024-WS-99\", \"planId\": \"YRD-2024-WS-01\",",
    );
    let err = submit(&g, "shanghai", dup.into_bytes()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let v = violations(&err);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "records[0].planId");
    assert!(v[0].1.contains("duplicate key 'planId'"), "{}", v[0].1);
    // Nothing was stored: the clean document under the same message id is new, not a duplicate.
    let reply = submit(&g, "shanghai", clean.into_bytes()).await.expect("clean plan accepted");
    assert!(!reply.duplicate);

    // Jiangsu: a second FSF in HEAD; two HEAD objects; the record id twice.
    let sampling = vector_record(Partner::Jiangsu, "jiangsu/valid/example-sampling.json");
    let js = String::from_utf8(document(Partner::Jiangsu, "320000", "JS-DUP-1", &[sampling])).expect("UTF-8");
    for (from, to, path) in [
        ("\"FSF\": \"320000\",", "\"FSF\": \"330000\", \"FSF\": \"320000\",", "HEAD.FSF"),
        ("\"DATA\": [", "\"HEAD\": {}, \"DATA\": [", "HEAD"),
        ("\"CYDBH\": \"JS2024WS0102-0007\",", "\"CYDBH\": \"X-1\", \"CYDBH\": \"JS2024WS0102-0007\",", "DATA[0].CYDBH"),
    ] {
        let err = submit(&g, "jiangsu", edit(&js, from, to).into_bytes()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        assert_eq!(violations(&err)[0].0, path, "{err}");
    }
    // Beijing.
    let report = vector_record(Partner::Beijing, "beijing/valid/example-report.json");
    let bj = String::from_utf8(document(Partner::Beijing, "110000", "BJ-DUP-1", &[report])).expect("UTF-8");
    let err = submit(
        &g,
        "beijing",
        edit(&bj, "\"from\": \"110000\",", "\"from\": \"310000\", \"from\": \"110000\",").into_bytes(),
    )
    .await
    .unwrap_err();
    assert_eq!(violations(&err)[0].0, "from", "{err}");
    g.stop().await;
}

#[tokio::test]
async fn many_problems_fit_a_bounded_trailer_and_check_lists_them_all() {
    let g = TestGateway::start().await;
    let err = submit(&g, "jiangsu", many_problems()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    // The encoded trailer (base64 of google.rpc.Status) stays within the configured 4096 bytes.
    let trailer = err.details().len().div_ceil(3) * 4;
    assert!(trailer <= 4096, "trailer of {trailer} bytes");
    let v = violations(&err);
    assert!(v.len() > 5, "the first problems are listed: {v:?}");
    assert_eq!(v[0].0, "DATA[0].QD");
    assert!(v[0].1.contains("record JS2024WS0102-0000"), "{}", v[0].1);
    let (last_field, last) = v.last().cloned().unwrap_or_default();
    assert_eq!(last_field, "/");
    assert!(last.contains("more problem(s) not listed") && last.contains("Exchange.Check"), "{last}");
    assert!(err.message().starts_with("200 problem(s) in the document; first: DATA[0].QD"), "{}", err.message());
    // Check returns every problem in the body, nothing stored.
    let reply = check(&g, "jiangsu", many_problems()).await;
    assert!(!reply.valid && !reply.truncated);
    assert_eq!(reply.problems.len(), 200, "{:?}", reply.problems.iter().map(|p| &p.path).collect::<Vec<_>>());
    let last = reply.problems.last().expect("problems");
    assert_eq!((last.path.as_str(), last.record_id.as_str()), ("DATA[99].CPFL", "JS2024WS0102-0099"));
    assert!(last.message.contains("'9999'"), "{}", last.message);
    // A valid document checks as valid and lists its records; Check stores nothing.
    let doc = document(Partner::Canonical, "310000", "SH-CHECK-1", &[plan()]);
    let reply = check(&g, "shanghai", doc.clone()).await;
    assert!(reply.valid && reply.problems.is_empty());
    assert_eq!(reply.records[0].id, "YRD-2024-WS-01");
    assert!(!submit(&g, "shanghai", doc).await.expect("accepted").duplicate);
    g.stop().await;
}

#[tokio::test]
async fn a_million_items_are_refused_by_the_bounds_and_problems_are_capped() {
    let g = TestGateway::start().await;
    let numbers = format!("[{}0]", "0,".repeat(999_999));
    let js = format!("{{\"HEAD\": {{}}, \"DATA\": {numbers}}}");
    for bytes in [js.clone().into_bytes(), js.into_bytes()] {
        let err = submit(&g, "jiangsu", bytes).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        let v = violations(&err);
        assert_eq!(v.len(), 1, "one refusal, not a million problems: {v:?}");
        assert!(v[0].0.starts_with("DATA["), "{v:?}");
        assert!(v[0].1.contains("more than 200000 values"), "{v:?}");
    }
    let xml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/vectors/zhejiang/valid/example-sampling.xml"
    ))
    .expect("vector");
    let zj = edit(&xml, "</Records>", &format!("{}</Records>", "<X/>".repeat(1_000_000)));
    let reply = check(&g, "zhejiang", zj.into_bytes()).await;
    assert_eq!(reply.problems.len(), 1, "{:?}", reply.problems);
    assert!(reply.problems[0].message.contains("more than 200000 elements"), "{:?}", reply.problems);
    // Within the bounds: 100 records of 40 unknown keys are 4000 problems, capped at 1000.
    let sampling = vector_record(Partner::Jiangsu, "jiangsu/valid/example-sampling.json");
    let text =
        String::from_utf8(document(Partner::Jiangsu, "320000", "JS-CAP-1", &vec![sampling; 100])).expect("UTF-8");
    let unknown: String = (0..40).map(|i| format!("\"Q{i}\": \"\", ")).collect();
    let text = text.replace("\"CYDBH\":", &format!("{unknown}\"CYDBH\":"));
    let reply = check(&g, "jiangsu", text.clone().into_bytes()).await;
    assert!(reply.truncated);
    assert_eq!(reply.problems.len(), 1001);
    assert!(reply.problems[1000].message.contains("stops after the first 1000"), "{:?}", reply.problems[1000]);
    let err = submit(&g, "jiangsu", text.into_bytes()).await.unwrap_err();
    assert!(err.message().starts_with("more than 1000 problems"), "{}", err.message());
    // The gateway still serves.
    submit(&g, "shanghai", document(Partner::Canonical, "310000", "SH-AFTER-1", &[plan()])).await.expect("accepted");
    g.stop().await;
}

#[tokio::test]
async fn canonical_refusals_name_the_field_what_was_expected_and_found() {
    let g = TestGateway::start().await;
    let clean = String::from_utf8(document(Partner::Canonical, "310000", "SH-YEAR-1", &[plan()])).expect("UTF-8");
    let bad = edit(&clean, "\"year\": 2024", "\"year\": \"MMXXIV\"");
    let err = submit(&g, "shanghai", bad.into_bytes()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let v = violations(&err);
    assert_eq!(v[0].0, "records[0].year", "{v:?}");
    assert!(v[0].1.contains("expected a 32-bit integer"), "{}", v[0].1);
    assert!(v[0].1.contains("found the string \"MMXXIV\""), "{}", v[0].1);
    assert!(!v[0].1.contains("untagged enum"), "{}", v[0].1);
    g.stop().await;
}

/// Python grpcio at its default metadata limits reads the refusal of a 200-problem batch (it saw
/// RESOURCE_EXHAUSTED when every problem went into the trailer), and reads every problem with
/// Check.
#[tokio::test]
async fn python_grpcio_at_default_limits_reads_a_many_problem_refusal() {
    let python = python_grpc_venv()
        .unwrap_or_else(|e| panic!("cannot set up the Python gRPC client (PyPI must be reachable): {e}"));
    let g = TestGateway::start().await;
    let doc = g.dir.join("many.json");
    std::fs::write(&doc, many_problems()).expect("write");
    let (cert, key) = g.pki.client_files("jiangsu");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/many_problems.py");
    let address = g.url().trim_start_matches("https://").to_string();
    let ca = g.pki.ca_file();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(script).arg(address).arg(ca).arg(cert).arg(key).arg(doc).output()
    })
    .await
    .expect("joins")
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "python client failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    let submit = &result["submit"];
    assert_eq!(submit["code"], "INVALID_ARGUMENT", "{stdout}");
    assert!(submit["trailer_bytes"].as_u64().is_some_and(|n| n > 0 && n < 8192), "{stdout}");
    assert_eq!(submit["first"][0], "DATA[0].QD", "{stdout}");
    assert_eq!(submit["last"][0], "/", "{stdout}");
    let check = &result["check"];
    assert_eq!(check["valid"], false, "{stdout}");
    assert_eq!(check["problems"], 200, "{stdout}");
    assert!(check["paths"].as_array().is_some_and(|p| p.iter().any(|x| x == "DATA[99].CPFL")), "{stdout}");
    g.stop().await;
}
