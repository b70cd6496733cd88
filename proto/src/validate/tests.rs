//! Validation tests: one valid record of each kind (from the partner examples) and one test per rule.

use super::*;
use crate::civil::BeijingTime;

fn date(y: i32, m: u32, d: u32) -> Option<Date> {
    Date::from_ymd(y, m, d)
}

fn at(text: &str) -> Option<Timestamp> {
    Some(BeijingTime::parse_compact(text).unwrap().to_timestamp())
}

fn paths(v: &[Violation]) -> Vec<&str> {
    v.iter().map(|x| x.path.as_str()).collect()
}

pub(crate) fn sampling() -> SamplingRecord {
    SamplingRecord {
        sample_id: "JS2024WS0102-0007".into(),
        plan_id: "YRD-2024-WS-01".into(),
        sampling_region: "320000".into(),
        sampling_org: "江苏省产品质量监督检验研究院".into(),
        sampled_on: date(2024, 3, 12),
        channel: SalesChannel::Online as i32,
        seller: Some(Party {
            name: "杭州速行电动车商行有限公司".into(),
            uscc: "91330106131860916H".into(),
            region: "330106".into(),
            address: "浙江省杭州市西湖区文三路88号".into(),
        }),
        producer: Some(Party {
            name: "昆山恒力新能源科技有限公司".into(),
            uscc: "913205839083016639".into(),
            region: "320583".into(),
            address: "江苏省昆山市玉山镇新南中路1号".into(),
        }),
        shop: Some(OnlineShop {
            platform: "淘宝".into(),
            shop_name: "速行电动车配件专营店".into(),
            shop_url: "https://suxing.example.com/shop/128".into(),
            order_no: "3671209988120034".into(),
        }),
        product: Some(Product {
            name: "电动自行车用锂离子蓄电池".into(),
            category: ProductCategory::EBikeLithiumBattery as i32,
            brand: "恒力".into(),
            model: "48V 20Ah".into(),
            batch: "HL240105".into(),
            production_date: date(2024, 1, 5),
        }),
        quantity: 2,
        unit: "块".into(),
        reserve_quantity: 1,
        unit_price: 68_900,
        recorded_at: at("20240312142005"),
    }
}

fn item(name: &str, verdict: Verdict, severity: Severity) -> InspectionItem {
    InspectionItem {
        name: name.into(),
        standard: "GB/T 36972-2018 5.1".into(),
        requirement: String::new(),
        measured: String::new(),
        unit: String::new(),
        verdict: verdict as i32,
        severity: severity as i32,
    }
}

fn inspection() -> InspectionResult {
    InspectionResult {
        report_no: "JSZJ-2024-WS-00731".into(),
        sample_id: "JS2024WS0102-0007".into(),
        lab_name: "江苏省产品质量监督检验研究院".into(),
        lab_cma: "241012340567".into(),
        issued_on: date(2024, 4, 2),
        conclusion: Conclusion::Nonconforming as i32,
        items: vec![item("外观", Verdict::Pass, Severity::None), item("过充电保护", Verdict::Fail, Severity::Serious)],
    }
}

#[test]
fn example_records_are_valid() {
    assert_eq!(sampling().validate(), vec![]);
    assert_eq!(inspection().validate(), vec![]);
    let joined = SpotCheckResult { sampling: Some(sampling()), inspection: Some(inspection()) };
    assert_eq!(joined.validate(), vec![]);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let mut s = sampling();
    s.sample_id = "js-1".into();
    s.seller.as_mut().unwrap().uscc = "91310000MA1FL8M08K".into();
    s.producer.as_mut().unwrap().region = "990000".into();
    s.quantity = 0;
    s.unit_price = -1;
    s.product.as_mut().unwrap().category = 0;
    let v = s.validate();
    assert_eq!(
        paths(&v),
        vec![
            "sample_id",
            "seller.uscc",
            "seller.uscc",
            "producer.region",
            "product.category",
            "quantity",
            "unit_price"
        ],
        "{v:#?}"
    );
    assert!(v[1].message.contains("'9'") && v[2].message.contains("'G'"), "{v:#?}");
}

#[test]
fn shop_follows_channel() {
    let mut s = sampling();
    s.shop = None;
    assert_eq!(paths(&s.validate()), vec!["shop"]);
    let mut s = sampling();
    s.channel = SalesChannel::Offline as i32;
    assert_eq!(paths(&s.validate()), vec!["shop"]);
    s.shop = None;
    assert_eq!(s.validate(), vec![]);
    let mut s = sampling();
    s.shop.as_mut().unwrap().shop_url = "suxing.example.com".into();
    assert_eq!(paths(&s.validate()), vec!["shop.shop_url"]);
}

#[test]
fn producer_is_optional_but_checked_when_present() {
    let mut s = sampling();
    s.producer = None;
    assert_eq!(s.validate(), vec![]);
    s.producer = Some(Party::default());
    assert_eq!(paths(&s.validate()), vec!["producer.name", "producer.uscc", "producer.region"]);
}

#[test]
fn conclusion_matches_failing_items() {
    let mut r = inspection();
    r.conclusion = Conclusion::Conforming as i32;
    assert_eq!(paths(&r.validate()), vec!["conclusion"]);
    let mut r = inspection();
    r.items.truncate(1);
    assert_eq!(paths(&r.validate()), vec!["conclusion"]);
    r.conclusion = Conclusion::Conforming as i32;
    assert_eq!(r.validate(), vec![]);
}

