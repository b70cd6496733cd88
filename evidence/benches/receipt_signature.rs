//! The cost of a receipt's SM2 signature beside the `sm2` crate's own signer, measured in the
//! same run.
//!
//! `GatewaySigningKey::sign_der` makes the same bytes as `sm2::dsa::SigningKey::try_sign` (tested
//! in `keys.rs`); this bench shows what decisions 186 (Z_A and (1 + d)⁻¹ once per key) and 192
//! (SM2's own field arithmetic and an affine generator table for [k]G) save per signature.
//! Criterion reports each; the closing table alternates the two signers (A B A B …, medians of
//! 15 rounds) and prints signatures/s and their ratio.

use criterion::{criterion_group, Criterion};
use sm2::dsa::signature::Signer;
use sm2::dsa::{Signature, SigningKey};
use sm2::pkcs8::DecodePrivateKey;
use sm2::SecretKey;
use std::hint::black_box;
use std::time::{Duration, Instant};
use yrdx_evidence::GatewaySigningKey;

const ID: &str = "1234567812345678";

/// A receipt's signed text, as long as the real ones.
fn receipt_text(i: u64) -> Vec<u8> {
    format!(
        "yrdx-receipt-v1\ngateway=urn:yrdx:gateway:310000\nsender=320000\nmessage_id=bench-{i:012}\n\
         document_sm3={:064x}\naccepted_at=2026-12-03T10:00:00.123Z\naudit_position={i}\n",
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    )
    .into_bytes()
}

fn keys() -> (GatewaySigningKey, SigningKey) {
    let ours = GatewaySigningKey::generate(ID).expect("a fresh key");
    let pem = ours.to_pkcs8_pem().expect("its PEM");
    let secret = SecretKey::from_pkcs8_pem(&pem).expect("the same key");
    let theirs = SigningKey::new(ID, &secret).expect("the sm2 crate's signer");
    (ours, theirs)
}

fn criterion_benches(c: &mut Criterion) {
    let (ours, theirs) = keys();
    let text = receipt_text(1);
    let mut group = c.benchmark_group("receipt_signature");
    group.bench_function("yrdx GatewaySigningKey::sign_der", |b| b.iter(|| ours.sign_der(black_box(&text))));
    group.bench_function("sm2 SigningKey::try_sign", |b| {
        b.iter(|| {
            let signature: Signature = theirs.try_sign(black_box(&text)).expect("signs");
            signature.to_der().to_vec()
        })
    });
    group.finish();
}

criterion_group!(benches, criterion_benches);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds per call of `f`, over a slice of about `slice`.
fn per_call(mut f: impl FnMut(), slice: Duration) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < slice {
        for _ in 0..16 {
            f();
        }
        calls += 16;
    }
    start.elapsed().as_secs_f64() / calls as f64
}

fn ratio_table() {
    let (ours, theirs) = keys();
    let rounds = 15;
    let slice = Duration::from_millis(if std::env::args().any(|a| a == "--test") { 5 } else { 100 });
    let (mut mine, mut base) = (Vec::new(), Vec::new());
    let mut i = 0u64;
    for _ in 0..rounds {
        base.push(per_call(
            || {
                i += 1;
                let signature: Signature = theirs.try_sign(&receipt_text(i)).expect("signs");
                black_box(signature.to_der().to_vec());
            },
            slice,
        ));
        mine.push(per_call(
            || {
                i += 1;
                black_box(ours.sign_der(&receipt_text(i)).expect("signs"));
            },
            slice,
        ));
    }
    let (m, b) = (median(mine), median(base));
    println!("\nreceipt signature, same run, alternating, median of {rounds} rounds");
    println!("{:<36} {:>14} {:>14}", "signer", "signatures/s", "µs each");
    println!("{:<36} {:>14.0} {:>14.1}", "sm2 SigningKey::try_sign", 1.0 / b, b * 1e6);
    println!("{:<36} {:>14.0} {:>14.1}", "yrdx GatewaySigningKey::sign_der", 1.0 / m, m * 1e6);
    println!("speed-up {:.2}×", b / m);
}

fn main() {
    // `-- --ratios` prints only the closing table (criterion would refuse the unknown flag).
    if !std::env::args().any(|a| a == "--ratios") {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    ratio_table();
}
