//! Zhejiang's records as element tables (`docs/partners/zhejiang.md`): each child element once, in
//! the interface's (and the encoder's) order, with how it is read and written
//! (`element_table.rs`). A record's attributes, and the checks that tie values together, are the
//! record's own code around its table.

use super::element_table::{decode_part, no_later, read_part, write_element, write_part, Child, Io, Presence};
use super::*;
use crate::fields::acc;

/// A child always written, absent on input allowed (the domain rules report what is required).
const fn written<T>(name: &'static str, io: Io<T>) -> Child<T> {
    Child { name, io, presence: Presence::Written }
}

/// A child omitted when empty.
const fn optional<T>(name: &'static str, io: Io<T>) -> Child<T> {
    Child { name, io, presence: Presence::Optional }
}

/// A child always written whose absence is the problem `message`.
const fn required<T>(name: &'static str, io: Io<T>, message: &'static str) -> Child<T> {
    Child { name, io, presence: Presence::Required(message) }
}

/// `Plan` (attribute `id`).
const PLAN: &[Child<SpotCheckPlan>] = &[
    written("Title", Io::Text(acc!(title))),
    required("Year", Io::Int(acc!(year)), "required"),
    written("LeadRegion", Io::Text(acc!(lead_region))),
    written(
        "Participants",
        Io::Own {
            read: |s, child, at, cx, plan| {
                read_list(s, child, at, "Participant", cx, |s, p, at, cx| {
                    let [region, quota] = attributes(&p, at, ["region", "quota"], cx)?;
                    if !p.empty {
                        // A participant is all attributes: anything inside is unknown.
                        read_children(s, &p, at, &[], cx, |_, _, _, _, _| Ok(()))?;
                    }
                    if quota.is_empty() {
                        cx.error(at.attr("quota").to_string(), "required");
                    }
                    plan.participants.push(PlanParticipant { region, quota: int(&quota, &at.attr("quota"), cx) });
                    Ok(())
                })?;
                Ok(())
            },
            write: |w, name, plan| {
                if plan.participants.is_empty() {
                    w.leaf(name, &[], "");
                } else {
                    w.open(name, &[]);
                    for x in &plan.participants {
                        w.leaf("Participant", &[("region", &x.region), ("quota", &x.quota.to_string())], "");
                    }
                    w.close(name);
                }
            },
        },
    ),
    written("Channel", Io::Code(PLAN_CHANNEL, acc!(channel))),
    written(
        "Categories",
        Io::Own {
            read: |s, child, at, cx, plan| {
                text_list(s, child, at, "Category", cx, |t, at, cx| plan.categories.push(category_value(&t, at, cx)))?;
                Ok(())
            },
            write: |w, name, plan| {
                let cats: Vec<String> = plan.categories.iter().map(|c| category_code_of(*c)).collect();
                write_list(w, name, "Category", &cats);
            },
        },
    ),
    written(
        "Standards",
        Io::Own {
            read: |s, child, at, cx, plan| {
                text_list(s, child, at, "Standard", cx, |t, _, _| plan.standards.push(t))?;
                Ok(())
            },
            write: |w, name, plan| write_list(w, name, "Standard", &plan.standards),
        },
    ),
    written("SamplingDeadline", Io::Date(acc!(sampling_deadline))),
    written("PublishedAt", Io::Time(acc!(published_at))),
];

/// A party (`Seller`, `Producer`).
const PARTY: &[Child<Party>] = &[
    written("Name", Io::Text(acc!(name))),
    written("CreditCode", Io::Text(acc!(uscc))),
    written("Region", Io::Text(acc!(region))),
    optional("Address", Io::Text(acc!(address))),
];

/// The product of a sample or a risk alert.
const PRODUCT: &[Child<Product>] = &[
    written("Name", Io::Text(acc!(name))),
    written("Category", Io::Category(acc!(category))),
    optional("Brand", Io::Text(acc!(brand))),
    optional("Model", Io::Text(acc!(model))),
    optional("Batch", Io::Text(acc!(batch))),
    optional("ProductionDate", Io::Date(acc!(production_date))),
];

/// The online shop of a sample.
const SHOP: &[Child<OnlineShop>] = &[
    written("Platform", Io::Text(acc!(platform))),
    written("ShopName", Io::Text(acc!(shop_name))),
    optional("ShopUrl", Io::Text(acc!(shop_url))),
    optional("OrderNo", Io::Text(acc!(order_no))),
];

