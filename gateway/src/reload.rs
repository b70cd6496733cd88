//! Reloading without a restart (SIGHUP to `yrdx serve`, or `Admin.Reload`): the configuration
//! file is read again with everything it names — server certificate and key, client CA bundle,
//! CRLs, the partner and operator registry, the working-day calendar — and only when all of it
//! loads is it put in force, at once; otherwise the running configuration stays and the error
//! names the key. Established connections and open Receive streams are kept, except those whose
//! certificate the new CAs, CRLs or registry no longer admit: they are closed.

use crate::config::{Config, ConfigError};
use crate::state::Gateway;
use crate::transport::{self, BuiltTls, LiveConnections, TlsConfigHandle, TlsMaterial, TransportError};
use std::path::PathBuf;
use std::sync::Arc;
use tracing::{info, warn};
use yrdx_proto::calendar::Calendar;

/// Why a reload was refused (the running configuration stays).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The gateway was not started from a file.
    #[error("the gateway was not started from a configuration file: nothing to read again")]
    NoSource,
    /// The file does not parse or breaks a rule (names the key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file the configuration names could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// A key changed that only a restart can apply.
    #[error("{key}: changed, but only a restart applies it (put the old value back to reload the rest)")]
    NeedsRestart {
        /// The key.
        key: &'static str,
    },
    /// The working-day calendar file is unusable.
    #[error("calendar_file: {0}")]
    Calendar(#[from] yrdx_proto::calendar::CalendarError),
    /// The TLS material is unusable (names the key).
    #[error(transparent)]
    Tls(#[from] TransportError),
    /// The reload task failed.
    #[error("reload: {0}")]
    Task(String),
}

/// A file named by the configuration that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{key} ({path}): {message}")]
pub struct FileError {
    /// The key naming it (`tls.cert`, `tls.crls[1]` …).
    pub key: String,
    /// The file.
    pub path: String,
    /// The error.
    pub message: String,
}

/// Reads the TLS files of `config`.
pub fn read_tls(config: &Config) -> Result<TlsMaterial, FileError> {
    let read = |key: String, p: &std::path::Path| {
        let path = config.resolve(p);
        std::fs::read(&path).map_err(|e| FileError { key, path: path.display().to_string(), message: e.to_string() })
    };
    let tls = &config.tls;
    Ok(TlsMaterial {
        cert_pem: read("tls.cert".into(), &tls.cert)?,
        key_pem: read("tls.key".into(), &tls.key)?,
        client_ca_pem: read("tls.client_ca".into(), &tls.client_ca)?,
        crls: tls
            .crls
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let key = format!("tls.crls[{i}]");
                read(key.clone(), p).map(|bytes| (key, bytes))
            })
            .collect::<Result<_, _>>()?,
        allow_stale_crls: tls.allow_stale_crls,
    })
}

/// The calendar `config` names (the embedded one without `calendar_file`).
pub fn load_calendar(config: &Config) -> Result<Calendar, yrdx_proto::calendar::CalendarError> {
    match &config.calendar_file {
        Some(p) => Calendar::from_file(&config.resolve(p)),
        None => Ok(Calendar::embedded()),
    }
}

/// The first key that differs between `old` and `new` among those a reload cannot apply (the
/// listener, the store, the limits built into the transport, metrics, the console, SAMR docking,
/// logging).
fn restart_only_change(old: &Config, new: &Config) -> Option<&'static str> {
    let d = |v: &dyn std::fmt::Debug| format!("{v:?}");
    [
        ("listen", d(&old.listen) != d(&new.listen)),
        // The transport's message limit is derived from it when the server is built.
        ("max_document_bytes", old.max_document_bytes != new.max_document_bytes),
        ("store", old.store_location() != new.store_location()),
        ("postgres", old.postgres != new.postgres),
        ("limits", old.limits != new.limits),
        ("metrics", d(&old.metrics) != d(&new.metrics)),
        ("console", d(&old.console) != d(&new.console)),
        ("samr", d(&old.samr) != d(&new.samr)),
        ("log_format", old.log_format != new.log_format),
        ("shutdown_grace_secs", old.shutdown_grace_secs != new.shutdown_grace_secs),
    ]
    .into_iter()
    .find(|(_, changed)| *changed)
    .map(|(key, _)| key)
}

/// What a reload put in force.
#[derive(Debug, Clone, Default)]
pub struct Reloaded {
    /// Partners that may call now (registered, not suspended), in registry order.
    pub partners: Vec<String>,
    /// Registered partners that are suspended.
    pub suspended: Vec<String>,
    /// Connections closed because their certificate is no longer admitted.
    pub connections_closed: usize,
    /// Cases whose provisional due date the reloaded calendar changed (sent again to both sides).
    pub due_dates_resent: Vec<String>,
}

impl Reloaded {
    /// One line for the log and the operator.
    pub fn summary(&self) -> String {
        format!(
            "configuration reloaded: {} partner(s) active ({}), {} suspended{}; {} connection(s) closed; {} due date(s) recomputed",
            self.partners.len(),
            self.partners.join(", "),
            self.suspended.len(),
            if self.suspended.is_empty() { String::new() } else { format!(" ({})", self.suspended.join(", ")) },
            self.connections_closed,
            self.due_dates_resent.len(),
        )
    }
}

/// Reloads the running gateway, one reload at a time.
pub struct Reloader {
    gateway: Arc<Gateway>,
    tls: Arc<TlsConfigHandle>,
    live: Arc<LiveConnections>,
    busy: tokio::sync::Mutex<()>,
}

