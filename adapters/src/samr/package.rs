//! The package encoder: canonical records to a SAMR data package (`<SJB>`: the `<BT>` header with
//! package number and SM3 digest, the `<SJ>` records).

use super::{allowed_words, gb18030, package_number, sm3_hex, PackageType, DECLARATION, MAX_RECORDS};
use crate::model::*;
use crate::money::format_yuan;
use crate::xml::Writer;
use yrdx_proto::civil::BeijingTime;
use yrdx_proto::codes::category_code_of;
use yrdx_proto::v1::*;
use yrdx_proto::{identifiers, Date, Timestamp};

fn time_text(t: &Option<Timestamp>) -> String {
    t.as_ref().map(|t| BeijingTime::of(t).to_spaced()).unwrap_or_default()
}

fn date_text(d: &Option<Date>) -> String {
    d.as_ref().map(Date::to_string).unwrap_or_default()
}

fn hazard_word(h: i32) -> &'static str {
    match Hazard::try_from(h) {
        Ok(Hazard::ElectricShock) => "触电",
        Ok(Hazard::Fire) => "火灾",
        Ok(Hazard::Burn) => "灼烫",
        Ok(Hazard::Chemical) => "化学",
        Ok(Hazard::Mechanical) => "机械伤害",
        Ok(Hazard::Choking) => "窒息",
        Ok(Hazard::Explosion) => "爆炸",
        Ok(Hazard::Environment) => "环境污染",
        Ok(Hazard::Other) => "其他",
        _ => "",
    }
}

fn write_party(w: &mut Writer, name: &str, p: Option<&Party>, record_id: &str, prefix: &str, losses: &mut Vec<Loss>) {
    let p = p.cloned().unwrap_or_default();
    if !p.address.is_empty() {
        losses.push(Loss {
            record_id: record_id.into(),
            field: format!("{prefix}.address"),
            detail: "SAMR packages carry no party address".into(),
        });
    }
    w.open(name, &[]);
    w.leaf("MC", &[], &p.name);
    w.leaf("XYDM", &[], &p.uscc);
    w.leaf("QH", &[], &p.region);
    w.close(name);
}

fn write_failing_items(
    w: &mut Writer,
    r: &InspectionResult,
    record_id: &str,
    prefix: &str,
    losses: &mut Vec<Loss>,
    report: bool,
) {
    let failing: Vec<(usize, &InspectionItem)> =
        r.items.iter().enumerate().filter(|(_, it)| it.verdict == Verdict::Fail as i32).collect();
    if report {
        for (i, it) in r.items.iter().enumerate() {
            let lost = |field: String, detail: &str| Loss { record_id: record_id.into(), field, detail: detail.into() };
            if it.verdict != Verdict::Fail as i32 {
                losses.push(lost(format!("{prefix}.items[{i}]"), "passing items are not carried to SAMR"));
                continue;
            }
            if !it.standard.is_empty() {
                losses.push(lost(format!("{prefix}.items[{i}].standard"), "item standards are not carried to SAMR"));
            }
            if !it.unit.is_empty() {
                losses.push(lost(format!("{prefix}.items[{i}].unit"), "item units are not carried to SAMR"));
            }
        }
    }
    if failing.is_empty() {
        w.leaf("BHGXM", &[], "");
        return;
    }
    w.open("BHGXM", &[]);
    for (_, it) in failing {
        w.open("XM", &[]);
        w.leaf("XMMC", &[], &it.name);
        w.leaf("BZYQ", &[], &it.requirement);
        w.leaf("SCJG", &[], &it.measured);
        w.leaf("BHGCD", &[], if it.severity == Severity::Serious as i32 { "严重" } else { "一般" });
        w.close("XM");
    }
    w.close("BHGXM");
}

