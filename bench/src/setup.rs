//! One benchmark environment: a development PKI with a certificate per client, a gateway
//! configuration without rate limits or a tight in-flight bound, fresh state per run, and the
//! documents the clients send.

use crate::load::{BenchClient, Doc};
use std::path::{Path, PathBuf};
use yrdx_adapters::{Partner, Record};
use yrdx_pki::{self as pki, CertificateAuthority};
use yrdx_proto::v1::{Envelope, PlanChannel, PlanParticipant, ProductCategory};

/// The partners of the development PKI: (name, region, format name).
pub use yrdx_pki::DEV_PARTNERS as PARTNERS;

/// `[limits] max_requests_in_flight` of every benchmark gateway. The default (32) is a bound an
/// operator sizes (docs/operations.md); the harness offers more calls at once than that — 32
/// Submit lanes plus the receivers' Receive streams and Acks, or 31 provinces' streams in
/// `country` — and, as with the rate limits, measures capacity, not the limiter.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 256;

/// A benchmark folder: its CA, configuration and client certificates.
pub struct Environment {
    /// The folder.
    pub dir: PathBuf,
    /// The CA (issues one certificate per client).
    pub ca: CertificateAuthority,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The partners of the registry: (name, region, format name).
    pub partners: Vec<(String, String, String)>,
}

impl Environment {
    /// Creates the PKI and a configuration template in `dir`.
    pub fn create(dir: &Path) -> Result<Environment, String> {
        let _ = std::fs::remove_dir_all(dir);
        let ca = CertificateAuthority::new("yrdx bench CA").map_err(|e| e.to_string())?;
        let dev = pki::init_with(dir, "127.0.0.1:0", &ca).map_err(|e| e.to_string())?;
        // No rate limit: the harness measures capacity, not the limiter.
        let text = std::fs::read_to_string(&dev.config).map_err(|e| e.to_string())?;
        let mut text =
            text.replace("rate_per_second = 50", "rate_per_second = 1000000").replace("burst = 100", "burst = 1000000");
        if text.contains("\n[limits]") {
            return Err(format!("{}: already has [limits]", dev.config.display()));
        }
        text.push_str(&format!("\n[limits]\nmax_requests_in_flight = {MAX_REQUESTS_IN_FLIGHT}\n"));
        std::fs::write(dir.join("yrdx.toml"), text).map_err(|e| e.to_string())?;
        let partners = PARTNERS.iter().map(|(n, r, f)| (n.to_string(), r.to_string(), f.to_string())).collect();
        Ok(Environment { dir: dir.to_path_buf(), ca_pem: ca.cert_pem.clone(), ca, partners })
    }

    /// Replaces the registry of the configuration template with `partners` (name, region,
    /// format name, takes risk signals), each without a rate limit. Clients get certificates
    /// from the same CA.
    pub fn register(&mut self, partners: &[(String, String, String, bool)]) -> Result<(), String> {
        let path = self.dir.join("yrdx.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let (first, operators) = match (text.find("\n[[partner]]"), text.find("\n[[operator]]")) {
            (Some(a), Some(b)) if a < b => (a, b),
            _ => return Err(format!("{}: no [[partner]] blocks before [[operator]]", path.display())),
        };
        let mut out = text[..first].to_string();
        for (name, region, format, risk) in partners {
            out.push_str(&format!(
                "\n[[partner]]\nname = \"{name}\"\nregion = \"{region}\"\nformat = \"{format}\"\nidentity = \"{}\"\n\
                 rate_per_second = 1000000\nburst = 1000000\nrisk_signals = {risk}\n",
                pki::partner_identity(name)
            ));
        }
        out.push_str(&text[operators..]);
        std::fs::write(&path, out).map_err(|e| e.to_string())?;
        self.partners = partners.iter().map(|(n, r, f, _)| (n.clone(), r.clone(), f.clone())).collect();
        Ok(())
    }

