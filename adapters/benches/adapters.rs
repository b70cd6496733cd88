//! Adapter throughput beside a bare-parser baseline measured in the same run.
//!
//! For each partner and record (a realistic sampling record and a four-item inspection report):
//! - `decode`: the adapter's decode + validate, against the baseline of a bare parse + write of the
//!   same bytes (`serde_json` Value for JSON, quick-xml events read and written for XML);
//! - `encode`: the adapter's encode, against the same baseline.
//!
//! Criterion reports each; the closing table measures adapter and baseline alternately
//! (A B A B …, medians of 15 rounds) and prints records/s, MB/s and adapter/baseline ratios.
//! Target: ratio ≥ 0.5 (the adapter runs at least at half the bare parser's speed).

use criterion::{criterion_group, Criterion, Throughput};
use quick_xml::events::Event;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};
use yrdx_adapters::{samr, DecodeLimits, Document, Partner};

struct Case {
    name: &'static str,
    partner: Partner,
    bytes: Vec<u8>,
    doc: Document,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors");
    let mut out = Vec::new();
    for (name, partner, file) in [
        ("jiangsu/sampling", Partner::Jiangsu, "jiangsu/valid/example-sampling.json"),
        ("jiangsu/inspection", Partner::Jiangsu, "jiangsu/valid/example-inspection.json"),
        ("zhejiang/sampling", Partner::Zhejiang, "zhejiang/valid/example-sampling.xml"),
        ("zhejiang/inspection", Partner::Zhejiang, "zhejiang/valid/example-inspection.xml"),
        ("beijing/sampling", Partner::Beijing, "beijing/valid/example-sample.json"),
        ("beijing/inspection", Partner::Beijing, "beijing/valid/example-report.json"),
    ] {
        let bytes = std::fs::read(dir.join(file)).expect("vector");
        let doc = partner.decode(&bytes, &DecodeLimits::default()).expect("valid vector");
        out.push(Case { name, partner, bytes, doc });
    }
    out
}

fn baseline_json(bytes: &[u8]) -> usize {
    let v: serde_json::Value = serde_json::from_slice(bytes).expect("json");
    serde_json::to_vec_pretty(&v).expect("json").len()
}

fn baseline_xml(bytes: &[u8]) -> usize {
    let text = std::str::from_utf8(bytes).expect("utf-8");
    let mut reader = quick_xml::Reader::from_str(text);
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(bytes.len()));
    loop {
        match reader.read_event().expect("xml") {
            Event::Eof => break,
            e => writer.write_event(e).expect("write"),
        }
    }
    writer.into_inner().len()
}

fn baseline(c: &Case) -> usize {
    if c.partner == Partner::Zhejiang {
        baseline_xml(&c.bytes)
    } else {
        baseline_json(&c.bytes)
    }
}

fn decode(c: &Case) -> usize {
    c.partner.decode(&c.bytes, &DecodeLimits::default()).expect("decode").records.len()
}

fn encode(c: &Case) -> usize {
    c.partner.encode(&c.doc.envelope, &c.doc.records, 1).expect("encode").bytes.len()
}

fn criterion_benches(cr: &mut Criterion) {
    for c in cases() {
        let mut g = cr.benchmark_group(c.name);
        g.throughput(Throughput::Bytes(c.bytes.len() as u64));
        g.bench_function("baseline parse+write", |b| b.iter(|| baseline(black_box(&c))));
        g.bench_function("adapter decode+validate", |b| b.iter(|| decode(black_box(&c))));
        g.bench_function("adapter encode", |b| b.iter(|| encode(black_box(&c))));
        g.finish();
    }
    let samr_doc = {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors/samr/valid/example-ccjg.xml");
        std::fs::read(dir).expect("vector")
    };
    cr.bench_function("samr/ccjg decode_package (GB18030 + SM3)", |b| {
        b.iter(|| samr::decode_package(black_box(&samr_doc), &DecodeLimits::default()).expect("package"))
    });
}

criterion_group!(benches, criterion_benches);

/// Time per call of `f`, measured over a fixed wall-clock slice.
fn per_call(mut f: impl FnMut() -> usize, slice: Duration) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < slice {
        black_box(f());
        n += 1;
    }
    start.elapsed().as_secs_f64() / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ratio_table() {
    let quick = std::env::args().any(|a| a == "--test" || a == "--quick");
    let (rounds, slice) = if quick { (3, Duration::from_millis(20)) } else { (15, Duration::from_millis(200)) };
    println!("\nadapter vs baseline, same run, alternating, median of {rounds} rounds");
    println!(
        "{:<22} {:>12} {:>10} {:>12} {:>10} {:>10} {:>10}",
        "case", "decode rec/s", "MB/s", "encode rec/s", "MB/s", "dec ratio", "enc ratio"
    );
    let mut worst: f64 = f64::MAX;
    for c in cases() {
        let (mut base, mut dec, mut enc) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            base.push(per_call(|| baseline(&c), slice));
            dec.push(per_call(|| decode(&c), slice));
            enc.push(per_call(|| encode(&c), slice));
        }
        let (b, d, e) = (median(base), median(dec), median(enc));
        let mb = c.bytes.len() as f64 / 1e6;
        let (dr, er) = (b / d, b / e);
        worst = worst.min(dr).min(er);
        println!(
            "{:<22} {:>12.0} {:>10.1} {:>12.0} {:>10.1} {:>10.2} {:>10.2}",
            c.name,
            1.0 / d,
            mb / d,
            1.0 / e,
            mb / e,
            dr,
            er
        );
    }
    println!("lowest ratio {worst:.2} (target ≥ 0.50: {})", if worst >= 0.5 { "met" } else { "MISSED" });
}

fn main() {
    // `-- --ratios` prints only the closing table (criterion would refuse the unknown flag).
    if !std::env::args().any(|a| a == "--ratios") {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    ratio_table();
}
