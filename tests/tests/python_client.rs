//! An independent gRPC client — Python grpcio with grpcio-reflection, installed from PyPI into a
//! virtual environment under `target/` by this test — lists the gateway's services by reflection
//! and calls Submit with a partner's certificate.

use std::path::PathBuf;
use std::process::Command;
use yrdx_adapters::Partner;
use yrdx_tests::{document, python_grpc_venv, vector_record, TestGateway};

#[tokio::test]
async fn python_grpcio_lists_services_by_reflection_and_submits() {
    let python = match python_grpc_venv() {
        Ok(p) => p,
        Err(e) => panic!("cannot set up the Python gRPC client (PyPI must be reachable): {e}"),
    };
    let g = TestGateway::start().await;
    let doc = g.dir.join("risk.json");
    std::fs::write(
        &doc,
        document(
            Partner::Jiangsu,
            "320000",
            "JS-PY-1",
            &[vector_record(Partner::Jiangsu, "jiangsu/valid/risk-signal.json")],
        ),
    )
    .unwrap();
    let (cert, key) = g.pki.client_files("jiangsu");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/reflect_and_submit.py");
    let address = g.url().trim_start_matches("https://").to_string();
    let ca = g.pki.ca_file();
    let python2 = python.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python2).arg(script).arg(address).arg(ca).arg(cert).arg(key).arg(doc).output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "python client failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"yrdx.v1.Exchange\""), "{stdout}");
    assert!(stdout.contains("\"grpc.health.v1.Health\""), "{stdout}");
    assert!(stdout.contains("\"messageId\": \"JS-PY-1\""), "{stdout}");
    assert!(stdout.contains("FX-2024-320000-0009"), "{stdout}");
    g.stop().await;
}
