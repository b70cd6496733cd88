//! The Zhejiang envelope: "on input any order of children is accepted" holds for `<Exchange>`'s
//! own children too (`<Records>` before `<Header>`), and a refused root element (Zhejiang's or
//! SAMR's) says what was found and what was expected; SAMR record problems name the record.

use yrdx_adapters::{zhejiang, DecodeError, DecodeLimits, Partner};

fn vectors() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors/zhejiang/valid");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "xml") {
            out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    out.sort();
    assert!(out.len() >= 8, "the valid Zhejiang vectors are there: {}", out.len());
    out
}

/// The document with its `<Header>…</Header>` moved after `</Records>`.
fn records_first(xml: &str) -> String {
    let start = xml.find("<Header>").expect("a header");
    let end = xml.find("</Header>").expect("a header end") + "</Header>".len();
    let header = &xml[start..end];
    let without = format!("{}{}", &xml[..start], &xml[end..]);
    let close = without.find("</Records>").expect("records end") + "</Records>".len();
    format!("{}\n  {header}{}", &without[..close], &without[close..])
}

fn problems(e: DecodeError) -> Vec<(String, String, Option<String>)> {
    e.problems().into_iter().map(|p| (p.path, p.message, p.record_id)).collect()
}

#[test]
fn records_before_the_header_decode_to_the_same_document() {
    for (name, xml) in vectors() {
        let usual = zhejiang::decode(xml.as_bytes(), &DecodeLimits::default()).unwrap();
        let swapped = records_first(&xml);
        assert!(swapped.find("<Records>") < swapped.find("<Header>"), "{name}: swapped");
        let got = zhejiang::decode(swapped.as_bytes(), &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{name}: records before the header refused: {e}"));
        assert_eq!(got, usual, "{name}");
        // And through the partner dispatch (what Submit and `yrdx translate` use).
        assert_eq!(Partner::Zhejiang.decode(swapped.as_bytes(), &DecodeLimits::default()).unwrap(), usual);
    }
}

#[test]
fn records_first_under_a_prefix_with_comments_between() {
    let (_, xml) = vectors().into_iter().find(|(n, _)| n.ends_with("example-sampling.xml")).unwrap();
    let usual = zhejiang::decode(xml.as_bytes(), &DecodeLimits::default()).unwrap();
    let prefixed = records_first(&xml)
        .replace("<Exchange xmlns=\"urn:zjamr:yrd:exchange:1\"", "<zj:Exchange xmlns:zj=\"urn:zjamr:yrd:exchange:1\"")
        .replace("</Exchange>", "</zj:Exchange>")
        .replace('<', "<zj:")
        .replace("<zj:/", "</zj:")
        .replace("<zj:?xml", "<?xml")
        .replace("<zj:zj:", "<zj:")
        .replace("</zj:zj:", "</zj:")
        .replace("</zj:Records>", "</zj:Records><!-- between -->");
    let got =
        zhejiang::decode(prefixed.as_bytes(), &DecodeLimits::default()).unwrap_or_else(|e| panic!("{e}\n{prefixed}"));
    assert_eq!(got, usual);
}

#[test]
fn problems_in_records_read_before_the_header_keep_their_paths_and_ids() {
    let (_, xml) = vectors().into_iter().find(|(n, _)| n.ends_with("example-sampling.xml")).unwrap();
    let bad = records_first(&xml)
        .replace("<CreditCode>91330106131860916H</CreditCode>", "<CreditCode>91330106131860916X</CreditCode>");
    let got = problems(zhejiang::decode(bad.as_bytes(), &DecodeLimits::default()).unwrap_err());
    assert!(
        got.iter().any(|(path, _, id)| path == "/Exchange/Records/Sampling[1]/Seller/CreditCode"
            && id.as_deref() == Some("JS2024WS0102-0007")),
        "{got:?}"
    );
    // A record of another kind than the header says, with the records first.
    let wrong_kind = records_first(&xml).replace("<Kind>Sampling</Kind>", "<Kind>Inspection</Kind>");
    let got = problems(zhejiang::decode(wrong_kind.as_bytes(), &DecodeLimits::default()).unwrap_err());
    assert!(
        got.iter().any(|(path, message, _)| path == "/Exchange/Records/Sampling[1]"
            && message.contains("<Sampling> in a message whose Kind is Inspection")),
        "{got:?}"
    );
}

#[test]
fn header_and_records_appear_once_each() {
    let (_, xml) = vectors().into_iter().find(|(n, _)| n.ends_with("example-sampling.xml")).unwrap();
    let start = xml.find("<Header>").unwrap();
    let end = xml.find("</Header>").unwrap() + "</Header>".len();
    let twice = format!("{}{}{}", &xml[..end], &xml[start..end], &xml[end..]);
    let got = problems(zhejiang::decode(twice.as_bytes(), &DecodeLimits::default()).unwrap_err());
    assert!(got.iter().any(|(path, message, _)| path == "/Exchange/Header" && message.contains("repeated")), "{got:?}");
    let missing = format!("{}{}", &xml[..start], &xml[end..]);
    let got = problems(zhejiang::decode(missing.as_bytes(), &DecodeLimits::default()).unwrap_err());
    assert!(got.iter().any(|(path, message, _)| path == "/Exchange/Header" && message == "required"), "{got:?}");
    let other = xml.replace("<Header>", "<Extra/><Header>");
    let got = problems(zhejiang::decode(other.as_bytes(), &DecodeLimits::default()).unwrap_err());
    assert!(
        got.iter().any(|(path, message, _)| path == "/Exchange/Extra"
            && message.contains("expected <Header> and <Records>, once each, in any order")),
        "{got:?}"
    );
}

#[test]
fn a_root_in_another_namespace_names_both_namespaces() {
    let (_, xml) = vectors().into_iter().find(|(n, _)| n.ends_with("plan.xml")).unwrap();
    let wrong = xml.replace("urn:zjamr:yrd:exchange:1", "urn:zjamr:yrd:exchange:2");
    let message = zhejiang::decode(wrong.as_bytes(), &DecodeLimits::default()).unwrap_err().to_string();
    assert!(message.contains("'urn:zjamr:yrd:exchange:2'"), "found: {message}");
    assert!(message.contains("expected the namespace urn:zjamr:yrd:exchange:1"), "expected: {message}");
    let none = xml.replace(" xmlns=\"urn:zjamr:yrd:exchange:1\"", "");
    let message = zhejiang::decode(none.as_bytes(), &DecodeLimits::default()).unwrap_err().to_string();
    assert!(message.contains("is in no namespace"), "{message}");
    let renamed = xml.replace("<Exchange ", "<Exchang ").replace("</Exchange>", "</Exchang>");
    let message = zhejiang::decode(renamed.as_bytes(), &DecodeLimits::default()).unwrap_err().to_string();
    assert!(message.contains("the root element is <Exchang>; expected <Exchange>"), "{message}");
}

#[test]
fn samr_roots_name_what_was_found() {
    let package = "<?xml version=\"1.0\" encoding=\"GB18030\"?><SJB xmlns=\"urn:x\"><BT/></SJB>";
    let message =
        yrdx_adapters::samr::decode_package(package.as_bytes(), &DecodeLimits::default()).unwrap_err().to_string();
    assert!(message.contains("'urn:x'") && message.contains("no namespace"), "{message}");
    let package = "<?xml version=\"1.0\" encoding=\"GB18030\"?><SJBX/>";
    let message =
        yrdx_adapters::samr::decode_package(package.as_bytes(), &DecodeLimits::default()).unwrap_err().to_string();
    assert!(message.contains("the root element is <SJBX>; expected <SJB>"), "{message}");
    // A problem inside a package's record names the record's own id (CYDBH for CCJG).
    let bad = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors/samr/invalid/bad-uscc.xml"),
    )
    .unwrap();
    let got = problems(yrdx_adapters::samr::decode_package(&bad, &DecodeLimits::default()).unwrap_err());
    assert!(
        got.iter()
            .any(|(path, _, id)| path == "/SJB/SJ/JL[1]/BCYDW/XYDM" && id.as_deref() == Some("JS2024WS0102-0007")),
        "{got:?}"
    );
    let receipt = "<?xml version=\"1.0\" encoding=\"GB18030\"?><HZX/>";
    let message = yrdx_adapters::samr::decode_receipt(receipt.as_bytes()).unwrap_err().to_string();
    assert!(message.contains("the root element is <HZX>; expected <HZ>"), "{message}");
}
