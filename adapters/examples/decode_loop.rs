//! Decodes one vector in a loop, for profilers (`valgrind --tool=callgrind`, `perf record`).
//! usage: decode_loop PARTNER FILE [ITERATIONS]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(partner), Some(file)) = (args.get(1).and_then(|p| yrdx_adapters::Partner::from_name(p)), args.get(2))
    else {
        eprintln!("usage: decode_loop PARTNER FILE [ITERATIONS]");
        std::process::exit(64);
    };
    let n: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let bytes = std::fs::read(file).unwrap_or_else(|e| {
        eprintln!("{file}: {e}");
        std::process::exit(66)
    });
    if std::env::var("YRDX_BASELINE").is_ok_and(|v| v == "xml") {
        // The bench's XML baseline (quick-xml events read and written back), for comparison.
        let text = std::str::from_utf8(&bytes).unwrap_or_default();
        let mut total = 0;
        let started = std::time::Instant::now();
        for _ in 0..n {
            let mut reader = quick_xml::Reader::from_str(text);
            let mut writer = quick_xml::Writer::new(Vec::with_capacity(bytes.len()));
            while let Ok(e) = reader.read_event() {
                if matches!(e, quick_xml::events::Event::Eof) || writer.write_event(e).is_err() {
                    break;
                }
            }
            total += writer.into_inner().len();
        }
        println!("{total} bytes written, {:.0} ns per document", started.elapsed().as_nanos() as f64 / n as f64);
        return;
    }
    let mut records = 0;
    let started = std::time::Instant::now();
    for _ in 0..n {
        if let Ok(doc) = partner.decode(&bytes, &Default::default()) {
            records += doc.records.len();
        }
    }
    println!("{records} records decoded, {:.0} ns per document", started.elapsed().as_nanos() as f64 / n as f64);
}
