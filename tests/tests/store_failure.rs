//! A store that fails answers UNAVAILABLE, acknowledges nothing it did not store, and recovers by
//! itself when the fault clears: the gateway's SQLite store on a small filesystem (a 4 MiB tmpfs)
//! that is then filled up. Needs permission to mount a tmpfs; says SKIPPED otherwise.

use std::time::Duration;
use yrdx_adapters::{Partner, Record};
use yrdx_proto::v1::{PlanChannel, SubmitRequest};
use yrdx_tests::{document, temp_dir, vector_record, TestGateway};

/// A plan padded with standards to about `bytes` of canonical JSON.
fn big_plan(id: &str, bytes: usize) -> Record {
    let mut r = vector_record(Partner::Canonical, "canonical/valid/plan.json");
    if let Record::Plan(p) = &mut r {
        p.plan_id = id.into();
        p.channel = PlanChannel::Online as i32;
        p.standards = (0..bytes / 24).map(|i| format!("GB/T {i:06}-2024")).collect();
    }
    r
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_unavailable_stores_nothing_and_recovers() {
    let mnt = temp_dir("store-fs");
    let mounted =
        std::process::Command::new("mount").args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"]).arg(&mnt).output();
    match mounted {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "SKIPPED the full-disk test: cannot mount a tmpfs ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED the full-disk test: mount not runnable ({e})");
            return;
        }
    }
    let _mount = Mount(mnt.clone());
    let store = mnt.join("yrdx.sqlite");
    let g =
        TestGateway::start_with(|t| t.replace("store = \"yrdx.sqlite\"", &format!("store = \"{}\"", store.display())))
            .await;
    let mut shanghai = g.client("shanghai").await;
    let submit = |id: &str, bytes: usize| SubmitRequest {
        document: document(Partner::Canonical, "310000", id, &[big_plan(&format!("YRD-2024-{id}"), bytes)]),
    };
    shanghai.submit(submit("FS-1", 1000)).await.expect("accepted while there is room");
    // Fill the filesystem to the last byte.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.flush();
    }
    // A submission now cannot be stored: UNAVAILABLE, with no store internals in the message.
    let err = shanghai.submit(submit("FS-2", 300_000)).await.expect_err("the disk is full");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert!(err.message().contains("nothing was stored"), "{err}");
    assert!(!err.message().to_lowercase().contains("sqlite"), "no store internals: {err}");
    // The fault clears: the same submission is accepted as new (nothing of it was kept before).
    std::fs::remove_file(&filler).expect("free the space");
    let mut accepted = None;
    for _ in 0..20 {
        match shanghai.submit(submit("FS-2", 300_000)).await {
            Ok(r) => {
                accepted = Some(r.into_inner());
                break;
            }
            Err(e) if e.code() == tonic::Code::Unavailable => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => panic!("after the fault cleared: {e}"),
        }
    }
    let reply = accepted.expect("recovered by itself once the space was free");
    assert!(!reply.duplicate, "the refused attempt stored nothing");
    let again = shanghai.submit(submit("FS-2", 300_000)).await.expect("duplicate").into_inner();
    assert!(again.duplicate);
    g.stop().await;
}
