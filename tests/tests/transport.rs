//! Transport and identity hardening (issue 14, items 5–8), end to end against a real gateway over
//! real mutual TLS on loopback: silent and surplus connections, idle connections, calls over the
//! in-flight bound, certificates naming two identities, and the development PKI's validity.
//! Floods are small and bounded in count and time; 127.0.0.2 … play other machines.

use bytes::Bytes;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tonic::Code;
use yrdx_proto::v1::SubmitRequest;
use yrdx_tests::{tcp_from, TestGateway};

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A gateway with a `[limits]` section appended to its configuration.
async fn gateway_with_limits(limits: &str) -> TestGateway {
    TestGateway::start_with(|t| format!("{t}\n[limits]\n{limits}\n")).await
}

/// A call through the service: an empty document is judged (`INVALID_ARGUMENT`), so the call got
/// past transport, identity and the in-flight bound.
async fn judged(g: &TestGateway, who: &str) -> Result<(), tonic::Status> {
    match g.client(who).await.submit(SubmitRequest { document: b"{}".to_vec() }).await {
        Err(s) if s.code() == Code::InvalidArgument => Ok(()),
        Err(s) => Err(s),
        Ok(_) => Err(tonic::Status::internal("an empty document was accepted")),
    }
}

/// Whether the gateway closed `tcp` within `wait` (end of stream or reset), or left it open.
async fn closed_within(mut tcp: TcpStream, wait: Duration) -> (bool, TcpStream) {
    let mut buf = [0u8; 64];
    let closed = matches!(tokio::time::timeout(wait, tcp.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_)));
    (closed, tcp)
}

/// Opens `n` connections from `source` that never send a byte.
async fn silent(g: &TestGateway, source: IpAddr, n: usize) -> Vec<TcpStream> {
    let addr = g.running.as_ref().expect("running").addr;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(tcp_from(source, addr).await.expect("loopback connect"));
    }
    out
}

/// Checks concurrently which connections the gateway closed within `wait`: the flags, and the
/// connections it left open (still held by the caller).
async fn which_closed(conns: Vec<TcpStream>, wait: Duration) -> (Vec<bool>, Vec<TcpStream>) {
    let tasks: Vec<_> = conns.into_iter().map(|c| tokio::spawn(closed_within(c, wait))).collect();
    let (mut flags, mut open) = (Vec::new(), Vec::new());
    for t in tasks {
        let (closed, tcp) = t.await.expect("task");
        flags.push(closed);
        if !closed {
            open.push(tcp);
        }
    }
    (flags, open)
}

#[tokio::test]
async fn surplus_connections_are_closed_before_a_handshake_and_silent_ones_time_out() {
    let g =
        gateway_with_limits("handshake_timeout_secs = 6\nmax_connections = 25\nmax_connections_per_address = 10").await;
    // One address opens 15: 10 are admitted (handshake pending), 5 are closed at once.
    let started = Instant::now();
    let (flags, from_2) = which_closed(silent(&g, loopback(2), 15).await, Duration::from_millis(1000)).await;
    assert_eq!(flags.iter().filter(|c| **c).count(), 5, "per-address surplus closed at once: {flags:?}");
    let (flags, from_3) = which_closed(silent(&g, loopback(3), 10).await, Duration::from_millis(300)).await;
    assert!(flags.iter().all(|c| !c), "{flags:?}");
    // A partner from its own address is answered while 20 silent connections are held.
    let asked = Instant::now();
    let mut partner = g.client("jiangsu").await;
    let judged_now = partner.submit(SubmitRequest { document: b"{}".to_vec() }).await.expect_err("judged");
    assert_eq!(judged_now.code(), Code::InvalidArgument, "{judged_now:?}");
    eprintln!("partner answered in {:?} beside 20 silent connections", asked.elapsed());
    // 20 silent + the partner's = 21 of 25: a fourth address's 10 all get in, the last 6 each in
    // place of the oldest unfinished handshake (the first address's).
    let (flags, from_4) = which_closed(silent(&g, loopback(4), 10).await, Duration::from_millis(500)).await;
    assert!(flags.iter().all(|c| !c), "the newest are admitted: {flags:?}");
    let (flags, from_2) = which_closed(from_2, Duration::from_millis(500)).await;
    assert_eq!(flags.iter().filter(|c| **c).count(), 6, "the oldest handshakes made room: {flags:?}");
    // At the total, full of silent connections, a partner still gets in and is answered.
    let asked = Instant::now();
    judged(&g, "zhejiang").await.expect("a partner gets in at max_connections");
    eprintln!("partner answered in {:?} at max_connections", asked.elapsed());
    drop(partner);
    // Every silent connection is dropped by the handshake timeout (6 s), none left behind.
    let rest: Vec<TcpStream> = from_2.into_iter().chain(from_3).chain(from_4).collect();
    assert!(rest.len() >= 23, "{}", rest.len());
    let (flags, _) = which_closed(rest, Duration::from_secs(10)).await;
    assert!(flags.iter().all(|c| *c), "silent connections outlived the handshake timeout: {flags:?}");
    eprintln!("silent connections all closed {:?} after the first opened", started.elapsed());
    // Their places are free again.
    let (flags, _again) = which_closed(silent(&g, loopback(2), 10).await, Duration::from_millis(500)).await;
    assert!(flags.iter().all(|c| !c), "{flags:?}");
    judged(&g, "zhejiang").await.expect("served after the flood");
    g.stop().await;
}

