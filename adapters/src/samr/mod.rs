//! SAMR data-platform docking (总局数据对接 数据包规范): GB18030 XML data packages with upper-case
//! pinyin element names, an SM3 digest of the `<SJ>` element's exact bytes, and receipts.
//! The gateway only sends packages to SAMR; decoding exists for SAMR intake simulators and
//! conformance checks. See `docs/partners/samr.md`.
//!
//! - `package.rs` — the package encoder ([`encode`]): records to `<SJB>` with its header.
//! - `check.rs` — the package checker ([`decode_package`]): a received package checked as
//!   SAMR's intake would.
//! - `receipt.rs` — SAMR's receipts ([`Receipt`], [`encode_receipt`], [`decode_receipt`]).
//!
//! This file holds what the three share: the package types and record layouts, the package
//! number, the digest and GB18030.

mod check;
mod package;
mod receipt;
/// The wire facts of SAMR's HTTP intake interface: the package content type, `Retry-After`.
pub mod transport;

pub use check::{decode_package, Package, PackageHeader, PackageRecord};
pub use package::{closing_event, encode};
pub use receipt::{decode_receipt, encode_receipt, Receipt};

use crate::model::RecordKind;
use sm3::{Digest, Sm3};
use yrdx_proto::Date;

/// The envelope id of SAMR.
pub const PARTNER_ID: &str = "SAMR";
/// Most records in one package.
pub const MAX_RECORDS: usize = 1000;
const DECLARATION: &str = r#"<?xml version="1.0" encoding="GB18030"?>"#;

/// SAMR package types (`BT/SJLX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageType {
    /// `CCJG` — spot-check results.
    SpotCheckResults,
    /// `FXBS` — risk reports.
    RiskReports,
    /// `ZTZR` — responsibility reports.
    ResponsibilityReports,
    /// `CZJG` — closed disposal cases.
    ClosedCases,
    /// `AJYS` — case transfers for SAMR to forward.
    CaseForwards,
}

impl PackageType {
    /// Every type.
    pub const ALL: [PackageType; 5] = [
        PackageType::SpotCheckResults,
        PackageType::RiskReports,
        PackageType::ResponsibilityReports,
        PackageType::ClosedCases,
        PackageType::CaseForwards,
    ];

    /// The `SJLX` code.
    pub fn code(self) -> &'static str {
        match self {
            PackageType::SpotCheckResults => "CCJG",
            PackageType::RiskReports => "FXBS",
            PackageType::ResponsibilityReports => "ZTZR",
            PackageType::ClosedCases => "CZJG",
            PackageType::CaseForwards => "AJYS",
        }
    }

    /// The type of an `SJLX` code.
    pub fn from_code(code: &str) -> Option<PackageType> {
        PackageType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The package type that carries a record kind.
    pub fn for_kind(kind: RecordKind) -> Option<PackageType> {
        match kind {
            RecordKind::SpotCheckResult => Some(PackageType::SpotCheckResults),
            RecordKind::RiskSignal => Some(PackageType::RiskReports),
            RecordKind::ResponsibilityReport => Some(PackageType::ResponsibilityReports),
            RecordKind::ClosedCase => Some(PackageType::ClosedCases),
            RecordKind::CaseForward => Some(PackageType::CaseForwards),
            _ => None,
        }
    }

    /// The children of one `JL` record, in order; a name ending in `/` is a group (party or
    /// failing items) whose own children are listed by [`group_children`].
    pub fn record_children(self) -> &'static [&'static str] {
        match self {
            PackageType::SpotCheckResults => &[
                "CYDBH", "JHBH", "CYDQ", "CYRQ", "QD", "BCYDW/", "SCQY/", "WDPT", "WDMC", "CPMC", "CPFL", "SB", "GGXH",
                "PH", "BGBH", "JYJG", "JYJL", "BHGXM/",
            ],
            PackageType::RiskReports => &[
                "FXBH", "BB", "ZT", "SBDW", "FXRQ", "LY", "CPMC", "CPFL", "SB", "GGXH", "WHLX", "FXDJ", "FXMS", "JYCS",
                "GLCYD",
            ],
            PackageType::ResponsibilityReports => &[
                "QYMC", "XYDM", "QH", "QYLX", "ML", "ZJXM", "ZJRZRQ", "AQYRS", "BGQ", "RGK", "ZPC", "YDD", "FXYH",
                "ZGYH",
            ],
            PackageType::ClosedCases => &["AJBH", "YSDQ", "CBDQ", "CYDBH", "BGBH", "JASJ", "JG", "CS", "FMJE"],
            PackageType::CaseForwards => &[
                "AJBH", "YSDQ", "CBDQ", "CYDBH", "BGBH", "YSSJ", "QX", "SCQY/", "BCYDW/", "CPMC", "SB", "GGXH", "PH",
                "BHGXM/",
            ],
        }
    }
}

/// Children of a group element of a record.
pub fn group_children(group: &str) -> &'static [&'static str] {
    match group {
        "BCYDW" | "SCQY" => &["MC", "XYDM", "QH"],
        "BHGXM" => &["XM"],
        "XM" => &["XMMC", "BZYQ", "SCJG", "BHGCD"],
        _ => &[],
    }
}

/// `SJB-{BSDW}-{yyyyMMdd}-{NNNN}`: the package number for a sender, a sending day and a daily
/// sequence number (1–9999).
pub fn package_number(sender: &str, day: &Date, sequence: u32) -> String {
    format!("SJB-{sender}-{}-{sequence:04}", day.to_compact())
}

/// Lower-case hex SM3 of bytes.
pub fn sm3_hex(bytes: &[u8]) -> String {
    hex::encode(Sm3::digest(bytes))
}

/// GB18030 bytes as text, lossy (for looking into packages; checks use [`decode_package`]).
pub fn gb18030_text(bytes: &[u8]) -> String {
    encoding_rs::GB18030.decode(bytes).0.into_owned()
}

/// Text as GB18030 bytes.
fn gb18030(text: &str) -> Vec<u8> {
    // GB18030 encodes every Unicode scalar value, so there is never a replacement.
    encoding_rs::GB18030.encode(text).0.into_owned()
}

/// The words SAMR uses for the coded fields, for checks on received packages.
fn allowed_words(field: &str) -> Option<&'static [&'static str]> {
    Some(match field {
        "QD" => &["线下", "网络"],
        "JYJL" => &["合格", "不合格"],
        "BHGCD" => &["严重", "一般"],
        "ZT" => &["新增", "更新", "撤回"],
        "LY" => &["监督抽查", "执法检查", "日常检查", "风险监测", "缺陷召回", "伤害监测", "消费者投诉", "网络舆情"],
        "FXDJ" => &["高", "较高", "一般", "低"],
        "QYLX" => &["生产", "销售"],
        "JG" => &["复检合格", "整改完成"],
        _ => return None,
    })
}
