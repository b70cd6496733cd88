//! Decodes one generated document of many tiny invalid items and prints the outcome and the
//! time, for the figures of `docs/benchmarks.md` (issue 14: problem collection used to cost n²).
//! usage: many_items SHAPE N   (SHAPE: jiangsu-numbers, canonical-numbers, zhejiang-empties,
//! jiangsu-unknown-keys — 100 records of N/100 unknown keys each)
use yrdx_adapters::{DecodeError, DecodeLimits, Partner};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(shape), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<usize>().ok())) else {
        eprintln!("usage: many_items SHAPE N");
        std::process::exit(64);
    };
    let numbers = || format!("[{}0]", "0,".repeat(n.saturating_sub(1)));
    let (partner, text) = match shape.as_str() {
        "jiangsu-numbers" => (Partner::Jiangsu, format!("{{\"HEAD\": {{}}, \"DATA\": {}}}", numbers())),
        "canonical-numbers" => (Partner::Canonical, format!("{{\"kind\": \"sampling\", \"records\": {}}}", numbers())),
        "zhejiang-empties" => (
            Partner::Zhejiang,
            format!(
                "<Exchange xmlns=\"urn:zjamr:yrd:exchange:1\" version=\"1.0\"><Header/><Records>{}</Records></Exchange>",
                "<X/>".repeat(n)
            ),
        ),
        "jiangsu-unknown-keys" => {
            let keys: String = (0..n / 100).map(|i| format!("\"Q{i}\": \"\", ")).collect();
            let record = format!("{{{keys}\"CYDBH\": \"JS2024WS0102-0007\"}}");
            let data = vec![record; 100].join(",");
            (Partner::Jiangsu, format!("{{\"HEAD\": {{\"XXLX\": \"CYD\"}}, \"DATA\": [{data}]}}"))
        }
        other => {
            eprintln!("unknown shape {other}");
            std::process::exit(64);
        }
    };
    // The size limit is lifted: the figures are about the number of items, not bytes.
    let limits = DecodeLimits { max_bytes: usize::MAX >> 1, ..DecodeLimits::default() };
    let started = std::time::Instant::now();
    let outcome = match partner.decode(text.as_bytes(), &limits) {
        Ok(doc) => format!("accepted, {} records", doc.records.len()),
        Err(DecodeError::Invalid(p)) => format!("{} problems", p.len()),
        Err(e) => format!("refused: {e}"),
    };
    let elapsed = started.elapsed().as_secs_f64();
    println!("{shape} n={n} bytes={} {elapsed:.3} s: {}", text.len(), outcome.chars().take(160).collect::<String>());
}
