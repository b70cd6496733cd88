//! Property tests: generated canonical records survive canonical → partner → canonical in every
//! field the partner carries, partner A → B → A keeps every field both carry, and no mutated
//! document makes a decoder panic.

use proptest::prelude::*;
use yrdx_adapters::{DecodeLimits, Partner, Record};
use yrdx_proto::identifiers::{organisation_check_character, uscc_check_character, USCC_ALPHABET};
use yrdx_proto::v1::*;
use yrdx_proto::{Date, Timestamp};

const REGIONS: &[&str] =
    &["310000", "310112", "320000", "320583", "330000", "330106", "110000", "110108", "340000", "440305"];
const PARTNERS: [Partner; 3] = [Partner::Jiangsu, Partner::Zhejiang, Partner::Beijing];

fn region() -> impl Strategy<Value = String> {
    prop::sample::select(REGIONS).prop_map(str::to_string)
}

/// Text as partners send it: Chinese, ASCII and the characters XML and JSON must escape; trimmed,
/// no control characters.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9中国产品质检<>&\"'/\\\\ 、，（）-]{0,24}"
        .prop_map(|s| s.trim().to_string())
        .prop_filter("non-empty", |s| !s.is_empty())
}

fn opt_text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), text()]
}

fn id(min: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Z0-9][A-Z0-9-]{{{},30}}", min - 1)).unwrap()
}

fn uscc() -> impl Strategy<Value = String> {
    let alphabet: Vec<char> = USCC_ALPHABET.chars().collect();
    (
        prop::collection::vec(prop::sample::select(alphabet.clone()), 8),
        prop::collection::vec(prop::sample::select(alphabet), 8),
    )
        .prop_map(|(head, org)| {
            let head: String = head.into_iter().collect();
            let org: String = org.into_iter().collect();
            let org_check = organisation_check_character(&org).unwrap_or('0');
            let first17 = format!("{head}{org}{org_check}");
            let check = uscc_check_character(&first17).unwrap_or('0');
            format!("{first17}{check}")
        })
}

fn date() -> impl Strategy<Value = Date> {
    (2000i32..2100, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| Date::from_ymd(y, m, d).unwrap())
}

fn instant() -> impl Strategy<Value = Timestamp> {
    (946_684_800i64..4_102_444_800).prop_map(|s| Timestamp { seconds: s, nanos: 0 })
}

fn category() -> impl Strategy<Value = i32> {
    prop::sample::select(yrdx_proto::codes::CATEGORIES.to_vec()).prop_map(|c| c as i32)
}

fn party() -> impl Strategy<Value = Party> {
    (text(), uscc(), region(), opt_text()).prop_map(|(name, uscc, region, address)| Party {
        name,
        uscc,
        region,
        address,
    })
}

fn product() -> impl Strategy<Value = Product> {
    (text(), category(), opt_text(), opt_text(), opt_text(), prop::option::of(date())).prop_map(
        |(name, category, brand, model, batch, production_date)| Product {
            name,
            category,
            brand,
            model,
            batch,
            production_date,
        },
    )
}

fn shop() -> impl Strategy<Value = OnlineShop> {
    (
        text(),
        text(),
        prop_oneof![Just(String::new()), "[a-z]{1,10}".prop_map(|h| format!("https://{h}.example.com/s"))],
        opt_text(),
    )
        .prop_map(|(platform, shop_name, shop_url, order_no)| OnlineShop {
            platform,
            shop_name,
            shop_url,
            order_no,
        })
}

fn sampling(online_only: bool) -> impl Strategy<Value = SamplingRecord> {
    let channel = if online_only { Just(2).boxed() } else { prop_oneof![Just(1), Just(2)].boxed() };
    (
        (id(6), id(4), region(), text(), date(), channel),
        (party(), prop::option::of(party()), shop(), product()),
        (1i32..10_000, text(), 0i32..100, 0i64..100_000_000, instant()),
    )
        .prop_map(
            |(
                (sample_id, plan_id, sampling_region, sampling_org, sampled_on, channel),
                (seller, producer, shop, product),
                (quantity, unit, reserve_quantity, unit_price, recorded_at),
            )| {
                SamplingRecord {
                    sample_id,
                    plan_id,
                    sampling_region,
                    sampling_org,
                    sampled_on: Some(sampled_on),
                    channel,
                    seller: Some(seller),
                    producer,
                    shop: (channel == 2).then_some(shop),
                    product: Some(product),
                    quantity,
                    unit,
                    reserve_quantity,
                    unit_price,
                    recorded_at: Some(recorded_at),
                }
            },
        )
}

