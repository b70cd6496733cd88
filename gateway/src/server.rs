//! Assembles and runs the gateway: mutual TLS (a client certificate is required), the Exchange
//! service, gRPC health and reflection, and graceful shutdown.

use crate::config::Config;
use crate::exchange::{ExchangeService, Gateway};
use crate::store::SqliteStore;
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
    Samr(#[from] crate::samr_push::SamrSetupError),
    /// The working-day calendar file is unusable.
    #[error(transparent)]
    Calendar(#[from] yrdx_proto::calendar::CalendarError),
    /// Reflection could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] crate::transport::TransportError),
}

/// A gateway running in the background.
pub struct RunningGateway {
    /// The address it listens on (the real port when configured with port 0).
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served, when `[metrics]` is configured.
    pub metrics_addr: Option<SocketAddr>,
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
    start_with_clock(config, Arc::new(crate::clock::SystemClock)).await
}

/// [`start`] with a given clock (tests move it).
pub async fn start_with_clock(
    config: Config,
    clock: Arc<dyn crate::clock::Clock>,
) -> Result<RunningGateway, ServeError> {
    start_inner(config, clock, crate::faults::Faults::default()).await
}

/// [`start_with_clock`] with deliberate faults switched on, to prove that tests catch them.
#[cfg(feature = "fault-injection")]
pub async fn start_with_faults(
    config: Config,
    clock: Arc<dyn crate::clock::Clock>,
    faults: crate::faults::Faults,
) -> Result<RunningGateway, ServeError> {
    start_inner(config, clock, faults).await
}

async fn start_inner(
    config: Config,
    clock: Arc<dyn crate::clock::Clock>,
    faults: crate::faults::Faults,
) -> Result<RunningGateway, ServeError> {
    let config = Arc::new(config);
    let calendar = crate::reload::load_calendar(&config)?;
    let material = crate::reload::read_tls(&config)
        .map_err(|e| ServeError::Io { path: format!("{} ({})", e.key, e.path), message: e.message })?;
    crate::transport::raise_open_file_limit(config.limits.max_connections);
    let store_path = config.resolve(&config.store);
    let store = Arc::new(SqliteStore::open(&store_path)?);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let pusher =
        crate::samr_push::SamrPusher::new(&config, store.clone(), clock.clone())?.map(|p| p.with_faults(faults));
    let mut gateway = Gateway::new(config.clone(), store, calendar, clock, shutdown_rx.clone());
    gateway.faults = faults;
    let gateway = Arc::new(gateway);
    let tls = Arc::new(crate::transport::TlsConfigHandle::new(crate::transport::server_config(
        &material,
        gateway.metrics.tls_refusals(),
    )?));
    let live = crate::transport::LiveConnections::new();
    let reloader = crate::reload::Reloader::new(gateway.clone(), tls.clone(), live.clone());
    // Before the first call: provisional due dates the calendar now covers are settled.
    crate::calendar_watch::start(gateway.clone(), shutdown_rx.clone())
        .await
        .map_err(|message| ServeError::Io { path: "calendar: settling provisional due dates".into(), message })?;
    crate::overdue::spawn(gateway.clone(), shutdown_rx.clone());
    if let Some(pusher) = pusher {
        let mut stop = shutdown_rx.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = pusher.tick().await {
                    tracing::warn!(error = %e, "SAMR docking round failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => {}
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
            let render: crate::metrics::Render =
                Arc::new(move |openmetrics| g.metrics.render(&crate::gauges::read(&g)?, openmetrics));
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
    let max = config.transport_message_limit();
    let admin = yrdx_proto::v1::admin_server::AdminServer::new(crate::admin::AdminService::new(
        gateway.clone(),
        reloader.clone(),
    ));
    let records =
        yrdx_proto::v1::records_server::RecordsServer::new(crate::records_api::RecordsService::new(gateway.clone()))
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
    Ok(RunningGateway { addr, metrics_addr, shutdown: shutdown_tx, handle, reloader })
}

/// Installs the tracing subscriber (human or JSON lines, `RUST_LOG` filter, default `info`).
pub fn init_logging(format: crate::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        crate::config::LogFormat::Json => builder.json().try_init(),
        crate::config::LogFormat::Human => builder.try_init(),
    };
}
