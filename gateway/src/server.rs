//! Assembles and runs the gateway: mutual TLS (a client certificate is required), the Exchange
//! service, gRPC health and reflection, and graceful shutdown.

use crate::config::Config;
use crate::services::exchange::ExchangeService;
use crate::state::Gateway;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tracing::info;
use yrdx_proto::v1::exchange_server::ExchangeServer;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A file of the configuration could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        message: String,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// SAMR docking is misconfigured.
    #[error(transparent)]
    Samr(#[from] crate::samr::SamrSetupError),
    /// The working-day calendar file is unusable.
    #[error(transparent)]
    Calendar(#[from] yrdx_proto::calendar::CalendarError),
    /// Reflection could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] crate::transport::TransportError),
    /// The operators' console could not start.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
}

/// A gateway running in the background.
pub struct RunningGateway {
    /// The address it listens on (the real port when configured with port 0).
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served, when `[metrics]` is configured.
    pub metrics_addr: Option<SocketAddr>,
    /// Where the operators' console is served (`https://…/`), when `[console]` is configured.
    pub console_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    handle: JoinHandle<Result<(), ServeError>>,
    reloader: Arc<crate::reload::Reloader>,
}

impl RunningGateway {
    /// Stops accepting, lets in-flight calls finish, closes streams and the store.
    pub async fn stop(self) -> Result<(), ServeError> {
        let _ = self.shutdown.send(true);
        match self.handle.await {
            Ok(r) => r,
            Err(e) => Err(ServeError::Io { path: "server task".into(), message: e.to_string() }),
        }
    }

    /// Waits until the server stops (after a shutdown signal).
    pub async fn wait(self) -> Result<(), ServeError> {
        match self.handle.await {
            Ok(r) => r,
            Err(e) => Err(ServeError::Io { path: "server task".into(), message: e.to_string() }),
        }
    }

    /// Reads the configuration file again and puts it in force without a restart (SIGHUP), or
    /// refuses it whole and keeps the running one.
    pub async fn reload(&self) -> Result<crate::reload::Reloaded, crate::reload::ReloadError> {
        self.reloader.reload().await
    }

    /// The reloader, for a signal handler that outlives this handle's borrow.
    pub fn reloader(&self) -> Arc<crate::reload::Reloader> {
        self.reloader.clone()
    }

    /// A sender that triggers graceful shutdown.
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Binds the configured address and starts serving, on the system clock.
pub async fn start(config: Config) -> Result<RunningGateway, ServeError> {
    start_with_clock(config, Arc::new(yrdx_clock::SystemClock)).await
}

/// [`start`] with a given clock (tests move it).
pub async fn start_with_clock(config: Config, clock: Arc<dyn yrdx_clock::Clock>) -> Result<RunningGateway, ServeError> {
    start_inner(config, clock, crate::faults::Faults::default()).await
}

/// [`start_with_clock`] with deliberate faults switched on, to prove that tests catch them.
#[cfg(feature = "fault-injection")]
pub async fn start_with_faults(
    config: Config,
    clock: Arc<dyn yrdx_clock::Clock>,
    faults: crate::faults::Faults,
) -> Result<RunningGateway, ServeError> {
    start_inner(config, clock, faults).await
}

async fn start_inner(
    config: Config,
    clock: Arc<dyn yrdx_clock::Clock>,
    faults: crate::faults::Faults,
) -> Result<RunningGateway, ServeError> {
    let config = Arc::new(config);
    let calendar = crate::reload::load_calendar(&config)?;
    let material = crate::reload::read_tls(&config)
        .map_err(|e| ServeError::Io { path: format!("{} ({})", e.key, e.path), message: e.message })?;
    crate::transport::raise_open_file_limit(config.limits.max_connections);
    let store = crate::store::open(&config.store_location(), &config.postgres.options()).await?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let pusher = crate::samr::SamrPusher::new(&config, store.clone(), clock.clone())?.map(|p| p.with_faults(faults));
    let mut gateway = Gateway::new(config.clone(), store, calendar, clock, shutdown_rx.clone());
    gateway.faults = faults;
    gateway.evidence = crate::receipts::Evidence::load(&config)
        .map_err(|e| ServeError::Io { path: "evidence".into(), message: e.to_string() })?;
    let gateway = Arc::new(gateway);
    let tls = Arc::new(crate::transport::TlsConfigHandle::new(crate::transport::server_config(
        &material,
        gateway.metrics.tls_refusals(),
    )?));
    let live = crate::transport::LiveConnections::new();
    let reloader = crate::reload::Reloader::new(gateway.clone(), tls.clone(), live.clone());
    // Before the first call: provisional due dates the calendar now covers are settled.
    crate::workflow::calendar_watch::start(gateway.clone(), shutdown_rx.clone()).await?;
    crate::workflow::overdue::spawn(gateway.clone(), shutdown_rx.clone());
    if let Some(evidence) = gateway.evidence.clone() {
        crate::receipts::spawn_head_signer(gateway.store.clone(), evidence, gateway.clock.clone(), shutdown_rx.clone());
    }
    if let Some(pusher) = pusher.map(|p| p.with_metrics(gateway.metrics.samr())) {
        let pusher = Arc::new(pusher);
        crate::leader::spawn(
            gateway.store.clone(),
            crate::store::LeaderRole::SamrPush,
            std::time::Duration::from_millis(300),
            shutdown_rx.clone(),
            move || {
                let pusher = pusher.clone();
                async move {
                    if let Err(e) = pusher.tick().await {
                        tracing::warn!(error = %e, "SAMR docking round failed");
                    }
                }
            },
        );
    }
    // Mailboxes filled by another replica wake this replica's streams at once.
    if let Some(mut signals) = gateway.store.mailbox_signals() {
        let (g, mut stop) = (gateway.clone(), shutdown_rx.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    signal = signals.recv() => match signal {
                        Ok(region) => g.wake(&region),
                        // Missed some: wake every stream, each looks at its own mailbox.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => g.wake_all(),
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    _ = stop.changed() => break,
                }
            }
        });
    }

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<ExchangeServer<ExchangeService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(yrdx_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(yrdx_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let metrics_addr = match &config.metrics {
        Some(m) => {
            let listener = tokio::net::TcpListener::bind(m.listen)
                .await
                .map_err(|e| ServeError::Io { path: format!("metrics.listen {}", m.listen), message: e.to_string() })?;
            let addr = listener
                .local_addr()
                .map_err(|e| ServeError::Io { path: format!("metrics.listen {}", m.listen), message: e.to_string() })?;
            let g = gateway.clone();
            let render: crate::metrics::Render = Arc::new(move |openmetrics| {
                let g = g.clone();
                Box::pin(async move {
                    let readings = crate::gauges::read(&g).await?;
                    g.metrics.render(&readings, openmetrics)
                })
            });
            crate::metrics::serve(listener, render, shutdown_rx.clone());
            info!(%addr, "metrics on http://{addr}/metrics");
            Some(addr)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Io { path: config.listen.to_string(), message: e.to_string() })?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError::Io { path: config.listen.to_string(), message: e.to_string() })?;
    let console_addr = match &config.console {
        Some(c) => Some(
            crate::console::start(
                c.listen,
                crate::console::data::ConsoleData::new(gateway.clone(), live.clone()),
                tls.clone(),
                shutdown_rx.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let max = config.transport_message_limit();
    let admin = yrdx_proto::v1::admin_server::AdminServer::new(crate::services::admin::AdminService::new(
        gateway.clone(),
        reloader.clone(),
    ));
    let records = yrdx_proto::v1::records_server::RecordsServer::new(crate::services::records::RecordsService::new(
        gateway.clone(),
    ))
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);
    let exchange = ExchangeServer::new(ExchangeService::new(gateway))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let limits = &config.limits;
    let secs = |s: u64| (s > 0).then(|| std::time::Duration::from_secs(s));
    let router = Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(secs(limits.keepalive_interval_secs))
        .http2_keepalive_timeout(secs(limits.keepalive_timeout_secs))
        // Outermost, so that a call refused for load is logged inside its trace too.
        .layer(crate::trace::TraceLayer)
        .layer(crate::transport::InFlightLayer::new(limits.max_requests_in_flight, limits.retry_after_secs))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(exchange)
        .add_service(admin)
        .add_service(records);
    let incoming = crate::transport::incoming(listener, tls, live, &config.limits, shutdown_rx.clone());
    let mut signal = shutdown_rx.clone();
    info!(%addr, "yrdx gateway listening (mutual TLS required)");
    let handle = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = signal.wait_for(|stop| *stop).await;
                info!("shutting down: no new calls, finishing in-flight ones");
            })
            .await?;
        Ok(())
    });
    Ok(RunningGateway { addr, metrics_addr, console_addr, shutdown: shutdown_tx, handle, reloader })
}

/// Installs the tracing subscriber (human or JSON lines, `RUST_LOG` filter, default `info`),
/// without span export; a process that has one already keeps it. `yrdx serve` uses
/// [`crate::otlp::install`], which adds the export `[tracing]` asks for.
pub fn init_logging(format: crate::config::LogFormat) {
    let _ = crate::otlp::install(format, &crate::config::TracingConfig::default());
}
