//! Workflow rules end to end (`docs/domain.md` sections 4 and 6): each acceptance rule of a sampling
//! record, mutual recognition, and risk-signal revisions. Each would fail without its rule.

use tonic::Code;
use yrdx_adapters::{Partner, Record};
use yrdx_proto::v1::{PlanParticipant, ProductCategory, RiskState, SalesChannel, SubmitReply};
use yrdx_proto::Date;
use yrdx_tests::records::{example_plan, example_sampling};
use yrdx_tests::{vector_record, TestGateway};

fn plan(participants: &[(&str, i32)]) -> Record {
    let mut r = example_plan();
    if let Record::Plan(p) = &mut r {
        p.participants =
            participants.iter().map(|(r, q)| PlanParticipant { region: r.to_string(), quota: *q }).collect();
    }
    r
}

/// The example sampling record as region `region` would sample it, with changes.
fn sampling(id: &str, region: &str, change: impl FnOnce(&mut yrdx_proto::v1::SamplingRecord)) -> Record {
    let mut r = example_sampling(id);
    if let Record::Sampling(s) = &mut r {
        s.sampling_region = region.into();
        change(s);
    }
    r
}

/// A fresh gateway holding `plan`, submitted by Shanghai (canonical format) as document
/// `PLAN-1`: the sampling records of a test are judged against it.
async fn gateway_holding(plan: Record) -> TestGateway {
    let g = TestGateway::start().await;
    g.submit_one("shanghai", Partner::Canonical, "310000", "PLAN-1", plan).await.unwrap();
    g
}

fn refused(r: Result<SubmitReply, tonic::Status>, words: &str) {
    let err = r.expect_err("must be refused");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    assert!(err.message().contains(words), "'{words}' not in: {}", err.message());
}

#[tokio::test]
async fn sampling_records_meet_every_rule_of_the_plan() {
    let g = gateway_holding(plan(&[("310000", 5), ("320000", 1), ("110000", 2)])).await;
    // Accepted: Jiangsu's first sample.
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "S-1", sampling("JS-0001", "320000", |_| {})).await.unwrap();
    // Quota: Jiangsu's quota is 1.
    refused(
        g.submit_one("jiangsu", Partner::Jiangsu, "320000", "S-2", sampling("JS-0002", "320000", |_| {})).await,
        "quota",
    );
    // Participation: Zhejiang is not in the plan.
    refused(
        g.submit_one("zhejiang", Partner::Zhejiang, "330000", "S-3", sampling("ZJ-0001", "330000", |_| {})).await,
        "does not participate",
    );
    // Category not in the plan.
    let other_category =
        sampling("BJ-0001", "110000", |s| s.product.as_mut().unwrap().category = ProductCategory::EBikeCharger as i32);
    refused(g.submit_one("beijing", Partner::Beijing, "110000", "S-4", other_category).await, "category 0103");
    // Channel: an offline sample in an online plan (Shanghai, canonical format).
    let offline = sampling("SH-0001", "310000", |s| {
        s.channel = SalesChannel::Offline as i32;
        s.shop = None;
    });
    refused(g.submit_one("shanghai", Partner::Canonical, "310000", "S-5", offline).await, "channel");
    // Sampled after the deadline (2024-06-30).
    let late = sampling("SH-0002", "310000", |s| s.sampled_on = Date::from_ymd(2024, 7, 1));
    refused(g.submit_one("shanghai", Partner::Canonical, "310000", "S-6", late).await, "deadline");
    // On the deadline itself: accepted.
    let on_time = sampling("SH-0003", "310000", |s| s.sampled_on = Date::from_ymd(2024, 6, 30));
    g.submit_one("shanghai", Partner::Canonical, "310000", "S-7", on_time).await.unwrap();
    // An unknown plan.
    let unknown = sampling("SH-0004", "310000", |s| s.plan_id = "YRD-2099-XX".into());
    refused(g.submit_one("shanghai", Partner::Canonical, "310000", "S-8", unknown).await, "YRD-2099-XX");
    g.stop().await;
}

