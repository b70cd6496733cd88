//! What the tests of the `yrdx` binary share: running it, a free port, a development PKI for
//! `yrdx serve`, and waiting until a started process listens.
// Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `yrdx` binary under test.
pub fn yrdx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_yrdx"))
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// `yrdx pki init` into a fresh folder tagged `tag`, listening on a free port: the folder, the
/// port and the configuration file.
pub fn pki_init_on_free_port(tag: &str) -> (PathBuf, u16, PathBuf) {
    let dir = yrdx_tests::temp_dir(tag);
    let port = free_port();
    let out = yrdx()
        .args(["pki", "init", "--dir"])
        .arg(&dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .output()
        .expect("pki init runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = dir.join("yrdx.toml");
    (dir, port, config)
}

/// `yrdx serve --config {config}`, its standard error piped for the test to read.
pub fn serve(config: &std::path::Path) -> Child {
    yrdx()
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts")
}

/// Waits (10 s at most) until something accepts TCP connections on loopback `port`; fails the
/// test saying `what` does not listen otherwise.
pub async fn wait_listening(port: u16, what: &str) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} does not listen on port {port}");
}

/// Sends SIGTERM to `server` (started by [`serve`]) and waits for it to exit, polled, with a
/// generous 60 s guard so that a hang fails instead of blocking the suite: its exit status, how
/// long it took after the signal, and what it wrote to standard error.
pub async fn sigterm_and_wait(server: &mut Child) -> (ExitStatus, Duration, String) {
    let signalled = Instant::now();
    let kill = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill runs");
    assert!(kill.success());
    let status = loop {
        if let Some(status) = server.try_wait().expect("wait") {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(60) {
            let _ = server.kill();
            panic!("the gateway did not stop within 60 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = signalled.elapsed();
    let mut stderr = String::new();
    if let Some(mut e) = server.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    (status, took, stderr)
}