/// An HTTP/2 connection over mutual TLS as `who`, its driver running in a task that ends when the
/// gateway closes the connection.
async fn h2_as(
    g: &TestGateway,
    who: &str,
    source: IpAddr,
) -> (h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<Result<(), h2::Error>>) {
    let tls = g.tls_from(who, source).await.expect("mutual TLS");
    let (send, connection) = h2::client::handshake(tls).await.expect("HTTP/2");
    (send, tokio::spawn(connection))
}

fn grpc_post(path: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("https://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request")
}

/// Starts a Submit whose message claims `len` bytes and sends only `sent` of them: the call is
/// held in flight, reading its body.
async fn held_submit(
    send: &mut h2::client::SendRequest<Bytes>,
    len: u32,
    sent: usize,
) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
    let mut ready = send.clone().ready().await.expect("stream available");
    let (response, mut body) = ready.send_request(grpc_post("/yrdx.v1.Exchange/Submit"), false).expect("request");
    let mut frame = vec![0u8];
    frame.extend_from_slice(&len.to_be_bytes());
    frame.resize(5 + sent, 0x20);
    body.send_data(Bytes::from(frame), false).expect("data");
    (response, body)
}

#[tokio::test]
async fn calls_over_the_in_flight_bound_are_refused_before_their_body() {
    let g = gateway_with_limits("max_requests_in_flight = 3\nmax_concurrent_streams = 5\nretry_after_secs = 2").await;
    let (mut send, _driver) = h2_as(&g, "jiangsu", LOCAL).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(held_submit(&mut send, 1_000_000, 16 * 1024).await);
    }
    // Let the gateway take all three (they wait for the rest of their bodies).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(send.current_max_send_streams(), 5, "MAX_CONCURRENT_STREAMS advertised");
    // A fourth call, body not even started, is answered at once: trailers-only RESOURCE_EXHAUSTED.
    let mut ready = send.clone().ready().await.expect("stream");
    let (response, _body) = ready.send_request(grpc_post("/yrdx.v1.Exchange/Submit"), false).expect("request");
    let response = tokio::time::timeout(Duration::from_secs(5), response).await.expect("answered").expect("response");
    assert_eq!(response.headers()["grpc-status"], "8");
    assert_eq!(response.headers()["retry-after"], "2");
    // A partner's ordinary client gets the same, with the metadata entry.
    let refused = judged(&g, "zhejiang").await.expect_err("over the bound");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(refused.metadata().get("retry-after").and_then(|v| v.to_str().ok()), Some("2"));
    assert!(refused.message().contains("max_requests_in_flight"), "{}", refused.message());
    // Abandoning the held calls frees their places.
    for (_, mut body) in held.drain(..) {
        body.send_reset(h2::Reason::CANCEL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match judged(&g, "zhejiang").await {
            Ok(()) => break,
            Err(s) if s.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(s) => panic!("not served after the held calls went: {s:?}"),
        }
    }
    g.stop().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_but_one_with_a_call_in_progress_is_kept() {
    let g = gateway_with_limits("idle_timeout_secs = 1").await;
    // A connection that makes one call and then says nothing is closed after about a second.
    let (send, idle_driver) = h2_as(&g, "jiangsu", LOCAL).await;
    let mut ready = send.clone().ready().await.expect("stream");
    let (response, mut body) = ready.send_request(grpc_post("/yrdx.v1.NoSuch/Call"), false).expect("request");
    body.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), true).expect("data");
    let response = response.await.expect("answered");
    assert_eq!(response.headers()["grpc-status"], "12", "an unknown method is still a call");
    // A second connection holds a call in progress (a body still being sent) past the timeout.
    let (mut busy, busy_driver) = h2_as(&g, "zhejiang", LOCAL).await;
    let (held_response, mut held_body) = held_submit(&mut busy, 100, 10).await;
    let closed = tokio::time::timeout(Duration::from_secs(6), idle_driver).await;
    assert!(closed.is_ok(), "the idle connection was not closed");
    // Well past the timeout for the busy one too (its call started a second ago or more).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!busy_driver.is_finished(), "a connection with a call in progress was closed");
    // The held call completes normally on its kept connection.
    held_body.send_data(Bytes::from(vec![0x20u8; 90]), true).expect("rest of the body");
    let answer = tokio::time::timeout(Duration::from_secs(5), held_response).await.expect("answered").expect("ok");
    assert_eq!(answer.status(), 200);
    drop(send);
    g.stop().await;
}

