//! Walks every conformance vector: adding a vector needs no code.
//! Set `YRDX_BLESS=1` to write the expected canonical document of a new valid vector.

use yrdx_adapters::Partner;
use yrdx_conformance::vectors::{self, Expectation};

#[test]
fn every_vector_holds() {
    let all = vectors::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")).expect("vectors load");
    let bless = std::env::var("YRDX_BLESS").is_ok_and(|v| v == "1");
    let failures: Vec<String> =
        all.iter().filter_map(|v| vectors::check(v, bless).err().map(|e| format!("{}: {e}", v.name()))).collect();
    assert!(failures.is_empty(), "{} of {} vectors fail:\n{}", failures.len(), all.len(), failures.join("\n"));
    // Every partner has valid and invalid vectors, so a missing folder cannot pass silently.
    for p in Partner::ALL {
        let valid = all.iter().filter(|v| v.partner == p && matches!(v.expect, Expectation::Valid { .. })).count();
        let invalid = all.iter().filter(|v| v.partner == p && matches!(v.expect, Expectation::Invalid(_))).count();
        assert!(valid >= 4 && invalid >= 4, "{p}: {valid} valid and {invalid} invalid vectors");
    }
    println!("{} vectors checked", all.len());
}

#[test]
fn a_wrong_expectation_fails() {
    // The checker itself can fail: a valid document presented as invalid is reported.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
    let mut v = vectors::load(&dir)
        .unwrap()
        .into_iter()
        .find(|v| v.name().ends_with("jiangsu/valid/example-sampling.json"))
        .unwrap();
    v.expect = Expectation::Invalid(vectors::InvalidExpectation {
        paths: vec!["DATA[0].CYDBH".into()],
        refused: false,
        max_bytes: None,
        record_id: None,
        requirements: vec![],
    });
    assert!(vectors::check(&v, false).is_err());
}
