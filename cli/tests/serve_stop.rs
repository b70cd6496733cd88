//! `yrdx serve` stops on SIGTERM within its grace period (`shutdown_grace_secs`), with a partner's
//! Receive stream open, an idle TCP connection that never speaks TLS, and a submission of a
//! million-item document just answered.

mod common;

use common::{pki_init_on_free_port, serve, sigterm_and_wait, wait_listening};
use std::time::{Duration, Instant};
use yrdx_proto::v1::{ReceiveRequest, SubmitRequest};

/// User + system CPU seconds of a process (Linux `/proc`; 0 elsewhere), at 100 ticks a second.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_the_gateway_within_the_grace_period() {
    let (dir, port, config) = pki_init_on_free_port("serve-stop");
    // No console listener: its fixed port could be taken by another gateway on the machine.
    let text =
        std::fs::read_to_string(&config).expect("config").replace("[console]\nlisten = \"127.0.0.1:9465\"\n", "");
    std::fs::write(&config, format!("shutdown_grace_secs = 3\n{text}")).expect("config");
    let mut server = serve(&config);
    wait_listening(port, "the gateway").await;

    // An idle connection that never starts TLS.
    let _idle = std::net::TcpStream::connect(("127.0.0.1", port)).expect("idle connection");
    let pki = dir.join("pki");
    let read = |f: &str| std::fs::read_to_string(pki.join(f)).expect("pki file");
    let url = format!("https://127.0.0.1:{port}");
    let mut client = yrdx_pki::client::connect(&url, &read("ca.pem"), Some((read("jiangsu.pem"), read("jiangsu.key"))))
        .await
        .expect("connects");
    // A Receive stream left open.
    let mut stream = client.receive(ReceiveRequest { max_unacked: 1 }).await.expect("receive").into_inner();
    // A million-item document is refused by the value bound, not worked on for minutes. The
    // time to answer and the server's CPU time are printed for docs/benchmarks.md, not asserted.
    let numbers = format!("[{}0]", "0,".repeat(999_999));
    let cpu_before = cpu_secs(server.id());
    let sent = Instant::now();
    let err = client
        .submit(SubmitRequest { document: format!("{{\"HEAD\": {{}}, \"DATA\": {numbers}}}").into_bytes() })
        .await
        .expect_err("refused");
    let answered = sent.elapsed();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(err.message().contains("more than 200000 values"), "{err}");
    eprintln!(
        "a million-item document answered in {:.3} s, server CPU {:.2} s",
        answered.as_secs_f64(),
        cpu_secs(server.id()) - cpu_before
    );

    // A call that never ends: a Submit whose request stream never sends its message. Graceful
    // shutdown would wait for it for ever; the grace period ends the wait.
    let channel = yrdx_pki::client::channel(&url, &read("ca.pem"), Some((read("jiangsu.pem"), read("jiangsu.key"))))
        .await
        .expect("connects");
    let stuck = tokio::spawn(async move {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.map_err(|e| tonic::Status::unknown(e.to_string()))?;
        let request = tonic::Request::new(tokio_stream::pending::<SubmitRequest>());
        let codec = tonic_prost::ProstCodec::<SubmitRequest, yrdx_proto::v1::SubmitReply>::default();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static("/yrdx.v1.Exchange/Submit");
        grpc.client_streaming(request, path, codec).await.map(|_| ())
    });
    // Time for the call's headers to reach the server (an ordering wait, not a measurement).
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (status, took, stderr) = sigterm_and_wait(&mut server).await;
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(stderr.contains("still in flight 3 s after the stop signal"), "the grace period ended the wait: {stderr}");
    stuck.abort();
    // The stream ends (or fails) once the server has gone; it does not hang.
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.message()).await;
    eprintln!("stopped {:.2} s after SIGTERM", took.as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
}