    /// A configuration with a fresh store for one run (`run` names it).
    pub fn config_for(&self, run: &str) -> Result<PathBuf, String> {
        let text = std::fs::read_to_string(self.dir.join("yrdx.toml")).map_err(|e| e.to_string())?;
        let store = format!("store-{run}.sqlite");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(self.dir.join(format!("{store}{suffix}")));
        }
        let path = self.dir.join(format!("yrdx-{run}.toml"));
        std::fs::write(&path, text.replace("store = \"yrdx.sqlite\"", &format!("store = \"{store}\"")))
            .map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// The store file of a run.
    pub fn store_for(&self, run: &str) -> PathBuf {
        self.dir.join(format!("store-{run}.sqlite"))
    }

    /// Connects `per_partner` clients for each of `partners`, each with its own certificate.
    pub async fn clients(
        &self,
        addr: std::net::SocketAddr,
        partners: &[&str],
        per_partner: usize,
    ) -> Result<Vec<BenchClient>, String> {
        let url = format!("https://{addr}");
        let mut out = Vec::new();
        for name in partners {
            let (_, region, format) =
                self.partners.iter().find(|(n, ..)| n == name).ok_or_else(|| format!("unknown partner {name}"))?;
            let format = Partner::from_name(format).ok_or_else(|| format!("{name}: unknown format {format}"))?;
            for _ in 0..per_partner {
                let cert = self.ca.issue_client(&pki::partner_identity(name), false).map_err(|e| e.to_string())?;
                let channel = yrdx_pki::client::channel(&url, &self.ca_pem, Some((cert.cert_pem, cert.key_pem)))
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                out.push(BenchClient {
                    index: out.len(),
                    partner: name.to_string(),
                    region: region.to_string(),
                    format,
                    channel,
                });
            }
        }
        Ok(out)
    }
}

/// The realistic records the documents are made of (from the conformance vectors).
#[derive(Clone)]
pub struct Templates {
    /// A plan (the first bench plan).
    pub plan: Record,
    /// An online sampling record.
    pub sampling: Record,
    /// A conforming inspection report.
    pub inspection: Record,
    /// A LOW risk signal.
    pub risk: Record,
}

fn first(path: &str) -> Result<Record, String> {
    yrdx_conformance::vectors::first_record(&yrdx_conformance::vectors::default_dir(), path).map_err(|e| e.to_string())
}

/// Holds the conformance material that `yrdx-conformance` unpacks into `$TMPDIR` on first use
/// (the vectors the templates are read from) and removes it when dropped — when the templates
/// are read, and also when reading them fails or panics — so no bench run leaves it behind.
struct UnpackedMaterial;

impl Drop for UnpackedMaterial {
    fn drop(&mut self) {
        yrdx_conformance::embedded::cleanup();
    }
}

/// The templates, read once per process: the unpacked material is gone after the first read, so
/// every scenario of a run (`all`) shares these.
static TEMPLATES: std::sync::OnceLock<Result<Templates, String>> = std::sync::OnceLock::new();

/// The plans the benchmark's sampling records belong to (`BENCH-PLAN-00` …): spread over many
/// plans, as a programme's samples are, each plan-region holds tens of samples, not thousands.
pub const BENCH_PLANS: usize = 100;

/// The id of the `n`-th bench plan.
pub fn bench_plan(n: usize) -> String {
    format!("BENCH-PLAN-{:02}", n % BENCH_PLANS)
}

impl Templates {
    /// The templates (read from the conformance vectors on the first call; the unpacked vectors
    /// are removed right after).
    pub fn load() -> Result<Templates, String> {
        TEMPLATES.get_or_init(Templates::read).clone()
    }