#[test]
fn severity_follows_verdict() {
    let mut r = inspection();
    r.items[0].severity = Severity::General as i32;
    r.items[1].severity = Severity::None as i32;
    r.items.push(item("x", Verdict::Fail, Severity::Unspecified));
    assert_eq!(paths(&r.validate()), vec!["items[0].severity", "items[1].severity", "items[2].severity"]);
}

#[test]
fn cma_and_report_patterns() {
    let mut r = inspection();
    r.lab_cma = "24101234056".into();
    r.report_no = "JS_1".into();
    r.issued_on = Some(Date { year: 2024, month: 2, day: 30 });
    assert_eq!(paths(&r.validate()), vec!["report_no", "lab_cma", "issued_on"]);
}

fn case() -> DisposalCase {
    DisposalCase {
        case_id: "CASE-2024-0001".into(),
        origin_region: "320000".into(),
        responsible_region: "330000".into(),
        sample_id: "JS2024WS0102-0007".into(),
        report_no: "JSZJ-2024-WS-00731".into(),
        opened_at: at("20240402100000"),
        status: CaseStatus::Transferred as i32,
        due_on: date(2024, 4, 10),
        events: vec![],
        due_on_provisional: false,
    }
}

fn event(action: CaseAction, amount: Option<i64>, note: &str) -> CaseEvent {
    CaseEvent {
        event_id: "EV-000001".into(),
        at: at("20240403100000"),
        by_region: "330000".into(),
        action: action as i32,
        note: note.into(),
        amount,
    }
}

#[test]
fn amount_only_on_penalty_and_note_on_return() {
    let mut c = case();
    assert_eq!(c.validate(), vec![]);
    c.events = vec![
        event(CaseAction::Penalty, Some(500_000), ""),
        event(CaseAction::Penalty, None, ""),
        event(CaseAction::Accept, Some(1), ""),
        event(CaseAction::Return, None, ""),
        event(CaseAction::Return, None, "非本辖区"),
    ];
    assert_eq!(paths(&c.validate()), vec!["events[1].amount", "events[2].amount", "events[3].note"]);
    let fb = CaseFeedback { case_id: "CASE-2024-0001".into(), event: Some(event(CaseAction::Notify, Some(3), "")) };
    assert_eq!(paths(&fb.validate()), vec!["event.amount"]);
}

#[test]
fn final_cases_need_no_due_date() {
    let mut c = case();
    c.due_on = None;
    assert_eq!(paths(&c.validate()), vec!["due_on"]);
    c.status = CaseStatus::Closed as i32;
    assert_eq!(c.validate(), vec![]);
}

fn report() -> ResponsibilityReport {
    ResponsibilityReport {
        enterprise: sampling().producer,
        role: EnterpriseRole::Producer as i32,
        catalogue: vec![ProductCategory::EBikeLithiumBattery as i32],
        director_name: "王敏".into(),
        director_appointed_on: date(2023, 1, 9),
        officers: 3,
        period: "2024-03".into(),
        daily_checks: 21,
        weekly_checks: 4,
        monthly_reviews: 1,
        hazards_found: 2,
        hazards_fixed: 2,
    }
}

#[test]
fn hazards_fixed_never_exceed_found() {
    assert_eq!(report().validate(), vec![]);
    let mut r = report();
    r.hazards_fixed = 3;
    r.period = "2024-3".into();
    r.catalogue.clear();
    r.officers = -1;
    assert_eq!(paths(&r.validate()), vec!["catalogue", "period", "officers", "hazards_fixed"]);
}

#[test]
fn plan_rules() {
    let plan = SpotCheckPlan {
        plan_id: "YRD-2024-WS-01".into(),
        title: "2024年长三角网络销售电动自行车用锂电池联动抽查".into(),
        year: 2024,
        lead_region: "310000".into(),
        participants: vec![
            PlanParticipant { region: "310000".into(), quota: 10 },
            PlanParticipant { region: "320000".into(), quota: 8 },
        ],
        channel: PlanChannel::Online as i32,
        categories: vec![ProductCategory::EBikeLithiumBattery as i32],
        standards: vec!["GB/T 36972-2018".into()],
        sampling_deadline: date(2024, 6, 30),
        published_at: at("20240301090000"),
    };
    assert_eq!(plan.validate(), vec![]);
    let mut bad = plan.clone();
    bad.year = 1999;
    bad.participants.push(PlanParticipant { region: "320000".into(), quota: 0 });
    bad.categories.push(4);
    bad.channel = 0;
    assert_eq!(
        paths(&bad.validate()),
        vec!["year", "participants[2].quota", "participants[2].region", "channel", "categories[1]"]
    );
}

#[test]
fn risk_rules() {
    let signal = RiskSignal {
        signal_id: "FX-2024-0012".into(),
        revision: 1,
        state: RiskState::New as i32,
        reporting_region: "320000".into(),
        observed_on: date(2024, 4, 3),
        source: RiskSource::SpotCheck as i32,
        product: sampling().product,
        hazards: vec![Hazard::Fire as i32],
        level: RiskLevel::High as i32,
        summary: "过充电保护失效，存在起火风险".into(),
        nationwide: true,
        related_samples: vec!["JS2024WS0102-0007".into()],
        recommended_measures: String::new(),
    };
    assert_eq!(signal.validate(), vec![]);
    let mut bad = signal;
    bad.revision = 0;
    bad.hazards.clear();
    bad.related_samples.push("x".into());
    assert_eq!(paths(&bad.validate()), vec!["revision", "hazards", "related_samples[1]"]);
}

#[test]
fn text_must_be_trimmed_and_clean() {
    let mut s = sampling();
    s.unit = " 块".into();
    s.sampling_org = "a\nb".into();
    assert_eq!(paths(&s.validate()), vec!["sampling_org", "unit"]);
}