fn item() -> impl Strategy<Value = InspectionItem> {
    (text(), text(), opt_text(), opt_text(), opt_text(), prop_oneof![Just((1, 1)), Just((2, 2)), Just((2, 3))])
        .prop_map(|(name, standard, requirement, measured, unit, (verdict, severity))| InspectionItem {
            name,
            standard,
            requirement,
            measured,
            unit,
            verdict,
            severity,
        })
}

fn inspection() -> impl Strategy<Value = InspectionResult> {
    (id(4), id(6), text(), "[0-9]{12}", date(), prop::collection::vec(item(), 0..6)).prop_map(
        |(report_no, sample_id, lab_name, lab_cma, issued_on, items)| {
            let failing = items.iter().any(|i| i.verdict == 2);
            InspectionResult {
                report_no,
                sample_id,
                lab_name,
                lab_cma,
                issued_on: Some(issued_on),
                conclusion: if failing { 2 } else { 1 },
                items,
            }
        },
    )
}

fn plan() -> impl Strategy<Value = SpotCheckPlan> {
    (
        (id(4), text(), 2000i32..=2100, region()),
        prop::collection::btree_map(region(), 1i32..500, 1..5),
        (
            prop_oneof![Just(1), Just(2), Just(3)],
            prop::collection::vec(category(), 1..4),
            prop::collection::vec(text(), 0..3),
            date(),
            instant(),
        ),
    )
        .prop_map(
            |((plan_id, title, year, lead_region), parts, (channel, categories, standards, deadline, published_at))| {
                SpotCheckPlan {
                    plan_id,
                    title,
                    year,
                    lead_region,
                    participants: parts.into_iter().map(|(region, quota)| PlanParticipant { region, quota }).collect(),
                    channel,
                    categories,
                    standards,
                    sampling_deadline: Some(deadline),
                    published_at: Some(published_at),
                }
            },
        )
}

fn transfer() -> impl Strategy<Value = DisposalCase> {
    (id(6), region(), region(), id(6), id(4), instant(), date()).prop_map(
        |(case_id, origin_region, responsible_region, sample_id, report_no, opened_at, due_on)| DisposalCase {
            case_id,
            origin_region,
            responsible_region,
            sample_id,
            report_no,
            opened_at: Some(opened_at),
            status: CaseStatus::Transferred as i32,
            due_on: Some(due_on),
            events: vec![],
            due_on_provisional: false,
        },
    )
}

fn feedback() -> impl Strategy<Value = CaseFeedback> {
    (id(6), id(6), instant(), region(), 2i32..=11, text(), 0i64..1_000_000_000).prop_map(
        |(case_id, event_id, at, by_region, action, note, amount)| CaseFeedback {
            case_id,
            event: Some(CaseEvent {
                event_id,
                at: Some(at),
                by_region,
                action,
                note,
                amount: (action == CaseAction::Penalty as i32).then_some(amount),
            }),
        },
    )
}

fn risk() -> impl Strategy<Value = RiskSignal> {
    (
        (id(6), 1i32..50, 1i32..=3, region(), date(), 1i32..=8),
        (
            product(),
            prop::collection::vec(prop::sample::select(vec![1, 2, 3, 4, 5, 6, 7, 8, 99]), 1..4),
            1i32..=4,
            text(),
            any::<bool>(),
        ),
        (prop::collection::vec(id(6), 0..3), opt_text()),
    )
        .prop_map(
            |(
                (signal_id, revision, state, reporting_region, observed_on, source),
                (product, hazards, level, summary, nationwide),
                (related_samples, recommended_measures),
            )| RiskSignal {
                signal_id,
                revision,
                state,
                reporting_region,
                observed_on: Some(observed_on),
                source,
                product: Some(product),
                hazards,
                level,
                summary,
                nationwide,
                related_samples,
                recommended_measures,
            },
        )
}

fn record(online_only: bool, with_risk: bool) -> BoxedStrategy<Record> {
    let mut options = vec![
        plan().prop_map(Record::Plan).boxed(),
        sampling(online_only).prop_map(Record::Sampling).boxed(),
        inspection().prop_map(Record::Inspection).boxed(),
        transfer().prop_map(Record::CaseTransfer).boxed(),
        feedback().prop_map(Record::CaseFeedback).boxed(),
    ];
    if with_risk {
        options.push(risk().prop_map(Record::RiskSignal).boxed());
    }
    prop::strategy::Union::new(options).boxed()
}