fn write_spot_check(w: &mut Writer, r: &SpotCheckResult, losses: &mut Vec<Loss>) {
    let s = r.sampling.clone().unwrap_or_default();
    let i = r.inspection.clone().unwrap_or_default();
    let id = s.sample_id.clone();
    let shop = s.shop.clone().unwrap_or_default();
    let product = s.product.clone().unwrap_or_default();
    let mut lose = |field: &str, present: bool| {
        if present {
            losses.push(Loss {
                record_id: id.clone(),
                field: field.into(),
                detail: "not carried in a CCJG package".into(),
            });
        }
    };
    lose("sampling.sampling_org", !s.sampling_org.is_empty());
    lose("sampling.shop.shop_url", !shop.shop_url.is_empty());
    lose("sampling.shop.order_no", !shop.order_no.is_empty());
    lose("sampling.product.production_date", product.production_date.is_some());
    lose("sampling.quantity", true);
    lose("sampling.unit", !s.unit.is_empty());
    lose("sampling.reserve_quantity", true);
    lose("sampling.unit_price", true);
    lose("sampling.recorded_at", s.recorded_at.is_some());
    lose("inspection.lab_cma", !i.lab_cma.is_empty());
    lose("inspection.issued_on", i.issued_on.is_some());
    w.open("JL", &[]);
    w.leaf("CYDBH", &[], &s.sample_id);
    w.leaf("JHBH", &[], &s.plan_id);
    w.leaf("CYDQ", &[], &s.sampling_region);
    w.leaf("CYRQ", &[], &date_text(&s.sampled_on));
    w.leaf("QD", &[], if s.channel == SalesChannel::Online as i32 { "网络" } else { "线下" });
    write_party(w, "BCYDW", s.seller.as_ref(), &id, "sampling.seller", losses);
    write_party(w, "SCQY", s.producer.as_ref(), &id, "sampling.producer", losses);
    w.leaf("WDPT", &[], &shop.platform);
    w.leaf("WDMC", &[], &shop.shop_name);
    w.leaf("CPMC", &[], &product.name);
    w.leaf("CPFL", &[], &category_code_of(product.category));
    w.leaf("SB", &[], &product.brand);
    w.leaf("GGXH", &[], &product.model);
    w.leaf("PH", &[], &product.batch);
    w.leaf("BGBH", &[], &i.report_no);
    w.leaf("JYJG", &[], &i.lab_name);
    w.leaf("JYJL", &[], if i.conclusion == Conclusion::Nonconforming as i32 { "不合格" } else { "合格" });
    write_failing_items(w, &i, &id, "inspection", losses, true);
    w.close("JL");
}

fn write_risk(w: &mut Writer, s: &RiskSignal, losses: &mut Vec<Loss>) {
    let p = s.product.clone().unwrap_or_default();
    let id = s.signal_id.clone();
    let mut lose = |field: &str, present: bool| {
        if present {
            losses.push(Loss {
                record_id: id.clone(),
                field: field.into(),
                detail: "not carried in an FXBS package".into(),
            });
        }
    };
    lose("nationwide", true);
    lose("product.batch", !p.batch.is_empty());
    lose("product.production_date", p.production_date.is_some());
    w.open("JL", &[]);
    w.leaf("FXBH", &[], &s.signal_id);
    w.leaf("BB", &[], &s.revision.to_string());
    let state = match RiskState::try_from(s.state) {
        Ok(RiskState::New) => "新增",
        Ok(RiskState::Updated) => "更新",
        _ => "撤回",
    };
    w.leaf("ZT", &[], state);
    w.leaf("SBDW", &[], &s.reporting_region);
    w.leaf("FXRQ", &[], &date_text(&s.observed_on));
    let source = allowed_words("LY").and_then(|l| l.get((s.source - 1).max(0) as usize)).copied().unwrap_or("");
    w.leaf("LY", &[], source);
    w.leaf("CPMC", &[], &p.name);
    w.leaf("CPFL", &[], &category_code_of(p.category));
    w.leaf("SB", &[], &p.brand);
    w.leaf("GGXH", &[], &p.model);
    let hazards: Vec<&str> = s.hazards.iter().map(|h| hazard_word(*h)).collect();
    w.leaf("WHLX", &[], &hazards.join("、"));
    let level = allowed_words("FXDJ").and_then(|l| l.get((s.level - 1).max(0) as usize)).copied().unwrap_or("");
    w.leaf("FXDJ", &[], level);
    w.leaf("FXMS", &[], &s.summary);
    w.leaf("JYCS", &[], &s.recommended_measures);
    w.leaf("GLCYD", &[], &s.related_samples.join(","));
    w.close("JL");
}

