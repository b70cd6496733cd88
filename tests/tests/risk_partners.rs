//! Which partners receive risk signals comes from the registry (`[[partner]] risk_signals`), with
//! the programme's three risk partners (Shanghai, Jiangsu, Zhejiang) as the default.

use yrdx_adapters::{Partner, Record};
use yrdx_proto::v1::SubmitRequest;
use yrdx_tests::{document, vector_record, TestGateway};

fn low_signal() -> Record {
    let mut r = vector_record(Partner::Jiangsu, "jiangsu/valid/risk-signal-low.json");
    if let Record::RiskSignal(s) = &mut r {
        s.reporting_region = "320000".into();
    }
    r
}

async fn submit_signal(g: &TestGateway) {
    g.client("jiangsu")
        .await
        .submit(SubmitRequest { document: document(Partner::Jiangsu, "320000", "FX-R-1", &[low_signal()]) })
        .await
        .expect("the signal is accepted");
}

#[tokio::test]
async fn by_default_the_programmes_risk_partners_receive_a_signal() {
    let g = TestGateway::start().await;
    submit_signal(&g).await;
    let store = g.store();
    assert_eq!(store.depth("310000").unwrap(), 1, "Shanghai takes risk signals");
    assert_eq!(store.depth("330000").unwrap(), 1, "Zhejiang takes risk signals");
    assert_eq!(store.depth("320000").unwrap(), 0, "never back to the sender");
    assert_eq!(store.depth("110000").unwrap(), 0, "Beijing is not a risk partner");
    g.stop().await;
}

#[tokio::test]
async fn a_partner_taken_out_of_risk_monitoring_receives_none() {
    let g = TestGateway::start_with(|text| {
        let zhejiang = "identity = \"urn:yrdx:partner:zhejiang\"";
        assert!(text.contains(zhejiang), "the test configuration registers Zhejiang");
        text.replace(zhejiang, &format!("{zhejiang}\nrisk_signals = false"))
    })
    .await;
    submit_signal(&g).await;
    let store = g.store();
    assert_eq!(store.depth("310000").unwrap(), 1, "Shanghai still takes them");
    assert_eq!(store.depth("330000").unwrap(), 0, "Zhejiang was taken out");
    g.stop().await;
}
