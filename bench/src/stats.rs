//! Figures of a run: latency percentiles, throughput, and medians with min–max across the
//! alternating rounds.

use serde::Serialize;
use std::collections::BTreeMap;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of latencies given in microseconds (nearest-rank).
    pub fn of(micros: &mut [u64]) -> Percentiles {
        if micros.is_empty() {
            return Percentiles::default();
        }
        micros.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            micros[rank - 1] as f64 / 1000.0
        };
        Percentiles {
            count: micros.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: micros[micros.len() - 1] as f64 / 1000.0,
        }
    }
}

/// What one timed run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunFigures {
    /// `gateway` or `baseline`.
    pub side: String,
    /// Seconds measured.
    pub seconds: f64,
    /// Submissions answered OK.
    pub submissions: u64,
    /// Records in them.
    pub records: u64,
    /// Document bytes in them.
    pub bytes: u64,
    /// Submissions per second.
    pub submissions_per_s: f64,
    /// Records per second.
    pub records_per_s: f64,
    /// MB (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Submit latency.
    pub submit_ms: Percentiles,
    /// Submit to first delivery, per recipient.
    pub delivery_ms: Percentiles,
    /// Deliveries received.
    pub deliveries: u64,
    /// Deliveries per second (receivers).
    pub deliveries_per_s: f64,
    /// Failed calls by status code.
    pub errors: BTreeMap<String, u64>,
    /// One message per failing status code.
    pub error_examples: BTreeMap<String, String>,
    /// The server's peak resident set, MB.
    pub peak_rss_mb: f64,
    /// The server's CPU seconds over the run.
    pub cpu_seconds: f64,
    /// The offered rate (open loop), submissions per second; 0 for closed loop.
    pub offered_rate: f64,
}

/// Median, min and max of a figure across rounds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

impl Spread {
    /// The spread of some values (empty: zeros).
    pub fn of(values: &[f64]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let median = if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
        Spread { median, min: v[0], max: v[v.len() - 1] }
    }

    /// `median (min–max)`.
    pub fn show(&self, decimals: usize) -> String {
        format!("{:.d$} ({:.d$}–{:.d$})", self.median, self.min, self.max, d = decimals)
    }
}

/// A row of the ratio table: one figure for both sides.
#[derive(Debug, Clone, Serialize)]
pub struct RatioRow {
    /// The figure.
    pub figure: String,
    /// Gateway, across rounds.
    pub gateway: Spread,
    /// Baseline, across rounds.
    pub baseline: Spread,
    /// Median of the per-round gateway/baseline ratios.
    pub ratio: Spread,
}

/// Builds ratio rows from alternating rounds (gateway[i] was measured beside baseline[i]).
pub fn ratio_rows(gateway: &[RunFigures], baseline: &[RunFigures]) -> Vec<RatioRow> {
    type Pick = fn(&RunFigures) -> f64;
    let figures: [(&str, Pick); 5] = [
        ("submissions/s", |f| f.submissions_per_s),
        ("MB/s", |f| f.mb_per_s),
        ("Submit p50 ms", |f| f.submit_ms.p50),
        ("Submit p99 ms", |f| f.submit_ms.p99),
        ("server CPU s", |f| f.cpu_seconds),
    ];
    figures
        .iter()
        .map(|(name, pick)| {
            let g: Vec<f64> = gateway.iter().map(pick).collect();
            let b: Vec<f64> = baseline.iter().map(pick).collect();
            let ratios: Vec<f64> = g.iter().zip(&b).filter(|(_, b)| **b > 0.0).map(|(g, b)| g / b).collect();
            RatioRow {
                figure: name.to_string(),
                gateway: Spread::of(&g),
                baseline: Spread::of(&b),
                ratio: Spread::of(&ratios),
            }
        })
        .collect()
}

/// Prints a ratio table.
pub fn print_ratio_table(title: &str, rows: &[RatioRow]) {
    println!("\n{title}");
    println!("  {:<16} {:>26} {:>26} {:>24}", "figure", "gateway", "baseline", "gateway/baseline");
    for r in rows {
        println!("  {:<16} {:>26} {:>26} {:>24}", r.figure, r.gateway.show(2), r.baseline.show(2), r.ratio.show(3));
    }
}

/// Prints one run's figures on one line.
pub fn print_run(label: &str, f: &RunFigures) {
    let errors: Vec<String> = f.errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "  {label:<28} {:>9.0} sub/s {:>9.0} rec/s {:>7.2} MB/s  submit p50 {:>6.2} p90 {:>6.2} p99 {:>6.2} p99.9 {:>6.2} max {:>7.2} ms  delivery p99 {:>7.2} ms ({} deliveries)  rss {:>5.1} MB cpu {:>5.2} s{}",
        f.submissions_per_s,
        f.records_per_s,
        f.mb_per_s,
        f.submit_ms.p50,
        f.submit_ms.p90,
        f.submit_ms.p99,
        f.submit_ms.p999,
        f.submit_ms.max,
        f.delivery_ms.p99,
        f.deliveries,
        f.peak_rss_mb,
        f.cpu_seconds,
        if errors.is_empty() { String::new() } else { format!("  errors {}", errors.join(" ")) }
    );
    for (code, message) in &f.error_examples {
        println!("      e.g. {code}: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!((p.p50, p.p90, p.p99, p.p999, p.max), (500.0, 900.0, 990.0, 999.0, 1000.0));
        assert_eq!(Percentiles::of(&mut []).count, 0);
    }

    #[test]
    fn spreads_and_ratios_pair_rounds() {
        assert_eq!(Spread::of(&[3.0, 1.0, 2.0]), Spread { median: 2.0, min: 1.0, max: 3.0 });
        let g = |s: f64| RunFigures { submissions_per_s: s, ..Default::default() };
        let rows = ratio_rows(&[g(50.0), g(40.0)], &[g(100.0), g(100.0)]);
        assert_eq!(rows[0].ratio.median, 0.45);
    }
}
