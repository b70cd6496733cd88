//! Strict input (issue 14): duplicate JSON keys refused with their path, problem collection capped,
//! documents of very many values or elements refused before interpretation, and canonical refusals
//! that name what was expected and what was found.

use yrdx_adapters::{DecodeError, DecodeLimits, Partner, Problem};

fn vector(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` with `from` replaced once (the test fails when `from` is not there).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the vector");
    text.replacen(from, to, 1)
}

fn refusal(p: Partner, text: &str) -> (String, String) {
    match p.decode(text.as_bytes(), &DecodeLimits::default()) {
        Err(DecodeError::Refused { path, message }) => (path, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn problems(p: Partner, text: &str, limits: &DecodeLimits) -> Vec<Problem> {
    match p.decode(text.as_bytes(), limits) {
        Err(DecodeError::Invalid(problems)) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn jiangsu_duplicate_keys_are_refused_by_path() {
    let doc = vector("jiangsu/valid/example-inspection.json");
    assert!(Partner::Jiangsu.decode(doc.as_bytes(), &DecodeLimits::default()).is_ok());
    let (path, message) =
        refusal(Partner::Jiangsu, &edit(&doc, r#""FSF": "310000","#, r#""FSF": "330000", "FSF": "310000","#));
    assert_eq!(path, "HEAD.FSF");
    assert!(message.starts_with("duplicate key 'FSF'"), "{message}");
    assert!(message.contains("line 5"), "the line is named: {message}");
    // Two HEAD objects.
    let two_heads = edit(&doc, r#""DATA": ["#, r#""HEAD": {}, "DATA": ["#);
    assert_eq!(refusal(Partner::Jiangsu, &two_heads).0, "HEAD");
    // A repeated record id key.
    let id = edit(&doc, r#""BGBH": "JSZJ-2024-WS-00731","#, r#""BGBH": "A-1", "BGBH": "JSZJ-2024-WS-00731","#);
    assert_eq!(refusal(Partner::Jiangsu, &id).0, "DATA[0].BGBH");
    let item = edit(&doc, r#""XMMC": "外观","#, r#""XMMC": "外观", "XMMC": "外观","#);
    assert_eq!(refusal(Partner::Jiangsu, &item).0, "DATA[0].XM[0].XMMC");
}

#[test]
fn beijing_and_canonical_duplicate_keys_are_refused_by_path() {
    let bj = vector("beijing/valid/example-sample.json");
    assert!(Partner::Beijing.decode(bj.as_bytes(), &DecodeLimits::default()).is_ok());
    let (path, message) =
        refusal(Partner::Beijing, &edit(&bj, r#""from": "310000","#, r#""from": "320000", "from": "310000","#));
    assert_eq!(path, "from");
    assert!(message.contains("duplicate key 'from'"), "{message}");

    let canonical = vector("canonical/valid/sampling-offline.json");
    assert!(Partner::Canonical.decode(canonical.as_bytes(), &DecodeLimits::default()).is_ok());
    let dup = edit(&canonical, r#""uscc": "91310000607352483G","#, r#""uscc": "X", "uscc": "91310000607352483G","#);
    assert_eq!(refusal(Partner::Canonical, &dup).0, "records[0].seller.uscc");
    let dup = edit(&canonical, r#""year": 2024,"#, r#""year": 2024, "year": 2023,"#);
    assert_eq!(refusal(Partner::Canonical, &dup).0, "records[0].sampledOn.year");
}

/// A canonical refusal names the field path, what the field takes and what was found.
#[test]
fn canonical_refusals_name_expected_and_found() {
    let doc = vector("canonical/valid/sampling-offline.json");
    let cases = [
        (
            r#""year": 2024,"#,
            r#""year": "MMXXIV","#,
            "records[0].sampledOn.year",
            "a 32-bit integer",
            "the string \"MMXXIV\"",
        ),
        (r#""year": 2024,"#, r#""year": true,"#, "records[0].sampledOn.year", "a 32-bit integer", "true"),
        (r#""quantity": 4,"#, r#""quantity": [4],"#, "records[0].quantity", "a 32-bit integer", "an array"),
        (
            r#""channel": "SALES_CHANNEL_OFFLINE","#,
            r#""channel": "OFFLINE","#,
            "records[0].channel",
            "one of the names SALES_CHANNEL_OFFLINE, SALES_CHANNEL_ONLINE",
            "the string \"OFFLINE\"",
        ),
        (
            r#""sampledOn": {"#,
            r#""sampledOn": "2024-03-20", "x": {"#,
            "records[0].sampledOn",
            "a date object",
            "the string \"2024-03-20\"",
        ),
        (r#""name": "上海闵行永安电器商店","#, r#""name": 12,"#, "records[0].seller.name", "a string", "the number 12"),
    ];
    for (from, to, path, expected, found) in cases {
        let got = match Partner::Canonical.decode(edit(&doc, from, to).as_bytes(), &DecodeLimits::default()) {
            Err(DecodeError::Invalid(p)) => p,
            other => panic!("{to}: expected problems, got {other:?}"),
        };
        let p = got.iter().find(|p| p.path == path).unwrap_or_else(|| panic!("{to}: no problem at {path}: {got:?}"));
        assert!(p.message.contains(&format!("expected {expected}")), "{to}: {}", p.message);
        assert!(p.message.contains(&format!("found {found}")), "{to}: {}", p.message);
        assert!(!p.message.contains("untagged enum"), "{to}: {}", p.message);
    }
    // An instant that is not RFC 3339.
    let bad_time = edit(&doc, r#""sentAt": "2024-03-15T02:30:00Z""#, r#""sentAt": "15/03/2024""#);
    let got = problems(Partner::Canonical, &bad_time, &DecodeLimits::default());
    assert_eq!(got[0].path, "envelope.sentAt");
    assert!(got[0].message.starts_with("expected an RFC 3339 instant"), "{}", got[0].message);
    assert!(got[0].message.contains("found the string \"15/03/2024\""), "{}", got[0].message);
}

/// A batch with far more problems than the cap reports the cap and one line saying more exist.
#[test]
fn problems_are_capped_and_the_rest_announced() {
    let doc = vector("jiangsu/valid/example-inspection.json");
    // 100 records with 40 unknown keys each: 4000 problems, over a cap of 1000.
    let unknown: String = (0..40).map(|i| format!("\"Q{i}\": \"\", ")).collect();
    let record = edit(&doc, r#""BGBH": "JSZJ-2024-WS-00731","#, &format!("{unknown}\"BGBH\": \"JSZJ-2024-WS-00731\","));
    let start = record.find("{\n      \"Q0\"").expect("record start");
    let end = record.rfind("\n  ]").expect("records end");
    let one = &record[start..end];
    let many = vec![one; 100].join(",\n");
    let text = format!("{}{}{}", &record[..start], many, &record[end..]);
    let limits = DecodeLimits::default();
    let got = problems(Partner::Jiangsu, &text, &limits);
    assert_eq!(got.len(), limits.max_problems + 1);
    let last = got.last().map(|p| p.message.clone()).unwrap_or_default();
    assert!(last.contains("stops after the first 1000"), "{last}");
    assert_eq!(got[0].path, "DATA[0].Q0");
    assert_eq!(got[0].record_id.as_deref(), Some("JSZJ-2024-WS-00731"));
    // A lower cap is honoured.
    let small = DecodeLimits { max_problems: 7, ..DecodeLimits::default() };
    assert_eq!(problems(Partner::Jiangsu, &text, &small).len(), 8);
}

/// A million tiny items in every format are refused by the value or element bound, before any of
/// them is interpreted (one refusal, not a million problems).
#[test]
fn a_million_items_are_refused_by_the_bound() {
    let numbers = format!("[{}0]", "0,".repeat(999_999));
    let jiangsu = format!(r#"{{"HEAD": {{}}, "DATA": {numbers}}}"#);
    let canonical = format!(r#"{{"kind": "sampling", "records": {numbers}}}"#);
    let beijing = format!(r#"{{"payload": {numbers}}}"#);
    let bound = DecodeLimits::default().max_nodes;
    for (p, text) in [(Partner::Jiangsu, &jiangsu), (Partner::Canonical, &canonical), (Partner::Beijing, &beijing)] {
        assert!(text.len() < DecodeLimits::default().max_bytes);
        let (path, message) = refusal(p, text);
        assert!(message.contains(&format!("more than {bound} values")), "{p:?}: {message}");
        assert!(path.ends_with(']'), "{p:?}: the path names the item: {path}");
    }
    let xml = vector("zhejiang/valid/example-sampling.xml");
    let empties = "<X/>".repeat(1_000_000);
    let zhejiang = edit(&xml, "</Records>", &format!("{empties}</Records>"));
    assert!(zhejiang.len() < DecodeLimits::default().max_bytes);
    let (_, message) = refusal(Partner::Zhejiang, &zhejiang);
    assert!(message.contains(&format!("more than {bound} elements")), "{message}");
}

/// Within the bound, the problems of a document of many invalid items are capped: collection
/// stops at the cap.
#[test]
fn many_invalid_items_within_the_bound_stop_at_the_cap() {
    let numbers = format!("[{}0]", "0,".repeat(99_999));
    let text = vector("canonical/valid/sampling-offline.json");
    let start = text.find("\"records\": [").expect("records");
    let canonical = format!("{}\"records\": {numbers}}}", &text[..start]);
    let limits = DecodeLimits { max_records: 1_000_000, ..DecodeLimits::default() };
    let got = problems(Partner::Canonical, &canonical, &limits);
    assert_eq!(got.len(), limits.max_problems + 1);
    assert_eq!(got[0].path, "records[0]");
    // The default record bound refuses the list before interpreting it: one problem.
    let got = problems(Partner::Canonical, &canonical, &DecodeLimits::default());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, "records");
    assert!(got[0].message.contains("at most 1000 records, found 100000"), "{}", got[0].message);
}