#[tokio::test]
async fn mutual_recognition_accepts_with_a_warning_naming_the_earlier_check() {
    let g = gateway_holding(plan(&[("310000", 5), ("320000", 5), ("110000", 5)])).await;
    let first = g
        .submit_one("jiangsu", Partner::Jiangsu, "320000", "S-1", sampling("JS-0001", "320000", |_| {}))
        .await
        .unwrap();
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    // The same product (producer, brand, model) sampled by Beijing two days later.
    let again = sampling("BJ-0001", "110000", |s| s.sampled_on = Date::from_ymd(2024, 3, 14));
    let reply = g.submit_one("beijing", Partner::Beijing, "110000", "S-2", again).await.expect("accepted");
    assert_eq!(reply.warnings.len(), 1, "{:?}", reply.warnings);
    let w = &reply.warnings[0];
    assert!(w.contains("JS-0001") && w.contains("320000") && w.contains("2024-03-12"), "{w}");
    // Another model of the same producer is a different product.
    let other_model = sampling("SH-0001", "310000", |s| s.product.as_mut().unwrap().model = "60V 30Ah".into());
    assert!(g
        .submit_one("shanghai", Partner::Canonical, "310000", "S-3", other_model)
        .await
        .unwrap()
        .warnings
        .is_empty());
    g.stop().await;
}

#[tokio::test]
async fn mutual_recognition_window_is_six_months() {
    let g = gateway_holding(plan(&[("310000", 5), ("320000", 5)])).await;
    let early = sampling("JS-0001", "320000", |s| s.sampled_on = Date::from_ymd(2024, 1, 10));
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "S-1", early).await.unwrap();
    let within = sampling("SH-0001", "310000", |s| s.sampled_on = Date::from_ymd(2024, 6, 30));
    assert_eq!(
        g.submit_one("shanghai", Partner::Canonical, "310000", "S-2", within).await.unwrap().warnings.len(),
        1,
        "2024-01-10 is within 6 months of 2024-06-30"
    );
    g.stop().await;
    let mut p = plan(&[("310000", 5), ("320000", 5)]);
    if let Record::Plan(pl) = &mut p {
        pl.sampling_deadline = Date::from_ymd(2024, 12, 31);
    }
    let g = gateway_holding(p).await;
    let early = sampling("JS-0001", "320000", |s| s.sampled_on = Date::from_ymd(2024, 1, 10));
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "S-1", early).await.unwrap();
    let beyond = sampling("SH-0001", "310000", |s| s.sampled_on = Date::from_ymd(2024, 7, 11));
    assert!(
        g.submit_one("shanghai", Partner::Canonical, "310000", "S-2", beyond).await.unwrap().warnings.is_empty(),
        "more than 6 months later"
    );
    g.stop().await;
}

#[tokio::test]
async fn risk_revisions_must_rise_and_withdrawn_is_final() {
    let g = TestGateway::start().await;
    let risk = |revision: i32, state: RiskState| {
        let mut r = vector_record(Partner::Jiangsu, "jiangsu/valid/risk-signal.json");
        if let Record::RiskSignal(s) = &mut r {
            s.revision = revision;
            s.state = state as i32;
        }
        r
    };
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "FX-1", risk(2, RiskState::Updated)).await.unwrap();
    // The vector's signal is HIGH and nationwide: queued for SAMR (FXBS).
    assert_eq!(g.store().samr_waiting().unwrap(), vec![("risk_signal".to_string(), "FX-2024-320000-0009".to_string())]);
    refused(g.submit_one("jiangsu", Partner::Jiangsu, "320000", "FX-2", risk(2, RiskState::Updated)).await, "stale");
    refused(g.submit_one("jiangsu", Partner::Jiangsu, "320000", "FX-3", risk(1, RiskState::New)).await, "stale");
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "FX-4", risk(3, RiskState::Withdrawn)).await.unwrap();
    refused(g.submit_one("jiangsu", Partner::Jiangsu, "320000", "FX-5", risk(4, RiskState::Updated)).await, "final");
    // A LOW, local signal does not go to SAMR.
    let mut low = vector_record(Partner::Jiangsu, "jiangsu/valid/risk-signal-low.json");
    if let Record::RiskSignal(r) = &mut low {
        r.reporting_region = "320000".into();
    }
    let before = g.store().samr_waiting().unwrap().len();
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "FX-6", low).await.unwrap();
    assert_eq!(g.store().samr_waiting().unwrap().len(), before);
    g.stop().await;
}

#[tokio::test]
async fn a_result_must_reference_a_known_sample() {
    let g = gateway_holding(plan(&[("310000", 5), ("320000", 5)])).await;
    let mut orphan = vector_record(Partner::Jiangsu, "jiangsu/valid/example-inspection.json");
    if let Record::Inspection(i) = &mut orphan {
        i.sample_id = "JS-UNKNOWN-01".into();
    }
    refused(g.submit_one("jiangsu", Partner::Jiangsu, "320000", "R-1", orphan).await, "JS-UNKNOWN-01");
    // Nothing was stored or queued for it.
    assert!(g.store().samr_waiting().unwrap().is_empty());
    g.stop().await;
}
