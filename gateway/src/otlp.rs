//! Where the gateway's spans and log lines go: the log on stderr (human or JSON lines, `RUST_LOG`
//! filter, default `info`) and, with the cargo feature `otlp` and `[tracing] otlp_endpoint`, an
//! OpenTelemetry collector over OTLP/gRPC.
//!
//! The export uses the maintained OpenTelemetry crates: `tracing-opentelemetry` turns the
//! `tracing` spans the gateway already opens (`call`, `submit`, `receive`, `deliver`, `check`,
//! `ack`, with the partner, message id, record ids and delivery ids as attributes) into
//! OpenTelemetry spans; `opentelemetry_sdk` batches them on its own thread; `opentelemetry-otlp`
//! sends them with tonic, the gRPC library the gateway is built on. The W3C trace a caller sent
//! is continued (`trace::join_trace`): the collector shows the gateway's spans under the caller's.
//! [`Telemetry::shutdown`] sends what is still batched before the process exits.

use crate::config::{LogFormat, TracingConfig};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Why the log or the span export could not be set up or flushed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built for the endpoint.
    #[cfg(feature = "otlp")]
    #[error("tracing.otlp_endpoint {endpoint}: {source}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// What the exporter said.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// Spans still batched could not all be sent when the export was shut down.
    #[cfg(feature = "otlp")]
    #[error("tracing.otlp_endpoint {endpoint}: spans still batched at shutdown were not all sent: {source}")]
    Flush {
        /// The configured endpoint.
        endpoint: String,
        /// What the SDK said.
        #[source]
        source: opentelemetry_sdk::error::OTelSdkError,
    },
    /// `otlp_endpoint` is set in a binary built without the `otlp` feature (the configuration
    /// check refuses this first; this guards a configuration built in code).
    #[error("tracing.otlp_endpoint {endpoint}: this yrdx was built without the cargo feature `otlp`")]
    FeatureMissing {
        /// The configured endpoint.
        endpoint: String,
    },
    /// The process already has a global subscriber.
    #[error("the log cannot be installed: {0}")]
    AlreadyInstalled(#[source] tracing_subscriber::util::TryInitError),
}

/// The export of spans to a collector: an OpenTelemetry tracer provider whose batch processor
/// sends over OTLP/gRPC.
#[cfg(feature = "otlp")]
pub struct SpanExport {
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
    endpoint: String,
}

#[cfg(feature = "otlp")]
impl std::fmt::Debug for SpanExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanExport").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// The name the gateway's spans carry as `service.name`.
pub const SERVICE_NAME: &str = "yrdx-gateway";

/// How long [`SpanExport::shutdown`] waits for the last batch to be sent.
#[cfg(feature = "otlp")]
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(feature = "otlp")]
impl SpanExport {
    /// An export to `endpoint` (`http://host:4317`). The gRPC channel connects lazily (an
    /// unreachable collector never stops the gateway; failed batches are logged by the SDK and
    /// dropped) and runs on the current Tokio runtime: call this inside the runtime that serves
    /// the gateway, which must outlive the export.
    pub fn start(endpoint: &str) -> Result<SpanExport, TelemetryError> {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|source| TelemetryError::Exporter { endpoint: endpoint.to_string(), source })?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(SERVICE_NAME)
            .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(SpanExport { provider, endpoint: endpoint.to_string() })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans of this export.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span> + Send + Sync,
    {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer(SERVICE_NAME))
    }

    /// Sends the spans still batched (waiting at most 5 s) and stops the export.
    pub fn shutdown(self) -> Result<(), TelemetryError> {
        self.provider
            .shutdown_with_timeout(FLUSH_TIMEOUT)
            .map_err(|source| TelemetryError::Flush { endpoint: self.endpoint.clone(), source })
    }
}

/// What [`install`] set up: keep it while the gateway runs and [`shutdown`](Telemetry::shutdown)
/// it when the gateway has stopped, so the last spans reach the collector.
#[derive(Debug, Default)]
#[must_use = "shut the telemetry down after the gateway stops, or the last spans are lost"]
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    export: Option<SpanExport>,
}

impl Telemetry {
    /// Whether spans are being sent to a collector.
    pub fn exporting(&self) -> bool {
        #[cfg(feature = "otlp")]
        {
            self.export.is_some()
        }
        #[cfg(not(feature = "otlp"))]
        {
            false
        }
    }

    /// Sends the spans still batched and stops the export (nothing to do without one).
    pub fn shutdown(self) -> Result<(), TelemetryError> {
        #[cfg(feature = "otlp")]
        if let Some(export) = self.export {
            return export.shutdown();
        }
        Ok(())
    }
}

/// The log layer: human or JSON lines on stderr.
fn log_layer<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span> + Send + Sync,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Json => layer.json().boxed(),
        LogFormat::Human => layer.boxed(),
    }
}

/// Installs the process's one subscriber: the log (`format`, `RUST_LOG` filter, default `info`)
/// and, when `tracing.otlp_endpoint` is set, the span export (then call this inside the Tokio
/// runtime that serves the gateway: see [`SpanExport::start`]).
pub fn install(format: LogFormat, tracing: &TracingConfig) -> Result<Telemetry, TelemetryError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter).with(log_layer(format));
    match tracing.otlp_endpoint.as_deref() {
        None => {
            registry.try_init().map_err(TelemetryError::AlreadyInstalled)?;
            Ok(Telemetry::default())
        }
        #[cfg(feature = "otlp")]
        Some(endpoint) => {
            let export = SpanExport::start(endpoint)?;
            registry.with(export.layer()).try_init().map_err(TelemetryError::AlreadyInstalled)?;
            tracing::info!(endpoint, "spans are sent to the OTLP collector at {endpoint}");
            Ok(Telemetry { export: Some(export) })
        }
        #[cfg(not(feature = "otlp"))]
        Some(endpoint) => Err(TelemetryError::FeatureMissing { endpoint: endpoint.to_string() }),
    }
}
