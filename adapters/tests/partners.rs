//! Behaviour the interface documents spell out, beyond what the vectors show.

use yrdx_adapters::{beijing, jiangsu, samr, zhejiang, DecodeLimits, EncodeError, Partner, Record, RecordKind};
use yrdx_proto::civil::parse_rfc3339;
use yrdx_proto::v1::*;

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors").join(name)).unwrap()
}

fn decode(p: Partner, name: &str) -> yrdx_adapters::Document {
    p.decode(&vector(name), &DecodeLimits::default()).unwrap()
}

fn envelope(to: Partner) -> Envelope {
    Envelope {
        message_id: "YRDX-T-1".into(),
        sender: "310000".into(),
        receiver: to.envelope_id().into(),
        sent_at: parse_rfc3339("2024-04-02T09:15:00+08:00"),
    }
}

#[test]
fn passing_items_are_reported_lost_for_beijing() {
    let doc = decode(Partner::Jiangsu, "jiangsu/valid/example-inspection.json");
    let out = beijing::encode(&envelope(Partner::Beijing), &doc.records).unwrap();
    let fields: Vec<&str> = out.losses.iter().map(|l| l.field.as_str()).collect();
    assert_eq!(fields, ["items[0]", "items[1]"]);
    assert!(out.losses.iter().all(|l| l.record_id == "JSZJ-2024-WS-00731"));
}

#[test]
fn a_both_plan_goes_to_beijing_as_online_with_the_loss_reported() {
    let doc = decode(Partner::Canonical, "canonical/valid/plan.json");
    let out = beijing::encode(&envelope(Partner::Beijing), &doc.records).unwrap();
    assert_eq!(out.losses.len(), 1);
    assert_eq!(out.losses[0].field, "channel");
    let text = String::from_utf8(out.bytes).unwrap();
    assert!(text.contains("\"channel\": \"ONLINE\""), "{text}");
}

#[test]
fn beijing_refuses_what_it_cannot_take() {
    for (file, kind) in [
        ("canonical/valid/sampling-offline.json", RecordKind::Sampling),
        ("canonical/valid/risk-signal.json", RecordKind::RiskSignal),
        ("canonical/valid/responsibility-report.json", RecordKind::ResponsibilityReport),
    ] {
        let doc = decode(Partner::Canonical, file);
        match beijing::encode(&envelope(Partner::Beijing), &doc.records) {
            Err(EncodeError::Unsupported { kind: k, .. }) => assert_eq!(k, kind),
            other => panic!("{file}: {other:?}"),
        }
    }
    let mut plan = decode(Partner::Canonical, "canonical/valid/plan.json").records;
    if let Record::Plan(p) = &mut plan[0] {
        p.channel = PlanChannel::Offline as i32;
    }
    assert!(matches!(beijing::encode(&envelope(Partner::Beijing), &plan), Err(EncodeError::Unsupported { .. })));
}

#[test]
fn beijing_takes_exactly_one_record() {
    let doc = decode(Partner::Jiangsu, "jiangsu/valid/example-sampling.json");
    let two = vec![doc.records[0].clone(), doc.records[0].clone()];
    assert!(matches!(beijing::encode(&envelope(Partner::Beijing), &two), Err(EncodeError::Batch(_))));
    assert!(matches!(beijing::encode(&envelope(Partner::Beijing), &[]), Err(EncodeError::Batch(_))));
}

#[test]
fn batch_limits_and_mixed_kinds() {
    let s = decode(Partner::Jiangsu, "jiangsu/valid/example-sampling.json").records.remove(0);
    let i = decode(Partner::Jiangsu, "jiangsu/valid/example-inspection.json").records.remove(0);
    assert!(jiangsu::encode(&envelope(Partner::Jiangsu), &vec![s.clone(); 100]).is_ok());
    assert!(matches!(jiangsu::encode(&envelope(Partner::Jiangsu), &vec![s.clone(); 101]), Err(EncodeError::Batch(_))));
    assert!(zhejiang::encode(&envelope(Partner::Zhejiang), &vec![s.clone(); 500]).is_ok());
    assert!(matches!(
        zhejiang::encode(&envelope(Partner::Zhejiang), &vec![s.clone(); 501]),
        Err(EncodeError::Batch(_))
    ));
    assert!(matches!(jiangsu::encode(&envelope(Partner::Jiangsu), &[s, i]), Err(EncodeError::Batch(_))));
}

