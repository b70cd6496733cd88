//! `yrdx translate` and `yrdx validate` as a user runs them: exit codes, stdout, stderr.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn yrdx(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_yrdx"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("yrdx runs");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn vector(name: &str) -> String {
    format!("{}/../conformance/vectors/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `yrdx translate --from FROM --to TO` of one conformance vector, without fixed values.
fn translate_vector(from: &str, to: &str, name: &str) -> Output {
    yrdx(&["translate", "--from", from, "--to", to, &vector(name)], None)
}

const FIXED: [&str; 4] = ["--message-id", "YRDX-20240312-000046", "--sent-at", "2024-03-12T14:30:00+08:00"];

#[test]
fn translates_the_examples_byte_for_byte() {
    let mut args = vec!["translate", "--from", "jiangsu", "--to", "zhejiang"];
    args.extend(FIXED);
    let sampling = vector("jiangsu/valid/example-sampling.json");
    args.push(&sampling);
    let out = yrdx(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, std::fs::read(vector("zhejiang/valid/example-sampling.xml")).unwrap());
    assert!(out.stderr.is_empty(), "nothing is lost between Jiangsu and Zhejiang");
}

#[test]
fn reads_standard_input_and_reports_losses_on_stderr() {
    let bytes = std::fs::read(vector("zhejiang/valid/example-inspection.xml")).unwrap();
    let mut args = vec!["translate", "--from", "zhejiang", "--to", "beijing"];
    args.extend(FIXED);
    let out = yrdx(&args, Some(&bytes));
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].contains("items[0]") && lines[1].contains("items[1]"), "{stderr}");
}

#[test]
fn invalid_input_exits_1_with_every_problem() {
    let out = translate_vector("jiangsu", "zhejiang", "jiangsu/invalid/second-record-problems.json");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing is written");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("DATA[1].BCYDWXYDM") && stderr.contains("DATA[1].CYSL"), "{stderr}");
}

#[test]
fn a_target_that_cannot_take_the_record_exits_2() {
    let out = translate_vector("canonical", "beijing", "canonical/valid/sampling-offline.json");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OFFLINE"));
    let out = translate_vector("canonical", "beijing", "canonical/valid/risk-signal.json");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn usage_errors_exit_64() {
    assert_eq!(yrdx(&["translate", "--from", "anhui", "--to", "jiangsu"], None).status.code(), Some(64));
    assert_eq!(yrdx(&["translate", "--to", "jiangsu"], None).status.code(), Some(64));
    assert_eq!(
        yrdx(&["translate", "--from", "jiangsu", "--to", "zhejiang", "--sent-at", "yesterday"], None).status.code(),
        Some(64)
    );
    assert_eq!(
        yrdx(&["translate", "--from", "jiangsu", "--to", "zhejiang", "/no/such/file"], None).status.code(),
        Some(64)
    );
    assert_eq!(yrdx(&["frobnicate"], None).status.code(), Some(64));
    assert_eq!(yrdx(&["--help"], None).status.code(), Some(0));
}

#[test]
fn samr_package_from_two_documents() {
    let out = yrdx(
        &[
            "translate",
            "--from",
            "zhejiang",
            "--to",
            "samr",
            "--sent-at",
            "2024-04-02T09:15:00+08:00",
            "--sequence",
            "1",
            &vector("zhejiang/valid/example-sampling.xml"),
            &vector("zhejiang/valid/example-inspection.xml"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let pkg = yrdx_adapters::samr::decode_package(&out.stdout, &Default::default()).unwrap();
    assert_eq!(pkg.header.number, "SJB-310000-20240402-0001");
    // An inspection without its sampling record cannot make a spot-check result.
    let out = translate_vector("zhejiang", "samr", "zhejiang/valid/example-inspection.xml");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn without_fixed_values_the_output_still_decodes() {
    let out = translate_vector("jiangsu", "beijing", "jiangsu/valid/example-sampling.json");
    assert_eq!(out.status.code(), Some(0));
    let doc = yrdx_adapters::Partner::Beijing.decode(&out.stdout, &Default::default()).unwrap();
    assert!(doc.envelope.message_id.starts_with("YRDX-"));
    assert_eq!(doc.envelope.sender, "310000");
}

#[test]
fn validate_reports_and_exits() {
    let ok = yrdx(&["validate", "--partner", "samr", &vector("samr/valid/example-ccjg.xml")], None);
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("SJB-310000-20240402-0001"));
    let bad = yrdx(&["validate", "--partner", "samr", &vector("samr/invalid/wrong-digest.xml")], None);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/SJB/BT/ZY"));
}

#[test]
fn many_files_show_progress_on_stderr_in_plain_lines_when_not_a_terminal() {
    let sampling = vector("jiangsu/valid/example-sampling.json");
    let run = |files: usize| {
        let mut args = vec!["translate", "--from", "jiangsu", "--to", "canonical"];
        args.extend(FIXED);
        args.extend(std::iter::repeat_n(sampling.as_str(), files));
        yrdx(&args, None)
    };
    // Twelve files, stderr a pipe: one line each time another tenth is decoded, nothing else.
    let out = run(12);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 10, "{stderr}");
    assert_eq!(lines[0], "translate: 16% (2/12 files)");
    assert_eq!(lines[4], "translate: 50% (6/12 files)");
    assert_eq!(lines[9], "translate: 100% (12/12 files)");
    // Stdout is the translated document alone: twelve records, no progress.
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("translate:"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one canonical JSON document");
    assert_eq!(doc["records"].as_array().map(Vec::len), Some(12), "{doc}");
    // Below ten files, stderr stays as it was: no progress.
    let out = run(9);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
