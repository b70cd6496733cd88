//! A well-behaved partner: submits a scripted scenario in its own format, receives and
//! acknowledges its deliveries, and answers case transfers addressed to its region with an ACCEPT
//! feedback — what `yrdx conformance simulate` runs and `yrdx demo` drives.

use crate::suite::RecordSpec;
use crate::suites::live::{LiveTarget, PartnerProfile};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::Channel;
use yrdx_adapters::{DecodeLimits, Record};
use yrdx_proto::v1::exchange_client::ExchangeClient;
use yrdx_proto::v1::{
    AckRequest, CaseAction, CaseEvent, CaseFeedback, CaseStatus, Envelope, ReceiveRequest, SubmitReply, SubmitRequest,
};
use yrdx_proto::Timestamp;

/// A scenario file (`conformance/scenarios/<partner>.toml`): named records and the submissions
/// made of them, in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario does.
    pub title: String,
    /// Named records.
    pub records: BTreeMap<String, RecordSpec>,
    /// Submissions, in order.
    pub submit: Vec<ScenarioSubmit>,
}

/// One submission of a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSubmit {
    /// The records of the document.
    pub records: Vec<String>,
}

/// Why a scenario file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with the TOML position.
        source: toml::de::Error,
    },
    /// A submission names a record the scenario does not declare.
    #[error("{path}: no record named {record:?}")]
    UnknownRecord {
        /// The file.
        path: String,
        /// The name.
        record: String,
    },
}

impl Scenario {
    /// The built-in scenario of a partner (`conformance/scenarios`, [`crate::embedded`]).
    pub fn default_path(partner: &str) -> PathBuf {
        crate::embedded::path("scenarios").join(format!("{partner}.toml"))
    }

    /// Loads a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = || path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: shown(), source })?;
        let s: Scenario = toml::from_str(&text).map_err(|source| ScenarioError::Parse { path: shown(), source })?;
        for sub in &s.submit {
            if let Some(n) = sub.records.iter().find(|n| !s.records.contains_key(*n)) {
                return Err(ScenarioError::UnknownRecord { path: shown(), record: n.clone() });
            }
        }
        Ok(s)
    }
}

/// One delivery the simulator took.
#[derive(Debug, Clone)]
pub struct Received {
    /// The delivery id (acknowledged).
    pub delivery_id: String,
    /// The message id delivered.
    pub message_id: String,
    /// The document in the partner's format.
    pub document: Vec<u8>,
    /// Its records.
    pub records: Vec<Record>,
    /// The feedback sent in answer to a case transfer, as `kind id`.
    pub answered: Option<String>,
}

/// A simulated partner connected to a gateway.
pub struct PartnerSimulator {
    /// Who it is.
    pub me: PartnerProfile,
    client: ExchangeClient<Channel>,
    /// The time its feedback events carry (`None`: now).
    pub event_time: Option<Timestamp>,
    sent: u32,
}

impl PartnerSimulator {
    /// Connects to the gateway of `target` as `target.me`.
    pub async fn connect(target: &LiveTarget) -> Result<PartnerSimulator, String> {
        let (channel, _) = target.channel(Some(&target.me.identity)).await?;
        Ok(PartnerSimulator { me: target.me.clone(), client: ExchangeClient::new(channel), event_time: None, sent: 0 })
    }

    /// Submits records in the partner's own format under `message_id`.
    pub async fn submit(&mut self, records: &[Record], message_id: &str) -> Result<(Vec<u8>, SubmitReply), String> {
        let envelope = Envelope {
            message_id: message_id.into(),
            sender: self.me.region.clone(),
            receiver: "310000".into(),
            sent_at: Some(self.event_time.unwrap_or_else(crate::clock::now)),
        };
        let bytes = self.me.format.encode(&envelope, records, 1).map_err(|e| e.to_string())?.bytes;
        let reply = self.client.submit(SubmitRequest { document: bytes.clone() }).await.map_err(|s| {
            format!("{} {message_id}: {}: {}", self.me.name, crate::suites::live::code_name(s.code()), s.message())
        })?;
        Ok((bytes, reply.into_inner()))
    }

