//! `yrdx serve` reloads on SIGHUP: a partner suspended in the file is refused at once while the
//! process and another partner's open Receive stream carry on; a broken file is refused (logged)
//! and the running configuration stays; a CRL revoking a partner closes its open stream and
//! refuses its handshakes, logged with the certificate's serial.

mod common;

use common::{pki_init_on_free_port, serve};
use std::io::Read;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use yrdx_proto::v1::{ReceiveRequest, SubmitRequest};

/// The status of an empty submission as `who` (`INVALID_ARGUMENT`: it got past identity).
async fn judged(url: &str, pki: &std::path::Path, who: &str) -> tonic::Code {
    let read = |f: String| std::fs::read_to_string(pki.join(f)).expect("pki file");
    let ca = read("ca.pem".into());
    let identity = Some((read(format!("{who}.pem")), read(format!("{who}.key"))));
    match yrdx_pki::client::connect(url, &ca, identity).await {
        Ok(mut c) => match c.submit(SubmitRequest { document: b"{}".to_vec() }).await {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        },
        Err(_) => tonic::Code::Unavailable,
    }
}

/// Polls `check` every 100 ms until it holds, for at most 30 s (a guard, not a measurement).
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(30), "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_registry_and_a_broken_file_is_refused() {
    let (dir, port, config) = pki_init_on_free_port("serve-reload");
    // No metrics or console listener: their fixed ports could be taken by another gateway on the machine.
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("[metrics]\nlisten = \"127.0.0.1:9464\"\n", "")
        .replace("[console]\nlisten = \"127.0.0.1:9465\"\n", "");
    std::fs::write(&config, &text).expect("config");
    let mut server = serve(&config);
    let log = Arc::new(Mutex::new(String::new()));
    if let Some(mut stderr) = server.stderr.take() {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock().unwrap_or_else(|p| p.into_inner()).push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    let url = format!("https://127.0.0.1:{port}");
    let pki = dir.join("pki");
    eventually("the gateway answers", || judged(&url, &pki, "zhejiang").then_some_code(tonic::Code::InvalidArgument))
        .await;
    let read = |f: &str| std::fs::read_to_string(pki.join(f)).expect("pki file");
    let mut jiangsu =
        yrdx_pki::client::connect(&url, &read("ca.pem"), Some((read("jiangsu.pem"), read("jiangsu.key"))))
            .await
            .expect("connects");
    let mut stream = jiangsu.receive(ReceiveRequest { max_unacked: 1 }).await.expect("receive").into_inner();
    let pid = server.id().to_string();
    let hup = || {
        let kill = Command::new("kill").args(["-HUP", &pid]).status().expect("kill runs");
        assert!(kill.success());
    };

    let suspended = text.replace(
        "identity = \"urn:yrdx:partner:zhejiang\"\n",
        "identity = \"urn:yrdx:partner:zhejiang\"\nsuspended = true\n",
    );
    std::fs::write(&config, &suspended).expect("config");
    hup();
    eventually("zhejiang is refused after SIGHUP", || {
        judged(&url, &pki, "zhejiang").then_some_code(tonic::Code::PermissionDenied)
    })
    .await;
    eventually("the reload is logged", || {
        let logged = log.lock().unwrap_or_else(|p| p.into_inner()).contains("configuration reloaded");
        async move { logged }
    })
    .await;

    std::fs::write(&config, suspended.replace("330000", "390000")).expect("config");
    hup();
    eventually("the broken file is refused", || {
        let refused = log.lock().unwrap_or_else(|p| p.into_inner()).contains("reload refused");
        async move { refused }
    })
    .await;
    assert!(log.lock().unwrap_or_else(|p| p.into_inner()).contains("partner[2].region"));
    // The running configuration stays: Zhejiang still suspended, Jiangsu served, its stream open.
    assert_eq!(judged(&url, &pki, "zhejiang").await, tonic::Code::PermissionDenied);
    assert_eq!(judged(&url, &pki, "jiangsu").await, tonic::Code::InvalidArgument);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.message()).await.is_err(),
        "the Receive stream opened before the reloads is still open"
    );
    assert!(server.try_wait().expect("wait").is_none(), "SIGHUP never stops the gateway");

    // Jiangsu's certificate revoked: after SIGHUP its open stream is closed, a new connection is
    // refused in the handshake, and both are logged with the certificate's serial.
    let ca = yrdx_pki::CertificateAuthority::from_pem(&read("ca.pem"), &read("ca.key")).expect("CA");
    let jiangsu_pem = read("jiangsu.pem");
    let serial = yrdx_pki::serial_hex_of_pem(&jiangsu_pem).expect("serial");
    std::fs::write(pki.join("ca.crl"), ca.crl(&[&jiangsu_pem], 24, 1).expect("CRL")).expect("CRL");
    std::fs::write(
        &config,
        suspended.replace("key = \"pki/server.key\"\n", "key = \"pki/server.key\"\ncrls = [\"pki/ca.crl\"]\n"),
    )
    .expect("config");
    hup();
    eventually("the revoked stream is closed", || {
        let closed = log.lock().unwrap_or_else(|p| p.into_inner()).contains("closing a connection no longer admitted");
        async move { closed }
    })
    .await;
    assert!(
        !matches!(tokio::time::timeout(Duration::from_secs(10), stream.message()).await, Ok(Ok(Some(_)))),
        "the revoked certificate's stream ended"
    );
    assert_ne!(judged(&url, &pki, "jiangsu").await, tonic::Code::InvalidArgument, "revoked: refused");
    eventually("the refusal is logged", || {
        let logged =
            log.lock().unwrap_or_else(|p| p.into_inner()).contains("client certificate refused in the TLS handshake");
        async move { logged }
    })
    .await;
    let text = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(
        text.matches(serial.as_str()).count() >= 2,
        "the serial {serial} is logged at closing and at refusal: {text}"
    );
    assert_eq!(judged(&url, &pki, "shanghai").await, tonic::Code::InvalidArgument);

    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let started = Instant::now();
    while server.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = server.kill();
            panic!("the gateway did not stop within 60 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `future` resolves to whether its code is `wanted`.
trait CodeIs: std::future::Future<Output = tonic::Code> + Sized {
    fn then_some_code(self, wanted: tonic::Code) -> impl std::future::Future<Output = bool> {
        async move { self.await == wanted }
    }
}

impl<F: std::future::Future<Output = tonic::Code>> CodeIs for F {}