fn write_responsibility(w: &mut Writer, r: &ResponsibilityReport, losses: &mut Vec<Loss>) {
    let e = r.enterprise.clone().unwrap_or_default();
    if !e.address.is_empty() {
        losses.push(Loss {
            record_id: format!("{}/{}", e.uscc, r.period),
            field: "enterprise.address".into(),
            detail: "not carried in a ZTZR package".into(),
        });
    }
    w.open("JL", &[]);
    w.leaf("QYMC", &[], &e.name);
    w.leaf("XYDM", &[], &e.uscc);
    w.leaf("QH", &[], &e.region);
    w.leaf("QYLX", &[], if r.role == EnterpriseRole::Producer as i32 { "生产" } else { "销售" });
    let cats: Vec<String> = r.catalogue.iter().map(|c| category_code_of(*c)).collect();
    w.leaf("ML", &[], &cats.join(","));
    w.leaf("ZJXM", &[], &r.director_name);
    w.leaf("ZJRZRQ", &[], &date_text(&r.director_appointed_on));
    w.leaf("AQYRS", &[], &r.officers.to_string());
    w.leaf("BGQ", &[], &r.period);
    w.leaf("RGK", &[], &r.daily_checks.to_string());
    w.leaf("ZPC", &[], &r.weekly_checks.to_string());
    w.leaf("YDD", &[], &r.monthly_reviews.to_string());
    w.leaf("FXYH", &[], &r.hazards_found.to_string());
    w.leaf("ZGYH", &[], &r.hazards_fixed.to_string());
    w.close("JL");
}

/// The event that closed a case: its last CLOSE or RECHECK_PASS event.
pub fn closing_event(c: &DisposalCase) -> Option<&CaseEvent> {
    c.events.iter().rev().find(|e| e.action == CaseAction::Close as i32 || e.action == CaseAction::RecheckPass as i32)
}

/// The first five children of a `CZJG` and an `AJYS` record: the case and what it is about.
fn write_case_head(w: &mut Writer, c: &DisposalCase) {
    w.leaf("AJBH", &[], &c.case_id);
    w.leaf("YSDQ", &[], &c.origin_region);
    w.leaf("CBDQ", &[], &c.responsible_region);
    w.leaf("CYDBH", &[], &c.sample_id);
    w.leaf("BGBH", &[], &c.report_no);
}

fn write_closed(w: &mut Writer, c: &DisposalCase, losses: &mut Vec<Loss>) {
    let closing = closing_event(c).cloned().unwrap_or_default();
    let has = |a: CaseAction| c.events.iter().any(|e| e.action == a as i32);
    let mut measures = Vec::new();
    if has(CaseAction::RectifyOrder) || has(CaseAction::RecheckFail) {
        measures.push("责令整改");
    }
    if has(CaseAction::Penalty) {
        measures.push("罚没");
    }
    let fines: i64 = c.events.iter().filter(|e| e.action == CaseAction::Penalty as i32).filter_map(|e| e.amount).sum();
    for (field, detail) in [
        ("opened_at", "not carried in a CZJG package"),
        ("due_on", "not carried in a CZJG package"),
        ("events", "summarised as JASJ, JG, CS and FMJE"),
    ] {
        let present = match field {
            "opened_at" => c.opened_at.is_some(),
            "due_on" => c.due_on.is_some(),
            _ => !c.events.is_empty(),
        };
        if present {
            losses.push(Loss { record_id: c.case_id.clone(), field: field.into(), detail: detail.into() });
        }
    }
    w.open("JL", &[]);
    write_case_head(w, c);
    w.leaf("JASJ", &[], &time_text(&closing.at));
    w.leaf("JG", &[], if closing.action == CaseAction::RecheckPass as i32 { "复检合格" } else { "整改完成" });
    w.leaf("CS", &[], &measures.join("、"));
    w.leaf("FMJE", &[], &format_yuan(fines));
    w.close("JL");
}

fn write_forward(w: &mut Writer, f: &CaseForward, losses: &mut Vec<Loss>) {
    let c = &f.case;
    crate::model::transfer_losses(c, losses);
    let p = f.sampling.product.clone().unwrap_or_default();
    w.open("JL", &[]);
    write_case_head(w, c);
    w.leaf("YSSJ", &[], &time_text(&c.opened_at));
    w.leaf("QX", &[], &date_text(&c.due_on));
    // Party addresses of the joined sample are context here, not fields of the case: no loss.
    let mut ignored = Vec::new();
    write_party(w, "SCQY", f.sampling.producer.as_ref(), &c.case_id, "sampling.producer", &mut ignored);
    write_party(w, "BCYDW", f.sampling.seller.as_ref(), &c.case_id, "sampling.seller", &mut ignored);
    w.leaf("CPMC", &[], &p.name);
    w.leaf("SB", &[], &p.brand);
    w.leaf("GGXH", &[], &p.model);
    w.leaf("PH", &[], &p.batch);
    write_failing_items(w, &f.inspection, &c.case_id, "inspection", losses, false);
    w.close("JL");
}

