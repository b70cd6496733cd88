//! Offers only TLS 1.0/1.1 to an address and prints what it answered (a manual check of the
//! `tls` suite's probe: `cargo run -p yrdx-conformance --example legacy_probe -- 127.0.0.1:443 1.1`).

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(version)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: legacy_probe HOST:PORT 1.0|1.1");
        std::process::exit(64);
    };
    let minor = if version == "1.0" { 1 } else { 2 };
    match yrdx_conformance::tls::probe_legacy_version(addr, minor, "localhost").await {
        Ok(outcome) => println!("{outcome:?}"),
        Err(e) => {
            eprintln!("{addr}: {e}");
            std::process::exit(1);
        }
    }
}