#[tokio::test]
async fn a_certificate_naming_two_registered_identities_is_refused() {
    let g = TestGateway::start().await;
    let ca = g.ca_pem();
    let two =
        g.ca.issue_client_uris(&["urn:yrdx:partner:jiangsu", "urn:yrdx:partner:zhejiang"], false).expect("certificate");
    let mut client = g.client_with(Some((two.cert_pem, two.key_pem)), &ca).await.expect("handshake");
    let refused = client.submit(SubmitRequest { document: b"{}".to_vec() }).await.expect_err("refused");
    assert_eq!(refused.code(), Code::PermissionDenied);
    for name in ["urn:yrdx:partner:jiangsu", "urn:yrdx:partner:zhejiang"] {
        assert!(refused.message().contains(name), "{}", refused.message());
    }
    // A partner and the operator in one certificate: refused just the same.
    let mixed =
        g.ca.issue_client_uris(&["urn:yrdx:operator:ops", "urn:yrdx:partner:jiangsu"], false).expect("certificate");
    let mut client = g.client_with(Some((mixed.cert_pem, mixed.key_pem)), &ca).await.expect("handshake");
    let refused = client.submit(SubmitRequest { document: b"{}".to_vec() }).await.expect_err("refused");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // An unregistered URI beside one registered identity: that identity counts.
    let one = g.ca.issue_client_uris(&["urn:example:other", "urn:yrdx:partner:jiangsu"], false).expect("certificate");
    let mut client = g.client_with(Some((one.cert_pem, one.key_pem)), &ca).await.expect("handshake");
    let judged = client.submit(SubmitRequest { document: b"{}".to_vec() }).await.expect_err("judged");
    assert_eq!(judged.code(), Code::InvalidArgument, "acted as jiangsu: {judged:?}");
    g.stop().await;
}

#[tokio::test]
async fn renewed_development_certificates_work_and_the_old_ones_still_do() {
    let mut g = TestGateway::start().await;
    let (cert, key) = g.pki.client_files("jiangsu");
    let old = (std::fs::read_to_string(&cert).expect("cert"), std::fs::read_to_string(&key).expect("key"));
    let renewed = yrdx_pki::renew(&g.dir).expect("renew");
    assert!(renewed.iter().any(|n| n == "jiangsu") && renewed.iter().any(|n| n == "server"), "{renewed:?}");
    assert_ne!(std::fs::read_to_string(&cert).expect("cert"), old.0);
    g.restart().await;
    judged(&g, "jiangsu").await.expect("renewed certificate and renewed server certificate");
    let mut client = g.client_with(Some(old), &g.ca_pem()).await.expect("same CA");
    let judged_old = client.submit(SubmitRequest { document: b"{}".to_vec() }).await.expect_err("judged");
    assert_eq!(judged_old.code(), Code::InvalidArgument);
    g.stop().await;
}