/// Checks that SAMR can take these records: a closed case must be CLOSED with its closing event;
/// a forwarded case's sample and report must be the case's.
fn refusal(record: &Record) -> Option<EncodeError> {
    let unsupported = |reason: String| EncodeError::Unsupported {
        partner: "SAMR",
        kind: record.kind(),
        record_id: record.id(),
        reason,
    };
    match record {
        Record::ClosedCase(c) => {
            if c.status != CaseStatus::Closed as i32 || closing_event(c).is_none() {
                return Some(unsupported("a CZJG package takes closed cases with their CLOSE or RECHECK_PASS event".into()));
            }
        }
        Record::CaseForward(f) => {
            if f.sampling.sample_id != f.case.sample_id || f.inspection.report_no != f.case.report_no {
                return Some(unsupported("the joined sample and report are not the case's".into()));
            }
        }
        Record::SpotCheckResult(_) | Record::RiskSignal(_) | Record::ResponsibilityReport(_) => {}
        other => {
            return Some(unsupported(format!(
                "SAMR takes spot-check results, risk reports, responsibility reports, closed cases and case forwards, not {}",
                other.kind()
            )))
        }
    }
    None
}

/// Encodes records (one kind, 1–1000) as a SAMR package: GB18030 bytes, package number from the
/// sender, the Beijing date of `envelope.sent_at` and `sequence`, and the SM3 digest of `<SJ>`.
pub fn encode(envelope: &Envelope, sequence: u32, records: &[Record]) -> Result<Encoded, EncodeError> {
    let kind = batch_kind(records, MAX_RECORDS, "SAMR")?;
    if let Some(e) = records.iter().find_map(refusal) {
        return Err(e);
    }
    let package_type =
        PackageType::for_kind(kind).ok_or_else(|| EncodeError::Batch(format!("no SAMR package type for {kind}")))?;
    if !(1..=9999).contains(&sequence) {
        return Err(EncodeError::Batch(format!("package sequence {sequence} is outside 1–9999")));
    }
    if !identifiers::is_region(&envelope.sender) {
        return Err(EncodeError::Batch(format!("reporting unit '{}' is not a region code", envelope.sender)));
    }
    let sent_at = envelope.sent_at.ok_or_else(|| EncodeError::Batch("a SAMR package needs a sending time".into()))?;
    check_before_encode(records)?;
    let mut losses = Vec::new();
    precision_losses(records, 1_000_000_000, &mut losses);
    let mut body = Writer::fragment(1);
    body.open("SJ", &[]);
    for r in records {
        match r {
            Record::SpotCheckResult(x) => write_spot_check(&mut body, x, &mut losses),
            Record::RiskSignal(x) => write_risk(&mut body, x, &mut losses),
            Record::ResponsibilityReport(x) => write_responsibility(&mut body, x, &mut losses),
            Record::ClosedCase(x) => write_closed(&mut body, x, &mut losses),
            Record::CaseForward(x) => write_forward(&mut body, x, &mut losses),
            _ => {}
        }
    }
    body.close("SJ");
    let sj = gb18030(body.out.trim());
    let local = BeijingTime::of(&sent_at);
    let mut head = Writer::new(DECLARATION);
    head.open("SJB", &[]);
    head.open("BT", &[]);
    head.leaf("SJBBH", &[], &package_number(&envelope.sender, &local.date, sequence));
    head.leaf("BSDW", &[], &envelope.sender);
    head.leaf("SJLX", &[], package_type.code());
    head.leaf("BSSJ", &[], &local.to_spaced());
    head.leaf("JLS", &[], &records.len().to_string());
    head.leaf("ZY", &[], &sm3_hex(&sj));
    head.close("BT");
    let mut bytes = gb18030(&head.out);
    bytes.extend_from_slice(b"  ");
    bytes.extend_from_slice(&sj);
    bytes.extend_from_slice(b"\n</SJB>\n");
    Ok(Encoded { bytes, losses })
}