/// `Sampling` (attribute `id`).
const SAMPLING: &[Child<SamplingRecord>] = &[
    written("PlanRef", Io::Text(acc!(plan_id))),
    written("SamplingRegion", Io::Text(acc!(sampling_region))),
    written("SamplingOrg", Io::Text(acc!(sampling_org))),
    written("SampledOn", Io::Date(acc!(sampled_on))),
    written("Channel", Io::Code(SALES_CHANNEL, acc!(channel))),
    written(
        "Seller",
        Io::Own {
            read: |s, child, at, cx, r| {
                r.seller = Some(decode_part(s, child, at, PARTY, cx)?);
                Ok(())
            },
            write: |w, name, r| write_element(w, name, PARTY, r.seller.as_ref().unwrap_or(&Party::default())),
        },
    ),
    written(
        "Producer",
        Io::Own {
            read: |s, child, at, cx, r| {
                r.producer = Some(decode_part(s, child, at, PARTY, cx)?);
                Ok(())
            },
            write: |w, name, r| {
                if let Some(p) = &r.producer {
                    write_element(w, name, PARTY, p);
                }
            },
        },
    ),
    written(
        "Shop",
        Io::Own {
            read: |s, child, at, cx, r| {
                r.shop = Some(decode_part(s, child, at, SHOP, cx)?);
                Ok(())
            },
            write: |w, name, r| {
                if let Some(shop) = &r.shop {
                    write_element(w, name, SHOP, shop);
                }
            },
        },
    ),
    written("Product", Io::Product(acc!(product?), PRODUCT)),
    required(
        "Quantity",
        Io::Own {
            read: |s, child, at, cx, r| {
                let [unit] = attributes(&child, at, ["unit"], cx)?;
                let text = leaf_text(s, &child, at, cx)?;
                r.quantity = int(&text, at, cx);
                r.unit = unit;
                Ok(())
            },
            write: |w, name, r| w.leaf(name, &[("unit", &r.unit)], &r.quantity.to_string()),
        },
        "required",
    ),
    required("ReserveQuantity", Io::Int(acc!(reserve_quantity)), "required"),
    required(
        "UnitPrice",
        Io::Own {
            read: |s, child, at, cx, r| {
                r.unit_price = money(s, child, at, cx)?.unwrap_or(0);
                Ok(())
            },
            write: |w, name, r| w.leaf(name, &[("currency", "CNY")], &format_yuan(r.unit_price)),
        },
        "required (yuan with two decimals, currency=\"CNY\")",
    ),
    written("RecordedAt", Io::Time(acc!(recorded_at))),
];

/// `Inspection` (attributes `id`, `sample`).
const INSPECTION: &[Child<InspectionResult>] = &[
    written(
        "Lab",
        Io::Own {
            read: |s, child, at, cx, r| {
                let [cma] = attributes(&child, at, ["cma"], cx)?;
                r.lab_name = leaf_text(s, &child, at, cx)?;
                r.lab_cma = cma;
                Ok(())
            },
            write: |w, name, r| w.leaf(name, &[("cma", &r.lab_cma)], &r.lab_name),
        },
    ),
    written("IssuedOn", Io::Date(acc!(issued_on))),
    written("Conclusion", Io::Code(CONCLUSION, acc!(conclusion))),
    written(
        "Items",
        Io::Own {
            read: |s, child, at, cx, r| {
                read_list(s, child, at, "Item", cx, |s, item, at, cx| {
                    r.items.push(decode_item(s, item, at, cx)?);
                    Ok(())
                })?;
                Ok(())
            },
            write: |w, name, r| {
                if r.items.is_empty() {
                    w.leaf(name, &[], "");
                    return;
                }
                w.open(name, &[]);
                for it in &r.items {
                    let verdict = code_of(it.verdict, VERDICT);
                    let severity = code_of(it.severity, SEVERITY);
                    let attrs: Vec<(&str, &str)> = if it.verdict == Verdict::Fail as i32 {
                        vec![("verdict", verdict), ("severity", severity)]
                    } else {
                        vec![("verdict", verdict)]
                    };
                    w.open("Item", &attrs);
                    write_part(w, ITEM, it);
                    w.close("Item");
                }
                w.close(name);
            },
        },
    ),
];

/// One inspected item (`Items/Item`, attributes `verdict` and `severity`).
const ITEM: &[Child<InspectionItem>] = &[
    written("Name", Io::Text(acc!(name))),
    written("Standard", Io::Text(acc!(standard))),
    optional("Requirement", Io::Text(acc!(requirement))),
    optional("Measured", Io::Text(acc!(measured))),
    optional("Unit", Io::Text(acc!(unit))),
];