/// Everything a new configuration needs, loaded before any of it is put in force.
struct Prepared {
    config: Arc<Config>,
    calendar: Option<Calendar>,
    tls: BuiltTls,
}

fn prepare(path: PathBuf, current: &Config, refusals: crate::metrics::TlsRefusals) -> Result<Prepared, ReloadError> {
    let config = Config::load(&path)?;
    if let Some(key) = restart_only_change(current, &config) {
        return Err(ReloadError::NeedsRestart { key });
    }
    // The file may have changed under the same name: the calendar is read again whenever one is
    // configured (the embedded one never changes).
    let calendar = if config.calendar_file.is_some() || current.calendar_file.is_some() {
        Some(load_calendar(&config)?)
    } else {
        None
    };
    let tls = transport::server_config(&read_tls(&config)?, refusals)?;
    Ok(Prepared { config: Arc::new(config), calendar, tls })
}

impl Reloader {
    /// A reloader of this gateway, its TLS configuration and its connections.
    pub fn new(gateway: Arc<Gateway>, tls: Arc<TlsConfigHandle>, live: Arc<LiveConnections>) -> Arc<Reloader> {
        Arc::new(Reloader { gateway, tls, live, busy: tokio::sync::Mutex::new(()) })
    }

    /// Reads the configuration file again and puts it in force, or refuses it whole (logged
    /// either way).
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let result = self.reload_inner().await;
        match &result {
            Ok(r) => info!("{}", r.summary()),
            Err(e) => warn!(error = %e, "reload refused: the running configuration stays"),
        }
        result
    }

    async fn reload_inner(&self) -> Result<Reloaded, ReloadError> {
        let _one_at_a_time = self.busy.lock().await;
        let current = self.gateway.config();
        let path = current.source.clone().ok_or(ReloadError::NoSource)?;
        let refusals = self.gateway.metrics.tls_refusals();
        let prepared = tokio::task::spawn_blocking(move || prepare(path, &current, refusals))
            .await
            .map_err(|e| ReloadError::Task(e.to_string()))??;
        let Prepared { config, calendar, tls } = prepared;
        let calendar_reloaded = calendar.is_some();
        // New handshakes first, then the registry; then what is open is checked against both.
        self.tls.replace(tls);
        self.gateway.replace_config(config.clone(), calendar);
        // The chain records what was put in force (the file's SM3); the configuration lives in a
        // file, not the store, so the entry follows the swap rather than sharing a transaction.
        if let Some(source) = &config.source {
            match std::fs::read(source) {
                Ok(bytes) => {
                    let event = yrdx_evidence::AuditEvent::ConfigurationReloaded {
                        config_sm3: yrdx_evidence::Sm3Digest::of(&bytes),
                    };
                    if let Err(e) = self.gateway.store.audit_append(vec![event], self.gateway.clock.now_ms()).await {
                        warn!(error = %e, "the reload could not be recorded in the audit chain");
                    }
                }
                Err(e) => warn!(error = %e, "the reloaded file could not be read again for the audit chain"),
            }
        }
        let verifier = self.tls.verifier();
        let connections_closed = self.live.close_unless_admitted(|certs| {
            transport::refused_now(&*verifier, certs).or_else(|| {
                let leaf = certs.first()?;
                crate::identity::certificate_admitted(leaf.as_ref(), &config).err().map(|s| s.message().to_string())
            })
        });
        let mut due_dates_resent = Vec::new();
        if calendar_reloaded {
            // Already in force: a failure here is the operator's to see, not a refused reload.
            match crate::workflow::calendar_watch::settle_provisional_due_dates(&self.gateway).await {
                Ok(settled) => due_dates_resent = settled.resent,
                Err(e) => warn!(error = %e, "after the reload: settling provisional due dates failed"),
            }
        }
        Ok(Reloaded {
            partners: config.partners.iter().filter(|p| !p.suspended).map(|p| p.name.clone()).collect(),
            suspended: config.partners.iter().filter(|p| p.suspended).map(|p| p.name.clone()).collect(),
            connections_closed,
            due_dates_resent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::MINIMAL as BASE;

    #[test]
    fn keys_only_a_restart_applies_are_named() {
        let old = Config::parse(BASE, "t").unwrap();
        let same = |text: &str| restart_only_change(&old, &Config::parse(text, "t").unwrap());
        assert_eq!(same(BASE), None);
        assert_eq!(same(&BASE.replace("320000\"\n", "320000\"\nsuspended = true\nrate_per_second = 1\n")), None);
        assert_eq!(same(&BASE.replace("key = \"pki/server.key\"", "key = \"k2\"\ncrls = [\"a.crl\"]")), None);
        assert_eq!(same(&format!("listen = \"127.0.0.1:1\"\n{BASE}")), Some("listen"));
        assert_eq!(same(&format!("store = \"other.sqlite\"\n{BASE}")), Some("store"));
        assert_eq!(same(&format!("max_document_bytes = 10\n{BASE}")), Some("max_document_bytes"));
        assert_eq!(same(&format!("{BASE}\n[limits]\nmax_connections = 3\n")), Some("limits"));
        assert_eq!(same(&format!("{BASE}\n[metrics]\nlisten = \"127.0.0.1:9\"\n")), Some("metrics"));
        assert_eq!(same(&format!("{BASE}\n[console]\nlisten = \"127.0.0.1:9\"\n")), Some("console"));
    }
}