    /// Receives until the mailbox stays quiet for `idle`: decodes each delivery in the partner's
    /// format, answers case transfers addressed to its region, and acknowledges.
    pub async fn drain(&mut self, idle: Duration) -> Result<Vec<Received>, String> {
        let mut stream = self
            .client
            .receive(ReceiveRequest { max_unacked: 16 })
            .await
            .map_err(|s| format!("Receive: {}", s.message()))?
            .into_inner();
        let mut got = Vec::new();
        loop {
            let d = match tokio::time::timeout(idle, stream.message()).await {
                Ok(Ok(Some(d))) => d,
                Ok(Ok(None)) | Err(_) => break,
                Ok(Err(s)) => return Err(format!("Receive: {}", s.message())),
            };
            let doc = self
                .me
                .format
                .decode(&d.document, &DecodeLimits::default())
                .map_err(|e| format!("delivery {} does not decode as {}: {e}", d.delivery_id, self.me.format))?;
            let mut answered = None;
            for r in &doc.records {
                if let Some(feedback) = self.answer(r) {
                    self.sent += 1;
                    let id = format!("SIM-{}-FK-{:04}", self.me.region, self.sent);
                    let what = format!("{} {}", feedback.kind(), feedback.id());
                    self.submit(std::slice::from_ref(&feedback), &id).await?;
                    answered = Some(what);
                }
            }
            self.client
                .ack(AckRequest { delivery_ids: vec![d.delivery_id.clone()] })
                .await
                .map_err(|s| format!("Ack: {}", s.message()))?;
            got.push(Received {
                delivery_id: d.delivery_id,
                message_id: d.message_id,
                document: d.document,
                records: doc.records,
                answered,
            });
        }
        Ok(got)
    }

    /// The ACCEPT feedback for a case transferred to this partner's region.
    fn answer(&self, r: &Record) -> Option<Record> {
        let Record::CaseTransfer(c) = r else { return None };
        if c.responsible_region != self.me.region || c.status != CaseStatus::Transferred as i32 {
            return None;
        }
        Some(Record::CaseFeedback(CaseFeedback {
            case_id: c.case_id.clone(),
            event: Some(CaseEvent {
                event_id: format!("{}-A", c.case_id.chars().take(60).collect::<String>()),
                at: Some(self.event_time.unwrap_or_else(crate::clock::now)),
                by_region: self.me.region.clone(),
                action: CaseAction::Accept as i32,
                note: "已接收，将依法处置".into(),
                amount: None,
            }),
        }))
    }
}

/// What a simulation did, for the terminal.
#[derive(Debug, Default)]
pub struct SimulationLog {
    /// One line per event.
    pub lines: Vec<String>,
}

/// Runs `scenario` as `target.me`, then keeps receiving for `listen` (answering case transfers).
pub async fn run(
    target: &LiveTarget,
    scenario: &Scenario,
    listen: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<SimulationLog, String> {
    let (_, token) = crate::runner::run_token();
    let fill = crate::runner::placeholders(&token, Some(target));
    let mut records = BTreeMap::new();
    for (name, spec) in &scenario.records {
        let record = crate::records::build(spec, &fill, &crate::vectors::default_dir()).map_err(|e| e.to_string())?;
        records.insert(name.clone(), record);
    }
    let mut sim = PartnerSimulator::connect(target).await?;
    let mut log = SimulationLog::default();
    let mut say = |log: &mut SimulationLog, line: String| {
        progress(&line);
        log.lines.push(line);
    };
    say(&mut log, format!("{} ({}, {}): {}", target.me.name, target.me.region, target.me.format, scenario.title));
    for (i, sub) in scenario.submit.iter().enumerate() {
        let batch: Vec<Record> = sub.records.iter().filter_map(|n| records.get(n).cloned()).collect();
        let id = format!("SIM-{}-{token}-{:02}", target.me.region, i + 1);
        let (bytes, reply) = sim.submit(&batch, &id).await?;
        let refs: Vec<String> = reply.records.iter().map(|r| format!("{} {}", r.kind, r.id)).collect();
        say(&mut log, format!("→ submitted {id} ({} bytes): accepted {}", bytes.len(), refs.join(", ")));
        for w in reply.warnings {
            say(&mut log, format!("  ! {w}"));
        }
    }
    let until = tokio::time::Instant::now() + listen;
    while tokio::time::Instant::now() < until {
        for r in sim.drain(Duration::from_millis(500)).await? {
            let kinds: Vec<String> = r.records.iter().map(|x| format!("{} {}", x.kind(), x.id())).collect();
            say(&mut log, format!("← received {} ({} bytes): {}", r.message_id, r.document.len(), kinds.join(", ")));
            if let Some(a) = r.answered {
                say(&mut log, format!("→ answered with {a}"));
            }
        }
    }
    Ok(log)
}
