//! The example records the end-to-end tests submit, built from the conformance vectors: one plan,
//! its sampling records and their inspection results, so that every test starts from the same
//! valid chain and changes only what it is about.

use crate::vector_record;
use yrdx_adapters::{Partner, Record};
use yrdx_proto::v1::{PlanChannel, ProductCategory};

/// The plan the example records belong to: `YRD-2024-WS-01`, online, e-bike lithium batteries,
/// published by Shanghai.
pub fn example_plan() -> Record {
    let mut r = vector_record(Partner::Canonical, "canonical/valid/plan.json");
    if let Record::Plan(p) = &mut r {
        p.plan_id = "YRD-2024-WS-01".into();
        p.channel = PlanChannel::Online as i32;
        p.categories = vec![ProductCategory::EBikeLithiumBattery as i32];
    }
    r
}

/// Jiangsu's example sampling record under [`example_plan`], as sample `id`.
pub fn example_sampling(id: &str) -> Record {
    let mut r = vector_record(Partner::Jiangsu, "jiangsu/valid/example-sampling.json");
    if let Record::Sampling(s) = &mut r {
        s.sample_id = id.into();
    }
    r
}

/// Jiangsu's example inspection result (nonconforming) of sample `sample_id`, as report `report_no`.
pub fn example_result(sample_id: &str, report_no: &str) -> Record {
    let mut r = vector_record(Partner::Jiangsu, "jiangsu/valid/example-inspection.json");
    if let Record::Inspection(i) = &mut r {
        i.sample_id = sample_id.into();
        i.report_no = report_no.into();
    }
    r
}

/// [`example_sampling`] taken by region `region` of a product made in `producer_region` (the
/// responsible region of a case it opens).
pub fn example_sampling_in(id: &str, region: &str, producer_region: &str) -> Record {
    let mut r = example_sampling(id);
    if let Record::Sampling(s) = &mut r {
        s.sampling_region = region.into();
        s.producer.as_mut().expect("the example sampling names its producer").region = producer_region.into();
    }
    r
}