fn decode_item<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<InspectionItem, DecodeError> {
    let (mut verdict, mut severity, mut severity_given) = (0, Severity::None as i32, false);
    each_attribute(&start, at, &["verdict", "severity"], cx, |i, v, cx| {
        if i == 0 {
            verdict = lookup(v, VERDICT, at.attr("verdict"), cx);
        } else {
            severity_given = !v.is_empty();
            severity = lookup(v, SEVERITY, at.attr("severity"), cx);
        }
    })?;
    if !severity_given && verdict == Verdict::Fail as i32 {
        cx.error(at.attr("severity").to_string(), "required on a failing item (serious or general)");
    } else if severity_given && verdict == Verdict::Pass as i32 {
        cx.error(at.attr("severity").to_string(), "only failing items carry a severity");
    }
    let mut item = InspectionItem { verdict, severity, ..Default::default() };
    read_part(stream, &start, at, ITEM, cx, &mut item, no_later)?;
    Ok(item)
}

/// `CaseTransfer` (attribute `id`); always TRANSFERRED, its due date required.
const TRANSFER: &[Child<DisposalCase>] = &[
    written("Origin", Io::Text(acc!(origin_region))),
    written("Responsible", Io::Text(acc!(responsible_region))),
    written("SampleRef", Io::Text(acc!(sample_id))),
    written("ReportRef", Io::Text(acc!(report_no))),
    written("OpenedAt", Io::Time(acc!(opened_at))),
    written("DueOn", Io::Date(acc!(due_on))),
];

/// `CaseFeedback` (attributes `id`, the event's, and `case`): one event.
const FEEDBACK: &[Child<CaseEvent>] = &[
    written("By", Io::Text(acc!(by_region))),
    written("At", Io::Time(acc!(at))),
    written("Action", Io::Code(ACTION, acc!(action))),
    optional("Note", Io::Text(acc!(note))),
    written(
        "Amount",
        Io::Own {
            read: |s, child, at, cx, e| {
                e.amount = money(s, child, at, cx)?;
                Ok(())
            },
            write: |w, name, e| {
                if let Some(a) = e.amount {
                    w.leaf(name, &[("currency", "CNY")], &format_yuan(a));
                }
            },
        },
    ),
];

/// `RiskAlert` (attributes `id`, `revision`, `state`).
const RISK: &[Child<RiskSignal>] = &[
    written("ReportedBy", Io::Text(acc!(reporting_region))),
    written("ObservedOn", Io::Date(acc!(observed_on))),
    written("Source", Io::Code(SOURCE, acc!(source))),
    written("Product", Io::Product(acc!(product?), PRODUCT)),
    written(
        "Hazards",
        Io::Own {
            read: |s, child, at, cx, r| {
                text_list(s, child, at, "Hazard", cx, |t, at, cx| r.hazards.push(lookup(&t, HAZARD, at, cx)))?;
                Ok(())
            },
            write: |w, name, r| {
                let hazards: Vec<String> = r.hazards.iter().map(|h| code_of(*h, HAZARD).to_string()).collect();
                write_list(w, name, "Hazard", &hazards);
            },
        },
    ),
    written("Level", Io::Code(LEVEL, acc!(level))),
    written("Summary", Io::Text(acc!(summary))),
    // Checked after all children (decode_risk), as the interface's boolean.
    written("Nationwide", Io::Later { write: |r| if r.nationwide { "true" } else { "false" } }),
    written(
        "RelatedSamples",
        Io::Own {
            read: |s, child, at, cx, r| {
                let count = text_list(s, child, at, "SampleRef", cx, |t, _, _| r.related_samples.push(t))?;
                if count == 0 {
                    cx.error(at.to_string(), "omitted when there are no related samples, never empty");
                }
                Ok(())
            },
            write: |w, name, r| {
                if !r.related_samples.is_empty() {
                    write_list(w, name, "SampleRef", &r.related_samples);
                }
            },
        },
    ),
    optional("RecommendedMeasures", Io::Text(acc!(recommended_measures))),
];

