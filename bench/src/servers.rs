//! The two servers under load, each a child process of the harness so its peak RSS and CPU time
//! can be read from `/proc`: the real gateway, and the baseline — a bare tonic Exchange server with
//! the same rustls mutual-TLS configuration whose Submit only returns.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use tokio_stream::Stream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};
use yrdx_gateway::config::Config;
use yrdx_proto::v1::exchange_server::{Exchange, ExchangeServer};
use yrdx_proto::v1::{
    AckReply, AckRequest, CheckReply, CheckRequest, Delivery, ReceiveRequest, SubmitReply, SubmitRequest,
};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The yrdx gateway.
    Gateway,
    /// The bare tonic baseline.
    Baseline,
}

impl Side {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Side::Gateway => "gateway",
            Side::Baseline => "baseline",
        }
    }
}

/// The baseline's Exchange: Submit answers at once; there is never anything to receive.
pub struct BaselineExchange;

#[tonic::async_trait]
impl Exchange for BaselineExchange {
    async fn submit(&self, _: Request<SubmitRequest>) -> Result<Response<SubmitReply>, Status> {
        // The request was received, decrypted and decoded by tonic already: that is the baseline.
        Ok(Response::new(SubmitReply::default()))
    }

    type ReceiveStream = Pin<Box<dyn Stream<Item = Result<Delivery, Status>> + Send>>;

    async fn receive(&self, _: Request<ReceiveRequest>) -> Result<Response<Self::ReceiveStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    async fn ack(&self, _: Request<AckRequest>) -> Result<Response<AckReply>, Status> {
        Ok(Response::new(AckReply { acknowledged: 0 }))
    }

    async fn check(&self, _: Request<CheckRequest>) -> Result<Response<CheckReply>, Status> {
        Ok(Response::new(CheckReply::default()))
    }

    async fn get_receipt(
        &self,
        _: Request<yrdx_proto::v1::GetReceiptRequest>,
    ) -> Result<Response<yrdx_proto::v1::GetReceiptReply>, Status> {
        Err(Status::unimplemented("the baseline keeps no receipts"))
    }
}

/// Serves the baseline with the TLS material and size limit of a gateway configuration; prints
/// `LISTENING addr` when ready, then serves until killed.
pub async fn serve_baseline(config: &Config) -> Result<(), String> {
    let read = |p: &Path| std::fs::read(config.resolve(p)).map_err(|e| format!("{}: {e}", p.display()));
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(read(&config.tls.cert)?, read(&config.tls.key)?))
        .client_ca_root(Certificate::from_pem(read(&config.tls.client_ca)?))
        .client_auth_optional(false);
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let max = config.transport_message_limit();
    let exchange = ExchangeServer::new(BaselineExchange).max_decoding_message_size(max).max_encoding_message_size(max);
    println!("LISTENING {addr}");
    Server::builder()
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .add_service(exchange)
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await
        .map_err(|e| e.to_string())
}

/// Serves the gateway of a configuration; prints `LISTENING addr` when ready.
pub async fn serve_gateway(config: Config) -> Result<(), String> {
    let running = yrdx_gateway::server::start(config).await.map_err(|e| e.to_string())?;
    println!("LISTENING {}", running.addr);
    running.wait().await.map_err(|e| e.to_string())
}

/// A server running as a child process.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `yrdx-bench serve-<side> --config CONFIG` and waits until it listens.
    pub fn start(side: Side, config: &Path) -> Result<ServerProcess, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg(format!("serve-{}", side.name()))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the {} server: {e}", side.name()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
        let addr = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("the {} server did not start: {line:?}", side.name()))?;
        Ok(ServerProcess { child, addr })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size in bytes and CPU seconds (user + system) so far, from `/proc`.
    pub fn usage(&self) -> (u64, f64) {
        proc_usage(self.pid())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak RSS (`VmHWM`, bytes) and CPU seconds of a process, from `/proc/<pid>/{status,stat}`.
pub fn proc_usage(pid: u32) -> (u64, f64) {
    let hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start after the last ')'.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / CLOCK_TICKS)
        })
        .unwrap_or(0.0);
    (hwm, cpu)
}

/// Clock ticks per second of `/proc/<pid>/stat` (100 on Linux unless configured otherwise).
const CLOCK_TICKS: f64 = 100.0;
