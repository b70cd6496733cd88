//! `yrdx store copy`: an embedded store moved whole (SQLite → SQLite always; SQLite → PostgreSQL
//! when a PostgreSQL server is reachable, else SKIPPED loudly), verified by counts and checksums.

use std::process::Command;
use yrdx_gateway::store::{LookupKeys, NewDelivery, SqliteStore, StoredRecord, Submission};

fn seeded(path: &std::path::Path) {
    let store = SqliteStore::open(path).expect("store");
    for i in 0..25 {
        let canonical = format!(r#"{{"sampleId":"S-{i}","planId":"P","samplingRegion":"320000"}}"#);
        store
            .commit(Submission {
                sender: "320000".into(),
                message_id: format!("M-{i}"),
                digest: format!("d-{i}"),
                document: vec![b'x'; 100],
                reply: vec![],
                records: vec![StoredRecord {
                    kind: yrdx_adapters::RecordKind::Sampling,
                    id: format!("S-{i}"),
                    keys: LookupKeys::from_canonical(&canonical),
                    record: yrdx_adapters::canonical::record_from_json(yrdx_adapters::RecordKind::Sampling, &canonical)
                        .unwrap(),
                }],
                deliveries: vec![NewDelivery {
                    recipient: "310000".into(),
                    message_id: format!("M-{i}"),
                    document: vec![1],
                }],
                samr: vec![],
                received_at_ms: 1,
            })
            .expect("commit");
    }
}

fn copy(from: &str, to: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_yrdx"))
        .args(["store", "copy", "--from", from, "--to", to])
        .output()
        .expect("yrdx runs")
}

fn dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("yrdx-store-copy-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

#[test]
fn an_embedded_store_copies_into_another_and_is_verified() {
    let d = dir("sqlite");
    let (from, to) = (d.join("from.sqlite"), d.join("to.sqlite"));
    seeded(&from);
    let out = copy(from.to_str().unwrap(), to.to_str().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("every table verified"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("messages") && l.contains(" 25 ") && l.matches(" 25").count() == 2),
        "{stdout}"
    );
    let copied = SqliteStore::open(&to).expect("target");
    assert_eq!(copied.depth("310000").expect("depth"), 25);
    // The copy carries the records' JSON only; the quota count's plan and region columns are
    // filled from it, so the copied store counts the same samples.
    assert_eq!(copied.sampling_count("P", "320000", "", 100).expect("count"), 25);
    assert_eq!(copied.sampling_count("P", "320000", "S-3", 100).expect("count"), 24);
    // Copying again into the now full target fails (exit 2) instead of mixing two stores.
    let again = copy(from.to_str().unwrap(), to.to_str().unwrap());
    assert_eq!(again.status.code(), Some(2), "{}", String::from_utf8_lossy(&again.stderr));
    // A missing source is a usage error naming it.
    let missing = copy(d.join("none.sqlite").to_str().unwrap(), d.join("x.sqlite").to_str().unwrap());
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("none.sqlite"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn an_embedded_store_copies_into_postgres() {
    let base = std::env::var("YRDX_TEST_POSTGRES").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into());
    let schema = format!("yrdx_copy_cli_{}", std::process::id());
    let created = Command::new("psql")
        .args([&base, "-qc", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")])
        .output();
    match created {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!("SKIPPED store copy into PostgreSQL: {}", String::from_utf8_lossy(&o.stderr));
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED store copy into PostgreSQL: psql not runnable ({e})");
            return;
        }
    }
    let d = dir("postgres");
    let from = d.join("from.sqlite");
    seeded(&from);
    let url = format!("{base}?options=-csearch_path%3D{schema}");
    let out = copy(from.to_str().unwrap(), &url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let _ = Command::new("psql").args([&base, "-qc", &format!("DROP SCHEMA {schema} CASCADE")]).output();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("every table verified"), "{stdout}");
    let _ = std::fs::remove_dir_all(&d);
}
