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

#[tokio::test]
async fn recipients_of_one_format_each_get_their_own_envelope_around_the_same_records() {
    let extra = |name: &str, region: &str| {
        format!(
            "\n[[partner]]\nname = \"{name}\"\nregion = \"{region}\"\nformat = \"zhejiang\"\nidentity = \"urn:yrdx:partner:{name}\"\nrisk_signals = true\n"
        )
    };
    let g = TestGateway::start_with(|text| format!("{text}{}{}", extra("anhui", "340000"), extra("fujian", "350000")))
        .await;
    submit_signal(&g).await;
    let store = g.store();
    let mut documents = Vec::new();
    for region in ["330000", "340000", "350000"] {
        let taken = store.take(region, 10, 0, 30_000).expect("lease");
        assert_eq!(taken.len(), 1, "{region} takes the signal once");
        let doc = Partner::Zhejiang
            .decode(&taken[0].document, &yrdx_adapters::DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{region}'s document: {e:?}"));
        assert_eq!(doc.envelope.receiver, region, "each document names its own recipient");
        assert_eq!(doc.envelope.message_id, "FX-R-1");
        // Byte for byte what the format writes for that recipient alone.
        let alone = Partner::Zhejiang.encode(&doc.envelope, &doc.records, 1).expect("encode");
        assert_eq!(alone.bytes, taken[0].document, "{region}");
        documents.push(doc.records);
    }
    assert!(documents.windows(2).all(|w| w[0] == w[1]), "the same records for all three");
    assert_eq!(documents[0].len(), 1);
    g.stop().await;
}
