//! The gateway's log lines (JSON) as a test binary sees them: one global subscriber per binary
//! writing into a buffer, installed on first use, so a test can assert what the real gateway
//! logged.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// The buffer the binary's one JSON subscriber writes into.
#[derive(Clone, Default)]
pub struct JsonLog(Arc<Mutex<Vec<u8>>>);

impl Write for JsonLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl JsonLog {
    /// The binary's log, its subscriber (`info` and up) installed on the first call.
    pub fn global() -> &'static JsonLog {
        static LOG: OnceLock<JsonLog> = OnceLock::new();
        LOG.get_or_init(|| {
            let log = JsonLog::default();
            let writer = log.clone();
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("the one subscriber of this binary");
            log
        })
    }

    /// Every line so far, one JSON value each (a line that is not JSON fails the test).
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
            .collect()
    }

    /// The lines whose message is `message`.
    pub fn with_message(&self, message: &str) -> Vec<serde_json::Value> {
        self.lines().into_iter().filter(|v| v["fields"]["message"] == message).collect()
    }
}