pub(super) fn decode_record<'a>(
    stream: &mut Stream<'a>,
    kind: RecordKind,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<Record, DecodeError> {
    // The record's own id goes with every problem found in it.
    // Every Zhejiang record's id is its `id` attribute.
    cx.record_id = Some(start.attr("id")?.map(|id| id.trim().to_string()).unwrap_or_default());
    Ok(match kind {
        RecordKind::Plan => {
            let [plan_id] = attributes(&start, at, ["id"], cx)?;
            let mut plan = SpotCheckPlan { plan_id, ..Default::default() };
            read_part(stream, &start, at, PLAN, cx, &mut plan, no_later)?;
            Record::Plan(plan)
        }
        RecordKind::Sampling => {
            let [sample_id] = attributes(&start, at, ["id"], cx)?;
            let mut record = SamplingRecord { sample_id, ..Default::default() };
            read_part(stream, &start, at, SAMPLING, cx, &mut record, no_later)?;
            Record::Sampling(record)
        }
        RecordKind::Inspection => {
            let [report_no, sample_id] = attributes(&start, at, ["id", "sample"], cx)?;
            let mut report = InspectionResult { report_no, sample_id, ..Default::default() };
            read_part(stream, &start, at, INSPECTION, cx, &mut report, no_later)?;
            Record::Inspection(report)
        }
        RecordKind::CaseTransfer => {
            let [case_id] = attributes(&start, at, ["id"], cx)?;
            let mut case = DisposalCase { case_id, status: CaseStatus::Transferred as i32, ..Default::default() };
            read_part(stream, &start, at, TRANSFER, cx, &mut case, no_later)?;
            if case.due_on.is_none() {
                cx.error(at.child("DueOn").to_string(), "required (xs:date)");
            }
            Record::CaseTransfer(case)
        }
        RecordKind::CaseFeedback => {
            let [event_id, case_id] = attributes(&start, at, ["id", "case"], cx)?;
            let mut event = CaseEvent { event_id, ..Default::default() };
            read_part(stream, &start, at, FEEDBACK, cx, &mut event, no_later)?;
            Record::CaseFeedback(CaseFeedback { case_id, event: Some(event) })
        }
        _ => Record::RiskSignal(decode_risk(stream, start, at, cx)?),
    })
}

fn decode_risk<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<RiskSignal, DecodeError> {
    let mut signal = RiskSignal::default();
    let mut revision_given = false;
    each_attribute(&start, at, &["id", "revision", "state"], cx, |i, v, cx| match i {
        0 => signal.signal_id = v.to_string(),
        1 => {
            revision_given = !v.is_empty();
            signal.revision = int(v, &at.attr("revision"), cx);
        }
        _ => signal.state = lookup(v, STATE, at.attr("state"), cx),
    })?;
    if !revision_given {
        cx.error(at.attr("revision").to_string(), "required");
    }
    let mut nationwide: Option<String> = None;
    read_part(stream, &start, at, RISK, cx, &mut signal, |_, text| nationwide = Some(text))?;
    let nationwide_at = at.child("Nationwide");
    signal.nationwide = match nationwide.as_deref() {
        Some("true") => true,
        Some("false") => false,
        None | Some("") => {
            cx.error(nationwide_at.to_string(), "required (true or false)");
            false
        }
        Some(other) => {
            cx.error(nationwide_at.to_string(), format!("'{other}' is not true or false"));
            false
        }
    };
    Ok(signal)
}

/// Writes one record: its element with its attributes, then its table.
pub(super) fn write_record(w: &mut Writer, record: &Record, losses: &mut Vec<Loss>) {
    match record {
        Record::Plan(p) => {
            w.open("Plan", &[("id", &p.plan_id)]);
            write_part(w, PLAN, p);
            w.close("Plan");
        }
        Record::Sampling(s) => {
            w.open("Sampling", &[("id", &s.sample_id)]);
            write_part(w, SAMPLING, s);
            w.close("Sampling");
        }
        Record::Inspection(r) => {
            w.open("Inspection", &[("id", &r.report_no), ("sample", &r.sample_id)]);
            write_part(w, INSPECTION, r);
            w.close("Inspection");
        }
        Record::CaseTransfer(c) => {
            crate::model::transfer_losses(c, losses);
            w.open("CaseTransfer", &[("id", &c.case_id)]);
            write_part(w, TRANSFER, c);
            w.close("CaseTransfer");
        }
        Record::CaseFeedback(f) => {
            let e = f.event.clone().unwrap_or_default();
            w.open("CaseFeedback", &[("id", &e.event_id), ("case", &f.case_id)]);
            write_part(w, FEEDBACK, &e);
            w.close("CaseFeedback");
        }
        Record::RiskSignal(s) => {
            let revision = s.revision.to_string();
            w.open("RiskAlert", &[("id", &s.signal_id), ("revision", &revision), ("state", code_of(s.state, STATE))]);
            write_part(w, RISK, s);
            w.close("RiskAlert");
        }
        _ => {}
    }
}