#[test]
fn encoders_refuse_invalid_records_with_canonical_paths() {
    let mut doc = decode(Partner::Jiangsu, "jiangsu/valid/example-sampling.json");
    if let Record::Sampling(s) = &mut doc.records[0] {
        s.seller.as_mut().unwrap().uscc = "91310000MA1FL8M08K".into();
    }
    match zhejiang::encode(&envelope(Partner::Zhejiang), &doc.records) {
        Err(EncodeError::Invalid(p)) => {
            assert_eq!(p.len(), 2);
            assert!(p.iter().all(|x| x.path == "seller.uscc"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn zhejiang_reads_any_offset_and_prefix_and_writes_plus_eight() {
    let text = String::from_utf8(vector("zhejiang/valid/example-sampling.xml")).unwrap();
    let shifted = text
        .replace("2024-03-12T14:20:05+08:00", "2024-03-12T06:20:05Z")
        .replace(
            "<Exchange xmlns=\"urn:zjamr:yrd:exchange:1\"",
            "<zj:Exchange xmlns:zj=\"urn:zjamr:yrd:exchange:1\" xmlns=\"urn:zjamr:yrd:exchange:1\"",
        )
        .replace("</Exchange>", "</zj:Exchange>")
        .replace("<PlanRef>YRD-2024-WS-01</PlanRef>", "<zj:PlanRef><![CDATA[ YRD-2024-WS-01 ]]></zj:PlanRef>");
    let a = Partner::Zhejiang.decode(text.as_bytes(), &DecodeLimits::default()).unwrap();
    let b = Partner::Zhejiang.decode(shifted.as_bytes(), &DecodeLimits::default()).unwrap();
    assert_eq!(a.records, b.records);
    let out = zhejiang::encode(&a.envelope, &b.records).unwrap();
    assert_eq!(out.bytes, text.as_bytes(), "re-encoding gives the example's exact bytes");
    // Unprefixed children of a prefix-only root are in no namespace: refused, and said so.
    let no_default = shifted.replace(" xmlns=\"urn:zjamr:yrd:exchange:1\"", "");
    let err = Partner::Zhejiang.decode(no_default.as_bytes(), &DecodeLimits::default()).unwrap_err();
    assert!(err.problems().iter().any(|p| p.path == "/Exchange/Header" && p.message.contains("namespace")), "{err:?}");
}

#[test]
fn zhejiang_reads_xml_as_xml() {
    let text = String::from_utf8(vector("zhejiang/valid/example-sampling.xml")).unwrap();
    let plain = Partner::Zhejiang.decode(text.as_bytes(), &DecodeLimits::default()).unwrap();
    let decode = |doc: &str| Partner::Zhejiang.decode(doc.as_bytes(), &DecodeLimits::default());
    // A byte-order mark, CR LF line ends, comments, references and split text read the same.
    let dressed = format!("\u{feff}{}", text.replace('\n', "\r\n"))
        .replace("<Brand>恒力</Brand>", "<Brand><!-- brand -->恒<?pi x?>&#x529B;</Brand>")
        .replace("<Model>48V 20Ah</Model>", "<Model>48V&#32;20Ah</Model>");
    assert_eq!(decode(&dressed).unwrap().records, plain.records);
    // Nothing but white space, comments and processing instructions may follow the root.
    assert_eq!(decode(&format!("{text}<!-- end -->\n")).unwrap().records, plain.records);
    for tail in ["<Exchange/>", "trailing text"] {
        let err = decode(&format!("{text}{tail}")).unwrap_err();
        assert!(err.to_string().contains("after the root"), "{tail}: {err}");
    }
    let mut bad = text.clone().into_bytes();
    bad.extend_from_slice(b"<!-- \xff -->");
    let err = Partner::Zhejiang.decode(&bad, &DecodeLimits::default()).unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn zhejiang_names_each_problem_by_its_own_path() {
    let sampling = String::from_utf8(vector("zhejiang/valid/example-sampling.xml")).unwrap();
    let inspection = String::from_utf8(vector("zhejiang/valid/example-inspection.xml")).unwrap();
    let s = "/Exchange/Records/Sampling[1]";
    let i = "/Exchange/Records/Inspection[1]";
    let cases: &[(&str, &str, &str, String)] = &[
        (&sampling, "<Records>", "<Records count=\"1\">", "/Exchange/Records/@count".into()),
        (&sampling, "<Header>", "<Header v=\"1\">", "/Exchange/Header/@v".into()),
        (&sampling, "<Seller>", "<Seller kind=\"x\">", format!("{s}/Seller/@kind")),
        (&sampling, "<Quantity unit=\"块\">", "<Quantity unit=\"块\" size=\"2\">", format!("{s}/Quantity/@size")),
        (&sampling, "<UnitPrice currency=\"CNY\">", "<UnitPrice>", format!("{s}/UnitPrice/@currency")),
        (&sampling, "<Quantity unit=\"块\">2<", "<Quantity unit=\"块\">two<", format!("{s}/Quantity")),
        (&sampling, "<ReserveQuantity>1</ReserveQuantity>", "", format!("{s}/ReserveQuantity")),
        (&sampling, "<SampledOn>2024-03-12<", "<SampledOn>2024-3-12<", format!("{s}/SampledOn")),
        (&sampling, "<Category>0102<", "<Category>9999<", format!("{s}/Product/Category")),
        (&inspection, "<Item verdict=\"pass\">", "<Item verdict=\"ok\">", format!("{i}/Items/Item[1]/@verdict")),
        (&inspection, "<Unit>MΩ</Unit>", "<Unit>MΩ</Unit><Colour>x</Colour>", format!("{i}/Items/Item[2]/Colour")),
        (&inspection, "<Items>", "<Items><Entry/>", format!("{i}/Items/Entry")),
        (&inspection, "severity=\"general\"", "severity=\"mild\"", format!("{i}/Items/Item[4]/@severity")),
        (&inspection, "<Lab cma=\"241012340567\">", "<Lab>", format!("{i}/Lab/@cma")),
        (&inspection, "<Inspection id", "<Inspection xmlns=\"urn:other\" id", "/Exchange/Records/Inspection[1]".into()),
    ];
    for (doc, from, to, path) in cases {
        assert!(doc.contains(from), "{from}");
        let broken = doc.replacen(from, to, 1);
        let err = Partner::Zhejiang.decode(broken.as_bytes(), &DecodeLimits::default()).unwrap_err();
        let problems = err.problems();
        assert!(problems.iter().any(|p| &p.path == path), "{from} → {to}: expected {path} in {problems:#?}");
        if path.starts_with(s) || path.starts_with(i) {
            assert!(problems.iter().all(|p| p.record_id.is_some()), "record id on every problem: {problems:#?}");
        }
    }
}

#[test]
fn jiangsu_missing_key_means_empty() {
    let text = String::from_utf8(vector("jiangsu/valid/example-sampling.json")).unwrap();
    let without_batch = text.replace("      \"PH\": \"HL240105\",\n", "");
    let doc = Partner::Jiangsu.decode(without_batch.as_bytes(), &DecodeLimits::default()).unwrap();
    let Record::Sampling(s) = &doc.records[0] else { panic!() };
    assert_eq!(s.product.as_ref().unwrap().batch, "");
}

#[test]
fn samr_package_numbers_and_digest() {
    let day = yrdx_proto::Date::from_ymd(2024, 4, 2).unwrap();
    assert_eq!(samr::package_number("310000", &day, 1), "SJB-310000-20240402-0001");
    assert_eq!(samr::package_number("310000", &day, 42), "SJB-310000-20240402-0042");
    let doc = decode(Partner::Canonical, "canonical/valid/risk-signal.json");
    let out = samr::encode(&envelope(Partner::Samr), 5, &doc.records).unwrap();
    let pkg = samr::decode_package(&out.bytes, &DecodeLimits::default()).unwrap();
    assert_eq!(pkg.header.number, "SJB-310000-20240402-0005");
    assert_eq!(pkg.header.package_type, samr::PackageType::RiskReports);
    let fields: std::collections::HashMap<_, _> = pkg.records[0].iter().cloned().collect();
    assert_eq!(fields["WHLX"], "火灾、爆炸");
    assert_eq!(fields["ZT"], "更新");
    assert_eq!(fields["FXDJ"], "高");
    assert_eq!(fields["GLCYD"], "JS2024WS0102-0007");
    assert!(samr::encode(&envelope(Partner::Samr), 0, &doc.records).is_err());
    assert!(samr::encode(&envelope(Partner::Samr), 10_000, &doc.records).is_err());
}

#[test]
fn samr_bytes_are_gb18030() {
    let doc = decode(Partner::Canonical, "canonical/valid/responsibility-report.json");
    let out = samr::encode(&envelope(Partner::Samr), 1, &doc.records).unwrap();
    assert!(std::str::from_utf8(&out.bytes).is_err(), "Chinese text is GB18030, not UTF-8");
    let (text, _, bad) = encoding_rs_decode(&out.bytes);
    assert!(!bad);
    assert!(text.contains("<QYLX>生产</QYLX>") && text.contains("<ML>0103,0402</ML>"), "{text}");
}

fn encoding_rs_decode(bytes: &[u8]) -> (String, (), bool) {
    let (cow, _, bad) = encoding_rs::GB18030.decode(bytes);
    (cow.into_owned(), (), bad)
}

#[test]
fn closed_case_summary() {
    let doc = decode(Partner::Canonical, "canonical/valid/closed-case.json");
    let out = samr::encode(&envelope(Partner::Samr), 1, &doc.records).unwrap();
    let pkg = samr::decode_package(&out.bytes, &DecodeLimits::default()).unwrap();
    let f: std::collections::HashMap<_, _> = pkg.records[0].iter().cloned().collect();
    assert_eq!(f["JG"], "整改完成");
    assert_eq!(f["CS"], "责令整改、罚没");
    assert_eq!(f["FMJE"], "12800.50");
    assert_eq!(f["JASJ"], "2024-05-06 15:30:00");
    // A case closed by a passing re-check, without measures.
    let mut rechecked = doc.records;
    if let Record::ClosedCase(c) = &mut rechecked[0] {
        c.events.retain(|e| e.action == CaseAction::Accept as i32 || e.action == CaseAction::Notify as i32);
        c.events.push(CaseEvent {
            event_id: "FK-9".into(),
            at: parse_rfc3339("2024-06-01T10:00:00+08:00"),
            by_region: "320000".into(),
            action: CaseAction::Objection as i32,
            note: String::new(),
            amount: None,
        });
        c.events.push(CaseEvent {
            event_id: "FK-10".into(),
            at: parse_rfc3339("2024-06-10T10:00:00+08:00"),
            by_region: "320000".into(),
            action: CaseAction::RecheckPass as i32,
            note: String::new(),
            amount: None,
        });
    }
    let out = samr::encode(&envelope(Partner::Samr), 1, &rechecked).unwrap();
    let pkg = samr::decode_package(&out.bytes, &DecodeLimits::default()).unwrap();
    let f: std::collections::HashMap<_, _> = pkg.records[0].iter().cloned().collect();
    assert_eq!(f["JG"], "复检合格");
    assert_eq!(f["CS"], "");
    assert_eq!(f["FMJE"], "0.00");
}

#[test]
fn receipts_round_trip() {
    let accepted = samr::decode_receipt(&vector("samr/receipts/example-accepted.xml")).unwrap();
    assert_eq!(
        accepted,
        samr::Receipt { number: "SJB-310000-20240402-0001".into(), accepted: true, reason: String::new() }
    );
    let rejected =
        samr::Receipt {
            number: "SJB-310000-20240402-0002".into(), accepted: false, reason: "摘要校验失败".into()
        };
    assert_eq!(samr::decode_receipt(&samr::encode_receipt(&rejected)).unwrap(), rejected);
    assert_eq!(samr::encode_receipt(&accepted), vector("samr/receipts/example-accepted.xml"));
}

#[test]
fn sub_second_precision_is_reported_not_silently_dropped() {
    let mut doc = decode(Partner::Jiangsu, "jiangsu/valid/example-sampling.json");
    if let Record::Sampling(s) = &mut doc.records[0] {
        s.recorded_at.as_mut().unwrap().nanos = 250_000_000;
    }
    for p in [Partner::Jiangsu, Partner::Zhejiang, Partner::Beijing] {
        let out = p.encode(&envelope(p), &doc.records, 1).unwrap();
        let lost: Vec<&str> = out.losses.iter().map(|l| l.field.as_str()).collect();
        if p == Partner::Beijing {
            assert!(lost.is_empty(), "Beijing carries milliseconds: {lost:?}");
        } else {
            assert_eq!(lost, ["recorded_at"], "{p}");
        }
    }
    if let Record::Sampling(s) = &mut doc.records[0] {
        s.recorded_at.as_mut().unwrap().nanos = 250_000_001;
    }
    let out = beijing::encode(&envelope(Partner::Beijing), &doc.records).unwrap();
    assert_eq!(out.losses.len(), 1);
    assert!(Partner::Canonical.encode(&envelope(Partner::Canonical), &doc.records, 1).unwrap().losses.is_empty());
}
