//! `yrdx demo` (live): the README's run command must work end to end.

#[test]
fn the_live_demo_flows() {
    let dir = std::env::temp_dir().join(format!("yrdx-demo-test-{}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_yrdx"))
        .args(["demo", "--state-dir"])
        .arg(&dir)
        .output()
        .expect("yrdx runs");
    let account = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "demo failed: {account}{}", String::from_utf8_lossy(&out.stderr));
    assert!(account.contains("everything flowed."), "{account}");
    assert!(account.contains("beijing receives:"), "{account}");
    assert!(
        account.contains("CCJG") && account.contains("FXBS") && account.contains("receipt JSZT=1 (accepted)"),
        "{account}"
    );
    assert!(account.contains("transferred to 320000"), "{account}");
    // Jiangsu's simulator answers the transfer in its own format; Zhejiang (the origin) gets it.
    assert!(account.contains("jiangsu answers in its own format: case_feedback"), "{account}");
    assert!(dir.join("pki/ca.pem").exists() && dir.join("yrdx.sqlite").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_offline_demo_runs_through_the_binary() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_yrdx")).args(["demo", "--offline"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SJB-310000-20240402-0001"));
}