    fn read() -> Result<Templates, String> {
        let _unpacked = UnpackedMaterial;
        let mut plan = first("canonical/valid/plan.json")?;
        if let Record::Plan(p) = &mut plan {
            p.plan_id = bench_plan(0);
            p.channel = PlanChannel::Online as i32;
            p.categories = vec![ProductCategory::EBikeLithiumBattery as i32];
            p.participants =
                PARTNERS.iter().map(|(_, r, _)| PlanParticipant { region: r.to_string(), quota: 1000 }).collect();
        }
        let mut sampling = first("jiangsu/valid/example-sampling.json")?;
        if let Record::Sampling(s) = &mut sampling {
            s.plan_id = bench_plan(0);
        }
        Ok(Templates {
            plan,
            sampling,
            inspection: first("jiangsu/valid/inspection-conforming.json")?,
            risk: first("jiangsu/valid/risk-signal-low.json")?,
        })
    }

    /// Every bench plan.
    pub fn bench_plans(&self) -> Vec<Record> {
        (0..BENCH_PLANS)
            .map(|n| {
                let mut r = self.plan.clone();
                if let Record::Plan(p) = &mut r {
                    p.plan_id = bench_plan(n);
                }
                r
            })
            .collect()
    }

    /// The seed sample of a region (inspections in the load refer to it).
    pub fn seed_sample_id(region: &str) -> String {
        format!("BENCH-SEED-{region}")
    }

    /// A sampling record of `region` with id `id`.
    pub fn sampling_of(&self, region: &str, id: &str) -> Record {
        let mut r = self.sampling.clone();
        if let Record::Sampling(s) = &mut r {
            s.sample_id = id.into();
            s.sampling_region = region.into();
        }
        r
    }

    /// The `seq`-th record of the mixed load for a client: plan, sampling, inspection and (for
    /// partners that take them) risk signal in turn.
    pub fn mixed(&self, client: &BenchClient, seq: u64, tag: &str) -> Record {
        // The tag keeps ids of different runs on one store apart (a risk signal id resent at
        // revision 1 would be refused as stale).
        let id = format!("{tag}{}-{seq}", client.index);
        let kinds = if client.format == Partner::Beijing { 3 } else { 4 };
        match seq % kinds {
            0 => {
                let mut r = self.plan.clone();
                if let Record::Plan(p) = &mut r {
                    p.plan_id = format!("BP-{id}");
                    p.lead_region = client.region.clone();
                }
                r
            }
            1 => {
                // Each sample a different product, as in a real programme (the same product again
                // is the mutual-recognition case, not the common one).
                let mut r = self.sampling_of(&client.region, &format!("BS-{id}"));
                if let Record::Sampling(s) = &mut r {
                    // Spread evenly over the plans whatever the sequence's shape.
                    s.plan_id = bench_plan((seq.wrapping_mul(2_654_435_761) >> 7) as usize);
                    if let Some(p) = &mut s.product {
                        p.model = format!("M-{id}");
                    }
                }
                r
            }
            2 => {
                let mut r = self.inspection.clone();
                if let Record::Inspection(i) = &mut r {
                    i.sample_id = Templates::seed_sample_id(&client.region);
                    i.report_no = format!("BR-{id}");
                }
                r
            }
            _ => self.risk_signal(&format!("FX-{id}")),
        }
    }

    /// A risk signal with id `id`.
    pub fn risk_signal(&self, id: &str) -> Record {
        let mut r = self.risk.clone();
        if let Record::RiskSignal(s) = &mut r {
            s.signal_id = id.into();
            s.revision = 1;
        }
        r
    }
}

/// Encodes records as `client` sends them.
pub fn document(client: &BenchClient, message_id: String, records: &[Record]) -> Doc {
    let envelope = Envelope {
        message_id: message_id.clone(),
        sender: client.region.clone(),
        receiver: "310000".into(),
        sent_at: yrdx_proto::civil::parse_rfc3339("2024-03-15T10:30:00+08:00"),
    };
    // The templates are valid records: encoding cannot fail for the formats they are used with.
    let bytes = client.format.encode(&envelope, records, 1).map(|e| e.bytes).unwrap_or_default();
    Doc { bytes, message_id, records: records.len() as u32 }
}