fn envelope(to: Partner) -> Envelope {
    Envelope {
        message_id: "YRDX-PROP-1".into(),
        sender: "310000".into(),
        receiver: to.envelope_id().into(),
        sent_at: Some(Timestamp { seconds: 1_710_469_800, nanos: 0 }),
    }
}

/// What Beijing keeps of a record: plans go as ONLINE, reports keep only failing items.
fn beijing_view(r: &Record) -> Record {
    match r {
        Record::Plan(p) => {
            let mut p = p.clone();
            p.channel = PlanChannel::Online as i32;
            Record::Plan(p)
        }
        Record::Inspection(i) => {
            let mut i = i.clone();
            i.items.retain(|it| it.verdict == Verdict::Fail as i32);
            Record::Inspection(i)
        }
        other => other.clone(),
    }
}

fn beijing_takes(r: &Record) -> bool {
    !matches!(r, Record::Plan(p) if p.channel == PlanChannel::Offline as i32)
        && !matches!(r, Record::RiskSignal(_))
        && !matches!(r, Record::Sampling(s) if s.channel != SalesChannel::Online as i32)
}

fn through(p: Partner, r: &Record) -> Record {
    let enc = p.encode(&envelope(p), std::slice::from_ref(r), 1).unwrap_or_else(|e| panic!("{p} encode: {e}"));
    let doc = p
        .decode(&enc.bytes, &DecodeLimits::default())
        .unwrap_or_else(|e| panic!("{p} decode of its own output: {e:?}\n{}", String::from_utf8_lossy(&enc.bytes)));
    assert_eq!(doc.envelope, envelope(p));
    assert_eq!(doc.records.len(), 1);
    doc.records.into_iter().next().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn canonical_through_each_partner(r in record(false, true)) {
        prop_assert_eq!(r.validate(), vec![], "generator made an invalid record");
        for p in [Partner::Jiangsu, Partner::Zhejiang, Partner::Canonical] {
            prop_assert_eq!(&through(p, &r), &r, "{}", p);
        }
        if beijing_takes(&r) {
            prop_assert_eq!(through(Partner::Beijing, &r), beijing_view(&r));
        } else {
            prop_assert!(Partner::Beijing.encode(&envelope(Partner::Beijing), std::slice::from_ref(&r), 1).is_err());
        }
    }

    #[test]
    fn partner_a_to_b_to_a(r in record(true, false)) {
        for a in PARTNERS {
            for b in PARTNERS {
                if a == b || ((a == Partner::Beijing || b == Partner::Beijing) && !beijing_takes(&r)) { continue; }
                let in_a = through(a, &r);
                let back = through(a, &through(b, &in_a));
                let both_carry = if a == Partner::Beijing || b == Partner::Beijing { beijing_view(&in_a) } else { in_a.clone() };
                prop_assert_eq!(back, both_carry, "{} -> {} -> {}", a, b, a);
            }
        }
    }

    #[test]
    fn a_records_stored_text_is_its_canonical_json(r in record(false, true)) {
        prop_assert_eq!(yrdx_adapters::canonical::record_json(&r), yrdx_adapters::canonical::record_to_value(&r).to_string());
        let forward = Record::CaseForward(Box::new(yrdx_adapters::CaseForward {
            case: Default::default(),
            sampling: match &r { Record::Sampling(s) => s.clone(), _ => Default::default() },
            inspection: match &r { Record::Inspection(i) => i.clone(), _ => Default::default() },
        }));
        prop_assert_eq!(yrdx_adapters::canonical::record_json(&forward), yrdx_adapters::canonical::record_to_value(&forward).to_string());
    }

    #[test]
    fn encoding_is_deterministic(r in record(true, false)) {
        for p in PARTNERS {
            if p == Partner::Beijing && !beijing_takes(&r) { continue; }
            let e = envelope(p);
            let one = p.encode(&e, std::slice::from_ref(&r), 1).unwrap();
            let two = p.encode(&e, std::slice::from_ref(&r), 1).unwrap();
            prop_assert_eq!(one, two);
        }
    }
}

/// Envelopes of one fanned-out document: its recipients' ids and the message id (one of them
/// with characters each format escapes).
fn fan_out_envelopes(to: &[&str], message_id: &str) -> Vec<Envelope> {
    to.iter()
        .map(|r| Envelope {
            message_id: message_id.into(),
            sender: "320000".into(),
            receiver: (*r).into(),
            sent_at: Some(Timestamp { seconds: 1_710_469_800 + r.len() as i64, nanos: 0 }),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// `encode_each` writes the records once and each envelope around them: every document is
    /// the one `encode` writes alone, and a JSON document is exactly its own pretty form (the
    /// layout every JSON format is written in), whatever the records hold.
    #[test]
    fn a_fan_out_writes_each_document_as_it_would_be_written_alone(r in record(false, true), copies in 1usize..3) {
        let records = vec![r; copies];
        for (i, p) in [Partner::Jiangsu, Partner::Zhejiang, Partner::Beijing, Partner::Canonical].into_iter().enumerate() {
            let to: &[&str] = &["310000", "330000", "SAMR", "110000"][..(i % 4) + 1];
            let message_id = if i % 2 == 0 { "YRDX-FAN-1" } else { "M-<&\"'1" };
            let envelopes = fan_out_envelopes(to, message_id);
            let alone: Vec<_> = envelopes.iter().map(|e| p.encode(e, &records, 1)).collect();
            match p.encode_each(&envelopes, &records, 1) {
                Ok(each) => {
                    prop_assert_eq!(each.len(), envelopes.len());
                    for (e, a) in each.iter().zip(&alone) {
                        prop_assert_eq!(Some(e), a.as_ref().ok(), "{}", p);
                        if p != Partner::Zhejiang {
                            let parsed: serde_json::Value = serde_json::from_slice(&e.bytes).unwrap();
                            let mut whole = serde_json::to_vec_pretty(&parsed).unwrap();
                            whole.push(b'\n');
                            prop_assert_eq!(String::from_utf8_lossy(&e.bytes), String::from_utf8_lossy(&whole), "{}", p);
                        }
                    }
                }
                Err(e) => {
                    for a in &alone {
                        prop_assert_eq!(a.as_ref().err().map(|x| x.to_string()), Some(e.to_string()), "{}", p);
                    }
                }
            }
        }
    }
}

fn example(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors").join(name);
    std::fs::read(path).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Hostile input: bytes flipped, cut or inserted anywhere never make a decoder panic.
    #[test]
    fn mutated_documents_never_panic(
        which in 0usize..5,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let (partner, file) = [
            (Partner::Jiangsu, "jiangsu/valid/example-sampling.json"),
            (Partner::Zhejiang, "zhejiang/valid/example-inspection.xml"),
            (Partner::Beijing, "beijing/valid/example-report.json"),
            (Partner::Samr, "samr/valid/example-ccjg.xml"),
            (Partner::Zhejiang, "zhejiang/valid/risk-signal.xml"),
        ][which];
        let mut bytes = example(file);
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        let limits = DecodeLimits::default();
        if partner == Partner::Samr {
            let _ = yrdx_adapters::samr::decode_package(&bytes, &limits);
            let _ = yrdx_adapters::samr::decode_receipt(&bytes);
        } else {
            let _ = partner.decode(&bytes, &limits);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Hostile XML structure — stray tags, references, CDATA, namespace declarations, attributes —
    /// spliced in anywhere never makes the streaming XML decoders panic or loop.
    #[test]
    fn spliced_xml_never_panics(
        which in 0usize..4,
        splices in prop::collection::vec((any::<prop::sample::Index>(), 0usize..16), 1..6),
    ) {
        const PIECES: [&str; 16] = [
            "<x>", "</Item>", "</Records>", "<Item verdict=\"fail\">", "&amp;", "&#0;", "&bogus;",
            "<![CDATA[", "]]>", " xmlns:p=\"urn:p\"", "<p:a/>", " id=\"A\" id=\"B\"", "<Name/>",
            "<!-- c -->", "<?pi?>", "<Exchange xmlns=\"urn:zjamr:yrd:exchange:1\">",
        ];
        let file = [
            "zhejiang/valid/example-inspection.xml",
            "zhejiang/valid/example-sampling.xml",
            "zhejiang/valid/plan.xml",
            "zhejiang/valid/risk-signal.xml",
        ][which];
        let mut text = String::from_utf8(example(file)).unwrap();
        for (at, piece) in splices {
            let mut i = at.index(text.len());
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            text.insert_str(i, PIECES[piece]);
        }
        let _ = Partner::Zhejiang.decode(text.as_bytes(), &DecodeLimits::default());
    }
}
